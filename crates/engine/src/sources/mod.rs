//! Sources: where data comes from. Each runs as its own task and talks to the pipeline only
//! through an [`IngestSender`]; a source never touches the store, the rules or the hub.

pub mod backoff;
pub mod file;
pub mod health;
pub mod http;
pub mod mqtt;
pub mod nats;
pub mod secrets;
pub mod sensorthings;
pub mod simulator;
pub mod websocket;

use crate::clock::Clock;
use crate::hub::Hub;
use crate::ingest::{Ingest, Item};
use crate::pipeline::IngestSender;
use health::SourceHealth;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a running source gets.
#[derive(Clone)]
pub struct SourceCtx {
    pub name: Arc<str>,
    pub sender: IngestSender,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
    pub cancel: CancellationToken,
    pub health: Arc<SourceHealth>,
    /// See [`crate::ingest::Ingest::max_age`].
    pub max_age: Option<chrono::Duration>,
}

impl SourceCtx {
    /// A message from this source, with its payload and origin kept for the dead letters.
    pub fn ingest(&self, items: Vec<Item>, payload: &[u8], origin: Option<&str>) -> Ingest {
        let mut ingest = Ingest::new(self.name.clone(), items);
        ingest.payload = Some(Arc::from(payload));
        ingest.origin = origin.map(Arc::from);
        ingest.max_age = self.max_age;
        ingest
    }
}

/// The decoder of each message of a broker source by where it came from (an MQTT topic, a
/// NATS subject): the first of `routes` whose filter matches, in the protocol's own filter
/// syntax, else the source's default decoder.
pub(crate) struct Decoders {
    default: Arc<dyn crate::decode::Decoder>,
    routes: Vec<(String, Arc<dyn crate::decode::Decoder>)>,
    matches: fn(&str, &str) -> bool,
}

impl Decoders {
    /// `matches(origin, filter)` is the protocol's filter matching.
    pub(crate) fn build(
        decoder: &str,
        mapping: Option<&toml::Value>,
        routes: &std::collections::BTreeMap<String, String>,
        matches: fn(&str, &str) -> bool,
    ) -> Result<Decoders, String> {
        let build = crate::decode::build;
        let default = build(decoder, mapping).map_err(|e| format!("decoder: {e}"))?;
        let routes = routes
            .iter()
            .map(|(filter, name)| {
                build(name, mapping)
                    .map(|d| (filter.clone(), d))
                    .map_err(|e| format!("routes {filter:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Decoders {
            default,
            routes,
            matches,
        })
    }

    pub(crate) fn for_origin(&self, origin: &str) -> &Arc<dyn crate::decode::Decoder> {
        self.routes
            .iter()
            .find(|(f, _)| (self.matches)(origin, f))
            .map(|(_, d)| d)
            .unwrap_or(&self.default)
    }
}

/// Hands one broker message to the pipeline; the receiver answers after its commit (when
/// the source may acknowledge it). `None`: the engine is stopping.
pub(crate) async fn deliver(
    ctx: &SourceCtx,
    decoders: &Decoders,
    origin: &str,
    payload: &[u8],
) -> Option<tokio::sync::oneshot::Receiver<crate::ingest::IngestReport>> {
    let now = ctx.clock.now();
    ctx.health.message(now);
    let dctx = crate::decode::DecodeCtx {
        source: &ctx.name,
        origin: Some(origin),
        received_at: now,
    };
    let items = decoders
        .for_origin(origin)
        .decode(payload, &dctx)
        .unwrap_or_else(|reason| vec![Item::Rejected(reason)]);
    let (done, rx) = tokio::sync::oneshot::channel();
    let mut ingest = ctx.ingest(items, payload, Some(origin));
    ingest.done = Some(done);
    ctx.sender.send(ingest).await.ok()?;
    Some(rx)
}

/// The default `max_age` of live sources: a week.
pub fn week() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 24 * 3600)
}

/// One kind of source, as its `[[source]]` table reads. Adding a kind is one type that
/// implements this (next to its code) and one line in [`KINDS`].
pub trait Source: std::fmt::Debug + Send + Sync + Any {
    fn name(&self) -> &str;
    fn enabled(&self) -> bool;
    /// How old an observation from it may be (see [`crate::ingest::Ingest::max_age`]); none
    /// where history is the point (the simulator's backfill, files).
    fn max_age(&self) -> Option<Duration>;
    /// Checks beyond what the table's types say, made when the table is read.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// What `/api/sources` shows as where it reads from.
    fn detail(&self) -> Option<String>;
    /// Starts its task.
    fn spawn(&self, ctx: SourceCtx) -> JoinHandle<()>;
}

type Reader = fn(toml::Value) -> Result<Arc<dyn Source>, String>;

/// Every kind of source: its `kind` and how its table is read.
pub const KINDS: &[(&str, Reader)] = &[
    ("simulator", read::<simulator::SimulatorConfig>),
    ("mqtt", read::<mqtt::MqttConfig>),
    ("nats", read::<nats::NatsConfig>),
    ("http", read::<http::HttpConfig>),
    ("websocket", read::<websocket::WebsocketConfig>),
    ("sensorthings", read::<sensorthings::SensorThingsConfig>),
    ("file", read::<file::FileConfig>),
];

fn read<T: Source + DeserializeOwned>(value: toml::Value) -> Result<Arc<dyn Source>, String> {
    let c = T::deserialize(value).map_err(|e| e.to_string())?;
    c.validate()?;
    Ok(Arc::new(c))
}

/// The values `kind` can take, for messages.
fn kind_names() -> String {
    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// One `[[source]]` table, read by its `kind`.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    kind: &'static str,
    source: Arc<dyn Source>,
}

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
    pub fn from_table(mut table: toml::Table) -> Result<SourceConfig, String> {
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => k,
            Some(other) => return Err(format!("`kind` must be a string, not {other}")),
            None => return Err(format!("missing `kind` (one of {})", kind_names())),
        };
        let Some((kind, read)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            return Err(format!("unknown kind {kind:?} (one of {})", kind_names()));
        };
        Ok(SourceConfig {
            kind,
            source: read(toml::Value::Table(table))?,
        })
    }

    /// A source of a known kind, already read (the demo simulator, tests).
    pub fn of<T: Source>(kind: &'static str, source: T) -> SourceConfig {
        debug_assert!(KINDS.iter().any(|(k, _)| *k == kind));
        SourceConfig {
            kind,
            source: Arc::new(source),
        }
    }

    pub fn name(&self) -> &str {
        self.source.name()
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn max_age(&self) -> Option<Duration> {
        self.source.max_age()
    }

    pub fn enabled(&self) -> bool {
        self.source.enabled()
    }

    /// What `/api/sources` shows as where it reads from.
    pub fn detail(&self) -> Option<String> {
        self.source.detail()
    }

    /// Starts its task.
    pub fn spawn(&self, ctx: SourceCtx) -> JoinHandle<()> {
        self.source.spawn(ctx)
    }

    /// Its settings as their own type, when it is of that kind.
    pub fn settings<T: Source>(&self) -> Option<&T> {
        (self.source.as_ref() as &dyn Any).downcast_ref::<T>()
    }
}
