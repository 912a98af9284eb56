//! A plain WebSocket echo load generator, for `server --echo`: what a generic generator (the
//! issue's comparison table) does, with no ticksock protocol (no subprotocol, no callback
//! ids, no welcome frame).
//!
//! ```text
//! ws_echo_load ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES]
//! ```
//!
//! Opens CONNECTIONS connections to ADDR (`127.0.0.1:PORT`), keeps WINDOW binary messages of
//! BODY_BYTES (default 32) in flight on each, and after SECONDS prints the echoes received per
//! second and the mismatches (an echo that is not the oldest message in flight). One thread,
//! one mio loop; it exits with status 1 on any mismatch, on a failed connection, or when a
//! connection got no echo at all (a stall).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::{Message, WebSocket};

struct Conn {
    ws: WebSocket<TcpStream>,
    /// The first byte of each message in flight, oldest first: echoes come back in order.
    in_flight: VecDeque<u8>,
    next: u8,
    echoes: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: ws_echo_load ADDR CONNECTIONS WINDOW SECONDS [BODY_BYTES]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse()?;
    let (count, window, seconds): (usize, usize, f64) =
        (args[2].parse()?, args[3].parse()?, args[4].parse()?);
    let body_bytes: usize = args.get(5).map_or(Ok(32), |b| b.parse())?;
    if body_bytes < 1 {
        // Each message's first byte numbers it.
        eprintln!("BODY_BYTES must be at least 1");
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
        let ws = WebSocket::from_raw_socket(tcp, tungstenite::protocol::Role::Client, None);
        conns.push(Conn { ws, in_flight: VecDeque::with_capacity(window), next: 0, echoes: 0 });
    }
    let body = vec![0u8; body_bytes];
    let send = |conn: &mut Conn| -> tungstenite::Result<()> {
        let mut message = body.clone();
        message[0] = conn.next;
        conn.in_flight.push_back(conn.next);
        conn.next = conn.next.wrapping_add(1);
        // A full socket keeps the message queued in tungstenite, flushed on WRITABLE.
        would_block_ok(conn.ws.write(Message::Binary(message.into())))
    };
    for conn in &mut conns {
        for _ in 0..window {
            send(conn)?;
        }
        flush(&mut conn.ws)?;
    }

    let (mut echoes, mut mismatches) = (0u64, 0u64);
    let mut events = Events::with_capacity(1024);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in &events {
            let conn = &mut conns[event.token().0];
            loop {
                match conn.ws.read() {
                    Ok(Message::Binary(echo)) => {
                        echoes += 1;
                        conn.echoes += 1;
                        if conn.in_flight.pop_front() != echo.first().copied() || echo.len() != body_bytes {
                            mismatches += 1;
                        }
                        send(conn)?;
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            flush(&mut conn.ws)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{count} connections x {window} in flight, {body_bytes}-byte messages: {echoes} echoes in {elapsed:.2} s = {:.0} echoes/s, {mismatches} mismatches",
        echoes as f64 / elapsed
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

/// Writes what tungstenite buffered; a full socket keeps the rest for the next flush.
fn flush(ws: &mut WebSocket<TcpStream>) -> tungstenite::Result<()> {
    would_block_ok(ws.flush())
}

/// `WouldBlock` from a write or flush means the rest stays queued, not an error.
fn would_block_ok(result: tungstenite::Result<()>) -> tungstenite::Result<()> {
    match result {
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}
