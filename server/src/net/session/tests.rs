//! Sessions in simulated time: requests by number, answers held and replayed, resumes and why
//! they fail, grace and acks.

use bytes::Bytes;

use super::*;
use crate::bridge::DataOpcode;

const MS: Duration = Duration::from_millis(1);
const EPOCH: u64 = 77;

fn limits() -> SessionLimits {
    SessionLimits { grace: 120_000 * MS, replay_bytes: 1000, ack_interval: 1000 * MS }
}

fn conn(n: u32) -> ConnId {
    ConnId::new(n, n)
}

fn secret(b: u8) -> Secret {
    [b; SECRET_LEN]
}

fn answer(id: u32, len: usize) -> HeldFrame {
    HeldFrame { opcode: DataOpcode::Binary, bytes: Bytes::from(vec![id as u8; len]), answers: Some(id) }
}

fn push(len: usize) -> HeldFrame {
    HeldFrame { opcode: DataOpcode::Binary, bytes: Bytes::from(vec![0xee; len]), answers: None }
}

fn resume_of(c: ConnId, s: Secret, received: u64) -> ResumeRequest {
    ResumeRequest { conn: c, epoch: EPOCH, secret: s, received }
}

#[test]
fn requests_run_in_order_once_and_duplicates_are_told_apart() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let s = sessions.get_mut(conn(1)).expect("open");
    assert_eq!(s.take_request(1, 0, 10, t0), RequestVerdict::Run);
    assert_eq!(s.take_request(2, 0, 11, t0), RequestVerdict::Run);
    assert_eq!(s.take_request(4, 0, 13, t0), RequestVerdict::Malformed, "3 was skipped");
    assert_eq!(s.received(), 2, "a skipping request is not counted");
    // 10 answered and held; 11 still running.
    assert!(s.hold(answer(10, 3)));
    assert_eq!(s.take_request(1, 0, 10, t0), RequestVerdict::AnswerAgain);
    assert_eq!(s.answer_to(10).map(|f| f.bytes.len()), Some(3));
    assert_eq!(s.take_request(2, 0, 11, t0), RequestVerdict::AwaitAnswer);
    // The client acknowledges the answer to 10: a duplicate of 1 can no longer be judged.
    assert_eq!(s.take_request(3, 1, 12, t0), RequestVerdict::Run);
    assert_eq!(s.take_request(1, 1, 10, t0), RequestVerdict::Stale);
}

#[test]
fn the_ack_in_a_request_comes_first_so_a_reused_callback_id_is_not_a_duplicate() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let s = sessions.get_mut(conn(1)).expect("open");
    assert_eq!(s.take_request(1, 0, 5, t0), RequestVerdict::Run);
    assert!(s.hold(answer(5, 1)));
    // The client got the answer and reuses id 5 at once, acknowledging in the same request.
    assert_eq!(s.take_request(2, 1, 5, t0), RequestVerdict::Run);
    assert_eq!(s.take_request(3, 9, 6, t0), RequestVerdict::Malformed, "acknowledges more than was sent");
}

#[test]
fn a_resume_replays_what_the_client_missed_and_moves_the_session() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let s = sessions.get_mut(conn(1)).expect("open");
    assert_eq!(s.take_request(1, 0, 10, t0), RequestVerdict::Run);
    for frame in [push(1), answer(10, 2), push(3)] {
        assert!(s.hold(frame));
    }
    assert!(sessions.drop_link(conn(1), t0));
    assert_eq!(sessions.dropped_count(), 1);
    assert!(sessions.get_mut(conn(1)).expect("lives").hold(push(4)), "held while the link is down");
    // The client had received the first push only.
    let resumed = sessions.resume(resume_of(conn(1), secret(1), 1), 5, secret(2), true).expect("resumes");
    assert_eq!(resumed.stale_link, None);
    assert!(resumed.was_dropped);
    assert_eq!(resumed.received, 1);
    let lengths: Vec<usize> = resumed.replay.iter().map(|f| f.bytes.len()).collect();
    assert_eq!(lengths, [2, 3, 4]);
    let s = sessions.get(conn(1)).expect("lives");
    assert_eq!(s.link(), Some(5));
    assert_eq!(s.held_bytes(), 9 + 3 * 2, "frame 1 acknowledged by the resume (each frame with its header)");
}

#[test]
fn a_resume_that_beats_the_old_links_timeout_ends_that_link() {
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 3);
    let resumed = sessions.resume(resume_of(conn(1), secret(1), 0), 8, secret(2), true).expect("resumes");
    assert_eq!(resumed.stale_link, Some(3), "the half-open link is named, to be ended");
    assert!(!resumed.was_dropped, "the game never heard it drop");
    assert_eq!(sessions.get(conn(1)).and_then(Session::link), Some(8));
}

