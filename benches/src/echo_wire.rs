//! What `ws_echo_load` puts on the wire and how it matches the answers, in its two forms:
//! plain WebSocket echo (for `server --echo`) and the ticksock protocol (`ticksock.v1` Request
//! frames for the arena's `echo` route, answered by Reply frames). One generator with both
//! forms measures both server paths with the same timer, loop and costs (issue 18 item 6).
//!
//! No I/O here: bytes in, bytes and verdicts out, so the matching is tested without sockets.

use std::collections::VecDeque;
use std::time::Instant;

use ticksock_protocol::ServerFrame;
use ticksock_protocol::frame::write_request_header;

/// The subprotocol the protocol form offers: version 1, binary frames.
pub const SUBPROTOCOL: &str = "ticksock.v1";

/// The arena's route that returns its body verbatim (docs/PROTOCOL.md section 8.2).
pub const ECHO_ROUTE: &str = "echo";

/// Which server path the generator drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoWire {
    /// Plain binary messages echoed back as they are, by `server --echo`'s reactor.
    Plain,
    /// `ticksock.v1` Requests for the `echo` route, answered by the logic thread with Replies.
    Protocol,
}

/// One message in flight on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The message's number on its connection: its callback id in the protocol form; its
    /// low byte is the body's first byte in both forms.
    pub number: u32,
    /// When the schedule wanted it sent (the send time in window mode).
    pub due: Instant,
    /// When it was written to the socket.
    pub sent: Instant,
}

/// What an incoming message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The answer to this message, taken out of the in-flight list.
    Matched(InFlight),
    /// An echo or Reply whose number, id or body does not fit any message in flight.
    Mismatch,
    /// An Error frame (for example `rate_limited`): the server refused the call.
    Refused {
        /// The Error's code (docs/PROTOCOL.md section 6).
        code: u16,
    },
    /// A Welcome or Push: not an answer, nothing to count.
    NotAnAnswer,
}

