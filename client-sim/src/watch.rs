//! The main thread while the workers run: the live progress line, the server's samples, and
//! the rules that end a run early (an interrupt, or no bot connected within a few seconds).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Options;
use crate::report::process_cpu_secs;
use crate::server_watch::ServerWatch;
use crate::session_watch::SessionWatch;
use crate::tick_watch::TickWatch;
use crate::worker::{Live, LiveFigures};

/// How often the stop rules are looked at.
const CHECK: Duration = Duration::from_millis(100);
/// How often the progress line is printed and the server sampled.
const PRINT: Duration = Duration::from_secs(1);
/// The longest connection error message the progress line shows, in characters.
const MAX_ERROR_CHARS: usize = 80;

/// When a run starts, when its steady window starts, and when it ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    /// The first bot's start.
    pub start: Instant,
    /// The last bot's start.
    pub steady_start: Instant,
    /// The end of the steady window.
    pub end: Instant,
    /// `--faults`: the latest the run goes on after the window while outages end; whisper: the
    /// end of the drain (else `end`).
    pub drain_end: Instant,
}

impl Timeline {
    /// The timeline of a run set up at `now`: bots start 10 ms later, at `--ramp` per second,
    /// and the steady window lasts `--duration`. With `--faults` the run may go on for the
    /// longest outage, the call timeout and 5 s more, for the last outages to end and their
    /// resumes and calls to be answered.
    pub(crate) fn new(opts: &Options, now: Instant) -> Self {
        let start = now + Duration::from_millis(10);
        let steady_start = start + Duration::from_secs_f64(Self::ramp_secs(opts));
        let end = steady_start + Duration::from_secs_f64(opts.duration.max(0.0));
        let drain = if opts.faults {
            opts.outage_max.max(0.0) + opts.call_timeout.max(0.0) + 5.0
        } else if opts.scenario == crate::Scenario::Whisper {
            opts.whisper_drain.max(0.0)
        } else {
            0.0
        };
        Self { start, steady_start, end, drain_end: end + Duration::from_secs_f64(drain) }
    }

    /// Seconds from the first bot's start to the last one's.
    pub(crate) fn ramp_secs(opts: &Options) -> f64 {
        f64::from(opts.bots.saturating_sub(1)) / opts.ramp.max(0.001)
    }

    /// Seconds of the steady window that ran, if the run stopped at `stopped_at`.
    pub(crate) fn steady_secs_until(&self, stopped_at: Instant) -> f64 {
        stopped_at.min(self.end).saturating_duration_since(self.steady_start).as_secs_f64()
    }
}

/// What the watch saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Watched {
    /// How it ended.
    pub ending: Ending,
    /// The process's CPU time when the steady window started, and when it ended.
    pub cpu_at_steady: f64,
    pub cpu_at_end: f64,
    /// When the run ended (after a `--faults` drain, later than the window).
    pub ended_at: Instant,
}

/// How the watch ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// At the planned end.
    Completed,
    /// The caller's interrupt flag was set (Ctrl-C), at this instant.
    Interrupted(Instant),
    /// No bot was welcomed within `--first-connect-timeout`; the figures then.
    NoConnection(LiveFigures),
}

/// Whether to give up on the run: `timeout` has passed since `started_at` and no bot has ever
/// been welcomed. `None`: never give up.
pub(crate) fn no_connection_in_time(
    started_at: Instant,
    now: Instant,
    connected_ever: bool,
    timeout: Option<Duration>,
) -> bool {
    !connected_ever && timeout.is_some_and(|timeout| now.saturating_duration_since(started_at) >= timeout)
}

/// The progress line: time since the start, bots connected, answers per second, round-trip
/// p99, errors, and the latest connection error with its age.
pub(crate) fn live_line(elapsed: Duration, bots: u32, answers_per_sec: f64, f: &LiveFigures) -> String {
    let mut line = format!(
        "[{:6.1}s] bots {:>6}/{bots} connected | {answers_per_sec:>8.0} answers/s | p99 {:>8.2} ms | errors {}",
        elapsed.as_secs_f64(),
        f.connected,
        f.p99_us as f64 / 1000.0,
        f.errors,
    );
    if let Some((ago, message)) = &f.last_connect_error {
        let mut shown: String = message.chars().take(MAX_ERROR_CHARS).collect();
        if shown.len() < message.len() {
            shown.push('…');
        }
        line.push_str(&format!(" | last connect error {:.1} s ago: {shown}", ago.as_secs_f64()));
    }
    line
}

