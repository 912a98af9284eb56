//! Randomized runs of the sans-I/O session (issue 19): random interleavings of calls, replies,
//! pushes, drops, reconnects, clock jumps and re-entrant callbacks (callbacks that call, close
//! the session or drop the link), against a fake server and a simulated clock. After every step
//! it checks what the session promises:
//!
//! - every call ends in exactly one outcome, a plausible one (a reply only to a call the server
//!   received, a timeout only after its deadline, `Disconnected` only if it was sent, `Closed`
//!   only if it never was), delivered where it belongs (its callback, or an event);
//! - no timer is left behind: the next wake-up is exactly the earliest live deadline where the
//!   session has no other timer, never later than any live deadline, nothing is scheduled once
//!   closed, and after `handle_timeout(now)` nothing is due at `now` any more;
//! - at most one heartbeat timer, and one exactly while a connection is open;
//! - a dead link is dropped within `idle_timeout` of the last sign of life, and a connection
//!   attempt within `connect_timeout`, however far the clock jumps;
//! - the events follow the connection (`Connected`, then `Disconnected` before any `Stopped`);
//! - calls queued offline go out in call order after the welcome, and only once the game has
//!   taken `Event::Connected` and polled again, so a login made on `Connected` goes first.
//!
//! Seeded and reproducible: a failing run prints its seed and its last steps.
//! `SESSION_SEED=n` replays that one run; `SESSION_RUNS=n` sets how many run (default 3000).
//!
//! One file of over 600 lines on purpose: the model of the calls, the fake server and the
//! checks share one run's state field by field, and read as one piece when a seed fails.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ticksock_client::backoff::XorShift;
use ticksock_client::{CallId, CallOptions, Config, Error, Event, LinkCommand, LinkState, Outcome, Session};
use ticksock_protocol::{ClientFrame, ServerFrame, Version};

const MS: Duration = Duration::from_millis(1);
const DEFAULT_RUNS: u64 = 3000;
const STEPS: usize = 300;
/// Steps of the trace printed when a run fails.
const TRACE: usize = 60;

