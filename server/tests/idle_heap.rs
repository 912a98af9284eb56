//! What an idle connection keeps on the server's heap (issue 18): after its upgrade and one
//! answered call, once quiet for a sweep period, at most [`MAX_HEAP_PER_IDLE_CONNECTION`]
//! bytes. Counted with a counting allocator over the whole process, server threads included,
//! in echo mode and through the protocol (version 1, a route that echoes its body, as the
//! arena's `echo`); one test in this binary, so no other test's allocations are counted with
//! it.
//!
//! Not counted: what grows once for many connections (the reactor's slab of connection slots
//! and its pool of spare tungstenite contexts, the logic thread's maps, the batches the threads
//! reuse) grows here before the count starts; the slot's own size is the unit test
//! `an_open_connection_slot_costs_at_most_272_bytes`. The kernel's socket buffers are not the
//! process's heap (nor its RSS).

mod common;

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use ticksock_protocol::{ClientFrame, SUBPROTOCOL};
use ticksock_server::{Config, Echo, Game, Router, RunningServer, Server};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// An idle connection's heap: nothing of its own, and this much for what the server allocates
/// once in a while, spread over the connections. Before issue 18 it was 2 122 bytes:
/// tungstenite's 2 KiB read buffer, the 40 bytes that share it, and the outbound buffer (the
/// reply's frame).
const MAX_HEAP_PER_IDLE_CONNECTION: isize = 16;
/// The reactor's sweep runs every quarter of the shortest of its timeouts (5 ms at least), and
/// a connection is idle once quiet for that long. The Ack interval, which only version 2
/// sessions use, makes it 5 ms here, so the test waits milliseconds, not seconds.
const ACK_INTERVAL: Duration = Duration::from_millis(20);
/// Connections measured per case: enough that what the server allocates once in a while (a
/// batch's buffer, a list that grows) is a few bytes a connection.
const CONNECTIONS: usize = 192;
/// The body of each connection's one call.
const BODY: [u8; 32] = [7; 32];

/// A game with the arena's `echo` route: the reply is the request's body.
#[derive(Default)]
struct EchoRoute;

impl Game for EchoRoute {
    fn routes(router: &mut Router<Self>) {
        router.raw("echo", |_, _, _, body, reply| {
            reply.extend_from_slice(body);
            Ok(())
        });
    }
}

/// How a client speaks to the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `server --echo`: plain WebSocket, every message echoed.
    Echo,
    /// `ticksock.v1`: a welcome, then a request to `echo` and its reply.
    Protocol,
}

/// Bytes allocated and not freed, process-wide (stats_alloc counts what a reallocation adds
/// or frees in these two as well).
fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// A WebSocket client, upgraded (offering the protocol in protocol mode).
fn connect(addr: SocketAddr, mode: Mode) -> TcpStream {
    let subprotocol = match mode {
        Mode::Echo => None,
        Mode::Protocol => Some(SUBPROTOCOL),
    };
    common::raw_upgrade_offering(addr, subprotocol)
}

/// Sends one masked binary message (under 126 bytes).
fn send(stream: &mut TcpStream, payload: &[u8]) {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82, 0x80 | u8::try_from(payload.len()).expect("a short message")];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("send");
}

/// Reads one binary message (under 126 bytes) and returns its payload.
fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).expect("header");
    assert_eq!(header[0], 0x82, "a final binary frame");
    assert!(header[1] < 126, "a short, unmasked message");
    let mut payload = vec![0u8; usize::from(header[1])];
    stream.read_exact(&mut payload).expect("payload");
    payload
}

/// A connection that made its one call, answered: then idle.
fn called(addr: SocketAddr, mode: Mode) -> TcpStream {
    let mut stream = connect(addr, mode);
    match mode {
        Mode::Echo => {
            send(&mut stream, &BODY);
            assert_eq!(receive(&mut stream), BODY, "the echo is the message");
        }
        Mode::Protocol => {
            let _welcome = receive(&mut stream);
            send(&mut stream, &ClientFrame::Request { id: 1, route: "echo", body: &BODY }.to_vec());
            let reply = receive(&mut stream);
            assert!(reply.ends_with(&BODY), "the reply carries the body");
        }
    }
    stream
}

