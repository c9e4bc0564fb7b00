//! OGC SensorThings API 1.1 polling (`kind = "sensorthings"`).
//!
//! ```toml
//! [[source]]
//! name = "province-sta"
//! kind = "sensorthings"
//! url = "https://sta.nghean.gov.vn/FROST-Server/v1.1"   # the service root
//! interval = "1m"
//! decoder = "sensorthings"            # the only one that fits; may be left out
//! time_property = "phenomenonTime"    # or "resultTime", for servers that cannot filter
//!                                     # on phenomenonTime
//! observations = "per_datastream"     # or "collection": one request for all (FROST)
//! lookback = "1d"                     # how far back the first poll reads
//! overlap = "5m"                      # each poll re-reads this much before the last one
//! bearer_token = "…"
//! headers = { "X-Api-Key" = "…" }
//! [source.mapping]                    # optional, see the sensorthings decoder
//! id_prefix = "sta-"
//! ```
//!
//! Each poll reads which Datastreams observe which ObservedProperty (from the
//! ObservedProperties' side: servers agree on to-many expansions, some get to-one ones
//! wrong), every Thing with its Locations and Datastreams (so new stations appear, moved
//! ones move), then the Observations since the last poll with
//! `$filter=<time_property> gt <since>`: by default from each Datastream's Observations
//! link, which every server understands; with `observations = "collection"` in one query
//! for all, each with its Datastream, Thing and ObservedProperty expanded (fewer requests,
//! but django-ogc-sensorthings 1.2 expands the wrong Datastream there). Pages are followed
//! through `@iot.nextLink`. `since` is the start
//! of the last good poll minus `overlap`, which absorbs clock skew between the server and
//! us and observations posted late. What recent polls handed over is not handed over again
//! (nor refused again), and what is read twice is stored once anyway (the store keeps one
//! value per series and time). A failed poll is retried with back-off and shown in
//! `/api/sources`.

use super::backoff::Backoff;
use super::SourceCtx;
use crate::decode::{self, DecodeCtx, Decoder};
use crate::ingest::Item;
use chrono::{DateTime, SecondsFormat, Utc};
use ioc_model::SourceState;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

fn yes() -> bool {
    true
}
fn minute() -> Duration {
    Duration::from_secs(60)
}
fn thirty() -> Duration {
    Duration::from_secs(30)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}
fn day() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn hundred() -> usize {
    100
}
fn decoder_name() -> String {
    "sensorthings".into()
}
fn phenomenon_time() -> String {
    "phenomenonTime".into()
}

/// How the Observations are read.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObservationsQuery {
    /// `Datastreams(id)/Observations?$filter=…` for each Datastream: one request per
    /// Datastream and poll, understood by every server.
    #[default]
    PerDatastream,
    /// One `Observations?$filter=…&$expand=Datastream(…)` request (and its pages) for all:
    /// far fewer requests, for servers that expand correctly (FROST does).
    Collection,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SensorThingsConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The service root, ending in `/v1.1` (or `/v1.0`).
    pub url: String,
    #[serde(default = "minute", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "decoder_name")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default = "phenomenon_time")]
    pub time_property: String,
    #[serde(default = "day", with = "humantime_serde")]
    pub lookback: Duration,
    #[serde(default = "five_minutes", with = "humantime_serde")]
    pub overlap: Duration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub observations: ObservationsQuery,
    /// Pages followed per collection and poll.
    #[serde(default = "hundred")]
    pub max_pages: usize,
    #[serde(default = "thirty", with = "humantime_serde")]
    pub timeout: Duration,
    /// Observations dated further back than this are refused (default a week).
    #[serde(default = "super::week", with = "humantime_serde")]
    pub max_age: Duration,
}

