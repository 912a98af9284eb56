//! What a run measures, in one type that adds up: each worker keeps a [`Tally`] of its bots,
//! and the run merges the workers' tallies into the one the report is made from.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::Counters;
use crate::worker::TickLedger;

/// Distinct connection error messages kept (per tally, and after a merge).
pub(crate) const MAX_ERROR_SAMPLES: usize = 16;
/// `--faults`: resumes answered against the window described (per tally, and after a merge).
pub(crate) const MAX_SURPRISES: usize = 20;

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // Cannot fail: the bounds are valid constants.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// `d` in whole microseconds, at least 1 (the histograms start at 1 µs).
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Counts, distributions and samples of a run (or of one worker's share of it).
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Counts over the whole run.
    pub counters: Counters,
    /// The counts when the steady window started.
    pub at_steady: Counters,
    /// The counts when the steady window ended (before a `--faults` drain).
    pub at_end: Counters,
    /// Request frames sent over the whole run (read from the sessions at the end).
    pub sent: u64,
    /// Request frames sent when the steady window started.
    pub sent_at_steady: u64,
    /// Request frames sent when the steady window ended.
    pub sent_at_end: u64,
    /// Version 2: requests sent again after resumes, whole run.
    pub resent: u64,
    /// Calls still waiting for their answer at the end.
    pub in_flight_at_end: u64,
    /// Bots connected at the end.
    pub connected_at_end: u64,
    /// CPU time of the worker threads in the steady window, seconds.
    pub steady_cpu_secs: f64,
    /// Round trips of answered calls, whole run, µs.
    pub rtt: Histogram<u64>,
    /// Round trips in the steady window, µs.
    pub rtt_steady: Histogram<u64>,
    /// Gaps between consecutive `state` pushes of a bot, µs.
    pub gaps: Histogram<u64>,
    /// Churn: durations of completed cycles, µs.
    pub cycle_us: Histogram<u64>,
    /// How late the bots' move and chat timers fired, µs.
    pub timer_late: Histogram<u64>,
    /// The server's tick rate, from a welcome (0 before any).
    pub tick_hz: u16,
    /// Error replies by code.
    pub error_codes: BTreeMap<u16, u64>,
    /// A few connection errors by message (at most [`MAX_ERROR_SAMPLES`] distinct ones).
    pub connect_errors: BTreeMap<String, u64>,
    /// `--faults`: refused resumes by reason name.
    pub resume_failures: BTreeMap<&'static str, u64>,
    /// `--faults`: the `state` ticks seen and missed, for the exact check.
    pub ticks: TickLedger,
    /// `--faults`: bots still offline, resuming or with an old link unchecked at the end.
    pub unsettled_at_end: u64,
    /// `--faults`: the first resumes answered against the window, described.
    pub surprises: Vec<String>,
    /// Whisper: whispers sent and received, and their delivery.
    pub whisper: WhisperTally,
    /// `--accounts guest`: failed `guest` and `auth` calls, by route and kind
    /// ([`failure_kind`]).
    pub account_failures: BTreeMap<String, u64>,
    /// `--persist-per-sec`: failed `flush_stats` calls, by kind ([`failure_kind`]).
    pub persist_failures: BTreeMap<String, u64>,
    /// `--persist-per-sec`: `flush_stats` round trips of committed answers, whole run, µs.
    pub persist_latency: Histogram<u64>,
    /// The same in the steady window.
    pub persist_latency_steady: Histogram<u64>,
    /// `--latency-ms`, `--jitter-ms`, `--bandwidth-kbps`: what the link conditioner held.
    pub link: LinkTally,
    /// `--tick-stamps`: each stamped reply's tick minus the tick of the last `state` its bot
    /// had seen, in ticks (replies before the bot's first `state` are not counted).
    pub tick_lag: Histogram<u64>,
}

/// How a call failed, for the report's tables of failures: `error 10 unauthenticated`,
/// `error 1009 app`, `timeout`, `disconnected`, ... (`reply` for a reply, which is no failure).
pub(crate) fn failure_kind(outcome: &ticksock_client::Outcome) -> String {
    use ticksock_client::Outcome;
    match outcome {
        Outcome::Reply(_) | Outcome::TickReply { .. } => "reply".to_owned(),
        Outcome::Error { code, .. } => format!("error {code} {}", ticksock_protocol::error_code::name(*code)),
        Outcome::Timeout => "timeout".to_owned(),
        Outcome::Disconnected => "disconnected".to_owned(),
        Outcome::AnswerLost => "answer lost".to_owned(),
        Outcome::Closed => "closed".to_owned(),
        Outcome::Redirect(_) => "redirect not followed".to_owned(),
    }
}

