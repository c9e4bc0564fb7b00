//! Cameras' live video. Every camera entity with an `rtsp_url` has its stream kept open by the
//! engine (as a recording server of a video management system does): frames are remuxed to
//! fragmented MP4 without transcoding ([`fmp4`]) and handed to any number of viewers
//! ([`feed::Feed`]), the last minute is kept for evidence, and the stream's health is real: a
//! stall is noticed, the stream reopened with back-off, the camera's `online` value follows,
//! and the sources screen lists it.
//!
//! Chosen by measurement (see `ioc bench video`): `retina` → fMP4 over the engine's own
//! WebSocket into Media Source Extensions plays in Chromium and in WebKitGTK, sub-second on a
//! local network, with one process and no gateway to install; WebRTC would need a media stack
//! (ICE, DTLS, SRTP) for no gain on a control room's network.

pub mod clip;
pub mod feed;
pub mod fmp4;
pub mod rtsp;
pub mod snapshot;
pub mod test_server;

use crate::clock::Clock;
use crate::ingest::{Ingest, Item, Obs};
use crate::pipeline::IngestSender;
use crate::sources::backoff::Backoff;
use crate::sources::health::{SourceHealth, SourceRegistry};
use feed::Feed;
use ioc_model::{camera, CameraStream, Entity, SourceState, StreamState};
use rtsp::Target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `[video]`: how camera streams are watched.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// No frame for this long: the stream is stalled, and opened again.
    #[serde(with = "humantime_serde")]
    pub stall: Duration,
    /// How long opening a stream may take.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Longest wait between two attempts (the first is a second, then doubling).
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How much of each camera's recent video is kept in memory for evidence clips.
    #[serde(with = "humantime_serde")]
    pub keep: Duration,
    /// A camera's still is asked of it at most this often, however many screens show it.
    #[serde(with = "humantime_serde")]
    pub snapshot_every: Duration,
    /// How long a camera may take to give a still.
    #[serde(with = "humantime_serde")]
    pub snapshot_timeout: Duration,
    /// At most this many cameras are asked for a still at once.
    pub snapshot_fetches: usize,
    /// An evidence clip starts this long before its moment (at most `keep`)…
    #[serde(with = "humantime_serde")]
    pub clip_before: Duration,
    /// …and ends this long after it (at most 5 minutes).
    #[serde(with = "humantime_serde")]
    pub clip_after: Duration,
    /// Saved clips beyond this many megabytes are removed, oldest first (their records stay).
    pub clips_max_mb: u64,
    /// Saved clips older than this are removed (their records stay).
    #[serde(with = "humantime_serde")]
    pub clips_keep: Duration,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            stall: Duration::from_secs(5),
            connect: Duration::from_secs(10),
            retry_max: Duration::from_secs(30),
            keep: Duration::from_secs(60),
            snapshot_every: Duration::from_secs(10),
            snapshot_timeout: Duration::from_secs(5),
            snapshot_fetches: 4,
            clip_before: Duration::from_secs(30),
            clip_after: Duration::from_secs(60),
            clips_max_mb: 10_000,
            clips_keep: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// A camera's stream as configured on its entity.
fn target_of(e: &Entity, credentials: Option<&(String, String)>) -> Option<Result<Target, String>> {
    let raw = e.attributes.get(camera::RTSP_URL)?.as_str()?.trim();
    if raw.is_empty() {
        return None;
    }
    Some(parse_target(
        raw,
        e.attributes
            .get(camera::RTSP_TRANSPORT)
            .and_then(|v| v.as_str()),
        credentials,
    ))
}

