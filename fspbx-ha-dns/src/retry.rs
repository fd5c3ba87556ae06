//! Backoff arithmetic for throttled API calls, without I/O.

use std::time::Duration;

/// Exponential backoff with a cap and an attempt budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub first: Duration,
    /// Largest delay between two attempts.
    pub max: Duration,
    /// Total attempts, the first one included.
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(10),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// How long to wait after failed attempt number `attempt` (1-based). A `retry_after` the
    /// server asked for wins when it is longer (it is still capped by `max`); `None` means the
    /// budget is spent.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let exp = self.first.saturating_mul(factor).min(self.max);
        Some(retry_after.map_or(exp, |r| r.max(exp)).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_stops() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(350),
            attempts: 4,
        };
        assert_eq!(b.delay(1, None), Some(Duration::from_millis(100)));
        assert_eq!(b.delay(2, None), Some(Duration::from_millis(200)));
        assert_eq!(b.delay(3, None), Some(Duration::from_millis(350)));
        assert_eq!(b.delay(4, None), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(600))),
            Some(Duration::from_secs(10))
        );
        // A shorter retry-after than our own backoff does not shorten it.
        assert_eq!(
            b.delay(3, Some(Duration::from_millis(1))),
            Some(Duration::from_millis(800))
        );
    }
}
