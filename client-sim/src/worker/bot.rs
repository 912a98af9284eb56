//! One bot's I/O, the same in every scenario: its [`Session`] over its own non-blocking
//! [`Connection`], connected and reconnected as the session says, its events counted, and
//! what they mean left to the scenario's [`Script`].
//!
//! A call made with [`Bot::call_resendable`] follows redirects (PROTOCOL.md 12.2) here,
//! unseen by the script: on Error `redirect` the bot opens a new session on the message's URL,
//! sends the call again once that is welcomed (without logging in: the ticket does), closes
//! the old link with 1000, and hands the script the answer there under the call's first id.
//! A redirect that fails hands the script the failure, and sends the bot back to its own URL.
//!
//! With a link conditioner (`--latency-ms` ...; `worker::conditioner`) the frames go through
//! it both ways: the session's frames are held before they are written, the server's after
//! they are read, and the worker's timers wake the bot when some are due ([`Bot::link_due`]).
//! Without one, nothing is queued: frames go straight between the session and the socket.
//!
//! Over 600 lines: one bot's I/O and session life, redirects included, is one state machine;
//! what a redirect is (the URL check, the limit) is in `worker::redirect`, timers in
//! `worker::timers`, and push accounting in `worker::pushes`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Interest, Registry, Token};
use ticksock_client::backoff::XorShift;
use ticksock_client::connection::{ask_tick_stamps, upgrade_request};
use ticksock_client::{CallId, CallOptions, Config, Connection, Event, Outcome, Progress, Session, Versions};
use ticksock_protocol::{Version, error_code};

use super::conditioner::{Conditioner, Shape};
use super::pushes::{PushChecks, Track};
use super::redirect::{Following, RedirectFailure, Resendable, Target, check_redirect};
use super::timers::{TimerEntry, Timers, Wake};
use crate::Options;
use crate::scenario::Script;
use crate::scenario::sign_in::Account;
use crate::tally::Tally;

/// The worker's state apart from the bots, so that a bot and it can be borrowed together.
/// `T` is the scenario's timer kind.
pub(crate) struct Cx<T> {
    pub opts: Arc<Options>,
    registry: Registry,
    /// When the run started: the simulator's own clock, shared by every worker.
    pub run_start: Instant,
    /// What the worker measured so far.
    pub tally: Tally,
    /// Round trips since the last publish, for the live p99.
    pub rtt_delta: Histogram<u64>,
    /// Bots connected now.
    pub connected_now: u64,
    /// The steady window.
    steady: (Instant, Instant),
    timers: Timers<Wake<T>>,
    /// The link conditioner's shape, when the options ask for one (else frames go straight
    /// between session and socket).
    link_shape: Option<Shape>,
    /// The latest connection error since the last publish, and when.
    pub last_connect_error: Option<(Instant, String)>,
}

impl<T: Ord> Cx<T> {
    /// A worker's context: its sockets register with `registry`, its timers count from `start`.
    pub(crate) fn new(
        opts: Arc<Options>,
        registry: Registry,
        start: Instant,
        steady: (Instant, Instant),
    ) -> Self {
        Self {
            link_shape: Shape::from_options(&opts),
            opts,
            registry,
            run_start: start,
            tally: Tally::default(),
            rtt_delta: crate::tally::histogram(),
            connected_now: 0,
            steady,
            timers: Timers::new(start),
            last_connect_error: None,
        }
    }

    /// When the steady window starts (the last bot has started).
    pub(crate) fn steady_start(&self) -> Instant {
        self.steady.0
    }

    /// Whether `now` is before the end of the steady window (`--faults` kills only then).
    pub(crate) fn in_window(&self, now: Instant) -> bool {
        now < self.steady.1
    }

    /// The timers (the event loop takes the due ones).
    pub(crate) fn timers(&mut self) -> &mut Timers<Wake<T>> {
        &mut self.timers
    }

    /// Takes a socket out of the event loop (a scenario that keeps a socket the session no
    /// longer runs). Deregistering a socket that is not registered only fails, harmlessly.
    pub(crate) fn deregister(&self, tcp: &mut mio::net::TcpStream) {
        let _ = self.registry.deregister(tcp);
    }

