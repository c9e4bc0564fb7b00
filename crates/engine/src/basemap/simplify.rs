//! Basemap tiles at the detail a screen can show.
//!
//! Boundary archives are often cut without simplification: Nghệ An's commune boundaries put
//! 31,000 points into the one tile that shows the whole province at zoom 5, where the
//! province is 45 pixels wide. The map draws every point it is given, and without a GPU
//! (Mesa's llvmpipe) what it draws is paid for in the page's memory: measured on the desktop
//! app with the demo, the web process held 457–487 MB with the archive as cut and 312 MB
//! with the same boundaries at one pixel's detail, drawn the same to the eye.
//!
//! So a tile is served with its lines and polygons simplified (Douglas–Peucker) to one pixel
//! of the 512 pixels MapLibre draws a vector tile over. Only the vertices change: features,
//! ids and properties are kept as they are, and points are never touched. Tiles of the
//! archive's deepest zoom are served as stored, since the map enlarges them past that zoom
//! and needs all their detail there (the server decides that; this module only simplifies).

use geo::{Coord, LineString, Polygon, Simplify};
use geozero::mvt::tile::GeomType;
use geozero::mvt::{Message, Tile};
use std::io::{Read, Write};

/// The pixels MapLibre draws a vector tile over; a tile's extent spread over them is the
/// size of one pixel in tile units (8 for the usual extent of 4096).
const TILE_PIXELS: f64 = 512.0;

/// How a stored tile is compressed (the archive's header says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Plain,
    Gzip,
}

/// The stored tile with its lines and polygons simplified to one pixel, compressed the same
/// way. An error names what could not be read; the caller then serves the tile as stored.
pub fn for_screen(stored: &[u8], how: Stored) -> Result<Vec<u8>, String> {
    let raw: std::borrow::Cow<[u8]> = match how {
        Stored::Plain => stored.into(),
        Stored::Gzip => {
            let mut out = Vec::with_capacity(stored.len() * 4);
            flate2::read::GzDecoder::new(stored)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            out.into()
        }
    };
    let simple = simplify_tile(&raw)?;
    Ok(match how {
        Stored::Plain => simple,
        Stored::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(simple.len() / 3),
                flate2::Compression::fast(),
            );
            gz.write_all(&simple).expect("writing to memory");
            gz.finish().expect("writing to memory")
        }
    })
}

/// An uncompressed Mapbox Vector Tile with every line and polygon simplified to one pixel.
pub fn simplify_tile(mvt: &[u8]) -> Result<Vec<u8>, String> {
    let mut tile = Tile::decode(mvt).map_err(|e| format!("not a vector tile: {e}"))?;
    for layer in &mut tile.layers {
        let epsilon = f64::from(layer.extent.unwrap_or(4096)) / TILE_PIXELS;
        let features = std::mem::take(&mut layer.features);
        for mut feature in features {
            let kind = feature.r#type.and_then(|t| GeomType::try_from(t).ok());
            let simple = match kind {
                Some(GeomType::Linestring) => {
                    let lines = decode(&feature.geometry)?;
                    let kept: Vec<Part> = lines
                        .iter()
                        .map(|l| line(l, epsilon))
                        .filter(|l| l.len() >= 2)
                        .collect();
                    encode(&kept, false)
                }
                Some(GeomType::Polygon) => {
                    encode(&rings(&decode(&feature.geometry)?, epsilon), true)
                }
                // Points (and geometries of no known type) are served as they are.
                _ => {
                    layer.features.push(feature);
                    continue;
                }
            };
            if !simple.is_empty() {
                feature.geometry = simple;
                layer.features.push(feature);
            }
        }
    }
    Ok(tile.encode_to_vec())
}

/// A line or ring in tile units; a ring ends with its first point again.
type Part = Vec<[i32; 2]>;

/// The parts of a feature's geometry, read from its commands (the vector tile
/// specification, 4.3): MoveTo starts a part, LineTo extends it, ClosePath closes a ring.
fn decode(g: &[u32]) -> Result<Vec<Part>, String> {
    let mut parts: Vec<Part> = Vec::new();
    let (mut x, mut y) = (0i32, 0i32);
    let mut i = 0;
    let zigzag = |v: u32| ((v >> 1) as i32) ^ -((v & 1) as i32);
    while i < g.len() {
        let (id, count) = (g[i] & 7, (g[i] >> 3) as usize);
        i += 1;
        match id {
            1 | 2 => {
                if g.len() < i + 2 * count {
                    return Err("geometry ends inside a command".into());
                }
                for k in 0..count {
                    x = x.wrapping_add(zigzag(g[i + 2 * k]));
                    y = y.wrapping_add(zigzag(g[i + 2 * k + 1]));
                    if id == 1 {
                        parts.push(vec![[x, y]]);
                    } else {
                        parts
                            .last_mut()
                            .ok_or("LineTo before any MoveTo")?
                            .push([x, y]);
                    }
                }
                i += 2 * count;
            }
            7 => {
                let part = parts.last_mut().ok_or("ClosePath before any MoveTo")?;
                let first = part[0];
                part.push(first);
            }
            other => return Err(format!("unknown geometry command {other}")),
        }
    }
    Ok(parts)
}

