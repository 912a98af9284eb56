//! The server's tick histograms as `GET /metrics` gives them (Prometheus buckets:
//! `NAME_bucket{le="0.001"} 7`, cumulative, then `NAME_sum` and `NAME_count`), and the
//! arithmetic on them: the difference between two readings (the ticks of a stretch of the
//! run) and its quantiles, known only to the bucket they fall in.
//!
//! A quantile is reported as its bucket (`above`, `at_most`] and an estimate that interpolates
//! linearly inside it (as Prometheus's `histogram_quantile` does): the bucket is what the
//! server measured, the estimate assumes the ticks spread evenly within it. The mean is exact
//! (from the sums).

use crate::report::{BucketCount, BucketQuantile, BucketSummary};

/// One reading of a histogram: its bucket bounds (seconds, increasing, the `+Inf` bucket not
/// listed), the cumulative count at each, the count of all, and the sum of the values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    bounds: Vec<f64>,
    cumulative: Vec<u64>,
    count: u64,
    sum_secs: f64,
}

impl Buckets {
    /// The histogram `name` in a `/metrics` answer; `None` when it is not there whole (no
    /// bucket, or no `_count` or `_sum`), or its buckets are not in increasing order.
    pub(crate) fn read(text: &str, name: &str) -> Option<Self> {
        let bucket_prefix = format!("{name}_bucket{{le=\"");
        let (mut bounds, mut cumulative) = (Vec::new(), Vec::new());
        let (mut count, mut sum_secs) = (None, None);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket_prefix) {
                let (le, value) = rest.split_once("\"} ")?;
                let value: u64 = value.trim().parse().ok()?;
                if le == "+Inf" {
                    continue; // The same as `_count`.
                }
                let le: f64 = le.parse().ok()?;
                if bounds.last().is_some_and(|&last| last >= le) {
                    return None;
                }
                bounds.push(le);
                cumulative.push(value);
            } else if let Some(value) = line.strip_prefix(name).and_then(|r| r.strip_prefix("_count ")) {
                count = value.trim().parse().ok();
            } else if let Some(value) = line.strip_prefix(name).and_then(|r| r.strip_prefix("_sum ")) {
                sum_secs = value.trim().parse().ok();
            }
        }
        if bounds.is_empty() {
            return None;
        }
        Some(Self { bounds, cumulative, count: count?, sum_secs: sum_secs? })
    }

    /// What was recorded between `earlier` and this reading: the difference of every count.
    /// `None` when the two do not have the same buckets, or a count went down (the server
    /// restarted in between).
    pub(crate) fn since(&self, earlier: &Buckets) -> Option<Buckets> {
        if self.bounds != earlier.bounds || self.count < earlier.count {
            return None;
        }
        let cumulative = self
            .cumulative
            .iter()
            .zip(&earlier.cumulative)
            .map(|(now, before)| now.checked_sub(*before))
            .collect::<Option<Vec<u64>>>()?;
        Some(Buckets {
            bounds: self.bounds.clone(),
            cumulative,
            count: self.count - earlier.count,
            sum_secs: (self.sum_secs - earlier.sum_secs).max(0.0),
        })
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The bucket bounds, in microseconds.
    pub(crate) fn bounds_us(&self) -> Vec<u64> {
        self.bounds.iter().map(|&secs| us(secs)).collect()
    }

    /// The `q` quantile (0 < `q` <= 1): the bucket that holds the value of rank `ceil(q n)`,
    /// with a linear estimate inside it. `None` when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> Option<BucketQuantile> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut below = 0u64;
        let mut lower = 0.0;
        for (&bound, &cumulative) in self.bounds.iter().zip(&self.cumulative) {
            if cumulative >= rank {
                let share = (rank - below) as f64 / (cumulative - below) as f64;
                return Some(BucketQuantile {
                    above_us: us(lower),
                    at_most_us: Some(us(bound)),
                    estimate_us: us(lower + (bound - lower) * share),
                });
            }
            below = cumulative;
            lower = bound;
        }
        // Past the last bound: only that it is above it is known.
        Some(BucketQuantile { above_us: us(lower), at_most_us: None, estimate_us: us(lower) })
    }

    /// The values in each bucket (not cumulative), the last one past the last bound.
    pub(crate) fn counts(&self) -> Vec<BucketCount> {
        let mut below = 0;
        let mut counts: Vec<BucketCount> = self
            .bounds
            .iter()
            .zip(&self.cumulative)
            .map(|(&bound, &cumulative)| {
                let count = cumulative.saturating_sub(below);
                below = cumulative;
                BucketCount { at_most_us: Some(us(bound)), count }
            })
            .collect();
        counts.push(BucketCount { at_most_us: None, count: self.count.saturating_sub(below) });
        counts
    }

    /// The summary the report gives: count, exact mean, p50 and p99 by bucket, and the counts.
    pub(crate) fn summary(&self) -> BucketSummary {
        BucketSummary {
            count: self.count,
            mean_us: if self.count > 0 { self.sum_secs * 1e6 / self.count as f64 } else { 0.0 },
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            buckets: self.counts(),
        }
    }
}