/// The whisper scenario's counts (see `scenario/whisper.rs`).
#[derive(Debug, Clone)]
pub(crate) struct WhisperTally {
    /// Whispers the server accepted (their call answered with a reply): each must arrive.
    pub sent: u64,
    /// Whisper calls answered otherwise (an error reply, a timeout, a drop): counted as
    /// errors of their calls, and not expected to arrive.
    pub failed: u64,
    /// Whispers received, each once (duplicates not counted).
    pub received: u64,
    /// Whispers received again (the same sender and sequence number).
    pub duplicated: u64,
    /// Whispers received after a later one of the same sender.
    pub out_of_order: u64,
    /// Delivery latency, from the sender's call to the receiver's push, µs.
    pub latency: Histogram<u64>,
}

impl Default for WhisperTally {
    fn default() -> Self {
        Self { sent: 0, failed: 0, received: 0, duplicated: 0, out_of_order: 0, latency: histogram() }
    }
}

impl WhisperTally {
    /// Adds `other` to these counts.
    fn merge(&mut self, other: &WhisperTally) {
        let WhisperTally { sent, failed, received, duplicated, out_of_order, latency } = other;
        self.sent += sent;
        self.failed += failed;
        self.received += received;
        self.duplicated += duplicated;
        self.out_of_order += out_of_order;
        // The same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(latency);
    }

    /// Whispers the server accepted that nobody received.
    pub(crate) fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// What the link conditioner held (`worker::conditioner`): per answered call, its request's
/// and answer's time held and the rest of its round trip; per frame, the time held.
#[derive(Debug, Clone)]
pub(crate) struct LinkTally {
    /// Per answered call: the time its request and its answer were held, µs.
    pub held: Histogram<u64>,
    /// The same in the steady window.
    pub held_steady: Histogram<u64>,
    /// Per answered call: its round trip less the time held (server, network, simulator), µs.
    pub outside: Histogram<u64>,
    /// The same in the steady window.
    pub outside_steady: Histogram<u64>,
    /// Per frame from the bots: the time held, µs.
    pub frame_out: Histogram<u64>,
    /// Per frame to the bots: the time held, µs.
    pub frame_in: Histogram<u64>,
    /// Sends that found a bot's outbound lane full (`worker::WINDOW_BYTES`): the rest of its
    /// frames waited in its session.
    pub out_paused: u64,
    /// Reads that filled a bot's inbound lane: the rest waited unread in its socket.
    pub in_paused: u64,
}

impl Default for LinkTally {
    fn default() -> Self {
        Self {
            held: histogram(),
            held_steady: histogram(),
            outside: histogram(),
            outside_steady: histogram(),
            frame_out: histogram(),
            frame_in: histogram(),
            out_paused: 0,
            in_paused: 0,
        }
    }
}

impl LinkTally {
    /// Counts an answered call whose round trip, as the bot saw it, was `rtt`, of which its
    /// request and its answer were held `held` (in the steady window too when `steady`).
    pub(crate) fn record_call(&mut self, rtt: Duration, held: Duration, steady: bool) {
        let (held_us, outside_us) = (micros(held), micros(rtt.saturating_sub(held)));
        self.held.saturating_record(held_us);
        self.outside.saturating_record(outside_us);
        if steady {
            self.held_steady.saturating_record(held_us);
            self.outside_steady.saturating_record(outside_us);
        }
    }

    /// Adds `other` to these.
    fn merge(&mut self, other: &LinkTally) {
        let LinkTally {
            held,
            held_steady,
            outside,
            outside_steady,
            frame_out,
            frame_in,
            out_paused,
            in_paused,
        } = other;
        for (mine, theirs) in [
            (&mut self.held, held),
            (&mut self.held_steady, held_steady),
            (&mut self.outside, outside),
            (&mut self.outside_steady, outside_steady),
            (&mut self.frame_out, frame_out),
            (&mut self.frame_in, frame_in),
        ] {
            // Every histogram here has the same bounds, so adding cannot fail.
            let _ = mine.add(theirs);
        }
        self.out_paused += out_paused;
        self.in_paused += in_paused;
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            counters: Counters::default(),
            at_steady: Counters::default(),
            at_end: Counters::default(),
            sent: 0,
            sent_at_steady: 0,
            sent_at_end: 0,
            resent: 0,
            in_flight_at_end: 0,
            connected_at_end: 0,
            steady_cpu_secs: 0.0,
            rtt: histogram(),
            rtt_steady: histogram(),
            gaps: histogram(),
            cycle_us: histogram(),
            timer_late: histogram(),
            tick_hz: 0,
            error_codes: BTreeMap::new(),
            connect_errors: BTreeMap::new(),
            resume_failures: BTreeMap::new(),
            ticks: TickLedger::default(),
            unsettled_at_end: 0,
            surprises: Vec::new(),
            whisper: WhisperTally::default(),
            account_failures: BTreeMap::new(),
            persist_failures: BTreeMap::new(),
            persist_latency: histogram(),
            persist_latency_steady: histogram(),
            link: LinkTally::default(),
            tick_lag: histogram(),
        }
    }
}

