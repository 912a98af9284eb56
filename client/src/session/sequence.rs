//! Version 2's bookkeeping (`docs/PROTOCOL.md` 11.2 to 11.6), without sockets or clocks: the
//! server session the client holds (to resume it), the sequenced frames it received and
//! acknowledged, and the requests it numbered, kept until the server says it has taken them,
//! so that a resume can send again exactly those the server missed.
//!
//! A request is kept until the server's received count covers it (an Ack or a Resumed), not
//! until its call ends: a call that timed out still has its number, and skipping it on a resend
//! would leave a gap the server refuses (11.6).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ticksock_protocol::{Encoding, Secret, v2};

use super::request::OutRequest;

/// What names a server session and proves the right to resume it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    /// The session's `conn_id`, from its welcome.
    pub(super) conn_id: u64,
    /// The server run's epoch, from the same welcome.
    pub(super) epoch: u64,
    /// Its current secret: the welcome's, then each Resumed's. Never logged.
    pub(super) secret: Secret,
}

/// A request with its number, kept until the server has taken it.
struct Numbered {
    seq: u64,
    id: u32,
    request: Arc<OutRequest>,
}

/// The version 2 state of a session (empty while it holds none, and on version 1).
#[derive(Default)]
pub(super) struct Sequencing {
    /// The session held: from its first welcome, with the secret of the last Resumed.
    held: Option<Identity>,
    /// The new session of the current link's welcome, adopted if the resume fails.
    spare: Option<Identity>,
    /// The Resume frame to send first on this link.
    resume: Option<Vec<u8>>,
    /// Sequenced frames received on the held session.
    received: u64,
    /// The received count last sent (in a request, an Ack or a Resume).
    acked: u64,
    /// Since when `received` has been ahead of `acked`.
    unacked_since: Option<Instant>,
    /// An Ack is due now (its delay passed, or enough frames came).
    ack_now: bool,
    /// A fresh session's first frame has not gone out: the server's game hears of the session
    /// only with it, so an Ack(0) goes if no request does (11.4).
    first_frame_owed: bool,
    /// The last request number given.
    last_seq: u64,
    /// The server's received count as last learned.
    taken: u64,
    /// Requests numbered above `taken`, in order: numbers `taken + 1 ..= last_seq`.
    kept: VecDeque<Numbered>,
    /// Numbers of requests to send again after a resume, in order.
    resend: Range<u64>,
}

impl Sequencing {
    /// Whether a session is held (to resume on the next link).
    pub(super) fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// The held session's id.
    pub(super) fn conn_id(&self) -> Option<u64> {
        self.held.map(|held| held.conn_id)
    }

    /// Sequenced frames received on the held session.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// Requests kept until the server takes them.
    pub(super) fn kept(&self) -> usize {
        self.kept.len()
    }

    /// A fresh session of a welcome: counts from zero. `announce`: the server's game has not
    /// heard of it yet, so the first frame must go out even with no request (an Ack(0)).
    pub(super) fn start(&mut self, session: Identity, announce: bool) {
        *self = Self { held: Some(session), first_frame_owed: announce, ..Self::default() };
    }

    /// The held session ended: nothing is kept of it.
    pub(super) fn forget(&mut self) {
        *self = Self::default();
    }

    /// A welcome arrived while a session is held: the Resume goes first, and `spare` waits
    /// in case the server refuses it. Acknowledges everything received (the Resume says it).
    pub(super) fn begin_resume(&mut self, spare: Identity) {
        let Some(held) = self.held else { return };
        let mut frame = Vec::new();
        v2::write_resume(Encoding::Binary, &mut frame, held.conn_id, held.epoch, &held.secret, self.received);
        self.resume = Some(frame);
        self.spare = Some(spare);
        self.resend = 0..0;
        self.first_frame_owed = false;
        self.note_acked();
    }

    /// The Resume frame, once.
    pub(super) fn take_resume_frame(&mut self) -> Option<Vec<u8>> {
        self.resume.take()
    }

    /// The server resumed the session, having taken `received` requests; `secret` replaces
    /// the old one. Returns how many requests will be sent again, or what does not add up.
    pub(super) fn resumed(&mut self, received: u64, secret: Secret) -> Result<u64, String> {
        if received > self.last_seq {
            return Err(format!("the server took {received} requests, but only {} were sent", self.last_seq));
        }
        if received < self.taken {
            return Err(format!(
                "the server took {received} requests, but it had acknowledged {}",
                self.taken
            ));
        }
        if let Some(held) = &mut self.held {
            held.secret = secret;
        }
        self.spare = None;
        self.resume = None;
        self.confirm(received);
        self.resend = received + 1..self.last_seq + 1;
        Ok(self.last_seq - received)
    }

    /// The new session of the current link's welcome, waiting while the resume is asked.
    pub(super) fn take_spare(&mut self) -> Option<Identity> {
        self.spare.take()
    }

    /// The server's Ack: it has taken `received` requests.
    pub(super) fn server_acked(&mut self, received: u64) -> Result<(), String> {
        if received > self.last_seq {
            return Err(format!(
                "the server acknowledged {received} requests, but only {} were sent",
                self.last_seq
            ));
        }
        self.confirm(received);
        Ok(())
    }

    /// The server has taken the requests numbered up to `count`: they need not be kept.
    fn confirm(&mut self, count: u64) {
        self.taken = self.taken.max(count);
        while self.kept.front().is_some_and(|kept| kept.seq <= self.taken) {
            self.kept.pop_front();
        }
        self.resend.start = self.resend.start.max(self.taken + 1);
    }

    /// A sequenced frame arrived at `now`; an Ack is due at once after `ack_after` of them.
    pub(super) fn on_sequenced(&mut self, now: Instant, ack_after: u64) {
        self.received += 1;
        self.unacked_since.get_or_insert(now);
        if self.received - self.acked >= ack_after {
            self.ack_now = true;
        }
    }

