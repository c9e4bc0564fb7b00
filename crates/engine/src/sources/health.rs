//! Live health of each source: connection state, last message, counts and rate. Sources
//! update it; the pipeline adds the items it refused; `/api/sources` reads it.

use chrono::{DateTime, Utc};
use ioc_model::{SourceState, SourceStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug)]
struct Inner {
    state: SourceState,
    last_message_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// (count at the previous sample, rate computed then)
    sample: (u64, f64),
}

/// The health of one source.
#[derive(Debug)]
pub struct SourceHealth {
    name: String,
    kind: String,
    detail: Option<String>,
    /// The TOML of a source added from the admin screen.
    managed: Option<String>,
    messages: AtomicU64,
    rejected: AtomicU64,
    inner: Mutex<Inner>,
}

impl SourceHealth {
    pub fn new(name: &str, kind: &str, detail: Option<String>) -> SourceHealth {
        SourceHealth {
            name: name.into(),
            kind: kind.into(),
            detail,
            managed: None,
            messages: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                state: SourceState::Connecting,
                last_message_at: None,
                last_error: None,
                sample: (0, 0.0),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks it as added from the admin screen, with its configuration.
    pub fn managed(mut self, config: String) -> SourceHealth {
        self.managed = Some(config);
        self
    }

    /// Its whole configuration (secrets included), for an edit that keeps them.
    pub fn managed_text(&self) -> Option<&str> {
        self.managed.as_deref()
    }

    pub fn set_state(&self, state: SourceState) {
        let mut i = self.inner.lock().unwrap();
        if state == SourceState::Connected {
            i.last_error = None;
        }
        i.state = state;
    }

    /// The source failed; it says why and (usually) retries.
    pub fn error(&self, state: SourceState, message: impl Into<String>) {
        let mut i = self.inner.lock().unwrap();
        i.state = state;
        i.last_error = Some(message.into());
    }

    pub fn message(&self, at: DateTime<Utc>) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let mut i = self.inner.lock().unwrap();
        if i.last_message_at.is_none_or(|t| t < at) {
            i.last_message_at = Some(at);
        }
    }

    /// `n` messages up to `at` (a camera's frames, counted once a second).
    pub fn add_messages(&self, n: u64, at: DateTime<Utc>) {
        if n == 0 {
            return;
        }
        self.messages.fetch_add(n, Ordering::Relaxed);
        let mut i = self.inner.lock().unwrap();
        if i.last_message_at.is_none_or(|t| t < at) {
            i.last_message_at = Some(at);
        }
    }

    pub fn rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Ordering::Relaxed);
    }

    /// Called once a second: the rate is the count difference.
    fn sample(&self, seconds: f64) {
        let now = self.messages.load(Ordering::Relaxed);
        let mut i = self.inner.lock().unwrap();
        let (before, _) = i.sample;
        i.sample = (now, (now - before) as f64 / seconds.max(0.001));
    }

    /// How it is doing, as the API shows it: secrets never in it.
    pub fn status(&self) -> SourceStatus {
        let shown = self.managed.as_deref().map(super::secrets::redact);
        let i = self.inner.lock().unwrap();
        SourceStatus {
            name: self.name.clone(),
            kind: self.kind.clone(),
            state: i.state,
            last_message_at: i.last_message_at,
            messages: self.messages.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            rate: i.sample.1,
            last_error: i.last_error.as_deref().map(super::secrets::redact_text),
            detail: self.detail.as_deref().map(super::secrets::redact_text),
            managed: self.managed.is_some(),
            config: shown.as_ref().map(|(t, _)| t.clone()),
            secrets: shown.map(|(_, s)| s).unwrap_or_default(),
        }
    }
}

/// Every source's health, by name.
#[derive(Debug, Default)]
pub struct SourceRegistry {
    by_name: RwLock<HashMap<String, Arc<SourceHealth>>>,
    order: RwLock<Vec<String>>,
}

impl SourceRegistry {
    pub fn add(&self, health: Arc<SourceHealth>) {
        let name = health.name.clone();
        if self
            .by_name
            .write()
            .unwrap()
            .insert(name.clone(), health)
            .is_none()
        {
            self.order.write().unwrap().push(name);
        }
    }

    pub fn remove(&self, name: &str) {
        self.by_name.write().unwrap().remove(name);
        self.order.write().unwrap().retain(|n| n != name);
    }

    pub fn get(&self, name: &str) -> Option<Arc<SourceHealth>> {
        self.by_name.read().unwrap().get(name).cloned()
    }

    /// The health of `name`, registering a bare entry for sources that were not configured
    /// (a one-off import, a test).
    pub fn get_or_add(&self, name: &str, kind: &str) -> Arc<SourceHealth> {
        if let Some(h) = self.get(name) {
            return h;
        }
        let h = Arc::new(SourceHealth::new(name, kind, None));
        h.set_state(SourceState::Connected);
        self.add(h.clone());
        h
    }

    pub fn statuses(&self) -> Vec<SourceStatus> {
        let map = self.by_name.read().unwrap();
        self.order
            .read()
            .unwrap()
            .iter()
            .filter_map(|n| map.get(n).map(|h| h.status()))
            .collect()
    }

    pub fn sample(&self, seconds: f64) {
        for h in self.by_name.read().unwrap().values() {
            h.sample(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rates_and_states() {
        let reg = SourceRegistry::default();
        let h = Arc::new(SourceHealth::new("mqtt", "mqtt", Some("ioc/#".into())));
        reg.add(h.clone());
        assert_eq!(reg.statuses()[0].state, SourceState::Connecting);
        h.set_state(SourceState::Connected);
        let t = Utc::now();
        for _ in 0..10 {
            h.message(t);
        }
        h.rejected(2);
        reg.sample(2.0);
        let s = &reg.statuses()[0];
        assert_eq!((s.messages, s.rejected, s.rate), (10, 2, 5.0));
        assert_eq!(s.last_message_at, Some(t));
        h.error(SourceState::Disconnected, "connection refused");
        let s = &reg.statuses()[0];
        assert_eq!(s.state, SourceState::Disconnected);
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        assert!(Arc::ptr_eq(&reg.get_or_add("mqtt", "x"), &h));
        assert_eq!(
            reg.get_or_add("import", "file").status().state,
            SourceState::Connected
        );
        assert_eq!(reg.statuses().len(), 2);
    }
}
