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

pub use crate::alerts::{AlertsConfig, NotifyLevel};
pub use crate::audit::AuditConfig;
pub use crate::auth::{AuthConfig, OidcConfig};
pub use crate::hub::HubConfig;
pub use crate::kpi::KpiSettings;
pub use crate::pipeline::plausible::MetricRange;
pub use crate::report::{ReportsConfig, ScheduledReport};
pub use crate::rules::{AreaConfig, IncidentRuleConfig, LevelConfig, RuleConfig};
pub use crate::sources::simulator::SimulatorConfig;
pub use crate::sources::SourceConfig;
pub use crate::store::StoreConfig;
pub use crate::sync::{NodeConfig, UpstreamConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    pub node: NodeConfig,
    /// The provincial IOC this node reports to, if any.
    pub upstream: Option<UpstreamConfig>,
    /// `[[source]]` tables. Absent: the Nghệ An demo simulator.
    pub sources: Option<Vec<SourceConfig>>,
    /// `[[rule]]` tables (read-only on the rules screen). Absent, and no rules folder yet: the
    /// demo rules ([`crate::rules::default_rules`]) are written into the rules folder.
    pub rules: Option<Vec<RuleConfig>>,
    /// `[[kpi]]` tables (read-only on the KPI screen), besides those kept in the store.
    pub kpis: Vec<crate::kpi::def::KpiConfig>,
    pub kpi: KpiSettings,
    pub reports: ReportsConfig,
    /// `[metrics.<name>]`: plausible ranges over the defaults of
    /// [`crate::pipeline::plausible::DEFAULTS`].
    pub metrics: std::collections::BTreeMap<String, MetricRange>,
    /// `[video]`: cameras' streams.
    pub video: crate::video::VideoConfig,
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
    node: NodeConfig,
    upstream: Option<UpstreamConfig>,
    video: crate::video::VideoConfig,
    #[serde(rename = "source")]
    sources: Option<Vec<toml::Spanned<toml::Table>>>,
    /// `[[rule]]` tables (read-only on the rules screen). Absent, and no rules folder yet: the
    /// demo rules ([`crate::rules::default_rules`]) are written into the rules folder.
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
    /// Where the other IOC nodes on the same PostgreSQL store reach this one
    /// (`http://10.20.0.5:8080`), written with the pipeline's lease so that standbys forward
    /// to it. Default: the listen address, when it is a single address.
    pub advertise: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ui_dir: None,
            hosts: Vec::new(),
            secure_cookies: false,
            advertise: None,
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
            node: raw.node,
            upstream: raw.upstream,
            sources,
            rules: raw.rules,
            kpis: raw.kpis,
            kpi: raw.kpi,
            reports: raw.reports,
            metrics: raw.metrics,
            video: raw.video,
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
        if let Some(n) = &self.node.name {
            if !crate::sync::config::valid_node_name(n) {
                return Err(ConfigError::Invalid(format!(
                    "node.name {n:?}: use lowercase letters, digits and '-' (at most 64)"
                )));
            }
        }
        if let Some(u) = &self.upstream {
            if !(u.url.starts_with("http://") || u.url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "upstream.url {:?} must start with http:// or https://",
                    u.url
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
            None => vec![SourceConfig::of("simulator", SimulatorConfig::default())],
        }
    }

    /// Drops every simulator source (`--no-demo`).
    pub fn without_demo(mut self) -> Config {
        let sources = self
            .effective_sources()
            .into_iter()
            .filter(|s| s.settings::<SimulatorConfig>().is_none())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let sources = c.effective_sources();
        let s = sources[0]
            .settings::<SimulatorConfig>()
            .expect("a simulator");
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
