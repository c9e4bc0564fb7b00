//! MQTT (`kind = "mqtt"`), protocol 3.1.1 or 5, plain or TLS, through rumqttc.
//!
//! ```toml
//! [[source]]
//! name = "province-mqtt"
//! kind = "mqtt"
//! url = "mqtt://127.0.0.1:1883"        # mqtts:// for TLS
//! topics = ["ioc/#"]
//! decoder = "ngsi-ld"
//! routes = { "cap/#" = "cap" }         # optional: other decoders for some topics
//! protocol = "3.1.1"                   # or "5"
//! client_id = "ioc-console"            # default: ioc-<name>
//! username = "…"                       # optional
//! password = "…"
//! ca_file = "/etc/ioc/broker-ca.pem"   # optional, for mqtts:// (default: the system's roots)
//! qos = 1
//! keep_alive = "30s"
//! clean_session = false
//! ```
//!
//! At least once, nothing lost: with QoS 1 the broker's message is acknowledged only after
//! the batch holding it is committed to SQLite (manual acks, in arrival order). If the engine
//! dies first, the broker redelivers it after reconnection (persistent session,
//! `clean_session = false`); the store's key (series, time) drops the duplicate. A message
//! that cannot be decoded is committed as a dead letter and then acknowledged: it is kept,
//! not redelivered forever.

use super::backoff::Backoff;
use super::{deliver, Decoders, SourceCtx};
use crate::ingest::IngestReport;
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
fn one() -> u8 {
    1
}
fn keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn v311() -> String {
    "3.1.1".into()
}
fn yes() -> bool {
    true
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub url: String,
    pub topics: Vec<String>,
    #[serde(default = "default_decoder")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    #[serde(default = "v311")]
    pub protocol: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "one")]
    pub qos: u8,
    #[serde(default = "keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    #[serde(default)]
    pub clean_session: bool,
    /// Observations dated further back than this are refused (default a week).
    #[serde(default = "super::week", with = "humantime_serde")]
    pub max_age: Duration,
}

/// Where to connect, read from the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttConfig {
    pub fn broker(&self) -> Result<Broker, String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            s => {
                return Err(format!(
                    "url {:?}: scheme {s:?} is not mqtt:// or mqtts://",
                    self.url
                ))
            }
        };
        let host = u
            .host_str()
            .ok_or_else(|| format!("url {:?} has no host", self.url))?
            .to_string();
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(Broker { host, port, tls })
    }

    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), String> {
        self.broker()?;
        if self.topics.is_empty() {
            return Err("topics is empty: subscribe to at least one topic filter".into());
        }
        for t in self.topics.iter().chain(self.routes.keys()) {
            if !rumqttc::valid_filter(t) {
                return Err(format!("{t:?} is not a valid MQTT topic filter"));
            }
        }
        if !matches!(self.protocol.as_str(), "3.1.1" | "5") {
            return Err(format!("protocol {:?}: \"3.1.1\" or \"5\"", self.protocol));
        }
        if self.qos > 1 {
            return Err("qos: 0 or 1 (QoS 2 brings nothing over 1 with idempotent storage)".into());
        }
        self.decoders().map(|_| ())
    }

    fn decoders(&self) -> Result<Decoders, String> {
        Decoders::build(
            &self.decoder,
            self.mapping.as_ref(),
            &self.routes,
            rumqttc::matches,
        )
    }
}

