//! Reading one camera over RTSP with `retina`: describe, set up its video, play, and hand each
//! frame to the camera's [`Feed`] as it arrives, without transcoding. A stream that stops
//! sending for the stall timeout is dropped and opened again with back-off.

use super::feed::{Feed, Init};
use bytes::Bytes;
use futures_util::StreamExt;
use ioc_model::StreamProblem;
use retina::client::{Credentials, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, ParametersRef};
use std::time::Duration;
use url::Url;

/// Where and how to read a camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub udp: bool,
    pub credentials: Option<(String, String)>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub problem: StreamProblem,
    pub detail: String,
}

impl Failure {
    fn new(problem: StreamProblem, detail: impl Into<String>) -> Failure {
        Failure {
            problem,
            detail: crate::sources::secrets::redact_text(&detail.into()),
        }
    }
}

/// The codecs a browser plays from fragmented MP4, as RTSP names them.
const PLAYABLE: &[&str] = &["h264", "h265"];

/// Sorts a `retina` error into what an operator can act on.
fn classify(e: &retina::Error) -> Failure {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    let lower = text.to_lowercase();
    let problem = match e.status_code() {
        Some(401 | 403) => StreamProblem::Credentials,
        Some(_) => StreamProblem::Protocol,
        None if lower.contains("connection refused")
            || lower.contains("unreachable")
            || lower.contains("timed out")
            || lower.contains("no route")
            || lower.contains("failed to lookup")
            || lower.contains("unable to connect") =>
        {
            StreamProblem::Unreachable
        }
        None if lower.contains("http/")
            || lower.contains("<html")
            || lower.contains("invalid rtsp")
            || lower.contains("unparseable")
            || lower.contains("parse") =>
        {
            StreamProblem::NotRtsp
        }
        None if lower.contains("eof")
            || lower.contains("reset by peer")
            || lower.contains("broken pipe") =>
        {
            StreamProblem::Ended
        }
        None => StreamProblem::Protocol,
    };
    Failure::new(problem, first)
}

/// RTCP sender report: (NTP time as Unix ms, the RTP time it maps to).
type Report = (i64, u32);

fn ntp_to_unix_ms(ntp: u64) -> i64 {
    const UNIX_EPOCH_IN_NTP: i64 = 2_208_988_800;
    let secs = (ntp >> 32) as i64 - UNIX_EPOCH_IN_NTP;
    let frac = ((ntp & 0xffff_ffff) * 1000) >> 32;
    secs * 1000 + frac as i64
}

/// When the camera captured a frame, from its last sender report.
fn captured_ms(report: Option<Report>, rtp: u32, clock_rate: u32) -> Option<i64> {
    let (ntp_ms, sr_rtp) = report?;
    let delta = rtp.wrapping_sub(sr_rtp) as i32;
    Some(ntp_ms + (i64::from(delta) * 1000) / i64::from(clock_rate.max(1)))
}

/// Opens one session and feeds frames until it fails, stalls or ends. `Ok` is never
/// returned: a live stream does not end by itself.
pub async fn session(target: &Target, feed: &Feed, stall: Duration, connect: Duration) -> Failure {
    match tokio::time::timeout(connect, open(target)).await {
        Err(_) => Failure::new(
            StreamProblem::Unreachable,
            format!("no answer in {} s", connect.as_secs()),
        ),
        Ok(Err(f)) => f,
        Ok(Ok((demuxed, index))) => pump(demuxed, index, feed, stall).await,
    }
}

