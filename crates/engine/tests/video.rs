//! Cameras' streams against a real RTSP server (GStreamer's, with live test patterns): frames
//! arrive, remux to MP4 that ffprobe decodes, latency is measured from the camera's RTCP
//! reports; and every fault a control room meets is a clear state: a camera killed mid-stream
//! (stalled, then back on the same timeline), wrong credentials, a codec browsers cannot play,
//! an address that answers a web page, nothing listening.

#[path = "common/missing.rs"]
mod missing;

use ioc_engine::clock::SystemClock;
use ioc_engine::sources::health::SourceRegistry;
use ioc_engine::video::feed::{Feed, Packet};
use ioc_engine::video::test_server::{self, Options, TestServer};
use ioc_engine::video::{Video, VideoConfig};
use ioc_model::{Domain, Entity, SourceState, StreamProblem, StreamState};
use missing::{missing, run_tool};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn server(opts: &Options) -> Option<TestServer> {
    if let Err(e) = test_server::available() {
        missing(&e);
        return None;
    }
    Some(TestServer::start(opts).expect("RTSP test server"))
}

fn camera(id: &str, url: &str) -> Entity {
    Entity::new(id, "Camera", id, Domain::Safety).with_attr("rtsp_url", url)
}

fn video(sources: Arc<SourceRegistry>) -> Arc<Video> {
    let cfg = VideoConfig {
        stall: Duration::from_secs(2),
        connect: Duration::from_secs(3),
        retry_max: Duration::from_secs(2),
        ..VideoConfig::default()
    };
    Video::new(
        cfg,
        sources,
        None,
        Arc::new(SystemClock),
        CancellationToken::new(),
    )
}

