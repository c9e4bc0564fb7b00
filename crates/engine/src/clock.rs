//! Where "now" comes from. The engine never calls `Utc::now()` directly, so rule timing can be
//! tested with a clock the test moves by hand instead of with sleeps.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }

    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The wall clock sped up `speed` times from `epoch` on: `epoch + (now − epoch) × speed`.
/// For `ioc bench soak`, where a day of retention passes, rollups and rule timers must go by
/// in an hour; any process given the same epoch and speed reads the same time.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    pub epoch: DateTime<Utc>,
    pub speed: f64,
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = (Utc::now() - self.epoch)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        self.epoch + chrono::Duration::microseconds((real as f64 * self.speed) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_from_its_epoch() {
        let epoch = Utc::now() - chrono::Duration::seconds(10);
        let c = ScaledClock { epoch, speed: 60.0 };
        let ahead = c.now() - epoch;
        assert!(ahead >= chrono::Duration::minutes(10), "{ahead}");
        assert!(ahead < chrono::Duration::minutes(11), "{ahead}");
    }
}