impl Tally {
    /// Adds `other` to this tally: counts and distributions add up, the tick rate is the
    /// highest seen, and connection errors stay bounded.
    pub(crate) fn merge(&mut self, other: &Tally) {
        let Tally {
            counters,
            at_steady,
            at_end,
            sent,
            sent_at_steady,
            sent_at_end,
            resent,
            in_flight_at_end,
            connected_at_end,
            steady_cpu_secs,
            rtt,
            rtt_steady,
            gaps,
            cycle_us,
            timer_late,
            tick_hz,
            error_codes,
            connect_errors,
            resume_failures,
            ticks,
            unsettled_at_end,
            surprises,
            whisper,
            account_failures,
            persist_failures,
            persist_latency,
            persist_latency_steady,
            link,
            tick_lag,
        } = other;
        self.whisper.merge(whisper);
        self.link.merge(link);
        self.counters.merge(counters);
        self.at_steady.merge(at_steady);
        self.at_end.merge(at_end);
        self.sent += sent;
        self.sent_at_steady += sent_at_steady;
        self.sent_at_end += sent_at_end;
        self.resent += resent;
        self.unsettled_at_end += unsettled_at_end;
        self.ticks.merge(ticks);
        for surprise in surprises {
            self.note_surprise(surprise.clone());
        }
        for (reason, n) in resume_failures {
            *self.resume_failures.entry(reason).or_default() += n;
        }
        self.in_flight_at_end += in_flight_at_end;
        self.connected_at_end += connected_at_end;
        self.steady_cpu_secs += steady_cpu_secs;
        for (mine, theirs) in [
            (&mut self.rtt, rtt),
            (&mut self.rtt_steady, rtt_steady),
            (&mut self.gaps, gaps),
            (&mut self.cycle_us, cycle_us),
            (&mut self.timer_late, timer_late),
            (&mut self.persist_latency, persist_latency),
            (&mut self.persist_latency_steady, persist_latency_steady),
            (&mut self.tick_lag, tick_lag),
        ] {
            // Every histogram here has the same bounds, so adding cannot fail.
            let _ = mine.add(theirs);
        }
        self.tick_hz = self.tick_hz.max(*tick_hz);
        for (code, n) in error_codes {
            *self.error_codes.entry(*code).or_default() += n;
        }
        for (message, n) in connect_errors {
            self.note_connect_errors(message, *n);
        }
        for (mine, theirs) in
            [(&mut self.account_failures, account_failures), (&mut self.persist_failures, persist_failures)]
        {
            for (kind, n) in theirs {
                *mine.entry(kind.clone()).or_default() += n;
            }
        }
    }

    /// Counts an answered call's round trip (in the steady window too when `steady`).
    pub(crate) fn record_rtt(&mut self, rtt: Duration, steady: bool) {
        let us = micros(rtt);
        self.rtt.saturating_record(us);
        if steady {
            self.rtt_steady.saturating_record(us);
        }
    }

    /// Describes a resume answered against the window (the first [`MAX_SURPRISES`] only).
    pub(crate) fn note_surprise(&mut self, description: String) {
        if self.surprises.len() < MAX_SURPRISES {
            self.surprises.push(description);
        }
    }