    /// A connection attempt failed, or a connection errored (`None`: closed before the welcome).
    pub(crate) fn connect_failed(&mut self, now: Instant, error: Option<ticksock_client::Error>) {
        let message = error.map_or_else(|| "closed before the welcome".to_owned(), |e| e.to_string());
        self.tally.note_connect_errors(&message, 1);
        self.last_connect_error = Some((now, message));
    }
}

/// A bot: the I/O every scenario shares, and the scenario's own state of it (`state`).
pub(crate) struct Bot<S: Script> {
    /// Its global index (names, rooms and random seeds derive from it).
    pub index: u32,
    /// Its index in its worker (its mio token).
    pub slot: usize,
    pub session: Session,
    pub conn: Option<Connection>,
    /// Bumped whenever the bot's timers must be forgotten (a new connection).
    pub generation: u32,
    /// Welcomed at least once.
    ever_connected: bool,
    /// Welcomed on the current connection (counted in [`Cx::connected_now`]).
    up: bool,
    /// `session.stats().connections` when the current connection was opened.
    connections_at_open: u64,
    pub track: Track,
    pub rng: XorShift,
    /// Requests sent by the bot's earlier sessions.
    sent_before: u64,
    /// When the current session was made.
    pub session_started: Instant,
    /// While set, the bot stays offline: its session does not connect (the scenario holds it
    /// offline for an outage, and lets go).
    pub held_offline: bool,
    /// Where the bot is in its scenario.
    pub state: S::BotState,
    /// `--accounts guest`: its account, kept for the whole run (every session logs in to it).
    pub account: Account,
    /// The server it connects to now (its own, or where a redirect sent it).
    target: Target,
    /// Its own server: `--url` number `index % n`.
    home: Target,
    /// Calls in flight that follow a redirect if they get one.
    resendable: Vec<(CallId, Resendable)>,
    /// A redirect being followed.
    following: Option<Following>,
    /// The current connection's link conditioner (`--latency-ms` ...); `None` without one.
    link: Option<Box<Conditioner>>,
}

impl<S: Script> Bot<S> {
    pub(crate) fn new(index: u32, slot: usize, config: Config, home: Target, now: Instant) -> Self {
        Self {
            target: home.clone(),
            home,
            resendable: Vec::new(),
            following: None,
            link: None,
            index,
            slot,
            session: Session::new(config, now),
            conn: None,
            generation: 0,
            ever_connected: false,
            up: false,
            connections_at_open: 0,
            track: Track::default(),
            rng: XorShift::new(u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151),
            sent_before: 0,
            session_started: now,
            held_offline: false,
            state: S::BotState::default(),
            account: Account::default(),
        }
    }

    /// Requests sent, all sessions.
    pub(crate) fn sent(&self) -> u64 {
        self.sent_before + self.session.stats().sent
    }

    /// Requests sent again after resumes (version 2), this session. (The scenario that resumes
    /// keeps one session per bot.)
    pub(crate) fn resent(&self) -> u64 {
        self.session.stats().resent
    }

    /// Starts over with a new session of the same settings (its connection is gone).
    pub(crate) fn new_session(&mut self, now: Instant) {
        self.sent_before += self.session.stats().sent;
        let config = self.session.config().clone();
        self.session = Session::new(config, now);
        self.session_started = now;
        self.track = Track::default();
    }