fn parse_target(
    raw: &str,
    transport: Option<&str>,
    credentials: Option<&(String, String)>,
) -> Result<Target, String> {
    let mut url = url::Url::parse(raw).map_err(|e| format!("rtsp_url {raw:?}: {e}"))?;
    if url.scheme() != "rtsp" {
        return Err(format!(
            "rtsp_url must start with rtsp://, not {}://",
            url.scheme()
        ));
    }
    // Credentials written into the address still work, but are kept out of it.
    let inline = (!url.username().is_empty()).then(|| {
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .to_string();
        let pass = percent_encoding::percent_decode_str(url.password().unwrap_or_default())
            .decode_utf8_lossy()
            .to_string();
        (user, pass)
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let udp = match transport.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("tcp") => false,
        Some("udp") => true,
        Some(other) => return Err(format!("rtsp_transport must be tcp or udp, not {other:?}")),
    };
    Ok(Target {
        url,
        udp,
        credentials: credentials.cloned().or(inline),
    })
}

/// The attributes that may hold a camera's addresses.
pub const ADDRESSES: &[&str] = &[camera::RTSP_URL, camera::SNAPSHOT_URL, camera::ONVIF_URL];

/// Takes user names and passwords out of a camera's addresses (`rtsp://admin:pw@host/…`),
/// leaving the addresses without them; the credentials found (the stream's first).
pub fn take_credentials(
    attributes: &mut serde_json::Map<String, serde_json::Value>,
) -> Option<(String, String)> {
    let mut found = None;
    for key in ADDRESSES {
        let Some(raw) = attributes.get(*key).and_then(|v| v.as_str()) else {
            continue;
        };
        let Ok(mut url) = url::Url::parse(raw.trim()) else {
            continue;
        };
        if url.username().is_empty() && url.password().is_none() {
            continue;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .to_string()
        };
        let creds = (
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        );
        let _ = url.set_username("");
        let _ = url.set_password(None);
        attributes.insert(key.to_string(), url.to_string().into());
        if found.is_none() && !creds.1.is_empty() {
            found = Some(creds);
        }
    }
    found
}

struct Running {
    target: Result<Target, String>,
    cancel: CancellationToken,
}

/// Every camera's stream.
pub struct Video {
    cfg: VideoConfig,
    feeds: RwLock<HashMap<String, Arc<Feed>>>,
    running: Mutex<HashMap<String, Running>>,
    credentials: RwLock<HashMap<String, (String, String)>>,
    sources: Arc<SourceRegistry>,
    /// Where the cameras' `online` values go; none in tests of the streams alone.
    sender: Option<IngestSender>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    /// Reads the credentials kept in the store (some arrive with imported cameras).
    reload: Mutex<Option<CredentialsLoader>>,
    snapshots: snapshot::Snapshots,
}

/// Reads every camera's credentials from the store.
pub type CredentialsLoader = Box<dyn Fn() -> HashMap<String, (String, String)> + Send + Sync>;

impl std::fmt::Debug for Video {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Video")
            .field("cameras", &self.feeds.read().unwrap().len())
            .finish()
    }
}

/// The sources screen's name for a camera's stream.
pub fn source_name(camera: &str) -> String {
    format!("camera {camera}")
}

impl Video {
    pub fn new(
        cfg: VideoConfig,
        sources: Arc<SourceRegistry>,
        sender: Option<IngestSender>,
        clock: Arc<dyn Clock>,
        cancel: CancellationToken,
    ) -> Arc<Video> {
        Arc::new(Video {
            feeds: Default::default(),
            running: Default::default(),
            credentials: Default::default(),
            sources,
            sender,
            clock,
            cancel,
            reload: Mutex::new(None),
            snapshots: snapshot::Snapshots::new(
                cfg.snapshot_every,
                cfg.snapshot_timeout,
                cfg.snapshot_fetches,
            ),
            cfg,
        })
    }

    /// A recent still of the camera (see [`snapshot`]), in the given time zone when drawn.
    pub async fn still(
        &self,
        e: &Entity,
        tz: chrono_tz::Tz,
    ) -> Result<snapshot::Still, snapshot::SnapshotError> {
        let creds = self.credentials.read().unwrap().get(&e.id).cloned();
        self.snapshots.still(e, creds, self.clock.now(), tz).await
    }

    /// Where the kept credentials are read again from when cameras change.
    pub fn reload_credentials_with(&self, loader: CredentialsLoader) {
        *self.reload.lock().unwrap() = Some(loader);
    }

    pub fn config(&self) -> &VideoConfig {
        &self.cfg
    }

    /// The credentials kept for cameras (from the store, at start).
    pub fn load_credentials(&self, all: HashMap<String, (String, String)>) {
        *self.credentials.write().unwrap() = all;
    }

    /// Sets (or, with `None`, removes) a camera's credentials; its stream is opened again
    /// with them at the next [`Video::apply`].
    pub fn set_credentials(&self, camera: &str, creds: Option<(String, String)>) {
        self.snapshots.forget(camera);
        let mut c = self.credentials.write().unwrap();
        match creds {
            Some(v) => c.insert(camera.to_string(), v),
            None => c.remove(camera),
        };
    }

    pub fn has_credentials(&self, camera: &str) -> bool {
        self.credentials.read().unwrap().contains_key(camera)
    }

    pub fn feed(&self, camera: &str) -> Option<Arc<Feed>> {
        self.feeds.read().unwrap().get(camera).cloned()
    }

