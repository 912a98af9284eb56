//! The whisper scenario against a real server in this process, given twice as `--url`: the
//! spreading over URLs and the pairing run (every partner is on "another" URL), and every
//! whisper is local, so none may be lost or duplicated.

use std::net::SocketAddr;
use std::time::Duration;

use client_sim::{Options, Scenario};
use ticksock_arena::Arena;
use ticksock_server::{Config, Server};

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

#[test]
fn whispers_over_two_urls_of_one_server_all_arrive_once_and_are_timed() {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = Server::start(config, Arena::new(Default::default())).expect("server starts");
    let one = url(server.local_addr());
    // The same server under a second URL (a query the server ignores): the same node.
    let two = format!("{one}?as=second");
    let opts = Options {
        urls: vec![one.clone(), two.clone()],
        scenario: Scenario::Whisper,
        bots: 41,
        whisper_rate: 10.0,
        duration: 2.0,
        whisper_drain: 1.0,
        // 41 bots over 2 URLs: the first 10 of each join `lobby`, the others whisper without.
        room_size: 10,
        quiet: true,
        ..Options::new(&one)
    };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    let shares: Vec<(&str, u64)> = report.urls.iter().map(|s| (s.url.as_str(), s.bots)).collect();
    assert_eq!(shares, [(one.as_str(), 21), (two.as_str(), 20)]);
    let w = report.whisper.expect("whisper figures");
    // 41 bots x 10 whispers/s x 2 s, give or take the phases.
    assert!(w.sent >= 600, "only {} whispers sent", w.sent);
    assert_eq!((w.failed, w.lost, w.duplicated), (0, 0, 0), "{w:?}");
    assert_eq!(w.received, w.sent, "every whisper accepted arrived, once");
    assert_eq!(w.latency_us.count, w.received, "each arrival timed");
    assert!(
        w.latency_us.p50 > 0 && w.latency_us.p50 <= w.latency_us.p99 && w.latency_us.p99 <= w.latency_us.max
    );
    assert!(w.latency_us.max < 2_000_000, "a whisper took {} µs", w.latency_us.max);
    assert_eq!(report.counters.whispers_unknown, 0);
    assert!(report.counters.pushes_presence > 0, "the lobby's bots saw each other come");
    assert_eq!(report.counters.redirects_followed, 0, "one node: nothing to redirect");
    assert!(report.failed_checks().is_empty(), "{:?}", report.failed_checks());
    let table = report.table();
    for line in [
        "whispers LOST / DUPLICATED / out of order",
        "whisper latency (µs) p50/p90/p99/max",
        "bots started on",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }
    let json = report.json();
    assert!(json.contains("\"whisper\"") && json.contains("\"latency_us\""), "{json}");
}
