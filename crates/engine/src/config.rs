//! The one TOML configuration file. Every key has a default good enough for the Nghệ An demo,
//! so no file is needed to start; a wrong key or value is refused with its name and position.
//!
//! ```toml
//! [paths]
//! data = "/var/lib/ioc"          # default: the user's data folder
//!
//! [server]
//! listen = "127.0.0.1:8080"
//!
//! [[source]]                     # no [[source]] at all: the demo simulator
//! name = "demo"
//! kind = "simulator"
//! interval = "5s"
//!
//! [[rule]]                       # no [[rule]] at all: the demo rules below
//! name = "pm25-high"
//! when = "metric == 'pm25' && value > 150.0"
//! for = "10m"
//! severity = "major"
//! message = "PM2.5 {value} µg/m³ tại {entity.name}"
//! ```

use ioc_model::{Domain, Severity};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub organisation: OrganisationConfig,
    pub paths: Paths,
    pub server: ServerConfig,
    pub display: DisplayConfig,
    pub store: StoreConfig,
    pub hub: HubConfig,
    pub alerts: AlertsConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    /// `[[source]]` tables. Absent: the Nghệ An demo simulator.
    pub sources: Option<Vec<SourceConfig>>,
    /// `[[rule]]` tables (read-only on the rules screen). Absent, and no rules folder yet: the
    /// demo rules ([`default_rules`]) are written into the rules folder.
    pub rules: Option<Vec<RuleConfig>>,
    /// `[[kpi]]` tables (read-only on the KPI screen), besides those kept in the store.
    pub kpis: Vec<crate::kpi::def::KpiConfig>,
    pub kpi: KpiSettings,
    pub reports: ReportsConfig,
    /// `[metrics.<name>]`: plausible ranges over the defaults of
    /// [`crate::pipeline::plausible::DEFAULTS`].
    pub metrics: std::collections::BTreeMap<String, MetricRange>,
}

/// `[metrics.<name>]`: the plausible range of a metric. A reading outside is refused to the
/// dead letters with the reason; a bound not given keeps the default.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

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

/// The file as written. Sources are read in a second step, by their `kind`, so that an error
/// inside one names the source, its line and the key.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    organisation: OrganisationConfig,
    paths: Paths,
    server: ServerConfig,
    display: DisplayConfig,
    store: StoreConfig,
    hub: HubConfig,
    alerts: AlertsConfig,
    auth: AuthConfig,
    audit: AuditConfig,
    #[serde(rename = "source")]
    sources: Option<Vec<toml::Spanned<toml::Table>>>,
    /// `[[rule]]` tables (read-only on the rules screen). Absent, and no rules folder yet: the
    /// demo rules ([`default_rules`]) are written into the rules folder.
    #[serde(rename = "rule")]
    rules: Option<Vec<RuleConfig>>,
    #[serde(rename = "kpi")]
    kpis: Vec<crate::kpi::def::KpiConfig>,
    #[serde(rename = "kpi_settings")]
    kpi: KpiSettings,
    reports: ReportsConfig,
    metrics: std::collections::BTreeMap<String, MetricRange>,
}

/// Who runs this console: named in exported CAP messages.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct OrganisationConfig {
    pub name: String,
    /// CAP `sender`: an address that identifies the issuer.
    pub cap_sender: String,
}