/// Makes sure rustls has a crypto provider (ring) for the whole process.
pub fn rustls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_config(ca_file: Option<&PathBuf>) -> Result<rumqttc::TlsConfiguration, String> {
    rustls_provider();
    if let Some(f) = ca_file {
        let ca = std::fs::read(f).map_err(|e| format!("ca_file {}: {e}", f.display()))?;
        return Ok(rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        });
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// The source task.
pub async fn run(cfg: MqttConfig, ctx: SourceCtx) {
    let (broker, decoders) = match (cfg.broker(), cfg.decoders()) {
        (Ok(b), Ok(d)) => (b, d),
        (Err(e), _) | (_, Err(e)) => {
            ctx.health.error(SourceState::Error, e);
            return;
        }
    };
    let client_id = cfg
        .client_id
        .clone()
        .unwrap_or_else(|| format!("ioc-{}", cfg.name));
    let result = if cfg.protocol == "5" {
        session::<V5>(&cfg, &broker, &client_id, &decoders, &ctx).await
    } else {
        session::<V311>(&cfg, &broker, &client_id, &decoders, &ctx).await
    };
    match result {
        Ok(()) => ctx.health.set_state(SourceState::Disconnected),
        Err(e) => ctx.health.error(SourceState::Error, e),
    }
}

/// What the session loop needs of a protocol version; rumqttc has one API per version.
trait Proto {
    type Client: Clone + Send + Sync + 'static;
    type Events: Send;
    type Publish: Send + 'static;
    fn connect(
        cfg: &MqttConfig,
        broker: &Broker,
        client_id: &str,
    ) -> Result<(Self::Client, Self::Events), String>;
    fn poll(
        events: &mut Self::Events,
    ) -> impl Future<Output = Result<Incoming<Self::Publish>, String>> + Send;
    fn subscribe(
        c: &Self::Client,
        filter: String,
        qos1: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn ack(c: &Self::Client, p: &Self::Publish) -> impl Future<Output = Result<(), String>> + Send;
    fn disconnect(c: &Self::Client) -> impl Future<Output = ()> + Send;
    fn topic(p: &Self::Publish) -> String;
    fn payload(p: &Self::Publish) -> &[u8];
    fn is_qos0(p: &Self::Publish) -> bool;
}

enum Incoming<P> {
    ConnAck,
    Publish(P),
    Other,
}

use std::future::Future;

/// One broker session, reconnecting with back-off until cancelled.
async fn session<P: Proto>(
    cfg: &MqttConfig,
    broker: &Broker,
    client_id: &str,
    decoders: &Decoders,
    ctx: &SourceCtx,
) -> Result<(), String> {
    let (client, mut events) = P::connect(cfg, broker, client_id)?;
    // Acknowledge in arrival order, each once its batch is committed. Unbounded on purpose:
    // the acknowledgements go out through the event loop this task polls, so this task must
    // never wait on them (back-pressure comes from the pipeline, in `deliver`).
    let (ack_tx, mut ack_rx) =
        mpsc::unbounded_channel::<(P::Publish, oneshot::Receiver<IngestReport>)>();
    let acker = client.clone();
    let acks = tokio::spawn(async move {
        while let Some((publish, committed)) = ack_rx.recv().await {
            if committed.await.is_err() {
                tracing::debug!("mqtt: engine stopping, leaving a message unacknowledged");
                break; // engine stopping: unacknowledged, the broker keeps it
            }
            if let Err(e) = P::ack(&acker, &publish).await {
                tracing::debug!("mqtt: cannot acknowledge: {e}");
                break;
            }
        }
        tracing::debug!("mqtt: acknowledger stopped");
    });
    ctx.health.set_state(SourceState::Connecting);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let event = tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            e = P::poll(&mut events) => e,
        };
        match event {
            Ok(Incoming::ConnAck) => {
                backoff.reset();
                for t in &cfg.topics {
                    P::subscribe(&client, t.clone(), cfg.qos == 1).await?;
                }
                ctx.health.set_state(SourceState::Connected);
                tracing::info!(
                    "mqtt {:?}: connected to {}:{}, subscribed to {:?}",
                    cfg.name,
                    broker.host,
                    broker.port,
                    cfg.topics
                );
            }
            Ok(Incoming::Publish(publish)) => {
                let topic = P::topic(&publish);
                let Some(committed) = deliver(ctx, decoders, &topic, P::payload(&publish)).await
                else {
                    break; // engine stopping
                };
                if !P::is_qos0(&publish) && ack_tx.send((publish, committed)).is_err() {
                    break;
                }
            }
            Ok(Incoming::Other) => {}
            Err(e) => {
                // A broker that refuses us (certificate, credentials) will not change its
                // mind by itself: that is an error to fix, not a dropped connection.
                let lower = e.to_lowercase();
                let state = if [
                    "certificate",
                    "tls",
                    "not authorized",
                    "bad user",
                    "password",
                ]
                .iter()
                .any(|w| lower.contains(w))
                {
                    SourceState::Error
                } else {
                    SourceState::Disconnected
                };
                ctx.health.error(state, e.clone());
                tracing::warn!("mqtt {:?}: {e}; reconnecting", cfg.name);
                if !backoff.wait(&ctx.cancel).await {
                    break;
                }
                ctx.health.set_state(SourceState::Connecting);
            }
        }
    }
    drop(ack_tx);
    // Let the acknowledgements already committed go out, then leave cleanly. They and the
    // disconnect travel through the event loop, so it is polled meanwhile (waiting for them
    // without polling it would wait for ever once its request queue is full).
    let stop_acks = acks.abort_handle();
    let drain = async {
        let _ = acks.await;
        P::disconnect(&client).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::pin!(drain);
        let mut connected = true;
        loop {
            tokio::select! {
                _ = &mut drain => break,
                e = P::poll(&mut events), if connected => connected = e.is_ok(),
            }
        }
        // Until the broker closes the connection after the disconnect.
        while connected && P::poll(&mut events).await.is_ok() {}
    })
    .await;
    stop_acks.abort();
    Ok(())
}

