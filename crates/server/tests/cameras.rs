//! Cameras over the API, against a real RTSP server: the streams listed within the caller's
//! units, credentials that can be set but never read back (not in answers, sources or the
//! audit log), the live video over a WebSocket (state, init segment, frames from a key frame,
//! each with the camera's capture time), and the camera's `online` value following its stream.

mod common;

use common::{add_user as add, token};

#[path = "../../engine/tests/common/missing.rs"]
mod missing;

use futures_util::StreamExt;
use ioc_engine::video::test_server::{self, Options, TestServer};
use ioc_engine::Item;
use ioc_model::camera::{parse_live, LiveKind};
use ioc_model::{CameraStream, Domain, Entity, EntityStatus, Role, StreamProblem, StreamState};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const A: &str = "16681";
const B: &str = "16690";

fn camera(id: &str, unit: &str, url: &str) -> Item {
    Item::Entity(Box::new(
        Entity::new(id, "Camera", id, Domain::Safety)
            .at(105.68, 18.67)
            .in_unit(unit, unit)
            .with_attr("rtsp_url", url),
    ))
}

/// Hands `items` to the engine's pipeline, as a source would.
async fn ingest(engine: &ioc_engine::Engine, items: Vec<Item>) {
    engine.sender().ingest("t", items).await.unwrap();
}

