//! What the sync link carries between nodes (both ends are this engine): requests and
//! answers as JSON, gzip-compressed (operations compress about tenfold), with the size after
//! decompression bounded so a crafted body cannot blow up memory.

use super::OpRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};

/// The most a body may hold once decompressed.
pub const MAX_DECODED: u64 = 64 << 20;

/// Operations per answer or push.
pub const BATCH: usize = 2_000;

/// `POST /api/sync/pull`: what the caller holds, per origin.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct PullRequest {
    pub held: HashMap<String, u64>,
    pub limit: usize,
    /// The version of the province's shared rules the caller runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    /// The version of the province's SOP templates and KPI definitions the caller keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defs: Option<String>,
}

/// The answer: operations the caller lacks and may have; per origin, up to where the caller
/// now holds everything it may have (`upto`); `more` when the limit cut the answer short.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct PullReply {
    pub ops: Vec<OpRecord>,
    pub upto: HashMap<String, u64>,
    pub more: bool,
    /// The province's shared rules, when the caller's version is not the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<SharedRules>,
    /// The province's SOP templates and KPI definitions, when the caller's version is not
    /// the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defs: Option<SharedDefs>,
}

/// The SOP templates and KPI definitions the province's people made on the IOC's screens:
/// every node linked to the IOC keeps them, read-only, and works and measures by them too.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct SharedDefs {
    /// A digest of the rest.
    pub version: String,
    /// Templates: name, text (TOML).
    pub sops: Vec<(String, String)>,
    /// KPI definitions: id, text (TOML).
    pub kpis: Vec<(String, String)>,
}

impl SharedDefs {
    pub fn of(mut sops: Vec<(String, String)>, mut kpis: Vec<(String, String)>) -> SharedDefs {
        use sha2::{Digest, Sha256};
        sops.sort();
        kpis.sort();
        let mut h = Sha256::new();
        for (k, v) in sops
            .iter()
            .chain(std::iter::once(&(String::new(), String::new())))
        {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        for (k, v) in &kpis {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        let version = h
            .finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        SharedDefs {
            version,
            sops,
            kpis,
        }
    }
}

/// The rules the province's people made on the IOC's rules screen, as a rules file: every
/// node linked to the IOC runs them on its own devices too.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct SharedRules {
    /// A digest of `text`.
    pub version: String,
    pub text: String,
}

impl SharedRules {
    pub fn of(text: String) -> SharedRules {
        use sha2::{Digest, Sha256};
        let version = Sha256::digest(text.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        SharedRules { version, text }
    }
}

/// `POST /api/sync/push`: the caller's own operations, in sequence order.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct PushRequest {
    pub ops: Vec<OpRecord>,
}

/// The answer to a push, and to `GET /api/sync/held`: everything of the caller's up to
/// `held` is here. `refused`: operations on alerts outside the caller's units (left out).
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct Held {
    pub held: u64,
    #[serde(default)]
    pub applied: usize,
    #[serde(default)]
    pub refused: usize,
}

/// Readings per `POST /api/sync/data`.
pub const DATA_BATCH: usize = 5_000;

/// `POST /api/sync/data`: devices and source readings a node stored, oldest first; `upto`
/// is the node's outbox row they end at.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct DataPush {
    pub entities: Vec<ioc_model::Entity>,
    /// (device id, metric, time in ms since the epoch, value).
    pub obs: Vec<(String, String, i64, f64)>,
    pub upto: i64,
}

/// The answer, once committed: the node may drop its outbox up to `upto`. `refused`:
/// devices or readings outside its units, or refused by the pipeline (in the IOC's dead
/// letters).
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct DataTaken {
    pub upto: i64,
    pub accepted: usize,
    pub refused: usize,
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let json = serde_json::to_vec(v).expect("sync messages serialize");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// Reads a body: gzip when `gzip`, else plain JSON.
pub fn decode<T: DeserializeOwned>(body: &[u8], gzip: bool) -> Result<T, String> {
    let mut json = Vec::new();
    if gzip {
        flate2::read::GzDecoder::new(body)
            .take(MAX_DECODED + 1)
            .read_to_end(&mut json)
            .map_err(|e| format!("not gzip: {e}"))?;
        if json.len() as u64 > MAX_DECODED {
            return Err(format!("over {} MiB once decompressed", MAX_DECODED >> 20));
        }
    } else {
        json = body.to_vec();
    }
    serde_json::from_slice(&json).map_err(|e| format!("not a sync message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let r = Held {
            held: 7,
            applied: 2,
            refused: 1,
        };
        assert_eq!(decode::<Held>(&encode(&r), true).unwrap(), r);
        assert_eq!(decode::<Held>(br#"{"held": 3}"#, false).unwrap().held, 3);
        assert!(decode::<Held>(b"{}", true)
            .unwrap_err()
            .starts_with("not gzip"));
        // A bomb: 100 MiB of zeros compress to ~100 KiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..100 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        assert!(decode::<Held>(&bomb, true).unwrap_err().contains("MiB"));
    }
}