/// Commands for `parts` (rings are closed with ClosePath, their last point left out).
fn encode(parts: &[Part], closed: bool) -> Vec<u32> {
    let zigzag = |v: i32| ((v << 1) ^ (v >> 31)) as u32;
    let mut out = Vec::new();
    let (mut x, mut y) = (0i32, 0i32);
    for part in parts {
        let body = if closed {
            &part[..part.len() - 1]
        } else {
            &part[..]
        };
        let mut to = |p: &[i32; 2], out: &mut Vec<u32>| {
            out.push(zigzag(p[0].wrapping_sub(x)));
            out.push(zigzag(p[1].wrapping_sub(y)));
            [x, y] = *p;
        };
        out.push(1 | (1 << 3));
        to(&body[0], &mut out);
        out.push(2 | ((body.len() as u32 - 1) << 3));
        for p in &body[1..] {
            to(p, &mut out);
        }
        if closed {
            out.push(7 | (1 << 3));
        }
    }
    out
}

fn to_line(part: &Part) -> LineString<f64> {
    LineString(
        part.iter()
            .map(|p| Coord {
                x: f64::from(p[0]),
                y: f64::from(p[1]),
            })
            .collect(),
    )
}

fn from_line(l: &LineString<f64>) -> Part {
    // Douglas–Peucker keeps a subset of the points: the coordinates are still integers.
    l.0.iter().map(|c| [c.x as i32, c.y as i32]).collect()
}

fn line(part: &Part, epsilon: f64) -> Part {
    from_line(&to_line(part).simplify(epsilon))
}

/// Twice the signed area of a closed ring (the shoelace formula, in tile units).
fn area2(ring: &Part) -> i64 {
    ring.windows(2)
        .map(|w| i64::from(w[0][0]) * i64::from(w[1][1]) - i64::from(w[1][0]) * i64::from(w[0][1]))
        .sum()
}

/// A polygon feature's rings simplified, grouped as MapLibre reads them: the first ring's
/// turn marks outer rings, a ring turning the other way is a hole of the outer ring before
/// it, and a ring without area is skipped. A ring that loses its area or turns over as
/// simplified is left out (it would make a hole of an outer ring, or the reverse), and an
/// outer ring left out takes its holes with it.
fn rings(parts: &[Part], epsilon: f64) -> Vec<Part> {
    // As a polygon, so that a ring keeps at least four points.
    rings_with(parts, |ring| {
        from_line(
            Polygon::new(to_line(ring), vec![])
                .simplify(epsilon)
                .exterior(),
        )
    })
}

fn rings_with(parts: &[Part], simplify: impl Fn(&Part) -> Part) -> Vec<Part> {
    let mut out = Vec::new();
    let mut outer_sign = 0i64;
    let mut keeping_holes = false;
    for ring in parts {
        let a = area2(ring).signum();
        if a == 0 || ring.len() < 4 || ring.first() != ring.last() {
            continue;
        }
        if outer_sign == 0 {
            outer_sign = a;
        }
        let outer = a == outer_sign;
        if !outer && !keeping_holes {
            continue;
        }
        let simple = simplify(ring);
        let kept = simple.len() >= 4 && area2(&simple).signum() == a;
        if outer {
            keeping_holes = kept;
        }
        if kept {
            out.push(simple);
        }
    }
    out
}