async fn open(target: &Target) -> Result<(retina::client::Demuxed, usize), Failure> {
    let creds = target
        .credentials
        .clone()
        .map(|(username, password)| Credentials { username, password });
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("IOC Console/{}", env!("CARGO_PKG_VERSION")));
    let mut session = Session::describe(target.url.clone(), options)
        .await
        .map_err(|e| classify(&e))?;
    let index = session
        .streams()
        .iter()
        .position(|s| s.media() == "video")
        .ok_or_else(|| {
            Failure::new(
                StreamProblem::NoVideo,
                "the camera describes no video stream",
            )
        })?;
    let encoding = session.streams()[index]
        .encoding_name()
        .to_ascii_lowercase();
    if !PLAYABLE.contains(&encoding.as_str()) {
        return Err(Failure::new(
            StreamProblem::UnsupportedCodec,
            format!(
                "the camera sends {}; set it to H.264 or H.265",
                encoding.to_uppercase()
            ),
        ));
    }
    let transport = if target.udp {
        Transport::Udp(Default::default())
    } else {
        Transport::Tcp(Default::default())
    };
    session
        .setup(index, SetupOptions::default().transport(transport))
        .await
        .map_err(|e| classify(&e))?;
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| classify(&e))?;
    let demuxed = playing.demuxed().map_err(|e| classify(&e))?;
    Ok((demuxed, index))
}

async fn pump(
    mut demuxed: retina::client::Demuxed,
    index: usize,
    feed: &Feed,
    stall: Duration,
) -> Failure {
    let mut report: Option<Report> = None;
    let mut fps_hint = None;
    loop {
        let item = match tokio::time::timeout(stall, demuxed.next()).await {
            Err(_) => {
                return Failure::new(
                    StreamProblem::Stalled,
                    format!("no frame for {} s", stall.as_secs()),
                )
            }
            Ok(None) => return Failure::new(StreamProblem::Ended, "the camera ended the stream"),
            Ok(Some(Err(e))) => return classify(&e),
            Ok(Some(Ok(item))) => item,
        };
        match item {
            CodecItem::Rtcp(rtcp) if rtcp.stream_id() == index => {
                for pkt in rtcp.pkts() {
                    if let Ok(Some(sr)) = pkt.as_sender_report() {
                        report = Some((ntp_to_unix_ms(sr.ntp_timestamp().0), sr.rtp_timestamp()));
                    }
                }
            }
            CodecItem::VideoFrame(frame) if frame.stream_id() == index => {
                if frame.has_new_parameters() || !feed.has_init() {
                    let Some(ParametersRef::Video(p)) = demuxed.streams()[index].parameters()
                    else {
                        continue;
                    };
                    let entry = match p.mp4_sample_entry().build() {
                        Ok(e) => e,
                        Err(e) => {
                            return Failure::new(StreamProblem::UnsupportedCodec, e.to_string())
                        }
                    };
                    let (width, height) = p.pixel_dimensions();
                    let timescale = demuxed.streams()[index].clock_rate_hz();
                    fps_hint = p
                        .frame_rate()
                        .filter(|(n, _)| *n > 0)
                        .map(|(n, d)| f64::from(d) / f64::from(n));
                    feed.set_init(Init {
                        segment: Bytes::from(super::fmp4::init_segment(
                            &entry, width, height, timescale,
                        )),
                        mime: format!("video/mp4; codecs=\"{}\"", p.rfc6381_codec()),
                        width,
                        height,
                        timescale,
                    });
                }
                let ts = frame.timestamp();
                let clock = ts.clock_rate().get();
                let captured = captured_ms(report, ts.timestamp() as u32, clock);
                let key = frame.is_random_access_point();
                feed.push(
                    ts.timestamp(),
                    key,
                    Bytes::from(frame.into_data()),
                    captured,
                    chrono::Utc::now(),
                    fps_hint,
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_times_become_unix_milliseconds() {
        // 2026-12-06 00:00:00 UTC = 1_796_515_200 Unix = +2_208_988_800 in NTP; half a second.
        let ntp = ((1_796_515_200u64 + 2_208_988_800) << 32) | (1u64 << 31);
        assert_eq!(ntp_to_unix_ms(ntp), 1_796_515_200_500);
        let sr = Some((1_000_000, 4_294_960_000u32));
        // 9,000 ticks of 90 kHz after the report, across the 32-bit wrap: 100 ms later.
        assert_eq!(
            captured_ms(sr, 4_294_960_000u32.wrapping_add(9000), 90_000),
            Some(1_000_100)
        );
        assert_eq!(
            captured_ms(sr, 4_294_960_000 - 90_000, 90_000),
            Some(999_000)
        );
        assert_eq!(captured_ms(None, 5, 90_000), None);
    }
}