async fn stream(addr: SocketAddr, t: &str, id: &str) -> CameraStream {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/cameras/{id}"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn until(
    addr: SocketAddr,
    t: &str,
    id: &str,
    what: &str,
    ok: impl Fn(&CameraStream) -> bool,
) -> CameraStream {
    for _ in 0..300 {
        let s = stream(addr, t, id).await;
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id}: not {what} in 30 s: {:?}", stream(addr, t, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_stream_to_viewers_within_their_units_and_keep_credentials_secret() {
    if let Err(e) = test_server::available() {
        return missing::missing(&e);
    }
    let srv = TestServer::start(&Options::default()).expect("RTSP test server");
    let (_dir, engine, addr) = common::start_with(|c| {
        c.video.stall = Duration::from_secs(2);
        c.video.retry_max = Duration::from_secs(1);
    })
    .await;
    add(&engine, "admin", Role::Admin, &[]);
    add(&engine, "op-a", Role::Operator, &[A]);
    ingest(
        &engine,
        vec![
            common::unit(A, "Phường A"),
            common::unit(B, "Xã B"),
            camera("cam-a", A, &srv.auth_url()),
            camera("cam-b", B, &srv.url("cam0")),
        ],
    )
    .await;
    let admin = token(addr, "admin").await;
    let op = token(addr, "op-a").await;
    let http = reqwest::Client::new();

    // Only the cameras of one's units.
    let listed: Vec<CameraStream> = {
        let mut v = Vec::new();
        for _ in 0..50 {
            v = http
                .get(format!("http://{addr}/api/cameras"))
                .bearer_auth(&op)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if !v.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        v
    };
    assert_eq!(
        listed.iter().map(|s| s.camera.as_str()).collect::<Vec<_>>(),
        ["cam-a"]
    );
    let r = http
        .get(format!("http://{addr}/api/cameras/cam-b"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());

    // It wants credentials; an operator may not set them, an administrator may.
    until(addr, &op, "cam-a", "refused for credentials", |s| {
        s.problem == Some(StreamProblem::Credentials)
    })
    .await;
    let put = |t: &str, pw: &str| {
        http.put(format!("http://{addr}/api/cameras/cam-a/credentials"))
            .bearer_auth(t)
            .json(&json!({"username": test_server::USER, "password": pw}))
            .send()
    };
    assert_eq!(put(&op, test_server::PASSWORD).await.unwrap().status(), 403);
    let r = put(&admin, test_server::PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(test_server::PASSWORD), "{text}");
    let s: CameraStream = serde_json::from_str(&text).unwrap();
    assert!(s.has_credentials);
    until(addr, &op, "cam-a", "live", |s| s.state == StreamState::Live).await;
    // Its `online` value follows the stream, as any device's does.
    common::within(10, "cam-a online", || {
        engine
            .hub()
            .entity("cam-a")
            .is_some_and(|e| e.status == EntityStatus::Online)
    })
    .await;
    for (path, who) in [
        ("/api/sources", &admin),
        ("/api/audit", &admin),
        ("/api/cameras", &admin),
        ("/api/entities/cam-a", &op),
    ] {
        let body = http
            .get(format!("http://{addr}{path}"))
            .bearer_auth(who)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !body.contains(test_server::PASSWORD),
            "{path} shows the password: {body}"
        );
        if path == "/api/sources" {
            assert!(body.contains("camera cam-a"), "{body}");
        }
    }

    // Live video: refused outside one's units, played within them.
    let ws = |id: &str, t: &str| {
        let mut req = format!("ws://{addr}/api/cameras/{id}/live")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    assert!(ws("cam-b", &op).await.is_err(), "another unit's camera");
    let (mut sock, _) = ws("cam-a", &op).await.expect("live video");
    let first = sock.next().await.unwrap().unwrap();
    let state: CameraStream = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(state.camera, "cam-a");
    let (mut inits, mut frames, mut timed) = (0, 0, 0);
    let mut first_frame_key = None;
    // Sender reports come every few seconds: the first frames may not be timed yet.
    while frames < 30 || (timed == 0 && frames < 200) {
        let m = tokio::time::timeout(Duration::from_secs(5), sock.next())
            .await
            .expect("a message in 5 s")
            .unwrap()
            .unwrap();
        let Message::Binary(b) = m else { continue };
        let (kind, captured, mp4) = parse_live(&b).expect("a live message");
        match kind {
            LiveKind::Init => {
                assert_eq!(&mp4[4..8], b"ftyp");
                inits += 1;
            }
            LiveKind::Media => {
                assert!(inits > 0, "a frame before any init");
                assert_eq!(&mp4[4..8], b"moof");
                if first_frame_key.is_none() {
                    // sample_flags of the one sample: a sync sample (key frame).
                    first_frame_key =
                        Some(mp4.windows(4).any(|w| w == 0x0200_0000u32.to_be_bytes()));
                }
                frames += 1;
                if let Some(ms) = captured {
                    timed += 1;
                    let age = chrono::Utc::now().timestamp_millis() - ms;
                    assert!((-100..2000).contains(&age), "a frame {age} ms old");
                }
            }
        }
    }
    assert_eq!(
        first_frame_key,
        Some(true),
        "a viewer starts at a key frame"
    );
    assert!(timed > 0, "frames carry the camera's capture time");

    // A camera imported with its credentials in its address: they are kept apart, and work.
    let inline = srv.auth_url().replace(
        "rtsp://",
        &format!("rtsp://{}:{}@", test_server::USER, test_server::PASSWORD),
    );
    ingest(&engine, vec![camera("cam-c", A, &inline)]).await;
    until(
        addr,
        &op,
        "cam-c",
        "live with the imported credentials",
        |s| s.state == StreamState::Live && s.has_credentials,
    )
    .await;
    let shown = http
        .get(format!("http://{addr}/api/entities/cam-c"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !shown.contains(test_server::PASSWORD) && shown.contains(&srv.auth_url()),
        "{shown}"
    );

    // Credentials removed: the camera asks for them again.
    assert_eq!(put(&admin, "").await.unwrap().status(), 200);
    until(addr, &op, "cam-a", "refused again", |s| {
        !s.has_credentials && s.problem == Some(StreamProblem::Credentials)
    })
    .await;
    drop(srv);
}

/// A camera's HTTP still as IP cameras serve it: behind digest authentication (the realm and
/// nonce of a Hikvision-style challenge), counting every request it answers.
mod still_camera {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use md5::{Digest, Md5};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub const USER: &str = "viewer";
    pub const PASSWORD: &str = "still-secret";
    const REALM: &str = "IP Camera(C6128)";
    const NONCE: &str = "4e6a4e7a4d7a4530";

    /// The start of a JPEG file and a few bytes of picture (enough to be sniffed as one).
    pub const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        0xFF, 0xD9,
    ];

    pub struct Camera {
        pub addr: SocketAddr,
        pub hits: Arc<AtomicUsize>,
    }

    fn md5(s: &str) -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn field<'a>(h: &'a str, name: &str) -> Option<&'a str> {
        let at = h.find(&format!("{name}="))? + name.len() + 1;
        let rest = &h[at..];
        Some(match rest.strip_prefix('"') {
            Some(q) => &q[..q.find('"')?],
            None => rest.split(',').next()?.trim(),
        })
    }

    /// Checks an `Authorization: Digest …` header as RFC 7616 (MD5, qop=auth) says.
    fn authorized(headers: &HeaderMap) -> bool {
        let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(h) = h.strip_prefix("Digest ") else {
            return false;
        };
        let (Some(user), Some(uri), Some(nc), Some(cnonce), Some(resp)) = (
            field(h, "username"),
            field(h, "uri"),
            field(h, "nc"),
            field(h, "cnonce"),
            field(h, "response"),
        ) else {
            return false;
        };
        let ha1 = md5(&format!("{user}:{REALM}:{PASSWORD}"));
        let ha2 = md5(&format!("GET:{uri}"));
        user == USER && resp == md5(&format!("{ha1}:{NONCE}:{nc}:{cnonce}:auth:{ha2}"))
    }

    /// `/snap.jpg` (digest), `/open.jpg` (no credentials), `/page` (an HTML page).
    pub async fn start() -> Camera {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                // A camera is slow to encode a still: concurrent askers must wait on one.
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                let jpeg = || ([("content-type", "image/jpeg")], JPEG).into_response();
                let r: Response = match uri.path() {
                    "/open.jpg" => jpeg(),
                    "/page" => ([("content-type", "image/jpeg")], "<html><body>login</body></html>")
                        .into_response(),
                    "/snap.jpg" if authorized(&headers) => jpeg(),
                    "/snap.jpg" => (
                        StatusCode::UNAUTHORIZED,
                        [(
                            "www-authenticate",
                            format!(r#"Digest realm="{REALM}", qop="auth", nonce="{NONCE}", algorithm="MD5""#),
                        )],
                    )
                        .into_response(),
                    _ => StatusCode::NOT_FOUND.into_response(),
                };
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Camera { addr, hits }
    }
}

fn still_camera(id: &str, unit: &str, attrs: serde_json::Value) -> Item {
    let mut e = Entity::new(id, "Camera", &format!("Camera {id}"), Domain::Safety)
        .at(105.68, 18.67)
        .in_unit(unit, "Phường A");
    e.attributes = attrs.as_object().unwrap().clone();
    Item::Entity(Box::new(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stills_are_asked_of_the_camera_once_per_interval_whoever_asks() {
    use std::sync::atomic::Ordering;
    let cam = still_camera::start().await;
    let (_dir, engine, addr) = common::start_with(|c| {
        c.video.snapshot_every = Duration::from_secs(2);
    })
    .await;
    add(&engine, "admin", Role::Admin, &[]);
    add(&engine, "op-a", Role::Operator, &[A]);
    add(&engine, "op-b", Role::Operator, &[B]);
    let base = format!("http://{}", cam.addr);
    ingest(
        &engine,
        vec![
            common::unit(A, "Phường A"),
            common::unit(B, "Xã B"),
            still_camera(
                "open",
                A,
                json!({"snapshot_url": format!("{base}/open.jpg")}),
            ),
            still_camera(
                "locked",
                A,
                json!({"snapshot_url": format!("{base}/snap.jpg")}),
            ),
            still_camera("html", A, json!({"snapshot_url": format!("{base}/page")})),
            still_camera("demo", A, json!({"simulated": true})),
            still_camera("blind", A, json!({})),
        ],
    )
    .await;
    common::within(10, "cameras registered", || {
        engine.hub().entity("blind").is_some()
    })
    .await;
    let op = token(addr, "op-a").await;
    let admin = token(addr, "admin").await;
    let other = token(addr, "op-b").await;
    let http = reqwest::Client::new();
    let get = |t: &str, id: &str| {
        http.get(format!("http://{addr}/api/cameras/{id}/snapshot"))
            .bearer_auth(t)
            .send()
    };

    // Twelve screens at once: one request to the camera, twelve pictures.
    let all = futures_util::future::join_all((0..12).map(|_| get(&op, "open"))).await;
    assert_eq!(all.len(), 12);
    for r in all {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
        assert!(r.headers().contains_key("x-still-taken"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), still_camera::JPEG);
    }
    assert_eq!(cam.hits.load(Ordering::SeqCst), 1, "one fetch for all");
    // Within the interval: from memory. After it: asked again.
    assert_eq!(get(&op, "open").await.unwrap().status(), 200);
    assert_eq!(cam.hits.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&op, "open").await.unwrap().status(), 200);
    assert_eq!(
        cam.hits.load(Ordering::SeqCst),
        2,
        "refreshed after the interval"
    );

    // Another unit's operator sees nothing of it.
    let r = get(&other, "open").await.unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());

    // An answer that is not a picture is refused, saying so; it is never passed on.
    let r = get(&op, "html").await.unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(text.contains("not a JPEG or PNG"), "{text}");
    assert!(
        !text.contains("<html>") || text.contains("starts"),
        "{text}"
    );

    // Digest authentication: refused without credentials, taken with them (set by an
    // administrator, write-only: the answer has no stream and no secret).
    let r = get(&op, "locked").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("asks for credentials"));
    let put = |pw: &str| {
        http.put(format!("http://{addr}/api/cameras/locked/credentials"))
            .bearer_auth(&admin)
            .json(&json!({"username": still_camera::USER, "password": pw}))
            .send()
    };
    let r = put("wrong").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "null", "no live stream to show");
    let r = get(&op, "locked").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("refused the credentials"));
    let r = put(still_camera::PASSWORD).await.unwrap();
    assert!(!r.text().await.unwrap().contains(still_camera::PASSWORD));
    let r = get(&op, "locked").await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.headers());
    assert_eq!(r.bytes().await.unwrap().as_ref(), still_camera::JPEG);

    // The demo's simulated camera: a drawing of its place and the time, marked as such.
    let r = get(&op, "demo").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.headers()["x-still-simulated"], "true");
    let svg = r.text().await.unwrap();
    assert!(svg.contains("Camera demo") && svg.contains("Phường A") && svg.contains("MÔ PHỎNG"));

    // A camera with nothing to take a still from.
    let r = get(&op, "blind").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("snapshot_url"));
}

