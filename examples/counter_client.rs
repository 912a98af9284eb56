//! The counter example's Rust client: adds 1, 2 and 3, prints the totals the server answers,
//! then prints the totals it pushes and closes after `--pushes` of them (3 by default: the
//! one a new connection gets at once, then one a second).
//!
//! ```sh
//! cargo run --release --example counter_client -- ws://127.0.0.1:7778/ --pushes 5
//! ```

use std::time::Duration;

use clap::Parser;
use ticksock_client::{BlockingClient, Config, Event};
use ticksock_examples::counter::{ROUTE_ADD, TOPIC_TOTAL};

/// Calls the counter example and prints what it answers and pushes.
#[derive(Parser)]
struct Args {
    /// The counter's URL.
    #[arg(default_value = "ws://127.0.0.1:7778/")]
    url: String,
    /// Pushed totals to print before closing.
    #[arg(long, default_value_t = 3)]
    pushes: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut client = BlockingClient::connect(&args.url, Config::default(), Duration::from_secs(5))?;
    for n in [1_i64, 2, 3] {
        let total: i64 = client.call(ROUTE_ADD, &n)?;
        println!("add {n}: total {total}");
    }
    // Pushes that came while the calls waited were kept; wait_event hands them out first.
    let mut pushes = 0;
    while pushes < args.pushes {
        match client.wait_event(Duration::from_secs(5)) {
            Some(Event::Push { topic, body }) if topic == TOPIC_TOTAL => {
                let total: i64 = ticksock_protocol::decode_body(&body)?;
                println!("pushed total: {total}");
                pushes += 1;
            }
            Some(other) => eprintln!("{other:?}"), // connection events; it reconnects by itself
            None => return Err("no push of the total for 5 s".into()),
        }
    }
    client.close();
    Ok(())
}
