//! `[store]`: how long raw observations are kept and how much goes in one transaction.

use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How long raw observations are kept; 1-minute rollups are kept for good.
    #[serde(with = "humantime_serde")]
    pub raw_retention: Duration,
    /// Most observations written in one transaction.
    pub batch_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            raw_retention: Duration::from_secs(30 * 86_400),
            batch_max: 8192,
        }
    }
}