/// Waits for the end of the run, or for a reason to end it early (then [`Live::halt`]s the
/// workers), printing the progress line once a second unless quiet, sampling the server
/// (`--server-pid`) and its sessions (`--faults`), and reading the server's ticks when the
/// steady window starts and when it ends. The run ends at the end of the steady window, or with `--faults` once
/// every worker has finished its drain (at the latest at [`Timeline::drain_end`]).
pub(crate) fn watch(
    opts: &Options,
    live: &Live,
    timeline: &Timeline,
    interrupt: &AtomicBool,
    mut server: Option<&mut ServerWatch>,
    mut sessions: Option<&mut SessionWatch>,
    ticks: &mut TickWatch,
) -> Watched {
    let first_connect_timeout = (opts.first_connect_timeout > 0.0 && opts.bots > 0)
        .then(|| Duration::from_secs_f64(opts.first_connect_timeout));
    let mut cpu_at_steady = None;
    let mut cpu_at_end = None;
    let mut last_answered = 0u64;
    let mut last = Instant::now();
    let mut next_print = last + PRINT;
    let mut printed_chars = 0usize;
    let ending = loop {
        let now = Instant::now();
        if cpu_at_steady.is_none() && now >= timeline.steady_start {
            cpu_at_steady = Some(process_cpu_secs());
            ticks.steady();
        }
        if cpu_at_end.is_none() && now >= timeline.end {
            cpu_at_end = Some(process_cpu_secs());
            ticks.ended();
        }
        if now >= timeline.end && (live.all_finished() || now >= timeline.drain_end) {
            break Ending::Completed;
        }
        if interrupt.load(Ordering::Relaxed) {
            break Ending::Interrupted(now);
        }
        let figures = live.figures(now);
        if no_connection_in_time(timeline.start, now, figures.bots_connected > 0, first_connect_timeout) {
            break Ending::NoConnection(figures);
        }
        if now >= next_print {
            next_print = now + PRINT;
            if let Some(server) = server.as_deref_mut() {
                server.sample();
            }
            if let Some(sessions) = sessions.as_deref_mut() {
                sessions.sample();
            }
            if !opts.quiet {
                let answered = figures.answered;
                let rate =
                    (answered - last_answered.min(answered)) as f64 / now.duration_since(last).as_secs_f64();
                let line =
                    live_line(now.saturating_duration_since(timeline.start), opts.bots, rate, &figures);
                // Rewritten in place: pad over what a longer line before left.
                let chars = line.chars().count();
                eprint!("\r{line}{}", " ".repeat(printed_chars.saturating_sub(chars)));
                printed_chars = chars;
                last_answered = answered;
                last = now;
            }
        }
        let mut wake = (now + CHECK).min(next_print);
        if now < timeline.end {
            wake = wake.min(timeline.end);
        }
        if cpu_at_steady.is_none() {
            wake = wake.min(timeline.steady_start);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    };
    if ending != Ending::Completed {
        live.halt();
    }
    if !opts.quiet && printed_chars > 0 {
        eprintln!();
    }
    let cpu_now = process_cpu_secs();
    Watched {
        ending,
        cpu_at_steady: cpu_at_steady.unwrap_or(cpu_now),
        cpu_at_end: cpu_at_end.unwrap_or(cpu_now),
        ended_at: Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gives_up_only_when_no_bot_ever_connected_within_the_timeout() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let timeout = Some(s(5));
        assert!(!no_connection_in_time(t0, t0 + s(4), false, timeout), "not yet");
        assert!(no_connection_in_time(t0, t0 + s(5), false, timeout));
        assert!(no_connection_in_time(t0, t0 + s(60), false, timeout));
        assert!(!no_connection_in_time(t0, t0 + s(60), true, timeout), "one bot connected once is enough");
        assert!(!no_connection_in_time(t0, t0 + s(600), false, None), "0 turns the rule off");
        // A clock read before the start (the bots start 10 ms after the setup).
        assert!(!no_connection_in_time(t0 + s(1), t0, false, timeout));
    }

    #[test]
    fn the_live_line_shows_the_latest_connect_error_and_its_age() {
        let mut f = LiveFigures { connected: 3, errors: 2, p99_us: 1500, ..LiveFigures::default() };
        let line = live_line(Duration::from_millis(2500), 10, 40.0, &f);
        assert_eq!(
            line,
            "[   2.5s] bots      3/10 connected |       40 answers/s | p99     1.50 ms | errors 2"
        );
        f.last_connect_error =
            Some((Duration::from_millis(300), "i/o: Connection refused (os error 111)".into()));
        let line = live_line(Duration::from_millis(2500), 10, 40.0, &f);
        assert!(
            line.ends_with(
                "| errors 2 | last connect error 0.3 s ago: i/o: Connection refused (os error 111)"
            )
        );
        f.last_connect_error = Some((Duration::ZERO, "x".repeat(500)));
        let line = live_line(Duration::ZERO, 10, 0.0, &f);
        assert!(line.ends_with(&format!("{}…", "x".repeat(MAX_ERROR_CHARS))), "{line}");
    }

    #[test]
    fn the_steady_window_is_cut_where_the_run_stopped() {
        let opts = Options { bots: 11, ramp: 10.0, duration: 4.0, ..Options::new("ws://127.0.0.1:1/") };
        let t0 = Instant::now();
        let t = Timeline::new(&opts, t0);
        assert_eq!(t.steady_start - t.start, Duration::from_secs(1));
        assert_eq!(t.end - t.steady_start, Duration::from_secs(4));
        let secs = Duration::from_secs_f64;
        assert_eq!(t.steady_secs_until(t.start), 0.0, "stopped during the ramp");
        assert!((t.steady_secs_until(t.steady_start + secs(1.5)) - 1.5).abs() < 1e-6);
        assert!((t.steady_secs_until(t.end + secs(9.0)) - 4.0).abs() < 1e-6, "at most the whole window");
        assert_eq!(t.drain_end, t.end, "no drain without --faults");
        let faults = Options { faults: true, outage_max: 10.0, call_timeout: 2.0, ..opts };
        let t = Timeline::new(&faults, t0);
        assert_eq!(t.drain_end - t.end, Duration::from_secs(17), "the longest outage, a call, 5 s");
    }
}