/// MQTT 3.1.1.
struct V311;

impl Proto for V311 {
    type Client = rumqttc::AsyncClient;
    type Events = rumqttc::EventLoop;
    type Publish = rumqttc::Publish;

    fn connect(
        cfg: &MqttConfig,
        broker: &Broker,
        client_id: &str,
    ) -> Result<(Self::Client, Self::Events), String> {
        let mut o = rumqttc::MqttOptions::new(client_id, broker.host.clone(), broker.port);
        o.set_keep_alive(cfg.keep_alive.max(Duration::from_secs(1)));
        o.set_manual_acks(true);
        o.set_clean_session(cfg.clean_session);
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        if broker.tls {
            o.set_transport(rumqttc::Transport::Tls(tls_config(cfg.ca_file.as_ref())?));
        }
        Ok(rumqttc::AsyncClient::new(o, 256))
    }

    async fn poll(events: &mut Self::Events) -> Result<Incoming<Self::Publish>, String> {
        use rumqttc::{Event, Packet};
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Incoming::ConnAck),
            Ok(Event::Incoming(Packet::Publish(p))) => Ok(Incoming::Publish(p)),
            Ok(_) => Ok(Incoming::Other),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn subscribe(c: &Self::Client, filter: String, qos1: bool) -> Result<(), String> {
        let qos = if qos1 {
            rumqttc::QoS::AtLeastOnce
        } else {
            rumqttc::QoS::AtMostOnce
        };
        c.subscribe(filter, qos).await.map_err(|e| e.to_string())
    }

    async fn ack(c: &Self::Client, p: &Self::Publish) -> Result<(), String> {
        c.ack(p).await.map_err(|e| e.to_string())
    }

    async fn disconnect(c: &Self::Client) {
        let _ = c.disconnect().await;
    }

    fn topic(p: &Self::Publish) -> String {
        p.topic.clone()
    }

    fn payload(p: &Self::Publish) -> &[u8] {
        &p.payload
    }

    fn is_qos0(p: &Self::Publish) -> bool {
        p.qos == rumqttc::QoS::AtMostOnce
    }
}

/// MQTT 5.
struct V5;

impl Proto for V5 {
    type Client = rumqttc::v5::AsyncClient;
    type Events = rumqttc::v5::EventLoop;
    type Publish = rumqttc::v5::mqttbytes::v5::Publish;

