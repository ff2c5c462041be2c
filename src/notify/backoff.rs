//! When to try a notice again: exponential backoff with deterministic jitter.
//!
//! After failed attempt `n` (1-based) the next attempt waits `base * 2^(n-1)`, capped at
//! `max`, then moved by a jitter of up to ±20 %. The jitter comes from a hash of the notice
//! id and the attempt number, not from a random generator: every replica computes the same
//! time for the same notice (so a retry claimed twice lands on one instant), tests are
//! reproducible, and notices that failed together (a receiver outage) still spread out.
//! Because jitter applies after the cap, a delay at the cap may exceed `max` by up to 20 %.

use sha2::{Digest, Sha256};
use std::time::Duration;

/// The jitter's reach, in per mille of the nominal delay (±20 %).
pub const JITTER_PERMILLE: u32 = 200;

/// An exponential backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The nominal wait after the first failed attempt.
    pub base: Duration,
    /// The largest nominal wait.
    pub max: Duration,
}

impl Backoff {
    /// 2 minutes doubling to at most 6 hours: with the default 8 attempts, the waits are
    /// about 2, 4, 8, 16, 32, 64 and 128 minutes, so the last attempt comes some 4 hours
    /// after the first.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(120),
        max: Duration::from_secs(6 * 3600),
    };

    /// The wait after failed attempt `attempt` (1-based; 0 counts as 1) without jitter:
    /// `base * 2^(attempt-1)`, at most `max`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        1u32.checked_shl(doublings)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait after failed attempt `attempt` of notice `notice_id`: the nominal wait
    /// moved by the notice's jitter for that attempt.
    pub fn delay(&self, attempt: u32, notice_id: &str) -> Duration {
        let nominal = self.nominal(attempt);
        let permille = jitter_permille(notice_id, attempt);
        let delta = nominal * permille.unsigned_abs() / 1000;
        if permille < 0 {
            nominal.saturating_sub(delta)
        } else {
            nominal.saturating_add(delta)
        }
    }

    /// The waits between the attempts of a notice that fails every time: one per failed
    /// attempt except the last (`max_attempts - 1` entries).
    pub fn schedule(&self, notice_id: &str, max_attempts: u32) -> Vec<Duration> {
        (1..max_attempts)
            .map(|attempt| self.delay(attempt, notice_id))
            .collect()
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// The jitter of one attempt of one notice, in per mille, within ±[`JITTER_PERMILLE`]:
/// from SHA-256 over the notice id and the attempt number.
pub fn jitter_permille(notice_id: &str, attempt: u32) -> i32 {
    let digest = Sha256::new()
        .chain_update(b"lethe/notice-backoff\0")
        .chain_update(notice_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let span = u64::from(2 * JITTER_PERMILLE + 1);
    let offset = u64::from_be_bytes(first) % span;
    // offset < 401, so both conversions are exact.
    i32::try_from(offset).unwrap_or(0) - i32::try_from(JITTER_PERMILLE).unwrap_or(0)
}

/// A receiver's `Retry-After` wins over the backoff when it asks for longer, up to `max`:
/// lethe never waits less than its own schedule, nor longer than `max` for a receiver.
pub fn honor_retry_after(
    delay: Duration,
    retry_after: Option<Duration>,
    max: Duration,
) -> Duration {
    match retry_after {
        Some(asked) if asked > delay => asked.min(max).max(delay),
        _ => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn nominal_delays_double_up_to_the_cap() {
        let b = Backoff::DEFAULT;
        let minutes: Vec<u64> = (1..=10).map(|n| b.nominal(n).as_secs() / 60).collect();
        assert_eq!(minutes, [2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
        assert_eq!(b.nominal(0), b.nominal(1));
        assert_eq!(b.nominal(u32::MAX), b.max);
        assert_eq!(b.nominal(33), b.max);
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::from_secs(5),
        };
        assert_eq!(huge.nominal(3), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let b = Backoff::DEFAULT;
        let mut seen_low = false;
        let mut seen_high = false;
        for i in 0..500 {
            let id = format!("ntc-{i}");
            for attempt in 1..=9 {
                let j = jitter_permille(&id, attempt);
                assert!((-200..=200).contains(&j), "{j}");
                seen_low |= j < -150;
                seen_high |= j > 150;
                let nominal = b.nominal(attempt).as_millis();
                let d = b.delay(attempt, &id).as_millis();
                assert!(
                    d * 1000 >= nominal * 800 && d * 1000 <= nominal * 1200,
                    "{d}"
                );
            }
        }
        assert!(seen_low && seen_high, "the jitter uses its whole range");
    }

    #[test]
    fn jitter_is_deterministic_per_notice_and_attempt() {
        let b = Backoff::DEFAULT;
        let a = b.schedule("ntc-0190a5f2-7c1e-7a00-8000-000000000001", 8);
        let again = b.schedule("ntc-0190a5f2-7c1e-7a00-8000-000000000001", 8);
        let other = b.schedule("ntc-0190a5f2-7c1e-7a00-8000-000000000002", 8);
        assert_eq!(a, again);
        assert_ne!(a, other);
        assert_eq!(a.len(), 7);
        // Pinned: a change to the hash input would move every replica's retry times.
        assert_eq!(jitter_permille("ntc-1", 1), jitter_permille("ntc-1", 1));
        let pinned: Vec<i32> = (1..=4).map(|n| jitter_permille("ntc-1", n)).collect();
        assert_eq!(pinned, PINNED_NTC_1);
    }

    // Computed independently with Python 3:
    //   [int.from_bytes(hashlib.sha256(b"lethe/notice-backoff\0ntc-1\0" + n.to_bytes(4, "big"))
    //    .digest()[:8], "big") % 401 - 200 for n in range(1, 5)]
    const PINNED_NTC_1: [i32; 4] = [70, -16, -109, 53];

    #[test]
    fn schedule_of_the_defaults_spans_about_four_hours() {
        let total: Duration = Backoff::DEFAULT.schedule("ntc-x", 8).iter().sum();
        let nominal: Duration = (1..8).map(|n| Backoff::DEFAULT.nominal(n)).sum();
        assert_eq!(nominal, 254 * MIN);
        assert!(total >= nominal * 8 / 10 && total <= nominal * 12 / 10);
        assert!(Backoff::DEFAULT.schedule("ntc-x", 1).is_empty());
    }

    #[test]
    fn retry_after_can_only_lengthen_up_to_the_cap() {
        let max = Duration::from_secs(3600);
        assert_eq!(honor_retry_after(MIN, None, max), MIN);
        assert_eq!(
            honor_retry_after(MIN, Some(Duration::from_secs(5)), max),
            MIN
        );
        assert_eq!(honor_retry_after(MIN, Some(10 * MIN), max), 10 * MIN);
        assert_eq!(
            honor_retry_after(MIN, Some(Duration::from_secs(86_400)), max),
            max
        );
        // A backoff already beyond max stays as it is.
        assert_eq!(honor_retry_after(2 * max, Some(3 * max), max), 2 * max);
    }
}
