//! Key performance indicators as the API gives them (`/api/kpis…`): a definition's current
//! value against its target, with its status, by unit; a KPI's series over time; what is
//! behind a number.

use crate::{Domain, RuleProblem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a value stands against its thresholds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KpiStatus {
    Green,
    Amber,
    Red,
}

impl KpiStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KpiStatus::Green => "green",
            KpiStatus::Amber => "amber",
            KpiStatus::Red => "red",
        }
    }
}

/// A KPI's period.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Hour, Period::Day, Period::Week, Period::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Whether a higher or a lower value is better.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// A KPI's value in one unit (commune).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UnitValue {
    pub unit: String,
    pub unit_name: String,
    pub value: Option<f64>,
    pub status: KpiStatus,
    /// What the value was computed from: counted items, all items (shares), or values.
    pub numerator: f64,
    pub denominator: f64,
}

/// A KPI over one period (`GET /api/kpis`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiValue {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub name_en: Option<String>,
    pub domain: Domain,
    pub period: Period,
    /// `None`: nothing to measure in the period (and the definition gives no `empty` value).
    pub value: Option<f64>,
    pub target: f64,
    pub status: KpiStatus,
    /// No data in the period: `value` is the definition's `empty` value or `None`, and the
    /// status is amber.
    #[serde(default)]
    pub no_data: bool,
    pub uom: String,
    pub better: Better,
    pub green: f64,
    pub amber: f64,
    #[serde(default)]
    pub owner: Option<String>,
    /// The period, `[from, to)`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub numerator: f64,
    pub denominator: f64,
    /// The period before, for the trend.
    #[serde(default)]
    pub previous: Option<f64>,
    /// By unit, worst first (filled when the KPI breaks down by unit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_unit: Vec<UnitValue>,
}

/// One point of a KPI's series.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiPoint {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub value: Option<f64>,
    pub status: KpiStatus,
    pub numerator: f64,
    pub denominator: f64,
}

/// `GET /api/kpis/{id}/series`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiSeries {
    pub id: String,
    pub period: Period,
    pub uom: String,
    pub target: f64,
    #[serde(default)]
    pub unit: Option<String>,
    pub points: Vec<KpiPoint>,
}

/// Something behind a KPI's number (`GET /api/kpis/{id}/detail`): an entity with its value
/// over the period, or an alert, incident or directive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiItem {
    /// `entity`, `alert`, `incident`, `directive`.
    pub kind: String,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub unit_name: Option<String>,
    pub value: Option<f64>,
    /// Counted in a share (it met the KPI's `where`).
    pub counted: bool,
}

/// A KPI definition (`GET /api/kpi-defs`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KpiDef {
    pub id: String,
    pub name: String,
    pub domain: Domain,
    pub period: Period,
    /// The definition as TOML, as the editor shows it.
    pub text: String,
    /// `config` (read-only) or `console` (kept in the store, editable).
    pub origin: String,
    pub editable: bool,
}

/// `GET /api/kpi-defs`: the definitions in force and what is wrong with any of them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
// Published in `docs/openapi.json` under the name it had when the server defined it.
#[cfg_attr(feature = "schema", schemars(rename = "Defs"))]
pub struct KpiDefs {
    pub defs: Vec<KpiDef>,
    pub problems: Vec<RuleProblem>,
}
