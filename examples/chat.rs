//! The chat example: serves the chat room ([`ticksock_examples::chat`]) and its page until
//! Ctrl-C, then shuts down gracefully.
//!
//! ```sh
//! cargo run --release --example chat                # then open http://127.0.0.1:7779/
//! cargo run --release --example chat_client -- --name ann --say hi --say bye
//! ```

use std::net::SocketAddr;

use clap::Parser;
use ticksock_examples::chat::{self, Chat};
use ticksock_server::{Config, Server};

/// The chat example: a room to join under a name and talk in.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7779")]
    listen: SocketAddr,
}

fn main() -> Result<(), ticksock_server::Error> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    // The chat does nothing per tick, so the default tick rate will do.
    let config = Config { listen: args.listen, static_files: chat::page(), ..Config::default() };
    let server = Server::start(config, Chat)?;
    let addr = server.local_addr();
    println!("chat listening on ws://{addr}/, page at http://{addr}/ (Ctrl-C stops it)");
    server.run_until_signal()?;
    Ok(())
}