impl Default for OrganisationConfig {
    fn default() -> Self {
        OrganisationConfig {
            name: "Trung tâm Điều hành thông minh tỉnh Nghệ An".into(),
            cap_sender: "ioc@nghean.gov.vn".into(),
        }
    }
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// Folder for the database and imported files. Default: `<user data dir>/ioc-console`.
    pub data: Option<PathBuf>,
    /// Folder of rules files (`*.toml` with `[[rule]]` tables), read again when one changes.
    /// Default: `<data>/rules`.
    pub rules: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Serve the UI from this folder instead of the copy built into the binary.
    pub ui_dir: Option<PathBuf>,
    /// The names (or addresses) people reach this server by, besides loopback
    /// (`ioc.nghean.gov.vn`, `10.20.0.5`, optionally with `:port`). A request whose `Host`
    /// or `Origin` is none of them is refused: a page on another site that a DNS trick
    /// points at this server gets nothing.
    pub hosts: Vec<String>,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Leave off for plain HTTP on
    /// loopback or a closed network; turn on behind an HTTPS reverse proxy.
    pub secure_cookies: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ui_dir: None,
            hosts: Vec::new(),
            secure_cookies: false,
        }
    }
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// IANA time zone times are shown in.
    pub timezone: String,
    /// Default UI language: `vi` or `en`.
    pub language: String,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            timezone: "Asia/Ho_Chi_Minh".into(),
            language: "vi".into(),
        }
    }
}

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

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Changes kept for clients that reconnect; older ones get a snapshot instead.
    pub log_capacity: usize,
    /// Shortest time between two frames to one client (coalescing window).
    #[serde(with = "humantime_serde")]
    pub frame_interval: Duration,
    /// A heartbeat is sent after this long without changes.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            log_capacity: 200_000,
            frame_interval: Duration::from_millis(100),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// One `[[source]]` table; `kind` selects the variant.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Simulator(SimulatorConfig),
    Mqtt(crate::sources::mqtt::MqttConfig),
    Http(crate::sources::http::HttpConfig),
    Websocket(crate::sources::websocket::WebsocketConfig),
    SensorThings(crate::sources::sensorthings::SensorThingsConfig),
    File(crate::sources::file::FileConfig),
}

/// The values `kind` can take.
pub const SOURCE_KINDS: &[&str] = &[
    "simulator",
    "mqtt",
    "http",
    "websocket",
    "sensorthings",
    "file",
];

impl SourceConfig {
    /// Reads one source from the keys of a `[[source]]` table written on their own (the
    /// admin screen's form): errors name the key.
    pub fn parse(text: &str) -> Result<SourceConfig, String> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
        let name = table
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or("missing `name`")?
            .to_string();
        let c = SourceConfig::from_table(table)?;
        debug_assert_eq!(c.name(), name);
        Ok(c)
    }

    /// Reads one `[[source]]` table by its `kind`.
    fn from_table(mut table: toml::Table) -> Result<SourceConfig, String> {
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => k,
            Some(other) => return Err(format!("`kind` must be a string, not {other}")),
            None => {
                return Err(format!(
                    "missing `kind` (one of {})",
                    SOURCE_KINDS.join(", ")
                ))
            }
        };
        let value = toml::Value::Table(table);
        match kind.as_str() {
            "simulator" => SimulatorConfig::deserialize(value)
                .map(SourceConfig::Simulator)
                .map_err(|e| e.to_string()),
            "mqtt" => {
                let c = crate::sources::mqtt::MqttConfig::deserialize(value)
                    .map_err(|e| e.to_string())?;
                c.validate()?;
                Ok(SourceConfig::Mqtt(c))
            }
            "http" => {
                let c = crate::sources::http::HttpConfig::deserialize(value)
                    .map_err(|e| e.to_string())?;
                c.validate()?;
                Ok(SourceConfig::Http(c))
            }
            "websocket" => {
                let c = crate::sources::websocket::WebsocketConfig::deserialize(value)
                    .map_err(|e| e.to_string())?;
                c.validate()?;
                Ok(SourceConfig::Websocket(c))
            }
            "sensorthings" => {
                let c = crate::sources::sensorthings::SensorThingsConfig::deserialize(value)
                    .map_err(|e| e.to_string())?;
                c.validate()?;
                Ok(SourceConfig::SensorThings(c))
            }
            "file" => {
                let c = crate::sources::file::FileConfig::deserialize(value)
                    .map_err(|e| e.to_string())?;
                c.validate()?;
                Ok(SourceConfig::File(c))
            }
            other => Err(format!(
                "unknown kind {other:?} (one of {})",
                SOURCE_KINDS.join(", ")
            )),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Simulator(c) => &c.name,
            SourceConfig::Mqtt(c) => &c.name,
            SourceConfig::Http(c) => &c.name,
            SourceConfig::Websocket(c) => &c.name,
            SourceConfig::SensorThings(c) => &c.name,
            SourceConfig::File(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Simulator(_) => "simulator",
            SourceConfig::Mqtt(_) => "mqtt",
            SourceConfig::Http(_) => "http",
            SourceConfig::Websocket(_) => "websocket",
            SourceConfig::SensorThings(_) => "sensorthings",
            SourceConfig::File(_) => "file",
        }
    }

    /// How old an observation from this source may be; none for the simulator, which
    /// back-fills history on purpose, and for files, which are often history.
    pub fn max_age(&self) -> Option<Duration> {
        match self {
            SourceConfig::Simulator(_) => None,
            SourceConfig::Mqtt(c) => Some(c.max_age),
            SourceConfig::Http(c) => Some(c.max_age),
            SourceConfig::Websocket(c) => Some(c.max_age),
            SourceConfig::SensorThings(c) => Some(c.max_age),
            SourceConfig::File(_) => None,
        }
    }

    pub fn enabled(&self) -> bool {
        match self {
            SourceConfig::Simulator(c) => c.enabled,
            SourceConfig::Mqtt(c) => c.enabled,
            SourceConfig::Http(c) => c.enabled,
            SourceConfig::Websocket(c) => c.enabled,
            SourceConfig::SensorThings(c) => c.enabled,
            SourceConfig::File(c) => c.enabled,
        }
    }
}

