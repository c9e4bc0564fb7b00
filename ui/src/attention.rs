//! Operator attention: a sound per severity when a new alert arrives (WebAudio tones, so
//! nothing is downloaded), muted with `m`; the critical banner lives in the queue. The first
//! picture after connecting is not announced — only what arrives while someone is watching.

use crate::state::Live;
use ioc_model::{AlertState, Severity};
use leptos::prelude::*;
use std::collections::HashSet;

const MUTE_KEY: &str = "ioc.mute";

/// Whether sounds are muted (kept in the browser).
pub fn muted() -> bool {
    crate::api::local_storage_get(MUTE_KEY).as_deref() == Some("1")
}

pub fn set_muted(m: bool) {
    crate::api::local_storage_set(MUTE_KEY, if m { "1" } else { "0" });
}

/// Tones for a severity: (frequency Hz, beeps). Info is silent.
fn tones(s: Severity) -> Option<(f32, u32)> {
    match s {
        Severity::Critical => Some((880.0, 3)),
        Severity::Major => Some((660.0, 2)),
        Severity::Warning => Some((440.0, 1)),
        Severity::Info => None,
    }
}

thread_local! {
    static AUDIO: std::cell::RefCell<Option<web_sys::AudioContext>> = const { std::cell::RefCell::new(None) };
}

/// Plays the severity's tones. Browsers allow sound only after the user has interacted with
/// the page; before that this is silently a no-op.
pub fn sound(s: Severity) {
    let Some((freq, beeps)) = tones(s) else {
        return;
    };
    if muted() {
        return;
    }
    AUDIO.with(|a| {
        let mut a = a.borrow_mut();
        if a.is_none() {
            *a = web_sys::AudioContext::new().ok();
        }
        let Some(ctx) = a.as_ref() else { return };
        let _ = ctx.resume();
        let t0 = ctx.current_time();
        for i in 0..beeps {
            let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
                return;
            };
            let start = t0 + f64::from(i) * 0.25;
            osc.frequency().set_value(freq);
            gain.gain().set_value(0.0);
            let _ = gain.gain().linear_ramp_to_value_at_time(0.25, start + 0.02);
            let _ = gain.gain().linear_ramp_to_value_at_time(0.0, start + 0.18);
            let _ = osc.connect_with_audio_node(&gain);
            let _ = gain.connect_with_audio_node(&ctx.destination());
            let _ = osc.start_with_when(start);
            let _ = osc.stop_with_when(start + 0.2);
        }
    });
}

/// Announces new alerts: the most severe of what arrived in one update.
pub fn start(live: Live) {
    let seen = StoredValue::new(None::<HashSet<i64>>);
    Effect::new(move |_| {
        // Silenced alerts are held back: no sound.
        let current: Vec<(i64, Severity, AlertState)> = live.alerts.with(|m| {
            m.values()
                .filter(|a| a.silenced.is_none())
                .map(|a| (a.id, a.severity, a.state))
                .collect()
        });
        let mut loudest = None;
        seen.update_value(|s| match s {
            None => *s = Some(current.iter().map(|(id, _, _)| *id).collect()),
            Some(s) => {
                for (id, sev, state) in &current {
                    if s.insert(*id) && *state == AlertState::New {
                        loudest = loudest.max(Some(*sev));
                    }
                }
            }
        });
        if let Some(sev) = loudest {
            sound(sev);
        }
    });
}
