//! Event rules as the rules screen sees them (`/api/rules…`).

use crate::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Something wrong with a rule or a rules file, with where it is. `line`/`column` count from
/// 1 in the text it was found in (the file, or the text sent to validate).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleProblem {
    /// The rule, when known.
    pub rule: Option<String>,
    /// `config` (the configuration file), a rules file's name, or `text` (a validated text).
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One rule (`GET /api/rules`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleInfo {
    pub name: String,
    pub when: String,
    /// The `for` duration, e.g. `10m`.
    #[serde(rename = "for")]
    pub for_: String,
    pub severity: Severity,
    pub category: Option<String>,
    pub message: String,
    pub enabled: bool,
    /// `config` or the rules file it is in.
    pub origin: String,
    /// Whether the rules screen may change it (rules of the configuration file are read-only).
    pub editable: bool,
    /// The rule as TOML keys, as the editor shows it.
    pub text: String,
    /// Why it does not run, when it does not compile.
    pub error: Option<String>,
    /// Cameras (entity ids) its alerts open with, before the nearest ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
}

/// `GET /api/rules`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RulesResponse {
    pub rules: Vec<RuleInfo>,
    /// Every problem as one line each (rules that did not compile, files that do not parse).
    pub errors: Vec<String>,
    pub problems: Vec<RuleProblem>,
    /// The folder of rules files (read again when a file changes).
    pub folder: Option<String>,
}

/// Body of `POST /api/rules/validate` and `PUT /api/rules/{name}`: one rule's TOML keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleText {
    pub text: String,
}

/// Body of `POST /api/rules/validate`, `POST /api/sops/validate` and
/// `POST /api/kpi-defs/validate`: a text checked as the editor types it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ValidateBody {
    pub text: String,
    /// The rule, template or definition being edited (its name before the edit); absent for
    /// a new one, so that its own name is not taken for a clash.
    #[serde(default)]
    pub replacing: Option<String>,
}

/// `POST /api/rules/validate`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleCheck {
    pub ok: bool,
    pub name: Option<String>,
    pub problems: Vec<RuleProblem>,
}

/// Body of `POST /api/rules/backtest`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BacktestRequest {
    pub text: String,
    /// Default: 24 hours before `to`.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

/// When a rule would have raised an alert.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BacktestFiring {
    pub entity: String,
    pub entity_name: String,
    pub unit: Option<String>,
    pub metric: String,
    pub raised_at: DateTime<Utc>,
    /// `None`: still firing at the end of the period.
    pub cleared_at: Option<DateTime<Utc>>,
    pub severity: Severity,
    /// The value that raised it.
    pub value: f64,
    /// The highest value while it was raised.
    pub peak: f64,
}

/// `POST /api/rules/backtest`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BacktestResponse {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Observations replayed.
    pub observations: u64,
    /// The period held more observations than one backtest replays; the end is missing.
    pub truncated: bool,
    pub firings: Vec<BacktestFiring>,
}
