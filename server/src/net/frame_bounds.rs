//! Where the frames end in the bytes a connection's socket hands to tungstenite, so the
//! reactor can tell when tungstenite holds no part of a message, and how large a frame has
//! been since the connection was lent its tungstenite context (and read buffer).
//!
//! Why: tungstenite (0.30) keeps a connection's state and read buffer in a context, grows the
//! buffer to hold each whole frame and keeps the allocation, and it offers no way to see or
//! shrink that buffer. An idle connection gives its context back to the reactor's pool (see
//! [`websocket`](super::websocket)), and a context whose buffer grew is dropped; both lose
//! nothing only between messages: no frame partly read, no fragmented message partly
//! received. Every byte tungstenite reads comes through the socket, so the socket follows the
//! frame headers in them (RFC 6455, 5.2): a header is 2 to 14 bytes and gives its payload's
//! length, FIN and opcode.
//! What it sees of a malformed frame does not matter: tungstenite fails the connection on it.

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Follows frame boundaries through a stream of bytes fed in pieces of any size.
#[derive(Debug, Default)]
pub(crate) struct FrameBounds {
    /// The bytes of the header being read (a byte for its length keeps the struct at 32 bytes,
    /// one per connection).
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Payload bytes of the current frame not seen yet.
    payload_left: u64,
    /// A data frame without FIN was seen, and the continuation with FIN not yet.
    in_fragmented_message: bool,
    /// The largest frame (header and payload) since [`FrameBounds::forget_largest`].
    largest: u64,
}

impl FrameBounds {
    /// Follows `bytes`, the next bytes of the stream.
    pub(crate) fn observe(&mut self, mut bytes: &[u8]) {
        loop {
            if self.payload_left > 0 {
                let Some(rest) = usize::try_from(self.payload_left).ok().and_then(|n| bytes.get(n..)) else {
                    // The whole read is payload.
                    self.payload_left -= bytes.len() as u64;
                    return;
                };
                self.payload_left = 0;
                bytes = rest;
            }
            if self.header_len == 0 {
                bytes = self.skip_small_frames(bytes);
                if bytes.is_empty() {
                    return;
                }
                // Any other whole header: parsed where it lies, and its payload skipped in the
                // same step when the read holds all of it.
                let size = header_size(bytes);
                if let Some(header) = bytes.get(..size) {
                    self.start_frame(header);
                    let end = usize::try_from(self.payload_left).ok().and_then(|len| len.checked_add(size));
                    if let Some(rest) = end.and_then(|end| bytes.get(end..)) {
                        self.payload_left = 0;
                        bytes = rest;
                    } else {
                        bytes = &bytes[size..];
                    }
                    continue;
                }
            }
            if bytes.is_empty() {
                return;
            }
            // A header split between reads: gathered until complete.
            let have = usize::from(self.header_len);
            let taken = (header_size(&self.header[..have]) - have).min(bytes.len());
            self.header[have..have + taken].copy_from_slice(&bytes[..taken]);
            // At most MAX_HEADER.
            self.header_len += taken as u8;
            bytes = &bytes[taken..];
            let have = usize::from(self.header_len);
            if have == header_size(&self.header[..have]) {
                self.header_len = 0;
                let header = self.header;
                self.start_frame(&header[..have]);
            }
        }
    }

    /// Whether the bytes so far end a message: no frame partly seen, no fragmented message
    /// partly received.
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0 && !self.in_fragmented_message
    }

    /// The largest frame, header and payload, since [`FrameBounds::forget_largest`] (or since
    /// the start).
    pub(crate) fn largest_frame(&self) -> u64 {
        self.largest
    }

    /// Starts counting the largest frame afresh (the connection was lent a context).
    pub(crate) fn forget_largest(&mut self) {
        self.largest = 0;
    }

    /// Skips the small frames that are whole at the start of `bytes`, the usual case (a
    /// client's frames are masked, so the header is 6 bytes when the payload is under 126), in
    /// a loop that keeps its state in registers; returns what follows them. The one part of
    /// the tracking that runs per message under load.
    #[inline]
    fn skip_small_frames<'a>(&mut self, mut bytes: &'a [u8]) -> &'a [u8] {
        let (mut fragmented, mut largest) = (self.in_fragmented_message, self.largest);
        while let [first, second, ..] = *bytes {
            let len = usize::from(second & 0x7F);
            if second & 0x80 == 0 || len >= 126 {
                break;
            }
            let Some(rest) = bytes.get(6 + len..) else { break };
            // Data frames (opcodes below 8) start or go on with a message; control frames may
            // come between the fragments of one. FIN is the top bit.
            if first & 0x08 == 0 {
                fragmented = first & 0x80 == 0;
            }
            largest = largest.max(6 + len as u64);
            bytes = rest;
        }
        (self.in_fragmented_message, self.largest) = (fragmented, largest);
        bytes
    }

    /// `header`, complete, starts a frame: its payload comes next.
    fn start_frame(&mut self, header: &[u8]) {
        let payload = match header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or([0xFF; 8])),
            len => u64::from(len),
        };
        self.note_frame(header[0], (header.len() as u64).saturating_add(payload));
        self.payload_left = payload;
    }

    /// A frame of `size` bytes, header included, whose header starts with `first`.
    fn note_frame(&mut self, first: u8, size: u64) {
        // Data frames (opcodes below 8) start or go on with a message; control frames may
        // come between the fragments of one. FIN is the top bit.
        if first & 0x08 == 0 {
            self.in_fragmented_message = first & 0x80 == 0;
        }
        self.largest = self.largest.max(size);
    }
}

