//! What an idle connection keeps on the server's heap after one large message (issue 19,
//! defect 6): within 4 KiB of what one keeps after a 100-byte message. Counted with a counting
//! allocator over the whole process, server threads included; one test in this binary, so no
//! other test's allocations are counted with it.

mod common;

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use ticksock_server::{Config, Echo, Server};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Connections per case: enough that what the server allocates once in a while (a recycled
/// batch whose buffer grows to carry a 60 KB echo: 1.9 KB a connection over 32) stays well
/// inside the margin.
const CONNECTIONS: usize = 64;
/// The large message: under the protocol's default 64 KiB limit, as in the issue.
const LARGE: usize = 60_000;
const SMALL: usize = 100;

/// Bytes allocated and not freed, process-wide (stats_alloc counts what a reallocation adds
/// or frees in these two as well).
fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// A plain WebSocket client (no subprotocol, so the echo server takes it), upgraded.
fn connect(addr: SocketAddr) -> TcpStream {
    common::raw_upgrade_offering(addr, None)
}

/// Sends one masked binary message of `len` bytes and reads its echo back.
fn echo(stream: &mut TcpStream, len: usize) {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82];
    match len {
        0..=125 => frame.push(0x80 | len as u8),
        126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("send");
    let header_len = frame.len() - 4 - len;
    let mut echoed = vec![0u8; header_len + len];
    stream.read_exact(&mut echoed).expect("echo");
    assert_eq!(echoed[0], 0x82);
    assert_eq!(&echoed[header_len..], &payload[..], "the echo is the message");
}

/// Opens `CONNECTIONS` connections that each echo one message of `len` bytes and stay open,
/// and returns them with the heap the server keeps for each, in bytes.
fn idle_after(addr: SocketAddr, len: usize) -> (Vec<TcpStream>, isize) {
    let mut held = Vec::with_capacity(CONNECTIONS);
    let before = live_bytes();
    for _ in 0..CONNECTIONS {
        let mut stream = connect(addr);
        echo(&mut stream, len);
        held.push(stream);
    }
    // One more round trip on the first: by its answer, the server has long finished with the
    // batches that carried the others' echoes.
    echo(&mut held[0], SMALL);
    (held, (live_bytes() - before) / CONNECTIONS as isize)
}

#[test]
fn an_idle_connection_keeps_no_larger_read_buffer_after_a_large_message() {
    let config = Config { listen: "127.0.0.1:0".parse().expect("addr"), ..Config::echo() };
    let server = Server::start(config, Echo).expect("server starts");
    let addr = server.local_addr();

    // Warm up what grows once for the whole server: the slab (to twice the connections
    // measured, so neither case pays for its growth), the reactor's lists, the batches.
    let warm: Vec<TcpStream> = (0..2 * CONNECTIONS + 1)
        .map(|_| {
            let mut stream = connect(addr);
            echo(&mut stream, LARGE);
            stream
        })
        .collect();
    drop(warm);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metrics().reactor().open > 0 {
        assert!(Instant::now() < deadline, "the warm-up connections were not dropped");
        std::thread::sleep(Duration::from_millis(5));
    }

    let (small_held, small) = idle_after(addr, SMALL);
    let (large_held, large) = idle_after(addr, LARGE);
    println!("heap per idle connection: {small} bytes after {SMALL} B, {large} bytes after {LARGE} B");
    assert!(
        large <= small + 4096,
        "an idle connection keeps {large} bytes after a {LARGE}-byte message, {small} after {SMALL} bytes"
    );
    drop((small_held, large_held));
    server.shutdown().expect("clean shutdown");
}