async fn clip(addr: SocketAddr, t: &str, id: i64) -> ioc_model::ClipInfo {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/clips/{id}"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn clip_until(
    addr: SocketAddr,
    t: &str,
    id: i64,
    state: ioc_model::ClipState,
) -> ioc_model::ClipInfo {
    for _ in 0..300 {
        let c = clip(addr, t, id).await;
        if c.state == state {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "clip {id} not {state:?} in 30 s: {:?}",
        clip(addr, t, id).await
    );
}

/// Frames of an MP4 file that ffprobe decodes, with its codec and duration.
fn probe(bytes: &[u8]) -> Option<(String, usize, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = match std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames:format=duration",
            "-of",
            "default=nw=1",
        ])
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            missing::missing(&format!("ffprobe (Debian ffmpeg): {e}"));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("ffprobe gave no {k}: {text}"))
            .to_string()
    };
    Some((
        field("codec_name"),
        field("nb_read_frames").parse().unwrap(),
        field("duration").parse().unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_clips_are_cut_from_the_kept_video_saved_downloaded_and_expire() {
    use ioc_model::ClipState;
    if let Err(e) = test_server::available() {
        return missing::missing(&e);
    }
    let srv = TestServer::start(&Options::default()).expect("RTSP test server");
    let (dir, engine, addr) = common::start_with(|c| {
        c.video.stall = Duration::from_secs(2);
        c.video.clips_keep = Duration::from_secs(8);
        c.video.clip_before = Duration::from_secs(1);
        c.video.clip_after = Duration::from_secs(1);
        // A rule that keeps evidence of its alerts by itself.
        c.rules = Some(vec![ioc_engine::config::RuleConfig {
            name: "tamper".into(),
            when: "metric == 'tamper' && value > 0.5".into(),
            severity: ioc_model::Severity::Major,
            message: "Camera bị che".into(),
            clip: true,
            ..Default::default()
        }]);
    })
    .await;
    add(&engine, "op-a", Role::Operator, &[A]);
    add(&engine, "op-b", Role::Operator, &[B]);
    add(&engine, "viewer-a", Role::Leader, &[A]);
    ingest(
        &engine,
        vec![
            common::unit(A, "Phường A"),
            common::unit(B, "Xã B"),
            camera("cam-a", A, &srv.url("cam0")),
        ],
    )
    .await;
    let op = token(addr, "op-a").await;
    let other = token(addr, "op-b").await;
    let viewer = token(addr, "viewer-a").await;
    common::within(10, "the camera's stream opened", || {
        engine.video().stream("cam-a").is_some()
    })
    .await;
    until(addr, &op, "cam-a", "live", |s| s.state == StreamState::Live).await;
    // Some video kept before the moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let http = reqwest::Client::new();
    let save = |t: &str, body: serde_json::Value| {
        http.post(format!("http://{addr}/api/cameras/cam-a/clips"))
            .bearer_auth(t)
            .json(&body)
            .send()
    };
    // Only those who work alerts, in the camera's unit.
    assert_eq!(save(&viewer, json!({})).await.unwrap().status(), 403);
    let r = save(&other, json!({})).await.unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    let r = save(&op, json!({"at": "2020-01-01T00:00:00Z"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a moment no longer kept");
    let r = save(&op, json!({"before_s": 2, "after_s": 2}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let first: ioc_model::ClipInfo = r.json().await.unwrap();
    assert_eq!(first.state, ClipState::Recording);
    let saved = clip_until(addr, &op, first.id, ClipState::Saved).await;
    let (from, to) = (saved.from.unwrap(), saved.to.unwrap());
    let span = (to - from).num_milliseconds();
    assert!(
        (2500..=4500).contains(&span),
        "about 2 s before and after: {span} ms"
    );
    assert!(from <= saved.at && to >= saved.at);

    // Downloaded as a file (never inline), the bytes it was fingerprinted with, and a real
    // decoder reads every frame of it.
    let r = http
        .get(format!("http://{addr}/api/clips/{}/file", first.id))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("cam-a-"),
        "{disposition}"
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, saved.size);
    use sha2::Digest as _;
    assert_eq!(
        Some(format!("{:x}", sha2::Sha256::digest(&bytes))),
        saved.sha256
    );
    if let Some((codec, frames, duration)) = probe(&bytes) {
        assert_eq!(codec, "h264");
        assert!(frames >= 30, "{frames} frames in {duration} s");
        assert!((2.5..=4.5).contains(&duration), "{duration} s");
    }
    // Another unit's operator sees neither the clip nor its file.
    for path in [
        format!("/api/clips/{}", first.id),
        format!("/api/clips/{}/file", first.id),
    ] {
        let r = http
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 403 | 404),
            "{path}: {}",
            r.status()
        );
    }
    let listed: Vec<ioc_model::ClipInfo> = http
        .get(format!("http://{addr}/api/clips?camera=cam-a"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());

    // Retention (clips_keep = 8 s): the next clip saved after that removes the first one's
    // file; its record stays, with its fingerprint and why.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second: ioc_model::ClipInfo = save(&op, json!({"before_s": 1, "after_s": 1}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    clip_until(addr, &op, second.id, ClipState::Saved).await;
    let gone = clip_until(addr, &op, first.id, ClipState::Expired).await;
    assert_eq!(gone.sha256, saved.sha256);
    assert!(
        gone.error
            .as_deref()
            .unwrap_or_default()
            .contains("retention"),
        "{gone:?}"
    );
    assert!(!dir
        .path()
        .join("clips")
        .join(format!("{}.mp4", first.id))
        .exists());
    assert!(dir
        .path()
        .join("clips")
        .join(format!("{}.mp4", second.id))
        .exists());
    let r = http
        .get(format!("http://{addr}/api/clips/{}/file", first.id))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("expired"));
    let listed: Vec<ioc_model::ClipInfo> = http
        .get(format!("http://{addr}/api/clips?camera=cam-a"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [second.id, first.id]
    );

    // A rule with `clip = true`: its alert gets a clip of its camera by itself, on its
    // timeline.
    ingest(
        &engine,
        vec![Item::Obs(ioc_engine::Obs {
            entity: "cam-a".into(),
            metric: "tamper".into(),
            time: chrono::Utc::now(),
            value: 1.0,
        })],
    )
    .await;
    let alert = {
        let mut found = None;
        for _ in 0..100 {
            found = engine
                .hub()
                .open_alerts()
                .into_iter()
                .find(|a| a.rule == "tamper");
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found.expect("the tamper alert")
    };
    let auto = {
        let mut got = None;
        for _ in 0..200 {
            let v: Vec<ioc_model::ClipInfo> = http
                .get(format!("http://{addr}/api/clips?alert={}", alert.id))
                .bearer_auth(&op)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(c) = v.into_iter().find(|c| c.state == ClipState::Saved) {
                got = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.expect("a clip saved for the rule's alert")
    };
    assert_eq!(auto.camera, "cam-a");
    assert_eq!(auto.created_by, "system");
    common::within(10, "the clip on the alert's timeline", || {
        common::block(engine.alert(alert.id))
            .ok()
            .flatten()
            .is_some_and(|a| {
                a.events.iter().any(|e| {
                    e.comment
                        .as_deref()
                        .is_some_and(|c| c.contains(&format!("Video #{}", auto.id)))
                })
            })
    })
    .await;
    drop(srv);
}

/// A camera is there to open the moment it arrives: the engine follows new cameras half a
/// second after a change, and an operator who opens one (or saves a clip of it) in between is
/// not told it has no stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_opens_the_moment_it_arrives() {
    let (_dir, engine, addr) = common::start_with(|_| {}).await;
    add(&engine, "op-a", Role::Operator, &[A]);
    let op = token(addr, "op-a").await;
    // Nothing answers at these addresses: what matters is that the stream is there to open.
    let arrive = |id: &'static str| {
        let engine = engine.clone();
        async move {
            ingest(
                &engine,
                vec![
                    common::unit(A, "Phường A"),
                    camera(id, A, "rtsp://127.0.0.1:9/none"),
                ],
            )
            .await;
            common::within(10, "the camera is known", || {
                engine.hub().entity(id).is_some()
            })
            .await;
        }
    };
    // The first camera is followed; the engine then waits half a second before it looks again.
    arrive("cam-1").await;
    common::within(10, "the first camera's stream", || {
        engine.video().feed("cam-1").is_some()
    })
    .await;
    arrive("cam-2").await;
    assert_eq!(stream(addr, &op, "cam-2").await.camera, "cam-2");
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/cameras/cam-2/clips"))
        .bearer_auth(&op)
        .json(&json!({"before_s": 0, "after_s": 0}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
}
