//! Failed sign-ins, counted per account and per address, so that guessing passwords costs
//! time: after a few failures an account (or an address) must wait before it may try again,
//! and each further failure doubles the wait, up to a ceiling. A success clears the
//! account's count (not the address's: one right password must not reset a spray).
//!
//! The counts live in memory: a restart forgives, which is acceptable because every failure
//! and every lock is also in the audit log, where an administrator sees them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// How many failures are free, and how long the waits are.
#[derive(Debug, Clone, Copy)]
pub struct GuardPolicy {
    /// Failures of one account before it must wait.
    pub account_free: u32,
    /// Failures from one address before it must wait (an office shares one address).
    pub address_free: u32,
    /// The first wait, in milliseconds; each further failure doubles it.
    pub first_wait_ms: i64,
    /// The longest wait.
    pub max_wait_ms: i64,
    /// Failures older than this are forgotten.
    pub window_ms: i64,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            account_free: 5,
            address_free: 20,
            first_wait_ms: 30_000,
            max_wait_ms: 15 * 60_000,
            window_ms: 60 * 60_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Count {
    failures: u32,
    last_ms: i64,
    until_ms: i64,
}

impl Count {
    fn fail(&mut self, free: u32, p: &GuardPolicy, now: i64) -> bool {
        if now - self.last_ms > p.window_ms {
            *self = Count::default();
        }
        self.failures += 1;
        self.last_ms = now;
        if self.failures > free {
            let doublings = (self.failures - free - 1).min(20);
            let wait = (p.first_wait_ms << doublings).min(p.max_wait_ms);
            self.until_ms = now + wait;
            true
        } else {
            false
        }
    }
}

/// Why a sign-in is refused before its password is even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// `account` or `address`.
    pub by: &'static str,
    /// When it may try again (milliseconds since the epoch).
    pub until_ms: i64,
}

/// What a failure led to, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub account_locked: bool,
    pub address_locked: bool,
}

#[derive(Default)]
pub struct LoginGuard {
    policy: GuardPolicy,
    accounts: Mutex<HashMap<String, Count>>,
    addresses: Mutex<HashMap<IpAddr, Count>>,
}

/// Keeps the maps small: entries whose failures are forgotten go.
fn prune<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Count>, now: i64, p: &GuardPolicy) {
    if m.len() > 10_000 {
        m.retain(|_, c| now - c.last_ms <= p.window_ms || c.until_ms > now);
    }
}

impl LoginGuard {
    pub fn new(policy: GuardPolicy) -> LoginGuard {
        LoginGuard {
            policy,
            ..Default::default()
        }
    }

    /// Whether this account, from this address, may try now.
    pub fn check(&self, account: &str, address: Option<IpAddr>, now: i64) -> Result<(), Locked> {
        if let Some(c) = self.accounts.lock().unwrap().get(&account.to_lowercase()) {
            if c.until_ms > now {
                return Err(Locked {
                    by: "account",
                    until_ms: c.until_ms,
                });
            }
        }
        if let Some(a) = address {
            if let Some(c) = self.addresses.lock().unwrap().get(&a) {
                if c.until_ms > now {
                    return Err(Locked {
                        by: "address",
                        until_ms: c.until_ms,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failure; whether it locked the account or the address.
    pub fn failed(&self, account: &str, address: Option<IpAddr>, now: i64) -> Outcome {
        let p = self.policy;
        let mut out = Outcome::default();
        {
            let mut m = self.accounts.lock().unwrap();
            prune(&mut m, now, &p);
            out.account_locked =
                m.entry(account.to_lowercase())
                    .or_default()
                    .fail(p.account_free, &p, now);
        }
        if let Some(a) = address {
            let mut m = self.addresses.lock().unwrap();
            prune(&mut m, now, &p);
            out.address_locked = m.entry(a).or_default().fail(p.address_free, &p, now);
        }
        out
    }

    /// A right password: the account starts again from nothing.
    pub fn succeeded(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap()
            .remove(&account.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_account_waits_longer_after_each_failure() {
        let g = LoginGuard::new(GuardPolicy::default());
        let a = ip("10.0.0.1");
        for i in 0..5 {
            assert!(g.check("lan", a, i).is_ok());
            assert!(!g.failed("lan", a, i).account_locked);
        }
        // The sixth failure locks for 30 s, the seventh for 60 s.
        assert!(g.failed("Lan", a, 10).account_locked);
        assert_eq!(
            g.check("lan", ip("10.9.9.9"), 11),
            Err(Locked {
                by: "account",
                until_ms: 30_010
            })
        );
        assert!(g.check("lan", a, 30_010).is_ok());
        g.failed("lan", a, 30_010);
        assert_eq!(g.check("lan", a, 30_011).unwrap_err().until_ms, 90_010);
        // Another account from another address is not held up.
        assert!(g.check("minh", ip("10.0.0.2"), 30_011).is_ok());
        // A success clears the account.
        g.succeeded("lan");
        assert!(g.check("lan", ip("10.0.0.3"), 30_012).is_ok());
    }

    #[test]
    fn an_address_spraying_many_accounts_is_held_up() {
        let g = LoginGuard::new(GuardPolicy::default());
        let a = ip("203.0.113.7");
        let mut locked = false;
        for i in 0..21 {
            locked |= g.failed(&format!("user{i}"), a, i).address_locked;
        }
        assert!(locked);
        assert_eq!(g.check("someone-else", a, 25).unwrap_err().by, "address");
        assert!(g.check("someone-else", ip("203.0.113.8"), 25).is_ok());
    }

    #[test]
    fn waits_have_a_ceiling_and_old_failures_are_forgotten() {
        let p = GuardPolicy::default();
        let g = LoginGuard::new(p);
        let mut now = 0;
        for _ in 0..40 {
            g.failed("lan", None, now);
            now += 1;
        }
        let until = g.check("lan", None, now).unwrap_err().until_ms;
        assert!(until - now <= p.max_wait_ms);
        // An hour and a lock later, the count starts again.
        let later = until + p.window_ms + 1;
        assert!(g.check("lan", None, later).is_ok());
        assert!(!g.failed("lan", None, later).account_locked);
    }
}
