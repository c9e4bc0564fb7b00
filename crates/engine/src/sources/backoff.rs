//! Waiting after a failure: doubling from a first delay up to a ceiling, cut short when the
//! source is stopped.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The delay the next wait will take.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Waits; `false` if the source was stopped meanwhile.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_up_to_the_ceiling_and_resets() {
        let c = CancellationToken::new();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        for expect in [1, 2, 4, 5, 5] {
            assert_eq!(b.peek(), Duration::from_secs(expect));
            assert!(b.wait(&c).await);
        }
        b.reset();
        assert_eq!(b.peek(), Duration::from_secs(1));
        c.cancel();
        assert!(!b.wait(&c).await);
    }
}
