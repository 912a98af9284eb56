//! The link conditioner (`--latency-ms`, `--bandwidth-kbps`) against a real arena in this
//! process. Each test runs the same load without the conditioner too, and checks that its
//! assertion would fail there: the figures come from the conditioner, not from the load.

mod common;

use client_sim::report::Report;
use client_sim::{Options, Scenario};

/// `opts` against a fresh arena.
fn run(opts: Options) -> Report {
    let server = common::start_arena();
    let opts = Options { urls: vec![format!("ws://{}/", server.local_addr())], ..opts };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    server.shutdown().expect("clean shutdown");
    report
}

/// A small arena load: 20 bots in rooms of 10, 5 moves a second each.
fn arena_load() -> Options {
    Options {
        scenario: Scenario::Arena,
        bots: 20,
        room_size: 10,
        rate: 5.0,
        duration: 2.0,
        ramp: 200.0,
        quiet: true,
        ..Options::new("ws://127.0.0.1:1/")
    }
}

#[test]
fn fifty_ms_each_way_makes_the_round_trip_a_hundred_more_and_the_report_takes_it_out_again() {
    let report = run(Options { latency_ms: 50.0, ..arena_load() });
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    let link = report.link.expect("the conditioner's figures");
    let (seen, held, rest) = (report.rtt_steady_us, link.held_steady_us, link.rtt_less_held_steady_us);
    assert!(seen.count > 100 && held.count == seen.count && rest.count == seen.count, "{seen:?} {held:?}");
    assert!(seen.p50 >= 100_000, "the round trip seen: {seen:?}");
    // Each call's request and answer were held 50 ms each, and a little more: the worker's
    // timers wake at most a millisecond late, more when the machine is busy. (A histogram's
    // minimum is the low end of its bucket: 3 significant digits, 64 µs wide at 100 ms.)
    assert!(held.min >= 100_000 - 64 && held.p50 < 110_000, "{held:?}");
    // What is left is the server and loopback: a few milliseconds at this load.
    assert!(rest.p50 < 10_000 && rest.p99 < 50_000, "{rest:?}");
    let (out, inb) = (link.frame_out_held_us, link.frame_in_held_us);
    assert!(out.min >= 50_000 - 32 && inb.min >= 50_000 - 32, "{out:?} {inb:?}");
    assert_eq!((link.latency_ms, link.jitter_ms, link.bandwidth_kbps), (50.0, 0.0, 0.0));
    // The state pushes come 50 ms late, but still once a tick.
    assert!(report.tick_jitter.gap_us.p50 > 25_000 && report.tick_jitter.gap_us.p50 < 45_000);
    assert!(report.table().contains("held in the conditioner"));
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("valid JSON");
    assert_eq!(json["link"]["held_steady_us"]["p50"], held.p50);
    assert_eq!(json["link"]["rtt_less_held_steady_us"]["p50"], rest.p50);

    // The same load without the conditioner: the round trip is far below 100 ms, and the
    // report has no conditioner's figures.
    let plain = run(arena_load());
    assert_eq!(plain.errors, 0);
    assert!(plain.rtt_steady_us.p50 < 100_000, "{:?}", plain.rtt_steady_us);
    assert!(plain.link.is_none() && !plain.table().contains("held in the conditioner"));
    assert!(serde_json::from_str::<serde_json::Value>(&plain.json()).expect("valid JSON")["link"].is_null());
}

#[test]
fn a_bandwidth_cap_bounds_the_pushes_a_bot_receives() {
    // 20 kbps = 2 500 bytes a second per bot and direction; a room of 40 bots gets its state
    // 30 times a second, more than that.
    let kbps = 20.0;
    let cap_bytes_per_sec = kbps * 125.0;
    let load = Options { bots: 40, room_size: 40, duration: 3.0, ..arena_load() };
    let capped = run(Options { bandwidth_kbps: kbps, ..load.clone() });
    let link = capped.link.expect("the conditioner's figures");
    assert_eq!(link.burst_bytes, 1500);
    // Push bodies are less than the frames that carry them, and over the steady window the
    // bucket lets through its rate and at most its depth more (and 2 % for the window's edges,
    // which the workers' loops read a few milliseconds off).
    let secs = capped.steady.secs;
    let most = (cap_bytes_per_sec + link.burst_bytes as f64 / secs) * 1.02;
    let got = capped.steady.push_bytes_per_bot_sec;
    assert!(got <= most, "{got:.0} bytes/s per bot, cap {cap_bytes_per_sec}");
    assert!(got > cap_bytes_per_sec / 2.0, "the cap is used: {got:.0} bytes/s per bot");
    let per_push = capped.counters.push_bytes as f64 / capped.counters.pushes.max(1) as f64;
    let pushes_per_bot_sec = capped.steady.pushes_per_sec / capped.bots as f64;
    assert!(pushes_per_bot_sec * per_push <= most, "{pushes_per_bot_sec:.1} pushes/s of {per_push:.0} bytes");
    // The frames queued behind the cap: held far longer than without it.
    assert!(link.frame_in_held_us.p99 > 100_000, "{:?}", link.frame_in_held_us);

    // Without the cap the same bots receive more than it allows.
    let free = run(load);
    assert_eq!(free.errors, 0);
    assert!(
        free.steady.push_bytes_per_bot_sec > 1.5 * most,
        "{:.0} bytes/s per bot without a cap: choose a lower one",
        free.steady.push_bytes_per_bot_sec
    );
}
