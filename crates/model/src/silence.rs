//! Silences and maintenance windows: for a while, alerts that match are still raised and
//! recorded (nothing that happened is lost) but they do not sound, notify, escalate, open
//! incidents or show in the queue unless asked for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a silence matches: every field given must match (an empty silence matches nothing).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SilenceMatch {
    /// A rule's name (or a received alert's source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// An entity's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// A unit's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// An alert category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl SilenceMatch {
    pub fn is_empty(&self) -> bool {
        self.rule.is_none()
            && self.entity.is_none()
            && self.unit.is_none()
            && self.category.is_none()
    }

    /// Whether an alert with these fields matches.
    pub fn matches(
        &self,
        rule: &str,
        entity: Option<&str>,
        unit: Option<&str>,
        category: &str,
    ) -> bool {
        !self.is_empty()
            && self.rule.as_deref().is_none_or(|r| r == rule)
            && self.entity.as_deref().is_none_or(|e| Some(e) == entity)
            && self.unit.as_deref().is_none_or(|u| Some(u) == unit)
            && self.category.as_deref().is_none_or(|c| c == category)
    }
}

/// A silence (a maintenance window when it starts later).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Silence {
    pub id: i64,
    #[serde(flatten)]
    pub matcher: SilenceMatch,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Ended early by someone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

impl Silence {
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Not over yet (active, or a maintenance window still to come).
    pub fn current_at(&self, now: DateTime<Utc>) -> bool {
        now < self.ends_at
    }
}

/// `POST /api/silences`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SilenceRequest {
    #[serde(flatten)]
    pub matcher: SilenceMatch,
    /// Default: now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// RFC 3339; or give `duration`.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// e.g. `2h`, from `starts_at`.
    #[serde(default)]
    pub duration: Option<String>,
    pub comment: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let m = SilenceMatch {
            entity: Some("cam-1".into()),
            ..Default::default()
        };
        assert!(m.matches("camera-offline", Some("cam-1"), Some("16681"), "camera"));
        assert!(!m.matches("camera-offline", Some("cam-2"), Some("16681"), "camera"));
        let m = SilenceMatch {
            unit: Some("16681".into()),
            category: Some("camera".into()),
            ..Default::default()
        };
        assert!(m.matches("x", None, Some("16681"), "camera"));
        assert!(!m.matches("x", None, Some("16681"), "flood"));
        assert!(!SilenceMatch::default().matches("x", None, None, "y"));
    }
}