    /// When an Ack falls due for frames unacknowledged for `delay`; `None` if none is waiting
    /// for its delay (nothing unacknowledged, or it is due already).
    pub(super) fn ack_deadline(&self, delay: Duration) -> Option<Instant> {
        if self.ack_now {
            return None;
        }
        self.unacked_since.and_then(|since| since.checked_add(delay))
    }

    /// The Ack falls due if frames have waited `delay` at `now`.
    pub(super) fn check_ack(&mut self, now: Instant, delay: Duration) {
        if self.ack_deadline(delay).is_some_and(|at| at <= now) {
            self.ack_now = true;
        }
    }

    /// The next request to send again after a resume: its callback id and its frame, with its
    /// original number and id and the current received count.
    pub(super) fn next_resend(&mut self) -> Option<(u32, Vec<u8>)> {
        let first = self.kept.front()?.seq;
        while let Some(seq) = self.resend.next() {
            if let Some(kept) = seq.checked_sub(first).and_then(|at| self.kept.get(at as usize)) {
                let frame = kept.request.v2_frame(kept.seq, self.received, kept.id);
                let id = kept.id;
                self.note_acked();
                return Some((id, frame));
            }
        }
        None
    }

    /// Numbers call `id`'s request and writes its frame; keeps the request until the server
    /// has taken it. Returns the number and the frame.
    pub(super) fn number(&mut self, id: u32, request: Arc<OutRequest>) -> (u64, Vec<u8>) {
        self.last_seq += 1;
        let seq = self.last_seq;
        let frame = request.v2_frame(seq, self.received, id);
        self.kept.push_back(Numbered { seq, id, request });
        self.note_acked();
        (seq, frame)
    }

    /// An Ack frame if one is due (or the fresh session's first frame is owed).
    pub(super) fn ack_frame(&mut self) -> Option<Vec<u8>> {
        let due = (self.ack_now && self.received > self.acked) || self.first_frame_owed;
        self.ack_now = false;
        if !due {
            return None;
        }
        let mut frame = Vec::new();
        v2::write_client_ack(Encoding::Binary, &mut frame, self.received);
        self.note_acked();
        Some(frame)
    }

    /// Whatever goes out carries the received count: nothing is owed until more arrives.
    fn note_acked(&mut self) {
        self.acked = self.received;
        self.unacked_since = None;
        self.ack_now = false;
        self.first_frame_owed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(conn_id: u64) -> Identity {
        Identity { conn_id, epoch: 9, secret: [conn_id as u8; 16] }
    }

    fn request(seq: &mut Sequencing, id: u32) -> u64 {
        seq.number(id, Arc::new(OutRequest::new("x", vec![]))).0
    }

    fn decode(frame: &[u8]) -> v2::ClientFrame<'_> {
        v2::decode_client_frame(Encoding::Binary, frame).expect("a client frame")
    }

    #[test]
    fn requests_are_kept_until_the_server_takes_them_and_resent_above_its_count() {
        let mut seq = Sequencing::default();
        seq.start(identity(1), true);
        for id in 10..15 {
            request(&mut seq, id);
        }
        seq.server_acked(2).expect("two taken");
        assert_eq!(seq.kept(), 3);
        seq.begin_resume(identity(2));
        assert_eq!(seq.resumed(3, [7; 16]), Ok(2));
        let resent: Vec<(u32, u64)> = std::iter::from_fn(|| seq.next_resend())
            .map(|(id, frame)| match decode(&frame) {
                v2::ClientFrame::Request { seq, request, .. } => {
                    assert_eq!(request.id, id);
                    (id, seq)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(resent, [(13, 4), (14, 5)], "only those above the server's count, in order");
        assert_eq!(request(&mut seq, 20), 6, "numbering goes on");
        assert_eq!(seq.held.map(|held| held.secret), Some([7; 16]), "the new secret");
    }

    #[test]
    fn counts_that_do_not_add_up_are_refused() {
        let mut seq = Sequencing::default();
        seq.start(identity(1), false);
        request(&mut seq, 1);
        request(&mut seq, 2);
        assert!(seq.server_acked(3).is_err(), "more than was sent");
        seq.server_acked(2).expect("fine");
        seq.begin_resume(identity(2));
        assert!(seq.resumed(1, [0; 16]).is_err(), "less than it acknowledged");
        assert!(seq.resumed(3, [0; 16]).is_err(), "more than was sent");
    }

    #[test]
    fn a_fresh_session_owes_its_first_frame_and_an_ack_waits_for_its_delay_or_enough_frames() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut seq = Sequencing::default();
        seq.start(identity(1), true);
        assert!(matches!(decode(&seq.ack_frame().expect("owed")), v2::ClientFrame::Ack { ack: 0 }));
        assert!(seq.ack_frame().is_none());
        seq.on_sequenced(t0, 64);
        seq.on_sequenced(t0 + second / 2, 64);
        assert_eq!(seq.ack_deadline(second), Some(t0 + second), "from the first unacknowledged frame");
        seq.check_ack(t0 + second / 2, second);
        assert!(seq.ack_frame().is_none(), "not before its delay");
        seq.check_ack(t0 + second, second);
        assert!(matches!(decode(&seq.ack_frame().expect("due")), v2::ClientFrame::Ack { ack: 2 }));
        assert_eq!(seq.ack_deadline(second), None);
        for n in 0..64 {
            assert!(seq.ack_deadline(second).is_some() || n == 0);
            seq.on_sequenced(t0 + second, 64);
        }
        assert!(matches!(decode(&seq.ack_frame().expect("64 frames")), v2::ClientFrame::Ack { ack: 66 }));
    }
}
