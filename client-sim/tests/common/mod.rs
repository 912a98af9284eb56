//! What several of client-sim's tests share.

use std::time::Duration;

use ticksock_arena::Arena;
use ticksock_server::{Config, RunningServer, Server};

/// The arena as shipped, in this process, on a free loopback port (closing handshakes bounded
/// to 300 ms, so that a test's end does not wait on them).
pub fn start_arena() -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    Server::start(config, Arena::new(Default::default())).expect("server starts")
}
