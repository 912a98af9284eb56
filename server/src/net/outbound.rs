//! A connection's outbound queue: every byte bound for one peer, in order, written with as few
//! `write` calls as the writer allows.
//!
//! The reactor frames data messages itself ([`OutboundQueue::queue_data`]): a server frame is a
//! 2, 4 or 10 byte header and the unmasked payload (RFC 6455, 5.2), so the payload is copied
//! once, straight from the shared broadcast buffer, with no per-frame `Message` formatting.
//! tungstenite writes only control frames (pongs, close), which land in the same queue behind
//! the data before them ([`OutboundQueue::queue_raw`]). At the end of its turn the reactor
//! writes the whole queue with [`OutboundQueue::write_to`]: one `write` syscall for everything
//! a batch queued, unless the socket takes less.
//!
//! The queue is capped (`Config::max_outbound_bytes`): a frame that would pass the cap is
//! refused whole with [`QueueFull`], and the reactor drops a peer that does not read. Once
//! empty, the queue releases any capacity over 1 KiB, so an idle connection holds no large
//! buffer after a burst.
//!
//! It knows nothing of sockets: [`OutboundQueue::write_to`] takes any [`Write`], which is how
//! the benches (`benches/benches/write_path.rs`) measure it over a mock writer and `/dev/null`.

use std::io::{self, Write};

use crate::bridge::DataOpcode;

/// An empty queue keeps at most this much capacity, so an idle connection holds no large
/// buffer after a burst, while the usual frames (a reply, a room's state) reuse it.
const IDLE_CAPACITY: usize = 1024;

/// Queuing would pass the queue's cap: the peer is not reading. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outbound buffer full")
    }
}

impl std::error::Error for QueueFull {}

/// The bytes waiting to go to one peer, capped, with a count of the `write` calls made.
#[derive(Debug)]
pub struct OutboundQueue {
    /// Bytes for the peer; `out[written..]` has not been written yet.
    out: Vec<u8>,
    written: usize,
    /// The most bytes the queue may hold.
    max_queued: usize,
    /// From this many bytes queued on, [`OutboundQueue::wants_write`] says to write now.
    coalesce: usize,
    /// `write` calls since the count was last taken.
    writes: u32,
}

impl OutboundQueue {
    /// An empty queue that holds at most `max_queued` bytes (`Config::max_outbound_bytes`)
    /// and asks to be written once `coalesce` bytes are queued (`Config::write_coalesce_bytes`).
    /// It allocates nothing until the first frame.
    pub fn new(max_queued: usize, coalesce: usize) -> Self {
        Self { out: Vec::new(), written: 0, max_queued, coalesce, writes: 0 }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.written
    }

    /// Whether enough is queued (`coalesce` bytes or more) to be worth a write before the end
    /// of the reactor's turn.
    pub fn wants_write(&self) -> bool {
        self.queued() >= self.coalesce
    }

    /// Queues one final, unmasked data frame of kind `opcode` carrying `payload`: its header
    /// (2, 4 or 10 bytes) and the payload, copied once. Refused whole, with nothing queued, if
    /// it would pass the cap.
    pub fn queue_data(&mut self, opcode: DataOpcode, payload: &[u8]) -> Result<(), QueueFull> {
        let header = data_frame_header(opcode, payload.len());
        if self.queued() + header.len() + payload.len() > self.max_queued {
            return Err(QueueFull);
        }
        self.out.extend_from_slice(&header);
        self.out.extend_from_slice(payload);
        Ok(())
    }

