//! Fragmented MP4 (ISO/IEC 14496-12) for live video: one initialization segment per set of
//! codec parameters, then one `moof` + `mdat` per frame, so a frame reaches the screen as soon
//! as it arrives (no waiting for a whole segment, as HLS and DASH do).
//!
//! Written here rather than with a crate: the MSE-oriented crates found either write every
//! fragment's decode time as zero (`mse_fmp4`) or derive it from averaged durations
//! (`muxide`), and a live stream needs each fragment placed at its camera's own time. The
//! codec's sample entry (`avc1`/`hvc1` with its `avcC`/`hvcC`) comes from `retina`.

/// Appends a box: its size, type, then what `body` writes.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box with a version and 24 bits of flags.
fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |o| {
        o.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
        body(o);
    });
}

fn u16be(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u32be(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u64be(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd`.
fn matrix(o: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(o, v);
    }
}

/// The initialization segment of a single video track.
///
/// `sample_entry` is the whole `avc1`/`hvc1` box; `timescale` the RTP clock rate (90 kHz).
pub fn init_segment(sample_entry: &[u8], width: u32, height: u32, timescale: u32) -> Vec<u8> {
    let mut o = Vec::with_capacity(600 + sample_entry.len());
    boxed(&mut o, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        u32be(o, 512);
        for brand in [b"iso5", b"iso6", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut o, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32be(o, 0); // creation time
            u32be(o, 0); // modification time
            u32be(o, 1000); // timescale
            u32be(o, 0); // duration: unknown, live
            u32be(o, 0x0001_0000); // rate 1.0
            u16be(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            matrix(o);
            o.extend_from_slice(&[0; 24]); // pre_defined
            u32be(o, 2); // next track id
        });
        boxed(o, b"trak", |o| {
            // Enabled, in movie, in preview.
            full(o, b"tkhd", 0, 7, |o| {
                u32be(o, 0);
                u32be(o, 0);
                u32be(o, 1); // track id
                u32be(o, 0);
                u32be(o, 0); // duration
                o.extend_from_slice(&[0; 8]);
                u16be(o, 0); // layer
                u16be(o, 0); // alternate group
                u16be(o, 0); // volume: video
                u16be(o, 0);
                matrix(o);
                u32be(o, width << 16);
                u32be(o, height << 16);
            });
            boxed(o, b"mdia", |o| {
                full(o, b"mdhd", 0, 0, |o| {
                    u32be(o, 0);
                    u32be(o, 0);
                    u32be(o, timescale);
                    u32be(o, 0);
                    u16be(o, 0x55c4); // language "und"
                    u16be(o, 0);
                });
                full(o, b"hdlr", 0, 0, |o| {
                    u32be(o, 0);
                    o.extend_from_slice(b"vide");
                    o.extend_from_slice(&[0; 12]);
                    o.extend_from_slice(b"IOC Console camera\0");
                });
                boxed(o, b"minf", |o| {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                    boxed(o, b"dinf", |o| {
                        full(o, b"dref", 0, 0, |o| {
                            u32be(o, 1);
                            full(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    boxed(o, b"stbl", |o| {
                        full(o, b"stsd", 0, 0, |o| {
                            u32be(o, 1);
                            o.extend_from_slice(sample_entry);
                        });
                        full(o, b"stts", 0, 0, |o| u32be(o, 0));
                        full(o, b"stsc", 0, 0, |o| u32be(o, 0));
                        full(o, b"stsz", 0, 0, |o| {
                            u32be(o, 0);
                            u32be(o, 0);
                        });
                        full(o, b"stco", 0, 0, |o| u32be(o, 0));
                    });
                });
            });
        });
        boxed(o, b"mvex", |o| {
            full(o, b"trex", 0, 0, |o| {
                u32be(o, 1); // track id
                u32be(o, 1); // sample description index
                u32be(o, 0);
                u32be(o, 0);
                u32be(o, 0);
            });
        });
    });
    o
}

/// `sample_flags` of a key frame: depends on no other, a sync sample.
const KEY: u32 = 0x0200_0000;
/// Of any other frame: depends on others, not a sync sample.
const NOT_KEY: u32 = 0x0101_0000;

/// One frame as a media segment (`moof` + `mdat`).
///
/// `data` is the frame in MP4's length-prefixed form (as `retina` gives it); `decode_time`
/// and `duration` are in the track's timescale. Frames are taken as decoded in presentation
/// order (no B-frames), which is what IP cameras' live profiles send.
pub fn media_segment(
    sequence: u32,
    decode_time: u64,
    duration: u32,
    key: bool,
    data: &[u8],
) -> Vec<u8> {
    let mut o = Vec::with_capacity(data.len() + 120);
    let mut data_offset_at = 0;
    boxed(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32be(o, sequence));
        boxed(o, b"traf", |o| {
            // default-base-is-moof: offsets count from this moof.
            full(o, b"tfhd", 0, 0x02_0000, |o| u32be(o, 1));
            full(o, b"tfdt", 1, 0, |o| u64be(o, decode_time));
            // data-offset, sample-duration, sample-size, sample-flags present.
            full(o, b"trun", 0, 0x000_0701, |o| {
                u32be(o, 1);
                data_offset_at = o.len();
                u32be(o, 0);
                u32be(o, duration);
                u32be(o, data.len() as u32);
                u32be(o, if key { KEY } else { NOT_KEY });
            });
        });
    });
    // The sample starts after the moof and the mdat's 8-byte header.
    let offset = (o.len() + 8) as u32;
    o[data_offset_at..data_offset_at + 4].copy_from_slice(&offset.to_be_bytes());
    boxed(&mut o, b"mdat", |o| o.extend_from_slice(data));
    o
}

/// The boxes at the top level of `b`: type and whole box, for tests and checks.
pub fn top_boxes(mut b: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes(b[..4].try_into().ok()?) as usize;
        if size < 8 || size > b.len() {
            return None;
        }
        out.push((b[4..8].try_into().ok()?, &b[..size]));
        b = &b[size..];
    }
    Some(out)
}

/// The children of a container box (given whole).
pub fn children(b: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    top_boxes(b.get(8..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_segment_points_at_its_sample() {
        let frame = [0, 0, 0, 3, 0x65, 1, 2];
        let seg = media_segment(7, 90_000 * 3600 * 30, 6000, true, &frame);
        let boxes = top_boxes(&seg).unwrap();
        assert_eq!(
            boxes.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"moof", b"mdat"]
        );
        let traf = children(boxes[0].1).unwrap()[1].1;
        let parts = children(traf).unwrap();
        assert_eq!(
            parts.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"tfhd", b"tfdt", b"trun"]
        );
        // tfdt version 1: a decode time past 32 bits survives.
        assert_eq!(
            u64::from_be_bytes(parts[1].1[12..20].try_into().unwrap()),
            90_000 * 3600 * 30
        );
        let trun = parts[2].1;
        let offset = u32::from_be_bytes(trun[16..20].try_into().unwrap()) as usize;
        assert_eq!(&seg[offset..], &frame);
        assert_eq!(u32::from_be_bytes(trun[20..24].try_into().unwrap()), 6000);
        assert_eq!(u32::from_be_bytes(trun[28..32].try_into().unwrap()), KEY);
        let other = media_segment(8, 0, 6000, false, &frame);
        assert_eq!(&other[other.len() - frame.len()..], &frame);
        assert!(other.windows(4).any(|w| w == NOT_KEY.to_be_bytes()));
    }

    #[test]
    fn an_init_segment_carries_the_sample_entry() {
        let entry = {
            let mut e = Vec::new();
            boxed(&mut e, b"avc1", |o| o.extend_from_slice(&[9; 20]));
            e
        };
        let init = init_segment(&entry, 320, 180, 90_000);
        let boxes = top_boxes(&init).unwrap();
        assert_eq!(
            boxes.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"ftyp", b"moov"]
        );
        let moov = children(boxes[1].1).unwrap();
        assert_eq!(
            moov.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"mvhd", b"trak", b"mvex"]
        );
        assert!(init.windows(entry.len()).any(|w| w == entry.as_slice()));
    }
}
