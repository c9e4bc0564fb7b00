//! Cameras' live video: how each camera's stream is doing, and the envelope its frames travel
//! in to a screen.
//!
//! A camera is an [`crate::Entity`] of type `Camera` whose attributes say where its video is
//! (`rtsp_url`, `snapshot_url`, `onvif_url`); its credentials are kept apart, write-only. The
//! engine keeps each stream open, remuxes it to fragmented MP4 without transcoding and sends
//! it to every viewer over one WebSocket (`/api/cameras/{id}/live`), so a browser and the
//! desktop window play it through Media Source Extensions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The entity attribute with a camera's RTSP address (credentials never in it).
pub const RTSP_URL: &str = "rtsp_url";
/// The entity attribute choosing RTSP over `tcp` (the default: through firewalls and NAT,
/// no loss) or `udp`.
pub const RTSP_TRANSPORT: &str = "rtsp_transport";

/// The entity attribute with a camera's HTTP still (a JPEG or PNG; credentials never in it).
pub const SNAPSHOT_URL: &str = "snapshot_url";
/// The entity attribute with a camera's ONVIF device service address.
pub const ONVIF_URL: &str = "onvif_url";
/// The entity attribute marking a camera of the demo's simulation: it has no picture of its
/// own, so its stills are drawn (its place and the time, marked as simulated).
pub const SIMULATED: &str = "simulated";

/// The entity attribute naming the cameras that watch a device (ids, as a list or separated
/// by commas): its alerts open with them first.
pub const CAMERAS: &str = "cameras";

/// The cameras a device names as watching it.
pub fn named_by(e: &crate::Entity) -> Vec<String> {
    match e.attributes.get(CAMERAS) {
        Some(serde_json::Value::Array(v)) => v
            .iter()
            .filter_map(|x| x.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(serde_json::Value::String(s)) => s
            .split([',', ';'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the camera belongs to the demo's simulation.
pub fn is_simulated(e: &crate::Entity) -> bool {
    e.attributes.get(SIMULATED).and_then(|v| v.as_bool()) == Some(true)
}

/// Whether the camera has a live stream.
pub fn has_live(e: &crate::Entity) -> bool {
    attr(e, RTSP_URL).is_some()
}

/// Whether a still of the camera can be had (`GET /api/cameras/{id}/snapshot`).
pub fn has_still(e: &crate::Entity) -> bool {
    attr(e, SNAPSHOT_URL).is_some() || is_simulated(e)
}

fn attr<'a>(e: &'a crate::Entity, key: &str) -> Option<&'a str> {
    e.attributes
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// At most this many cameras go with an alert, however many are named.
pub const MAX_RELATED: usize = 4;

/// The cameras to show with an alert about `entity`: those `named` (by its rule, its SOP or
/// the device itself), then the device itself when it is a camera with a picture (a stream
/// or a still), then the nearest cameras with one within `radius_m`; at most `n` (more when
/// more are named, up to [`MAX_RELATED`]); each with whether it has a live stream.
pub fn related_cameras(
    entities: &std::collections::HashMap<String, crate::Entity>,
    entity: Option<&str>,
    named: &[String],
    n: usize,
    radius_m: f64,
) -> Vec<(String, bool)> {
    let shows = |c: &crate::Entity| has_live(c) || has_still(c);
    let mut out: Vec<(String, bool)> = Vec::new();
    let add = |c: &crate::Entity, out: &mut Vec<(String, bool)>| {
        if shows(c) && !out.iter().any(|(id, _)| *id == c.id) {
            out.push((c.id.clone(), has_live(c)));
        }
    };
    for id in named {
        if let Some(c) = entities.get(id) {
            add(c, &mut out);
        }
    }
    let n = n.max(out.len()).min(MAX_RELATED);
    if let Some(e) = entity.and_then(|id| entities.get(id)) {
        add(e, &mut out);
        if let Some((lon, lat)) = e.position() {
            let mut near: Vec<(f64, &crate::Entity)> = entities
                .values()
                .filter(|c| c.id != e.id && shows(c))
                .filter_map(|c| {
                    let (x, y) = c.position()?;
                    // Equirectangular: plenty at a few kilometres.
                    let dx = (x - lon).to_radians() * lat.to_radians().cos();
                    let dy = (y - lat).to_radians();
                    let d = (dx * dx + dy * dy).sqrt() * 6_371_000.0;
                    (d <= radius_m).then_some((d, c))
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
            for (_, c) in near {
                add(c, &mut out);
            }
        }
    }
    out.truncate(n);
    out
}

/// Where a camera's stream is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Opening (or opening again after a failure, see `retry_in_s`).
    #[default]
    Connecting,
    /// Frames are arriving.
    Live,
    /// It was live, then lost its signal (no frame for the stall timeout, the camera gone,
    /// …; `problem` says what now); being reopened until it is live again.
    Stalled,
    /// It has not been opened since it was configured; `problem` says why. Retried with
    /// back-off.
    Failed,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Connecting => "connecting",
            StreamState::Live => "live",
            StreamState::Stalled => "stalled",
            StreamState::Failed => "failed",
        }
    }
}

/// Why a stream is not live, in terms an operator can act on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StreamProblem {
    /// Nothing answers at the address (refused, unreachable, timed out).
    Unreachable,
    /// The camera refused the credentials (or none are set and it wants some).
    Credentials,
    /// Something answers, but not RTSP (a web page, another protocol).
    NotRtsp,
    /// The camera sends a codec browsers cannot play from fragmented MP4 (MJPEG, VP8, …).
    UnsupportedCodec,
    /// The camera's description has no video.
    NoVideo,
    /// No frame for the stall timeout.
    Stalled,
    /// The camera closed the stream.
    Ended,
    /// Anything else the camera or the network did wrong; `detail` has the words.
    Protocol,
}

impl StreamProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamProblem::Unreachable => "unreachable",
            StreamProblem::Credentials => "credentials",
            StreamProblem::NotRtsp => "not_rtsp",
            StreamProblem::UnsupportedCodec => "unsupported_codec",
            StreamProblem::NoVideo => "no_video",
            StreamProblem::Stalled => "stalled",
            StreamProblem::Ended => "ended",
            StreamProblem::Protocol => "protocol",
        }
    }
}

