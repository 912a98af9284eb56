//! Reading a connection that holds no tungstenite context: the reactor reads the socket into
//! its own buffer and takes whole data frames where they lie ([`data_frames`]), and hands
//! whatever else comes to tungstenite.
//!
//! Between messages an open connection holds no protocol state (see [`websocket`]), and
//! nearly every message a client sends is one whole, small data frame, most often several in
//! one read. For those, lending a context and reading them through tungstenite cost about 600
//! instructions a message (issue 18's profile); read here, a few dozen: one `recv` into the
//! reactor's buffer, each frame's header parsed and its payload unmasked in place, and the
//! bodies handed on as slices of that buffer (one reference count each, no copy).
//!
//! The first frame it does not take (a control frame, a fragment, a frame over
//! the parser's largest payload, anything malformed) ends the read in place: the bytes from it
//! on are kept in the socket, a context is lent, and tungstenite reads them first, then the
//! socket, as it did every byte before ([`Socket::keep_unread`]). So tungstenite still
//! answers pings, assembles fragments and fails the connection where RFC 6455 says, and the
//! frame boundaries still see every byte tungstenite sees. A frame cut by the end of a read is
//! kept the same way, for the next read, and so are frames past the connection's budget for
//! the turn (the connection is queued to be read again).
//!
//! One difference from reading through tungstenite: the frames of one read are taken
//! together, so when the logic thread falls behind in the middle of them, the rest of them
//! still go to the backlog (at most one budget of one connection: the next connection is not
//! read).
//!
//! [`data_frames`]: super::data_frames
//! [`DataFrames`]: super::data_frames::DataFrames
//! [`websocket`]: super::websocket
//! [`Socket::keep_unread`]: super::socket::Socket::keep_unread

use std::io;

use bytes::{Bytes, BytesMut};
use tungstenite::Message;
use tungstenite::protocol::frame::Utf8Bytes;

use super::Reactor;
use super::data_frames::{DataFrames, Parsed};
use super::inbound::close;
use crate::bridge::DataOpcode;

/// The least room a read asks for, unless a frame needs more.
const MIN_READ: usize = 4 << 10;

/// How much of the buffer is made ready (zeroed) at once: four reads' worth, so the zeroing
/// costs about one byte written per byte read.
const READY_READS: usize = 4;

/// How a read in place ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InPlace {
    /// Nothing more for now: the socket is empty, the budget is spent (the connection is
    /// queued), or the connection was closed or stopped reading.
    Done,
    /// tungstenite must read what comes next, within what is left of the budget.
    Tungstenite,
}

/// The reactor's buffer for reads in place, and the parser.
pub(super) struct InPlaceReader {
    /// `buf[..len]` is initialized memory to read into; its bytes from a connection's read
    /// are taken (split off and frozen) or kept in its socket before the next connection's.
    buf: BytesMut,
    frames: DataFrames,
    /// The least room each read asks for: [`MIN_READ`], or a whole frame if larger.
    min_read: usize,
    /// The frames taken from one read: opcode, payload start, payload length.
    taken: Vec<(DataOpcode, usize, usize)>,
}

impl InPlaceReader {
    /// A reader that takes frames with payloads of at most `max_payload` bytes itself.
    pub(super) fn new(max_payload: usize) -> Self {
        // A whole frame of the largest payload, its 14-byte header included, always fits.
        let min_read = MIN_READ.max(max_payload + 14);
        Self { buf: BytesMut::new(), frames: DataFrames::new(max_payload), min_read, taken: Vec::new() }
    }

    /// Makes sure `buf[filled..]` has room for a read of at least `min_read` bytes.
    fn make_room(&mut self, filled: usize) {
        if self.buf.len() >= filled + self.min_read {
            return;
        }
        // Only the bytes kept move (when the old buffer is still shared with bodies in
        // flight, `reserve` allocates a new one); the rest is zeroed once for several reads.
        self.buf.truncate(filled);
        let ready = filled + self.min_read * READY_READS;
        self.buf.reserve(ready - filled);
        self.buf.resize(ready, 0);
    }
}

impl Reactor {
    /// Reads connection `index`, which holds no tungstenite context, taking whole data frames
    /// in place, at most `budget` of them; bytes it does not take are kept in the socket for
    /// the next read (see the module's doc).
    pub(super) fn read_in_place(&mut self, index: usize, budget: &mut usize) -> InPlace {
        let mut filled = 0;
        loop {
            let Some(conn) = self.conns.get_mut(index) else { return InPlace::Done };
            let Some(link) = conn.link() else { return InPlace::Done };
            let socket = link.socket_mut();
            let reader = &mut self.in_place;
            reader.make_room(filled);
            match socket.read_raw(&mut reader.buf[filled..]) {
                Ok(0) => {
                    // End of stream: tungstenite tells a clean close from a drop.
                    socket.keep_unread(&reader.buf[..filled]);
                    return InPlace::Tungstenite;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    socket.keep_unread(&reader.buf[..filled]);
                    return InPlace::Done;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.handle_read_error(index, tungstenite::Error::Io(e));
                    return InPlace::Done;
                }
            }

            // Whole frames, up to the budget.
            reader.taken.clear();
            let mut at = 0;
            let mut next = Parsed::Incomplete;
            while reader.taken.len() < *budget {
                next = reader.frames.parse(&mut reader.buf[at..filled]);
                let Parsed::Data { opcode, header, len } = next else { break };
                reader.taken.push((opcode, at + header, len));
                at += header + len;
            }
            *budget -= reader.taken.len();
            let stop = next == Parsed::Other || *budget == 0;
            let bodies = if at > 0 { reader.buf.split_to(at).freeze() } else { Bytes::new() };
            filled -= at;
            if stop {
                socket.keep_unread(&reader.buf[..filled]);
            }
            conn.liveness.handle_heard(self.now);

            for i in 0..self.in_place.taken.len() {
                let (opcode, start, len) = self.in_place.taken[i];
                if !self.conns.get(index).is_some_and(|conn| conn.lifecycle.reads()) {
                    // Closed by what came before: the rest is read no more, as through
                    // tungstenite.
                    return InPlace::Done;
                }
                let body = bodies.slice(start..start + len);
                let message = match opcode {
                    DataOpcode::Binary => Message::Binary(body),
                    // Checked as UTF-8 by the parser; checked again only because building the
                    // text unchecked would take `unsafe`.
                    DataOpcode::Text => match Utf8Bytes::try_from(body) {
                        Ok(text) => Message::Text(text),
                        Err(_) => {
                            self.close_after_replies(index, close::INVALID_DATA, close::INVALID_UTF8, true);
                            return InPlace::Done;
                        }
                    },
                };
                self.handle_message(index, message, self.now);
            }
            if next == Parsed::Other {
                return InPlace::Tungstenite;
            }
            if *budget == 0 {
                self.queue_read(index);
                return InPlace::Done;
            }
            if !self.backlog.is_empty() {
                // The logic thread is behind: stop reading, let TCP push back.
                if let Some(link) = self.conns.get_mut(index).and_then(|conn| conn.link()) {
                    link.socket_mut().keep_unread(&self.in_place.buf[..filled]);
                }
                self.queue_read(index);
                return InPlace::Done;
            }
        }
    }
}