#[test]
fn random_interleavings_keep_every_promise_of_the_session() {
    if let Some(seed) = env_u64("SESSION_SEED") {
        run(seed);
        return;
    }
    let runs = env_u64("SESSION_RUNS").unwrap_or(DEFAULT_RUNS);
    for n in 0..runs {
        // Spread the seeds so neighbouring runs differ in every bit.
        run(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

// ----- the model of the game's calls, shared with the callbacks -----

/// What a callback does once it has recorded its outcome: the re-entrant part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// Makes another call.
    Call,
    /// Closes the session for good.
    Close,
    /// Reports the link dropped (`handle_disconnect`), so the session reconnects.
    Drop,
}

/// One call the game made, by serial number.
#[derive(Debug)]
struct CallRecord {
    id: u32,
    route: &'static str,
    made_at: Instant,
    deadline: Option<Instant>,
    /// `None`: the outcome comes as an [`Event::Outcome`].
    then: Option<Then>,
    /// `poll_transmit` handed its frame to the transport.
    handed: bool,
    /// The connection whose server received it.
    received_on: Option<u64>,
    outcome: Option<Outcome>,
}

/// The calls, and the random source, shared with the callbacks (which run inside the session).
struct Model {
    rng: XorShift,
    call_timeout: Duration,
    calls: Vec<CallRecord>,
    /// Calls without an outcome yet, by id.
    live: HashMap<u32, usize>,
    trace: VecDeque<String>,
}

impl Model {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn note(&mut self, step: String) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(step);
    }

    /// Records call `serial`'s outcome at `now`, checking it is its only one and a plausible
    /// one; returns what its callback does next.
    fn record(&mut self, serial: usize, outcome: Outcome, now: Instant, via_callback: bool) -> Option<Then> {
        self.note(format!("  outcome of call {serial}: {outcome:?} (callback: {via_callback})"));
        let call = &mut self.calls[serial];
        assert!(
            call.outcome.is_none(),
            "call {serial} got a second outcome {outcome:?} after {:?}",
            call.outcome
        );
        assert_eq!(call.then.is_some(), via_callback, "call {serial}'s outcome went to the wrong place");
        let id = call.id;
        match &outcome {
            Outcome::Reply(body) => {
                assert!(call.received_on.is_some(), "a reply to call {serial}, which the server never got");
                assert_eq!(body, &id.to_le_bytes(), "call {serial} got another call's reply");
            }
            Outcome::Error { code, .. } => {
                assert!(call.received_on.is_some(), "an error reply to call {serial}, never received");
                assert_eq!(*code, error_code(id), "call {serial} got another call's error");
            }
            Outcome::Timeout => {
                let deadline =
                    call.deadline.unwrap_or_else(|| panic!("call {serial} has no deadline yet timed out"));
                assert!(now >= deadline, "call {serial} timed out {:?} early", deadline - now);
            }
            Outcome::Disconnected => assert!(call.handed, "call {serial} failed as sent but was never sent"),
            Outcome::Closed => assert!(!call.handed, "call {serial} failed as never sent but was sent"),
            Outcome::AnswerLost => panic!("call {serial}: version 1 has no stale_request"),
            Outcome::Redirect(_) => panic!("call {serial}: the fake server never redirects"),
            Outcome::TickReply { .. } => panic!("call {serial}: the fake server sends no stamped reply"),
        }
        call.outcome = Some(outcome);
        assert_eq!(self.live.remove(&id), Some(serial), "call {serial}'s id {id} was not live");
        self.calls[serial].then
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    // A panic inside a callback poisons the lock; the trace is still worth printing.
    model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_code(id: u32) -> u16 {
    1000 + (id % 7) as u16
}

/// Makes a call on `route` with a random timeout and a random callback (or none), and records
/// it. `from_callback`: made re-entrantly, so never with a zero timeout (it could be due before
/// the session's `handle_timeout` returns, which the checks do not allow).
fn make_call(s: &mut Session, model: &Arc<Mutex<Model>>, route: &'static str, from_callback: bool) {
    let now = s.now();
    let (serial, timeout, then) = {
        let mut m = lock(model);
        let timeout = match m.below(20) {
            0..=9 => None,
            10..=15 => Some(MS * (1 + m.below(1500) as u32)),
            16 | 17 => Some(Duration::MAX),
            18 if !from_callback => Some(Duration::ZERO),
            _ => Some(MS * 20),
        };
        let then = match m.below(60) {
            0..=21 => None,
            22..=44 => Some(Then::Nothing),
            45..=55 => Some(Then::Call),
            56 | 57 => Some(Then::Drop),
            _ if m.below(4) == 0 => Some(Then::Close),
            _ => Some(Then::Nothing),
        };
        let deadline = now.checked_add(timeout.unwrap_or(m.call_timeout));
        let serial = m.calls.len();
        m.calls.push(CallRecord {
            id: 0,
            route,
            made_at: now,
            deadline,
            then,
            handed: false,
            received_on: None,
            outcome: None,
        });
        m.note(format!("  call {serial} {route}, timeout {timeout:?}, then {then:?}"));
        (serial, timeout, then)
    };
    let mut options = CallOptions::default();
    if let Some(timeout) = timeout {
        options = options.timeout(timeout);
    }
    if then.is_some() {
        let model = model.clone();
        options = options.then(move |s: &mut Session, outcome| on_outcome(s, &model, serial, outcome));
    }
    let result = s.call_with(route, &(serial as u32), options, now);
    let mut m = lock(model);
    match result {
        Ok(id) => {
            m.calls[serial].id = id.0;
            if let Some(other) = m.live.insert(id.0, serial) {
                panic!("calls {other} and {serial} share id {id} while both wait");
            }
        }
        Err(e) => {
            assert!(
                matches!(e, Error::QueueFull { .. } | Error::TooManyPending { .. } | Error::Closed),
                "call {serial} refused with {e}"
            );
            assert_eq!(m.calls.len(), serial + 1, "nothing else was called meanwhile");
            m.calls.pop();
            m.note(format!("  call {serial} refused: {e}"));
        }
    }
}

/// A call's callback: records the outcome, then does what the call was made to do next.
fn on_outcome(s: &mut Session, model: &Arc<Mutex<Model>>, serial: usize, outcome: Outcome) {
    let then = lock(model).record(serial, outcome, s.now(), true);
    let now = s.now();
    match then {
        Some(Then::Call) => make_call(s, model, "act", true),
        Some(Then::Close) => s.close(now),
        Some(Then::Drop) => s.handle_disconnect(now),
        Some(Then::Nothing) | None => {}
    }
}

// ----- the fake server and the driver -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP and the WebSocket handshake under way.
    Tcp,
    /// The WebSocket is open; no welcome sent yet.
    Open,
    /// The welcome was sent.
    Welcomed,
}

#[derive(Debug)]
struct Conn {
    number: u64,
    phase: Phase,
    /// False once the link is a black hole: nothing arrives from the server any more, and
    /// nothing the client sends reaches it.
    alive: bool,
    /// Requests the server received and has not answered, by id.
    unanswered: Vec<u32>,
    /// Pings the client sent that the server has not answered yet.
    pongs_owed: u32,
    /// The last call received of those queued before the welcome, and of the others: each
    /// group arrives in call order.
    last_held: Option<usize>,
    last_fresh: Option<usize>,
}

/// A step of a run.
type Step = fn(&mut Run);

/// One run: the session, the game's model, the fake server, and what the checks remember.
struct Run {
    s: Session,
    m: Arc<Mutex<Model>>,
    config: Config,
    /// The heartbeat is on (its timings are not `Duration::MAX`).
    heartbeat: bool,
    t0: Instant,
    now: Instant,
    conn: Option<Conn>,
    conns: u64,
    attempt_started: Instant,
    last_heard: Instant,
    up_since: Instant,
    state: LinkState,
    /// While down: when it went down, and the reconnect time once seen.
    down_since: Instant,
    reconnect_at: Option<Instant>,
    // The events so far.
    up: bool,
    stopped: bool,
    welcomes: u64,
    connected_taken: u64,
    protocol_errors_caused: u64,
    pushes_unhandled: u64,
    pushes_seen: u64,
    tracked_pushes: Arc<Mutex<u64>>,
    tracked_sent: u64,
    // The current connection's offline queue, held until the game took its `Connected` and
    // polled again.
    held: HashSet<u32>,
    took_current_connected: bool,
    released: bool,
    login: Option<u32>,
}

fn run(seed: u64) {
    let mut rng = XorShift::new(seed);
    let t0 = Instant::now();
    let pick = |rng: &mut XorShift, options: &[Duration]| options[rng.below(options.len() as u64) as usize];
    let heartbeat = rng.below(5) != 0;
    let interval = MS * (50 + rng.below(200) as u32);
    let config = Config {
        call_timeout: pick(&mut rng, &[300 * MS, 1000 * MS, 5000 * MS, Duration::MAX]),
        heartbeat_interval: if heartbeat { interval } else { Duration::MAX },
        idle_timeout: if heartbeat {
            interval / 2 + MS * rng.below(4 * interval.as_millis() as u64) as u32
        } else {
            Duration::MAX
        },
        connect_timeout: pick(&mut rng, &[200 * MS, 2000 * MS, Duration::MAX]),
        backoff_initial: 50 * MS,
        backoff_max: 1000 * MS,
        backoff_jitter: 0.5,
        max_attempts: [None, Some(5), Some(20)][rng.below(3) as usize],
        stable_after: pick(&mut rng, &[200 * MS, 2000 * MS]),
        max_queued_calls: [4, 256][rng.below(2) as usize],
        max_pending: [16, 65_536][rng.below(2) as usize],
        jitter_seed: Some(seed),
        ..Config::default()
    };
    let model = Arc::new(Mutex::new(Model {
        rng,
        call_timeout: config.call_timeout,
        calls: Vec::new(),
        live: HashMap::new(),
        trace: VecDeque::new(),
    }));
    let _report = ReportOnPanic { seed, model: model.clone() };
    let mut s = Session::new(config.clone(), t0);
    if lock(&model).below(2) == 0 {
        s.set_next_call_id(u32::MAX - 3); // Wrap around early.
    }
    let tracked_pushes = Arc::new(Mutex::new(0u64));
    let counter = tracked_pushes.clone();
    s.on_push("tracked", move |_| *counter.lock().unwrap_or_else(|p| p.into_inner()) += 1);
    let mut run = Run {
        s,
        m: model,
        config,
        heartbeat,
        t0,
        now: t0,
        conn: None,
        conns: 0,
        attempt_started: t0,
        last_heard: t0,
        up_since: t0,
        state: LinkState::Down,
        down_since: t0,
        reconnect_at: None,
        up: false,
        stopped: false,
        welcomes: 0,
        connected_taken: 0,
        protocol_errors_caused: 0,
        pushes_unhandled: 0,
        pushes_seen: 0,
        tracked_pushes,
        tracked_sent: 0,
        held: HashSet::new(),
        took_current_connected: false,
        released: false,
        login: None,
    };
    for _ in 0..STEPS {
        run.step();
        run.after_step();
    }
    run.finish();
}

/// Prints the seed and the last steps of a run that panics.
struct ReportOnPanic {
    seed: u64,
    model: Arc<Mutex<Model>>,
}

impl Drop for ReportOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let m = lock(&self.model);
            eprintln!("the last {} steps:", m.trace.len());
            for line in &m.trace {
                eprintln!("{line}");
            }
            eprintln!(
                "session_random: seed {} failed; replay it alone with\n  SESSION_SEED={} cargo test -p ticksock-client --test session_random",
                self.seed, self.seed
            );
        }
    }
}

