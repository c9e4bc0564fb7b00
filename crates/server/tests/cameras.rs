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
    engine
        .sender()
        .ingest(
            "t",
            vec![
                common::unit(A, "Phường A"),
                common::unit(B, "Xã B"),
                camera("cam-a", A, &srv.auth_url()),
                camera("cam-b", B, &srv.url("cam0")),
            ],
        )
        .await
        .unwrap();
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
    engine
        .sender()
        .ingest("t", vec![camera("cam-c", A, &inline)])
        .await
        .unwrap();
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
