//! Sources: where data comes from. Each runs as its own task and talks to the pipeline only
//! through an [`IngestSender`]; a source never touches the store, the rules or the hub.

pub mod backoff;
pub mod file;
pub mod health;
pub mod http;
pub mod mqtt;
pub mod secrets;
pub mod sensorthings;
pub mod simulator;
pub mod websocket;

use crate::clock::Clock;
use crate::config::SourceConfig;
use crate::hub::Hub;
use crate::pipeline::{Ingest, IngestSender, Item};
use health::SourceHealth;
use std::sync::Arc;
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
    /// See [`crate::pipeline::Ingest::max_age`].
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

/// The default `max_age` of live sources: a week.
pub fn week() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 24 * 3600)
}

/// What `/api/sources` shows as where a source reads from.
pub fn detail(config: &SourceConfig) -> Option<String> {
    match config {
        SourceConfig::Simulator(c) => Some(format!(
            "Nghệ An demo, every {}",
            humantime::format_duration(c.interval)
        )),
        SourceConfig::Mqtt(c) => Some(format!("{} {}", c.url, c.topics.join(" "))),
        SourceConfig::Http(c) => Some(format!(
            "{} every {}",
            c.url,
            humantime::format_duration(c.interval)
        )),
        SourceConfig::Websocket(c) => Some(c.url.clone()),
        SourceConfig::File(c) => c.dir().ok().map(|d| {
            let pattern = c.pattern.as_deref().unwrap_or("*");
            format!("{}/{pattern}", d.display())
        }),
        SourceConfig::SensorThings(c) => Some(format!(
            "{} every {}",
            c.url,
            humantime::format_duration(c.interval)
        )),
    }
}

/// Starts the task of one configured source.
pub fn spawn(config: &SourceConfig, ctx: SourceCtx) -> JoinHandle<()> {
    match config {
        SourceConfig::Simulator(c) => {
            let c = c.clone();
            tokio::spawn(async move { simulator::run(c, ctx).await })
        }
        SourceConfig::Mqtt(c) => {
            let c = c.clone();
            tokio::spawn(async move { mqtt::run(c, ctx).await })
        }
        SourceConfig::Http(c) => {
            let c = c.clone();
            tokio::spawn(async move { http::run(c, ctx).await })
        }
        SourceConfig::Websocket(c) => {
            let c = c.clone();
            tokio::spawn(async move { websocket::run(c, ctx).await })
        }
        SourceConfig::File(c) => {
            let c = c.clone();
            tokio::spawn(async move { file::run(c, ctx).await })
        }
        SourceConfig::SensorThings(c) => {
            let c = c.clone();
            tokio::spawn(async move { sensorthings::run(c, ctx).await })
        }
    }
}
