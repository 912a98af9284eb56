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
//! empty, the queue releases any capacity over 1 KiB, so a connection holds no large buffer
//! after a burst, while the usual frames reuse what is left; and the reactor's sweep releases
//! the rest from the empty queue of every connection quiet for a sweep period
//! ([`OutboundQueue::release_if_empty`]), so an idle connection holds no buffer at all.
//!
//! The cap counts unwritten bytes, and so must the memory: a partial write only moves an
//! offset (no copy per write), so the written bytes stay at the front of the buffer until a
//! frame does not fit behind them. Then the written prefix goes ([`OutboundQueue`]'s
//! `make_room`): the unwritten bytes move to the front, and if that leaves less than a
//! quarter as much room as it moved, the buffer grows to 1.5 times what they and the frame
//! need. The bytes moved are at most four times the bytes queued (plus one queue's worth), and
//! the buffer never holds more than 1.5 times the cap, however long a peer keeps it from
//! emptying. A frame that fits behind the others is appended with no more work than a `Vec`'s
//! own capacity check, as before.
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
    /// From this many bytes queued on, [`OutboundQueue::wants_write`] says to write now. A
    /// `u32` beside `writes`, so that a connection's slot keeps its size with a hold's pointer
    /// added (`Connection`'s size test); a coalescing size of 4 GiB would be no coalescing.
    coalesce: u32,
    /// `write` calls since the count was last taken.
    writes: u32,
    /// Bytes moved to drop a written prefix, so tests can check what that costs.
    #[cfg(test)]
    moved: usize,
}