#[test]
fn each_failed_resume_has_its_reason_and_costs_the_session_nothing() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let s = sessions.get_mut(conn(1)).expect("open");
    assert!(s.hold(push(10)));
    sessions.drop_link(conn(1), t0);
    let wrong_epoch = ResumeRequest { epoch: EPOCH + 1, ..resume_of(conn(1), secret(1), 0) };
    let cases = [
        (wrong_epoch, resume_reason::RESTARTED),
        (resume_of(conn(2), secret(1), 0), resume_reason::UNKNOWN_SESSION),
        (resume_of(conn(1), secret(9), 0), resume_reason::BAD_SECRET),
        (resume_of(conn(1), secret(1), 2), resume_reason::BAD_COUNT),
    ];
    for (request, reason) in cases {
        let issued = request.conn == conn(1);
        assert_eq!(sessions.resume(request, 4, secret(3), issued).err(), Some(reason), "{request:?}");
    }
    // Untouched: its real owner still resumes.
    let ok = sessions.resume(resume_of(conn(1), secret(1), 0), 4, secret(3), true).expect("resumes");
    assert_eq!(ok.replay.len(), 1);
    // Until the client shows it read its Resumed, the secret it resumed with still serves (the
    // new link may have died first); once it has, a replay of that resume is superseded.
    assert!(sessions.resume(resume_of(conn(1), secret(1), 0), 6, secret(4), true).is_ok());
    sessions.get_mut(conn(1)).expect("lives").acknowledge(1).expect("the client read the new secret");
    for old in [secret(1), secret(3)] {
        assert_eq!(
            sessions.resume(resume_of(conn(1), old, 0), 7, secret(5), true).err(),
            Some(resume_reason::SUPERSEDED)
        );
    }
    assert_eq!(sessions.get(conn(1)).and_then(Session::link), Some(6));
    // An id given out once but whose session is gone has ended.
    sessions.end(conn(1));
    assert_eq!(
        sessions.resume(resume_of(conn(1), secret(4), 0), 6, secret(5), true).err(),
        Some(resume_reason::ENDED)
    );
}

#[test]
fn a_gap_in_the_replay_buffer_fails_the_resume_with_gap_lost() {
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let s = sessions.get_mut(conn(1)).expect("open");
    // With a link, the oldest frames go to keep within 1000 bytes: the link lives on.
    for _ in 0..3 {
        assert!(s.hold(push(400)));
    }
    assert_eq!(
        sessions.resume(resume_of(conn(1), secret(1), 0), 2, secret(2), true).err(),
        Some(resume_reason::GAP_LOST)
    );
}

#[test]
fn without_a_link_an_overflowing_replay_buffer_ends_the_session() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    sessions.drop_link(conn(1), t0);
    let s = sessions.get_mut(conn(1)).expect("open");
    assert!(s.hold(push(600)));
    assert!(!s.hold(push(600)), "the session must end");
}

#[test]
fn a_session_without_a_link_expires_at_its_grace_and_not_before() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    sessions.open(conn(2), secret(2), 1);
    assert!(sessions.drop_link(conn(1), t0));
    assert!(!sessions.drop_link(conn(1), t0), "once");
    assert!(!sessions.drop_link(conn(9), t0), "no such session");
    assert_eq!(sessions.expired(t0 + 119_999 * MS), Vec::<ConnId>::new());
    assert_eq!(sessions.expired(t0 + 120_000 * MS), [conn(1)], "only the dropped one");
    assert_eq!(sessions.dropped(), (1, 0));
    assert_eq!(sessions.dropped_count(), 1);
    assert_eq!(sessions.oldest_dropped(), Some(conn(1)));
    sessions.end(conn(1));
    assert_eq!((sessions.dropped_count(), sessions.oldest_dropped()), (0, None));
}

#[test]
fn an_ack_is_owed_after_the_interval_once_per_batch_of_requests() {
    let t0 = Instant::now();
    let mut sessions = Sessions::new(EPOCH, limits());
    sessions.open(conn(1), secret(1), 0);
    let l = limits();
    let s = sessions.get_mut(conn(1)).expect("open");
    assert_eq!(s.ack_due(t0 + 5000 * MS, &l), None, "nothing taken");
    assert_eq!(s.take_request(1, 0, 1, t0), RequestVerdict::Run);
    assert_eq!(s.take_request(2, 0, 2, t0 + 500 * MS), RequestVerdict::Run);
    assert_eq!(s.ack_due(t0 + 999 * MS, &l), None);
    assert_eq!(s.ack_due(t0 + 1000 * MS, &l), Some(2));
    assert_eq!(s.ack_due(t0 + 3000 * MS, &l), None, "told already");
}
