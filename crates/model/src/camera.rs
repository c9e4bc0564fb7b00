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