/// One camera's stream as the engine sees it now.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CameraStream {
    /// The camera's entity id.
    pub camera: String,
    /// The camera's unit (commune) code, when it has one.
    #[serde(default)]
    pub unit: Option<String>,
    pub state: StreamState,
    /// Why it is not live (absent while live or connecting the first time).
    #[serde(default)]
    pub problem: Option<StreamProblem>,
    /// The camera's or the network's own words (passwords masked).
    #[serde(default)]
    pub detail: Option<String>,
    /// The MIME type a Media Source Extensions player is given, e.g.
    /// `video/mp4; codecs="avc1.42C01E"`; known once the stream is described.
    #[serde(default)]
    pub mime: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Frames per second over the last few seconds.
    #[serde(default)]
    pub fps: f64,
    /// Frames received since the engine started.
    #[serde(default)]
    pub frames: u64,
    /// Times the stream was opened again after a failure or a stall.
    #[serde(default)]
    pub reconnects: u32,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Camera to engine, from the camera's RTCP sender reports (its clock and ours).
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Seconds until the next attempt, while connecting again after a failure.
    #[serde(default)]
    pub retry_in_s: Option<f64>,
    /// Whether credentials are set for it (their values are never shown).
    #[serde(default)]
    pub has_credentials: bool,
}

/// Credentials for a camera: written, never read back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CameraCredentials {
    pub username: String,
    /// Empty removes the credentials.
    pub password: String,
}

/// Where an evidence clip is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClipState {
    /// Waiting for the video after the moment (`to` has not come yet).
    Recording,
    /// Written to disk; `GET /api/clips/{id}/file` gives it.
    Saved,
    /// Nothing could be saved; `error` says why (no video kept around the moment, the
    /// engine stopped while recording, the disk refused it).
    Failed,
    /// Removed by the retention limits (`[video] clips_max_mb`, `clips_keep`); its record
    /// stays, with its fingerprint.
    Expired,
}

impl ClipState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClipState::Recording => "recording",
            ClipState::Saved => "saved",
            ClipState::Failed => "failed",
            ClipState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ClipState> {
        Some(match s {
            "recording" => ClipState::Recording,
            "saved" => ClipState::Saved,
            "failed" => ClipState::Failed,
            "expired" => ClipState::Expired,
            _ => return None,
        })
    }
}