/// Calls in bursts large enough that every batch the threads hand each other for reuse
/// grows to the size it keeps (`bridge::SPARE_BATCHES` a side, each as large as the most
/// the logic thread answers at once): otherwise one of them may grow while the measured
/// connections call, and a few KiB that the server keeps once would count against them.
fn fill_the_spare_batches(addr: SocketAddr, mode: Mode) {
    const BURST: u32 = 2048;
    let mut stream = connect(addr, mode);
    if mode == Mode::Protocol {
        let _welcome = receive(&mut stream);
    }
    for _ in 0..8 {
        for id in 0..BURST {
            match mode {
                Mode::Echo => send(&mut stream, &BODY),
                Mode::Protocol => {
                    send(&mut stream, &ClientFrame::Request { id, route: "echo", body: &BODY }.to_vec())
                }
            }
        }
        for _ in 0..BURST {
            assert!(receive(&mut stream).ends_with(&BODY), "every call answered");
        }
    }
}

fn start(mode: Mode) -> RunningServer {
    let listen = "127.0.0.1:0".parse().expect("addr");
    let started = match mode {
        Mode::Echo => Server::start(Config { listen, ack_interval: ACK_INTERVAL, ..Config::echo() }, Echo),
        // The bursts that fill the spare batches are far over the default rate limit.
        Mode::Protocol => Server::start(
            Config {
                listen,
                ack_interval: ACK_INTERVAL,
                rate_messages_per_sec: u32::MAX,
                rate_burst_messages: u32::MAX,
                rate_bytes_per_sec: u32::MAX,
                rate_burst_bytes: u32::MAX,
                ..Config::default()
            },
            EchoRoute,
        ),
    };
    started.expect("server starts")
}

/// Waits (at most 5 s) until the heap stops shrinking: the connections just made have gone
/// idle and given back what they held.
fn settle() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = live_bytes();
        std::thread::sleep(Duration::from_millis(25));
        if live_bytes() >= before || Instant::now() > deadline {
            return;
        }
    }
}

/// The heap per idle connection in `mode`: once the connections are answered, and once they
/// are idle (or after 5 s).
fn heap_per_idle_connection(mode: Mode) -> (isize, isize) {
    let server = start(mode);
    let addr = server.local_addr();
    // Warm up what grows once for the whole server: the slab and the logic thread's maps (to
    // more connections than are measured, so the measured ones pay for no growth), the
    // reactor's lists, the batches. At most 800 descriptors at once (both ends), under the
    // usual limit of 1024.
    let warm: Vec<TcpStream> = (0..2 * CONNECTIONS + 16).map(|_| called(addr, mode)).collect();
    drop(warm);
    fill_the_spare_batches(addr, mode);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metrics().reactor().open > 0 {
        assert!(Instant::now() < deadline, "the warm-up connections were not dropped");
        std::thread::sleep(Duration::from_millis(5));
    }
    // As many connections again, left idle, so that the pool of spare contexts is as full as
    // idle connections leave it (the warm-up's took theirs with them when they went).
    let first: Vec<TcpStream> = (0..CONNECTIONS).map(|_| called(addr, mode)).collect();
    settle();

    let mut held = Vec::with_capacity(CONNECTIONS);
    let before = live_bytes();
    held.extend((0..CONNECTIONS).map(|_| called(addr, mode)));
    let per_connection = || (live_bytes() - before) / CONNECTIONS as isize;
    let answered = per_connection();
    // The sweep runs on the reactor's clock, which is real time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while per_connection() > MAX_HEAP_PER_IDLE_CONNECTION && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let idle = per_connection();
    drop((first, held));
    server.shutdown().expect("clean shutdown");
    (answered, idle)
}

#[test]
fn an_idle_connection_keeps_nothing_on_the_heap() {
    for mode in [Mode::Echo, Mode::Protocol] {
        let (answered, idle) = heap_per_idle_connection(mode);
        println!("{mode:?}: heap per connection {answered} bytes once answered, {idle} once idle");
        assert!(
            idle <= MAX_HEAP_PER_IDLE_CONNECTION,
            "{mode:?}: an idle connection keeps {idle} bytes (at most {MAX_HEAP_PER_IDLE_CONNECTION})"
        );
    }
}
