//! Making calls, the table of calls waiting for their outcome, and delivering each outcome
//! exactly once (to the call's callback, or as an [`Event::Outcome`]).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use ticksock_protocol::{BodyError, MAX_ROUTE_LEN};

use super::request::{OutRequest, V2_EXTRA_BYTES};
use super::{CallId, Event, Outcome, Session, State};
#[cfg(doc)]
use crate::Config;
use crate::Error;

/// A callback that receives a call's outcome. It gets the session, so it can make the next call.
pub type Callback = Box<dyn FnOnce(&mut Session, Outcome) + Send>;

/// Per-call settings for [`Session::call_with`] and [`Session::call_raw`].
#[derive(Default)]
pub struct CallOptions {
    /// This call's timeout; `None` takes [`Config::call_timeout`]. `Duration::MAX` (or any
    /// timeout too long for an `Instant` to count to) waits forever.
    pub timeout: Option<Duration>,
    /// Where the outcome goes; `None` makes it an [`Event::Outcome`].
    pub callback: Option<Callback>,
}

impl CallOptions {
    /// Sets the timeout (`Duration::MAX`: wait forever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the callback.
    pub fn then(mut self, callback: impl FnOnce(&mut Session, Outcome) + Send + 'static) -> Self {
        self.callback = Some(Box::new(callback));
        self
    }
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

/// One call waiting for its outcome.
pub(super) struct Pending {
    /// `None`: the call waits forever.
    pub(super) deadline: Option<Instant>,
    made_at: Instant,
    /// When the frame was handed to the transport; `None` while it waits in the queue.
    pub(super) sent_at: Option<Instant>,
    callback: Option<Callback>,
    /// The request, kept from when it is sent until the call ends, to make it again on the
    /// node a redirect names (shared with version 2's copy kept for a resume: no second copy).
    pub(super) request: Option<Arc<OutRequest>>,
    /// Redirects followed so far (at most [`MAX_REDIRECTS`](super::MAX_REDIRECTS)).
    pub(super) redirects: u8,
}

/// The calls waiting for their outcome (queued or sent), by id, and the next id to try.
pub(super) struct CallTable {
    pending: HashMap<u32, Pending, BuildHasherDefault<IdHasher>>,
    next_id: u32,
}

impl Default for CallTable {
    fn default() -> Self {
        Self { pending: HashMap::default(), next_id: 1 }
    }
}

impl CallTable {
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn get(&self, id: u32) -> Option<&Pending> {
        self.pending.get(&id)
    }

    pub(super) fn remove(&mut self, id: u32) -> Option<Pending> {
        self.pending.remove(&id)
    }

    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut Pending> {
        self.pending.get_mut(&id)
    }

    /// Whether `at` is still the deadline of a call waiting for its outcome (deadlines of
    /// calls that ended are dropped lazily).
    pub(super) fn has_deadline(&self, at: Instant, id: u32) -> bool {
        self.pending.get(&id).is_some_and(|p| p.deadline == Some(at))
    }

    /// Notes that the call's request frame was handed to the transport, keeping the request.
    pub(super) fn mark_sent(&mut self, id: u32, now: Instant, request: Arc<OutRequest>) {
        if let Some(entry) = self.pending.get_mut(&id) {
            entry.sent_at = Some(now);
            entry.request = Some(request);
        }
    }

    /// The calls whose request was sent, oldest first.
    pub(super) fn sent_oldest_first(&self) -> Vec<u32> {
        let mut sent: Vec<(Instant, u32)> =
            self.pending.iter().filter_map(|(&id, p)| p.sent_at.map(|at| (at, id))).collect();
        sent.sort_unstable();
        sent.into_iter().map(|(_, id)| id).collect()
    }