/// How many vertices the tile's geometries hold (for tests and measurements).
pub fn vertices(mvt: &[u8]) -> Result<usize, String> {
    let tile = Tile::decode(mvt).map_err(|e| format!("not a vector tile: {e}"))?;
    let mut n = 0;
    for layer in &tile.layers {
        for f in &layer.features {
            n += decode(&f.geometry)?.iter().map(Vec::len).sum::<usize>();
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geozero::mvt::tile::Feature;

    fn feature(id: u64, kind: GeomType, parts: &[Part]) -> Feature {
        Feature {
            id: Some(id),
            tags: vec![0, 0],
            r#type: Some(kind as i32),
            geometry: match kind {
                GeomType::Point => {
                    let [x, y] = parts[0][0];
                    vec![
                        9,
                        ((x << 1) ^ (x >> 31)) as u32,
                        ((y << 1) ^ (y >> 31)) as u32,
                    ]
                }
                GeomType::Polygon => encode(parts, true),
                _ => encode(parts, false),
            },
        }
    }

    fn tile(features: Vec<Feature>) -> Vec<u8> {
        let layer = geozero::mvt::tile::Layer {
            version: 2,
            name: "communes".into(),
            features,
            keys: vec!["name".into()],
            values: vec![geozero::mvt::tile::Value {
                string_value: Some("Cửa Lò".into()),
                ..Default::default()
            }],
            extent: Some(4096),
        };
        Tile {
            layers: vec![layer],
        }
        .encode_to_vec()
    }

    /// Each feature's id, tags and parts.
    fn features(mvt: &[u8]) -> Vec<(Option<u64>, Vec<u32>, Vec<Part>)> {
        let t = Tile::decode(mvt).unwrap();
        t.layers[0]
            .features
            .iter()
            .map(|f| (f.id, f.tags.clone(), decode(&f.geometry).unwrap()))
            .collect()
    }

    /// A closed ring around the square from `a` to `b` whose sides wobble by 3 units (less
    /// than a pixel, 8), `n` points a side; `reverse` turns it the other way.
    fn wobbly(a: i32, b: i32, n: i32, reverse: bool) -> Part {
        let mut pts = Vec::new();
        let corners = [[a, a], [b, a], [b, b], [a, b]];
        for c in 0..4 {
            let (from, to) = (corners[c], corners[(c + 1) % 4]);
            for i in 0..n {
                let w = if i % 2 == 0 { 0 } else { 3 };
                pts.push([
                    from[0] + (to[0] - from[0]) * i / n + w,
                    from[1] + (to[1] - from[1]) * i / n + w,
                ]);
            }
        }
        if reverse {
            pts.reverse();
        }
        pts.push(pts[0]);
        pts
    }

    fn bounds(p: &Part) -> [i32; 4] {
        let xs = p.iter().map(|c| c[0]);
        let ys = p.iter().map(|c| c[1]);
        [
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap(),
            ys.max().unwrap(),
        ]
    }

    #[test]
    fn commands_read_back_as_written() {
        let ring = vec![[0, 0], [10, 0], [10, -10], [0, 0]];
        let line = vec![[5, 5], [-7, 2000]];
        assert_eq!(
            decode(&encode(std::slice::from_ref(&ring), true)).unwrap(),
            vec![ring]
        );
        assert_eq!(
            decode(&encode(std::slice::from_ref(&line), false)).unwrap(),
            vec![line]
        );
        assert!(decode(&[9, 2]).is_err(), "a MoveTo cut short");
        assert!(decode(&[10, 2, 2]).is_err(), "a LineTo first");
        assert!(decode(&[3]).is_err(), "an unknown command");
    }

    #[test]
    fn lines_and_polygons_lose_what_a_pixel_cannot_show_and_keep_their_shape() {
        let outer = wobbly(100, 3000, 200, false);
        let hole = wobbly(1000, 2000, 100, true);
        assert!(area2(&outer).signum() != area2(&hole).signum());
        let line: Part = (0..=400)
            .map(|i| [i * 10, if i % 2 == 0 { 50 } else { 54 }])
            .collect();
        let before = tile(vec![
            feature(1, GeomType::Polygon, &[outer.clone(), hole.clone()]),
            feature(2, GeomType::Linestring, std::slice::from_ref(&line)),
            feature(3, GeomType::Point, &[vec![[7, 9]]]),
        ]);
        let after = simplify_tile(&before).unwrap();
        assert!(vertices(&before).unwrap() > 1_000);
        let left = vertices(&after).unwrap();
        assert!(left < 30, "{left} vertices left");
        let got = features(&after);
        assert_eq!(got.len(), 3, "every feature is kept");
        // Ids and properties as they were.
        assert_eq!(
            got.iter()
                .map(|(id, tags, _)| (*id, tags.clone()))
                .collect::<Vec<_>>(),
            vec![
                (Some(1), vec![0, 0]),
                (Some(2), vec![0, 0]),
                (Some(3), vec![0, 0])
            ]
        );
        // The square keeps its hole, each ring its turn and its outline within a pixel.
        let rings = &got[0].2;
        assert_eq!(rings.len(), 2, "the hole is kept: {rings:?}");
        for (r, was) in rings.iter().zip([&outer, &hole]) {
            assert_eq!(area2(r).signum(), area2(was).signum());
            let (b, w) = (bounds(r), bounds(was));
            assert!((0..4).all(|k| (b[k] - w[k]).abs() <= 8), "{b:?} vs {w:?}");
        }
        let l = &got[1].2[0];
        assert_eq!((l.first(), l.last()), (line.first(), line.last()));
        assert_eq!(got[2].2, vec![vec![[7, 9]]], "points are never touched");
    }

    #[test]
    fn a_ring_that_turns_over_or_goes_flat_goes_and_takes_its_holes() {
        let outer = |x: i32| vec![[x, 0], [x + 100, 0], [x + 100, 100], [x, 100], [x, 0]];
        let hole = |x: i32| vec![[x + 10, 10], [x + 10, 20], [x + 20, 20], [x + 10, 10]];
        assert_ne!(area2(&outer(0)).signum(), area2(&hole(0)).signum());
        let parts = [
            outer(0),
            hole(0),
            outer(1000),
            hole(1000),
            outer(2000),
            hole(2000),
        ];
        // Simplified, the first outer ring turns over and the second goes flat.
        let kept = rings_with(&parts, |r| match r[0][0] {
            0 => r.iter().rev().copied().collect(),
            1000 => vec![[1000, 0], [1100, 0], [1050, 0], [1000, 0]],
            _ => r.clone(),
        });
        assert_eq!(kept, vec![outer(2000), hole(2000)]);
        // As they are, all of them stay; a ring without area is skipped, as MapLibre does.
        let flat = vec![[0, 0], [5, 0], [9, 0], [0, 0]];
        let kept = rings_with(&[flat, outer(0), hole(0)], |r| r.clone());
        assert_eq!(kept, vec![outer(0), hole(0)]);
    }

    #[test]
    fn what_is_not_a_vector_tile_is_an_error_and_gzip_round_trips() {
        assert!(simplify_tile(b"not a tile at all \xff\xff").is_err());
        assert!(for_screen(b"\x1f\x8b broken", Stored::Gzip).is_err());
        let plain = tile(vec![feature(
            1,
            GeomType::Polygon,
            &[wobbly(0, 4000, 300, false)],
        )]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let served = for_screen(&gz.finish().unwrap(), Stored::Gzip).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&served[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, simplify_tile(&plain).unwrap());
        assert_eq!(for_screen(&plain, Stored::Plain).unwrap(), back);
        assert!(vertices(&back).unwrap() < vertices(&plain).unwrap());
    }

    /// The real Nghệ An boundaries: the tiles of the whole province keep every commune with
    /// its name and id, with a fraction of the vertices.
    #[tokio::test]
    async fn the_real_province_tiles_keep_every_commune_with_far_fewer_points() {
        let Some(geo) = super::super::missing::shared_data("geo") else {
            return super::super::missing::missing(
                "../shared/data/geo not found: the real Nghệ An basemap",
            );
        };
        let reader =
            pmtiles::AsyncPmTilesReader::new_with_path(geo.join("nghe-an-boundaries.pmtiles"))
                .await
                .unwrap();
        assert_eq!(
            reader.get_header().tile_compression,
            pmtiles::Compression::Gzip
        );
        let mut checked = 0;
        for (z, x, y) in [(5, 25, 14), (7, 101, 57)] {
            let coord = pmtiles::TileCoord::new(z, x, y).unwrap();
            let stored = reader.get_tile(coord).await.unwrap().expect("tile");
            let served = for_screen(&stored, Stored::Gzip).unwrap();
            let (mut raw, mut simple) = (Vec::new(), Vec::new());
            flate2::read::GzDecoder::new(&stored[..])
                .read_to_end(&mut raw)
                .unwrap();
            flate2::read::GzDecoder::new(&served[..])
                .read_to_end(&mut simple)
                .unwrap();
            let (before, after) = (vertices(&raw).unwrap(), vertices(&simple).unwrap());
            assert!(
                after * 3 < before && after > 0,
                "{z}/{x}/{y}: {before} -> {after} vertices"
            );
            let names = |mvt: &[u8]| -> Vec<(Option<u64>, Vec<u32>)> {
                features(mvt)
                    .into_iter()
                    .map(|(id, tags, _)| (id, tags))
                    .collect()
            };
            let kept = names(&simple);
            assert_eq!(
                kept,
                names(&raw),
                "{z}/{x}/{y}: features and properties kept"
            );
            if z == 5 {
                assert_eq!(kept.len(), 130, "every commune at zoom 5");
            }
            checked += 1;
        }
        assert_eq!(checked, 2);
    }
}
