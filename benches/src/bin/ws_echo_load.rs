//! A plain WebSocket echo load generator, for `server --echo`: what a generic generator (the
//! issue's comparison table) does, with no ticksock protocol (no subprotocol, no callback
//! ids, no welcome frame).
//!
//! ```text
//! ws_echo_load ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES [RATE]]
//! ```
//!
//! Opens CONNECTIONS connections to ADDR (`127.0.0.1:PORT`) and sends binary messages of
//! BODY_BYTES (default 32) on each for SECONDS:
//! - without RATE (or RATE 0), WINDOW messages in flight on each, a new one sent as each echo
//!   comes back: throughput;
//! - with RATE, RATE messages per second on each, spread evenly over the connections, at most
//!   WINDOW in flight (a send due while the window is full is counted as skipped): round trips
//!   at a fixed offered load.
//!
//! It prints the echoes received per second, the round trip p50/p90/p99/p99.9/max, and the
//! mismatches (an echo that is not the oldest message in flight). One thread, one mio loop;
//! it exits with status 1 on any mismatch, on a failed connection, or when a connection got
//! no echo at all (a stall).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

struct Conn {
    ws: WebSocket<TcpStream>,
    /// The first byte and send time of each message in flight, oldest first: echoes come
    /// back in order.
    in_flight: VecDeque<(u8, Instant)>,
    next: u8,
    echoes: u64,
}

impl Conn {
    /// Queues one message numbered by its first byte. A full socket keeps it queued in
    /// tungstenite, flushed on WRITABLE.
    fn send(&mut self, body: &[u8], now: Instant) -> tungstenite::Result<()> {
        let mut message = body.to_vec();
        message[0] = self.next;
        self.in_flight.push_back((self.next, now));
        self.next = self.next.wrapping_add(1);
        would_block_ok(self.ws.write(Message::Binary(message.into())))
    }

    /// Writes what tungstenite buffered; a full socket keeps the rest for the next flush.
    fn flush(&mut self) -> tungstenite::Result<()> {
        would_block_ok(self.ws.flush())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: ws_echo_load ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES [RATE]]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse()?;
    let (count, window, seconds): (usize, usize, f64) =
        (args[2].parse()?, args[3].parse()?, args[4].parse()?);
    let body_bytes: usize = args.get(5).map_or(Ok(32), |b| b.parse())?;
    let rate: f64 = args.get(6).map_or(Ok(0.0), |r| r.parse())?;
    if body_bytes < 1 || count < 1 || window < 1 {
        // Each message's first byte numbers it.
        eprintln!("BODY_BYTES, CONNECTIONS and WINDOW must be at least 1");
        std::process::exit(2);
    }

    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        // Connect and upgrade blocking, then hand the socket to mio.
        let tcp = std::net::TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}/"), tcp)?;
        let tcp = ws.into_inner();
        tcp.set_nonblocking(true)?;
        let mut tcp = TcpStream::from_std(tcp);
        // Writable too: a flush that met a full socket goes on when it drains.
        poll.registry().register(&mut tcp, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        // tungstenite zeroes its whole read buffer (128 KiB by default) for every read: with
        // the default that memset was 57 % of this generator's CPU at 2000 x 20/s.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let ws = WebSocket::from_raw_socket(tcp, tungstenite::protocol::Role::Client, Some(config));
        conns.push(Conn { ws, in_flight: VecDeque::with_capacity(window), next: 0, echoes: 0 });
    }
    let body = vec![0u8; body_bytes];
    let started = Instant::now();
    if rate <= 0.0 {
        for conn in &mut conns {
            for _ in 0..window {
                conn.send(&body, started)?;
            }
            conn.flush()?;
        }
    }
    // In rate mode, send number `s` goes to connection `s % count` at `started + s * gap`.
    let gap = if rate > 0.0 { Duration::from_secs_f64(1.0 / (rate * count as f64)) } else { Duration::MAX };
    let mut sends_due: u64 = 0;
    let mut skipped: u64 = 0;
    // Microseconds, up to a minute.
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;

    let (mut echoes, mut mismatches) = (0u64, 0u64);
    let mut events = Events::with_capacity(1024);
    let end = started + Duration::from_secs_f64(seconds);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut next_send = end;
        if rate > 0.0 {
            loop {
                let due = started + gap.saturating_mul(u32::try_from(sends_due).unwrap_or(u32::MAX));
                if due > now {
                    next_send = due;
                    break;
                }
                let conn = &mut conns[(sends_due % count as u64) as usize];
                sends_due += 1;
                if conn.in_flight.len() >= window {
                    skipped += 1;
                    continue;
                }
                conn.send(&body, now)?;
                conn.flush()?;
            }
        }
        let timeout = next_send.min(now + Duration::from_millis(100)).saturating_duration_since(now);
        poll.poll(&mut events, Some(timeout))?;
        for event in &events {
            let conn = &mut conns[event.token().0];
            let now = Instant::now();
            loop {
                match conn.ws.read() {
                    Ok(Message::Binary(echo)) => {
                        echoes += 1;
                        conn.echoes += 1;
                        let sent = conn.in_flight.pop_front();
                        if sent.map(|(n, _)| n) != echo.first().copied() || echo.len() != body_bytes {
                            mismatches += 1;
                        }
                        if let Some((_, at)) = sent {
                            let micros = now.saturating_duration_since(at).as_micros();
                            rtt.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                        }
                        if rate <= 0.0 {
                            conn.send(&body, now)?;
                        }
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            conn.flush()?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| rtt.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{count} connections, {}, {body_bytes}-byte messages: {echoes} echoes in {elapsed:.2} s = {:.0} echoes/s, {mismatches} mismatches",
        if rate > 0.0 {
            format!("{rate} messages/s each (at most {window} in flight, {skipped} skipped)")
        } else {
            format!("{window} in flight each")
        },
        echoes as f64 / elapsed
    );
    println!(
        "round trip ms: p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        rtt.max() as f64 / 1000.0
    );
    let stalled = conns.iter().filter(|conn| conn.echoes == 0).count();
    if stalled > 0 {
        println!("{stalled} connections got no echo");
    }
    if mismatches > 0 || stalled > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `WouldBlock` from a write or flush means the rest stays queued, not an error.
fn would_block_ok(result: tungstenite::Result<()>) -> tungstenite::Result<()> {
    match result {
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}