impl SensorThingsConfig {
    pub fn validate(&self) -> Result<(), String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("url {:?}: not http:// or https://", self.url));
        }
        if self.interval < Duration::from_secs(1) {
            return Err("interval: at least 1s".into());
        }
        if self.decoder != "sensorthings" {
            return Err(format!(
                "decoder {:?}: a sensorthings source reads with the \"sensorthings\" decoder",
                self.decoder
            ));
        }
        if !matches!(self.time_property.as_str(), "phenomenonTime" | "resultTime") {
            return Err(format!(
                "time_property {:?}: \"phenomenonTime\" or \"resultTime\"",
                self.time_property
            ));
        }
        decode::build(&self.decoder, self.mapping.as_ref()).map(|_| ())
    }

    /// `<root>/<path>` with the query options.
    fn collection(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, String> {
        let root = self.url.trim_end_matches('/');
        let mut u = url::Url::parse(&format!("{root}/{path}")).map_err(|e| format!("url: {e}"))?;
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(u)
    }

    /// Every Thing with its Locations and Datastreams.
    pub fn things_url(&self) -> Result<url::Url, String> {
        self.collection("Things", &[("$expand", "Locations,Datastreams".into())])
    }

    /// Every ObservedProperty with the ids of the Datastreams that observe it.
    pub fn properties_url(&self) -> Result<url::Url, String> {
        self.collection(
            "ObservedProperties",
            &[
                ("$select", "id,name,definition".into()),
                ("$expand", "Datastreams($select=id)".into()),
            ],
        )
    }

    /// A Datastream's Observations link, filtered on time.
    pub fn filtered(&self, mut link: url::Url, since: DateTime<Utc>) -> url::Url {
        link.query_pairs_mut().append_pair(
            "$filter",
            &format!(
                "{} gt {}",
                self.time_property,
                since.to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
        );
        link
    }

    /// The Observations since `since`, each with its Datastream, Thing and ObservedProperty.
    pub fn observations_url(&self, since: DateTime<Utc>) -> Result<url::Url, String> {
        self.collection(
            "Observations",
            &[
                (
                    "$filter",
                    format!(
                        "{} gt {}",
                        self.time_property,
                        since.to_rfc3339_opts(SecondsFormat::Millis, true)
                    ),
                ),
                (
                    "$expand",
                    "Datastream($select=id,name;$expand=Thing($select=id),ObservedProperty($select=name,definition))"
                        .into(),
                ),
            ],
        )
    }
}

/// What recent polls already handed to the pipeline, by a hash of each element: the overlap
/// and the Things read on every poll are not decoded again (and what was refused is not
/// refused again on every poll). An element not seen for `keep` polls is forgotten.
#[derive(Default)]
struct Seen {
    poll: u64,
    hashes: HashMap<u64, u64>,
}

impl Seen {
    fn fresh(&mut self, element: &serde_json::Value) -> bool {
        let mut h = std::hash::DefaultHasher::new();
        element.to_string().hash(&mut h);
        self.hashes.insert(h.finish(), self.poll).is_none()
    }

    fn next_poll(&mut self, keep: u64) {
        self.poll += 1;
        let poll = self.poll;
        self.hashes.retain(|_, seen| poll - *seen <= keep);
    }
}

/// The elements of a page not handed over before (the page itself if it is not a
/// collection); `None` if there are none.
fn unseen(page: &Value, seen: &mut Seen) -> Option<Vec<Value>> {
    let Some(values) = page.get("value").and_then(Value::as_array) else {
        return Some(vec![page.clone()]);
    };
    let fresh: Vec<Value> = values.iter().filter(|v| seen.fresh(v)).cloned().collect();
    (!fresh.is_empty()).then_some(fresh)
}

/// The key of an `@iot.id` (a number or a string) in maps.
fn id_key(v: &Value) -> Option<String> {
    match v.get("@iot.id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sets each Datastream's ObservedProperty of a page of Things from `properties` (read
/// from the ObservedProperties side, where the relation is to-many), and returns each
/// Datastream with its Thing and ObservedProperty and where its Observations are.
fn join_datastreams(
    page: &mut Value,
    properties: &HashMap<String, Value>,
) -> Vec<(url::Url, Value)> {
    let mut out = Vec::new();
    let things = page.get_mut("value").and_then(Value::as_array_mut);
    for thing in things.into_iter().flatten() {
        let Some(thing_id) = thing.get("@iot.id").cloned() else {
            continue;
        };
        let datastreams = thing.get_mut("Datastreams").and_then(Value::as_array_mut);
        for ds in datastreams.into_iter().flatten() {
            if let Some(op) = id_key(ds).and_then(|id| properties.get(&id)) {
                ds["ObservedProperty"] = op.clone();
            }
            let link = ds
                .get("Observations@iot.navigationLink")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    ds.get("@iot.selfLink")
                        .and_then(Value::as_str)
                        .map(|s| format!("{s}/Observations"))
                });
            let Some(link) = link.and_then(|l| url::Url::parse(&l).ok()) else {
                continue;
            };
            let header = serde_json::json!({
                "@iot.id": ds.get("@iot.id"),
                "name": ds.get("name"),
                "ObservedProperty": ds.get("ObservedProperty"),
                "Thing": {"@iot.id": thing_id},
            });
            out.push((link, header));
        }
    }
    out
}

/// The pages of one collection, through `@iot.nextLink`.
struct Pages {
    next: Option<url::Url>,
    left: usize,
}

/// One page: where it came from, its bytes, and their JSON if they are JSON.
struct Page {
    url: url::Url,
    body: bytes::Bytes,
    json: Option<Value>,
}

impl Pages {
    fn new(first: url::Url, cfg: &SensorThingsConfig) -> Pages {
        Pages {
            next: Some(first),
            left: cfg.max_pages,
        }
    }

    async fn next(
        &mut self,
        cfg: &SensorThingsConfig,
        ctx: &SourceCtx,
        client: &reqwest::Client,
    ) -> Result<Option<Page>, String> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.left == 0 {
            return Err(format!(
                "more than {} pages of {}: stopped following",
                cfg.max_pages,
                url.path()
            ));
        }
        self.left -= 1;
        let mut req = client.get(url.clone()).timeout(cfg.timeout);
        for (k, v) in &cfg.headers {
            req = req.header(k, v);
        }
        if let Some(t) = &cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(format!("GET {url}: {status} {}", body.trim()));
        }
        let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        ctx.health.message(ctx.clock.now());
        let json = serde_json::from_slice::<Value>(&body).ok();
        self.next = json
            .as_ref()
            .and_then(|v| v.get("@iot.nextLink")?.as_str())
            .and_then(|n| url.join(n).ok())
            .filter(|n| *n != url);
        Ok(Some(Page { url, body, json }))
    }
}

