//! Dashboards, the video wall's profile and statistical reports, as the API gives them.

use crate::kpi::Period;
use crate::{Domain, Role, Severity};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What a panel shows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// One KPI: value, target, status, trend.
    Kpi,
    /// A KPI's series, or a device's metric over time.
    Chart,
    /// A KPI by unit, worst first.
    Ranking,
    /// The province: communes coloured by a KPI, or the live devices.
    Map,
    /// Open alerts (of at least a severity).
    Alerts,
    /// Incidents not closed, most severe first.
    Incidents,
    /// Several KPIs as a table.
    Table,
    /// Words.
    Text,
    /// A camera (`entity`): live when it has a stream, its still otherwise.
    Camera,
}

impl PanelKind {
    pub const ALL: [PanelKind; 9] = [
        PanelKind::Kpi,
        PanelKind::Chart,
        PanelKind::Ranking,
        PanelKind::Map,
        PanelKind::Alerts,
        PanelKind::Incidents,
        PanelKind::Table,
        PanelKind::Text,
        PanelKind::Camera,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PanelKind::Kpi => "kpi",
            PanelKind::Chart => "chart",
            PanelKind::Ranking => "ranking",
            PanelKind::Map => "map",
            PanelKind::Alerts => "alerts",
            PanelKind::Incidents => "incidents",
            PanelKind::Table => "table",
            PanelKind::Text => "text",
            PanelKind::Camera => "camera",
        }
    }

    pub fn parse(s: &str) -> Option<PanelKind> {
        PanelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Columns of the dashboard grid.
pub const GRID_COLUMNS: u8 = 12;

/// One panel, placed on the grid (`x`, `w` in columns of 12; `y`, `h` in rows).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Panel {
    /// Unique within its dashboard.
    pub id: String,
    pub kind: PanelKind,
    pub x: u8,
    pub y: u8,
    pub w: u8,
    pub h: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The KPI of a `kpi`, `ranking`, `map` or `chart` panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpi: Option<String>,
    /// The KPIs of a `table` panel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<String>,
    /// A device and one of its metrics, for a `chart` panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// How far back a chart looks, in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// The words of a `text` panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An `alerts` panel shows this severity and above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// How many rows a list shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl Panel {
    /// Whether it sits inside the grid and is big enough to read.
    pub fn fits(&self) -> bool {
        self.w >= 1 && self.h >= 1 && self.x.saturating_add(self.w) <= GRID_COLUMNS && self.h <= 12
    }
}

/// A dashboard (`/api/dashboards…`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Dashboard {
    pub id: String,
    pub name: String,
    /// Who made it (`system` for the built-in ones).
    pub owner: String,
    /// Roles it is shared with (the owner always sees it).
    #[serde(default)]
    pub shared_roles: Vec<Role>,
    /// Shipped with the console: can be copied, not changed.
    #[serde(default)]
    pub builtin: bool,
    pub panels: Vec<Panel>,
    pub updated_at: DateTime<Utc>,
}

/// One dashboard of a wall screen's playlist, for so long.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WallItem {
    pub dashboard: String,
    pub seconds: u32,
}

/// One screen of the wall (a monitor): its playlist.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WallScreen {
    pub name: String,
    pub playlist: Vec<WallItem>,
}

/// The video wall's profile (`GET`/`PUT /api/wall`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WallProfile {
    pub screens: Vec<WallScreen>,
    /// An alert this severe (not silenced, not yet taken in hand) switches the wall to it —
    /// its place on the map, its chart, its nearest camera — until it clears.
    pub preset_severity: Severity,
}

/// Output format of a report.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Pdf,
    Csv,
    Xlsx,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Pdf => "pdf",
            ReportFormat::Csv => "csv",
            ReportFormat::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> Option<ReportFormat> {
        [ReportFormat::Pdf, ReportFormat::Csv, ReportFormat::Xlsx]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// `POST /api/reports`: a statistical report of a domain (or all) over a period.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReportRequest {
    /// `None`: every domain.
    #[serde(default)]
    pub domain: Option<Domain>,
    pub period: Period,
    /// A local date within the period.
    pub date: NaiveDate,
    /// Only this unit.
    #[serde(default)]
    pub unit: Option<String>,
    pub format: ReportFormat,
}

/// Where a report being made is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    Running,
    Done,
    Failed,
}

/// A report being made or made (`GET /api/reports/{id}`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReportJob {
    pub id: i64,
    pub request: ReportRequest,
    pub state: ReportState,
    /// Percent done.
    pub progress: u8,
    /// What it is doing now.
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// `ui` or `schedule`.
    pub by: String,
}

/// A report in the reports folder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReportFile {
    pub name: String,
    pub size: u64,
    pub at: DateTime<Utc>,
}

/// `GET /api/reports`: reports being made and made since start, and the reports folder's
/// files (of the caller's units).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Reports {
    pub jobs: Vec<ReportJob>,
    pub files: Vec<ReportFile>,
}
