//! Version 2 sessions (PROTOCOL.md section 11), as pure state and decisions: no sockets, no
//! clock (`now` is passed in), no randomness (secrets are passed in).
//!
//! A session is what the game knows as a connection; a link is the WebSocket that carries it
//! for now. The reactor owns the links and asks this module what to do:
//! - a request arrives: [`Session::take_request`] says whether it runs, is a duplicate to answer
//!   again or to leave to the answer still coming, is too old to judge, or skips a number;
//! - a sequenced frame goes out: [`Session::hold`] keeps it in the [`ReplayBuffer`] until the
//!   client acknowledges it ([`Session::acknowledge`]);
//! - a Resume arrives: [`Sessions::resume`] checks it and says what to replay, or why not;
//! - the sweep: [`Sessions::expired`] lists the sessions whose grace has passed, and
//!   [`Session::ack_due`] whether an Ack is owed.

pub(crate) mod replay;

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use ticksock_protocol::resume_reason;

use self::replay::{Held, HeldFrame, ReplayBuffer, ReplayError};
use crate::ConnId;
use crate::bridge::Credentials;

pub(crate) use ticksock_protocol::{SECRET_LEN, Secret};

/// Secrets a session remembers after resumes replaced them, to tell a replayed or losing
/// resume (`superseded`) from a wrong secret (`bad_secret`).
const RETIRED_SECRETS: usize = 4;

/// The bounds of sessions (`Config::session_*`, `Config::ack_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    /// How long a session without a link waits for a resume.
    pub(crate) grace: Duration,
    /// Bytes of frames held for the client until it acknowledges them.
    pub(crate) replay_bytes: usize,
    /// How long requests taken may go unacknowledged before an Ack is sent on its own.
    pub(crate) ack_interval: Duration,
}

/// What to do with a request, by its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestVerdict {
    /// The next request: run it.
    Run,
    /// A duplicate whose answer is held: send that answer again.
    AnswerAgain,
    /// A duplicate of a request still running: its one answer will come.
    AwaitAnswer,
    /// A duplicate whose answer is gone: answer `stale_request`, do not run it.
    Stale,
    /// It skips a number, or acknowledges more than was sent: answer `bad_frame`, do not run
    /// or count it.
    Malformed,
}

/// One session.
#[derive(Debug)]
pub(crate) struct Session {
    secret: Secret,
    /// What resumes left behind: boxed, since most sessions never resume, and an idle
    /// session's size is the cost of every player (PROTOCOL.md 11, the idle cost).
    resumed: Option<Box<Secrets>>,
    /// The slab index of the link carrying it, or `None` while it has none.
    link: Option<usize>,
    /// Since when it has had no link.
    dropped_since: Option<Instant>,
    /// Requests taken: the last `seq` run.
    received: u64,
    /// Since when `received` has been ahead of what the client was last told (in an Ack or a
    /// Resumed).
    owed_since: Option<Instant>,
    /// Callback ids of requests taken and not answered yet.
    // A few at most (the game's deferred replies): a list, which costs nothing while empty.
    running: Vec<u32>,
    replay: ReplayBuffer,
    /// The game knows it: its client has sent a frame on one of its links. A session exists
    /// from its Welcome, so that a client whose link died before it sent anything can resume
    /// it; the game hears of it at its first frame, which may be that resume.
    announced: bool,
    /// What its first link offered at the upgrade (a ticket, a token, tick stamps), kept
    /// when that link ended before its first frame, for the game to hear of with the session
    /// when it resumes (see [`Session::keep_offered`]).
    offered: Option<Box<Credentials>>,
}

impl Session {
    fn new(secret: Secret, link: usize, limits: &SessionLimits) -> Self {
        Self {
            secret,
            resumed: None,
            link: Some(link),
            dropped_since: None,
            received: 0,
            owed_since: None,
            running: Vec::new(),
            replay: ReplayBuffer::new(limits.replay_bytes),
            announced: false,
            offered: None,
        }
    }

