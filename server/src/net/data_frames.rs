//! The usual client frame, read where it lies: a whole, unfragmented, masked text or binary
//! frame, parsed and unmasked in place in the reactor's read buffer (RFC 6455, 5.2 and 5.3).
//!
//! Why: between messages a connection holds no tungstenite context (see
//! [`websocket`](super::websocket)), and nearly every frame a client sends is one of these,
//! small and whole in one read. Lending a context and reading it through tungstenite cost
//! about 600 instructions a message (its frame codec, cursor and buffer bookkeeping); parsing
//! it here costs a few dozen. Everything else (control frames, fragments, a frame larger than
//! the parser's largest payload ([`DataFrames::new`]), reserved bits, an unmasked frame, text that is not UTF-8) is
//! [`Parsed::Other`]: the reactor hands the bytes from that frame on to tungstenite, which
//! handles them, and fails the connection where the RFC says so, exactly as before.
//!
//! Pure: bytes in, a verdict out, no socket.

use crate::bridge::DataOpcode;

/// What the bytes at the start of a read buffer hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole data frame, now unmasked: its payload is `bytes[header..header + len]`, and
    /// the next frame starts at `header + len`.
    Data {
        /// Text or binary.
        opcode: DataOpcode,
        /// The header's length: 6, 8 or 14 bytes.
        header: usize,
        /// The payload's length.
        len: usize,
    },
    /// The start of such a frame, not all of it yet (or no bytes at all).
    Incomplete,
    /// Anything else: for tungstenite, untouched.
    Other,
}

/// The parser, with the largest payload it takes itself.
#[derive(Debug, Clone, Copy)]
pub struct DataFrames {
    max_payload: usize,
}

impl DataFrames {
    /// A parser of frames whose payload is at most `max_payload` bytes; a larger one is left
    /// to tungstenite, which applies the size limits and grows its buffer for it. The reactor
    /// passes the smallest of the read buffer and the frame and message limits.
    pub fn new(max_payload: usize) -> Self {
        Self { max_payload }
    }

    /// Parses the frame at the start of `bytes` and, if it is a whole data frame of this
    /// kind, unmasks its payload in place. Bytes of a frame it does not take are left as they
    /// were, so tungstenite can read them.
    // Inlined into the reactor's read loop, which calls it once per frame.
    #[inline]
    pub fn parse(&self, bytes: &mut [u8]) -> Parsed {
        let [first, second, ..] = *bytes else { return Parsed::Incomplete };
        // FIN set, no reserved bit (no extension is ever negotiated), opcode 1 or 2, masked
        // (a client's frames must be).
        let opcode = match first {
            0x81 => DataOpcode::Text,
            0x82 => DataOpcode::Binary,
            _ => return Parsed::Other,
        };
        if second & 0x80 == 0 {
            return Parsed::Other;
        }
        let (len, header) = match second & 0x7F {
            126 => match bytes.get(2..4) {
                Some(&[hi, lo]) => (usize::from(u16::from_be_bytes([hi, lo])), 8),
                _ => return Parsed::Incomplete,
            },
            127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                // A length past usize (only on 32-bit targets) is past any limit.
                Some(b) => (usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX), 14),
                None => return Parsed::Incomplete,
            },
            len => (usize::from(len), 6),
        };
        if len > self.max_payload {
            return Parsed::Other;
        }
        let Some(frame) = bytes.get_mut(..header + len) else { return Parsed::Incomplete };
        let (head, payload) = frame.split_at_mut(header);
        let key = [head[header - 4], head[header - 3], head[header - 2], head[header - 1]];
        toggle_mask(payload, key);
        if opcode == DataOpcode::Text && std::str::from_utf8(payload).is_err() {
            // tungstenite fails the connection with 1007 for it: give it the frame as it came.
            toggle_mask(payload, key);
            return Parsed::Other;
        }
        Parsed::Data { opcode, header, len }
    }
}

