//! Native desktop notifications: a new alert of at least `[alerts] notify` severity (major by
//! default) pops up on the operator's desktop, critical ones as urgent and until dismissed,
//! so an alert is seen even when the console window is behind another or minimised. An
//! alert nobody acknowledged that escalates pops up again, saying who is now told.
//!
//! This is a native thing, so it lives here and not in the UI: the process watches the
//! engine's hub directly (no IPC, nothing through the window). On Linux notifications go to
//! the desktop's notification server over D-Bus (`org.freedesktop.Notifications`, through
//! `notify-rust`, the library Tauri's own notification plugin uses); a failure — no server,
//! no session bus — is logged, never fatal. Sending happens on a thread of its own: a server
//! that does not answer cannot hold the engine up.

use ioc_engine::Engine;
use ioc_model::{Alert, AlertState, Severity};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Notifications waiting to be sent at most; more are dropped (and counted in the log).
const QUEUE: usize = 64;
/// How often the alerts are looked at, at most.
const EVERY: Duration = Duration::from_millis(500);

/// What to show for an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    pub critical: bool,
}

fn severity_vi(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "NGHIÊM TRỌNG",
        Severity::Major => "Cao",
        Severity::Warning => "Cảnh giác",
        Severity::Info => "Thông tin",
    }
}

/// The notification for a new (or, `escalated`, a newly escalated) alert.
pub fn note(a: &Alert, escalated: bool) -> Note {
    let place = a
        .unit_name
        .as_deref()
        .map(|u| format!(" — {u}"))
        .unwrap_or_default();
    let body = if escalated {
        let who = if a.escalation >= 2 {
            "lãnh đạo"
        } else {
            "trưởng ca"
        };
        format!("#{} chưa ai xác nhận, đã báo {who}: {}", a.id, a.message)
    } else {
        format!("#{} {}", a.id, a.message)
    };
    Note {
        summary: format!("{}: {}{place}", severity_vi(a.severity), a.entity_name),
        body,
        critical: a.severity == Severity::Critical,
    }
}

/// What to notify of `alerts` since `seen` (alert → escalation level last seen): new alerts
/// and escalations, at least `min` severe, not acknowledged, not silenced; most severe first.
/// `seen` then holds every open alert.
pub fn fresh(alerts: &[Alert], seen: &mut HashMap<i64, u8>, min: Severity) -> Vec<Note> {
    let mut out: Vec<(&Alert, bool)> = Vec::new();
    for a in alerts {
        let before = seen.insert(a.id, a.escalation);
        let escalated = before.is_some_and(|b| a.escalation > b);
        let worth = a.state == AlertState::New && a.silenced.is_none() && a.severity >= min;
        if worth && (before.is_none() || escalated) {
            out.push((a, escalated));
        }
    }
    seen.retain(|id, _| alerts.iter().any(|a| a.id == *id));
    out.sort_by(|(a, _), (b, _)| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    out.into_iter().map(|(a, e)| note(a, e)).collect()
}

/// Starts watching the engine. Alerts open at start are not announced: only what arrives
/// while the app runs.
pub fn spawn(engine: Arc<Engine>, min: Severity) {
    let (tx, rx) = mpsc::sync_channel::<Note>(QUEUE);
    std::thread::Builder::new()
        .name("ioc-notify".into())
        .spawn(move || send_all(rx))
        .expect("spawn the notification thread");
    let hub = engine.hub().clone();
    let mut changes = hub.subscribe();
    tokio::spawn(async move {
        let mut seen: HashMap<i64, u8> = hub
            .open_alerts()
            .iter()
            .map(|a| (a.id, a.escalation))
            .collect();
        let mut dropped = 0u64;
        while changes.changed().await.is_ok() {
            for n in fresh(&hub.open_alerts(), &mut seen, min) {
                if tx.try_send(n).is_err() {
                    dropped += 1;
                    if dropped == 1 || dropped.is_multiple_of(100) {
                        tracing::warn!(
                            "desktop notifications: {dropped} dropped (too many at once)"
                        );
                    }
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

fn send_all(rx: mpsc::Receiver<Note>) {
    let mut failing = false;
    while let Ok(n) = rx.recv() {
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("IOC Console")
            .summary(&n.summary)
            .body(&n.body);
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            notification.urgency(if n.critical {
                notify_rust::Urgency::Critical
            } else {
                notify_rust::Urgency::Normal
            });
        }
        if n.critical {
            notification.timeout(notify_rust::Timeout::Never);
        }
        match notification.show() {
            Ok(_) => {
                if failing {
                    tracing::info!("desktop notifications work again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "desktop notification not shown ({e}); alerts still sound and show in \
                         the console"
                    );
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: i64, severity: Severity, state: AlertState) -> Alert {
        serde_json::from_value(serde_json::json!({
            "id": id, "rule": "water-alarm-3", "entity": "wl-1", "entity_name": "Trạm Nam Đàn",
            "unit": "17935", "unit_name": "Xã Nam Đàn", "domain": "water", "category": "flood",
            "severity": severity, "state": state, "active": true,
            "message": "Mực nước 5.4 m vượt báo động III",
            "raised_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "count": 1
        }))
        .unwrap()
    }

    #[test]
    fn only_new_alerts_severe_enough_and_not_silenced() {
        let mut seen = HashMap::from([(1, 0)]);
        let mut silenced = alert(5, Severity::Critical, AlertState::New);
        silenced.silenced = Some(2);
        let open = vec![
            alert(1, Severity::Critical, AlertState::New),
            alert(2, Severity::Warning, AlertState::New),
            alert(3, Severity::Major, AlertState::New),
            alert(4, Severity::Critical, AlertState::New),
            alert(6, Severity::Critical, AlertState::Acknowledged),
            silenced,
        ];
        let notes = fresh(&open, &mut seen, Severity::Major);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].critical && notes[0].body.starts_with("#4 "));
        assert_eq!(notes[0].summary, "NGHIÊM TRỌNG: Trạm Nam Đàn — Xã Nam Đàn");
        assert!(!notes[1].critical);
        assert!(fresh(&open, &mut seen, Severity::Major).is_empty(), "once");
        // An alert that left and came back (a new episode) is new again.
        let notes = fresh(&open[1..], &mut seen, Severity::Major);
        assert!(notes.is_empty());
        assert!(!seen.contains_key(&1));
        // Escalated: it pops up again, saying who was told.
        let mut up = open[2].clone();
        up.escalation = 1;
        up.severity = Severity::Critical;
        let notes = fresh(&[up.clone()], &mut seen, Severity::Major);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].critical && notes[0].body.contains("trưởng ca"),
            "{notes:?}"
        );
        assert!(fresh(&[up], &mut seen, Severity::Major).is_empty());
    }
}