    /// Moves everything along: connect if due, read, let the bot react, write.
    pub(crate) fn drive(&mut self, script: &S, now: Instant, readable: bool, cx: &mut Cx<S::Timer>) {
        if script.takes_over(self, now, readable, cx) {
            return;
        }
        if self.conn.is_none() {
            if self.session.poll_timeout().is_some_and(|at| at <= now) {
                self.session.handle_timeout(now);
            }
            while self.session.poll_link().is_some() {}
            if !self.held_offline && self.session.poll_connect(now) {
                self.open(script, now, cx);
            }
        }
        let checks = PushChecks { validate: cx.opts.validate_pushes, exact: cx.opts.faults };
        let run_start = cx.run_start;
        let Bot { conn, session, track, state, link, .. } = self;
        let tally = &mut cx.tally;
        let progress = conn.as_mut().and_then(|c| {
            if readable {
                c.mark_readable();
            }
            let mut sink = |topic: &str, body: &[u8], tally: &mut Tally| {
                script.on_push(state, topic, body, now, run_start, tally);
                track.on_push(topic, body, now, checks, tally)
            };
            let Some(link) = link.as_deref_mut() else {
                return Some(c.receive(session, now, |topic, body| sink(topic, body, tally)));
            };
            // A full conditioner leaves the bytes in the socket, as a full TCP window would
            // (the session's timers still run, as reading would have run them).
            let progress = if link.takes_inbound() {
                Some(c.receive_frames(session, now, |frame| {
                    let more = link.hold_inbound(now, frame);
                    tally.link.in_paused += u64::from(!more);
                    more
                }))
            } else {
                if session.poll_timeout().is_some_and(|at| at <= now) {
                    session.handle_timeout(now);
                }
                None
            };
            let version = session.version();
            while let Some((frame, held)) = link.release_inbound(now, version) {
                tally.link.frame_in.saturating_record(crate::tally::micros(held));
                session.handle_frame_with(&frame, now, |topic, body| sink(topic, body, tally));
            }
            progress
        });
        if let Some(Progress::Finished(error)) = progress {
            self.drop_conn(script, now, error, cx);
        }
        self.react(script, now, cx);
        self.flush(script, now, cx);
    }

    fn open(&mut self, script: &S, now: Instant, cx: &mut Cx<S::Timer>) {
        cx.tally.counters.connect_attempts += 1;
        self.connections_at_open = self.session.stats().connections;
        let ws_config = self.session.config().websocket_config();
        let opened =
            upgrade_request(&self.target.url, self.session.config().versions).and_then(|mut request| {
                if self.session.config().tick_stamps {
                    ask_tick_stamps(&mut request)?;
                }
                let mut conn = Connection::open(self.target.addr, request, ws_config, true)?;
                if let Some(tcp) = conn.tcp_mut() {
                    cx.registry.register(tcp, Token(self.slot), Interest::READABLE | Interest::WRITABLE)?;
                }
                Ok(conn)
            });
        match opened {
            Ok(conn) => {
                self.conn = Some(conn);
                // A new link starts empty: what the last one held is lost with it.
                let seed =
                    u64::from(self.index).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.connections_at_open;
                self.link = cx.link_shape.map(|shape| Box::new(Conditioner::new(shape, seed, now)));
            }
            Err(e) => {
                cx.tally.counters.connect_failures += 1;
                cx.connect_failed(now, Some(e));
                self.session.handle_disconnect(now);
                self.redirect_failed_before_resend(script, now, cx);
                script.on_socket_closed(self, false, now, cx);
            }
        }
    }

    fn drop_conn(
        &mut self,
        script: &S,
        now: Instant,
        error: Option<ticksock_client::Error>,
        cx: &mut Cx<S::Timer>,
    ) {
        // Dropping the connection closes the socket, which takes it out of the poll; what its
        // conditioner held is lost with it.
        self.conn = None;
        self.link = None;
        let welcomed = self.session.stats().connections > self.connections_at_open;
        if welcomed {
            cx.tally.counters.disconnects += 1;
        } else {
            cx.tally.counters.connect_failures += 1;
            cx.connect_failed(now, error);
        }
        // Calls in flight fail (the caller's `react` counts them).
        self.session.handle_disconnect(now);
        // A redirect's link that ends with the call sent again but still queued in the
        // session (the close came before the bot wrote it): it never went out, and the
        // session would carry it to its next link, to the same node and the same refusal,
        // until it timed out. Withdrawn, it is a redirect that failed before the call went
        // again, and the bot's next link goes home.
        if let Some(id) = self.following.as_ref().and_then(|f| f.resent)
            && self.session.withdraw_queued(id)
            && let Some(following) = self.following.as_mut()
        {
            following.resent = None;
        }
        // A redirect's link that ends before the call went again: before its welcome, or
        // with the welcome and the close read together (a refused ticket's 4002 close).
        self.redirect_failed_before_resend(script, now, cx);
        script.on_socket_closed(self, welcomed, now, cx);
    }