    /// Queues bytes that are already framed (tungstenite's control frames). Refused whole,
    /// with nothing queued, if they would pass the cap.
    pub fn queue_raw(&mut self, bytes: &[u8]) -> Result<(), QueueFull> {
        if self.queued() + bytes.len() > self.max_queued {
            return Err(QueueFull);
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes the queue to `w` until it is empty (`Ok`) or `w` fails: `WouldBlock` when a
    /// non-blocking socket is full, in which case what was not taken stays queued for the next
    /// call. `Interrupted` is retried; a write of 0 bytes is `WriteZero`. Every `write` call
    /// counts (see [`OutboundQueue::take_writes`]). Once empty, capacity over 1 KiB is released.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        while self.written < self.out.len() {
            self.writes += 1;
            match w.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.written = 0;
        if self.out.capacity() > IDLE_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(())
    }

    /// The `write` calls made by [`OutboundQueue::write_to`] since the last call (for the
    /// metric `ticksock_write_syscalls_total`), and resets the count.
    pub fn take_writes(&mut self) -> u32 {
        std::mem::take(&mut self.writes)
    }
}

/// The header of an unmasked, final data frame of `len` payload bytes: 2, 4 or 10 bytes.
fn data_frame_header(opcode: DataOpcode, len: usize) -> HeaderBytes {
    let mut header = HeaderBytes { bytes: [0; 10], len: 2 };
    header.bytes[0] = 0x80 | opcode as u8;
    match len {
        0..=125 => header.bytes[1] = len as u8,
        126..=0xFFFF => {
            header.bytes[1] = 126;
            header.bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            header.len = 4;
        }
        _ => {
            header.bytes[1] = 127;
            header.bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            header.len = 10;
        }
    }
    header
}

struct HeaderBytes {
    bytes: [u8; 10],
    len: usize,
}

impl std::ops::Deref for HeaderBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `limit` bytes per call, then says `WouldBlock` once `room` is used up.
    struct Pipe {
        got: Vec<u8>,
        limit: usize,
        room: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit).min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn data_frame_headers_match_tungstenite() {
        use tungstenite::protocol::frame::Frame;
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![0xabu8; len];
            for (opcode, data) in [(DataOpcode::Binary, Data::Binary), (DataOpcode::Text, Data::Text)] {
                let frame = Frame::message(payload.clone(), OpCode::Data(data), true);
                let mut expected = Vec::new();
                frame.format(&mut expected).expect("format");
                let mut ours = data_frame_header(opcode, len).to_vec();
                ours.extend_from_slice(&payload);
                assert_eq!(ours, expected, "len {len} opcode {opcode:?}");
            }
        }
    }

    #[test]
    fn a_frame_over_the_cap_is_refused_whole() {
        let mut queue = OutboundQueue::new(64, 64 << 10);
        queue.queue_data(DataOpcode::Binary, &[1; 30]).expect("fits");
        assert_eq!(queue.queued(), 32);
        assert_eq!(queue.queue_data(DataOpcode::Binary, &[2; 40]), Err(QueueFull));
        assert_eq!(queue.queued(), 32, "nothing of the refused frame is queued");
        assert_eq!(queue.queue_raw(&[0; 33]), Err(QueueFull));
        queue.queue_raw(&[0x8a, 0x00]).expect("a pong fits");
        let mut out = Vec::new();
        queue.write_to(&mut out).expect("written");
        assert_eq!(queue.queued(), 0);
        assert_eq!(out.len(), 34);
        assert_eq!(&out[..2], &[0x82, 30]);
        assert_eq!(&out[32..], &[0x8a, 0x00], "control frames go behind the data");
    }

    #[test]
    fn one_write_call_for_everything_queued() {
        let mut queue = OutboundQueue::new(1 << 20, 64 << 10);
        for i in 0..8u8 {
            queue.queue_data(DataOpcode::Binary, &[i; 34]).expect("fits");
        }
        let mut out = Vec::new();
        queue.write_to(&mut out).expect("written");
        assert_eq!(queue.take_writes(), 1);
        assert_eq!(queue.take_writes(), 0, "the count resets when taken");
        assert_eq!(out.len(), 8 * 36);
        queue.write_to(&mut out).expect("nothing to write");
        assert_eq!(queue.take_writes(), 0, "an empty queue makes no write call");
    }

    #[test]
    fn a_full_writer_keeps_the_rest_queued_in_order() {
        let mut queue = OutboundQueue::new(1 << 20, 64 << 10);
        let payload: Vec<u8> = (0..200u8).collect();
        queue.queue_data(DataOpcode::Binary, &payload).expect("fits");
        let mut pipe = Pipe { got: Vec::new(), limit: 64, room: 150 };
        let err = queue.write_to(&mut pipe).expect_err("the pipe fills up");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(queue.queued(), 204 - 150);
        assert_eq!(queue.take_writes(), 4, "three partial writes and the one that blocked");
        pipe.room = usize::MAX;
        queue.write_to(&mut pipe).expect("the rest goes");
        assert_eq!(queue.queued(), 0);
        assert_eq!(&pipe.got[..4], &[0x82, 126, 0, 200]);
        assert_eq!(&pipe.got[4..], &payload[..]);
    }

    #[test]
    fn an_emptied_queue_releases_capacity_over_the_idle_size() {
        let mut queue = OutboundQueue::new(1 << 20, 64 << 10);
        queue.queue_data(DataOpcode::Binary, &[0; 100]).expect("fits");
        queue.write_to(&mut io::sink()).expect("written");
        assert!(queue.out.capacity() > 0, "a small buffer is kept for the next frames");
        queue.queue_data(DataOpcode::Binary, &[0; 10_000]).expect("fits");
        queue.write_to(&mut io::sink()).expect("written");
        assert_eq!(queue.out.capacity(), 0, "a burst's buffer is released");
    }

    #[test]
    fn wants_write_from_the_coalescing_threshold_on() {
        let mut queue = OutboundQueue::new(1 << 20, 100);
        queue.queue_data(DataOpcode::Text, &[b'x'; 97]).expect("fits");
        assert!(!queue.wants_write());
        queue.queue_raw(&[0x89]).expect("fits");
        assert!(queue.wants_write());
    }
}
