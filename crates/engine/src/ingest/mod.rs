//! What sources send: measured values, entities, units, alerts issued elsewhere, and
//! refusals, as one vocabulary every decoder and source speaks. It lives below the pipeline
//! (and depends on nothing of the engine but the store's dead-letter limits) so that a
//! decoder never imports the pipeline it feeds.

pub mod refusals;

use chrono::{DateTime, Utc};
use ioc_model::{Domain, Entity, Severity, Unit};
use std::sync::Arc;
use tokio::sync::oneshot;

/// One measured value.
#[derive(Clone, Debug, PartialEq)]
pub struct Obs {
    /// External id of the entity.
    pub entity: Arc<str>,
    pub metric: Arc<str>,
    pub time: DateTime<Utc>,
    pub value: f64,
}

/// An alert issued elsewhere (a CAP message, an NGSI `Alert`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExternalAlert {
    /// Its id at the issuer, unique within the source (CAP `identifier`…). A later message
    /// with the same key updates or cancels it.
    pub key: String,
    /// The source it came through.
    pub source: String,
    pub category: String,
    pub domain: Domain,
    pub severity: Severity,
    pub headline: String,
    pub description: Option<String>,
    /// The area in words (CAP `areaDesc`).
    pub area_desc: Option<String>,
    /// The area as a GeoJSON geometry.
    pub area: Option<serde_json::Value>,
    /// An entity of ours it is about.
    pub entity: Option<String>,
    pub sent: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    /// The issuer withdrew it (CAP `msgType` Cancel).
    pub cancelled: bool,
    /// The message as received (CAP XML), kept for export.
    pub raw: Option<String>,
}

/// Something a source sends.
#[derive(Clone, Debug)]
pub enum Item {
    Obs(Obs),
    /// Register or update an entity (its `latest` is ignored).
    Entity(Box<Entity>),
    Unit(Unit),
    Alert(Box<ExternalAlert>),
    /// The source could not decode a payload: recorded as a dead letter with this reason.
    Rejected(String),
}

/// Why an item was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Position of the item in its [`Ingest`].
    pub index: usize,
    pub reason: String,
}

/// What became of an [`Ingest`], sent once it is committed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
    /// Of the accepted observations, those dated more than `[alerts] history_after` ago:
    /// history, stored and shown but not evaluated by the live rules.
    pub history: usize,
}

/// A message from a source.
pub struct Ingest {
    pub source: Arc<str>,
    pub items: Vec<Item>,
    /// Answered after the commit; an MQTT source acknowledges its broker only then.
    pub done: Option<oneshot::Sender<IngestReport>>,
    /// The payload the items came from, kept with any refusal in the dead letters.
    pub payload: Option<Arc<[u8]>>,
    /// Topic, URL or file it came from.
    pub origin: Option<Arc<str>>,
    /// Observations older than this are refused (a live source's `max_age`): a gateway
    /// replaying a year-old buffer or a clock reset to 1970 must not rewrite history.
    pub max_age: Option<chrono::Duration>,
    /// An import this message is a chunk of: its refusals of one cause add up into one dead
    /// letter across the chunks (without it, into one per cause of this message).
    pub grouping: Option<Arc<str>>,
}

impl Ingest {
    /// Items with nothing attached.
    pub fn new(source: Arc<str>, items: Vec<Item>) -> Ingest {
        Ingest {
            source,
            items,
            done: None,
            payload: None,
            origin: None,
            max_age: None,
            grouping: None,
        }
    }
}
