//! One camera's live picture inside the engine: its stream's state, the current
//! initialization segment, the frames since the last key frame (so a new viewer starts at
//! once) and the last minute (evidence), and a broadcast to the viewers.
//!
//! A feed outlives the RTSP sessions that fill it: when a stream is opened again after a stall,
//! its frames continue the same timeline, so a player that stayed open carries on.

use super::fmp4;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ioc_model::{CameraStream, StreamProblem, StreamState};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// What a viewer is sent, in order.
#[derive(Clone, Debug)]
pub enum Packet {
    Init(Arc<Init>),
    Frame(Arc<Frame>),
    State(Arc<CameraStream>),
}

/// An initialization segment and what a player needs to know about it.
#[derive(Debug, PartialEq)]
pub struct Init {
    pub segment: Bytes,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub timescale: u32,
}

/// One frame, ready to send: `moof` + `mdat`.
#[derive(Debug)]
pub struct Frame {
    pub segment: Bytes,
    pub key: bool,
    /// When the camera captured it (its clock, from RTCP), Unix milliseconds.
    pub captured_ms: Option<i64>,
    /// When the engine received it.
    pub received: DateTime<Utc>,
    pub received_at: Instant,
    /// On the feed's timeline, in the init's timescale.
    pub decode_time: u64,
    pub duration: u32,
    /// The frame itself (length-prefixed NAL units), for clips written later.
    pub data: Bytes,
    /// The init segment it belongs to.
    pub init: Arc<Init>,
}

/// How many packets a viewer may fall behind before it skips to the next key frame.
const VIEWER_BACKLOG: usize = 512;

struct Inner {
    status: CameraStream,
    init: Option<Arc<Init>>,
    /// From the last key frame on.
    gop: Vec<Arc<Frame>>,
    /// The last `keep` of frames, starting at a key frame.
    ring: VecDeque<Arc<Frame>>,
    sequence: u32,
    /// Where the next frame goes when a session starts: the end of the previous one.
    next_decode_time: u64,
    /// This session's first frame: (its RTP time, its place on the timeline).
    session_base: Option<(i64, u64)>,
    last_decode_time: Option<u64>,
    duration: u32,
    /// Arrival of recent frames, for the frame rate.
    arrivals: VecDeque<Instant>,
    /// It has been live since the feed began: a failure after that is a lost signal
    /// (stalled) until it is live again, not a camera that never worked (failed).
    ever_live: bool,
}

pub struct Feed {
    camera: Arc<str>,
    keep: Duration,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Packet>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("camera", &self.camera)
            .finish()
    }
}

/// What a new viewer starts from.
pub struct Watch {
    pub status: Arc<CameraStream>,
    pub init: Option<Arc<Init>>,
    /// The frames since the last key frame.
    pub frames: Vec<Arc<Frame>>,
    pub rx: broadcast::Receiver<Packet>,
}