    /// The next id not in use. Terminates: fewer than `u32::MAX` calls can be pending
    /// (`max_pending` is a `usize` but the map would exhaust memory long before).
    fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Session {
    /// Calls `route` with `request` (bincode-encoded), with the default timeout. The outcome
    /// comes as an [`Event::Outcome`] with the returned id.
    ///
    /// Fails at once (and nothing is sent) with [`Error::QueueFull`] when offline and the queue
    /// is full, [`Error::TooLarge`], [`Error::RouteTooLong`], [`Error::TooManyPending`],
    /// [`Error::Encode`] or [`Error::Closed`].
    pub fn call<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default(), now)
    }

    /// Calls `route`; `then` receives the outcome (and the session, to make the next call).
    pub fn call_then<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        now: Instant,
        then: impl FnOnce(&mut Session, Outcome) + Send + 'static,
    ) -> Result<CallId, Error> {
        self.call_with(route, request, CallOptions::default().then(then), now)
    }

    /// Calls `route` with per-call options.
    pub fn call_with<Req: Serialize + ?Sized>(
        &mut self,
        route: &str,
        request: &Req,
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.submit(route, ticksock_protocol::encode_body(request), options, now)
    }

    /// Calls `route` with a body that is already encoded (for raw routes such as `echo`).
    pub fn call_raw(
        &mut self,
        route: &str,
        body: &[u8],
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.submit(route, Ok(body.to_vec()), options, now)
    }

    fn submit(
        &mut self,
        route: &str,
        body: Result<Vec<u8>, BodyError>,
        options: CallOptions,
        now: Instant,
    ) -> Result<CallId, Error> {
        self.now = now;
        if self.state == State::Closed {
            return Err(Error::Closed);
        }
        if self.calls.len() >= self.config.max_pending {
            return Err(Error::TooManyPending { max: self.config.max_pending });
        }
        // The server answers a longer name `bad_frame` without taking the request, which on
        // version 2 would leave a gap in the numbers that every later request falls into.
        if route.len() > MAX_ROUTE_LEN {
            return Err(Error::RouteTooLong { len: route.len(), max: MAX_ROUTE_LEN });
        }
        let request = OutRequest::new(route, body.map_err(Error::Encode)?);
        let id = self.calls.allocate_id();
        let bytes = request.v1_len(id);
        // Whether the server will speak version 2 is known only at the welcome: count its
        // larger header whenever it is offered.
        let on_the_wire = if self.config.versions.offers(ticksock_protocol::Version::V2) {
            bytes + V2_EXTRA_BYTES
        } else {
            bytes
        };
        if on_the_wire > self.config.max_frame_bytes {
            return Err(Error::TooLarge { bytes: on_the_wire, max: self.config.max_frame_bytes });
        }
        if !matches!(self.state, State::Up { .. })
            && (self.outbox.len() >= self.config.max_queued_calls
                || self.outbox.bytes() + bytes > self.config.max_queued_bytes)
        {
            return Err(Error::QueueFull {
                calls: self.outbox.len(),
                bytes: self.outbox.bytes(),
                max_calls: self.config.max_queued_calls,
                max_bytes: self.config.max_queued_bytes,
                needed: bytes,
            });
        }
        // A timeout too long to count to (`Duration::MAX`) means no deadline: wait forever.
        let deadline = now.checked_add(options.timeout.unwrap_or(self.config.call_timeout));
        self.calls.pending.insert(
            id,
            Pending {
                deadline,
                made_at: now,
                sent_at: None,
                callback: options.callback,
                request: None,
                redirects: 0,
            },
        );
        if let Some(deadline) = deadline {
            self.deadlines.insert(deadline, id);
        }
        self.outbox.push_back(id, request, bytes);
        self.stats.calls += 1;
        Ok(CallId(id))
    }

    /// Sets the id the next call will try first. Ids are opaque; this exists to test the
    /// wraparound at `u32::MAX` without making four billion calls.
    pub fn set_next_call_id(&mut self, id: u32) {
        self.calls.next_id = id;
    }

    /// Whether the call still waits for its outcome.
    pub fn is_pending(&self, id: CallId) -> bool {
        self.calls.get(id.0).is_some()
    }

    /// Withdraws call `id` if it is still in the offline queue, not yet handed to the
    /// transport: it is not sent, and no outcome follows. Returns whether it was withdrawn; a
    /// call already sent cannot be (its answer may be on the way) and goes on as before.
    ///
    /// For a caller that queued a call for a link that is not coming: a load generator whose
    /// redirect's new link closed before the call sent again on it went out, say.
    pub fn withdraw_queued(&mut self, id: CallId) -> bool {
        if !self.outbox.remove(id.0) {
            return false;
        }
        if let Some(entry) = self.calls.remove(id.0)
            && let Some(deadline) = entry.deadline
        {
            self.deadlines.remove(deadline, id.0);
            let calls = &self.calls;
            self.deadlines.prune(|at, id| calls.has_deadline(at, id));
        }
        true
    }

    /// Calls waiting for their outcome (queued or sent).
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls waiting in the offline queue (not yet handed to the transport).
    pub fn queued_calls(&self) -> usize {
        self.outbox.len()
    }

    /// Bytes waiting in the offline queue.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// The server answered call `id`. An answer to a call that is not waiting for one (it
    /// timed out, was never sent, or was answered already: a duplicate) is counted and dropped.
    pub(super) fn answer(&mut self, id: u32, now: Instant, outcome: impl FnOnce() -> Outcome) {
        // Any answer proves a redirect's ticket was taken: a refused one gets no request handled.
        self.redirect.proven();
        let awaited = self.calls.get(id).is_some_and(|p| p.sent_at.is_some());
        if !awaited {
            self.stats.late_answers += 1;
            return;
        }
        self.end_call(id, outcome(), now);
    }

    /// Fails every call already sent on the current link with [`Outcome::Disconnected`],
    /// oldest first (their server session is gone). Calls waiting on the old link of a redirect
    /// are not the current link's: they end with it.
    pub(super) fn fail_sent(&mut self, now: Instant) {
        for id in self.calls.sent_oldest_first() {
            if !self.redirect.on_old_link(id) {
                self.end_call(id, Outcome::Disconnected, now);
            }
        }
    }

    /// Fails every call still in the offline queue with [`Outcome::Closed`], in call order.
    pub(super) fn fail_queued(&mut self, now: Instant) {
        while let Some((id, _frame)) = self.outbox.pop_oldest() {
            self.end_call(id, Outcome::Closed, now);
        }
    }

    /// Ends call `id` (if it still waits) with `outcome`: its entry and deadline go, then the
    /// outcome is delivered.
    pub(super) fn end_call(&mut self, id: u32, outcome: Outcome, now: Instant) {
        if let Some(entry) = self.calls.remove(id) {
            if let Some(deadline) = entry.deadline {
                self.deadlines.remove(deadline, id);
            }
            let calls = &self.calls;
            self.deadlines.prune(|at, id| calls.has_deadline(at, id));
            self.finish(id, entry, outcome, now);
        }
    }

    /// Delivers a call's outcome, its entry already removed: to its callback, or as an
    /// [`Event::Outcome`]. Counts it.
    pub(super) fn finish(&mut self, id: u32, entry: Pending, outcome: Outcome, now: Instant) {
        match &outcome {
            Outcome::Reply(_) | Outcome::TickReply { .. } => self.stats.replies += 1,
            Outcome::Error { .. } | Outcome::AnswerLost | Outcome::Redirect(_) => self.stats.errors += 1,
            Outcome::Timeout => self.stats.timeouts += 1,
            Outcome::Disconnected => self.stats.disconnected += 1,
            Outcome::Closed => self.stats.closed += 1,
        }
        match entry.callback {
            Some(callback) => callback(self, outcome),
            None => self.events.push_back(Event::Outcome {
                id: CallId(id),
                outcome,
                elapsed: now.saturating_duration_since(entry.made_at),
                rtt: entry.sent_at.map(|sent| now.saturating_duration_since(sent)),
            }),
        }
    }
}

/// A hasher for callback ids: one multiply (Fibonacci hashing), which spreads sequential ids
/// over the whole table. Ids are chosen by this side, so there is nothing to flood.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