/// Waits for a camera's stream to satisfy `ok`, up to `secs`.
async fn until(
    v: &Video,
    cam: &str,
    secs: u64,
    what: &str,
    ok: impl Fn(&ioc_model::CameraStream) -> bool,
) -> ioc_model::CameraStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = v.stream(cam) {
            if ok(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{cam}: not {what} after {secs} s: {s:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Collects `n` frames from a viewer (init first).
async fn frames(feed: &Feed, n: usize) -> (Vec<u8>, Vec<Arc<ioc_engine::video::feed::Frame>>) {
    let mut w = feed.watch();
    let mut init = w.init.map(|i| i.segment.to_vec());
    let mut got = w.frames;
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), w.rx.recv())
            .await
            .expect("a frame in 5 s")
        {
            Ok(Packet::Frame(f)) => got.push(f),
            Ok(Packet::Init(i)) => {
                init = Some(i.segment.to_vec());
                got.clear();
            }
            Ok(Packet::State(_)) => {}
            Err(e) => panic!("viewer: {e}"),
        }
    }
    (init.expect("an init segment"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_streams_to_playable_mp4_and_survives_being_killed() {
    let Some(mut srv) = server(&Options::default()) else {
        return;
    };
    let sources = Arc::new(SourceRegistry::default());
    let v = video(sources.clone());
    v.apply(&[camera("cam-vinh-1", &srv.url("cam0"))]);
    let live = until(&v, "cam-vinh-1", 20, "live", |s| {
        s.state == StreamState::Live
    })
    .await;
    assert_eq!(
        live.mime
            .as_deref()
            .map(|m| m.starts_with("video/mp4; codecs=\"avc1.")),
        Some(true),
        "{live:?}"
    );
    assert_eq!((live.width, live.height), (Some(320), Some(180)));
    let feed = v.feed("cam-vinh-1").unwrap();
    let (init, got) = frames(&feed, 45).await;
    assert!(got[0].key, "a viewer starts at a key frame");
    for w in got.windows(2) {
        assert!(w[1].decode_time > w[0].decode_time, "one timeline");
    }
    // What a browser is given is MP4 that a real decoder reads, frame by frame.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    let mut mp4 = init.clone();
    for f in &got {
        mp4.extend_from_slice(&f.segment);
    }
    std::fs::write(&path, &mp4).unwrap();
    if let Some(out) = run_tool(
        std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&path),
        "Debian ffmpeg",
    ) {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "ffprobe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: Vec<&str> = text.trim().split(',').collect();
        assert_eq!(&fields[..3], ["h264", "320", "180"], "{text}");
        let decoded: usize = fields
            .get(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("ffprobe read no frames: {text}"));
        assert_eq!(decoded, got.len(), "every frame decodes: {text}");
    }
    // The camera's clock, from its RTCP sender reports, says how late frames are.
    let s = until(&v, "cam-vinh-1", 15, "timed by RTCP", |s| {
        s.latency_ms.is_some()
    })
    .await;
    let lat = s.latency_ms.unwrap();
    eprintln!(
        "camera-to-engine latency {lat:.1} ms, {:.1} fps, {} frames decoded by ffprobe",
        s.fps,
        got.len()
    );
    assert!(
        (-50.0..1000.0).contains(&lat),
        "camera-to-engine latency {lat} ms"
    );
    assert!(s.fps > 10.0, "{s:?}");
    let health = sources
        .get("camera cam-vinh-1")
        .expect("listed with the sources");
    assert_eq!(health.status().state, SourceState::Connected);
    assert!(health.status().detail.unwrap().contains("/cam0"));

    // The camera loses power: its viewers see it stalled, the sources screen too.
    let mut viewer = feed.watch();
    let port = (srv.port, srv.auth_port);
    srv.kill();
    let stalled = until(&v, "cam-vinh-1", 10, "stalled", |s| {
        s.state == StreamState::Stalled
    })
    .await;
    assert!(
        matches!(
            stalled.problem,
            Some(StreamProblem::Stalled | StreamProblem::Ended | StreamProblem::Unreachable)
        ),
        "{stalled:?}"
    );
    assert!(stalled.retry_in_s.is_some());
    assert_ne!(health.status().state, SourceState::Connected);
    // The last frame before the power went (frames may have come until the kill).
    let last = feed.recent().last().map(|f| f.decode_time).unwrap();
    // Power back (same address): live again, on the same timeline for the viewer that stayed.
    let _srv = TestServer::start(&Options {
        port: port.0,
        auth_port: port.1,
        ..Options::default()
    })
    .expect("restart");
    let back = until(&v, "cam-vinh-1", 20, "live again", |s| {
        s.state == StreamState::Live
    })
    .await;
    assert!(back.reconnects >= 1, "{back:?}");
    let mut states = Vec::new();
    let next = loop {
        match tokio::time::timeout(Duration::from_secs(5), viewer.rx.recv())
            .await
            .expect("packets")
        {
            Ok(Packet::State(s)) => states.push(s.state),
            Ok(Packet::Frame(f)) if f.decode_time > last => break f,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        states.contains(&StreamState::Stalled) && states.contains(&StreamState::Live),
        "{states:?}"
    );
    assert!(next.key, "after a gap the viewer resumes at a key frame");
    assert!(next.decode_time > last);
    until(
        &v,
        "cam-vinh-1",
        5,
        "connected on the sources screen",
        |_| health.status().state == SourceState::Connected,
    )
    .await;
}

/// An HTTP server that answers every request with a web page (a camera's admin UI at the
/// address given as the stream).
async fn web_page() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let body = "<html><body>Camera login</body></html>";
                let _ = s
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_clear_states_and_credentials_fix_the_one_they_should() {
    let Some(srv) = server(&Options::default()) else {
        return;
    };
    let v = video(Arc::new(SourceRegistry::default()));
    let html = web_page().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cams = vec![
        camera("no-creds", &srv.auth_url()),
        camera("vp8", &srv.url("vp8")),
        camera("web", &format!("rtsp://127.0.0.1:{html}/stream")),
        camera("off", &format!("rtsp://127.0.0.1:{closed}/stream")),
        camera("h265", &srv.url("h265")),
        camera("bad-url", "http://127.0.0.1/x"),
        camera("udp", &srv.url("cam0")).with_attr("rtsp_transport", "udp"),
    ];
    v.apply(&cams);
    let failed = |p: StreamProblem| {
        move |s: &ioc_model::CameraStream| s.state == StreamState::Failed && s.problem == Some(p)
    };
    until(
        &v,
        "no-creds",
        20,
        "refused for credentials",
        failed(StreamProblem::Credentials),
    )
    .await;
    let s = until(
        &v,
        "vp8",
        20,
        "unsupported",
        failed(StreamProblem::UnsupportedCodec),
    )
    .await;
    assert!(s.detail.unwrap().contains("VP8"));
    until(&v, "web", 20, "not RTSP", failed(StreamProblem::NotRtsp)).await;
    until(
        &v,
        "off",
        20,
        "unreachable",
        failed(StreamProblem::Unreachable),
    )
    .await;
    let s = until(&v, "bad-url", 5, "refused", |s| {
        s.state == StreamState::Failed
    })
    .await;
    assert!(s.detail.unwrap().contains("rtsp://"));
    let s = until(&v, "h265", 30, "live", |s| s.state == StreamState::Live).await;
    assert!(s.mime.unwrap().contains("hvc1"));
    until(&v, "udp", 20, "live over UDP", |s| {
        s.state == StreamState::Live
    })
    .await;

    // The right credentials: the stream is opened again with them, and they never show.
    v.set_credentials(
        "no-creds",
        Some((test_server::USER.into(), test_server::PASSWORD.into())),
    );
    v.apply(&cams);
    let s = until(&v, "no-creds", 20, "live with credentials", |s| {
        s.state == StreamState::Live
    })
    .await;
    assert!(s.has_credentials);
    let shown = serde_json::to_string(&v.streams()).unwrap();
    assert!(!shown.contains(test_server::PASSWORD), "{shown}");
    // Taken away: the camera is dropped and its feed gone.
    v.apply(&cams[1..]);
    assert!(v.stream("no-creds").is_none());
}
