//! The server's version 2 sessions during a `--faults` run, from its `GET /metrics`: the
//! gauges of sessions without a link and the bytes held for them, sampled once a second, and
//! the counters (skipped ticks, resumes, expiries) before and after the run.

use std::net::SocketAddr;

use crate::probe::{metric_value, metrics_text};
use crate::report::ServerSessionFigures;

/// The counters read before and after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SessionCounters {
    ticks_skipped: u64,
    resumes: u64,
    resume_failures: u64,
    expired: u64,
    overflowed: u64,
}

impl SessionCounters {
    /// The counters in a `/metrics` answer; `None` if one is missing.
    fn read(text: &str) -> Option<Self> {
        let get = |name: &str| metric_value(text, name);
        Some(Self {
            ticks_skipped: get("ticksock_ticks_skipped_total")?,
            resumes: get("ticksock_resumes_total")?,
            resume_failures: get("ticksock_resume_failures_total")?,
            expired: get("ticksock_sessions_expired_total")?,
            overflowed: get("ticksock_sessions_overflowed_total")?,
        })
    }
}

/// The gauges' samples so far, and the counters before the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionWatch {
    addr: Option<SocketAddr>,
    before: Option<SessionCounters>,
    figures: ServerSessionFigures,
    /// Sum of bytes per session without a link, over the samples that had one.
    ratio_sum: f64,
    ratio_samples: u64,
}

impl SessionWatch {
    /// The counters before the run, from the server at `addr`.
    pub(crate) fn start(addr: SocketAddr) -> Self {
        let before = metrics_text(addr).ok().and_then(|text| SessionCounters::read(&text));
        Self { addr: Some(addr), before, ..Self::default() }
    }

    /// One look at the gauges.
    pub(crate) fn sample(&mut self) {
        let Some(addr) = self.addr else { return };
        if let Ok(text) = metrics_text(addr) {
            self.note(&text);
        }
    }

    /// Takes the gauges of one `/metrics` answer.
    fn note(&mut self, text: &str) {
        let (Some(dropped), Some(bytes)) = (
            metric_value(text, "ticksock_sessions_dropped"),
            metric_value(text, "ticksock_sessions_dropped_bytes"),
        ) else {
            return;
        };
        let f = &mut self.figures;
        f.samples += 1;
        f.dropped_max = f.dropped_max.max(dropped);
        f.dropped_bytes_max = f.dropped_bytes_max.max(bytes);
        if dropped > 0 {
            let per = bytes as f64 / dropped as f64;
            f.bytes_per_dropped_max = f.bytes_per_dropped_max.max(per);
            self.ratio_sum += per;
            self.ratio_samples += 1;
        }
    }

    /// The figures of the run: the counters' growth since the start (`None` when they could
    /// not be read before or now).
    pub(crate) fn finish(mut self) -> Option<ServerSessionFigures> {
        let text = metrics_text(self.addr?).ok()?;
        self.note(&text);
        self.finish_with(&text)
    }

    fn finish_with(mut self, text: &str) -> Option<ServerSessionFigures> {
        let (before, after) = (self.before?, SessionCounters::read(text)?);
        let f = &mut self.figures;
        f.bytes_per_dropped_mean =
            if self.ratio_samples > 0 { self.ratio_sum / self.ratio_samples as f64 } else { 0.0 };
        f.ticks_skipped = after.ticks_skipped.saturating_sub(before.ticks_skipped);
        f.resumes = after.resumes.saturating_sub(before.resumes);
        f.resume_failures = after.resume_failures.saturating_sub(before.resume_failures);
        f.expired = after.expired.saturating_sub(before.expired);
        f.overflowed = after.overflowed.saturating_sub(before.overflowed);
        Some(self.figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(dropped: u64, bytes: u64, skipped: u64, resumes: u64) -> String {
        format!(
            "HTTP/1.1 200 OK\r\n\r\nticksock_sessions_dropped {dropped}\nticksock_sessions_dropped_bytes {bytes}\n\
             ticksock_ticks_skipped_total {skipped}\nticksock_resumes_total {resumes}\n\
             ticksock_resume_failures_total 1\nticksock_sessions_expired_total 0\n\
             ticksock_sessions_overflowed_total 0\n"
        )
    }

    #[test]
    fn bytes_per_dropped_session_are_peaked_and_averaged_and_counters_differenced() {
        let before = metrics(0, 0, 5, 10);
        let mut watch = SessionWatch { before: SessionCounters::read(&before), ..SessionWatch::default() };
        watch.note(&metrics(0, 0, 5, 10)); // none dropped: no ratio
        watch.note(&metrics(2, 1000, 5, 12));
        watch.note(&metrics(4, 8000, 6, 20));
        watch.note("no gauges here");
        let f = watch.finish_with(&metrics(1, 10, 8, 30)).expect("counters readable");
        assert_eq!((f.samples, f.dropped_max, f.dropped_bytes_max), (3, 4, 8000));
        assert_eq!(f.bytes_per_dropped_max, 2000.0);
        assert_eq!(f.bytes_per_dropped_mean, 1250.0);
        assert_eq!((f.ticks_skipped, f.resumes, f.resume_failures), (3, 20, 0));
        // Without the counters from before the run there is nothing to difference.
        assert!(SessionWatch::default().finish_with(&metrics(1, 1, 1, 1)).is_none());
    }
}
