//! Evidence clips: a camera's video around a moment, cut from the minute the engine keeps of
//! every stream ([`super::feed::Feed`]) and what arrives after, written as one MP4 file
//! without transcoding.
//!
//! The file is a fragmented MP4 (the same init segment the viewers get, then one fragment per
//! frame on a timeline starting at zero): browsers, VLC, ffmpeg and the media players of
//! Windows and macOS play it, and it is written as the frames come, with no second pass.

use super::feed::{Feed, Frame, Packet};
use super::fmp4;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The video of a clip, ready to write.
pub struct Cut {
    pub frames: Vec<Arc<Frame>>,
    /// Frames were missed (the recorder fell behind the stream): the clip ends there.
    pub short: bool,
}

/// Collects the frames received from `at - before` to `at + after`: those kept now, then
/// those that arrive, until the end is passed or no frame came for `stall` past it.
pub async fn collect(
    feed: &Feed,
    at: DateTime<Utc>,
    before: Duration,
    after: Duration,
    stall: Duration,
) -> Cut {
    let start = at - chrono::Duration::from_std(before).unwrap_or_default();
    let end = at + chrono::Duration::from_std(after).unwrap_or_default();
    let (kept, mut rx) = feed.recent_and_watch();
    let mut frames: Vec<Arc<Frame>> = kept.into_iter().filter(|f| f.received >= start).collect();
    let mut short = false;
    let past_end = |frames: &[Arc<Frame>]| frames.last().is_some_and(|f| f.received > end);
    if !past_end(&frames) {
        loop {
            // However quiet the camera, the recorder stops once the end is well past.
            let left = (end - Utc::now()).to_std().unwrap_or_default() + stall;
            let p = match tokio::time::timeout(left, rx.recv()).await {
                Err(_) => break,
                Ok(p) => p,
            };
            match p {
                Ok(Packet::Frame(f)) => {
                    if f.received > end {
                        break;
                    }
                    if f.received >= start {
                        frames.push(f);
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    short = true;
                    break;
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
    frames.retain(|f| f.received <= end);
    Cut {
        frames: playable(frames),
        short,
    }
}

/// The longest run that can be played as one file: from a key frame, frames of one init
/// segment (a camera that came back with another resolution starts a new one).
fn playable(frames: Vec<Arc<Frame>>) -> Vec<Arc<Frame>> {
    let mut best: (usize, usize) = (0, 0);
    let mut i = 0;
    while i < frames.len() {
        if !frames[i].key {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < frames.len() && Arc::ptr_eq(&frames[j].init, &frames[i].init) {
            j += 1;
        }
        if j - i > best.1 - best.0 {
            best = (i, j);
        }
        i = j;
    }
    frames[best.0..best.1].to_vec()
}

/// The clip as an MP4 file: the init segment, then each frame as a fragment, times from 0.
pub fn mp4(frames: &[Arc<Frame>]) -> Option<Vec<u8>> {
    let first = frames.first()?;
    let base = first.decode_time;
    let mut out = Vec::with_capacity(
        first.init.segment.len() + frames.iter().map(|f| f.data.len() + 120).sum::<usize>(),
    );
    out.extend_from_slice(&first.init.segment);
    for (n, f) in frames.iter().enumerate() {
        out.extend_from_slice(&fmp4::media_segment(
            n as u32 + 1,
            f.decode_time - base,
            f.duration,
            f.key,
            &f.data,
        ));
    }
    Some(out)
}