/// The Nghệ An demo scenario (`kind = "simulator"`): about 300 stations, gauges, counters and
/// cameras at real places, with daily cycles and occasional episodes that make rules fire.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub name: String,
    pub enabled: bool,
    /// Every entity reports once per interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Random seed: the same seed places the same entities.
    pub seed: u64,
    /// Multiplies the number of entities (1.0 ≈ 300).
    pub scale: f64,
    /// Mean time between two episodes (pollution spike, rising river, camera down, …).
    #[serde(with = "humantime_serde")]
    pub episode_every: Duration,
    /// Mean length of an episode.
    #[serde(with = "humantime_serde")]
    pub episode_length: Duration,
    /// On first start (or after a gap), history generated back to this long ago.
    #[serde(with = "humantime_serde")]
    pub backfill: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            name: "demo".into(),
            enabled: true,
            interval: Duration::from_secs(5),
            seed: 40,
            scale: 1.0,
            episode_every: Duration::from_secs(4 * 60),
            episode_length: Duration::from_secs(25 * 60),
            backfill: Duration::from_secs(6 * 3600),
        }
    }
}

/// One `[[rule]]` table.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// CEL condition over `metric`, `value`, `time` and `entity`.
    pub when: String,
    /// How long the condition must hold before the alert is raised.
    #[serde(
        rename = "for",
        default,
        with = "humantime_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub for_: Duration,
    pub severity: Severity,
    /// Shown in the queue; `{value}`, `{metric}`, `{uom}`, `{entity.name}`, `{entity.id}`,
    /// `{unit}` are replaced.
    pub message: String,
    /// Kind of event, e.g. `air_quality`, `flood`; default: the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Domain of the alert; default: the entity's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// Resolve an acknowledged alert by itself once the condition clears.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub auto_resolve: bool,
    /// Escalate when not acknowledged for this long (default `[alerts] escalate_after`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub escalate_after: Option<Duration>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Hysteresis: once raised, the alert clears only when this CEL condition holds (e.g.
    /// raise above 150, clear below 100), not as soon as `when` stops holding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_when: Option<String>,
    /// Sliding window: `window.avg`, `.min`, `.max`, `.sum`, `.count`, `.rate` (per minute),
    /// `.delta` (last − first) of the observed metric over this long are in the condition.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// No-data rule: raised when no observation matching `when` arrived for this long;
    /// cleared by the next one.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_data: Option<Duration>,
    /// Geofence: only entities inside (or, with `outside = true`, outside) this area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<AreaConfig>,
    /// Only during these local hours, e.g. `"18:00-06:00"` (the display time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<String>,
    /// Only on these days: `mon` … `sun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_days: Option<Vec<String>>,
    /// Severity from the value: the last level whose `above` the value reaches (or whose
    /// `below` it goes under) wins over `severity`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelConfig>,
    /// Alerts of this rule are worked as incidents: `{ alerts = 3, within = "30m", sop = … }`
    /// opens one when that many alerts of the rule's category arrive in one unit within that
    /// time (default: every alert), through that SOP (default: the category's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRuleConfig>,
}