/// Decodes what is new on a page and sends it to the pipeline; `wrap` puts a Datastream's
/// Observations inside it, so the decoder knows whose they are. What is not JSON goes to
/// the decoder as it came, to be refused with the reason.
async fn hand_over(
    ctx: &SourceCtx,
    decoder: &Arc<dyn Decoder>,
    seen: &mut Seen,
    page: &Page,
    wrap: Option<&Value>,
) -> Result<(), String> {
    let payload = match (&page.json, wrap) {
        (None, _) => Some(page.body.to_vec()),
        (Some(p), None) => unseen(p, seen).map(|fresh| {
            serde_json::json!({ "value": fresh })
                .to_string()
                .into_bytes()
        }),
        (Some(p), Some(ds)) => unseen(p, seen).map(|fresh| {
            let mut ds = ds.clone();
            ds["Observations"] = Value::Array(fresh);
            ds.to_string().into_bytes()
        }),
    };
    let Some(payload) = payload else {
        return Ok(());
    };
    let origin = page.url.to_string();
    let dctx = DecodeCtx {
        source: &ctx.name,
        origin: Some(&origin),
        received_at: ctx.clock.now(),
    };
    let items = decoder
        .decode(&payload, &dctx)
        .unwrap_or_else(|reason| vec![Item::Rejected(reason)]);
    ctx.sender
        .send(ctx.ingest(items, &payload, Some(&origin)))
        .await
        .map_err(|e| e.to_string())
}

/// One poll: the ObservedProperties (which Datastreams observe what), the Things, then
/// what was observed since `since`.
async fn poll(
    cfg: &SensorThingsConfig,
    ctx: &SourceCtx,
    client: &reqwest::Client,
    decoder: &Arc<dyn Decoder>,
    seen: &mut Seen,
    since: DateTime<Utc>,
) -> Result<(), String> {
    // Servers agree on to-many expansions; some get to-one ones wrong (django-ogc-
    // sensorthings 1.2 gives every Datastream the first one's ObservedProperty), so the
    // relation is read from the ObservedProperties' side.
    let mut properties = HashMap::new();
    let mut pages = Pages::new(cfg.properties_url()?, cfg);
    while let Some(page) = pages.next(cfg, ctx, client).await? {
        let values = page.json.as_ref().and_then(|v| v.get("value")?.as_array());
        for op in values.into_iter().flatten() {
            let header = serde_json::json!({
                "name": op.get("name"),
                "definition": op.get("definition"),
            });
            for ds in op
                .get("Datastreams")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = id_key(ds) {
                    properties.insert(id, header.clone());
                }
            }
        }
    }
    let mut datastreams = Vec::new();
    let mut pages = Pages::new(cfg.things_url()?, cfg);
    while let Some(mut page) = pages.next(cfg, ctx, client).await? {
        if let Some(json) = &mut page.json {
            datastreams.extend(join_datastreams(json, &properties));
        }
        hand_over(ctx, decoder, seen, &page, None).await?;
    }
    match cfg.observations {
        ObservationsQuery::Collection => {
            let mut pages = Pages::new(cfg.observations_url(since)?, cfg);
            while let Some(page) = pages.next(cfg, ctx, client).await? {
                hand_over(ctx, decoder, seen, &page, None).await?;
            }
        }
        ObservationsQuery::PerDatastream => {
            for (link, header) in &datastreams {
                let mut pages = Pages::new(cfg.filtered(link.clone(), since), cfg);
                while let Some(page) = pages.next(cfg, ctx, client).await? {
                    hand_over(ctx, decoder, seen, &page, Some(header)).await?;
                }
            }
        }
    }
    Ok(())
}