/// Seconds as whole microseconds (the bounds are round: 0.00025 s is 250 µs).
fn us(secs: f64) -> u64 {
    (secs * 1e6).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/metrics` text with a histogram of the server's bounds: the cumulative counts given
    /// for the first bounds, the rest as the last one, and `count` in `+Inf`.
    fn metrics(name: &str, cumulative: &[u64], count: u64, sum: f64) -> String {
        let bounds = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25];
        let mut text = format!("# HELP {name} x\n# TYPE {name} histogram\nticksock_ticks_total 5\n");
        let last = cumulative.last().copied().unwrap_or(0);
        for (i, bound) in bounds.iter().enumerate() {
            let value = cumulative.get(i).copied().unwrap_or(last);
            text.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {value}\n"));
        }
        text.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}\n"
        ));
        text
    }

    const NAME: &str = "ticksock_tick_lateness_seconds";

    #[test]
    fn a_reading_parses_and_the_other_histogram_beside_it_is_not_mixed_in() {
        let text =
            metrics(NAME, &[1, 3, 3, 4], 5, 0.5) + &metrics("ticksock_tick_duration_seconds", &[9], 9, 0.1);
        let b = Buckets::read(&text, NAME).expect("there");
        assert_eq!(b.count(), 5);
        assert_eq!(b.bounds_us()[..4], [100, 250, 500, 1000]);
        assert_eq!(b.cumulative[..5], [1, 3, 3, 4, 4]);
        assert_eq!(b.sum_secs, 0.5);
        assert!(Buckets::read(&text, "ticksock_nothing").is_none());
        // A truncated answer (no `_count`) is no reading.
        let cut =
            text.lines().filter(|l| !l.starts_with(&format!("{NAME}_count"))).collect::<Vec<_>>().join("\n");
        assert!(Buckets::read(&cut, NAME).is_none());
    }

    #[test]
    fn the_difference_of_two_readings_holds_only_what_came_in_between() {
        // Before: 100 ticks, all under 0.1 ms. After: 100 more, of which 10 between 1 and 2 ms
        // and one past 250 ms.
        let before = Buckets::read(&metrics(NAME, &[100], 100, 0.005), NAME).expect("before");
        let after = Buckets::read(
            &metrics(NAME, &[150, 170, 180, 189, 199, 199, 199, 199, 199, 199, 199, 199], 200, 0.3),
            NAME,
        )
        .expect("after");
        let d = after.since(&before).expect("comparable");
        assert_eq!(d.count(), 100);
        let counts: Vec<u64> = d.counts().iter().map(|b| b.count).collect();
        assert_eq!(counts, [50, 20, 10, 9, 10, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(d.counts().last().map(|b| b.at_most_us), Some(None), "the +Inf bucket");
        let s = d.summary();
        assert!((s.mean_us - 2950.0).abs() < 1e-6, "(0.3 - 0.005) s over 100 ticks: {}", s.mean_us);
        // A server restarted between the readings (counts went down) gives no difference.
        assert!(before.since(&after).is_none());
    }

    #[test]
    fn quantiles_name_their_bucket_and_interpolate_inside_it() {
        // 100 values: 50 in (0, 0.1 ms], 40 in (0.1, 0.25], 9 in (0.5, 1], 1 in (1, 2].
        let b = Buckets::read(&metrics(NAME, &[50, 90, 90, 99, 100], 100, 0.02), NAME).expect("there");
        let p50 = b.quantile(0.5).expect("some");
        assert_eq!(
            (p50.above_us, p50.at_most_us, p50.estimate_us),
            (0, Some(100), 100),
            "rank 50: the first bucket's last"
        );
        let p60 = b.quantile(0.6).expect("some");
        // Rank 60: the 10th of 40 in (100, 250]: 100 + 150 x 10/40.
        assert_eq!((p60.above_us, p60.at_most_us, p60.estimate_us), (100, Some(250), 138));
        let p99 = b.quantile(0.99).expect("some");
        // Rank 99: the last of the 9 in (500, 1000]; an empty bucket between is skipped.
        assert_eq!((p99.above_us, p99.at_most_us, p99.estimate_us), (500, Some(1000), 1000));
        let max = b.quantile(1.0).expect("some");
        assert_eq!((max.above_us, max.at_most_us, max.estimate_us), (1000, Some(2000), 2000));
        // Past the last bound only "above 250 ms" is known.
        let far = Buckets::read(&metrics(NAME, &[0], 2, 1.0), NAME).expect("there");
        let p50 = far.quantile(0.5).expect("some");
        assert_eq!((p50.above_us, p50.at_most_us, p50.estimate_us), (250_000, None, 250_000));
        // Nothing recorded: no quantile, and a mean of 0.
        let empty = Buckets::read(&metrics(NAME, &[0], 0, 0.0), NAME).expect("there");
        assert!(empty.quantile(0.99).is_none());
        assert_eq!(empty.summary().mean_us, 0.0);
    }
}