    /// Its current secret.
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The link carrying it, if it has one.
    pub(crate) fn link(&self) -> Option<usize> {
        self.link
    }

    /// Its received count: the last request `seq` taken.
    #[cfg(test)]
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Bytes of frames it holds for the client.
    pub(crate) fn held_bytes(&self) -> usize {
        self.replay.bytes()
    }

    /// Takes a request numbered `seq`, carrying the client's received count `ack` and
    /// callback id `id`, at `now`. The acknowledgement is applied first (11.6).
    pub(crate) fn take_request(&mut self, seq: u64, ack: u64, id: u32, now: Instant) -> RequestVerdict {
        self.confirm();
        if self.replay.acknowledge(ack).is_err() {
            return RequestVerdict::Malformed;
        }
        if seq == self.received + 1 {
            self.received = seq;
            self.running.push(id);
            self.owed_since.get_or_insert(now);
            RequestVerdict::Run
        } else if seq > self.received {
            RequestVerdict::Malformed
        } else if self.running.contains(&id) {
            RequestVerdict::AwaitAnswer
        } else if self.replay.answer_to(id).is_some() {
            RequestVerdict::AnswerAgain
        } else {
            RequestVerdict::Stale
        }
    }

    /// The held answer to callback id `id` (after [`RequestVerdict::AnswerAgain`]).
    pub(crate) fn answer_to(&self, id: u32) -> Option<&HeldFrame> {
        self.replay.answer_to(id)
    }

    /// The client's Ack: it has received `received` sequenced frames. Refused (and changes
    /// nothing) if that is more than was sent.
    pub(crate) fn acknowledge(&mut self, received: u64) -> Result<(), ReplayError> {
        self.confirm();
        self.replay.acknowledge(received)
    }

    /// Holds a sequenced frame being sent (or, without a link, kept for the resume). Returns
    /// false when the session must end: it has no link and its replay buffer overflowed.
    pub(crate) fn hold(&mut self, frame: HeldFrame) -> bool {
        if let Some(id) = frame.answers {
            if let Some(at) = self.running.iter().position(|&r| r == id) {
                self.running.swap_remove(at);
            }
            if self.running.is_empty() {
                // Let the allocation go: an idle session keeps nothing.
                self.running = Vec::new();
            }
        }
        match self.replay.push(frame) {
            Held::Kept => true,
            Held::DroppedOlder => self.link.is_some(),
        }
    }

    /// Whether an Ack is owed to the client at `now`; if so, it is counted as sent and its
    /// count returned.
    pub(crate) fn ack_due(&mut self, now: Instant, limits: &SessionLimits) -> Option<u64> {
        let since = self.owed_since?;
        if self.link.is_none() || now.saturating_duration_since(since) < limits.ack_interval {
            return None;
        }
        self.owed_since = None;
        Some(self.received)
    }

    /// Its link dropped at `now`: it waits for a resume.
    fn drop_link(&mut self, now: Instant) {
        self.link = None;
        self.dropped_since = Some(now);
    }

    /// Its client sent a frame on its link: it has read its last Resumed, and the secret that
    /// resume was made with serves no more.
    fn confirm(&mut self) {
        if let Some(secrets) = &mut self.resumed {
            secrets.unconfirmed = None;
        }
    }

    /// Whether the game knows it.
    pub(crate) fn is_announced(&self) -> bool {
        self.announced
    }

    /// The game is told of it now. Returns whether it was news.
    pub(crate) fn announce(&mut self) -> bool {
        !std::mem::replace(&mut self.announced, true)
    }

    /// Keeps what its first link offered, which ended before the game heard of the session:
    /// the game hears of it at a resume, with this.
    pub(crate) fn keep_offered(&mut self, offered: Box<Credentials>) {
        if !self.announced {
            self.offered = Some(offered);
        }
    }

