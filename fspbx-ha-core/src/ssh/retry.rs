//! When and how long to wait before another connection attempt (pure logic).

use std::io::ErrorKind;
use std::time::Duration;

/// Delay before the first retry.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Largest delay between two attempts.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Delay after failed attempt number `attempt` (1-based): `base · 2^(attempt-1)`, capped, plus
/// `jitter` (a fraction in `0.0..=1.0`) of up to a quarter of that, so that two controllers
/// retrying the same node do not stay in lock step.
pub(crate) fn backoff_delay(attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    delay + delay.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
}

/// Whether a TCP-level error may go away by itself (server restarting, busy, or a lost packet)
/// and is worth another attempt.
pub(crate) fn is_transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::TimedOut
            | ErrorKind::UnexpectedEof
            | ErrorKind::BrokenPipe
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        assert_eq!(backoff_delay(1, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(2, 0.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(3, 0.0), Duration::from_millis(800));
        assert_eq!(backoff_delay(10, 0.0), BACKOFF_CAP);
        assert_eq!(backoff_delay(u32::MAX, 0.0), BACKOFF_CAP);
        assert_eq!(backoff_delay(1, 1.0), Duration::from_millis(250));
        assert_eq!(backoff_delay(1, 7.0), Duration::from_millis(250));
    }

    #[test]
    fn refused_is_transient_permission_is_not() {
        assert!(is_transient(ErrorKind::ConnectionRefused));
        assert!(is_transient(ErrorKind::TimedOut));
        assert!(!is_transient(ErrorKind::PermissionDenied));
        assert!(!is_transient(ErrorKind::InvalidData));
    }
}