impl Run {
    fn below(&self, n: u64) -> u64 {
        lock(&self.m).below(n)
    }

    fn note(&self, step: String) {
        let at = self.now - self.t0;
        lock(&self.m).note(format!("[{at:?}] {step}"));
    }

    fn is_open(&self) -> bool {
        matches!(self.s.link_state(), LinkState::AwaitingWelcome | LinkState::Up)
    }

    fn step(&mut self) {
        // Weights: the common things often, the drastic ones rarely.
        const WEIGHTS: [(u64, Step); 17] = [
            (14, Run::game_calls),
            (14, Run::transmit),
            (16, Run::server_answers),
            (5, Run::server_pushes),
            (5, Run::server_pongs),
            (8, Run::carry_out_link_commands),
            (10, Run::game_polls_events),
            (12, Run::time_passes),
            (10, Run::connect),
            (8, Run::tcp_opens),
            (1, Run::tcp_fails),
            (8, Run::server_welcomes),
            (1, Run::network_drops),
            (1, Run::link_goes_dead),
            (1, Run::stale_frame),
            (1, Run::server_misbehaves),
            (1, Run::game_closes),
        ];
        let total: u64 = WEIGHTS.iter().map(|(w, _)| w).sum();
        let mut roll = self.below(total);
        for (weight, step) in WEIGHTS {
            if roll < weight {
                return step(self);
            }
            roll -= weight;
        }
    }