    /// Sends what the session has to send (through the link conditioner, if any: what is due
    /// now); a connection that fails meanwhile is dropped.
    pub(crate) fn flush(&mut self, script: &S, now: Instant, cx: &mut Cx<S::Timer>) {
        let Some(conn) = self.conn.as_mut() else { return };
        let progress = match self.link.as_deref_mut() {
            None => conn.transmit(&mut self.session),
            Some(link) => {
                let session = &mut self.session;
                while link.takes_outbound() {
                    let Some(frame) = session.poll_transmit() else { break };
                    link.hold_outbound(now, frame);
                }
                cx.tally.link.out_paused += u64::from(!link.takes_outbound());
                let (version, tally) = (session.version(), &mut cx.tally.link);
                conn.transmit_frames(session, || {
                    let (frame, held) = link.release_outbound(now, version)?;
                    tally.frame_out.saturating_record(crate::tally::micros(held));
                    Some(frame)
                })
            }
        };
        if let Progress::Finished(error) = progress {
            self.drop_conn(script, now, error, cx);
            self.react(script, now, cx);
        }
        if let Some(at) = self.link.as_mut().and_then(|link| link.wake_to_arm()) {
            cx.timers.schedule(TimerEntry {
                at,
                bot: self.slot,
                generation: self.generation,
                timer: Wake::Link,
            });
        }
    }

    /// The link conditioner's wake: frames held for this bot may be due. Moves everything
    /// along as a readable socket would (the frames due in both directions, and the socket
    /// read again if the conditioner had stopped reading it).
    pub(crate) fn link_due(&mut self, script: &S, now: Instant, cx: &mut Cx<S::Timer>) {
        let Some(link) = self.link.as_mut() else { return };
        link.woke(now);
        if self.conn.is_some() {
            self.drive(script, now, false, cx);
        }
    }

    /// Handles the session's events: counts them, and hands what they mean to the script.
    pub(crate) fn react(&mut self, script: &S, now: Instant, cx: &mut Cx<S::Timer>) {
        while let Some(event) = self.session.poll_event() {
            let c = &mut cx.tally.counters;
            match event {
                Event::Connected { tick_hz, .. } => {
                    c.connections += 1;
                    if self.following.as_ref().is_some_and(|f| f.resent.is_none())
                        && !self.session.is_connected()
                    {
                        // A redirect's new link whose welcome and close (a refused ticket's
                        // 4002) were read together, the close handled already: the link is
                        // gone, as when the socket closed before this event. Sent now, the
                        // call would wait, queued, for a link that is not coming.
                        self.redirect_failed_before_resend(script, now, cx);
                    }
                    let c = &mut cx.tally.counters;
                    if self.following.as_ref().is_some_and(|f| f.resent.is_none()) {
                        // A redirect's new link: no login (the ticket did it), the call again.
                        self.mark_up(cx);
                        cx.tally.tick_hz = tick_hz;
                        self.generation = self.generation.wrapping_add(1);
                        self.track.new_connection();
                        self.resend(now, cx);
                        continue;
                    }
                    if self.ever_connected {
                        c.reconnects += 1;
                    } else {
                        self.ever_connected = true;
                        c.bots_connected += 1;
                    }
                    self.mark_up(cx);
                    cx.tally.tick_hz = tick_hz;
                    self.generation = self.generation.wrapping_add(1);
                    self.track.new_connection();
                    script.on_connected(self, now, cx);
                }
                Event::Disconnected => {
                    self.mark_down(cx);
                    script.on_offline(self);
                }
                Event::Stopped { .. } => {
                    c.gave_up += 1;
                    script.on_offline(self);
                }
                Event::Outcome { id, outcome, rtt, .. } => {
                    let held = self.link.as_mut().map(|link| link.settle(id.0));
                    let answer = Answer { rtt, held };
                    let Some((id, outcome)) = self.redirected(id, outcome, answer, script, now, cx) else {
                        continue;
                    };
                    let expected = script.is_expected_failure(self, id, &outcome);
                    self.count_outcome(&outcome, expected, answer, now, cx);
                    script.on_outcome(self, id, outcome, now, cx);
                }
                Event::BadPush { .. } => c.bad_pushes += 1,
                // The server's count of events it dropped for a bot that read too slowly
                // (PROTOCOL.md 7.3): the bots read as fast as they can, so it does not come.
                Event::EventsDropped { .. } => {}
                Event::ProtocolError { .. } => c.protocol_errors += 1,
                // Version 2 (`--faults`): the session outlives its link.
                Event::LinkDropped => {
                    self.mark_down(cx);
                    script.on_link_dropped(self, now, cx);
                }
                Event::Resumed { .. } => {
                    self.mark_up(cx);
                    script.on_resumed(self, now, cx);
                }
                Event::SessionEnded { reason } => script.on_session_ended(self, reason, now, cx),
                // The simulator's servers are single nodes: nothing redirects its bots.
                Event::Reconnecting { .. } | Event::Push { .. } | Event::Redirected { .. } => {}
                // Bots offer no token at the upgrade: a refusal can only be a server's bug.
                Event::TokenRefused { .. } => c.protocol_errors += 1,
            }
        }
    }