/// A rule's `incident` key.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IncidentRuleConfig {
    /// SOP template; default: the one for the rule's category, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop: Option<String>,
    /// How many alerts of the category in one unit make an incident.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub alerts: u32,
    /// Within how long.
    #[serde(default = "one_hour", with = "humantime_serde")]
    pub within: Duration,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RuleConfig {
    /// What a `[[rule]]` table with only `name`, `when`, `severity` and `message` means.
    fn default() -> Self {
        RuleConfig {
            name: String::new(),
            when: String::new(),
            for_: Duration::ZERO,
            severity: Severity::Warning,
            message: String::new(),
            category: None,
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            clear_when: None,
            window: None,
            no_data: None,
            area: None,
            active_hours: None,
            active_days: None,
            levels: Vec::new(),
            incident: None,
        }
    }
}

/// A rule's area: a unit (commune code) or a drawn polygon (`[[lon, lat], …]`).
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AreaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<[f64; 2]>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside: bool,
}

/// One step of severity by value.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub severity: Severity,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// `[alerts]`: the lifecycle's timers.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// An alert nobody acknowledged for this long escalates: its severity goes up one step and
    /// the next role up is notified (supervisor, then leader); again after as long once more.
    #[serde(with = "humantime_serde")]
    pub escalate_after: Duration,
    /// How many times at most (0: never).
    pub escalate_max: u8,
    /// The desktop app shows a native notification for new alerts this severe and above
    /// (`off`: none).
    pub notify: NotifyLevel,
    /// A value dated more than this before now is history (an import, a backfill, an OC
    /// catching up after its link came back): stored, rolled up and shown, but not evaluated
    /// by the live rules, so it never pages anyone as if it were happening now. What the rules
    /// would have raised on it is what the rules screen's backtest shows for that period.
    #[serde(with = "humantime_serde")]
    pub history_after: Duration,
}

/// `[alerts] notify`: a severity, or `off`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    Off,
    Info,
    Warning,
    Major,
    Critical,
}

impl NotifyLevel {
    /// The least severity notified, if any.
    pub fn min(self) -> Option<Severity> {
        match self {
            NotifyLevel::Off => None,
            NotifyLevel::Info => Some(Severity::Info),
            NotifyLevel::Warning => Some(Severity::Warning),
            NotifyLevel::Major => Some(Severity::Major),
            NotifyLevel::Critical => Some(Severity::Critical),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            escalate_after: Duration::from_secs(15 * 60),
            escalate_max: 2,
            notify: NotifyLevel::Major,
            history_after: Duration::from_secs(2 * 3600),
        }
    }
}

/// `[auth]`: sign-in.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session lasts this many hours (a 12-hour shift by default).
    pub session_hours: u32,
    /// Single sign-on through the province's OpenID Connect provider (`[auth.oidc]`).
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_hours: 12,
            oidc: None,
        }
    }
}

/// `[auth.oidc]`: the province's OpenID Connect provider. People sign in there
/// (authorization code with PKCE; the server exchanges the code and keeps the tokens), and
/// other systems call the API with its access tokens (`Authorization: Bearer` JWT). Roles
/// and unit scopes come from the tokens' claims, read again at every refresh.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, e.g. `https://sso.nghean.gov.vn/realms/ioc` (its
    /// `/.well-known/openid-configuration` is read).
    pub issuer: String,
    pub client_id: String,
    /// For a confidential client; a public client uses PKCE only.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Where the provider sends people back (default: this server's
    /// `/api/auth/oidc/callback` as the browser reached it).
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(default = "oidc_scopes")]
    pub scopes: Vec<String>,
    /// The `aud` of access tokens other systems send (default: the client id).
    #[serde(default)]
    pub audience: Option<String>,
    /// Where the role is in the claims: a dotted path (`ioc_role`, `realm_access.roles`);
    /// a string or a list (the first that maps to a role wins).
    #[serde(default = "oidc_role_claim")]
    pub role_claim: String,
    /// Where the unit scope is: a list of unit codes (or one, or comma-separated); absent
    /// or empty: the whole province.
    #[serde(default = "oidc_units_claim")]
    pub units_claim: String,
    #[serde(default = "oidc_username_claim")]
    pub username_claim: String,
    #[serde(default = "oidc_name_claim")]
    pub name_claim: String,
    /// The provider's role names to ours (`"IOC-Truc-Ban" = "operator"`); ours are taken
    /// as they are.
    #[serde(default)]
    pub role_map: std::collections::BTreeMap<String, String>,
    /// How often a signed-in person's tokens are refreshed and their claims read again: a
    /// role taken away at the provider stops working within this long.
    #[serde(default = "oidc_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// The sign-in button's words.
    #[serde(default = "oidc_label")]
    pub label: String,
    /// How far the provider's clock and ours may disagree when checking a token's times.
    #[serde(default = "oidc_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
}

