//! A call's request before it is a frame: its route and its encoded body. The frame is written
//! when the request is sent, in the version the link speaks, because a version 2 frame carries
//! the request's number and the client's received count, known only then.

use ticksock_protocol::{Encoding, v2};

/// The most bytes a version 2 request's `seq` and `ack` add to its version 1 frame: two varint
/// `u64`s of at most 9 bytes each (`docs/PROTOCOL.md` 3.1, 11.3).
pub(super) const V2_EXTRA_BYTES: usize = 18;

/// A request to send: route and body (bincode, or raw for raw routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutRequest {
    pub(super) route: Box<str>,
    pub(super) body: Vec<u8>,
}

impl OutRequest {
    pub(super) fn new(route: &str, body: Vec<u8>) -> Self {
        Self { route: route.into(), body }
    }

    /// The length of its version 1 frame under callback id `id`: a tag, the id, the route with
    /// its length, the body (`docs/PROTOCOL.md` 4.1).
    pub(super) fn v1_len(&self, id: u32) -> usize {
        1 + varint_len(u64::from(id))
            + varint_len(self.route.len() as u64)
            + self.route.len()
            + self.body.len()
    }

    /// Its version 1 frame under callback id `id`.
    pub(super) fn v1_frame(&self, id: u32) -> Vec<u8> {
        let mut frame = Vec::with_capacity(self.v1_len(id));
        // A binary frame with a raw body cannot fail to encode: only a JSON body is checked.
        let written =
            ticksock_protocol::write_raw_request(Encoding::Binary, &mut frame, id, &self.route, &self.body);
        debug_assert!(written.is_ok(), "a binary request always encodes");
        frame
    }

    /// Its version 2 frame: request number `seq`, acknowledging `ack` frames, callback id `id`.
    pub(super) fn v2_frame(&self, seq: u64, ack: u64, id: u32) -> Vec<u8> {
        let mut frame = Vec::with_capacity(self.v1_len(id) + V2_EXTRA_BYTES);
        // As above: binary, raw body.
        let written =
            v2::write_raw_request(Encoding::Binary, &mut frame, seq, ack, id, &self.route, &self.body);
        debug_assert!(written.is_ok(), "a binary request always encodes");
        frame
    }
}

/// How many bytes bincode's varint takes for `n` (`docs/PROTOCOL.md` 3.1).
fn varint_len(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_computed_length_is_the_frames_length_for_every_size_of_id() {
        let request = OutRequest::new("echo", vec![1, 2, 3]);
        for id in [0, 250, 251, 65_535, 65_536, u32::MAX] {
            assert_eq!(request.v1_frame(id).len(), request.v1_len(id), "id {id}");
        }
    }

    #[test]
    fn frames_decode_as_the_request_in_either_version() {
        let request = OutRequest::new("echo", vec![0xde, 0xad]);
        assert_eq!(request.v1_frame(1), [0, 1, 4, b'e', b'c', b'h', b'o', 0xde, 0xad]);
        let frame = request.v2_frame(u64::MAX, 7, 1);
        assert!(frame.len() <= request.v1_len(1) + V2_EXTRA_BYTES);
        match v2::decode_client_frame(Encoding::Binary, &frame).expect("decodes") {
            v2::ClientFrame::Request { seq, ack, request } => {
                assert_eq!(
                    (seq, ack, request.id, request.route, request.body),
                    (u64::MAX, 7, 1, "echo", &[0xde, 0xad][..])
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
