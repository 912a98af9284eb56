//! The reactor's write path: one connection's [`OutboundQueue`] (the server's own, as
//! `server/src/net/socket.rs` uses it), fed one batch of 8 reply frames (32-byte bodies),
//! written to a writer that counts `write` calls.
//!
//! - `coalesced`: 8 × `queue_data`, then one `write_to`, as the reactor's `flush_dirty` does at
//!   the end of its turn: **1 write call per batch**.
//! - `not_coalesced`: `write_to` after every `queue_data`, as a server that writes each frame
//!   as it comes would: **8 write calls per batch**.
//!
//! The counts are asserted in the set-up (both by the writer and by the queue's own
//! `take_writes`, which feeds `ticksock_write_syscalls_total`) and printed to the bench output.
//! The `mock_*` writer discards the bytes, so a write call is nearly free and the figures show
//! the framing and copying; the `devnull_*` variants pass each write call on to `/dev/null`, a
//! real but minimal syscall, as a lower bound of what coalescing saves on a TCP socket (where
//! a `send` costs more).
//!
//! Why: the syscall target is at most one write syscall per connection per batch.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Write};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use ticksock_protocol::ServerFrame;
use ticksock_server::__internals::{DataOpcode, OutboundQueue};

/// Frames per batch: one connection's replies to a window of 8 calls in flight.
const FRAMES: usize = 8;

/// The server's defaults: `Config::max_outbound_bytes` and `Config::write_coalesce_bytes`.
const MAX_QUEUED: usize = 1 << 20;
const COALESCE: usize = 64 << 10;

/// A writer that counts write calls. The bytes are discarded, or passed on to `/dev/null`
/// when it holds one.
struct CountingWriter {
    writes: u64,
    bytes: u64,
    devnull: Option<File>,
}

impl CountingWriter {
    fn new(devnull: bool) -> Self {
        let devnull = devnull.then(|| File::create("/dev/null").expect("/dev/null opens"));
        Self { writes: 0, bytes: 0, devnull }
    }
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        let n = match &mut self.devnull {
            Some(file) => file.write(buf)?,
            None => buf.len(),
        };
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One batch: every frame queued, then written once (coalesced) or after each (not).
fn write_batch(queue: &mut OutboundQueue, out: &mut CountingWriter, frames: &[Bytes], write_each: bool) {
    for frame in frames {
        queue.queue_data(DataOpcode::Binary, frame).expect("the queue has room");
        if write_each {
            queue.write_to(out).expect("the writer takes everything");
        }
    }
    if !write_each {
        queue.write_to(out).expect("the writer takes everything");
    }
}

fn write_path(c: &mut Criterion) {
    let frames: Vec<Bytes> = (0..FRAMES as u32)
        .map(|id| Bytes::from(ServerFrame::Reply { id, body: &[0xA5; 32] }.to_vec()))
        .collect();

    // name, write after every frame, expected write calls per batch.
    let variants = [("coalesced", false, 1), ("not_coalesced", true, FRAMES as u64)];

    let mut g = c.benchmark_group("write_path");
    g.throughput(Throughput::Elements(FRAMES as u64));
    for devnull in [false, true] {
        for (name, write_each, expected) in variants {
            let mut queue = OutboundQueue::new(MAX_QUEUED, COALESCE);
            let mut out = CountingWriter::new(devnull);
            write_batch(&mut queue, &mut out, &frames, write_each);
            let (writes, bytes) = (out.writes, out.bytes);
            assert_eq!(writes, expected, "{name}: write calls per batch of {FRAMES} frames");
            assert_eq!(u64::from(queue.take_writes()), expected, "{name}: the queue's own count");
            assert!(!queue.wants_write(), "{name}: the batch stays under the coalescing threshold");
            assert_eq!(queue.queued(), 0, "{name}: everything is written");
            let name = if devnull { format!("devnull_{name}") } else { format!("mock_{name}") };
            println!(
                "write_path/{name}: {writes} write call(s) per batch of {FRAMES} frames ({bytes} bytes)"
            );
            g.bench_function(format!("{name}_8_replies"), |b| {
                b.iter(|| write_batch(black_box(&mut queue), black_box(&mut out), &frames, write_each))
            });
            // Every batch has the same bytes, so batches run = bytes written / bytes per batch.
            let batches = out.bytes / bytes;
            println!(
                "write_path/{name}: {:.2} write calls per batch over {batches} batches",
                out.writes as f64 / batches as f64
            );
        }
    }
    g.finish();
}

fn main() {
    benches::run(&[write_path]);
}