    fn connect(
        cfg: &MqttConfig,
        broker: &Broker,
        client_id: &str,
    ) -> Result<(Self::Client, Self::Events), String> {
        let mut o = rumqttc::v5::MqttOptions::new(client_id, broker.host.clone(), broker.port);
        o.set_keep_alive(cfg.keep_alive.max(Duration::from_secs(1)));
        o.set_manual_acks(true);
        o.set_clean_start(cfg.clean_session);
        if !cfg.clean_session {
            // Keep the session (and our unacknowledged messages) for a day.
            o.set_session_expiry_interval(Some(86_400));
        }
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        if broker.tls {
            o.set_transport(rumqttc::Transport::Tls(tls_config(cfg.ca_file.as_ref())?));
        }
        Ok(rumqttc::v5::AsyncClient::new(o, 256))
    }

    async fn poll(events: &mut Self::Events) -> Result<Incoming<Self::Publish>, String> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::Event;
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Incoming::ConnAck),
            Ok(Event::Incoming(Packet::Publish(p))) => Ok(Incoming::Publish(p)),
            Ok(_) => Ok(Incoming::Other),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn subscribe(c: &Self::Client, filter: String, qos1: bool) -> Result<(), String> {
        use rumqttc::v5::mqttbytes::QoS;
        let qos = if qos1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        c.subscribe(filter, qos).await.map_err(|e| e.to_string())
    }

    async fn ack(c: &Self::Client, p: &Self::Publish) -> Result<(), String> {
        c.ack(p).await.map_err(|e| e.to_string())
    }

    async fn disconnect(c: &Self::Client) {
        let _ = c.disconnect().await;
    }

    fn topic(p: &Self::Publish) -> String {
        String::from_utf8_lossy(&p.topic).into_owned()
    }

    fn payload(p: &Self::Publish) -> &[u8] {
        &p.payload
    }

    fn is_qos0(p: &Self::Publish) -> bool {
        p.qos == rumqttc::v5::mqttbytes::QoS::AtMostOnce
    }
}

impl super::Source for MqttConfig {
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
        MqttConfig::validate(self)
    }
    fn detail(&self) -> Option<String> {
        Some(format!("{} {}", self.url, self.topics.join(" ")))
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

    fn cfg(toml_text: &str) -> MqttConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn the_interface_example_reads_and_checks() {
        let c = cfg(r#"
            name = "province-mqtt"
            url = "mqtt://127.0.0.1:1883"
            topics = ["ioc/#"]
            decoder = "ngsi-ld"
        "#);
        c.validate().unwrap();
        assert_eq!(
            c.broker().unwrap(),
            Broker {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(c.qos, 1);
        assert!(!c.clean_session);
        let tls = MqttConfig {
            url: "mqtts://broker.nghean.gov.vn".into(),
            ..c.clone()
        };
        assert_eq!(tls.broker().unwrap().port, 8883);
        for (bad, why) in [
            (
                MqttConfig {
                    url: "http://x".into(),
                    ..c.clone()
                },
                "scheme",
            ),
            (
                MqttConfig {
                    topics: vec![],
                    ..c.clone()
                },
                "topics",
            ),
            (
                MqttConfig {
                    topics: vec!["a/#/b".into()],
                    ..c.clone()
                },
                "not a valid MQTT topic filter",
            ),
            (
                MqttConfig {
                    decoder: "xml".into(),
                    ..c.clone()
                },
                "unknown decoder",
            ),
            (
                MqttConfig {
                    protocol: "4".into(),
                    ..c.clone()
                },
                "protocol",
            ),
            (
                MqttConfig {
                    qos: 2,
                    ..c.clone()
                },
                "qos",
            ),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn routes_pick_the_decoder_by_topic() {
        let c = cfg(r##"
            name = "m"
            url = "mqtt://h"
            topics = ["#"]
            routes = { "cap/#" = "cap" }
        "##);
        let d = c.decoders().unwrap();
        let ctx = DecodeCtx {
            source: "m",
            origin: None,
            received_at: chrono::Utc::now(),
        };
        let e = d.for_origin("cap/nghean").decode(b"{}", &ctx).unwrap_err();
        assert!(e.contains("XML") || e.contains("CAP"), "{e}");
        let e = d.for_origin("ioc/x").decode(b"<alert/>", &ctx).unwrap_err();
        assert!(e.contains("JSON"), "{e}");
    }
}