pub async fn run(cfg: SensorThingsConfig, ctx: SourceCtx) {
    let decoder = match decode::build(&cfg.decoder, cfg.mapping.as_ref()) {
        Ok(d) => d,
        Err(e) => return ctx.health.error(SourceState::Error, e),
    };
    super::mqtt::rustls_provider();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("ioc-console/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return ctx.health.error(SourceState::Error, e.to_string()),
    };
    let overlap = chrono::Duration::from_std(cfg.overlap).unwrap_or_default();
    let mut since = ctx.clock.now() - chrono::Duration::from_std(cfg.lookback).unwrap_or_default();
    let mut backoff = Backoff::new(cfg.interval, cfg.interval * 10);
    // Polls an observation can be re-read in: the overlap, plus a margin.
    let keep = (cfg.overlap.as_secs_f64() / cfg.interval.as_secs_f64()).ceil() as u64 + 2;
    let mut seen = Seen::default();
    loop {
        let started = ctx.clock.now();
        seen.next_poll(keep);
        let result = tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            r = poll(&cfg, &ctx, &client, &decoder, &mut seen, since) => r,
        };
        match result {
            Ok(()) => {
                ctx.health.set_state(SourceState::Connected);
                since = started - overlap;
                backoff.reset();
                tokio::select! {
                    _ = ctx.cancel.cancelled() => break,
                    _ = tokio::time::sleep(cfg.interval) => {}
                }
            }
            Err(e) => {
                tracing::warn!(
                    "sensorthings {:?}: {e}; retrying in {:?}",
                    cfg.name,
                    backoff.peek()
                );
                ctx.health.error(SourceState::Error, e);
                if !backoff.wait(&ctx.cancel).await {
                    break;
                }
            }
        }
    }
    ctx.health.set_state(SourceState::Disconnected);
}

impl super::Source for SensorThingsConfig {
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
        SensorThingsConfig::validate(self)
    }
    fn detail(&self) -> Option<String> {
        Some(format!(
            "{} every {}",
            self.url,
            humantime::format_duration(self.interval)
        ))
    }
    fn spawn(&self, ctx: SourceCtx) -> tokio::task::JoinHandle<()> {
        let c = self.clone();
        tokio::spawn(async move { run(c, ctx).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SensorThingsConfig {
        toml::from_str(
            r#"
            name = "sta"
            url = "https://sta.example/FROST-Server/v1.1/"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_checks() {
        let c = cfg();
        assert!(c.validate().is_ok());
        assert_eq!(c.time_property, "phenomenonTime");
        assert_eq!(c.interval, Duration::from_secs(60));
        let bad = SensorThingsConfig {
            time_property: "validTime".into(),
            ..cfg()
        };
        assert!(bad.validate().unwrap_err().contains("time_property"));
        let bad = SensorThingsConfig {
            decoder: "json".into(),
            ..cfg()
        };
        assert!(bad.validate().unwrap_err().contains("sensorthings"));
    }

    #[test]
    fn what_was_handed_over_is_not_again_until_forgotten() {
        let mut seen = Seen::default();
        let page = serde_json::json!({"value": [{"@iot.id": 1}, {"@iot.id": 2}]});
        seen.next_poll(2);
        assert!(unseen(&page, &mut seen).is_some());
        seen.next_poll(2);
        let more = serde_json::json!({"value": [{"@iot.id": 2}, {"@iot.id": 3}]});
        assert_eq!(
            unseen(&more, &mut seen).unwrap(),
            [serde_json::json!({"@iot.id": 3})]
        );
        assert!(unseen(&page, &mut seen).is_none());
        // Three polls without 1, 2 and 3: forgotten.
        for _ in 0..3 {
            seen.next_poll(2);
        }
        assert!(unseen(&page, &mut seen).is_some());
    }

    #[test]
    fn query_urls() {
        let c = cfg();
        let t = c.things_url().unwrap();
        assert_eq!(t.path(), "/FROST-Server/v1.1/Things");
        let q: Vec<(String, String)> = t.query_pairs().into_owned().collect();
        assert_eq!(
            q,
            [("$expand".to_string(), "Locations,Datastreams".to_string())]
        );
        let since = "2026-11-26T03:00:00Z".parse().unwrap();
        let o = c.observations_url(since).unwrap();
        let q: BTreeMap<String, String> = o.query_pairs().into_owned().collect();
        assert_eq!(q["$filter"], "phenomenonTime gt 2026-11-26T03:00:00.000Z");
        assert!(q["$expand"].starts_with("Datastream("));
    }
}
