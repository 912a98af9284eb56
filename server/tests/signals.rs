//! `RunningServer::run_until_signal` in a process of its own (this test binary): a SIGINT
//! stops the server and the call returns; the process then lives on, its watchdog disarmed.

use std::time::{Duration, Instant};

use ticksock_server::{Config, Echo, Server};

/// Whether this process has a handler installed for `signal` (Linux: `SigCgt` in
/// /proc/self/status), so that raising it cannot kill the test.
fn catches(signal: i32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(str::trim).unwrap_or("0");
    u64::from_str_radix(mask, 16).is_ok_and(|mask| mask & (1 << (signal - 1)) != 0)
}

#[test]
fn after_a_signal_it_returns_and_the_process_is_not_ended_by_the_watchdog_later() {
    let shutdown_timeout = Duration::from_millis(200);
    let config =
        Config { listen: "127.0.0.1:0".parse().expect("addr"), shutdown_timeout, ..Config::default() };
    let server = Server::start(config, Echo).expect("server starts");
    let runner = std::thread::spawn(move || server.run_until_signal());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !catches(signal_hook::consts::SIGINT) {
        assert!(Instant::now() < deadline, "run_until_signal did not install its handler");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal_hook::low_level::raise(signal_hook::consts::SIGINT).expect("raise SIGINT");
    runner.join().expect("the runner").expect("a clean shutdown");
    // The watchdog armed by the signal would end the process `shutdown_timeout` after it; it
    // must have been disarmed when the shutdown finished. Wait well past it.
    std::thread::sleep(shutdown_timeout * 3);
}