    /// Counts a call's outcome. `expected`: the scenario says a failure here is no error (a
    /// call of a session that ended, answered on the next).
    fn count_outcome(
        &mut self,
        outcome: &Outcome,
        expected: bool,
        answer: Answer,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) {
        let v2 = self.session.version() == Some(Version::V2);
        let t = &mut cx.tally;
        match outcome {
            Outcome::Reply(_) | Outcome::TickReply { .. } => t.counters.replied += 1,
            Outcome::Error { .. } | Outcome::Disconnected if expected => {
                t.counters.calls_failed_session_ended += 1
            }
            Outcome::Error { code, .. } => {
                t.counters.errored += 1;
                *t.error_codes.entry(*code).or_default() += 1;
            }
            // A redirect that could not be followed: counted as the error it answered.
            Outcome::Redirect(_) => {
                t.counters.errored += 1;
                *t.error_codes.entry(ticksock_protocol::error_code::REDIRECT).or_default() += 1;
            }
            Outcome::Timeout => t.counters.timed_out += 1,
            // On version 2 only a session that ended fails its calls so: the client says their
            // fate is unknown, and the session's end is judged on its own (the window).
            Outcome::Disconnected if v2 => t.counters.calls_failed_session_ended += 1,
            Outcome::Disconnected => t.counters.disconnected_calls += 1,
            Outcome::AnswerLost => t.counters.answers_lost += 1,
            // Never sent: the session was closed at the end of the run.
            Outcome::Closed => {}
        }
        // `--tick-stamps`: how far ahead of what the bot has seen its effect will show.
        if let (Some(stamp), Some(seen)) = (outcome.tick(), self.track.last_tick()) {
            t.tick_lag.saturating_record(stamp.saturating_sub(seen));
        }
        if let Outcome::Reply(_) | Outcome::TickReply { .. } | Outcome::Error { .. } = outcome {
            self.record_answer(answer, now, cx);
        }
    }

    /// Records an answered call's round trip, and with a link conditioner its share of it.
    fn record_answer(&self, answer: Answer, now: Instant, cx: &mut Cx<S::Timer>) {
        let Some(rtt) = answer.rtt else { return };
        let steady = now >= cx.steady.0 && now < cx.steady.1;
        cx.tally.record_rtt(rtt, steady);
        cx.rtt_delta.saturating_record(crate::tally::micros(rtt));
        if let Some(held) = answer.held {
            cx.tally.link.record_call(rtt, held, steady);
        }
    }

    /// The bot counts as connected (a welcome, or a resume).
    fn mark_up(&mut self, cx: &mut Cx<S::Timer>) {
        if !self.up {
            self.up = true;
            cx.connected_now += 1;
        }
    }

    /// The bot no longer counts as connected.
    pub(crate) fn mark_down(&mut self, cx: &mut Cx<S::Timer>) {
        if self.up {
            self.up = false;
            cx.connected_now -= 1;
        }
    }

    /// Calls `route`, counting the call, or the refusal (the session's queue is full).
    pub(crate) fn call<T: serde::Serialize + ?Sized>(
        &mut self,
        route: &str,
        body: &T,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) -> Option<CallId> {
        let result = self.session.call(route, body, now);
        self.count_call(result, cx)
    }

