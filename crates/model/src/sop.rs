//! SOP templates as the SOP screen sees them (`/api/sops…`). A template is TOML text; every
//! save is a new version, and an incident keeps the version it started with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One step as the editor's preview shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SopStepInfo {
    pub id: String,
    pub title: String,
    pub role: crate::Role,
    pub after: Vec<String>,
    #[serde(default)]
    pub sla_seconds: Option<u64>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub answers: Vec<String>,
    #[serde(default)]
    pub checklist: usize,
}

/// The newest version of a template (`GET /api/sops`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SopInfo {
    pub name: String,
    pub version: u32,
    pub title: String,
    #[serde(default)]
    pub title_en: Option<String>,
    /// Alert categories it is the default SOP for.
    pub categories: Vec<String>,
    /// Cameras (entity ids) shown with alerts of its categories and with its incidents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
    pub steps: Vec<SopStepInfo>,
    /// The template as TOML, as the editor shows it.
    pub text: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// Versions there are (newest last).
    #[serde(default)]
    pub versions: Vec<u32>,
    /// Kept from the provincial IOC: read-only here (changed at the IOC).
    #[serde(default)]
    pub province: bool,
}