/// The size of the header that begins with `start`, as far as `start` tells: 2 until its
/// second byte is known.
fn header_size(start: &[u8]) -> usize {
    let Some(&second) = start.get(1) else { return 2 };
    let length = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + length + mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, as a client must send them.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => bytes.push(0x80 | len as u8),
            126..=0xFFFF => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend(std::iter::repeat_n(0xAB, len));
        bytes
    }

    /// Feeds `stream` in pieces of `piece` bytes and returns the positions after which the
    /// tracker was at a message boundary.
    fn boundaries(stream: &[u8], piece: usize) -> Vec<usize> {
        let mut bounds = FrameBounds::default();
        let mut at = Vec::new();
        for (i, chunk) in stream.chunks(piece).enumerate() {
            bounds.observe(chunk);
            if bounds.at_message_boundary() {
                at.push(i * piece + chunk.len());
            }
        }
        at
    }

    #[test]
    fn every_header_size_ends_where_its_frame_does_in_pieces_of_any_size() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let one = frame(true, 2, len);
            let mut stream = one.clone();
            stream.extend_from_slice(&frame(true, 1, 3));
            let ends = [one.len(), stream.len()];
            for piece in [1, 2, 3, 7, 14, 2048, stream.len()] {
                let at = boundaries(&stream, piece);
                let expected: Vec<usize> = (1..=stream.len().div_ceil(piece))
                    .map(|i| (i * piece).min(stream.len()))
                    .filter(|p| ends.contains(p))
                    .collect();
                assert_eq!(at, expected, "len {len} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_fragmented_message_ends_with_its_final_continuation_pings_between_or_not() {
        let mut stream = frame(false, 2, 300);
        let first = stream.len();
        stream.extend_from_slice(&frame(true, 9, 4)); // a ping between the fragments
        let ping = stream.len();
        stream.extend_from_slice(&frame(false, 0, 200));
        stream.extend_from_slice(&frame(true, 0, 10));
        let mut bounds = FrameBounds::default();
        bounds.observe(&stream[..first]);
        assert!(!bounds.at_message_boundary(), "a first fragment is not a whole message");
        bounds.observe(&stream[first..ping]);
        assert!(!bounds.at_message_boundary(), "a ping between fragments does not end the message");
        bounds.observe(&stream[ping..]);
        assert!(bounds.at_message_boundary());
    }

    #[test]
    fn the_largest_frame_is_counted_until_forgotten() {
        let mut bounds = FrameBounds::default();
        bounds.observe(&frame(true, 2, 100));
        assert_eq!(bounds.largest_frame(), 106);
        bounds.observe(&frame(true, 2, 60_000));
        bounds.observe(&frame(true, 2, 10));
        assert_eq!(bounds.largest_frame(), 60_008);
        bounds.forget_largest();
        assert_eq!(bounds.largest_frame(), 0);
        bounds.observe(&frame(true, 2, 10)[..1]);
        assert_eq!(bounds.largest_frame(), 0, "a frame counts once its header is complete");
    }

    #[test]
    fn it_costs_a_connection_32_bytes() {
        assert_eq!(std::mem::size_of::<FrameBounds>(), 32);
    }

    #[test]
    fn a_huge_claimed_length_never_reaches_a_boundary() {
        let mut bounds = FrameBounds::default();
        bounds.observe(&[0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]);
        bounds.observe(&[0; 4096]);
        assert!(!bounds.at_message_boundary());
        assert_eq!(bounds.largest_frame(), u64::MAX);
    }
}
