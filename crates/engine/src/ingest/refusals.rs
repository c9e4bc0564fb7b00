//! Refusals grouped by cause. A 600,000-row CSV for an entity nobody registered is one
//! mistake, not 600,000: it becomes one dead letter (and one line of the import's report) with
//! a count and a few samples, so the dead letters stay readable and an import's memory does
//! not grow with its refusals.
//!
//! The cause of a refusal is its reason with the particulars blanked out (numbers, quoted
//! text): `line 7: unknown entity "X"` and `line 9: unknown entity "Y"` are one cause. The
//! first reason of a cause is kept whole, and a few more as samples.

use std::collections::HashMap;

/// Reasons kept per cause, the first included.
pub const SAMPLES: usize = crate::store::DEAD_LETTER_SAMPLES;
/// Causes kept apart; refusals of any further cause are counted together, so a file whose
/// every line fails differently still costs bounded memory and rows.
pub const MAX_CAUSES: usize = 100;
/// The cause under which refusals past [`MAX_CAUSES`] are counted.
pub const OTHER_CAUSES: &str = "(other causes)";

/// The cause of a refusal: its reason with every number replaced by `#` and every quoted
/// text by `"…"`.
pub fn cause(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(256));
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                chars.next();
            }
            out.push('#');
        } else if c == '"' {
            // To the closing quote; `\"` inside (Rust's `{:?}`) does not close it.
            let mut escaped = false;
            for d in chars.by_ref() {
                match d {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => break,
                    _ => {}
                }
            }
            out.push_str("\"…\"");
        } else {
            out.push(c);
        }
    }
    out
}

/// Refusals of one cause.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub cause: String,
    /// The first one's reason.
    pub reason: String,
    pub count: usize,
    /// Reasons of a few more (at most [`SAMPLES`] − 1).
    pub samples: Vec<String>,
}

/// Refusals gathered by cause, in the order each cause first came.
#[derive(Debug, Default)]
pub struct Grouped {
    groups: Vec<Group>,
    index: HashMap<String, usize>,
    total: usize,
}

impl Grouped {
    /// One refusal.
    pub fn add(&mut self, reason: &str) {
        self.add_group(reason, 1, &[]);
    }

    /// `count` refusals of the cause of `reason`, with a few more reasons as samples.
    pub fn add_group(&mut self, reason: &str, count: usize, samples: &[String]) {
        self.total += count;
        let mut key = cause(reason);
        if !self.index.contains_key(&key) && self.groups.len() >= MAX_CAUSES {
            key = OTHER_CAUSES.to_string();
        }
        let at = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.index.insert(key.clone(), self.groups.len());
                self.groups.push(Group {
                    cause: key,
                    reason: reason.to_string(),
                    count: 0,
                    samples: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[at];
        let fresh = g.count == 0;
        g.count += count;
        // Samples show how the refusals differ: a reason already shown is not repeated.
        let more = (!fresh)
            .then_some(reason)
            .into_iter()
            .chain(samples.iter().map(String::as_str));
        for s in more {
            if g.samples.len() >= SAMPLES - 1 {
                break;
            }
            if s != g.reason && !g.samples.iter().any(|k| k == s) {
                g.samples.push(s.to_string());
            }
        }
    }

    /// Refusals in all.
    pub fn total(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn into_groups(self) -> Vec<Group> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_particulars_of_a_reason_are_not_its_cause() {
        assert_eq!(
            cause(r#"line 7: unknown entity "st-1""#),
            r#"line #: unknown entity "…""#
        );
        assert_eq!(
            cause(r#"line 12: unknown entity "a\"b""#),
            cause("line 3: unknown entity \"c\"")
        );
        assert_eq!(
            cause("pm25: -999.0 is outside 0 to 1000"),
            "pm#: -# is outside # to #"
        );
        assert_ne!(
            cause("unknown entity \"x\""),
            cause("x/pm25: value is not a finite number")
        );
    }

    #[test]
    fn refusals_of_one_cause_are_one_group_with_a_count_and_samples() {
        let mut g = Grouped::default();
        for line in 2..=600 {
            g.add(&format!("line {line}: unknown entity \"ghost\""));
        }
        g.add("line 601: time 2030-01-01 is in the future");
        assert_eq!(g.total(), 600);
        let groups = g.into_groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].reason, "line 2: unknown entity \"ghost\"");
        assert_eq!(groups[0].count, 599);
        assert_eq!(
            groups[0].samples,
            ["line 3", "line 4", "line 5", "line 6"]
                .map(|l| format!("{l}: unknown entity \"ghost\""))
        );
        assert_eq!(groups[1].count, 1);
        assert!(groups[1].samples.is_empty());

        // The same reason over and over has no samples to show.
        let mut same = Grouped::default();
        for _ in 0..50 {
            same.add("unknown entity \"ghost\"");
        }
        let groups = same.into_groups();
        assert_eq!((groups[0].count, groups[0].samples.len()), (50, 0));
    }

    #[test]
    fn groups_add_up_and_past_the_cap_are_counted_as_other_causes() {
        let mut a = Grouped::default();
        a.add_group("line 1: bad", 10, &["line 2: bad".into()]);
        a.add_group("line 30: bad", 5, &["line 31: bad".into()]);
        let groups = a.groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].count, 15);
        assert_eq!(
            groups[0].samples,
            ["line 2: bad", "line 30: bad", "line 31: bad"]
        );

        let mut b = Grouped::default();
        for i in 0..MAX_CAUSES + 50 {
            b.add(&format!("cause {}", "x".repeat(i + 1)));
        }
        assert_eq!(b.total(), MAX_CAUSES + 50);
        assert_eq!(b.groups().len(), MAX_CAUSES + 1);
        let other = b.groups().last().unwrap();
        assert_eq!(other.cause, OTHER_CAUSES);
        assert_eq!(other.count, 50);
    }
}
