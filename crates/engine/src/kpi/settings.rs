//! `[kpi_settings]`: how the KPIs are kept current.

use serde::Deserialize;
use std::time::Duration;

/// `[kpi_settings]`.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KpiSettings {
    /// How often the current values are computed again and sent to every screen.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
}

impl Default for KpiSettings {
    fn default() -> Self {
        KpiSettings {
            refresh: Duration::from_secs(30),
        }
    }
}
