//! `[reports]`: which statistical reports are made on a schedule, and where they go.

use ioc_model::Domain;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[reports]`: statistical reports written on a schedule.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Where they go. Default: `<data>/reports`.
    pub folder: Option<PathBuf>,
    /// What is made after each period ends. Default: every domain's daily, weekly and
    /// monthly PDF; `schedule = []` for none.
    pub schedule: Vec<ScheduledReport>,
}

/// One `[[reports.schedule]]` entry.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduledReport {
    pub period: ioc_model::Period,
    /// Absent: every domain.
    #[serde(default)]
    pub domain: Option<Domain>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default = "pdf")]
    pub format: ioc_model::ReportFormat,
}

fn pdf() -> ioc_model::ReportFormat {
    ioc_model::ReportFormat::Pdf
}

impl Default for ReportsConfig {
    fn default() -> Self {
        let every = |period| ScheduledReport {
            period,
            domain: None,
            unit: None,
            format: ioc_model::ReportFormat::Pdf,
        };
        ReportsConfig {
            folder: None,
            schedule: vec![
                every(ioc_model::Period::Day),
                every(ioc_model::Period::Week),
                every(ioc_model::Period::Month),
            ],
        }
    }
}
