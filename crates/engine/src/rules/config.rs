//! `[[rule]]` tables as written (in the configuration file or the rules folder).

use ioc_model::{Domain, Severity};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One `[[rule]]` table.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// CEL condition over `metric`, `value`, `time` and `entity`.
    pub when: String,
    /// How long the condition must hold before the alert is raised.
    #[serde(
        rename = "for",
        default,
        with = "humantime_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub for_: Duration,
    pub severity: Severity,
    /// Shown in the queue; `{value}`, `{metric}`, `{uom}`, `{entity.name}`, `{entity.id}`,
    /// `{unit}` are replaced.
    pub message: String,
    /// Kind of event, e.g. `air_quality`, `flood`; default: the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Domain of the alert; default: the entity's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// Resolve an acknowledged alert by itself once the condition clears.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub auto_resolve: bool,
    /// Escalate when not acknowledged for this long (default `[alerts] escalate_after`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub escalate_after: Option<Duration>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Hysteresis: once raised, the alert clears only when this CEL condition holds (e.g.
    /// raise above 150, clear below 100), not as soon as `when` stops holding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_when: Option<String>,
    /// Sliding window: `window.avg`, `.min`, `.max`, `.sum`, `.count`, `.rate` (per minute),
    /// `.delta` (last − first) of the observed metric over this long are in the condition.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// No-data rule: raised when no observation matching `when` arrived for this long;
    /// cleared by the next one.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_data: Option<Duration>,
    /// Geofence: only entities inside (or, with `outside = true`, outside) this area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<AreaConfig>,
    /// Only during these local hours, e.g. `"18:00-06:00"` (the display time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<String>,
    /// Only on these days: `mon` … `sun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_days: Option<Vec<String>>,
    /// Severity from the value: the last level whose `above` the value reaches (or whose
    /// `below` it goes under) wins over `severity`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelConfig>,
    /// Alerts of this rule are worked as incidents: `{ alerts = 3, within = "30m", sop = … }`
    /// opens one when that many alerts of the rule's category arrive in one unit within that
    /// time (default: every alert), through that SOP (default: the category's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRuleConfig>,
    /// Cameras (entity ids) its alerts open with, before the device's own and the nearest:
    /// the junction camera for a flood gauge that cannot see it, say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
    /// When it raises an alert, save an evidence clip of each of the alert's cameras with a
    /// stream (`[video] clip_before` before, `clip_after` after).
    #[serde(default, skip_serializing_if = "is_false")]
    pub clip: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A rule's `incident` key.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IncidentRuleConfig {
    /// SOP template; default: the one for the rule's category, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sop: Option<String>,
    /// How many alerts of the category in one unit make an incident.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub alerts: u32,
    /// Within how long.
    #[serde(default = "one_hour", with = "humantime_serde")]
    pub within: Duration,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RuleConfig {
    /// What a `[[rule]]` table with only `name`, `when`, `severity` and `message` means.
    fn default() -> Self {
        RuleConfig {
            name: String::new(),
            when: String::new(),
            for_: Duration::ZERO,
            severity: Severity::Warning,
            message: String::new(),
            category: None,
            domain: None,
            auto_resolve: true,
            escalate_after: None,
            enabled: true,
            clear_when: None,
            window: None,
            no_data: None,
            area: None,
            active_hours: None,
            active_days: None,
            levels: Vec::new(),
            incident: None,
            cameras: Vec::new(),
            clip: false,
        }
    }
}

/// A rule's area: a unit (commune code) or a drawn polygon (`[[lon, lat], …]`).
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AreaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<[f64; 2]>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside: bool,
}

/// One step of severity by value.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub severity: Severity,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The rules the demo runs with when the config names none. Thresholds follow Vietnamese
/// practice: PM2.5 above 150 µg/m³ is "very unhealthy" (VN_AQI > 200 band), river gauges carry
/// their alarm levels I/II/III (báo động 1/2/3) as attributes.
pub fn default_rules() -> Vec<RuleConfig> {
    let rule = |name: &str,
                when: &str,
                for_secs: u64,
                severity: Severity,
                category: &str,
                message: &str| RuleConfig {
        name: name.into(),
        when: when.into(),
        for_: Duration::from_secs(for_secs),
        severity,
        message: message.into(),
        category: Some(category.into()),
        domain: None,
        auto_resolve: true,
        escalate_after: None,
        enabled: true,
        ..Default::default()
    };
    let incident = |alerts: u32, within_min: u64| {
        Some(IncidentRuleConfig {
            sop: None,
            alerts,
            within: Duration::from_secs(within_min * 60),
        })
    };
    let mut rules = vec![
        rule(
            "pm25-very-unhealthy",
            "metric == 'pm25' && value > 150.0",
            600,
            Severity::Major,
            "air_quality",
            "PM2.5 {value} µg/m³ > 150 µg/m³ quá 10 phút",
        ),
        rule(
            "pm25-hazardous",
            "metric == 'pm25' && value > 250.0",
            300,
            Severity::Critical,
            "air_quality",
            "PM2.5 {value} µg/m³ ở mức nguy hại (> 250 µg/m³)",
        ),
        rule(
            "water-alarm-1",
            "metric == 'water_level' && value >= entity.attributes.alarm_1 && value < entity.attributes.alarm_2",
            0,
            Severity::Warning,
            "flood",
            "Mực nước {value} m vượt báo động I",
        ),
        rule(
            "water-alarm-2",
            "metric == 'water_level' && value >= entity.attributes.alarm_2 && value < entity.attributes.alarm_3",
            0,
            Severity::Major,
            "flood",
            "Mực nước {value} m vượt báo động II",
        ),
        rule(
            "water-alarm-3",
            "metric == 'water_level' && value >= entity.attributes.alarm_3",
            0,
            Severity::Critical,
            "flood",
            "Mực nước {value} m vượt báo động III",
        ),
        rule(
            "camera-offline",
            "metric == 'online' && value < 0.5",
            300,
            Severity::Major,
            "camera",
            "Camera mất kết nối quá 5 phút",
        ),
        rule(
            "rain-heavy",
            "metric == 'rain_1h' && value >= 50.0",
            0,
            Severity::Major,
            "rain",
            "Mưa rất to: {value} mm/giờ",
        ),
        rule(
            "traffic-jam",
            "metric == 'speed' && value < 10.0",
            600,
            Severity::Warning,
            "traffic",
            "Ùn tắc: tốc độ trung bình {value} km/h quá 10 phút",
        ),
    ];
    // Worked as incidents through the category's SOP: a hazardous episode seen by two
    // stations of a commune, every alarm III, three cameras down in one commune.
    for r in &mut rules {
        r.incident = match r.name.as_str() {
            "pm25-hazardous" => incident(2, 60),
            "water-alarm-3" => incident(1, 60),
            "camera-offline" => incident(3, 30),
            _ => None,
        };
    }
    rules
}
