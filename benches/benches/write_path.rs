//! The reactor's write path over mock I/O: a `tungstenite::WebSocket` (server role) over an
//! in-memory stream that counts `write` calls and discards the bytes, fed one batch of 8 reply
//! frames (32-byte bodies) for one connection.
//!
//! - `coalesced`: `write_buffer_size(64 KiB)` (the server's `write_coalesce_bytes` default),
//!   8 × `write`, then one `flush()`, as the reactor's `flush_dirty` does: **1 write call per
//!   batch**.
//! - `not_coalesced`: `write_buffer_size(0)` and a `flush()` after every frame, as a naive
//!   server does: **8 write calls per batch**.
//!
//! The counts are asserted in the set-up and printed to the bench output. The in-memory stream
//! makes a write call nearly free, so the mock figures show only tungstenite's framing cost;
//! the `devnull_*` variants pass each write call on to `/dev/null`, a real but minimal syscall,
//! as a lower bound of what coalescing saves on a TCP socket (where a `send` costs more).
//!
//! Why: the syscall target is at most one write syscall per connection per batch.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Read, Write};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use protocol::ServerFrame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Frames per batch: one connection's replies to a window of 8 calls in flight.
const FRAMES: usize = 8;

/// A non-blocking stream that counts write calls. Reads always say `WouldBlock`; writes are
/// discarded, or passed on to `/dev/null` when it holds one.
struct CountingStream {
    writes: u64,
    bytes: u64,
    devnull: Option<File>,
}

impl CountingStream {
    fn new(devnull: bool) -> Self {
        let devnull = devnull.then(|| File::create("/dev/null").expect("/dev/null opens"));
        Self { writes: 0, bytes: 0, devnull }
    }
}

impl Read for CountingStream {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.bytes += buf.len() as u64;
        match &mut self.devnull {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn socket(write_buffer_size: usize, devnull: bool) -> WebSocket<CountingStream> {
    let config =
        WebSocketConfig::default().write_buffer_size(write_buffer_size).max_write_buffer_size(1 << 20);
    WebSocket::from_raw_socket(CountingStream::new(devnull), Role::Server, Some(config))
}

/// One batch: every frame written, then flushed once (coalesced) or after each (not).
fn write_batch(ws: &mut WebSocket<CountingStream>, frames: &[Message], flush_each: bool) {
    for frame in frames {
        ws.write(frame.clone()).expect("the mock takes everything");
        if flush_each {
            ws.flush().expect("the mock takes everything");
        }
    }
    if !flush_each {
        ws.flush().expect("the mock takes everything");
    }
}

fn write_path(c: &mut Criterion) {
    let frames: Vec<Message> = (0..FRAMES as u32)
        .map(|id| Message::Binary(Bytes::from(ServerFrame::Reply { id, body: &[0xA5; 32] }.to_vec())))
        .collect();

    // name, write_buffer_size, flush after every frame, expected write calls per batch.
    let variants = [("coalesced", 64 << 10, false, 1), ("not_coalesced", 0, true, FRAMES as u64)];

    let mut g = c.benchmark_group("write_path");
    g.throughput(Throughput::Elements(FRAMES as u64));
    for devnull in [false, true] {
        for (name, buffer, flush_each, expected) in variants {
            let mut ws = socket(buffer, devnull);
            write_batch(&mut ws, &frames, flush_each);
            let (writes, bytes) = (ws.get_ref().writes, ws.get_ref().bytes);
            assert_eq!(writes, expected, "{name}: write calls per batch of {FRAMES} frames");
            let name = if devnull { format!("devnull_{name}") } else { format!("mock_{name}") };
            println!(
                "write_path/{name}: {writes} write call(s) per batch of {FRAMES} frames ({bytes} bytes)"
            );
            g.bench_function(format!("{name}_8_replies"), |b| {
                b.iter(|| write_batch(black_box(&mut ws), &frames, flush_each))
            });
            // Every batch has the same bytes, so batches run = bytes written / bytes per batch.
            let stream = ws.get_ref();
            let batches = stream.bytes / bytes;
            println!(
                "write_path/{name}: {:.2} write calls per batch over {batches} batches",
                stream.writes as f64 / batches as f64
            );
        }
    }
    g.finish();
}

fn main() {
    benches::run(&[write_path]);
}
