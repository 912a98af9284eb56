//! The reactor's read path for the usual client message: one read holding 8 masked binary
//! frames of 32-byte bodies (a window of 8 calls in flight, as `ws_echo_load 1000 8` sends
//! them), turned into 8 message bodies.
//!
//! - `in_place`: what the reactor does for a connection that holds no tungstenite context
//!   (`server/src/net/read_in_place.rs`): the frames parsed and unmasked where they lie with
//!   the server's own `DataFrames`, the prefix split off the buffer and frozen once, and each
//!   body a slice of it.
//! - `tungstenite`: what it did before issue 18, and still does for anything else: a
//!   `WebSocketContext` (the server's configuration: 2 KiB read buffer) reading the same
//!   bytes message by message.
//!
//! Both copy the 8 frames into their buffer first (the `recv`'s share, without the syscall),
//! and both check every body in the set-up.

use std::hint::black_box;
use std::io::{self, Read, Write};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use ticksock_server::__internals::{DataFrames, Parsed};
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// Frames per read: one connection's window of 8 calls.
const FRAMES: usize = 8;
const BODY: usize = 32;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The bytes of one read: 8 masked binary frames.
fn one_read() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..FRAMES {
        bytes.extend([0x82, 0x80 | BODY as u8]);
        bytes.extend(KEY);
        bytes.extend((0..BODY).map(|b| (b + i) as u8 ^ KEY[b % 4]));
    }
    bytes
}

/// The reactor's way: parse in place, split and freeze once, a slice per body.
fn in_place(buf: &mut BytesMut, read: &[u8], frames: &DataFrames, bodies: &mut Vec<Bytes>) {
    buf.clear();
    buf.extend_from_slice(read);
    let mut taken = [(0usize, 0usize); FRAMES];
    let (mut at, mut n) = (0, 0);
    while let Parsed::Data { header, len, .. } = frames.parse(&mut buf[at..]) {
        taken[n] = (at + header, len);
        n += 1;
        at += header + len;
    }
    let frozen = buf.split_to(at).freeze();
    bodies.extend(taken[..n].iter().map(|&(start, len)| frozen.slice(start..start + len)));
}

/// A stream that hands over one read's bytes, then says `WouldBlock`.
struct OneRead<'a> {
    bytes: &'a [u8],
}

impl Read for OneRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.bytes.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

impl Write for OneRead<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tungstenite's way: a context reads message after message until the stream is empty.
fn through_tungstenite(context: &mut WebSocketContext, read: &[u8], bodies: &mut Vec<Bytes>) {
    let mut stream = OneRead { bytes: read };
    loop {
        match context.read(&mut stream) {
            Ok(Message::Binary(body)) => bodies.push(body),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

fn check(bodies: &[Bytes]) {
    assert_eq!(bodies.len(), FRAMES);
    for (i, body) in bodies.iter().enumerate() {
        assert!(body.iter().enumerate().all(|(b, &v)| v == (b + i) as u8), "body {i} unmasked");
    }
}

fn read_path(c: &mut Criterion) {
    let read = one_read();
    // The server's defaults: 2 KiB read buffer, which also bounds what it parses in place.
    let frames = DataFrames::new(2 << 10);
    let config = WebSocketConfig::default().read_buffer_size(2 << 10);
    let mut context = WebSocketContext::new(Role::Server, Some(config));
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut bodies = Vec::with_capacity(FRAMES);

    in_place(&mut buf, &read, &frames, &mut bodies);
    check(&bodies);
    bodies.clear();
    through_tungstenite(&mut context, &read, &mut bodies);
    check(&bodies);
    bodies.clear();

    let mut g = c.benchmark_group("read_path");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("in_place_8_frames_32B", |b| {
        b.iter(|| {
            in_place(&mut buf, black_box(&read), &frames, &mut bodies);
            // Dropped as the logic thread would drop them, so the buffer is reclaimed.
            bodies.clear();
        })
    });
    g.bench_function("tungstenite_8_frames_32B", |b| {
        b.iter(|| {
            through_tungstenite(&mut context, black_box(&read), &mut bodies);
            bodies.clear();
        })
    });
    g.finish();
}

fn main() {
    benches::run(&[read_path]);
}
