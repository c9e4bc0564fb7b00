//! Entities: the sensors, cameras and stations an operator sees on the map.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The sector an entity or alert belongs to; dashboards and queues filter on it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Environment,
    Water,
    Traffic,
    Safety,
    Health,
    Education,
    Tourism,
    Agriculture,
    Planning,
    Other,
}

impl Domain {
    pub const ALL: [Domain; 10] = [
        Domain::Environment,
        Domain::Water,
        Domain::Traffic,
        Domain::Safety,
        Domain::Health,
        Domain::Education,
        Domain::Tourism,
        Domain::Agriculture,
        Domain::Planning,
        Domain::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Environment => "environment",
            Domain::Water => "water",
            Domain::Traffic => "traffic",
            Domain::Safety => "safety",
            Domain::Health => "health",
            Domain::Education => "education",
            Domain::Tourism => "tourism",
            Domain::Agriculture => "agriculture",
            Domain::Planning => "planning",
            Domain::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Whether the device itself works, independent of what it measures.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntityStatus {
    Online,
    Offline,
    Fault,
    /// Never heard from since it was registered.
    #[default]
    Unknown,
}

impl EntityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityStatus::Online => "online",
            EntityStatus::Offline => "offline",
            EntityStatus::Fault => "fault",
            EntityStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<EntityStatus> {
        [
            EntityStatus::Online,
            EntityStatus::Offline,
            EntityStatus::Fault,
            EntityStatus::Unknown,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The latest value of one metric of an entity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Reading {
    pub value: f64,
    pub time: DateTime<Utc>,
}

/// A sensor, camera, device, station or asset. Fields with nothing in them are left out of
/// its JSON (a province's snapshot is 100,000 of these).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Entity {
    /// Stable external id (e.g. `urn:ngsi-ld:AirQualityObserved:…` or `aq-vinh-01`).
    pub id: String,
    /// What it is: `AirQualityStation`, `WaterLevelGauge`, `RainGauge`, `TrafficCounter`,
    /// `Camera`, or a Smart Data Models type.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// WGS 84 position; absent for entities with no place of their own (a KPI, a device
    /// known only by id), which are then not drawn on the map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Code of the administrative unit (commune/ward) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    pub domain: Domain,
    /// Static properties, e.g. a gauge's alarm levels (`alarm_1`, `alarm_2`, `alarm_3`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub status: EntityStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// Latest value per metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latest: BTreeMap<String, Reading>,
}

impl Entity {
    /// An entity with no location, unit, attributes or values yet.
    pub fn new(id: &str, kind: &str, name: &str, domain: Domain) -> Entity {
        Entity {
            id: id.into(),
            kind: kind.into(),
            name: name.into(),
            lon: None,
            lat: None,
            unit: None,
            unit_name: None,
            domain,
            attributes: Default::default(),
            status: EntityStatus::Unknown,
            last_seen: None,
            latest: BTreeMap::new(),
        }
    }

    /// The same entity placed at `lon`, `lat`.
    pub fn at(mut self, lon: f64, lat: f64) -> Entity {
        self.lon = Some(lon);
        self.lat = Some(lat);
        self
    }

    /// The same entity in administrative unit `code`.
    pub fn in_unit(mut self, code: &str, name: &str) -> Entity {
        self.unit = Some(code.into());
        self.unit_name = Some(name.into());
        self
    }

    /// The same entity with one more attribute.
    pub fn with_attr(mut self, key: &str, value: impl Into<serde_json::Value>) -> Entity {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Its position, when it has one.
    pub fn position(&self) -> Option<(f64, f64)> {
        Some((self.lon?, self.lat?))
    }

    /// A number among the attributes, if it is one.
    pub fn attr_f64(&self, key: &str) -> Option<f64> {
        self.attributes.get(key).and_then(|v| v.as_f64())
    }

    /// Takes `value` at `time` as the latest of `metric` unless a newer one is held.
    pub fn set_value(&mut self, metric: &str, value: f64, time: DateTime<Utc>) {
        match self.latest.get_mut(metric) {
            Some(r) if r.time > time => {}
            Some(r) => *r = Reading { value, time },
            None => {
                self.latest.insert(metric.into(), Reading { value, time });
            }
        }
        if self.last_seen.is_none_or(|t| t < time) {
            self.last_seen = Some(time);
        }
    }

    /// Keeps the newer of this version's and `old`'s values per metric: a device that
    /// changes (its status, its name) on a feed without values keeps the values it had.
    pub fn keep_values_of(&mut self, old: Entity) {
        for (m, r) in old.latest {
            self.set_value(&m, r.value, r.time);
        }
        self.last_seen = self.last_seen.max(old.last_seen);
    }
}
