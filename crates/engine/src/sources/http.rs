//! HTTP polling (`kind = "http"`), for REST/JSON systems such as the province's data-sharing
//! platform.
//!
//! ```toml
//! [[source]]
//! name = "province-api"
//! kind = "http"
//! url = "https://data.nghean.gov.vn/api/air/latest"
//! interval = "1m"
//! decoder = "json"                    # or ngsi-ld, cap, geojson, csv
//! bearer_token = "…"                  # Authorization: Bearer …
//! headers = { "X-Api-Key" = "…" }
//! since_param = "since"               # incremental: ?since=<start of the last good poll>
//! next = "/links/next"                # paging: JSON pointer to the next page's URL
//! max_pages = 100
//! timeout = "30s"
//! [source.mapping]                    # for decoder = "json"/"csv"
//! id = "stationId"
//! ```
//!
//! Pages are also followed through a `Link: <…>; rel="next"` header. A failed poll (network,
//! status, undecodable body) is visible in `/api/sources` and retried with back-off (the
//! interval, doubling up to ten times it); the next good poll clears the error.

use super::backoff::Backoff;
use super::SourceCtx;
use crate::decode::{self, DecodeCtx, Decoder};
use crate::ingest::Item;
use chrono::{DateTime, Utc};
use ioc_model::SourceState;
use serde::Deserialize;
use std::collections::BTreeMap;
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
fn hundred() -> usize {
    100
}
fn json_decoder() -> String {
    "json".into()
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub url: String,
    #[serde(default = "minute", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "json_decoder")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub since_param: Option<String>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default = "hundred")]
    pub max_pages: usize,
    #[serde(default = "thirty", with = "humantime_serde")]
    pub timeout: Duration,
    /// Observations dated further back than this are refused (default a week).
    #[serde(default = "super::week", with = "humantime_serde")]
    pub max_age: Duration,
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), String> {
        let u = url::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("url {:?}: not http:// or https://", self.url));
        }
        if self.interval < Duration::from_secs(1) {
            return Err("interval: at least 1s".into());
        }
        decode::build(&self.decoder, self.mapping.as_ref()).map(|_| ())
    }
}

/// The next page: the JSON pointer's value, else a `Link: <…>; rel="next"` header.
fn next_page(
    cfg: &HttpConfig,
    base: &url::Url,
    link: Option<&str>,
    body: &[u8],
) -> Option<url::Url> {
    let from_body = cfg.next.as_deref().and_then(|p| {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        decode::json::get_path(&v, p)?.as_str().map(str::to_string)
    });
    let from_header = || {
        link?.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params.contains("rel=\"next\"").then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
    };
    let next = from_body.or_else(from_header)?;
    base.join(&next).ok()
}

/// One poll: every page, decoded and sent; the count of messages.
async fn poll(
    cfg: &HttpConfig,
    ctx: &SourceCtx,
    client: &reqwest::Client,
    decoder: &Arc<dyn Decoder>,
    since: Option<DateTime<Utc>>,
) -> Result<(), String> {
    let mut url = url::Url::parse(&cfg.url).map_err(|e| e.to_string())?;
    if let (Some(p), Some(t)) = (&cfg.since_param, since) {
        url.query_pairs_mut().append_pair(p, &t.to_rfc3339());
    }
    for _ in 0..cfg.max_pages {
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
            return Err(format!("GET {url}: {status}"));
        }
        let link = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        let now = ctx.clock.now();
        ctx.health.message(now);
        let origin = url.to_string();
        let dctx = DecodeCtx {
            source: &ctx.name,
            origin: Some(&origin),
            received_at: now,
        };
        let items = decoder
            .decode(&body, &dctx)
            .unwrap_or_else(|reason| vec![Item::Rejected(reason)]);
        let ingest = ctx.ingest(items, &body, Some(&origin));
        ctx.sender.send(ingest).await.map_err(|e| e.to_string())?;
        match next_page(cfg, &url, link.as_deref(), &body) {
            Some(n) if n != url => url = n,
            _ => return Ok(()),
        }
    }
    Err(format!(
        "more than {} pages: stopped following",
        cfg.max_pages
    ))
}

pub async fn run(cfg: HttpConfig, ctx: SourceCtx) {
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
    let mut backoff = Backoff::new(cfg.interval, cfg.interval * 10);
    let mut since: Option<DateTime<Utc>> = None;
    loop {
        let started = ctx.clock.now();
        match poll(&cfg, &ctx, &client, &decoder, since).await {
            Ok(()) => {
                ctx.health.set_state(SourceState::Connected);
                since = Some(started);
                backoff.reset();
                tokio::select! {
                    _ = ctx.cancel.cancelled() => break,
                    _ = tokio::time::sleep(cfg.interval) => {}
                }
            }
            Err(e) => {
                tracing::warn!("http {:?}: {e}; retrying in {:?}", cfg.name, backoff.peek());
                ctx.health.error(SourceState::Error, e);
                if !backoff.wait(&ctx.cancel).await {
                    break;
                }
            }
        }
    }
    ctx.health.set_state(SourceState::Disconnected);
}

impl super::Source for HttpConfig {
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
        HttpConfig::validate(self)
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

    fn cfg(next: Option<&str>) -> HttpConfig {
        HttpConfig {
            name: "p".into(),
            enabled: true,
            url: "https://data.example/api/items?page=1".into(),
            interval: Duration::from_secs(60),
            decoder: "ngsi-ld".into(),
            mapping: None,
            headers: Default::default(),
            bearer_token: None,
            since_param: None,
            next: next.map(str::to_string),
            max_pages: 10,
            timeout: Duration::from_secs(5),
            max_age: super::super::week(),
        }
    }

    #[test]
    fn next_pages_from_body_or_link_header() {
        let base = url::Url::parse("https://data.example/api/items?page=1").unwrap();
        let body = br#"{"links": {"next": "/api/items?page=2"}}"#;
        assert_eq!(
            next_page(&cfg(Some("/links/next")), &base, None, body)
                .unwrap()
                .as_str(),
            "https://data.example/api/items?page=2"
        );
        let link = r#"<https://data.example/api/items?page=3>; rel="next", <…>; rel="last""#;
        assert_eq!(
            next_page(&cfg(None), &base, Some(link), b"[]")
                .unwrap()
                .as_str(),
            "https://data.example/api/items?page=3"
        );
        assert!(next_page(&cfg(Some("/links/next")), &base, None, b"{}").is_none());
    }

    #[test]
    fn config_is_checked() {
        assert!(cfg(None).validate().is_ok());
        assert!(HttpConfig {
            url: "ftp://x".into(),
            ..cfg(None)
        }
        .validate()
        .is_err());
        assert!(HttpConfig {
            decoder: "json".into(),
            ..cfg(None)
        }
        .validate()
        .unwrap_err()
        .contains("mapping"));
    }
}