    /// What its first link offered, if kept (see [`Session::keep_offered`]).
    pub(crate) fn take_offered(&mut self) -> Option<Box<Credentials>> {
        self.offered.take()
    }

    /// Whether it waits for a resume.
    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped_since.is_some()
    }
}

/// A resume that passed its checks: what to send on the new link.
#[derive(Debug)]
pub(crate) struct Resumed<'a> {
    /// The link that carried the session until now (a half-open one): end it, silently.
    pub(crate) stale_link: Option<usize>,
    /// It had dropped (the game was told): otherwise its link was still up as far as the
    /// server knew, and the game hears of the drop now, before the resume.
    pub(crate) was_dropped: bool,
    /// The server's received count, for the Resumed frame.
    pub(crate) received: u64,
    /// The frames to send again after the Resumed frame, in order.
    pub(crate) replay: Vec<&'a HeldFrame>,
}

/// Every session of this server run.
#[derive(Debug)]
pub(crate) struct Sessions {
    // Boxed: the table's free slots then cost a pointer each, not a whole session.
    by_conn: FxHashMap<ConnId, Box<Session>>,
    /// Sessions without a link (kept exact, so the count needs no scan).
    dropped: usize,
    epoch: u64,
    limits: SessionLimits,
}

impl Sessions {
    /// No sessions yet, in the server run `epoch`.
    pub(crate) fn new(epoch: u64, limits: SessionLimits) -> Self {
        Self { by_conn: FxHashMap::default(), dropped: 0, epoch, limits }
    }

    /// This server run's epoch, for the Welcome.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The limits.
    pub(crate) fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Starts the session of a new link at slab index `link`, at its Welcome (not yet
    /// announced to the game).
    pub(crate) fn open(&mut self, conn: ConnId, secret: Secret, link: usize) {
        self.by_conn.insert(conn, Box::new(Session::new(secret, link, &self.limits)));
    }

    /// The session named `conn`, if it lives.
    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.by_conn.get_mut(&conn).map(|s| &mut **s)
    }

    /// The session named `conn`, if it lives.
    pub(crate) fn get(&self, conn: ConnId) -> Option<&Session> {
        self.by_conn.get(&conn).map(|s| &**s)
    }

    /// Ends a session: it can no longer be resumed.
    pub(crate) fn end(&mut self, conn: ConnId) -> Option<Box<Session>> {
        let session = self.by_conn.remove(&conn)?;
        self.dropped -= usize::from(session.is_dropped());
        Some(session)
    }

    /// Session `conn` lost its link at `now`: it waits for a resume. False if it does not
    /// live (or had already dropped).
    pub(crate) fn drop_link(&mut self, conn: ConnId, now: Instant) -> bool {
        match self.by_conn.get_mut(&conn) {
            Some(session) if !session.is_dropped() => {
                session.drop_link(now);
                self.dropped += 1;
                true
            }
            _ => false,
        }
    }

    /// How many sessions wait for a resume.
    pub(crate) fn dropped_count(&self) -> usize {
        self.dropped
    }

    /// The session that has waited longest for a resume, if any: the first to go when too many
    /// wait.
    pub(crate) fn oldest_dropped(&self) -> Option<ConnId> {
        self.by_conn
            .iter()
            .filter_map(|(conn, s)| s.dropped_since.map(|since| (since, *conn)))
            .min()
            .map(|(_, conn)| conn)
    }

    /// Sessions that live now.
    pub(crate) fn len(&self) -> usize {
        self.by_conn.len()
    }

    /// Sessions without a link, and the bytes they hold.
    pub(crate) fn dropped(&self) -> (usize, usize) {
        self.by_conn
            .values()
            .filter(|s| s.link.is_none())
            .fold((0, 0), |(n, bytes), s| (n + 1, bytes + s.held_bytes()))
    }

