//! NATS JetStream (`kind = "nats"`): the province's message bus past one broker.
//!
//! ```toml
//! [[source]]
//! name = "province-bus"
//! kind = "nats"
//! servers = ["nats://10.0.0.11:4222", "nats://10.0.0.12:4222", "nats://10.0.0.13:4222"]
//! stream = "IOC"                       # the JetStream stream to read
//! subjects = ["ioc.>"]                 # optional: create the stream with these if it is missing
//! replicas = 3                         # of a stream created here
//! retain = "7d"                        # how long a stream created here keeps messages
//! consumer = "ioc-engine"              # durable consumer (default: ioc-<name>)
//! decoder = "ngsi-ld"
//! routes = { "cap.>" = "cap" }         # optional: other decoders for some subjects
//! username = "…"                       # or token = "…"; optional
//! password = "…"
//! ca_file = "/etc/ioc/bus-ca.pem"      # optional, for tls:// servers
//! ack_wait = "30s"
//! ```
//!
//! Devices publish to the stream's subjects, over NATS or through the broker's MQTT listener
//! (an MQTT topic `ioc/vinh/aq` is the subject `ioc.vinh.aq`): MQTT devices connect unchanged.
//!
//! At least once, nothing lost, nothing counted twice: the engine reads through a durable pull
//! consumer with explicit acknowledgement and acknowledges a message only after the batch
//! holding it is committed. The stream is replicated by the cluster; when a broker node dies
//! the client reconnects to another, the consumer's state lives on in the others, and a message
//! whose acknowledgement was lost comes back after `ack_wait`. The store's key (series, time)
//! and the rules' windows (keyed the same way) take a redelivered observation once. A message
//! that cannot be decoded is committed as a dead letter and then acknowledged.

use super::backoff::Backoff;
use super::{deliver, Decoders, SourceCtx};
use crate::ingest::IngestReport;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use ioc_model::SourceState;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

fn default_decoder() -> String {
    "ngsi-ld".into()
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn ack_wait() -> Duration {
    Duration::from_secs(30)
}
fn retain() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
/// How often a quiet pull stream hears from the broker (missing two is an error).
const HEARTBEAT: Duration = Duration::from_secs(5);

fn max_ack_pending() -> i64 {
    20_000
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Every node of the cluster the engine may connect to (the client also learns the others
    /// from the one it reaches).
    pub servers: Vec<String>,
    pub stream: String,
    /// Subjects of a stream this source creates when it does not exist; without them the
    /// stream must exist.
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default = "one")]
    pub replicas: usize,
    #[serde(default = "retain", with = "humantime_serde")]
    pub retain: Duration,
    #[serde(default)]
    pub consumer: Option<String>,
    #[serde(default = "default_decoder")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long the broker waits for an acknowledgement before delivering a message again.
    #[serde(default = "ack_wait", with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Messages delivered and not yet acknowledged, at most (the broker's flow control).
    #[serde(default = "max_ack_pending")]
    pub max_ack_pending: i64,
    /// Observations dated further back than this are refused (default a week).
    #[serde(default = "super::week", with = "humantime_serde")]
    pub max_age: Duration,
}

/// Whether `s` is a NATS subject filter: dot-separated non-empty tokens without spaces, `*`
/// a whole token, `>` only the last.
pub fn valid_filter(s: &str) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && !t.chars().any(char::is_whitespace)
            && (*t == "*" || !t.contains('*'))
            && (*t == ">" && i == tokens.len() - 1 || !t.contains('>'))
    })
}