impl EchoWire {
    /// The `Sec-WebSocket-Protocol` to offer in the upgrade; none for plain echo (the server's
    /// `--echo` mode names none).
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            EchoWire::Plain => None,
            EchoWire::Protocol => Some(SUBPROTOCOL),
        }
    }

    /// Whether the server sends a first message (the Welcome) before any answer.
    pub fn server_speaks_first(self) -> bool {
        self == EchoWire::Protocol
    }

    /// The whole WebSocket message for message `number` with `body` (at least one byte), whose
    /// first byte is replaced by the number's low byte so an echo can be told from another.
    pub fn message(self, number: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 16);
        if self == EchoWire::Protocol {
            write_request_header(&mut out, number, ECHO_ROUTE);
        }
        let body_at = out.len();
        out.extend_from_slice(body);
        if let Some(first) = out.get_mut(body_at) {
            *first = number as u8;
        }
        out
    }

    /// Matches `message` against `in_flight` (oldest first), removing the message it answers.
    ///
    /// A plain echo must answer the oldest message (one connection's echoes keep their order).
    /// A Reply is found by its callback id wherever it is in the list: the protocol lets
    /// replies overtake each other (docs/PROTOCOL.md section 7.3). Either way its body must be
    /// `body_len` bytes starting with the number's low byte.
    pub fn take_answer(self, message: &[u8], body_len: usize, in_flight: &mut VecDeque<InFlight>) -> Answer {
        let (position, body) = match self {
            EchoWire::Plain => (in_flight.front().map(|_| 0), message),
            EchoWire::Protocol => match ServerFrame::decode(message) {
                Ok(ServerFrame::Reply { id, body }) => (in_flight.iter().position(|m| m.number == id), body),
                Ok(ServerFrame::Error { code, id, .. }) => {
                    // The refused call is no longer in flight: its window slot is free again.
                    if let Some(at) = in_flight.iter().position(|m| m.number == id) {
                        in_flight.remove(at);
                    }
                    return Answer::Refused { code };
                }
                Ok(ServerFrame::Welcome { .. } | ServerFrame::Push { .. }) => return Answer::NotAnAnswer,
                // The generator never asks for stamped replies (PROTOCOL.md 4.3).
                Ok(ServerFrame::TickReply { .. }) | Err(_) => return Answer::Mismatch,
            },
        };
        let Some(position) = position else {
            return Answer::Mismatch;
        };
        let fits = body.len() == body_len && body.first() == Some(&(in_flight[position].number as u8));
        match (fits, in_flight.remove(position)) {
            (true, Some(matched)) => Answer::Matched(matched),
            // The message stays out of the list either way: it got its (wrong) answer.
            _ => Answer::Mismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksock_protocol::ClientFrame;

    fn flight(numbers: &[u32]) -> VecDeque<InFlight> {
        let now = Instant::now();
        numbers.iter().map(|&number| InFlight { number, due: now, sent: now }).collect()
    }

    fn reply(id: u32, body: &[u8]) -> Vec<u8> {
        ServerFrame::Reply { id, body }.to_vec()
    }

    #[test]
    fn a_protocol_message_is_an_echo_request_numbered_in_its_id_and_first_byte() {
        let message = EchoWire::Protocol.message(300, &[0, 7, 7]);
        assert_eq!(
            ClientFrame::decode(&message).expect("a request"),
            ClientFrame::Request { id: 300, route: "echo", body: &[44, 7, 7] }
        );
        assert_eq!(EchoWire::Plain.message(300, &[0, 7, 7]), vec![44, 7, 7]);
        assert_eq!(EchoWire::Protocol.subprotocol(), Some("ticksock.v1"));
        assert_eq!(EchoWire::Plain.subprotocol(), None);
    }

    #[test]
    fn a_plain_echo_must_answer_the_oldest_message() {
        let mut in_flight = flight(&[1, 2]);
        let Answer::Matched(m) = EchoWire::Plain.take_answer(&[1, 0], 2, &mut in_flight) else {
            panic!("the oldest echo matches");
        };
        assert_eq!(m.number, 1);
        assert_eq!(EchoWire::Plain.take_answer(&[9, 0], 2, &mut in_flight), Answer::Mismatch);
        assert!(in_flight.is_empty(), "a wrong echo still answers the oldest");
        assert_eq!(
            EchoWire::Plain.take_answer(&[9, 0], 2, &mut in_flight),
            Answer::Mismatch,
            "nothing in flight"
        );
    }

    #[test]
    fn a_reply_is_matched_by_its_id_in_any_order() {
        let mut in_flight = flight(&[5, 6, 7]);
        let wire = EchoWire::Protocol;
        let Answer::Matched(m) = wire.take_answer(&reply(6, &[6, 0]), 2, &mut in_flight) else {
            panic!("reply 6 matches");
        };
        assert_eq!(m.number, 6);
        assert_eq!(in_flight.iter().map(|m| m.number).collect::<Vec<_>>(), [5, 7]);
        assert_eq!(
            wire.take_answer(&reply(6, &[6, 0]), 2, &mut in_flight),
            Answer::Mismatch,
            "answered twice"
        );
        assert_eq!(wire.take_answer(&reply(5, &[5]), 2, &mut in_flight), Answer::Mismatch, "short body");
        assert_eq!(wire.take_answer(&[0xff], 2, &mut in_flight), Answer::Mismatch, "not a frame");
        assert_eq!(in_flight.iter().map(|m| m.number).collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn an_error_frees_its_slot_and_a_welcome_is_no_answer() {
        let mut in_flight = flight(&[3]);
        let wire = EchoWire::Protocol;
        let welcome = ServerFrame::Welcome { version: 1, tick_hz: 30, conn_id: 1 }.to_vec();
        assert_eq!(wire.take_answer(&welcome, 2, &mut in_flight), Answer::NotAnAnswer);
        let error = ServerFrame::Error { id: 3, code: 9, message: "slow down".into() }.to_vec();
        assert_eq!(wire.take_answer(&error, 2, &mut in_flight), Answer::Refused { code: 9 });
        assert!(in_flight.is_empty());
    }
}
