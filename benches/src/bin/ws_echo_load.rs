//! A WebSocket echo load generator, in two forms that share everything but the bytes on the
//! wire: plain echo for `server --echo` (what a generic generator, the issue's comparison
//! table, does: no subprotocol, no callback ids, no welcome frame), and with `--protocol` the
//! ticksock protocol path (`ticksock.v1` Requests for the arena's `echo` route, matched to
//! their Replies by callback id), so the two server paths are measured by one generator.
//!
//! ```text
//! ws_echo_load [--protocol] ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES [RATE]]
//! ```
//!
//! Opens CONNECTIONS connections to ADDR (`127.0.0.1:PORT`) and sends messages whose body is
//! BODY_BYTES (default 32; the protocol form adds its 7-11 bytes of Request header) on each
//! for SECONDS:
//! - without RATE (or RATE 0), WINDOW messages in flight on each, a new one sent as each echo
//!   comes back: throughput;
//! - with RATE, RATE messages per second on each, spread evenly over the connections, at most
//!   WINDOW in flight (a send due while the window is full is counted as skipped): round trips
//!   at a fixed offered load.
//!
//! It prints the echoes received per second, the round trip p50/p90/p99/p99.9/max, and the
//! mismatches (an echo that is not the oldest message in flight, a Reply whose id is not in
//! flight, a body that is not the one sent). In rate mode it prints the round trips twice:
//! from when each message went out, and from when it was due, and how late each send was
//! against its due time, so that a generator that falls behind its schedule (its own CPU, or
//! its 1 ms timer) shows that lag instead of hiding it. One thread, one mio loop;
//! it exits with status 1 on any mismatch or refused call (an Error frame), on a failed
//! connection, or when a connection that sent messages got no echo at all (a stall), and with
//! status 2 on arguments out of range.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use benches::echo_wire::{Answer, EchoWire, InFlight};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The most messages a second, over all connections, that rate mode schedules: beyond it
/// one machine's loopback cannot go anyway, and the schedule's arithmetic stays exact.
const MAX_TOTAL_RATE: f64 = 10_000_000.0;

const USAGE: &str = "usage: ws_echo_load [--protocol] ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES [RATE]]";

struct Conn {
    ws: WebSocket<TcpStream>,
    /// The messages in flight, oldest first.
    in_flight: VecDeque<InFlight>,
    next: u32,
    sent: u64,
    echoes: u64,
}

impl Conn {
    /// Queues the next message, due at `due` and sent `now`. A full socket keeps it queued in
    /// tungstenite, flushed on WRITABLE.
    fn send(&mut self, wire: EchoWire, body: &[u8], due: Instant, now: Instant) -> tungstenite::Result<()> {
        let message = wire.message(self.next, body);
        self.in_flight.push_back(InFlight { number: self.next, due, sent: now });
        self.next = self.next.wrapping_add(1);
        self.sent += 1;
        would_block_ok(self.ws.write(Message::Binary(message.into())))
    }

    /// Writes what tungstenite buffered; a full socket keeps the rest for the next flush.
    fn flush(&mut self) -> tungstenite::Result<()> {
        would_block_ok(self.ws.flush())
    }
}