/// Whether the subject `subject` matches the filter `filter` (`*` one token, `>` the rest).
pub fn matches(subject: &str, filter: &str) -> bool {
    let mut s = subject.split('.');
    for f in filter.split('.') {
        match (f, s.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

impl NatsConfig {
    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("servers is empty: name at least one node of the cluster".into());
        }
        for s in &self.servers {
            let addr = s
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("servers: {:?}: {e}", super::secrets::redact_url(s)))?;
            // A list of URLs is not masked like `password`: keep credentials out of it.
            if addr.has_user_pass() {
                return Err(format!(
                    "servers: {:?}: put credentials in `username` and `password` (or `token`), \
                     not in the URL, where they would show",
                    super::secrets::redact_url(s)
                ));
            }
        }
        if self.stream.is_empty()
            || self
                .stream
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            return Err(format!(
                "stream {:?}: a name without spaces, '.', '*', '>' or slashes",
                self.stream
            ));
        }
        for s in self.subjects.iter().chain(self.routes.keys()) {
            if !valid_filter(s) {
                return Err(format!("{s:?} is not a valid NATS subject filter"));
            }
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(format!("replicas {}: 1 to 5", self.replicas));
        }
        if self.password.is_some() != self.username.is_some() {
            return Err("username and password go together".into());
        }
        if self.token.is_some() && self.username.is_some() {
            return Err("a token or a username and password, not both".into());
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err("ack_wait: at least 1s".into());
        }
        if self.max_ack_pending < 1 {
            return Err("max_ack_pending: at least 1".into());
        }
        self.decoders().map(|_| ())
    }

    fn decoders(&self) -> Result<Decoders, String> {
        Decoders::build(&self.decoder, self.mapping.as_ref(), &self.routes, matches)
    }

    fn consumer_name(&self) -> String {
        self.consumer.clone().unwrap_or_else(|| {
            // A durable name may not hold '.', '*', '>' or spaces.
            let safe: String = self
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("ioc-{safe}")
        })
    }

    fn options(&self, health: Arc<super::health::SourceHealth>) -> async_nats::ConnectOptions {
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("ioc {}", self.name))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((250 * attempts as u64).min(5_000))
            })
            .event_callback(move |event| {
                let health = health.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            health.set_state(SourceState::Connected);
                        }
                        async_nats::Event::Disconnected => {
                            health.error(
                                SourceState::Disconnected,
                                "lost the connection to the NATS server; reconnecting",
                            );
                        }
                        async_nats::Event::ServerError(e) => {
                            tracing::warn!("nats: server error: {e}");
                        }
                        async_nats::Event::ClientError(e) => {
                            tracing::warn!("nats: client error: {e}");
                        }
                        _ => {}
                    }
                }
            });
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        if let Some(ca) = &self.ca_file {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        o
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: self.subjects.clone(),
            num_replicas: self.replicas,
            max_age: self.retain,
            storage: stream::StorageType::File,
            // Devices that publish with a message id are stored once even when they send
            // again after a lost acknowledgement.
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer_name()),
            description: Some(format!("IOC Console source {:?}", self.name)),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }
}

/// The stream and the durable consumer, made when missing.
async fn consumer(
    cfg: &NatsConfig,
    js: &jetstream::Context,
) -> Result<jetstream::consumer::PullConsumer, String> {
    let stream = if cfg.subjects.is_empty() {
        js.get_stream(&cfg.stream)
            .await
            .map_err(|e| format!("stream {:?}: {e}", cfg.stream))?
    } else {
        js.get_or_create_stream(cfg.stream_config())
            .await
            .map_err(|e| format!("stream {:?}: {e}", cfg.stream))?
    };
    stream
        .get_or_create_consumer(&cfg.consumer_name(), cfg.consumer_config())
        .await
        .map_err(|e| format!("consumer {:?}: {e}", cfg.consumer_name()))
}

