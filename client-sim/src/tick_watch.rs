//! The server's tick health over a run, from its `GET /metrics` (the first `--url`'s
//! server): the tick lateness and duration histograms and the skipped ticks, read before the
//! bots start, when the steady window starts, and when it ends (every bot still connected,
//! before a `--faults` or whisper drain); the differences are the run's ticks and the steady
//! window's (`tick_buckets`). The server's bytes sent (`ticksock_bytes_out_total`) are read
//! with them.

use std::net::SocketAddr;

use crate::probe::{metric_value, metrics_text};
use crate::report::{ServerTickFigures, TickHealth};
use crate::tick_buckets::Buckets;

/// How late each tick started (`ticksock_tick_lateness_seconds`).
const LATENESS: &str = "ticksock_tick_lateness_seconds";
/// How long each tick ran (`ticksock_tick_duration_seconds`).
const DURATION: &str = "ticksock_tick_duration_seconds";
/// Tick slots skipped because a tick overran.
const SKIPPED: &str = "ticksock_ticks_skipped_total";
/// Payload bytes of the data messages sent.
const BYTES_OUT: &str = "ticksock_bytes_out_total";

/// One reading of the server's tick figures.
#[derive(Debug, Clone, PartialEq)]
struct TickReading {
    lateness: Buckets,
    duration: Buckets,
    skipped: u64,
    bytes_out: Option<u64>,
}

impl TickReading {
    /// The figures in a `/metrics` answer; `None` if one is missing.
    fn read(text: &str) -> Option<Self> {
        Some(Self {
            lateness: Buckets::read(text, LATENESS)?,
            duration: Buckets::read(text, DURATION)?,
            skipped: metric_value(text, SKIPPED)?,
            bytes_out: metric_value(text, BYTES_OUT),
        })
    }

    /// The ticks between `earlier` and this reading.
    fn since(&self, earlier: &TickReading) -> Option<TickHealth> {
        let lateness = self.lateness.since(&earlier.lateness)?;
        let duration = self.duration.since(&earlier.duration)?;
        Some(TickHealth {
            ticks: lateness.count(),
            skipped: self.skipped.checked_sub(earlier.skipped)?,
            lateness: lateness.summary(),
            duration: duration.summary(),
            bytes_out: self.bytes_out.zip(earlier.bytes_out).and_then(|(now, then)| now.checked_sub(then)),
        })
    }
}

/// The readings so far.
#[derive(Debug, Clone)]
pub(crate) struct TickWatch {
    addr: SocketAddr,
    at_start: Option<TickReading>,
    at_steady: Option<TickReading>,
    /// The reading at the end of the steady window (`None` before, or when it failed).
    at_end: Option<TickReading>,
}

impl TickWatch {
    /// The reading before the run (none if the server's `/metrics` cannot be read: the report
    /// then says so).
    pub(crate) fn start(addr: SocketAddr) -> Self {
        Self { addr, at_start: Self::reading(addr), at_steady: None, at_end: None }
    }

    fn reading(addr: SocketAddr) -> Option<TickReading> {
        metrics_text(addr).ok().and_then(|text| TickReading::read(&text))
    }

    /// The reading when the steady window starts.
    pub(crate) fn steady(&mut self) {
        self.at_steady = Self::reading(self.addr);
    }

    /// The reading when the steady window ends.
    pub(crate) fn ended(&mut self) {
        self.at_end = Self::reading(self.addr);
    }

    /// The figures of the run and of the window (each `None` when a reading it needs is
    /// missing). A run that stopped before the end of its window (interrupted) is read now.
    pub(crate) fn finish(mut self) -> ServerTickFigures {
        let at_end = self.at_end.take().or_else(|| Self::reading(self.addr));
        self.finish_with(at_end)
    }

    fn finish_with(self, at_end: Option<TickReading>) -> ServerTickFigures {
        let between =
            |from: &Option<TickReading>| from.as_ref().zip(at_end.as_ref()).and_then(|(a, b)| b.since(a));
        let bounds = at_end.as_ref().or(self.at_start.as_ref()).map(|r| r.lateness.bounds_us());
        ServerTickFigures {
            bucket_bounds_us: bounds.unwrap_or_default(),
            run: between(&self.at_start),
            steady: between(&self.at_steady),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/metrics` text with both histograms: `late` ticks of 0.3 ms lateness (in the
    /// (0.25, 0.5] ms bucket), `slow` of them late by 1.5 ms, each tick 0.05 ms long.
    fn metrics(late: u64, slow: u64, skipped: u64) -> String {
        let n = late + slow;
        let mut text =
            format!("ticksock_ticks_skipped_total {skipped}\nticksock_bytes_out_total {}\n", n * 100);
        for (name, cumulative, sum) in [
            (LATENESS, [0, 0, late, late, n], late as f64 * 0.0003 + slow as f64 * 0.0015),
            (DURATION, [n, n, n, n, n], n as f64 * 0.00005),
        ] {
            for (bound, c) in ["0.0001", "0.00025", "0.0005", "0.001", "0.002"].iter().zip(cumulative) {
                text.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {c}\n"));
            }
            text.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {n}\n{name}_sum {sum}\n{name}_count {n}\n"));
        }
        text
    }

    #[test]
    fn the_run_and_the_steady_window_are_the_differences_from_their_readings() {
        let watch = TickWatch {
            addr: "127.0.0.1:1".parse().expect("addr"),
            at_start: TickReading::read(&metrics(10, 0, 0)),
            at_steady: TickReading::read(&metrics(40, 0, 1)),
            at_end: None,
        };
        // The steady window: 100 ticks, 2 of them 1.5 ms late; one slot skipped.
        let f = watch.clone().finish_with(TickReading::read(&metrics(138, 2, 2)));
        assert_eq!(f.bucket_bounds_us, [100, 250, 500, 1000, 2000]);
        let steady = f.steady.expect("both readings");
        assert_eq!((steady.ticks, steady.skipped), (100, 1));
        assert_eq!(steady.bytes_out, Some(100 * 100), "100 bytes out per tick in the fixture");
        let p50 = steady.lateness.p50.expect("ticks");
        assert_eq!((p50.above_us, p50.at_most_us), (250, Some(500)));
        let p99 = steady.lateness.p99.expect("ticks");
        assert_eq!((p99.above_us, p99.at_most_us), (1000, Some(2000)), "the 99th of 100: 1.5 ms late");
        let max = steady.lateness.buckets.iter().rfind(|b| b.count > 0).expect("a bucket");
        assert_eq!((max.at_most_us, max.count), (Some(2000), 2));
        assert!((steady.lateness.mean_us - (98.0 * 300.0 + 2.0 * 1500.0) / 100.0).abs() < 1e-6);
        assert_eq!(steady.duration.p99.and_then(|q| q.at_most_us), Some(100));
        let run = f.run.expect("both readings");
        assert_eq!((run.ticks, run.skipped), (130, 2));
        // Without a reading at the start of the window (the server was not there), no figures
        // for it, and none when the last reading is missing.
        let f =
            TickWatch { at_steady: None, ..watch.clone() }.finish_with(TickReading::read(&metrics(50, 0, 0)));
        assert!(f.steady.is_none() && f.run.is_some());
        let f = watch.finish_with(None);
        assert!(f.run.is_none() && f.steady.is_none() && !f.bucket_bounds_us.is_empty());
    }
}
