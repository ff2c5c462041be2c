//! Batch sizing: how many rows of the rule's table go into the next batch transaction.
//!
//! Rules differ a lot in the work per row (a contact with ten cascaded child rows costs
//! more than a web session), and a cold page cache makes the first batches slower than
//! the rest. With a time target, each batch is resized from the previous one so its
//! transaction takes about the target: the longest lock a run holds on the CRM stays
//! bounded whatever the rule, and fast rules get the larger batches that make them
//! efficient. Pure: the executor reports durations, this decides.

use std::time::Duration;

/// The next batch's size.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    size: u32,
    max: u32,
    target: Option<Duration>,
}

impl BatchSizer {
    /// Every batch has `size` rows.
    pub fn fixed(size: u32) -> BatchSizer {
        let size = size.max(1);
        BatchSizer {
            size,
            max: size,
            target: None,
        }
    }

    /// Starts at `start` rows and resizes towards `target` per transaction, between 1 and
    /// `max` rows; a batch at most doubles or halves the next one.
    pub fn adaptive(start: u32, max: u32, target: Duration) -> BatchSizer {
        let max = max.max(1);
        BatchSizer {
            size: start.clamp(1, max),
            max,
            target: Some(target),
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Records that a batch of `rows` rows took `took`.
    pub fn observe(&mut self, rows: u64, took: Duration) {
        let Some(target) = self.target else {
            return;
        };
        if rows == 0 {
            return;
        }
        let per_row = took.as_secs_f64() / rows as f64;
        let ideal = if per_row <= 0.0 {
            f64::from(self.max)
        } else {
            target.as_secs_f64() / per_row
        };
        let lo = f64::from((self.size / 2).max(1));
        let hi = f64::from(self.size.saturating_mul(2));
        let next = ideal.clamp(lo, hi).clamp(1.0, f64::from(self.max));
        // Truncation is intended: the clamp keeps it within u32.
        self.size = next as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fixed_batches_never_change() {
        let mut s = BatchSizer::fixed(7);
        s.observe(7, ms(900));
        s.observe(7, ms(1));
        assert_eq!(s.size(), 7);
        assert_eq!(BatchSizer::fixed(0).size(), 1);
    }

    #[test]
    fn a_fast_batch_at_most_doubles_the_next_and_stops_at_max() {
        let mut s = BatchSizer::adaptive(1000, 5000, ms(200));
        s.observe(1000, ms(10)); // ideal 20000
        assert_eq!(s.size(), 2000);
        s.observe(2000, ms(20));
        assert_eq!(s.size(), 4000);
        s.observe(4000, ms(40));
        assert_eq!(s.size(), 5000);
        s.observe(5000, Duration::ZERO);
        assert_eq!(s.size(), 5000);
    }

    #[test]
    fn a_slow_batch_at_least_halves_the_next() {
        let mut s = BatchSizer::adaptive(2000, 20000, ms(200));
        s.observe(2000, ms(2000)); // ideal 200
        assert_eq!(s.size(), 1000);
        s.observe(1000, ms(400)); // ideal 500
        assert_eq!(s.size(), 500);
        s.observe(500, ms(250)); // ideal 400
        assert_eq!(s.size(), 400);
    }

    #[test]
    fn converges_on_the_target_for_a_steady_cost() {
        // 0.1 ms per row: 200 ms is 2000 rows.
        let mut s = BatchSizer::adaptive(100, 100_000, ms(200));
        for _ in 0..10 {
            let rows = u64::from(s.size());
            s.observe(rows, Duration::from_micros(rows * 100));
        }
        assert_eq!(s.size(), 2000);
    }

    #[test]
    fn a_short_last_batch_uses_its_own_row_count() {
        let mut s = BatchSizer::adaptive(1000, 10000, ms(200));
        // 10 rows in 100 ms is 10 ms per row: ideal 20, but at most halves.
        s.observe(10, ms(100));
        assert_eq!(s.size(), 500);
        let mut one = BatchSizer::adaptive(1, 10, ms(200));
        one.observe(1, ms(5000));
        assert_eq!(one.size(), 1);
    }
}