impl Feed {
    pub fn new(camera: &str, keep: Duration, now: DateTime<Utc>) -> Feed {
        let (tx, _) = broadcast::channel(VIEWER_BACKLOG);
        Feed {
            camera: camera.into(),
            keep,
            tx,
            inner: Mutex::new(Inner {
                status: CameraStream {
                    camera: camera.into(),
                    unit: None,
                    state: StreamState::Connecting,
                    problem: None,
                    detail: None,
                    mime: None,
                    width: None,
                    height: None,
                    fps: 0.0,
                    frames: 0,
                    reconnects: 0,
                    since: now,
                    last_frame_at: None,
                    latency_ms: None,
                    retry_in_s: None,
                    has_credentials: false,
                },
                init: None,
                gop: Vec::new(),
                ring: VecDeque::new(),
                sequence: 0,
                next_decode_time: 0,
                session_base: None,
                last_decode_time: None,
                duration: 0,
                arrivals: VecDeque::new(),
                ever_live: false,
            }),
        }
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    pub fn status(&self) -> CameraStream {
        let mut i = self.inner.lock().unwrap();
        refresh_fps(&mut i, Instant::now());
        i.status.clone()
    }

    /// Starts watching: what there is now, then everything after it, with nothing lost in
    /// between (both under one lock).
    pub fn watch(&self) -> Watch {
        let i = self.inner.lock().unwrap();
        Watch {
            status: Arc::new(i.status.clone()),
            init: i.init.clone(),
            frames: i.gop.clone(),
            rx: self.tx.subscribe(),
        }
    }

    pub fn viewers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The frames kept and everything after them, with nothing lost in between (for a clip
    /// that reaches past now).
    pub fn recent_and_watch(&self) -> (Vec<Arc<Frame>>, broadcast::Receiver<Packet>) {
        let i = self.inner.lock().unwrap();
        (i.ring.iter().cloned().collect(), self.tx.subscribe())
    }

    /// The frames kept (the last minute or so), oldest first, from a key frame.
    pub fn recent(&self) -> Vec<Arc<Frame>> {
        self.inner.lock().unwrap().ring.iter().cloned().collect()
    }

    fn set_status(&self, i: &mut Inner, change: impl FnOnce(&mut CameraStream)) {
        let before = (i.status.state, i.status.problem, i.status.detail.clone());
        change(&mut i.status);
        if (i.status.state, i.status.problem, i.status.detail.clone()) != before {
            let _ = self.tx.send(Packet::State(Arc::new(i.status.clone())));
        }
    }

    /// A new session is being opened.
    pub fn connecting(&self, now: DateTime<Utc>, again: bool) {
        let mut i = self.inner.lock().unwrap();
        i.session_base = None;
        if again {
            i.status.reconnects += 1;
        }
        let keep_problem = i.status.state != StreamState::Live;
        self.set_status(&mut i, |s| {
            if s.state == StreamState::Live || s.state == StreamState::Connecting {
                s.since = now;
            }
            if s.state != StreamState::Stalled && s.state != StreamState::Failed {
                s.state = StreamState::Connecting;
            }
            if !keep_problem {
                s.problem = None;
                s.detail = None;
            }
            s.retry_in_s = None;
        });
    }

    /// The session failed or stalled; the next attempt is in `retry`.
    pub fn failed(
        &self,
        problem: StreamProblem,
        detail: String,
        retry: Duration,
        now: DateTime<Utc>,
    ) {
        let mut i = self.inner.lock().unwrap();
        i.session_base = None;
        let ever_live = i.ever_live;
        self.set_status(&mut i, |s| {
            let state = if ever_live {
                StreamState::Stalled
            } else {
                StreamState::Failed
            };
            if s.state != state {
                s.since = now;
            }
            s.state = state;
            s.problem = Some(problem);
            s.detail = Some(detail);
            s.retry_in_s = Some(retry.as_secs_f64());
        });
    }

    pub fn set_has_credentials(&self, yes: bool) {
        self.inner.lock().unwrap().status.has_credentials = yes;
    }

    /// The stream's parameters (at the start, or changed mid-stream).
    pub fn set_init(&self, init: Init) {
        let mut i = self.inner.lock().unwrap();
        if i.init.as_deref() == Some(&init) {
            return;
        }
        i.status.mime = Some(init.mime.clone());
        i.status.width = Some(init.width);
        i.status.height = Some(init.height);
        let init = Arc::new(init);
        i.init = Some(init.clone());
        // A player starts again from the new init and the next key frame.
        i.gop.clear();
        let _ = self.tx.send(Packet::Init(init));
    }

    pub fn has_init(&self) -> bool {
        self.inner.lock().unwrap().init.is_some()
    }

    /// A frame from the camera: `rtp_time` in the init's timescale (RTP's extended clock),
    /// `data` length-prefixed NAL units. Frames before the first key frame of a new init are
    /// dropped: nothing could decode them.
    pub fn push(
        &self,
        rtp_time: i64,
        key: bool,
        data: Bytes,
        captured_ms: Option<i64>,
        now: DateTime<Utc>,
        fps_hint: Option<f64>,
    ) -> bool {
        let at = Instant::now();
        let mut i = self.inner.lock().unwrap();
        let Some(init) = i.init.clone() else {
            return false;
        };
        if i.gop.is_empty() && !key {
            return false;
        }
        let decode_time = match i.session_base {
            Some((rtp0, t0)) => t0 + (rtp_time - rtp0).max(0) as u64,
            None => {
                let t0 = i.next_decode_time;
                i.session_base = Some((rtp_time, t0));
                i.last_decode_time = None;
                t0
            }
        };
        if let Some(prev) = i.last_decode_time {
            if decode_time > prev {
                i.duration = (decode_time - prev).min(u64::from(init.timescale)) as u32;
            }
        }
        if i.duration == 0 {
            let fps = fps_hint.filter(|f| *f >= 1.0).unwrap_or(25.0);
            i.duration = (f64::from(init.timescale) / fps) as u32;
        }
        let duration = i.duration;
        i.last_decode_time = Some(decode_time);
        i.next_decode_time = decode_time + u64::from(duration);
        i.sequence = i.sequence.wrapping_add(1);
        let segment = fmp4::media_segment(i.sequence, decode_time, duration, key, &data);
        let frame = Arc::new(Frame {
            segment: Bytes::from(segment),
            key,
            captured_ms,
            received: now,
            received_at: at,
            decode_time,
            duration,
            data,
            init,
        });
        if key {
            i.gop.clear();
        }
        i.gop.push(frame.clone());
        if key || !i.ring.is_empty() {
            i.ring.push_back(frame.clone());
        }
        // Keep `keep`, cut at a key frame so what is kept can be played.
        while let Some(first) = i.ring.front() {
            if at.duration_since(first.received_at) <= self.keep {
                break;
            }
            i.ring.pop_front();
            while i.ring.front().is_some_and(|f| !f.key) {
                i.ring.pop_front();
            }
        }
        i.arrivals.push_back(at);
        refresh_fps(&mut i, at);
        i.status.frames += 1;
        i.status.last_frame_at = Some(now);
        if let Some(c) = captured_ms {
            let lat = (now.timestamp_millis() - c) as f64;
            i.status.latency_ms = Some(match i.status.latency_ms {
                Some(l) => l * 0.9 + lat * 0.1,
                None => lat,
            });
        }
        let went_live = i.status.state != StreamState::Live;
        i.ever_live = true;
        if went_live {
            self.set_status(&mut i, |s| {
                s.state = StreamState::Live;
                s.since = now;
                s.problem = None;
                s.detail = None;
                s.retry_in_s = None;
            });
        }
        let _ = self.tx.send(Packet::Frame(frame));
        went_live
    }
}

fn refresh_fps(i: &mut Inner, now: Instant) {
    let window = Duration::from_secs(3);
    while i
        .arrivals
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        i.arrivals.pop_front();
    }
    i.status.fps = i.arrivals.len() as f64 / window.as_secs_f64();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Init {
        Init {
            segment: Bytes::from_static(b"init"),
            mime: "video/mp4; codecs=\"avc1.42C01E\"".into(),
            width: 320,
            height: 180,
            timescale: 90_000,
        }
    }

    fn frame(f: &Feed, rtp: i64, key: bool) -> bool {
        f.push(
            rtp,
            key,
            Bytes::from_static(&[0, 0, 0, 1, 5]),
            None,
            Utc::now(),
            Some(15.0),
        )
    }

    #[test]
    fn a_viewer_starts_at_the_last_key_frame_and_a_new_session_continues_the_timeline() {
        let f = Feed::new("cam", Duration::from_secs(60), Utc::now());
        f.set_init(init());
        assert!(!frame(&f, 0, false), "nothing before the first key frame");
        assert!(frame(&f, 1000, true), "the first key frame makes it live");
        frame(&f, 7000, false);
        frame(&f, 13000, true);
        frame(&f, 19000, false);
        let w = f.watch();
        assert_eq!(w.frames.len(), 2);
        assert!(w.frames[0].key);
        assert_eq!(
            w.frames.iter().map(|x| x.decode_time).collect::<Vec<_>>(),
            [12000, 18000]
        );
        assert_eq!(w.status.state, StreamState::Live);

        f.failed(
            StreamProblem::Stalled,
            "no frame for 5 s".into(),
            Duration::from_secs(1),
            Utc::now(),
        );
        assert_eq!(f.status().state, StreamState::Stalled);
        f.connecting(Utc::now(), true);
        assert_eq!(
            f.status().state,
            StreamState::Stalled,
            "stalled until a frame comes"
        );
        // The new session's RTP clock starts anywhere: its first frame follows the last one.
        frame(&f, 555_000, true);
        let w2 = f.watch();
        assert_eq!(w2.frames[0].decode_time, 18000 + 6000);
        assert_eq!(f.status().state, StreamState::Live);
        assert_eq!(f.status().reconnects, 1);
        assert_eq!(f.status().frames, 5);
        // The first viewer got the states and the frame.
        let mut rx = w.rx;
        let mut kinds = Vec::new();
        while let Ok(p) = rx.try_recv() {
            kinds.push(match p {
                Packet::Init(_) => "init".to_string(),
                Packet::Frame(_) => "frame".into(),
                Packet::State(s) => s.state.as_str().into(),
            });
        }
        assert_eq!(kinds, ["stalled", "live", "frame"]);
    }

    #[test]
    fn the_ring_keeps_its_time_from_a_key_frame() {
        let f = Feed::new("cam", Duration::from_millis(0), Utc::now());
        f.set_init(init());
        frame(&f, 0, true);
        frame(&f, 6000, false);
        std::thread::sleep(Duration::from_millis(5));
        frame(&f, 12000, false);
        assert!(f.recent().is_empty() || f.recent()[0].key);
        frame(&f, 18000, true);
        let r = f.recent();
        assert_eq!(r.len(), 1);
        assert!(r[0].key);
    }
}
