//! Cameras' stills: a recent picture of each camera for the map's hover card, the alert card
//! and the after-action report.
//!
//! A still is fetched from the camera's `snapshot_url` (HTTP; basic or digest credentials,
//! kept with the camera's other credentials) only when somebody asks for it, and at most once
//! per `[video] snapshot_every` per camera however many screens ask: every asker of the same
//! camera waits on the same fetch, and at most `snapshot_fetches` cameras are fetched at once.
//! A screen that keeps asking while it is shown therefore refreshes its picture, and a wall of
//! forty screens costs the camera one request per interval, never a storm.
//!
//! The demo's simulated cameras (attribute `simulated`) have no camera behind them: their still
//! is drawn here (an SVG with the camera's place and the time, marked as simulated) so that the
//! offline demo's screens are not empty. It never pretends to be a photograph.

use chrono::{DateTime, Utc};
use ioc_model::{camera, Entity};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The largest still accepted from a camera.
pub const MAX_BYTES: usize = 8 << 20;

/// A picture as served.
#[derive(Debug, Clone)]
pub struct Still {
    pub bytes: bytes::Bytes,
    /// `image/jpeg`, `image/png` (by their content, not by what the camera said) or, for a
    /// simulated camera, `image/svg+xml`.
    pub mime: &'static str,
    pub taken: DateTime<Utc>,
    /// Drawn here for a simulated camera, not taken by one.
    pub simulated: bool,
    /// Why this still is older than it should be (the last fetch failed); `None` when fresh.
    pub stale: Option<String>,
}

/// Why there is no still.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The camera has nothing to take a still from.
    #[error("{0}")]
    NoSource(String),
    /// The camera was asked and did not give a picture (and none was had before).
    #[error("{0}")]
    Failed(String),
}

/// Where a camera's still comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Http(url::Url),
    Simulated,
}

/// What a camera's attributes say about its still: `None` when it has no source at all.
pub fn source_of(e: &Entity) -> Option<Result<Source, String>> {
    let raw = e
        .attributes
        .get(camera::SNAPSHOT_URL)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(raw) = raw {
        return Some(parse(raw).map(Source::Http));
    }
    camera::is_simulated(e).then_some(Ok(Source::Simulated))
}

