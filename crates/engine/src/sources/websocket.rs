//! WebSocket client (`kind = "websocket"`): a feed that pushes messages, one payload each.
//!
//! ```toml
//! [[source]]
//! name = "city-feed"
//! kind = "websocket"
//! url = "wss://feed.nghean.gov.vn/stream"
//! decoder = "ngsi-ld"
//! subscribe = '{"action": "subscribe", "topics": ["air", "water"]}'   # sent after connecting
//! resume_param = "since"      # reconnecting: ?since=<time of the last message received>
//! headers = { "Authorization" = "Bearer …" }
//! ```
//!
//! A dropped connection is visible at once in `/api/sources` and retried with back-off
//! (1 s doubling to 30 s). With `resume_param`, the server is asked for what was missed.

use super::backoff::Backoff;
use super::SourceCtx;
use crate::decode::{self, DecodeCtx};
use crate::ingest::Item;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use ioc_model::SourceState;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn yes() -> bool {
    true
}
fn ngsi() -> String {
    "ngsi-ld".into()
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebsocketConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub url: String,
    #[serde(default = "ngsi")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default)]
    pub subscribe: Option<String>,
    #[serde(default)]
    pub resume_param: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Observations dated further back than this are refused (default a week).
    #[serde(default = "super::week", with = "humantime_serde")]
    pub max_age: Duration,
}

impl WebsocketConfig {
    pub fn validate(&self) -> Result<(), String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(u.scheme(), "ws" | "wss") {
            return Err(format!("url {:?}: not ws:// or wss://", self.url));
        }
        decode::build(&self.decoder, self.mapping.as_ref()).map(|_| ())
    }

    fn url_since(&self, since: Option<DateTime<Utc>>) -> String {
        match (&self.resume_param, since, url::Url::parse(&self.url)) {
            (Some(p), Some(t), Ok(mut u)) => {
                u.query_pairs_mut().append_pair(p, &t.to_rfc3339());
                u.to_string()
            }
            _ => self.url.clone(),
        }
    }
}

pub async fn run(cfg: WebsocketConfig, ctx: SourceCtx) {
    let decoder = match decode::build(&cfg.decoder, cfg.mapping.as_ref()) {
        Ok(d) => d,
        Err(e) => return ctx.health.error(SourceState::Error, e),
    };
    super::mqtt::rustls_provider();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut last: Option<DateTime<Utc>> = None;
    'outer: loop {
        ctx.health.set_state(SourceState::Connecting);
        let url = cfg.url_since(last);
        let mut req = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return ctx.health.error(SourceState::Error, format!("url: {e}")),
        };
        for (k, v) in &cfg.headers {
            if let (Ok(k), Ok(v)) = (
                k.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
                v.parse::<tokio_tungstenite::tungstenite::http::HeaderValue>(),
            ) {
                req.headers_mut().insert(k, v);
            }
        }
        let connected = tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            c = tokio_tungstenite::connect_async(req) => c,
        };
        let mut ws = match connected {
            Ok((ws, _)) => ws,
            Err(e) => {
                ctx.health
                    .error(SourceState::Disconnected, format!("{url}: {e}"));
                if !backoff.wait(&ctx.cancel).await {
                    break;
                }
                continue;
            }
        };
        if let Some(s) = &cfg.subscribe {
            if let Err(e) = ws.send(Message::Text(s.clone().into())).await {
                ctx.health
                    .error(SourceState::Disconnected, format!("subscribe: {e}"));
                continue;
            }
        }
        ctx.health.set_state(SourceState::Connected);
        backoff.reset();
        loop {
            let msg = tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    let _ = ws.close(None).await;
                    break 'outer;
                }
                m = ws.next() => m,
            };
            let payload = match msg {
                Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                Some(Ok(Message::Close(_))) | None => {
                    ctx.health.error(
                        SourceState::Disconnected,
                        "the server closed the connection",
                    );
                    break;
                }
                Some(Ok(_)) => continue, // ping/pong
                Some(Err(e)) => {
                    ctx.health.error(SourceState::Disconnected, e.to_string());
                    break;
                }
            };
            let now = ctx.clock.now();
            ctx.health.message(now);
            last = Some(now);
            let dctx = DecodeCtx {
                source: &ctx.name,
                origin: Some(&cfg.url),
                received_at: now,
            };
            let items = decoder
                .decode(&payload, &dctx)
                .unwrap_or_else(|reason| vec![Item::Rejected(reason)]);
            let ingest = ctx.ingest(items, &payload, Some(&cfg.url));
            if ctx.sender.send(ingest).await.is_err() {
                break 'outer;
            }
        }
        if !backoff.wait(&ctx.cancel).await {
            break;
        }
    }
    ctx.health.set_state(SourceState::Disconnected);
}

impl super::Source for WebsocketConfig {
    fn name(&self) -> &str {
        &self.name
    }
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn max_age(&self) -> Option<std::time::Duration> {
        Some(self.max_age)
    }
    fn validate(&self) -> Result<(), String> {
        WebsocketConfig::validate(self)
    }
    fn detail(&self) -> Option<String> {
        Some(self.url.clone())
    }
    fn spawn(&self, ctx: SourceCtx) -> tokio::task::JoinHandle<()> {
        let c = self.clone();
        tokio::spawn(async move { run(c, ctx).await })
    }
}