/// Opens one connection: connect and upgrade blocking (offering `wire`'s subprotocol), read
/// the Welcome if the server sends one, then hand the socket to mio as `token`.
fn connect(
    addr: SocketAddr,
    wire: EchoWire,
    poll: &Poll,
    token: Token,
) -> Result<Conn, Box<dyn std::error::Error>> {
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/").into_client_request()?;
    if let Some(subprotocol) = wire.subprotocol() {
        request.headers_mut().insert("Sec-WebSocket-Protocol", subprotocol.parse()?);
    }
    let (mut ws, _) = tungstenite::client(request, tcp)?;
    if wire.server_speaks_first() {
        // Read it here, blocking: tungstenite may hold it in its buffer after the handshake,
        // and `into_inner` below would drop that buffer. The server sends nothing else
        // unasked, so the buffer is empty after it.
        let welcome = ws.read()?;
        let mut none = VecDeque::new();
        if wire.take_answer(&welcome.into_data(), 0, &mut none) != Answer::NotAnAnswer {
            return Err("the server's first message is not a Welcome".into());
        }
    }
    let tcp = ws.into_inner();
    tcp.set_nonblocking(true)?;
    let mut tcp = TcpStream::from_std(tcp);
    // Writable too: a flush that met a full socket goes on when it drains.
    poll.registry().register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE)?;
    // tungstenite zeroes its whole read buffer (128 KiB by default) for every read: with
    // the default that memset was 57 % of this generator's CPU at 2000 x 20/s.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let ws = WebSocket::from_raw_socket(tcp, tungstenite::protocol::Role::Client, Some(config));
    Ok(Conn { ws, in_flight: VecDeque::new(), next: 0, sent: 0, echoes: 0 })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let wire = match args.iter().position(|a| a == "--protocol") {
        Some(at) => {
            args.remove(at);
            EchoWire::Protocol
        }
        None => EchoWire::Plain,
    };
    if args.len() < 4 || args.iter().any(|a| a.starts_with("--")) {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse()?;
    let (count, window, seconds): (usize, usize, f64) =
        (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let body_bytes: usize = args.get(4).map_or(Ok(32), |b| b.parse())?;
    let rate: f64 = args.get(5).map_or(Ok(0.0), |r| r.parse())?;
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
        conns.push(connect(addr, wire, &poll, Token(i))?);
    }
    let body = vec![0u8; body_bytes];
    let started = Instant::now();
    if rate <= 0.0 {
        for conn in &mut conns {
            for _ in 0..window {
                conn.send(wire, &body, started, started)?;
            }
            conn.flush()?;
        }
    }
    let end = started + run_for;
    // In rate mode, send number `n` goes to connection `n % count`.
    let schedule = benches::RateSchedule::new(started, end, total_rate);
    let mut sends_due: u64 = 0;
    let mut skipped: u64 = 0;
    // Microseconds, up to a minute: from the send, from the due time, and each send's lateness.
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rtt_due = rtt.clone();
    let mut send_lag = rtt.clone();
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);

    let (mut echoes, mut mismatches, mut refused) = (0u64, 0u64, 0u64);
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
                send_lag.saturating_record(micros(now - due));
                let conn = &mut conns[(sends_due % count as u64) as usize];
                sends_due += 1;
                if conn.in_flight.len() >= window {
                    skipped += 1;
                    continue;
                }
                conn.send(wire, &body, due, now)?;
                conn.flush()?;
            }
        }
        let timeout = next_send.min(now + Duration::from_millis(100)).saturating_duration_since(now);
        poll.poll(&mut events, Some(timeout))?;
        for event in &events {
            let conn = &mut conns[event.token().0];
            let now = Instant::now();
            loop {
                let message = match conn.ws.read() {
                    Ok(Message::Binary(message)) => message,
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                };
                match wire.take_answer(&message, body_bytes, &mut conn.in_flight) {
                    Answer::Matched(m) => {
                        echoes += 1;
                        conn.echoes += 1;
                        rtt.saturating_record(micros(now.saturating_duration_since(m.sent)));
                        rtt_due.saturating_record(micros(now.saturating_duration_since(m.due)));
                    }
                    Answer::Mismatch => mismatches += 1,
                    Answer::Refused { .. } => refused += 1,
                    Answer::NotAnAnswer => continue,
                }
                if rate <= 0.0 {
                    conn.send(wire, &body, now, now)?;
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
        "{count} connections, {}, {body_bytes}-byte {}: {echoes} echoes in {elapsed:.2} s = {:.0} echoes/s, {mismatches} mismatches, {refused} refused",
        if rate > 0.0 {
            format!("{rate} messages/s each (at most {window} in flight, {skipped} skipped)")
        } else {
            format!("{window} in flight each")
        },
        match wire {
            EchoWire::Plain => "messages",
            EchoWire::Protocol => "echo route bodies",
        },
        echoes as f64 / elapsed
    );
    println!("round trip ms: {}", summary(&rtt));
    if rate > 0.0 {
        println!("round trip from due ms: {}", summary(&rtt_due));
        println!("send behind its due time ms: {}", summary(&send_lag));
    }
    let stalled = conns.iter().filter(|conn| conn.sent > 0 && conn.echoes == 0).count();
    if stalled > 0 {
        println!("{stalled} connections got no echo");
    }
    if mismatches > 0 || refused > 0 || stalled > 0 {
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