fn parse(raw: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(raw).map_err(|e| format!("snapshot_url {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "snapshot_url must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url)
}

#[derive(Default)]
struct Slot {
    last: Option<Still>,
    /// When it was last asked of the camera, and what came of it.
    tried: Option<(Instant, Result<(), String>)>,
}

/// Every camera's latest still.
pub struct Snapshots {
    every: Duration,
    client: reqwest::Client,
    permits: Semaphore,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Snapshots {
    pub fn new(every: Duration, timeout: Duration, fetches: usize) -> Self {
        Snapshots {
            every,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .expect("an HTTP client"),
            permits: Semaphore::new(fetches.max(1)),
            slots: Default::default(),
        }
    }

    /// How long a still is kept before the camera is asked again.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Forgets a camera (removed, or its address changed).
    pub fn forget(&self, camera: &str) {
        self.slots.lock().unwrap().remove(camera);
    }

    /// The camera's still: the one in hand when it is recent enough, otherwise a new one
    /// (one fetch per camera at a time; the others asking wait for it).
    pub async fn still(
        &self,
        e: &Entity,
        credentials: Option<(String, String)>,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Result<Still, SnapshotError> {
        let source = match source_of(e) {
            None => {
                return Err(SnapshotError::NoSource(format!(
                    "{:?} has no snapshot_url",
                    e.id
                )))
            }
            Some(Err(why)) => return Err(SnapshotError::NoSource(why)),
            Some(Ok(s)) => s,
        };
        let slot = self
            .slots
            .lock()
            .unwrap()
            .entry(e.id.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        let fresh = slot
            .tried
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.every);
        if !fresh {
            let got = match &source {
                Source::Simulated => Ok(simulated(e, now, tz)),
                Source::Http(url) => {
                    let _permit = self.permits.acquire().await.expect("never closed");
                    self.fetch(url, credentials.as_ref(), now).await
                }
            };
            match got {
                Ok(still) => {
                    slot.last = Some(still);
                    slot.tried = Some((Instant::now(), Ok(())));
                }
                Err(why) => {
                    tracing::warn!(camera = %e.id, "camera still: {why}");
                    slot.tried = Some((Instant::now(), Err(why)));
                }
            }
        }
        let why = match &slot.tried {
            Some((_, Err(why))) => Some(why.clone()),
            _ => None,
        };
        match (&slot.last, why) {
            (Some(s), why) => Ok(Still {
                stale: why,
                ..s.clone()
            }),
            (None, Some(why)) => Err(SnapshotError::Failed(why)),
            (None, None) => Err(SnapshotError::Failed("no still yet".into())),
        }
    }

    async fn fetch(
        &self,
        url: &url::Url,
        credentials: Option<&(String, String)>,
        now: DateTime<Utc>,
    ) -> Result<Still, String> {
        let get = || self.client.get(url.clone());
        let mut resp = get().send().await.map_err(|e| describe(&e))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            let Some((user, pass)) = credentials else {
                return Err(
                    "the camera asks for credentials (PUT /api/cameras/{id}/credentials)".into(),
                );
            };
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            resp = if challenge
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("digest")
            {
                let mut prompt = digest_auth::parse(&challenge)
                    .map_err(|e| format!("the camera's digest challenge: {e}"))?;
                let path = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                let ctx = digest_auth::AuthContext::new(user.as_str(), pass.as_str(), path);
                let answer = prompt
                    .respond(&ctx)
                    .map_err(|e| format!("the camera's digest challenge: {e}"))?;
                get()
                    .header(reqwest::header::AUTHORIZATION, answer.to_header_string())
                    .send()
                    .await
            } else {
                get().basic_auth(user, Some(pass)).send().await
            }
            .map_err(|e| describe(&e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                return Err("the camera refused the credentials".into());
            }
        }
        if !resp.status().is_success() {
            return Err(format!("the camera answered {}", resp.status()));
        }
        if resp.content_length().unwrap_or(0) > MAX_BYTES as u64 {
            return Err(format!("a still larger than {} MB", MAX_BYTES >> 20));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(format!("a still larger than {} MB", MAX_BYTES >> 20));
            }
        }
        let mime = sniff(&body).ok_or_else(|| {
            let head = String::from_utf8_lossy(&body[..body.len().min(40)]).to_string();
            format!("the camera's answer is not a JPEG or PNG picture (starts {head:?})")
        })?;
        Ok(Still {
            bytes: body.into(),
            mime,
            taken: now,
            simulated: false,
            stale: None,
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the camera did not answer in time".into()
    } else if e.is_connect() {
        format!("cannot reach the camera: {e}")
    } else {
        e.to_string()
    }
}

/// A picture's type by its first bytes: only JPEG and PNG are served.
pub fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The still of a simulated camera: its name, its commune, the local time, whether it is
/// online, and a plain "simulated" mark.
pub fn simulated(e: &Entity, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Still {
    let online = e.latest.get("online").map(|r| r.value >= 0.5);
    let local = now.with_timezone(&tz);
    let (w, h) = (640, 360);
    // A horizon, a road in perspective and lamp posts: enough to read as a street scene at a
    // glance, plainly a drawing.
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#1b2d44"/><stop offset="1" stop-color="#35506e"/></linearGradient></defs>
<rect width="{w}" height="{h}" fill="url(#sky)"/>
<rect y="200" width="{w}" height="160" fill="#2a3a2c"/>
<polygon points="250,200 390,200 560,360 80,360" fill="#3b3f46"/>
<polygon points="316,210 324,210 330,250 310,250" fill="#d8d8c8" opacity="0.7"/>
<polygon points="306,275 334,275 344,340 296,340" fill="#d8d8c8" opacity="0.7"/>
<rect x="150" y="120" width="6" height="150" fill="#6b7280"/><circle cx="153" cy="118" r="9" fill="#ffe9a8" opacity="0.8"/>
<rect x="486" y="120" width="6" height="150" fill="#6b7280"/><circle cx="489" cy="118" r="9" fill="#ffe9a8" opacity="0.8"/>
"##
    );
    let lines = [
        (escape(&e.name), 20, 16, "#ffffff"),
        (
            escape(e.unit_name.as_deref().unwrap_or_default()),
            44,
            14,
            "#d0dae6",
        ),
    ];
    svg.push_str(r##"<rect width="640" height="58" fill="#000" opacity="0.55"/>"##);
    for (text, y, size, color) in lines {
        svg.push_str(&format!(
            r#"<text x="12" y="{y}" font-family="sans-serif" font-size="{size}" fill="{color}">{text}</text>"#
        ));
    }
    svg.push_str(&format!(
        r##"<rect y="322" width="640" height="38" fill="#000" opacity="0.55"/><text x="12" y="347" font-family="monospace" font-size="18" fill="#ffffff">{}</text><text x="628" y="347" text-anchor="end" font-family="sans-serif" font-size="13" fill="#f5c26b">ẢNH MÔ PHỎNG · SIMULATED</text>"##,
        local.format("%H:%M:%S %d/%m/%Y")
    ));
    if online == Some(false) {
        svg.push_str(r##"<rect y="58" width="640" height="264" fill="#000" opacity="0.7"/><text x="320" y="200" text-anchor="middle" font-family="sans-serif" font-size="26" fill="#ff8a80">MẤT TÍN HIỆU · NO SIGNAL</text>"##);
    }
    svg.push_str("</svg>\n");
    Still {
        bytes: svg.into_bytes().into(),
        mime: "image/svg+xml",
        taken: now,
        simulated: true,
        stale: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Domain;

    fn cam(attrs: serde_json::Value) -> Entity {
        let mut e = Entity::new("cam-1", "Camera", "Ngã tư <Quang Trung>", Domain::Safety)
            .in_unit("vinh", "Phường Vinh");
        e.attributes = attrs.as_object().unwrap().clone();
        e
    }

    #[test]
    fn sources() {
        assert!(source_of(&cam(serde_json::json!({}))).is_none());
        assert_eq!(
            source_of(&cam(serde_json::json!({"simulated": true}))),
            Some(Ok(Source::Simulated))
        );
        let Some(Ok(Source::Http(u))) = source_of(&cam(
            serde_json::json!({"snapshot_url": "http://u:p@10.0.0.5/snap.jpg"}),
        )) else {
            panic!("an http source")
        };
        assert_eq!(u.as_str(), "http://10.0.0.5/snap.jpg");
        assert!(
            source_of(&cam(serde_json::json!({"snapshot_url": "rtsp://x/1"})))
                .unwrap()
                .unwrap_err()
                .contains("http://")
        );
    }

    #[test]
    fn a_simulated_still_names_its_place_and_time_and_says_what_it_is() {
        let now = "2026-12-06T01:02:03Z".parse().unwrap();
        let s = simulated(
            &cam(serde_json::json!({"simulated": true})),
            now,
            chrono_tz::Asia::Ho_Chi_Minh,
        );
        let text = std::str::from_utf8(&s.bytes).unwrap();
        assert!(text.contains("Ngã tư &lt;Quang Trung&gt;"), "{text}");
        assert!(text.contains("Phường Vinh"));
        assert!(text.contains("08:02:03 06/12/2026"), "local time");
        assert!(text.contains("MÔ PHỎNG"));
        assert!(!text.contains("NO SIGNAL"));
        assert!(usvg::Tree::from_data(&s.bytes, &usvg::Options::default()).is_ok());
        let mut off = cam(serde_json::json!({"simulated": true}));
        off.latest.insert(
            "online".into(),
            ioc_model::Reading {
                value: 0.0,
                time: now,
            },
        );
        let s = simulated(&off, now, chrono_tz::Asia::Ho_Chi_Minh);
        assert!(std::str::from_utf8(&s.bytes).unwrap().contains("NO SIGNAL"));
    }

    #[test]
    fn only_pictures_pass() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"<html><script>"), None);
        assert_eq!(sniff(b""), None);
    }
}
