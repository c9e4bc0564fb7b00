//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): a time that is
//! close to the wall clock, never goes backwards on one node, and is always later than every
//! time the node has received. Ordering the federation's operations by it (then by origin and
//! sequence) gives every node the same order, whatever order the operations arrived in, and
//! keeps cause before effect even when a node's clock is minutes off.
//!
//! Written here rather than taken from `uhlc` because the engine's time comes from its
//! [`Clock`] (tests run a simulated day on a manual clock per node), which `uhlc`'s
//! function-pointer clock cannot carry.

use crate::clock::Clock;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Bits of the counter: 65,536 operations in one millisecond before the time moves ahead.
const COUNTER_BITS: u32 = 16;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;

/// A remote time further ahead of our wall clock than this is not adopted (its operations are
/// still ordered by it, and the IOC refuses a push of such times): one node with a clock set
/// hours ahead (local time taken for UTC) must not drag every other node's times along. Ten
/// minutes of drift is adopted as the algorithm says.
pub const MAX_ADOPTED_AHEAD: chrono::Duration = chrono::Duration::hours(1);

/// One hybrid time: milliseconds since the epoch in the high 48 bits, a counter in the low 16.
/// Compared as one number.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Hlc(pub u64);

impl Hlc {
    pub fn new(ms: i64, counter: u16) -> Hlc {
        Hlc(((ms.max(0) as u64) << COUNTER_BITS) | u64::from(counter))
    }

    pub fn ms(self) -> i64 {
        (self.0 >> COUNTER_BITS) as i64
    }

    pub fn counter(self) -> u16 {
        (self.0 & COUNTER_MAX) as u16
    }

    /// The wall time it stands for (to the millisecond).
    pub fn time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.ms()).unwrap_or_default()
    }

    /// The next time after this one at wall time `wall_ms`.
    fn tick(self, wall_ms: i64) -> Hlc {
        if wall_ms > self.ms() {
            Hlc::new(wall_ms, 0)
        } else if u64::from(self.counter()) < COUNTER_MAX {
            Hlc(self.0 + 1)
        } else {
            // The counter is full: move the time on by a millisecond.
            Hlc::new(self.ms() + 1, 0)
        }
    }
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}+{}",
            self.time().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            self.counter()
        )
    }
}

/// A node's hybrid clock.
pub struct HlcClock {
    clock: Arc<dyn Clock>,
    last: Mutex<Hlc>,
}

impl HlcClock {
    /// Starts after `last`, the latest time the node recorded before it stopped, so a restart
    /// with the wall clock set back still never goes backwards.
    pub fn new(clock: Arc<dyn Clock>, last: Hlc) -> HlcClock {
        HlcClock {
            clock,
            last: Mutex::new(last),
        }
    }

    /// The time of a new local operation.
    pub fn now(&self) -> Hlc {
        let wall = self.clock.now().timestamp_millis();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = last.tick(wall);
        *last
    }

    /// Takes in the time of an operation received from another node: every later local time
    /// is after it (unless it is implausibly far ahead, see [`MAX_ADOPTED_AHEAD`]).
    pub fn observe(&self, remote: Hlc) {
        let wall = self.clock.now().timestamp_millis();
        if remote.ms() > wall + MAX_ADOPTED_AHEAD.num_milliseconds() {
            tracing::warn!(
                "an operation dated {remote} is more than {} minutes ahead of this node's \
                 clock; its time is not adopted",
                MAX_ADOPTED_AHEAD.num_minutes()
            );
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if remote > *last {
            *last = remote;
        }
    }

    /// The latest time given or observed.
    pub fn last(&self) -> Hlc {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    fn clock(min: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 5, 14, 0, 0).unwrap() + chrono::Duration::minutes(min),
        ))
    }

    #[test]
    fn times_never_go_backwards_and_follow_the_wall_clock() {
        let wall = clock(0);
        let hlc = HlcClock::new(wall.clone(), Hlc::default());
        let a = hlc.now();
        let b = hlc.now();
        assert!(b > a);
        assert_eq!((a.ms(), b.ms()), (a.ms(), a.ms()));
        assert_eq!(b.counter(), 1);
        wall.advance(chrono::Duration::seconds(1));
        let c = hlc.now();
        assert_eq!((c.ms() - a.ms(), c.counter()), (1000, 0));
        // The wall clock set back: the time still moves forward.
        wall.advance(chrono::Duration::minutes(-10));
        let d = hlc.now();
        assert!(d > c);
        assert_eq!(d.ms(), c.ms());
    }

    #[test]
    fn a_received_time_orders_everything_after_it_even_from_a_clock_ten_minutes_ahead() {
        let ioc = HlcClock::new(clock(0), Hlc::default());
        let oc = HlcClock::new(clock(10), Hlc::default());
        let sent = oc.now();
        let before = ioc.now();
        assert!(before < sent, "the OC's clock is ahead");
        ioc.observe(sent);
        let reply = ioc.now();
        assert!(
            reply > sent,
            "what the IOC does after receiving comes after"
        );
        assert_eq!(reply.ms(), sent.ms());
    }

    #[test]
    fn a_time_years_ahead_is_not_adopted() {
        let hlc = HlcClock::new(clock(0), Hlc::default());
        let far = Hlc::new(clock(60 * 24 * 365).now().timestamp_millis(), 0);
        hlc.observe(far);
        assert!(hlc.now() < far);
    }

    #[test]
    fn a_full_counter_moves_the_time_on() {
        let wall = clock(0);
        let ms = wall.now().timestamp_millis();
        let hlc = HlcClock::new(wall, Hlc::new(ms, u16::MAX));
        let t = hlc.now();
        assert_eq!((t.ms(), t.counter()), (ms + 1, 0));
        assert_eq!(
            Hlc::new(ms, 7).to_string().len(),
            "2026-12-05T14:00:00.000Z+7".len()
        );
    }

    #[test]
    fn a_restart_continues_after_the_last_recorded_time() {
        let wall = clock(0);
        let first = HlcClock::new(wall.clone(), Hlc::default());
        let t = first.now();
        wall.advance(chrono::Duration::minutes(-5));
        let again = HlcClock::new(wall, first.last());
        assert!(again.now() > t);
    }
}
