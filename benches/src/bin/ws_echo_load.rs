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
//! mismatches (an echo that is not the oldest message in flight). In rate mode it prints the
//! round trips twice: from when each message went out, and from when it was due, so that a
//! generator that falls behind its schedule (its own CPU, or its 1 ms timer) shows that lag
//! instead of hiding it. One thread, one mio loop;
//! it exits with status 1 on any mismatch, on a failed connection, or when a connection that
//! sent messages got no echo at all (a stall), and with status 2 on arguments out of range.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The most messages a second, over all connections, that rate mode schedules: beyond it
/// one machine's loopback cannot go anyway, and the schedule's arithmetic stays exact.
const MAX_TOTAL_RATE: f64 = 10_000_000.0;

struct Conn {
    ws: WebSocket<TcpStream>,
    /// The first byte, due time and send time of each message in flight, oldest first:
    /// echoes come back in order.
    in_flight: VecDeque<(u8, Instant, Instant)>,
    next: u8,
    sent: u64,
    echoes: u64,
}

impl Conn {
    /// Queues one message numbered by its first byte, due at `due` and sent `now`. A full
    /// socket keeps it queued in tungstenite, flushed on WRITABLE.
    fn send(&mut self, body: &[u8], due: Instant, now: Instant) -> tungstenite::Result<()> {
        let mut message = body.to_vec();
        message[0] = self.next;
        self.in_flight.push_back((self.next, due, now));
        self.next = self.next.wrapping_add(1);
        self.sent += 1;
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
    // Each message's first byte numbers it, so a body has one at least.
    let total_rate = rate * count as f64;
    let run_for = Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero());
    if body_bytes < 1
        || count < 1
        || window < 1
        || run_for.is_none()
        || !(0.0..=MAX_TOTAL_RATE).contains(&total_rate)
    {
        eprintln!(
            "BODY_BYTES, CONNECTIONS, WINDOW and SECONDS must be above 0, and RATE x CONNECTIONS at most {MAX_TOTAL_RATE} a second"
        );
        std::process::exit(2);
    }
    let run_for = run_for.unwrap_or_default();

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
        let in_flight = VecDeque::with_capacity(window.min(1024));
        conns.push(Conn { ws, in_flight, next: 0, sent: 0, echoes: 0 });
    }
    let body = vec![0u8; body_bytes];
    let started = Instant::now();
    if rate <= 0.0 {
        for conn in &mut conns {
            for _ in 0..window {
                conn.send(&body, started, started)?;
            }
            conn.flush()?;
        }
    }
    let end = started + run_for;
    // In rate mode, send number `n` goes to connection `n % count`.
    let schedule = benches::RateSchedule::new(started, end, total_rate);
    let mut sends_due: u64 = 0;
    let mut most_behind = Duration::ZERO;
    let mut skipped: u64 = 0;
    // Microseconds, up to a minute: from the send, and from the due time.
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rtt_due = rtt.clone();

    let (mut echoes, mut mismatches) = (0u64, 0u64);
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut next_send = end;
        if rate > 0.0 {
            loop {
                let due = schedule.due(sends_due);
                if due > now || due >= end {
                    next_send = due;
                    break;
                }
                most_behind = most_behind.max(now - due);
                let conn = &mut conns[(sends_due % count as u64) as usize];
                sends_due += 1;
                if conn.in_flight.len() >= window {
                    skipped += 1;
                    continue;
                }
                conn.send(&body, due, now)?;
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
                        if sent.map(|(n, _, _)| n) != echo.first().copied() || echo.len() != body_bytes {
                            mismatches += 1;
                        }
                        if let Some((_, due, at)) = sent {
                            let micros = |since: Instant| {
                                u64::try_from(now.saturating_duration_since(since).as_micros())
                                    .unwrap_or(u64::MAX)
                            };
                            rtt.saturating_record(micros(at));
                            rtt_due.saturating_record(micros(due));
                        }
                        if rate <= 0.0 {
                            conn.send(&body, now, now)?;
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
    let summary = |h: &Histogram<u64>| {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1000.0
        )
    };
    println!(
        "{count} connections, {}, {body_bytes}-byte messages: {echoes} echoes in {elapsed:.2} s = {:.0} echoes/s, {mismatches} mismatches",
        if rate > 0.0 {
            format!("{rate} messages/s each (at most {window} in flight, {skipped} skipped)")
        } else {
            format!("{window} in flight each")
        },
        echoes as f64 / elapsed
    );
    println!("round trip ms: {}", summary(&rtt));
    if rate > 0.0 {
        println!("round trip from due ms: {}", summary(&rtt_due));
        println!("generator behind its schedule by {:.3} ms at most", most_behind.as_secs_f64() * 1000.0);
    }
    let stalled = conns.iter().filter(|conn| conn.sent > 0 && conn.echoes == 0).count();
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