fn oidc_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"]
        .map(String::from)
        .to_vec()
}
fn oidc_role_claim() -> String {
    "ioc_role".into()
}
fn oidc_units_claim() -> String {
    "ioc_units".into()
}
fn oidc_username_claim() -> String {
    "preferred_username".into()
}
fn oidc_name_claim() -> String {
    "name".into()
}
fn oidc_refresh() -> Duration {
    Duration::from_secs(300)
}
fn oidc_skew() -> Duration {
    Duration::from_secs(30)
}
fn oidc_label() -> String {
    "Đăng nhập bằng tài khoản tỉnh (SSO)".into()
}

/// `[audit]`: the audit log's chain.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// A key file kept outside the database (and best outside the data folder, e.g.
    /// `/etc/ioc/audit.key`): the chain is then keyed with HMAC-SHA256, so rewriting it
    /// needs the key. Made (owner-only) at the first start if it does not exist.
    pub key_file: Option<PathBuf>,
}

impl Config {
    /// The display time zone (checked when the file is read).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.display
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
    }
}

impl Config {
    /// Reads the file, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses TOML text; errors name the key and its line.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        let sources = match raw.sources {
            None => None,
            Some(tables) => {
                let mut out = Vec::new();
                for (i, spanned) in tables.into_iter().enumerate() {
                    let line = text[..spanned.span().start.min(text.len())]
                        .matches('\n')
                        .count()
                        + 1;
                    let table = spanned.into_inner();
                    let name = table
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map(|n| format!("{n:?}"))
                        .unwrap_or_else(|| format!("#{}", i + 1));
                    out.push(SourceConfig::from_table(table).map_err(|e| {
                        let e = e.trim().replace('\n', " ");
                        parse_err(format!("[[source]] {name} (line {line}): {e}"))
                    })?);
                }
                Some(out)
            }
        };
        let config = Config {
            organisation: raw.organisation,
            paths: raw.paths,
            server: raw.server,
            display: raw.display,
            store: raw.store,
            hub: raw.hub,
            alerts: raw.alerts,
            auth: raw.auth,
            audit: raw.audit,
            sources,
            rules: raw.rules,
            kpis: raw.kpis,
            kpi: raw.kpi,
            reports: raw.reports,
            metrics: raw.metrics,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.display.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "display.timezone {:?} is not an IANA time zone (e.g. \"Asia/Ho_Chi_Minh\")",
                self.display.timezone
            )));
        }
        let mut ids = std::collections::HashSet::new();
        for k in &self.kpis {
            if !ids.insert(k.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "two [[kpi]] tables have the id {:?}",
                    k.id
                )));
            }
            let text = crate::kpi::def::text_of(k);
            if let Err(p) = crate::kpi::def::from_config(k.clone(), &text, "config") {
                return Err(ConfigError::Invalid(format!(
                    "[[kpi]] {:?}: {}",
                    k.id,
                    p.first().map(|p| p.message.as_str()).unwrap_or("invalid")
                )));
            }
        }
        if !matches!(self.display.language.as_str(), "vi" | "en") {
            return Err(ConfigError::Invalid(format!(
                "display.language must be \"vi\" or \"en\", not {:?}",
                self.display.language
            )));
        }
        // A bound set alone meets the default of the other: the range in force must hold.
        let ranges = crate::pipeline::plausible::Ranges::new(&self.metrics);
        for (metric, r) in &self.metrics {
            let bad = [r.min, r.max].into_iter().flatten().any(|b| !b.is_finite());
            let (lo, hi) = ranges.bounds(metric).unwrap_or((r.min, r.max));
            if bad || lo.zip(hi).is_some_and(|(lo, hi)| lo > hi) {
                let show = |b: Option<f64>| b.map_or("none".to_string(), |b| b.to_string());
                return Err(ConfigError::Invalid(format!(
                    "[metrics.{metric}]: min and max must be numbers with min ≤ max \
                     (in force with the defaults: min {}, max {})",
                    show(lo),
                    show(hi)
                )));
            }
        }
        if self.store.batch_max == 0 {
            return Err(ConfigError::Invalid(
                "store.batch_max must be at least 1".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for s in self.sources.iter().flatten() {
            if s.name().is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[source]] has an empty name".into(),
                ));
            }
            if !names.insert(s.name()) {
                return Err(ConfigError::Invalid(format!(
                    "two [[source]] tables are named {:?}",
                    s.name()
                )));
            }
            match s {
                // Checked when read.
                SourceConfig::Mqtt(_)
                | SourceConfig::Http(_)
                | SourceConfig::Websocket(_)
                | SourceConfig::SensorThings(_)
                | SourceConfig::File(_) => {}
                SourceConfig::Simulator(c) => {
                    if c.interval.is_zero() {
                        return Err(ConfigError::Invalid(format!(
                            "source {:?}: interval must be more than 0",
                            c.name
                        )));
                    }
                    if !(c.scale > 0.0 && c.scale <= 100.0) {
                        return Err(ConfigError::Invalid(format!(
                            "source {:?}: scale must be in (0, 100]",
                            c.name
                        )));
                    }
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for r in self.rules.iter().flatten() {
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "two [[rule]] tables are named {:?}",
                    r.name
                )));
            }
        }
        Ok(())
    }

    /// The sources to run: the configured ones, or the demo simulator.
    pub fn effective_sources(&self) -> Vec<SourceConfig> {
        match &self.sources {
            Some(s) => s.iter().filter(|s| s.enabled()).cloned().collect(),
            None => vec![SourceConfig::Simulator(SimulatorConfig::default())],
        }
    }

    /// Drops every simulator source (`--no-demo`).
    pub fn without_demo(mut self) -> Config {
        let sources = self
            .effective_sources()
            .into_iter()
            .filter(|s| !matches!(s, SourceConfig::Simulator(_)))
            .collect();
        self.sources = Some(sources);
        self
    }

    /// The data folder: configured, or `<user data dir>/ioc-console`.
    pub fn data_dir(&self) -> PathBuf {
        self.paths.data.clone().unwrap_or_else(default_data_dir)
    }

    /// The rules folder: configured, or `<data>/rules`.
    pub fn rules_dir(&self) -> PathBuf {
        self.paths
            .rules
            .clone()
            .unwrap_or_else(|| self.data_dir().join("rules"))
    }

    /// The reports folder: configured, or `<data>/reports`.
    pub fn reports_dir(&self) -> PathBuf {
        self.reports
            .folder
            .clone()
            .unwrap_or_else(|| self.data_dir().join("reports"))
    }
}

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ioc-console")
}