    /// Calls `route` as [`Bot::call`] does; an Error `redirect` answer is followed (see the
    /// module docs), and the script gets the answer at the end of the redirects.
    pub(crate) fn call_resendable<T: serde::Serialize + ?Sized>(
        &mut self,
        route: &'static str,
        body: &T,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) -> Option<CallId> {
        let Ok(body) = ticksock_protocol::encode_body(body) else {
            cx.tally.counters.refused += 1;
            return None;
        };
        let id = self.call_raw(route, &body, now, cx)?;
        self.resendable.push((id, Resendable { route, body, hops: 0 }));
        Some(id)
    }

    /// What becomes of a call's outcome: `None` when the bot follows the redirect it is (the
    /// call goes on elsewhere), else the outcome under the id the script knows the call by
    /// (a call sent again after a redirect is known by its first id).
    fn redirected(
        &mut self,
        id: CallId,
        outcome: Outcome,
        answer: Answer,
        script: &S,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) -> Option<(CallId, Outcome)> {
        let (original, call) = if self.following.as_ref().is_some_and(|f| f.resent == Some(id)) {
            let following = self.following.take()?;
            (following.original, following.call)
        } else if let Some(at) = self.resendable.iter().position(|(call, _)| *call == id) {
            (id, self.resendable.swap_remove(at).1)
        } else {
            return Some((id, outcome));
        };
        let redirect = match &outcome {
            Outcome::Error { code: error_code::REDIRECT, message } => {
                Some(check_redirect(message, call.hops))
            }
            _ => None,
        };
        match redirect {
            Some(Ok(target)) => {
                cx.tally.counters.redirects_followed += 1;
                self.record_answer(answer, now, cx);
                self.follow(target, original, call, script, now, cx);
                None
            }
            Some(Err(failure)) => {
                self.count_redirect_failure(failure, cx);
                Some((original, outcome))
            }
            None => {
                if call.hops > 0 && matches!(outcome, Outcome::Disconnected) {
                    // Sent again on the new link, which ended before the answer (a refused
                    // ticket closes it right after the welcome).
                    self.count_redirect_failure(RedirectFailure::Closed, cx);
                }
                Some((original, outcome))
            }
        }
    }

    fn count_redirect_failure(&mut self, failure: RedirectFailure, cx: &mut Cx<S::Timer>) {
        let c = &mut cx.tally.counters;
        match failure {
            RedirectFailure::BadUrl => c.redirects_failed_bad_url += 1,
            RedirectFailure::TooMany => c.redirects_failed_too_many += 1,
            RedirectFailure::Closed => c.redirects_failed_closed += 1,
        }
        // The bot's reconnects go to its own URL again (PROTOCOL.md 12.4).
        self.target = self.home.clone();
    }

    /// Follows a redirect to `target`: parks the old session and link, and opens a new session
    /// there (its welcome sends the call again: [`Bot::resend`]).
    fn follow(
        &mut self,
        target: Target,
        original: CallId,
        call: Resendable,
        script: &S,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) {
        let call = Resendable { hops: call.hops + 1, ..call };
        let old_conn = self.conn.take();
        let config = self.session.config().clone();
        self.sent_before += self.session.stats().sent;
        let old_session = std::mem::replace(&mut self.session, Session::new(config, now));
        self.session_started = now;
        // The new node numbers its players itself, and the bot does not log in there.
        self.track = Track::default();
        // Between two links: not connected until the new one is welcomed.
        self.mark_down(cx);
        self.target = target;
        self.following = Some(Following { original, call, old: Some((old_session, old_conn)), resent: None });
        if self.session.poll_connect(now) {
            self.open(script, now, cx);
        }
    }

    /// The redirect's new link is welcomed: sends the call again, then closes the old link
    /// (1000). Calls the old session still had in flight fail there, and are counted.
    fn resend(&mut self, now: Instant, cx: &mut Cx<S::Timer>) {
        let Some(following) = self.following.as_mut() else { return };
        let (route, body) = (following.call.route, following.call.body.clone());
        let old = following.old.take();
        match self.session.call_raw(route, &body, CallOptions::default(), now) {
            Ok(id) => {
                cx.tally.counters.calls += 1;
                if let Some(following) = self.following.as_mut() {
                    following.resent = Some(id);
                }
            }
            Err(_) => {
                // Cannot happen on a fresh session (nothing queued); counted if it does, and
                // the script learns it when the bot next connects (its state is reset then).
                cx.tally.counters.refused += 1;
                self.following = None;
            }
        }
        if let Some((mut session, conn)) = old {
            session.close(now);
            if let Some(mut conn) = conn {
                let _ = conn.transmit(&mut session);
            }
            while let Some(event) = session.poll_event() {
                if let Event::Outcome { outcome, rtt, .. } = event {
                    // The old link's conditioner is gone: its calls' shares are unknown.
                    self.count_outcome(&outcome, false, Answer { rtt, held: None }, now, cx);
                }
            }
        }
    }