/// XORs `payload` with the repeated `key` (RFC 6455, 5.3): masks it, or unmasks it. Four
/// bytes at a time, each word at the key's phase 0; the rest (under 4 bytes) too. With 8-byte
/// words the echo bench took more instructions (961 against 938 an echo under callgrind, one
/// run each): its payloads are 32 bytes, and most a game sends are as small.
fn toggle_mask(payload: &mut [u8], key: [u8; 4]) {
    let key32 = u32::from_ne_bytes(key);
    let (words, rest) = payload.as_chunks_mut::<4>();
    for word in words {
        *word = (u32::from_ne_bytes(*word) ^ key32).to_ne_bytes();
    }
    for (byte, k) in rest.iter_mut().zip(key) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: `first` byte, then the length encoding, the key and the masked payload.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&KEY);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        frame
    }

    fn parser() -> DataFrames {
        DataFrames::new(2048)
    }

    #[test]
    fn the_rfc_example_is_unmasked() {
        // RFC 6455, 5.7: a masked text "Hello".
        let mut frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(parser().parse(&mut frame), Parsed::Data { opcode: DataOpcode::Text, header: 6, len: 5 });
        assert_eq!(&frame[6..], b"Hello");
    }

    #[test]
    fn every_length_encoding_and_length_around_the_word_size_is_unmasked() {
        for len in [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 125, 126, 127, 200, 2048] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut frame = client_frame(0x82, &payload);
            let header = frame.len() - len;
            assert_eq!(
                parser().parse(&mut frame),
                Parsed::Data { opcode: DataOpcode::Binary, header, len },
                "len {len}"
            );
            assert_eq!(&frame[header..], &payload[..], "len {len}");
        }
    }

    #[test]
    fn a_64_bit_length_is_read() {
        let payload = vec![9u8; 300];
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&300u64.to_be_bytes());
        frame.extend_from_slice(&KEY);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        assert_eq!(
            parser().parse(&mut frame),
            Parsed::Data { opcode: DataOpcode::Binary, header: 14, len: 300 }
        );
        assert_eq!(&frame[14..], &payload[..]);
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete_and_left_as_it_was() {
        for len in [5, 130] {
            let frame = client_frame(0x82, &vec![0xAB; len]);
            for cut in 0..frame.len() {
                let mut part = frame[..cut].to_vec();
                assert_eq!(parser().parse(&mut part), Parsed::Incomplete, "len {len}, cut {cut}");
                assert_eq!(part, frame[..cut], "untouched");
            }
        }
    }

    #[test]
    fn the_next_frame_is_left_alone() {
        let mut bytes = client_frame(0x82, b"one");
        let second = client_frame(0x82, b"two");
        bytes.extend_from_slice(&second);
        assert_eq!(
            parser().parse(&mut bytes),
            Parsed::Data { opcode: DataOpcode::Binary, header: 6, len: 3 }
        );
        assert_eq!(&bytes[9..], &second[..]);
        assert_eq!(
            parser().parse(&mut bytes[9..]),
            Parsed::Data { opcode: DataOpcode::Binary, header: 6, len: 3 }
        );
        assert_eq!(&bytes[15..], b"two");
    }

    #[test]
    fn what_tungstenite_must_judge_is_other_and_untouched() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("ping", client_frame(0x89, b"hi")),
            ("pong", client_frame(0x8A, b"")),
            ("close", client_frame(0x88, &[0x03, 0xe8])),
            ("first fragment", client_frame(0x02, b"part")),
            ("continuation", client_frame(0x80, b"rest")),
            ("reserved bit", client_frame(0xC2, b"x")),
            ("reserved opcode", client_frame(0x83, b"x")),
            ("too large", client_frame(0x82, &[0; 2049])),
            ("not utf-8", client_frame(0x81, &[0xff, 0xfe, 0x41])),
            ("cut utf-8", client_frame(0x81, "é".as_bytes().get(..1).unwrap_or_default())),
            ("unmasked", vec![0x82, 0x02, 0x01, 0x02]),
        ];
        for (name, frame) in cases {
            let mut bytes = frame.clone();
            assert_eq!(parser().parse(&mut bytes), Parsed::Other, "{name}");
            assert_eq!(bytes, frame, "{name}: bytes as they came");
        }
    }

    #[test]
    fn a_length_over_the_limit_is_other_before_its_payload_arrives() {
        let frame = client_frame(0x82, &[0; 4000]);
        let mut head = frame[..8].to_vec();
        assert_eq!(parser().parse(&mut head), Parsed::Other);
    }

    #[test]
    fn valid_text_is_taken() {
        let mut frame = client_frame(0x81, "{\"é\":1}".as_bytes());
        assert!(matches!(parser().parse(&mut frame), Parsed::Data { opcode: DataOpcode::Text, .. }));
        assert_eq!(&frame[6..], "{\"é\":1}".as_bytes());
    }
}