/// The rules the demo runs with when the config names none. Thresholds follow Vietnamese
/// practice: PM2.5 above 150 µg/m³ is "very unhealthy" (VN_AQI > 200 band), river gauges carry
/// their alarm levels I/II/III (báo động 1/2/3) as attributes.
pub fn default_rules() -> Vec<RuleConfig> {
    let rule = |name: &str,
                when: &str,
                for_secs: u64,
                severity: Severity,
                category: &str,
                message: &str| RuleConfig {
        name: name.into(),
        when: when.into(),
        for_: Duration::from_secs(for_secs),
        severity,
        message: message.into(),
        category: Some(category.into()),
        domain: None,
        auto_resolve: true,
        escalate_after: None,
        enabled: true,
        ..Default::default()
    };
    let incident = |alerts: u32, within_min: u64| {
        Some(IncidentRuleConfig {
            sop: None,
            alerts,
            within: Duration::from_secs(within_min * 60),
        })
    };
    let mut rules = vec![
        rule(
            "pm25-very-unhealthy",
            "metric == 'pm25' && value > 150.0",
            600,
            Severity::Major,
            "air_quality",
            "PM2.5 {value} µg/m³ > 150 µg/m³ quá 10 phút",
        ),
        rule(
            "pm25-hazardous",
            "metric == 'pm25' && value > 250.0",
            300,
            Severity::Critical,
            "air_quality",
            "PM2.5 {value} µg/m³ ở mức nguy hại (> 250 µg/m³)",
        ),
        rule(
            "water-alarm-1",
            "metric == 'water_level' && value >= entity.attributes.alarm_1 && value < entity.attributes.alarm_2",
            0,
            Severity::Warning,
            "flood",
            "Mực nước {value} m vượt báo động I",
        ),
        rule(
            "water-alarm-2",
            "metric == 'water_level' && value >= entity.attributes.alarm_2 && value < entity.attributes.alarm_3",
            0,
            Severity::Major,
            "flood",
            "Mực nước {value} m vượt báo động II",
        ),
        rule(
            "water-alarm-3",
            "metric == 'water_level' && value >= entity.attributes.alarm_3",
            0,
            Severity::Critical,
            "flood",
            "Mực nước {value} m vượt báo động III",
        ),
        rule(
            "camera-offline",
            "metric == 'online' && value < 0.5",
            300,
            Severity::Major,
            "camera",
            "Camera mất kết nối quá 5 phút",
        ),
        rule(
            "rain-heavy",
            "metric == 'rain_1h' && value >= 50.0",
            0,
            Severity::Major,
            "rain",
            "Mưa rất to: {value} mm/giờ",
        ),
        rule(
            "traffic-jam",
            "metric == 'speed' && value < 10.0",
            600,
            Severity::Warning,
            "traffic",
            "Ùn tắc: tốc độ trung bình {value} km/h quá 10 phút",
        ),
    ];
    // Worked as incidents through the category's SOP: a hazardous episode seen by two
    // stations of a commune, every alarm III, three cameras down in one commune.
    for r in &mut rules {
        r.incident = match r.name.as_str() {
            "pm25-hazardous" => incident(2, 60),
            "water-alarm-3" => incident(1, 60),
            "camera-offline" => incident(3, 30),
            _ => None,
        };
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_demo() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.effective_sources().len(), 1);
        assert!(
            c.rules.is_none(),
            "the demo rules are seeded into the rules folder"
        );
        assert_eq!(c.without_demo().effective_sources().len(), 0);
    }

    /// The README's configuration example is a file that loads, with what it shows.
    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n[paths]").expect("the example") + "```toml\n".len();
        let text = &readme[start..][..readme[start..].find("```").unwrap()];
        let c = Config::parse(text).unwrap_or_else(|e| panic!("README example: {e}"));
        assert_eq!(c.kpis.len(), 1);
        assert_eq!(c.kpi.refresh, Duration::from_secs(30));
        assert_eq!(c.reports.schedule.len(), 1);
        assert!(c.rules.as_ref().is_some_and(|r| r.len() == 3));
    }

    #[test]
    fn full_file_parses() {
        let c = Config::parse(
            r#"
            [paths]
            data = "/tmp/x"
            [server]
            listen = "127.0.0.1:9000"
            [[source]]
            name = "fast"
            kind = "simulator"
            interval = "200ms"
            episode_every = "5s"
            [[rule]]
            name = "r"
            when = "metric == 'pm25' && value > 150.0"
            for = "10m"
            severity = "major"
            message = "m"
            "#,
        )
        .unwrap();
        let SourceConfig::Simulator(s) = &c.effective_sources()[0] else {
            panic!("a simulator")
        };
        assert_eq!(s.interval, Duration::from_millis(200));
        assert_eq!(c.rules.as_ref().unwrap()[0].for_, Duration::from_secs(600));
        assert_eq!(c.data_dir(), PathBuf::from("/tmp/x"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("[server]\nlisten = 'nowhere'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = Config::parse("[server]\nlistn = '127.0.0.1:1'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listn"), "{e}");
        let e = Config::parse("[[rule]]\nname='a'\nwhen='true'\nseverity='huge'\nmessage=''\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("huge") && e.contains("severity"), "{e}");
        let e =
            Config::parse("[server]\n\n[[source]]\nname='a'\nkind='simulator'\ninterval='soon'\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("interval") && e.contains("\"a\"") && e.contains("line 3"),
            "{e}"
        );
        let e = Config::parse("[[source]]\nname='a'\nkind='simulator'\nintervl='5s'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("intervl"), "{e}");
        let e = Config::parse("[display]\nlanguage='fr'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("display.language"), "{e}");
        let e = Config::parse("[[source]]\nname='a'\nkind='telepathy'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("telepathy"), "{e}");
    }
}