/// An evidence clip: a camera's video around a moment, cut from the minute the engine keeps
/// of every stream and what follows, saved as an MP4 file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClipInfo {
    pub id: i64,
    pub camera: String,
    pub camera_name: String,
    /// The camera's unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// The alert it was saved for.
    #[serde(default)]
    pub alert: Option<i64>,
    /// The incident it was saved for.
    #[serde(default)]
    pub incident: Option<i64>,
    /// The moment it is about.
    pub at: DateTime<Utc>,
    /// What was asked: this long before the moment and after it.
    pub before_s: u32,
    pub after_s: u32,
    /// The video it holds (received times of its first and last frames).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    pub state: ClipState,
    #[serde(default)]
    pub error: Option<String>,
    /// Bytes on disk (0 until saved).
    pub size: u64,
    /// SHA-256 of the file, hex: evidence can be shown to be unchanged.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The file's name for a download: camera, date and time.
    pub file_name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/cameras/{id}/clips`: a clip around a moment, for an alert or incident.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClipRequest {
    #[serde(default)]
    pub alert: Option<i64>,
    #[serde(default)]
    pub incident: Option<i64>,
    /// The moment (default: now).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Seconds before the moment (default `[video] clip_before`; at most what is kept).
    #[serde(default)]
    pub before_s: Option<u32>,
    /// Seconds after it (default `[video] clip_after`; at most 300).
    #[serde(default)]
    pub after_s: Option<u32>,
}

/// The first byte of each binary message on `/api/cameras/{id}/live`.
///
/// A binary message is: this kind (1 byte), the frame's capture time in Unix milliseconds
/// from the camera's clock (8 bytes, big-endian; 0 when not known yet), then fragmented MP4.
/// Text messages are [`CameraStream`] as JSON, sent whenever the state changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LiveKind {
    /// An initialization segment (`ftyp` + `moov`): a player starts (again) from it.
    Init = 0,
    /// One frame as `moof` + `mdat`; the first after an init is a key frame.
    Media = 1,
}

/// The header's length in bytes.
pub const LIVE_HEADER: usize = 9;

/// Writes a binary message's header.
pub fn live_header(kind: LiveKind, captured_ms: Option<i64>) -> [u8; LIVE_HEADER] {
    let mut h = [0u8; LIVE_HEADER];
    h[0] = kind as u8;
    h[1..].copy_from_slice(&captured_ms.unwrap_or(0).max(0).to_be_bytes());
    h
}

/// Reads a binary message: its kind, capture time and the MP4 bytes.
pub fn parse_live(msg: &[u8]) -> Option<(LiveKind, Option<i64>, &[u8])> {
    if msg.len() < LIVE_HEADER {
        return None;
    }
    let kind = match msg[0] {
        0 => LiveKind::Init,
        1 => LiveKind::Media,
        _ => return None,
    };
    let ms = i64::from_be_bytes(msg[1..LIVE_HEADER].try_into().ok()?);
    Some((kind, (ms > 0).then_some(ms), &msg[LIVE_HEADER..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_header_round_trips() {
        let mut m = live_header(LiveKind::Media, Some(1_765_000_000_123)).to_vec();
        m.extend_from_slice(b"moof");
        let (k, t, rest) = parse_live(&m).unwrap();
        assert_eq!(
            (k, t, rest),
            (LiveKind::Media, Some(1_765_000_000_123), &b"moof"[..])
        );
        let m = live_header(LiveKind::Init, None);
        assert_eq!(parse_live(&m), Some((LiveKind::Init, None, &[][..])));
        assert_eq!(parse_live(&[7; 12]), None);
        assert_eq!(parse_live(&[1; 3]), None);
    }
}

#[cfg(test)]
mod related_tests {
    use super::*;
    use crate::{Domain, Entity};
    use std::collections::HashMap;

    fn at(id: &str, kind: &str, lon: f64, lat: f64, stream: bool) -> (String, Entity) {
        let mut e = Entity::new(id, kind, id, Domain::Safety).at(lon, lat);
        if stream {
            e = e.with_attr("rtsp_url", format!("rtsp://10.0.0.1/{id}"));
        }
        (id.to_string(), e)
    }

    fn ids(v: Vec<(String, bool)>) -> Vec<String> {
        v.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn an_alerts_cameras_are_itself_then_the_nearest_with_a_picture() {
        // 0.001° of latitude ≈ 111 m.
        let m: HashMap<String, Entity> = [
            at("gauge", "WaterLevelGauge", 105.68, 18.67, false),
            at("near", "Camera", 105.68, 18.675, true),
            at("far", "Camera", 105.68, 18.69, true),
            at("no-stream", "Camera", 105.68, 18.6701, false),
            at("too-far", "Camera", 105.68, 18.8, true),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            related_cameras(&m, Some("gauge"), &[], 3, 3000.0),
            [("near".to_string(), true), ("far".to_string(), true)]
        );
        assert_eq!(
            ids(related_cameras(&m, Some("gauge"), &[], 1, 3000.0)),
            ["near"]
        );
        assert_eq!(
            ids(related_cameras(&m, Some("far"), &[], 2, 3000.0)),
            ["far", "near"]
        );
        // A camera with a still only (the demo's) comes too, without a stream.
        let mut m = m;
        let (id, still) = at("still", "Camera", 105.68, 18.671, false);
        m.insert(
            id,
            still.with_attr("snapshot_url", "http://10.0.0.1/snap.jpg"),
        );
        assert_eq!(
            related_cameras(&m, Some("gauge"), &[], 2, 3000.0),
            [("still".to_string(), false), ("near".to_string(), true)]
        );
        // Named cameras come first, however far (unknown and repeated names dropped), and
        // more of them may come, up to the most an alert shows.
        let named = ["too-far", "nope", "far", "too-far"].map(String::from);
        assert_eq!(
            ids(related_cameras(&m, Some("gauge"), &named, 2, 3000.0)),
            ["too-far", "far"]
        );
        let named = ["too-far", "far", "near"].map(String::from);
        assert_eq!(
            ids(related_cameras(&m, Some("gauge"), &named, 2, 3000.0)),
            ["too-far", "far", "near"]
        );
        let named = ["too-far"].map(String::from);
        assert_eq!(
            ids(related_cameras(&m, Some("gauge"), &named, 2, 3000.0)),
            ["too-far", "still"]
        );
        assert_eq!(
            ids(related_cameras(&m, None, &named, 2, 3000.0)),
            ["too-far"]
        );
        assert!(related_cameras(&m, Some("gauge"), &[], 2, 100.0).is_empty());
        assert!(related_cameras(&m, None, &[], 2, 3000.0).is_empty());
    }
}