/// The source task.
pub async fn run(cfg: NatsConfig, ctx: SourceCtx) {
    let decoders = match cfg.decoders() {
        Ok(d) => d,
        Err(e) => {
            ctx.health.error(SourceState::Error, e);
            return;
        }
    };
    ctx.health.set_state(SourceState::Connecting);
    let client = tokio::select! {
        _ = ctx.cancel.cancelled() => return,
        c = cfg.options(ctx.health.clone()).connect(cfg.servers.as_slice()) => c,
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            ctx.health
                .error(SourceState::Error, format!("connect: {e}"));
            return;
        }
    };
    let js = jetstream::new(client.clone());

    // Acknowledge each message once its batch is committed, in arrival order. Unbounded: the
    // reader must never wait on acknowledgements (back-pressure comes from the pipeline, in
    // `deliver`, and from the consumer's max_ack_pending).
    let (ack_tx, mut ack_rx) =
        mpsc::unbounded_channel::<(jetstream::Message, oneshot::Receiver<IngestReport>)>();
    let acks = tokio::spawn(async move {
        while let Some((message, committed)) = ack_rx.recv().await {
            if committed.await.is_err() {
                tracing::debug!("nats: engine stopping, leaving a message unacknowledged");
                break; // the broker delivers it again after ack_wait
            }
            if let Err(e) = message.ack().await {
                // Not fatal: the broker delivers it again and the store keeps it once.
                tracing::debug!("nats: cannot acknowledge: {e}");
            }
        }
    });

    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    'outer: loop {
        let consumer = tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            c = consumer(&cfg, &js) => c,
        };
        let mut messages = match consumer {
            Ok(c) => match c.stream().heartbeat(HEARTBEAT).messages().await {
                Ok(m) => m,
                Err(e) => {
                    ctx.health
                        .error(SourceState::Disconnected, format!("pull: {e}"));
                    if !backoff.wait(&ctx.cancel).await {
                        break;
                    }
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!("nats {:?}: {e}; trying again", cfg.name);
                ctx.health.error(SourceState::Disconnected, e);
                if !backoff.wait(&ctx.cancel).await {
                    break;
                }
                continue;
            }
        };
        ctx.health.set_state(SourceState::Connected);
        tracing::info!(
            "nats {:?}: reading stream {:?} through consumer {:?}",
            cfg.name,
            cfg.stream,
            cfg.consumer_name()
        );
        // After an error of the pull stream, the source shows Connected again on the next
        // message, or once no error came for two heartbeats while the client is connected
        // (a quiet stream delivers nothing to tell it works, but a broken pull keeps failing).
        let mut troubled: Option<tokio::time::Instant> = None;
        let mut check = tokio::time::interval(HEARTBEAT);
        loop {
            let next = tokio::select! {
                _ = ctx.cancel.cancelled() => break 'outer,
                m = messages.next() => m,
                _ = check.tick() => {
                    if troubled.is_some_and(|t| t.elapsed() > 2 * HEARTBEAT)
                        && client.connection_state() == async_nats::connection::State::Connected
                    {
                        troubled = None;
                        ctx.health.set_state(SourceState::Connected);
                    }
                    continue;
                }
            };
            match next {
                Some(Ok(message)) => {
                    backoff.reset();
                    if troubled.take().is_some() {
                        ctx.health.set_state(SourceState::Connected);
                    }
                    let Some(committed) =
                        deliver(&ctx, &decoders, message.subject.as_str(), &message.payload).await
                    else {
                        break 'outer; // engine stopping
                    };
                    if ack_tx.send((message, committed)).is_err() {
                        break 'outer;
                    }
                }
                Some(Err(e)) => {
                    use pull::MessagesErrorKind as K;
                    match e.kind() {
                        // The pull stream asks again by itself (a node died, the client is
                        // reconnecting, the consumer's leader moved).
                        K::MissingHeartbeat | K::Pull | K::NoResponders => {
                            troubled = Some(tokio::time::Instant::now());
                            ctx.health
                                .error(SourceState::Disconnected, format!("stream: {e}"));
                            tracing::warn!("nats {:?}: {e}", cfg.name);
                        }
                        _ => {
                            ctx.health
                                .error(SourceState::Disconnected, format!("stream: {e}"));
                            tracing::warn!("nats {:?}: {e}; making the consumer again", cfg.name);
                            if !backoff.wait(&ctx.cancel).await {
                                break 'outer;
                            }
                            continue 'outer;
                        }
                    }
                }
                None => {
                    if !backoff.wait(&ctx.cancel).await {
                        break 'outer;
                    }
                    continue 'outer;
                }
            }
        }
    }
    drop(ack_tx);
    // The acknowledgements already committed go out, then the connection is flushed.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = acks.await;
        let _ = client.flush().await;
    })
    .await;
    ctx.health.set_state(SourceState::Disconnected);
}