    /// The socket closed before the call was sent again on it: if it was a redirect's new
    /// link, the redirect failed, and the script gets the call's failure.
    fn redirect_failed_before_resend(&mut self, script: &S, now: Instant, cx: &mut Cx<S::Timer>) {
        let Some(following) = self.following.take_if(|f| f.resent.is_none()) else { return };
        self.count_redirect_failure(RedirectFailure::Closed, cx);
        if let Some((mut session, conn)) = following.old {
            session.close(now);
            if let Some(mut conn) = conn {
                let _ = conn.transmit(&mut session);
            }
        }
        let outcome = Outcome::Disconnected;
        self.count_outcome(&outcome, false, Answer { rtt: None, held: None }, now, cx);
        script.on_outcome(self, following.original, outcome, now, cx);
    }

    /// Calls `route` with a body already encoded, counting as [`Bot::call`] does.
    pub(crate) fn call_raw(
        &mut self,
        route: &str,
        body: &[u8],
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) -> Option<CallId> {
        let result = self.session.call_raw(route, body, CallOptions::default(), now);
        self.count_call(result, cx)
    }

    fn count_call(
        &mut self,
        result: Result<CallId, ticksock_client::Error>,
        cx: &mut Cx<S::Timer>,
    ) -> Option<CallId> {
        match result {
            Ok(id) => {
                cx.tally.counters.calls += 1;
                Some(id)
            }
            Err(_) => {
                cx.tally.counters.refused += 1;
                None
            }
        }
    }

    /// Sets one of the bot's timers; a new connection forgets it.
    pub(crate) fn schedule(&self, cx: &mut Cx<S::Timer>, at: Instant, timer: S::Timer) {
        let timer = Wake::Script(timer);
        cx.timers.schedule(TimerEntry { at, bot: self.slot, generation: self.generation, timer });
    }
}

/// What a call's outcome says of its timing: the round trip as the bot saw it (answered calls
/// only), and with a link conditioner how long its request and answer were held there.
#[derive(Debug, Clone, Copy)]
struct Answer {
    rtt: Option<Duration>,
    held: Option<Duration>,
}

/// The session settings of bot `index`, before its scenario adjusts them.
///
/// With `--faults` the bots offer version 2 and their sessions resume by themselves. Their
/// calls wait out an outage: the call timeout is `--call-timeout` plus the longest outage, so a
/// call that times out was lost, not merely queued. A bot reconnects soon after its outage
/// (backoff from 100 ms, at most 2 s), and never gives up: its kills are no failures.
pub(crate) fn session_config(opts: &Options, index: u32) -> Config {
    let config = session_config_v1(opts, index);
    if !opts.faults {
        return config;
    }
    Config {
        call_timeout: Duration::from_secs_f64(opts.call_timeout.max(0.0) + opts.outage_max.max(0.0)),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        max_attempts: None,
        versions: Versions::V2ThenV1,
        ..config
    }
}

/// The version 1 bots' settings: every scenario but `--faults`.
fn session_config_v1(opts: &Options, index: u32) -> Config {
    Config {
        call_timeout: Duration::from_secs_f64(opts.call_timeout),
        heartbeat_interval: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
        max_attempts: Some(opts.max_attempts),
        stable_after: Duration::from_secs(5),
        max_queued_calls: 64,
        jitter_seed: Some(u64::from(index) + 1),
        read_buffer_bytes: 4 << 10,
        // The bots and their figures are version 1's; the client offers version 2 by default.
        versions: Versions::V1Only,
        // The bots follow redirects themselves (`worker::redirect`), counting each.
        follow_redirects: false,
        tick_stamps: opts.tick_stamps,
        ..Config::default()
    }
}