    /// Every stream's state, by camera id.
    pub fn streams(&self) -> Vec<CameraStream> {
        let mut v: Vec<CameraStream> = self
            .feeds
            .read()
            .unwrap()
            .values()
            .map(|f| {
                let mut s = f.status();
                s.has_credentials = self.has_credentials(&s.camera);
                s
            })
            .collect();
        v.sort_by(|a, b| a.camera.cmp(&b.camera));
        v
    }

    pub fn stream(&self, camera: &str) -> Option<CameraStream> {
        let mut s = self.feed(camera)?.status();
        s.has_credentials = self.has_credentials(camera);
        Some(s)
    }

    /// Brings the running streams in line with the cameras: starts new ones, restarts those
    /// whose address or credentials changed, stops those gone.
    pub fn apply(self: &Arc<Self>, cameras: &[Entity]) {
        let creds = self.credentials.read().unwrap().clone();
        let wanted: HashMap<&str, Result<Target, String>> = cameras
            .iter()
            .filter_map(|e| Some((e.id.as_str(), target_of(e, creds.get(&e.id))?)))
            .collect();
        let mut running = self.running.lock().unwrap();
        running.retain(|id, r| {
            let keep = wanted.get(id.as_str()).is_some_and(|t| *t == r.target);
            if !keep {
                r.cancel.cancel();
                if !wanted.contains_key(id.as_str()) {
                    self.feeds.write().unwrap().remove(id);
                    self.sources.remove(&source_name(id));
                }
            }
            keep
        });
        for (id, target) in wanted {
            if running.contains_key(id) {
                continue;
            }
            let cancel = self.cancel.child_token();
            running.insert(
                id.to_string(),
                Running {
                    target: target.clone(),
                    cancel: cancel.clone(),
                },
            );
            let feed = self
                .feeds
                .write()
                .unwrap()
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Feed::new(id, self.cfg.keep, self.clock.now())))
                .clone();
            let detail = match &target {
                Ok(t) => t.url.to_string(),
                Err(e) => e.clone(),
            };
            let health = Arc::new(SourceHealth::new(&source_name(id), "rtsp", Some(detail)));
            self.sources.add(health.clone());
            let video = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                match target {
                    Ok(t) => video.run(&id, t, feed, health, cancel).await,
                    Err(e) => {
                        feed.failed(
                            ioc_model::StreamProblem::Protocol,
                            e.clone(),
                            Duration::ZERO,
                            video.clock.now(),
                        );
                        health.error(SourceState::Error, e);
                    }
                }
            });
        }
    }

    /// Sends the camera's `online` value into the pipeline, as any device reports its own.
    async fn online(&self, camera: &str, up: bool) {
        if let Some(s) = &self.sender {
            let obs = Obs {
                entity: camera.into(),
                metric: "online".into(),
                time: self.clock.now(),
                value: if up { 1.0 } else { 0.0 },
            };
            let name: Arc<str> = source_name(camera).into();
            let _ = s.send(Ingest::new(name, vec![Item::Obs(obs)])).await;
        }
    }

    /// Keeps one camera's stream open until cancelled.
    async fn run(
        &self,
        camera: &str,
        target: Target,
        feed: Arc<Feed>,
        health: Arc<SourceHealth>,
        cancel: CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_secs(1), self.cfg.retry_max);
        let mut again = false;
        // What the pipeline was last told: none yet.
        let mut told: Option<bool> = None;
        loop {
            feed.connecting(self.clock.now(), again);
            health.set_state(SourceState::Connecting);
            let session = rtsp::session(&target, &feed, self.cfg.stall, self.cfg.connect);
            tokio::pin!(session);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut frames = feed.status().frames;
            let mut since_told = 0u32;
            let failure = loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    f = &mut session => break f,
                    _ = tick.tick() => {
                        let s = feed.status();
                        if s.state == StreamState::Live {
                            health.add_messages(s.frames - frames, self.clock.now());
                            frames = s.frames;
                            since_told += 1;
                            if told != Some(true) || since_told >= 60 {
                                if told != Some(true) {
                                    health.set_state(SourceState::Connected);
                                    backoff.reset();
                                }
                                told = Some(true);
                                since_told = 0;
                                self.online(camera, true).await;
                            }
                        }
                    }
                }
            };
            let retry = backoff.peek();
            tracing::warn!(camera, problem = failure.problem.as_str(), detail = %failure.detail, "camera stream: retrying in {:?}", retry);
            feed.failed(
                failure.problem,
                failure.detail.clone(),
                retry,
                self.clock.now(),
            );
            health.error(
                SourceState::Disconnected,
                format!("{}: {}", failure.problem.as_str(), failure.detail),
            );
            if told != Some(false) {
                told = Some(false);
                self.online(camera, false).await;
            }
            if !backoff.wait(&cancel).await {
                return;
            }
            again = true;
        }
    }

    /// Follows the cameras in the hub: when entities change, the streams are brought in line
    /// at once, then at most twice a second.
    pub fn follow(self: &Arc<Self>, hub: Arc<crate::hub::Hub>) -> tokio::task::JoinHandle<()> {
        let video = self.clone();
        tokio::spawn(async move {
            let mut seq = hub.subscribe();
            let mut last = None;
            loop {
                let cameras = hub.entities_with(camera::RTSP_URL);
                let key: Vec<(String, Option<String>, Option<String>)> = cameras
                    .iter()
                    .map(|e| {
                        let attr = |k: &str| {
                            e.attributes
                                .get(k)
                                .and_then(|v| v.as_str())
                                .map(str::to_string)
                        };
                        (
                            e.id.clone(),
                            attr(camera::RTSP_URL),
                            attr(camera::RTSP_TRANSPORT),
                        )
                    })
                    .collect();
                if last.as_ref() != Some(&key) {
                    let fresh = video.reload.lock().unwrap().as_ref().map(|f| f());
                    if let Some(all) = fresh {
                        video.load_credentials(all);
                    }
                    video.apply(&cameras);
                    last = Some(key);
                }
                tokio::select! {
                    _ = video.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                tokio::select! {
                    _ = video.cancel.cancelled() => return,
                    r = seq.changed() => if r.is_err() { return },
                }
            }
        })
    }

    /// Restarts the streams whose credentials changed.
    pub fn refresh(self: &Arc<Self>, hub: &crate::hub::Hub) {
        self.apply(&hub.entities_with(camera::RTSP_URL));
    }

    /// The camera's feed, started now if its address has come but [`Video::follow`] has not
    /// yet passed (it waits half a second after each change): an operator who opens a camera
    /// or saves a clip the moment it appears is not told it has no stream.
    pub fn feed_now(self: &Arc<Self>, hub: &crate::hub::Hub, camera: &str) -> Option<Arc<Feed>> {
        if let Some(feed) = self.feed(camera) {
            return Some(feed);
        }
        // Only a device `apply` would give a feed: one whose `rtsp_url` is blank or not text
        // would otherwise send every request for it through a pass over all the cameras.
        let _would_get_one = target_of(&hub.entity(camera)?, None)?;
        self.refresh(hub);
        self.feed(camera)
    }

    /// [`Video::stream`], started now as [`Video::feed_now`] does.
    pub fn stream_now(
        self: &Arc<Self>,
        hub: &crate::hub::Hub,
        camera: &str,
    ) -> Option<CameraStream> {
        self.feed_now(hub, camera)?;
        self.stream(camera)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_every_address() {
        let mut a = serde_json::Map::new();
        a.insert("rtsp_url".into(), "rtsp://admin:p%40ss@10.0.0.5/101".into());
        a.insert(
            "snapshot_url".into(),
            "http://admin:p%40ss@10.0.0.5/snap.jpg".into(),
        );
        a.insert(
            "onvif_url".into(),
            "http://10.0.0.5/onvif/device_service".into(),
        );
        assert_eq!(
            take_credentials(&mut a),
            Some(("admin".into(), "p@ss".into()))
        );
        assert_eq!(a["rtsp_url"], "rtsp://10.0.0.5/101");
        assert_eq!(a["snapshot_url"], "http://10.0.0.5/snap.jpg");
        assert!(!serde_json::to_string(&a).unwrap().contains("p%40ss"));
        assert_eq!(take_credentials(&mut a), None, "nothing left");
    }

    #[test]
    fn a_camera_address_is_checked_and_keeps_its_credentials_apart() {
        let t = parse_target("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/101", None, None).unwrap();
        assert_eq!(t.url.as_str(), "rtsp://10.0.0.5:554/Streaming/101");
        assert_eq!(t.credentials, Some(("admin".into(), "p@ss".into())));
        assert!(!t.udp);
        let kept = ("op".to_string(), "kept".to_string());
        let t = parse_target("rtsp://admin:x@cam/1", Some("UDP"), Some(&kept)).unwrap();
        assert_eq!(t.credentials, Some(kept), "the kept credentials win");
        assert!(t.udp);
        assert!(parse_target("http://cam/1", None, None)
            .unwrap_err()
            .contains("rtsp://"));
        assert!(parse_target("rtsp://cam/1", Some("quic"), None)
            .unwrap_err()
            .contains("tcp or udp"));
        assert!(parse_target("not a url", None, None).is_err());
    }
}
