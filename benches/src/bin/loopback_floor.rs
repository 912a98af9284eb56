//! What loopback TCP itself costs on this machine, with no WebSocket, no server and no
//! generator logic: the floor under any echo server and any load generator here.
//!
//! ```text
//! loopback_floor CONNECTIONS RATE SECONDS [BYTES]
//! ```
//!
//! Opens CONNECTIONS loopback TCP connections (`TCP_NODELAY` on both ends). A "generator"
//! thread writes BYTES (default 32) raw bytes on each connection RATE times a second (spread
//! evenly, as `ws_echo_load` does) and reads the answers; an "echo" thread writes back what it
//! reads. Both are single mio loops that do what an efficient server does: on a readable
//! event, read until a read comes back short (the socket is then drained, and edge-triggered
//! readiness says when there is more), write back each chunk at once, and keep what a full
//! socket does not take for its `WRITABLE` event. At rates where each connection has one
//! message in flight, that is one `recv` and one `send` per message on each side.
//!
//! Prints each thread's CPU time per message (user and kernel, from `/proc/thread-self/stat`):
//! the least CPU that a generator and a server need per call on this machine, which
//! multiplied by the call rate says whether the two fit on its cores at all. Exits with
//! status 2 on arguments out of range.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use client_sim::report::thread_cpu_secs;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// The most messages a second, over all connections, that the schedule allows.
const MAX_TOTAL_RATE: f64 = 10_000_000.0;

/// One end of a connection, with what its socket has not taken yet.
struct Peer {
    stream: TcpStream,
    unsent: Vec<u8>,
    bytes_in: u64,
    closed: bool,
}

impl Peer {
    fn new(stream: TcpStream) -> Self {
        Self { stream, unsent: Vec::new(), bytes_in: 0, closed: false }
    }

    /// Writes `data` after whatever is still queued; a full socket keeps the rest.
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.unsent.is_empty() {
            let n = write_some(&mut self.stream, data)?;
            self.unsent.extend_from_slice(&data[n..]);
        } else {
            self.unsent.extend_from_slice(data);
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is queued, as far as the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        let n = write_some(&mut self.stream, &self.unsent)?;
        self.unsent.drain(..n);
        Ok(())
    }

    /// Reads until a short read, handing each chunk to `chunk`.
    fn read(
        &mut self,
        buf: &mut [u8],
        mut chunk: impl FnMut(&mut Self, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.bytes_in += n as u64;
                    chunk(self, &buf[..n])?;
                    if n < buf.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes as much of `data` as the socket takes now; returns how much that was.
fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Registers every peer for reading and writing (edge-triggered: no busy loop).
fn register(poll: &Poll, peers: &mut [Peer]) -> io::Result<()> {
    for (i, peer) in peers.iter_mut().enumerate() {
        poll.registry().register(&mut peer.stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
    }
    Ok(())
}

/// Echoes everything back until every connection is closed; returns (bytes echoed, CPU s).
fn echo(mut peers: Vec<Peer>) -> io::Result<(u64, f64)> {
    let mut poll = Poll::new()?;
    register(&poll, &mut peers)?;
    let cpu0 = thread_cpu_secs();
    let mut open = peers.len();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    while open > 0 {
        poll.poll(&mut events, None)?;
        for event in &events {
            let peer = &mut peers[event.token().0];
            if peer.closed {
                continue;
            }
            let mut served = Ok(());
            if event.is_writable() && !peer.unsent.is_empty() {
                served = peer.flush();
            }
            if served.is_ok() && (event.is_readable() || event.is_read_closed()) {
                served = peer.read(&mut buf, |peer, chunk| peer.send(chunk));
            }
            // The generator closes with answers unread at its end, which resets the
            // connection: for this side, that is the connection's end like any other.
            if served.is_err() || peer.closed {
                peer.closed = true;
                open -= 1;
            }
        }
    }
    Ok((peers.iter().map(|p| p.bytes_in).sum(), thread_cpu_secs() - cpu0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: loopback_floor CONNECTIONS RATE SECONDS [BYTES]");
        std::process::exit(2);
    }
    let (count, rate, seconds): (usize, f64, f64) = (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let bytes: usize = args.get(4).map_or(Ok(32), |b| b.parse())?;
    let total_rate = rate * count as f64;
    let run_for = Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero());
    if count == 0 || bytes == 0 || run_for.is_none() || !(total_rate > 0.0 && total_rate <= MAX_TOTAL_RATE) {
        eprintln!(
            "CONNECTIONS, RATE, SECONDS and BYTES must be above 0, RATE x CONNECTIONS at most {MAX_TOTAL_RATE}"
        );
        std::process::exit(2);
    }
    let run_for = run_for.unwrap_or_default();

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
        ours.push(Peer::new(TcpStream::from_std(client)));
        theirs.push(Peer::new(TcpStream::from_std(server)));
    }
    drop(listener);
    let echo_thread = std::thread::spawn(move || echo(theirs));

    let mut poll = Poll::new()?;
    register(&poll, &mut ours)?;
    let message = vec![7u8; bytes];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    let cpu0 = thread_cpu_secs();
    let started = Instant::now();
    let end = started + run_for;
    // Message number `n` goes to connection `n % count`.
    let schedule = benches::RateSchedule::new(started, end, total_rate);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let next = loop {
            let due = schedule.due(sent);
            if due > now || due >= end {
                break due.min(end);
            }
            ours[(sent % count as u64) as usize].send(&message)?;
            sent += 1;
        };
        poll.poll(&mut events, Some(next.saturating_duration_since(now)))?;
        for event in &events {
            let peer = &mut ours[event.token().0];
            if event.is_writable() && !peer.unsent.is_empty() {
                peer.flush()?;
            }
            if event.is_readable() {
                peer.read(&mut buf, |_, _| Ok(()))?;
            }
        }
    }
    let generator_cpu = thread_cpu_secs() - cpu0;
    let elapsed = started.elapsed().as_secs_f64();
    let answered = ours.iter().map(|p| p.bytes_in).sum::<u64>() / bytes as u64;
    drop(ours);
    let (echoed_bytes, echo_cpu) = echo_thread.join().map_err(|_| "echo thread panicked")??;
    let echoed = echoed_bytes / bytes as u64;
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
