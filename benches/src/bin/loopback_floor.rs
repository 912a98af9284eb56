//! What loopback TCP itself costs on this machine, with no WebSocket, no server and no
//! generator logic: the floor under any echo server and any load generator here.
//!
//! ```text
//! loopback_floor CONNECTIONS RATE SECONDS [BYTES]
//! ```
//!
//! Opens CONNECTIONS loopback TCP connections (`TCP_NODELAY` on both ends). A "generator"
//! thread writes BYTES (default 32) raw bytes on each connection RATE times a second (spread
//! evenly, as `ws_echo_load` does) and reads the answers; an "echo" thread reads each message
//! and writes it back, one `recv` and one `send` per message, as a server that does nothing
//! else would. Both are single mio loops. Prints each thread's CPU time per message (user and
//! kernel, from `/proc/thread-self/stat`): the least CPU that a generator and a server need
//! per call on this machine, which multiplied by the call rate says whether the two fit on
//! its cores at all.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// This thread's CPU time (user + kernel) in seconds, from procfs in clock ticks of
/// `USER_HZ` (100 on every architecture Linux supports for this interface).
fn thread_cpu_secs() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/thread-self/stat") else { return 0.0 };
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let Some(after) = text.rfind(')').map(|i| &text[i + 1..]) else { return 0.0 };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Reads what is there on `stream` into `buf` until `WouldBlock`; returns the bytes read, or
/// `None` when the peer closed.
fn drain(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut total = 0;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok(None),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(total)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Echoes every message back until every connection is closed; returns (messages, CPU s).
fn echo(mut conns: Vec<TcpStream>, bytes: usize) -> io::Result<(u64, f64)> {
    let mut poll = Poll::new()?;
    for (i, conn) in conns.iter_mut().enumerate() {
        poll.registry().register(conn, Token(i), Interest::READABLE)?;
    }
    let cpu0 = thread_cpu_secs();
    let (mut open, mut echoed) = (conns.len(), 0u64);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    while open > 0 {
        poll.poll(&mut events, None)?;
        for event in &events {
            let conn = &mut conns[event.token().0];
            match drain(conn, &mut buf)? {
                None => open -= 1,
                Some(0) => {}
                Some(n) => {
                    // Small writes to a socket with room: written whole or not at all here.
                    conn.write_all(&buf[..n])?;
                    echoed += (n / bytes) as u64;
                }
            }
        }
    }
    Ok((echoed, thread_cpu_secs() - cpu0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: loopback_floor CONNECTIONS RATE SECONDS [BYTES]");
        std::process::exit(2);
    }
    let (count, rate, seconds): (usize, f64, f64) = (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let bytes: usize = args.get(4).map_or(Ok(32), |b| b.parse())?;
    if count == 0 || rate <= 0.0 || bytes == 0 {
        eprintln!("CONNECTIONS, RATE and BYTES must be above 0");
        std::process::exit(2);
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = listener.local_addr()?;
    let (mut ours, mut theirs) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        let client = std::net::TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        for s in [&client, &server] {
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
        }
        ours.push(TcpStream::from_std(client));
        theirs.push(TcpStream::from_std(server));
    }
    drop(TcpListener::from_std(listener));
    let echo_thread = std::thread::spawn(move || echo(theirs, bytes));

    let mut poll = Poll::new()?;
    for (i, conn) in ours.iter_mut().enumerate() {
        poll.registry().register(conn, Token(i), Interest::READABLE)?;
    }
    let message = vec![7u8; bytes];
    let gap = Duration::from_secs_f64(1.0 / (rate * count as f64));
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    let (mut sent, mut answered) = (0u64, 0u64);
    let cpu0 = thread_cpu_secs();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let next = loop {
            let due = started + gap.saturating_mul(u32::try_from(sent).unwrap_or(u32::MAX));
            if due > now {
                break due.min(end);
            }
            ours[(sent % count as u64) as usize].write_all(&message)?;
            sent += 1;
        };
        poll.poll(&mut events, Some(next.saturating_duration_since(now)))?;
        for event in &events {
            if let Some(n) = drain(&mut ours[event.token().0], &mut buf)? {
                answered += (n / bytes) as u64;
            }
        }
    }
    let generator_cpu = thread_cpu_secs() - cpu0;
    let elapsed = started.elapsed().as_secs_f64();
    drop(ours);
    let (echoed, echo_cpu) = echo_thread.join().map_err(|_| "echo thread panicked")??;
    let per = |cpu: f64, n: u64| cpu * 1e6 / n.max(1) as f64;
    println!(
        "{count} connections x {rate}/s, {bytes}-byte messages: {sent} sent, {answered} answered, {echoed} echoed in {elapsed:.2} s ({:.0}/s)",
        sent as f64 / elapsed
    );
    println!(
        "generator: {:.2} us CPU per message ({:.0}% of a core); echo: {:.2} us CPU per message ({:.0}% of a core)",
        per(generator_cpu, sent),
        generator_cpu / elapsed * 100.0,
        per(echo_cpu, echoed),
        echo_cpu / elapsed * 100.0,
    );
    Ok(())
}
