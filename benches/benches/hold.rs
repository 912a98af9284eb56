//! Backpressure by class (issue 18 item 3): what a frame costs on the fast path, where the
//! socket keeps up and the frame goes straight into the connection's [`OutboundQueue`], against
//! the held path, where it waits in the connection's [`Hold`] and is released into the queue
//! as the socket takes bytes (`server/src/net/hold.rs`).
//!
//! One batch is 8 pushes of 200 bytes to one connection, then one write to a writer that
//! discards the bytes (as `write_path`'s `mock_*`):
//! - `fast_path`: the reactor's one test (nothing held, fewer than `hold_after_bytes` queued),
//!   then `queue_data`, as every connection that keeps up pays;
//! - `held_states`: each a state on one latest-wins topic: copied into a shared `Bytes` (the
//!   reactor's one copy per command), held, the 7 older ones replaced; then the one left
//!   released and written;
//! - `held_events`: each an event: copied, held (the bound of 256 is not reached), then all 8
//!   released in order and written.
//!
//! The set-up asserts what each variant writes: the 8 frames, or the one latest state.

use std::hint::black_box;
use std::io::{self, Write};
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use ticksock_protocol::ServerFrame;
use ticksock_server::__internals::{Class, DataOpcode, HeldOut, Hold, OutboundQueue, Released, StateTopic};

const FRAMES: usize = 8;
/// The server's defaults: `max_outbound_bytes`, `write_coalesce_bytes`, `hold_after_bytes`,
/// `max_held_events`.
const MAX_QUEUED: usize = 1 << 20;
const COALESCE: usize = 64 << 10;
const HOLD_AFTER: usize = 16 << 10;
const MAX_HELD_EVENTS: usize = 256;

/// Discards what it is given, counting the bytes.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn fast_path(queue: &mut OutboundQueue, hold: &Option<Hold>, out: &mut Sink, frames: &[Vec<u8>]) {
    for frame in frames {
        if hold.is_none() && queue.queued() < HOLD_AFTER {
            queue.queue_data(DataOpcode::Binary, frame).expect("room");
        }
    }
    queue.write_to(out).expect("the sink takes everything");
}

fn held_path(queue: &mut OutboundQueue, hold: &mut Hold, out: &mut Sink, frames: &[Vec<u8>], class: Class) {
    for frame in frames {
        let held =
            HeldOut { opcode: DataOpcode::Binary, bytes: Bytes::copy_from_slice(frame), answers: None };
        hold.push(class, held);
    }
    while queue.queued() < HOLD_AFTER {
        match hold.pop() {
            Some(Released::Frame(f)) => queue.queue_data(f.opcode, &f.bytes).expect("room"),
            Some(Released::DroppedNotice(_)) => unreachable!("the bound is not reached"),
            None => break,
        }
    }
    queue.write_to(out).expect("the sink takes everything");
}

fn hold(c: &mut Criterion) {
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|_| ServerFrame::Push { topic: "state".into(), body: &[0xA5; 190] }.to_vec())
        .collect();
    let framed = frames[0].len() as u64 + 4;
    let state = Class::State(StateTopic(1));

    let mut g = c.benchmark_group("hold");
    g.throughput(Throughput::Elements(FRAMES as u64));

    let mut queue = OutboundQueue::new(MAX_QUEUED, COALESCE);
    let mut out = Sink(0);
    fast_path(&mut queue, &None, &mut out, &frames);
    assert_eq!(out.0, FRAMES as u64 * framed, "fast_path writes all 8");
    g.bench_function("fast_path_8_pushes", |b| {
        b.iter(|| fast_path(black_box(&mut queue), black_box(&None), black_box(&mut out), &frames))
    });

    for (name, class, written) in [("held_states", state, 1), ("held_events", Class::Event, FRAMES as u64)] {
        let mut queue = OutboundQueue::new(MAX_QUEUED, COALESCE);
        let mut held = Hold::new(MAX_HELD_EVENTS, Instant::now());
        let mut out = Sink(0);
        held_path(&mut queue, &mut held, &mut out, &frames, class);
        assert_eq!(out.0, written * framed, "{name} writes {written} frame(s)");
        assert!(held.is_empty());
        g.bench_function(format!("{name}_8_pushes"), |b| {
            b.iter(|| {
                held_path(black_box(&mut queue), black_box(&mut held), black_box(&mut out), &frames, class)
            })
        });
    }
    g.finish();
}

fn main() {
    benches::run(&[hold]);
}