    fn game_calls(&mut self) {
        self.note("the game calls".into());
        make_call(&mut self.s, &self.m, "act", false);
    }

    /// The I/O layer sends some of what the session gives it.
    fn transmit(&mut self) {
        let n = 1 + self.below(4);
        self.note(format!("transmit up to {n}"));
        for _ in 0..n {
            let Some(frame) = self.s.poll_transmit() else { return };
            let ClientFrame::Request { id, .. } = ClientFrame::decode(&frame).expect("a valid request");
            let conn = self.conn.as_mut().expect("frames come only while a connection is up");
            assert_eq!(conn.phase, Phase::Welcomed, "a frame before the welcome");
            let mut m = lock(&self.m);
            let serial =
                *m.live.get(&id).unwrap_or_else(|| panic!("a frame for id {id}, which no call waits on"));
            assert!(!m.calls[serial].handed, "call {serial} sent twice");
            m.calls[serial].handed = true;
            m.note(format!("  sent call {serial} (id {id})"));
            if !conn.alive {
                continue; // Lost in the black hole.
            }
            m.calls[serial].received_on = Some(conn.number);
            conn.unanswered.push(id);
            // The offline queue goes out in call order, after the game took `Connected` and
            // polled again, and after a login made on `Connected`; new calls in call order.
            if self.held.remove(&id) {
                assert!(self.released, "queued call {serial} went out before the game had seen Connected");
                let login_waits = self.login.is_some_and(|login| self.s.is_pending(CallId(login)));
                assert!(!login_waits, "queued call {serial} went out before the login made on Connected");
                assert!(conn.last_held.is_none_or(|last| last < serial), "queued calls out of order");
                conn.last_held = Some(serial);
            } else {
                if self.login == Some(id) {
                    self.login = None;
                }
                assert!(conn.last_fresh.is_none_or(|last| last < serial), "calls out of order");
                conn.last_fresh = Some(serial);
            }
        }
    }