    /// Counts `n` connection errors saying `message`. Past [`MAX_ERROR_SAMPLES`] distinct
    /// messages, new ones are not kept (the counters count every failure anyway).
    pub(crate) fn note_connect_errors(&mut self, message: &str, n: u64) {
        if let Some(count) = self.connect_errors.get_mut(message) {
            *count += n;
        } else if self.connect_errors.len() < MAX_ERROR_SAMPLES {
            self.connect_errors.insert(message.to_owned(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(replied: u64, rtt_ms: u64, tick_hz: u16, error: &str) -> Tally {
        let mut t = Tally {
            counters: Counters { replied, connect_failures: 1, ..Counters::default() },
            at_steady: Counters { replied: replied / 2, ..Counters::default() },
            sent: replied + 1,
            sent_at_steady: replied / 2,
            in_flight_at_end: 1,
            connected_at_end: 3,
            steady_cpu_secs: 0.5,
            tick_hz,
            ..Tally::default()
        };
        for _ in 0..replied {
            t.record_rtt(Duration::from_millis(rtt_ms), true);
        }
        *t.error_codes.entry(1004).or_default() += 1;
        t.note_connect_errors(error, 1);
        *t.account_failures.entry("auth: timeout".to_owned()).or_default() += 1;
        *t.persist_failures.entry("error 9 busy".to_owned()).or_default() += 2;
        t.persist_latency.saturating_record(rtt_ms.max(1) * 1000);
        t.link.record_call(Duration::from_millis(rtt_ms + 100), Duration::from_millis(100), false);
        t.link.in_paused += 1;
        t
    }

    #[test]
    fn merging_adds_everything_up() {
        let mut total = Tally::default();
        total.merge(&worker(10, 1, 30, "refused"));
        total.merge(&worker(30, 3, 60, "refused"));
        total.merge(&worker(0, 0, 0, "reset"));
        let c = &total.counters;
        assert_eq!((c.replied, c.connect_failures, total.at_steady.replied), (40, 3, 20));
        assert_eq!((total.sent, total.sent_at_steady), (43, 20));
        assert_eq!((total.in_flight_at_end, total.connected_at_end), (3, 9));
        assert!((total.steady_cpu_secs - 1.5).abs() < 1e-9);
        assert_eq!((total.rtt.len(), total.rtt_steady.len()), (40, 40));
        // A quarter of the samples at 1 ms, the rest at 3 ms.
        assert!(total.rtt.equivalent(total.rtt.value_at_quantile(0.2), 1000));
        assert!(total.rtt.equivalent(total.rtt.value_at_quantile(0.5), 3000));
        assert_eq!(total.tick_hz, 60);
        assert_eq!(total.error_codes, BTreeMap::from([(1004, 3)]));
        assert_eq!(
            total.connect_errors,
            BTreeMap::from([("refused".to_owned(), 2), ("reset".to_owned(), 1)])
        );
        assert_eq!(total.account_failures, BTreeMap::from([("auth: timeout".to_owned(), 3)]));
        assert_eq!(total.persist_failures, BTreeMap::from([("error 9 busy".to_owned(), 6)]));
        assert_eq!(total.persist_latency.len(), 3);
        assert_eq!((total.link.held.len(), total.link.outside.len(), total.link.in_paused), (3, 3, 3));
        assert_eq!(total.link.held_steady.len(), 0, "recorded outside the steady window");
        assert!(total.link.outside.equivalent(total.link.outside.max(), 3000), "rtt less held");
    }

    #[test]
    fn a_call_held_longer_than_its_round_trip_leaves_nothing_else() {
        // Cannot happen (the hold is part of the round trip), but must not underflow.
        let mut link = LinkTally::default();
        link.record_call(Duration::from_millis(5), Duration::from_millis(6), true);
        assert_eq!((link.outside.max(), link.outside_steady.len()), (1, 1));
    }

    #[test]
    fn failures_are_named_by_code_or_kind() {
        use ticksock_client::Outcome;
        let error = |code| Outcome::Error { code, message: "why".into() };
        assert_eq!(failure_kind(&error(10)), "error 10 unauthenticated");
        assert_eq!(failure_kind(&error(1009)), "error 1009 app");
        assert_eq!(failure_kind(&Outcome::Timeout), "timeout");
        assert_eq!(failure_kind(&Outcome::Disconnected), "disconnected");
    }

    #[test]
    fn connection_errors_stay_bounded_across_merges() {
        let mut total = Tally::default();
        for i in 0..3 * MAX_ERROR_SAMPLES {
            total.merge(&worker(0, 0, 0, &format!("error {i}")));
        }
        assert_eq!(total.connect_errors.len(), MAX_ERROR_SAMPLES);
        assert_eq!(total.counters.connect_failures, 3 * MAX_ERROR_SAMPLES as u64);
        total.note_connect_errors("error 0", 5);
        assert_eq!(total.connect_errors["error 0"], 6, "a message already kept is still counted");
    }
}