impl super::Source for NatsConfig {
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
        NatsConfig::validate(self)
    }
    fn detail(&self) -> Option<String> {
        Some(format!("{} stream {}", self.servers.join(","), self.stream))
    }
    fn spawn(&self, ctx: SourceCtx) -> tokio::task::JoinHandle<()> {
        let c = self.clone();
        tokio::spawn(async move { run(c, ctx).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeCtx;

    fn cfg(toml_text: &str) -> NatsConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn subject_filters_match_as_nats_does() {
        assert!(matches("ioc.vinh.aq", "ioc.>"));
        assert!(matches("ioc.vinh.aq", "ioc.*.aq"));
        assert!(matches("ioc.vinh.aq", "ioc.vinh.aq"));
        assert!(!matches("ioc", "ioc.>"));
        assert!(!matches("ioc.vinh", "ioc.*.aq"));
        assert!(!matches("ioc.vinh.aq.x", "ioc.*.aq"));
        assert!(!matches("cap.vinh", "ioc.>"));
        for good in ["ioc.>", "a.*.b", ">", "*", "ioc.vinh-1.aq_2"] {
            assert!(valid_filter(good), "{good}");
        }
        for bad in ["", "ioc.", ".ioc", "a..b", "a.>.b", "a.b*", "a b", "a.>x"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn the_interface_example_reads_and_checks() {
        let c = cfg(r#"
            name = "province bus"
            servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
            stream = "IOC"
            subjects = ["ioc.>"]
            replicas = 3
            routes = { "cap.>" = "cap" }
        "#);
        c.validate().unwrap();
        assert_eq!(c.consumer_name(), "ioc-province_bus");
        assert_eq!(c.ack_wait, Duration::from_secs(30));
        let s = c.stream_config();
        assert_eq!(
            (s.num_replicas, s.subjects.clone()),
            (3, vec!["ioc.>".into()])
        );
        let k = c.consumer_config();
        assert_eq!(k.durable_name.as_deref(), Some("ioc-province_bus"));
        assert_eq!(k.ack_policy, jetstream::consumer::AckPolicy::Explicit);
        for (bad, why) in [
            (
                NatsConfig {
                    servers: vec![],
                    ..c.clone()
                },
                "servers",
            ),
            (
                NatsConfig {
                    stream: "a.b".into(),
                    ..c.clone()
                },
                "stream",
            ),
            (
                NatsConfig {
                    subjects: vec!["ioc.>.x".into()],
                    ..c.clone()
                },
                "not a valid NATS subject filter",
            ),
            (
                NatsConfig {
                    replicas: 7,
                    ..c.clone()
                },
                "replicas",
            ),
            (
                NatsConfig {
                    username: Some("u".into()),
                    ..c.clone()
                },
                "together",
            ),
            (
                NatsConfig {
                    decoder: "xml".into(),
                    ..c.clone()
                },
                "unknown decoder",
            ),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let d = c.decoders().unwrap();
        let ctx = DecodeCtx {
            source: "m",
            origin: None,
            received_at: chrono::Utc::now(),
        };
        let e = d.for_origin("cap.nghean").decode(b"{}", &ctx).unwrap_err();
        assert!(e.contains("XML") || e.contains("CAP"), "{e}");
    }
}