impl OutboundQueue {
    /// An empty queue that holds at most `max_queued` bytes (`Config::max_outbound_bytes`)
    /// and asks to be written once `coalesce` bytes are queued (`Config::write_coalesce_bytes`).
    /// It allocates nothing until the first frame.
    pub fn new(max_queued: usize, coalesce: usize) -> Self {
        Self {
            out: Vec::new(),
            written: 0,
            max_queued,
            coalesce: u32::try_from(coalesce).unwrap_or(u32::MAX),
            writes: 0,
            #[cfg(test)]
            moved: 0,
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.written
    }

    /// Whether enough is queued (`coalesce` bytes or more) to be worth a write before the end
    /// of the reactor's turn.
    pub fn wants_write(&self) -> bool {
        self.queued() >= self.coalesce as usize
    }

    /// Queues one final, unmasked data frame of kind `opcode` carrying `payload`: its header
    /// (2, 4 or 10 bytes) and the payload, copied once. Refused whole, with nothing queued, if
    /// it would pass the cap.
    pub fn queue_data(&mut self, opcode: DataOpcode, payload: &[u8]) -> Result<(), QueueFull> {
        let header = data_frame_header(opcode, payload.len());
        let len = header.len() + payload.len();
        if self.queued() + len > self.max_queued {
            return Err(QueueFull);
        }
        self.reserve(len);
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
        self.reserve(bytes.len());
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Makes room for `len` more bytes behind those queued.
    #[inline]
    fn reserve(&mut self, len: usize) {
        if self.out.capacity() - self.out.len() < len {
            self.make_room(len);
        }
    }

    /// The frame does not fit: drops the written prefix (moving the queued bytes to the
    /// front), then resizes the buffer if what is left free is too little (or far too much)
    /// for what stays queued plus `len`.
    ///
    /// The move costs the queued bytes, so it must leave at least a quarter that much free,
    /// or a peer that reads a little at a time could make every frame move the whole queue;
    /// if it does not, the buffer grows to 1.5 times what the queued bytes and the frame need.
    /// So the bytes moved are at most four times the bytes appended before the next move (a
    /// resize may copy them once more, and leaves room for half as much again), and the
    /// capacity is at most 1.5 times the cap (the queued bytes plus `len` are within it).
    ///
    /// Why a quarter: under a backlog held about steady, a buffer fills up with about half its
    /// queue written, so half the queue of room after a move is just missed as soon as the
    /// backlog is a little larger than when the buffer was sized; asking for half made nearly
    /// every move a resize. Why the same buffer is resized (`realloc`), not replaced by a new
    /// one: glibc moves a large buffer's pages instead of copying them (`mremap`), so the old
    /// and the new are not both resident; copying into a new buffer made the server's peak
    /// under a 50 MB backlog 109 to 116 MiB, against 67 to 94 (docs/BENCHMARKS.md).
    #[cold]
    fn make_room(&mut self, len: usize) {
        let queued = self.queued();
        let needed = queued + len;
        // An empty queue's first frame gets what it needs (the usual reply is all there is, and
        // an idle connection keeps up to 1 KiB of it); the room to grow is for a backlog.
        let target = if queued == 0 { needed } else { needed + needed / 2 };
        #[cfg(test)]
        {
            self.moved += queued;
        }
        self.out.drain(..self.written);
        self.written = 0;
        let capacity = self.out.capacity();
        if needed + queued / 4 > capacity {
            self.out.reserve_exact(target - queued);
        } else if capacity > 2 * target {
            self.out.shrink_to(target);
        }
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

    /// Releases the buffer if nothing is queued: for an idle connection, which would keep up
    /// to 1 KiB of it otherwise (the reactor's sweep calls it for a connection quiet for a
    /// sweep period). Its next frame allocates anew.
    pub fn release_if_empty(&mut self) {
        if self.queued() == 0 {
            self.out = Vec::new();
            self.written = 0;
        }
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
        assert_eq!(queue.out.capacity(), 102, "an empty queue's first frame gets what it needs");
        queue.write_to(&mut io::sink()).expect("written");
        assert_eq!(queue.out.capacity(), 102, "a small buffer is kept for the next frames");
        queue.queue_data(DataOpcode::Binary, &[0; 10_000]).expect("fits");
        queue.write_to(&mut io::sink()).expect("written");
        assert_eq!(queue.out.capacity(), 0, "a burst's buffer is released");
    }

    #[test]
    fn release_if_empty_frees_an_empty_queue_and_keeps_queued_bytes() {
        let mut queue = OutboundQueue::new(1 << 20, 64 << 10);
        queue.queue_data(DataOpcode::Binary, &[1; 100]).expect("fits");
        let mut pipe = Pipe { got: Vec::new(), limit: usize::MAX, room: 50 };
        let _ = queue.write_to(&mut pipe);
        queue.release_if_empty();
        assert_eq!(queue.queued(), 52, "bytes still queued stay");
        pipe.room = usize::MAX;
        queue.write_to(&mut pipe).expect("the rest goes");
        assert!(queue.out.capacity() > 0, "a small buffer is kept when the queue empties");
        queue.release_if_empty();
        assert_eq!(queue.out.capacity(), 0, "and released by release_if_empty");
        queue.queue_data(DataOpcode::Binary, &[2; 10]).expect("fits");
        queue.write_to(&mut pipe).expect("written");
        assert_eq!(pipe.got.len(), 102 + 12);
        assert_eq!(&pipe.got[102..104], &[0x82, 10], "a released queue frames as before");
    }

    /// Takes all but the last byte offered: a peer that keeps up, but never quite empties the
    /// queue (the reproducer).
    struct AllButOne {
        got: usize,
    }

    impl Write for AllButOne {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() <= 1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.got += buf.len() - 1;
            Ok(buf.len() - 1)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_queue_never_quite_emptied_stays_within_its_cap() {
        const CAP: usize = 64 << 10;
        let mut queue = OutboundQueue::new(CAP, 1 << 10);
        let mut peer = AllButOne { got: 0 };
        let mut largest = 0;
        // 20 000 frames of 100 bytes: 2 MB through a queue capped at 64 KiB.
        for i in 0..20_000u32 {
            queue.queue_data(DataOpcode::Binary, &[i as u8; 98]).expect("one byte is queued");
            let err = queue.write_to(&mut peer).expect_err("the last byte stays");
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            assert_eq!(queue.queued(), 1);
            largest = largest.max(queue.out.capacity());
        }
        assert_eq!(peer.got, 20_000 * 100 - 1);
        assert!(
            largest <= CAP + CAP / 2,
            "the buffer's capacity reached {largest} bytes with 1 byte queued and a cap of {CAP}"
        );
    }

    /// A small deterministic generator (64-bit LCG), so a failure replays.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn random_frames_and_partial_writes_come_out_in_order_within_the_bound() {
        const CAP: usize = 64 << 10;
        // Every payload is a slice of this, at an offset that changes with the step.
        let source: Vec<u8> = (0..140_000u32).map(|i| (i % 251) as u8).collect();
        for seed in 0..10 {
            let mut rng = Lcg(seed);
            let mut queue = OutboundQueue::new(CAP, 16 << 10);
            let mut pipe = Pipe { got: Vec::new(), limit: 0, room: 0 };
            let mut sent = Vec::new();
            let mut appended = 0;
            for step in 0..3_000 {
                if rng.below(3) > 0 {
                    let len = [rng.below(126), rng.below(4_000), rng.below(70_000)][rng.below(3)];
                    let payload = &source[step % 251..][..len];
                    let header = data_frame_header(DataOpcode::Binary, len);
                    let before = queue.queued();
                    match queue.queue_data(DataOpcode::Binary, payload) {
                        Ok(()) => {
                            sent.extend_from_slice(&header);
                            sent.extend_from_slice(payload);
                            appended += queue.queued() - before;
                        }
                        Err(QueueFull) => {
                            assert!(before + header.len() + len > CAP, "seed {seed}: refused with room")
                        }
                    }
                } else {
                    pipe.limit = 1 + rng.below(8_000);
                    pipe.room = rng.below(40_000);
                    let _ = queue.write_to(&mut pipe);
                }
                assert_eq!(pipe.got.len() + queue.queued(), sent.len(), "seed {seed} step {step}");
                let capacity = queue.out.capacity();
                assert!(capacity <= CAP + CAP / 2, "seed {seed} step {step}: capacity {capacity}");
            }
            assert_eq!(pipe.got, sent[..pipe.got.len()], "seed {seed}: the bytes came out in order");
            let moved = queue.moved;
            assert!(moved <= 4 * appended + CAP, "seed {seed}: moved {moved} for {appended} appended");
        }
    }

    #[test]
    fn a_peer_reading_a_little_at_a_time_at_the_cap_does_not_make_every_frame_move_the_queue() {
        const CAP: usize = 1 << 20;
        let mut queue = OutboundQueue::new(CAP, 64 << 10);
        // 1 000-byte frames: a 4-byte header and 996 bytes of payload.
        let mut appended = 0;
        while queue.queue_data(DataOpcode::Binary, &[7; 996]).is_ok() {
            appended += 1_000;
        }
        let mut pipe = Pipe { got: Vec::new(), limit: usize::MAX, room: 0 };
        for _ in 0..10_000 {
            // The peer takes one frame's worth; one more frame is queued behind the rest.
            pipe.room = 1_000;
            let _ = queue.write_to(&mut pipe);
            queue.queue_data(DataOpcode::Binary, &[8; 996]).expect("one frame was written");
            appended += 1_000;
        }
        assert!(queue.queued() > CAP - 1_000, "the queue stayed at its cap");
        // Moving the whole queue for each frame would be 10 000 MiB.
        // Each move is paid for by the appends after it, but the last one's are not all made.
        assert!(queue.moved <= 4 * appended + CAP, "moved {} for {appended} appended", queue.moved);
        assert!(queue.out.capacity() <= CAP + CAP / 2);
    }

    #[test]
    fn a_backlog_that_creeps_up_is_resized_only_as_it_grows() {
        // 10 KB frames, about 1 MB behind; the peer reads nothing or two frames, in turn, and
        // one frame more is queued every 50 turns, so the backlog moves up and down and creeps
        // up (as the kernel's socket buffers make it do under a peer that holds it steady).
        const FRAME: usize = 10_000;
        let mut queue = OutboundQueue::new(4 << 20, 64 << 10);
        for _ in 0..100 {
            queue.queue_data(DataOpcode::Binary, &[1; FRAME - 4]).expect("fits");
        }
        let mut pipe = Pipe { got: Vec::new(), limit: usize::MAX, room: 0 };
        let (mut resized, mut moved, mut appended) = (0, 0, 0);
        let mut capacity = queue.out.capacity();
        for i in 0..2_000 {
            pipe.room = if i % 2 == 0 { 0 } else { 2 * FRAME };
            let _ = queue.write_to(&mut pipe);
            let frames = if i % 50 == 0 { 2 } else { 1 };
            for _ in 0..frames {
                queue.queue_data(DataOpcode::Binary, &[2; FRAME - 4]).expect("fits");
            }
            if i == 500 {
                moved = queue.moved;
            } else if i > 500 {
                appended += frames * FRAME;
                resized += usize::from(queue.out.capacity() != capacity);
            }
            capacity = queue.out.capacity();
        }
        assert!(queue.moved > moved, "the written prefix was dropped");
        // Asking for half a queue of room made this 22; a quarter, once.
        assert!(resized <= 2, "{resized} resizes for a backlog grown by 40 %");
        let moved = queue.moved - moved;
        assert!(moved <= 4 * appended, "moved {moved} for {appended} appended");
        assert!(queue.out.capacity() <= 3 * queue.queued() / 2 + 2 * FRAME);
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