    /// Checks a Resume of session `conn` (of run `epoch`, with `secret`, the client having
    /// received `received` frames) arriving on the link at slab index `link`. On success the
    /// session moves to that link, its secret becomes `new_secret`, and the answer says what to
    /// send; on failure, the reason (11.5). `issued` says whether `conn` was ever given to a
    /// connection in this run (to tell `ended` from `unknown_session`).
    pub(crate) fn resume(
        &mut self,
        request: ResumeRequest,
        link: usize,
        new_secret: Secret,
        issued: bool,
    ) -> Result<Resumed<'_>, u16> {
        if request.epoch != self.epoch {
            return Err(resume_reason::RESTARTED);
        }
        let Some(session) = self.by_conn.get_mut(&request.conn).map(|s| &mut **s) else {
            return Err(if issued { resume_reason::ENDED } else { resume_reason::UNKNOWN_SESSION });
        };
        let current = same_secret(&request.secret, &session.secret);
        let secrets = session.resumed.get_or_insert_with(Box::default);
        let unread = secrets.unconfirmed.is_some_and(|previous| same_secret(&request.secret, &previous));
        if !current && !unread {
            let retired = secrets.retired.iter().any(|old| same_secret(&request.secret, old));
            return Err(if retired { resume_reason::SUPERSEDED } else { resume_reason::BAD_SECRET });
        }
        match session.replay.after(request.received) {
            Ok(_) => {}
            Err(ReplayError::AheadOfSent) => return Err(resume_reason::BAD_COUNT),
            Err(ReplayError::GapLost) => {
                // Nothing can make this session whole again: end it (the caller tells the game).
                return Err(resume_reason::GAP_LOST);
            }
        }
        if secrets.retired.len() == RETIRED_SECRETS {
            secrets.retired.remove(0);
        }
        let replaced = std::mem::replace(&mut session.secret, new_secret);
        secrets.retired.push(replaced);
        let was_dropped = session.dropped_since.is_some();
        // A resume with the secret the client still holds (its last Resumed unread) keeps
        // that one valid until the client shows it read the new one.
        secrets.unconfirmed = Some(if unread { secrets.unconfirmed.unwrap_or(replaced) } else { replaced });
        let stale_link = session.link.replace(link);
        session.dropped_since = None;
        self.dropped -= usize::from(was_dropped);
        session.owed_since = None;
        // Cannot fail: checked above, and nothing changed the buffer since.
        let _ = session.replay.acknowledge(request.received);
        let replay = session.replay.after(request.received).map(Iterator::collect).unwrap_or_default();
        Ok(Resumed { stale_link, was_dropped, received: session.received, replay })
    }

    /// The sessions without a link whose grace has passed at `now`.
    pub(crate) fn expired(&self, now: Instant) -> Vec<ConnId> {
        self.by_conn
            .iter()
            .filter(|(_, s)| {
                s.dropped_since.is_some_and(|since| now.saturating_duration_since(since) >= self.limits.grace)
            })
            .map(|(conn, _)| *conn)
            .collect()
    }

    /// Every session that has a link, for the sweep's acks.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut Session)> {
        self.by_conn.iter_mut().map(|(conn, s)| (*conn, &mut **s))
    }
}

/// The secrets resumes replaced.
#[derive(Debug, Default)]
struct Secrets {
    /// Secrets replaced by resumes, oldest first, at most [`RETIRED_SECRETS`].
    retired: Vec<Secret>,
    /// The secret the last resume replaced, while its client has sent nothing on its new link:
    /// that link may have died before the client read its Resumed, and a resume with the
    /// secret it still holds must not lose the session.
    unconfirmed: Option<Secret>,
}

/// A Resume frame's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResumeRequest {
    /// The session's name (its first link's `conn_id`).
    pub(crate) conn: ConnId,
    /// The server run it belongs to.
    pub(crate) epoch: u64,
    /// Its secret, as the client holds it.
    pub(crate) secret: Secret,
    /// Sequenced frames the client has received.
    pub(crate) received: u64,
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
