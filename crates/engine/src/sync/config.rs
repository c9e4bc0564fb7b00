//! `[node]` and `[upstream]`: who this engine is in the federation, and the IOC it reports to.

use serde::Deserialize;
use std::path::PathBuf;

/// `[node]`.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's name in the federation (`ioc-nghe-an`, `oc-dien-chau`): letters, digits
    /// and `-`. Fixed at the data folder's first start (what the folder recorded wins over a
    /// changed setting, which is refused); without it the folder gets `node-` and six random
    /// hex digits.
    pub name: Option<String>,
}

/// `[upstream]`: the provincial IOC this node reports to.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The IOC's address, e.g. `https://ioc.nghean.gov.vn`.
    pub url: String,
    /// A file holding this node's token (from `ioc node add` on the IOC); kept out of the
    /// configuration so the file can be readable by the service only.
    pub token_file: PathBuf,
}

/// Whether `name` can name a node.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}
