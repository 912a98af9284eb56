//! The chat example's Rust client: joins the room under `--name`, prints who is there, says
//! each `--say` line (or, with `--stdin`, each line typed until end of input), prints what the
//! room says meanwhile, and leaves.
//!
//! ```sh
//! cargo run --release --example chat_client -- ws://127.0.0.1:7779/ --name ann --say hi --say bye
//! cargo run --release --example chat_client -- --name bob --stdin
//! ```

use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use ticksock_client::{BlockingClient, Config, Event};
use ticksock_examples::chat::{
    Join, Line, Presence, ROUTE_JOIN, ROUTE_SAY, ROUTE_WHO, Say, TOPIC_LINE, TOPIC_PRESENCE,
};

/// Joins the chat example's room, says a few lines and prints what the room says.
#[derive(Parser)]
struct Args {
    /// The chat's URL.
    #[arg(default_value = "ws://127.0.0.1:7779/")]
    url: String,
    /// The name to join under.
    #[arg(long, default_value = "rust")]
    name: String,
    /// A line to say (repeat it for more).
    #[arg(long = "say", default_value = "hello from Rust")]
    lines: Vec<String>,
    /// Say the lines typed on stdin instead, until end of input (Ctrl-D).
    #[arg(long)]
    stdin: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut client = BlockingClient::connect(&args.url, Config::default(), Duration::from_secs(5))?;
    client.call::<_, ()>(ROUTE_JOIN, &Join { name: args.name })?;
    let names: Vec<String> = client.call(ROUTE_WHO, &())?;
    println!("here: {}", names.join(", "));

    let (lines, said) = mpsc::channel();
    if args.stdin {
        // Reading stdin blocks, so a thread does it while this one prints what the room says.
        std::thread::spawn(move || {
            std::io::stdin().lines().map_while(Result::ok).try_for_each(|l| lines.send(l))
        });
    } else {
        args.lines.into_iter().try_for_each(|l| lines.send(l))?;
        drop(lines);
    }
    let mut input_open = true;
    while input_open {
        match said.try_recv() {
            Ok(text) => match client.call::<_, ()>(ROUTE_SAY, &Say { text }) {
                // A line the room refuses (empty, too long) is not the end of the chat.
                Err(ticksock_client::Error::Server { message, .. }) => eprintln!("not said: {message}"),
                other => other?,
            },
            Err(mpsc::TryRecvError::Empty) => {
                if let Some(event) = client.wait_event(Duration::from_millis(50)) {
                    print_event(event)?;
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => input_open = false,
        }
        // What the room said meanwhile. Our own line is among it: a handler's pushes arrive
        // before its reply.
        while let Some(event) = client.poll_event() {
            print_event(event)?;
        }
    }
    client.close();
    Ok(())
}

fn print_event(event: Event) -> Result<(), ticksock_protocol::BodyError> {
    match event {
        Event::Push { topic, body } if topic == TOPIC_LINE => {
            let Line { from, text } = ticksock_protocol::decode_body(&body)?;
            println!("{from}: {text}");
        }
        Event::Push { topic, body } if topic == TOPIC_PRESENCE => {
            let Presence { name, online } = ticksock_protocol::decode_body(&body)?;
            println!("{name} {}", if online { "joined" } else { "left" });
        }
        other => eprintln!("{other:?}"), // connection events; it reconnects by itself
    }
    Ok(())
}