    fn server_answers(&mut self) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.alive && !c.unanswered.is_empty()) else { return };
        let at = lock(&self.m).below(conn.unanswered.len() as u64) as usize;
        let id = conn.unanswered.swap_remove(at);
        let frame = if lock(&self.m).below(5) == 0 {
            ServerFrame::Error { id, code: error_code(id), message: "no".into() }.to_vec()
        } else {
            ServerFrame::Reply { id, body: &id.to_le_bytes() }.to_vec()
        };
        self.note(format!("the server answers id {id}"));
        self.deliver(&frame);
    }

    fn server_pushes(&mut self) {
        if !self.conn.as_ref().is_some_and(|c| c.alive && c.phase == Phase::Welcomed) {
            return;
        }
        let tracked = self.below(2) == 0;
        let topic = if tracked { "tracked" } else { "other" };
        self.note(format!("the server pushes on {topic}"));
        let sent = if tracked { &mut self.tracked_sent } else { &mut self.pushes_unhandled };
        *sent += u64::from(self.s.is_connected());
        self.deliver(&ServerFrame::Push { topic: topic.into(), body: &[1, 2, 3] }.to_vec());
    }

    /// A frame from the server on the current connection.
    fn deliver(&mut self, frame: &[u8]) {
        if self.is_open() {
            self.last_heard = self.now;
        }
        self.s.handle_frame(frame, self.now);
    }

    /// The server answers a ping, or (now and then) pings.
    fn server_pongs(&mut self) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.alive && c.phase != Phase::Tcp) else { return };
        if conn.pongs_owed > 0 {
            conn.pongs_owed -= 1;
            self.note("a pong from the server".into());
        } else if lock(&self.m).below(3) == 0 {
            self.note("a ping from the server".into());
        } else {
            return;
        }
        if self.is_open() {
            self.last_heard = self.now;
        }
        self.s.handle_heard(self.now);
    }

    fn carry_out_link_commands(&mut self) {
        self.note("carry out link commands".into());
        while let Some(command) = self.s.poll_link() {
            self.note(format!("  {command:?}"));
            match command {
                LinkCommand::Ping => {
                    if let Some(conn) = self.conn.as_mut().filter(|c| c.alive) {
                        conn.pongs_owed += 1;
                    }
                }
                LinkCommand::Close { .. } => {
                    if self.conn.take().is_some() && self.below(2) == 0 {
                        self.s.handle_disconnect(self.now); // Harmless, says the doc.
                    }
                }
                LinkCommand::Drop => {
                    panic!("a version 1 link is closed, never dropped without a close frame")
                }
                LinkCommand::Redirect => panic!("the fake server never redirects"),
            }
        }
    }

    /// The game reads some events (all of them, or only the first few).
    fn game_polls_events(&mut self) {
        let n = if self.below(2) == 0 { usize::MAX } else { 1 + self.below(3) as usize };
        self.note(format!("the game polls up to {n} events"));
        for _ in 0..n {
            if self.took_current_connected {
                self.released = true;
            }
            let Some(event) = self.s.poll_event() else { return };
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: Event) {
        self.note(format!("  {event:?}"));
        match event {
            Event::Connected { .. } => {
                assert!(!self.up && !self.stopped, "Connected while connected or stopped");
                self.up = true;
                self.connected_taken += 1;
                let current = self.connected_taken == self.welcomes && self.s.is_connected();
                if current && !self.took_current_connected {
                    self.took_current_connected = true;
                    // The game logs in again, as a game does on every connection.
                    if self.below(3) != 0 {
                        let before = lock(&self.m).calls.len();
                        make_call(&mut self.s, &self.m, "login", false);
                        let m = lock(&self.m);
                        if m.calls.len() > before {
                            self.login = Some(m.calls[before].id);
                        }
                    }
                }
            }
            Event::Disconnected => {
                assert!(self.up, "Disconnected without Connected");
                self.up = false;
            }
            Event::Reconnecting { delay, .. } => {
                assert!(!self.up, "Reconnecting without Disconnected");
                assert!(!self.stopped, "Reconnecting after Stopped");
                assert!(delay <= self.config.backoff_max);
            }
            Event::Stopped { .. } => {
                assert!(!self.up, "Stopped without Disconnected after Connected");
                assert!(!self.stopped, "Stopped twice");
                self.stopped = true;
            }
            Event::Outcome { id, outcome, elapsed, .. } => {
                let mut m = lock(&self.m);
                let serial = *m.live.get(&id.0).unwrap_or_else(|| panic!("an outcome for {id}, not waiting"));
                let at = m.calls[serial].made_at + elapsed;
                m.record(serial, outcome, at, false);
            }
            Event::Redirected { .. } => panic!("the fake server never redirects"),
            Event::TokenRefused { .. } => panic!("the fake server never closes with 4003 or 4004"),
            Event::Push { topic, .. } => {
                assert_eq!(topic, "other", "a push with a handler became an event");
                self.pushes_seen += 1;
            }
            Event::BadPush { .. } => panic!("every push body is fine"),
            Event::EventsDropped { .. } => panic!("the fake server drops nothing"),
            Event::ProtocolError { .. } => {
                assert!(self.protocol_errors_caused > 0, "a protocol error nobody caused");
                self.protocol_errors_caused -= 1;
            }
            Event::LinkDropped | Event::Resumed { .. } | Event::SessionEnded { .. } => {
                panic!("a version 2 event on version 1 links: {event:?}")
            }
        }
    }

    /// Time passes, a little, up to the next timer, or a lot (a laptop waking up); the driver
    /// then handles what is due.
    fn time_passes(&mut self) {
        let dt = match self.below(100) {
            0..=19 => self
                .s
                .poll_timeout()
                .map_or(10 * MS, |at| at.saturating_duration_since(self.now).min(Duration::from_secs(60))),
            20..=79 => MS * (1 + self.below(40) as u32),
            80..=94 => MS * (40 + self.below(600) as u32),
            95..=98 => Duration::from_secs(1 + self.below(20)),
            _ => Duration::from_secs(30 + self.below(900)),
        };
        self.now += dt;
        self.note(format!("time passes: {dt:?}"));
        if self.s.poll_timeout().is_none_or(|at| at > self.now) {
            return;
        }
        self.s.handle_timeout(self.now);
        // Everything due was handled: only a reconnect may still be due (for `poll_connect`).
        if let Some(at) = self.s.poll_timeout().filter(|&at| at <= self.now) {
            assert_eq!(self.s.link_state(), LinkState::Down, "still due after handle_timeout: {at:?}");
        }
        if let Some(at) = self.earliest_live_deadline() {
            assert!(at > self.now, "a call's deadline passed and it did not time out");
        }
        // A dead link is detected within the documented bound, however far the clock jumped.
        if self.is_open()
            && let Some(dead_at) = self.last_heard.checked_add(self.config.idle_timeout)
        {
            let silent = self.now - self.last_heard;
            assert!(self.now < dead_at, "a link silent for {silent:?} is still open");
        }
        if matches!(self.s.link_state(), LinkState::Connecting | LinkState::AwaitingWelcome)
            && let Some(give_up) = self.attempt_started.checked_add(self.config.connect_timeout)
        {
            assert!(self.now < give_up, "an attempt older than the connect timeout goes on");
        }
    }

    fn connect(&mut self) {
        if self.conn.is_some() {
            return;
        }
        // Commands for a connection that no longer exists (as `Client::update` does).
        while self.s.poll_link().is_some() {}
        if !self.s.poll_connect(self.now) {
            return;
        }
        self.conns += 1;
        self.note(format!("connect: attempt {}", self.conns));
        self.attempt_started = self.now;
        self.conn = Some(Conn {
            number: self.conns,
            phase: Phase::Tcp,
            alive: true,
            unanswered: Vec::new(),
            pongs_owed: 0,
            last_held: None,
            last_fresh: None,
        });
    }

    fn tcp_opens(&mut self) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.phase == Phase::Tcp) else { return };
        conn.phase = Phase::Open;
        self.note("the WebSocket opens".into());
        self.last_heard = self.now;
        self.s.handle_connected(Version::V1, self.now);
    }

    fn tcp_fails(&mut self) {
        if !self.conn.as_ref().is_some_and(|c| c.phase == Phase::Tcp) {
            return;
        }
        self.note("the connect fails".into());
        self.conn = None;
        self.s.handle_disconnect(self.now);
    }

    fn server_welcomes(&mut self) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.alive && c.phase == Phase::Open) else { return };
        conn.phase = Phase::Welcomed;
        let number = conn.number;
        self.note(format!("the server welcomes connection {number}"));
        // What waits in the offline queue now is held until the game has seen Connected.
        let held: HashSet<u32> = {
            let m = lock(&self.m);
            m.live.iter().filter(|&(_, &serial)| !m.calls[serial].handed).map(|(&id, _)| id).collect()
        };
        let frame = ServerFrame::Welcome {
            version: ticksock_protocol::PROTOCOL_VERSION,
            tick_hz: 30,
            conn_id: number,
        };
        self.deliver(&frame.to_vec());
        if self.s.is_connected() {
            self.welcomes += 1;
            self.up_since = self.now;
            self.held = held;
            self.took_current_connected = false;
            self.released = false;
            self.login = None;
        }
    }

    fn network_drops(&mut self) {
        if self.conn.take().is_none() {
            return;
        }
        self.note("the network drops the connection".into());
        self.s.handle_disconnect(self.now);
    }

    fn link_goes_dead(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.alive = false;
            self.note("the link goes dead (a black hole)".into());
        }
    }

    /// Bytes of a connection already given up arrive late: the session ignores them.
    fn stale_frame(&mut self) {
        if self.conn.is_some() || !matches!(self.s.link_state(), LinkState::Down | LinkState::Closed) {
            return;
        }
        let Some(&id) = lock(&self.m).live.keys().next() else { return };
        self.note(format!("a stale reply to id {id}"));
        let pending = self.s.pending_calls();
        self.s.handle_frame(&ServerFrame::Reply { id, body: &id.to_le_bytes() }.to_vec(), self.now);
        assert_eq!(self.s.pending_calls(), pending, "stale bytes ended a call");
    }

    /// Garbage or a second welcome (the session drops the link; a reconnect follows), or an
    /// answer to a call it was never sent (the session drops the answer).
    fn server_misbehaves(&mut self) {
        let Some(conn) = self.conn.as_ref().filter(|c| c.alive && c.phase == Phase::Welcomed) else { return };
        let number = conn.number;
        let unsent = {
            let m = lock(&self.m);
            m.live.iter().find(|&(_, &serial)| !m.calls[serial].handed).map(|(&id, _)| id)
        };
        match (self.below(3), unsent) {
            (0, Some(id)) => {
                self.note(format!("the server answers id {id}, which it was never sent"));
                let pending = self.s.pending_calls();
                let late = self.s.stats().late_answers;
                self.deliver(&ServerFrame::Reply { id, body: &id.to_le_bytes() }.to_vec());
                assert_eq!(self.s.pending_calls(), pending, "an answer ended a call never sent");
                assert_eq!(self.s.stats().late_answers, late + 1);
            }
            (roll, _) => {
                let frame = if roll == 1 {
                    vec![0xff, 0x00, 0xee]
                } else {
                    let version = ticksock_protocol::PROTOCOL_VERSION;
                    ServerFrame::Welcome { version, tick_hz: 30, conn_id: number }.to_vec()
                };
                self.note("the server sends garbage or a second welcome".into());
                if self.s.is_connected() {
                    self.protocol_errors_caused += 1;
                }
                self.deliver(&frame);
            }
        }
    }

    fn game_closes(&mut self) {
        if self.below(20) != 0 {
            return; // Rarer still: a closed session has little left to test.
        }
        self.note("the game closes the session".into());
        self.s.close(self.now);
    }

    fn earliest_live_deadline(&self) -> Option<Instant> {
        let m = lock(&self.m);
        m.live
            .iter()
            .filter(|&(&id, _)| self.s.is_pending(CallId(id)))
            .filter_map(|(_, &serial)| m.calls[serial].deadline)
            .min()
    }

    /// The driver's part after each step (a connection the session gave up is dropped), then
    /// the checks.
    fn after_step(&mut self) {
        let state = self.s.link_state();
        if matches!(state, LinkState::Down | LinkState::Closed) && self.conn.is_some() {
            // The session closed it (a `LinkCommand::Close`), or a callback told it the link
            // dropped: either way the driver lets the connection go.
            self.carry_out_link_commands();
            if self.conn.take().is_some() {
                self.note("  the driver drops the connection a callback gave up".into());
            }
        }
        if state == LinkState::Down && self.state != LinkState::Down {
            self.down_since = self.now;
            self.reconnect_at = None;
        }
        self.state = state;
        self.check();
    }

    fn check(&mut self) {
        let s = &self.s;
        let state = s.link_state();
        if state == LinkState::Up {
            assert!(
                self.conn.as_ref().is_some_and(|c| c.phase == Phase::Welcomed),
                "up without a connection"
            );
        }
        // Exactly one outcome per call: a call with a callback is either waiting or recorded;
        // the session waits on exactly the calls the game knows to be waiting.
        let (pending, queued) = {
            let m = lock(&self.m);
            let mut pending = 0;
            let mut queued = 0;
            for (&id, &serial) in &m.live {
                let call = &m.calls[serial];
                if s.is_pending(CallId(id)) {
                    pending += 1;
                    queued += usize::from(!call.handed);
                } else {
                    assert!(call.then.is_none(), "call {serial} ended without its callback running");
                }
            }
            (pending, queued)
        };
        assert_eq!(s.pending_calls(), pending, "the session waits on calls the game does not know");
        assert_eq!(s.queued_calls(), queued, "the offline queue holds calls that are not waiting");
        // One heartbeat timer exactly while a connection is open.
        let open = matches!(state, LinkState::AwaitingWelcome | LinkState::Up);
        assert_eq!(
            s.heartbeat_timers(),
            usize::from(open && self.heartbeat),
            "heartbeat timers in {state:?}"
        );
        // No timer lost, none left behind.
        let next = s.poll_timeout();
        let deadline = self.earliest_live_deadline();
        if let Some(deadline) = deadline {
            assert!(next.is_some_and(|n| n <= deadline), "a call's deadline is not scheduled");
        }
        let min = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let connect_deadline = self.attempt_started.checked_add(self.config.connect_timeout);
        match state {
            LinkState::Resuming => panic!("resuming on a version 1 link"),
            LinkState::Closed => {
                assert_eq!(next, None, "a timer left behind after the session closed");
                assert_eq!(pending, 0);
            }
            LinkState::Down => {
                let next = next.expect("a reconnect is scheduled while down");
                if deadline.is_none_or(|d| next < d) {
                    // Not a call's deadline, so the reconnect: the same all the time it is down.
                    let at = *self.reconnect_at.get_or_insert(next);
                    assert_eq!(next, at, "the reconnect moved, or a stale deadline");
                    assert!(at >= self.down_since && at <= self.down_since + self.config.backoff_max);
                }
            }
            LinkState::Connecting => {
                assert_eq!(next, min(deadline, connect_deadline), "only the calls and the connect timeout");
            }
            LinkState::AwaitingWelcome if !self.heartbeat => {
                assert_eq!(next, min(deadline, connect_deadline), "only the calls and the connect timeout");
            }
            LinkState::Up if !self.heartbeat => {
                let stable =
                    (s.reconnect_failures() > 0).then(|| self.up_since.checked_add(self.config.stable_after));
                assert_eq!(
                    next,
                    min(deadline, stable.flatten()),
                    "only the calls and the failure count's reset"
                );
            }
            LinkState::AwaitingWelcome | LinkState::Up => {
                if let Some(dead_at) = self.last_heard.checked_add(self.config.idle_timeout) {
                    assert!(next.is_some_and(|n| n <= dead_at), "the heartbeat wakes up too late, or never");
                }
                if state == LinkState::AwaitingWelcome
                    && let Some(give_up) = connect_deadline
                {
                    assert!(next.is_some_and(|n| n <= give_up), "the connect timeout is not scheduled");
                }
            }
        }
        // Every push either reached its handler or became an event (the bound is never hit).
        assert_eq!(*self.tracked_pushes.lock().unwrap_or_else(|p| p.into_inner()), self.tracked_sent);
    }

    /// The game closes the session and reads every event: every call has had exactly one
    /// outcome, and nothing is left.
    fn finish(mut self) {
        self.note("finish: close and read every event".into());
        self.s.close(self.now);
        self.after_step();
        while let Some(event) = self.s.poll_event() {
            self.on_event(event);
        }
        assert!(self.stopped, "no Stopped event");
        assert!(!self.up);
        let m = lock(&self.m);
        for (serial, call) in m.calls.iter().enumerate() {
            assert!(call.outcome.is_some(), "call {serial} ({}) never got an outcome", call.route);
        }
        assert!(m.live.is_empty());
        let st = *self.s.stats();
        assert_eq!(st.calls as usize, m.calls.len());
        assert_eq!(
            (st.replies + st.errors + st.timeouts + st.disconnected + st.closed) as usize,
            m.calls.len()
        );
        assert_eq!(self.pushes_seen, self.pushes_unhandled);
        assert_eq!(self.s.pending_calls(), 0);
        assert_eq!(self.s.poll_timeout(), None);
        assert_eq!(self.s.heartbeat_timers(), 0);
    }
}
