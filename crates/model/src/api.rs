//! HTTP API request and response bodies (see `docs/api.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/health`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok`, or `degraded` when the store cannot write (the reason is in `store_error`).
    pub status: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seq: u64,
    pub entities: usize,
    pub open_alerts: usize,
    /// Observations committed to the store since start.
    pub observations: u64,
    /// Inputs rejected since start (malformed, unknown entity, …).
    pub rejected: u64,
    #[serde(default)]
    pub store_error: Option<String>,
    /// Display time zone (IANA name).
    pub timezone: String,
    /// Default UI language (`vi` or `en`).
    pub language: String,
    /// This console's name in the federation.
    #[serde(default)]
    pub node: String,
    /// The link to the provincial IOC, on a node that has one (`[upstream]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamLink>,
    /// On the IOC: the nodes that have synced with it, each with its link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeLink>,
}

/// `GET /api/ready`: what a load balancer or systemd needs to know, without a token, and
/// nothing else (no counts, no version, no names).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Readiness {
    /// The process answers (always true in an answer).
    pub up: bool,
    /// It takes work: the store answers and the engine is not stopping.
    pub ready: bool,
    /// The store answered a query and its writer has no error.
    pub store: bool,
}

/// How the link to the upstream IOC is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Everything made here has reached the IOC, and the IOC's news has arrived.
    Connected,
    /// Reachable, and still exchanging what piled up (`backlog`).
    CatchingUp,
    /// Not reachable since `since`.
    Offline,
}

/// This node's link to the IOC (`/api/health` `upstream`, and the feed's `link` frames).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpstreamLink {
    pub state: LinkState,
    /// Operations made here (what people did, alerts raised) the IOC does not have yet.
    pub backlog: u64,
    /// Readings and device changes stored here the IOC has not taken yet.
    #[serde(default)]
    pub data_backlog: u64,
    /// Since when it is in this state.
    pub since: DateTime<Utc>,
    /// The IOC's address.
    pub url: String,
    /// Why the last attempt failed, while offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When an exchange last completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<DateTime<Utc>>,
}

/// A node as the IOC sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeLink {
    pub node: String,
    /// `connected` when it synced in the last 10 seconds, else `offline`.
    pub state: LinkState,
    /// When it last synced.
    pub last_seen: DateTime<Utc>,
    /// Operations of this IOC the node had not received at its last sync.
    pub lag: u64,
}

/// How a source is doing (`GET /api/sources`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Connected,
    Connecting,
    Disconnected,
    Error,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Connected => "connected",
            SourceState::Connecting => "connecting",
            SourceState::Disconnected => "disconnected",
            SourceState::Error => "error",
        }
    }
}

/// One configured source and its live health.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    pub state: SourceState,
    #[serde(default)]
    pub last_message_at: Option<DateTime<Utc>>,
    /// Messages received since start.
    pub messages: u64,
    /// Messages (or items in them) refused since start; each is in the dead letters.
    pub rejected: u64,
    /// Messages per second over the last few seconds.
    pub rate: f64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Where it reads from (URL, topic filters, file…), for people.
    #[serde(default)]
    pub detail: Option<String>,
    /// Added from the admin screen (and so editable there); sources of the config file are
    /// changed in the file.
    #[serde(default)]
    pub managed: bool,
    /// Its configuration as TOML, for a managed source, without its secrets.
    #[serde(default)]
    pub config: Option<String>,
    /// Its secrets (passwords, tokens, header values): whether each is set, never the value.
    #[serde(default)]
    pub secrets: Vec<SecretState>,
}

/// Whether a secret of a source is set (`GET /api/sources`): secrets are write-only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretState {
    /// `password`, `bearer_token`, `headers.X-Api-Key`, `url` (a password inside it).
    pub key: String,
    pub set: bool,
}

/// A refused input (`GET /api/deadletters`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetter {
    pub id: i64,
    pub source: String,
    pub received_at: DateTime<Utc>,
    /// Topic, URL or file it came from.
    #[serde(default)]
    pub origin: Option<String>,
    pub reason: String,
    /// The payload as text (invalid UTF-8 replaced), truncated to a few kilobytes.
    pub payload: String,
    /// Its size before truncation.
    pub size: usize,
    /// Refusals of the same cause this letter stands for (an import's rows for an unknown
    /// entity are one letter with their count).
    #[serde(default = "one")]
    pub count: u64,
    /// Reasons of a few more of them, after `reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

fn one() -> u64 {
    1
}

/// What an import did (`POST /api/import`, `ioc import`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportReport {
    /// The decoder used.
    pub format: String,
    /// Items (entities, observations, alerts) taken in.
    pub accepted: usize,
    /// Of the observations taken in, those dated more than `[alerts] history_after` ago:
    /// history, stored and shown but not evaluated by the live rules (they page no one).
    #[serde(default)]
    pub history: usize,
    /// Items refused, in all.
    #[serde(default)]
    pub refused: usize,
    /// The refusals grouped by cause, in the order each cause first came (also in the dead
    /// letters, one per cause).
    pub rejected: Vec<ImportRejection>,
}

/// Refusals of one cause.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportRejection {
    /// The first one's reason.
    pub reason: String,
    /// How many.
    #[serde(default = "one_usize")]
    pub count: usize,
    /// Reasons of a few more of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

fn one_usize() -> usize {
    1
}

/// `POST /api/alerts/{id}/ack` body (optional).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AckRequest {
    #[serde(default)]
    pub comment: Option<String>,
}

/// The body of `POST /api/alerts/{id}/{action}` (every field optional).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertActionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `assign`: to whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `shelve`: until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// An administrative or organisational unit (province, commune/ward, …).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Unit {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BasemapKind {
    None,
    Geojson,
    Pmtiles,
}

/// `GET /api/basemap`: what the map should draw under the markers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BasemapInfo {
    pub kind: BasemapKind,
    /// Where to fetch it (`/api/basemap/file`), absent for `none`.
    #[serde(default)]
    pub url: Option<String>,
    /// `[west, south, east, north]`.
    #[serde(default)]
    pub bounds: Option<[f64; 4]>,
    /// Vector tile layer holding the boundaries (PMTiles only).
    #[serde(default)]
    pub layer: Option<String>,
    /// Property holding the unit's display name.
    #[serde(default)]
    pub name_field: Option<String>,
    #[serde(default)]
    pub features: Option<usize>,
}

/// One bucket of a time series.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SeriesPoint {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub last: f64,
    pub count: u64,
}

/// `GET /api/entities/{id}/series?metric=M&from=T&to=T`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SeriesResponse {
    pub entity: String,
    pub metric: String,
    pub uom: String,
    pub step_seconds: u64,
    pub points: Vec<SeriesPoint>,
}
