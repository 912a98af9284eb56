//! The counter example: serves the counter game ([`ticksock_examples::counter`]) and its page
//! until Ctrl-C, then shuts down gracefully (clients get close 1001, the process exits 0).
//!
//! ```sh
//! cargo run --release --example counter             # then open http://127.0.0.1:7778/
//! cargo run --release --example counter_client      # in another terminal
//! ```

use std::net::SocketAddr;

use clap::Parser;
use ticksock_examples::counter::{self, Counter};
use ticksock_server::{Config, Server};

/// Ticks per second. The counter does nothing per tick but count to its next push.
const TICK_HZ: u16 = 10;

/// The counter example: a total that everyone shares, pushed once a second.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7778")]
    listen: SocketAddr,
}

fn main() -> Result<(), ticksock_server::Error> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let config =
        Config { listen: args.listen, tick_hz: TICK_HZ, static_files: counter::page(), ..Config::default() };
    let server = Server::start(config, Counter::new(u32::from(TICK_HZ)))?;
    let addr = server.local_addr();
    println!("counter listening on ws://{addr}/, page at http://{addr}/ (Ctrl-C stops it)");
    server.run_until_signal()?;
    Ok(())
}
