//! Randomized runs of the sans-I/O session on version 2 links (`docs/PROTOCOL.md` section 11):
//! random interleavings of calls (with callbacks that call, drop the link or close), replies
//! and pushes (also while the link is down), acks, drops, links that go dead, resumes answered
//! late, sessions that expire and servers that restart, against a fake server that keeps
//! sessions as the specification says, in simulated time. After every step it checks:
//!
//! - the server takes every request by its number with neither gap nor duplicate (the client
//!   sends again exactly what the server had not taken), and every count the client sends (a
//!   request's `ack`, an Ack, a Resume's `received`) is exactly what it was delivered;
//! - a Resume comes first on its link, with the session's current secret, and nothing follows it
//!   until its answer;
//! - every call ends in exactly one outcome, a plausible one (a reply only to a request the
//!   server took, `Disconnected` only if it was sent, `Closed` only if never, a timeout only
//!   after its deadline);
//! - the pushes of a session arrive each once, in order, however often its link dropped;
//! - the events follow the sessions: `Resumed` only after a resume the server accepted,
//!   `SessionEnded` only after one it refused, `Disconnected` only when the game closed.
//!
//! Seeded and reproducible: `SESSION_SEED=n` replays one run, `SESSION_RUNS=n` sets how many
//! run (default 1000). A failing run prints its seed and its last steps.
//!
//! One file of over 600 lines on purpose, like `session_random.rs`: the fake server's sessions,
//! the model of the calls and the checks are one test's parts, read together.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ticksock_client::backoff::XorShift;
use ticksock_client::{CallOptions, Config, Event, LinkCommand, LinkState, Outcome, Session, SessionEnd};
use ticksock_protocol::{Encoding, Secret, ServerFrame, Version, resume_reason, v2};

const MS: Duration = Duration::from_millis(1);
const DEFAULT_RUNS: u64 = 1000;
const STEPS: usize = 600;
const TRACE: usize = 80;

#[test]
fn random_interleavings_keep_every_promise_of_version_2() {
    if let Some(seed) = env_u64("SESSION_SEED") {
        run(seed);
        return;
    }
    let runs = env_u64("SESSION_RUNS").unwrap_or(DEFAULT_RUNS);
    let mut total = Coverage::default();
    for n in 0..runs {
        let covered = run(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2e55);
        total.accepted += covered.accepted;
        total.refused += covered.refused;
        total.resent += covered.resent;
    }
    // So that the runs cannot drift into testing nothing: the default runs make hundreds of
    // each (about 480 accepted, 780 refused, 170 requests resent).
    if runs >= DEFAULT_RUNS {
        assert!(total.accepted >= 100 && total.refused >= 100 && total.resent >= 20, "{total:?}");
    }
}

/// What the runs exercised.
#[derive(Debug, Default)]
struct Coverage {
    accepted: u64,
    refused: u64,
    resent: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

// ----- the game's calls, shared with the callbacks -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    Call,
    Drop,
    Close,
}

#[derive(Debug)]
struct CallRecord {
    id: u32,
    made_at: Instant,
    deadline: Option<Instant>,
    then: Option<Then>,
    /// `poll_transmit` gave its request at least once.
    handed: bool,
    /// A server session took its request.
    taken: bool,
    outcome: Option<Outcome>,
}

struct Model {
    rng: XorShift,
    calls: Vec<CallRecord>,
    /// Calls without an outcome yet, by id.
    live: HashMap<u32, usize>,
    trace: VecDeque<String>,
    /// The game closed the session (a `Disconnected` may follow).
    closing: bool,
}

impl Model {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn record(&mut self, serial: usize, outcome: Outcome, now: Instant, via_callback: bool) -> Option<Then> {
        self.note(format!("  outcome of call {serial}: {outcome:?}"));
        let call = &mut self.calls[serial];
        assert!(call.outcome.is_none(), "call {serial}: a second outcome {outcome:?}");
        assert_eq!(call.then.is_some(), via_callback, "call {serial}: its outcome went to the wrong place");
        match &outcome {
            Outcome::Reply(body) => {
                assert!(call.taken, "call {serial}: a reply to a request no server took");
                assert_eq!(body, &call.id.to_le_bytes(), "call {serial}: another call's reply");
            }
            Outcome::Timeout => {
                let deadline = call.deadline.unwrap_or_else(|| panic!("call {serial} has no deadline"));
                assert!(now >= deadline, "call {serial} timed out early");
            }
            Outcome::Disconnected => assert!(call.handed, "call {serial}: Disconnected but never sent"),
            Outcome::Closed => assert!(!call.handed, "call {serial}: Closed but it was sent"),
            Outcome::Error { .. } | Outcome::AnswerLost | Outcome::Redirect(_) => {
                panic!("call {serial}: the fake server sends no error")
            }
            Outcome::TickReply { .. } => panic!("call {serial}: the fake server sends no stamped reply"),
        }
        call.outcome = Some(outcome);
        let id = call.id;
        assert_eq!(self.live.remove(&id), Some(serial));
        self.calls[serial].then
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn make_call(s: &mut Session, model: &Arc<Mutex<Model>>, from_callback: bool) {
    let now = s.now();
    let (serial, timeout, then) = {
        let mut m = lock(model);
        let timeout = match m.below(10) {
            0..=5 => None,
            6 | 7 => Some(MS * (1 + m.below(800) as u32)),
            8 => Some(Duration::MAX),
            _ if from_callback => None,
            _ => Some(MS * 30),
        };
        let then = match m.below(40) {
            0..=19 => None,
            20..=32 => Some(Then::Nothing),
            33..=36 => Some(Then::Call),
            37 | 38 => Some(Then::Drop),
            // Rare: a closed session has little left to test.
            _ => Some(if m.below(15) == 0 { Then::Close } else { Then::Nothing }),
        };
        let serial = m.calls.len();
        let deadline = now.checked_add(timeout.unwrap_or(Duration::from_millis(2000)));
        m.calls.push(CallRecord {
            id: 0,
            made_at: now,
            deadline,
            then,
            handed: false,
            taken: false,
            outcome: None,
        });
        m.note(format!("  call {serial}, timeout {timeout:?}, then {then:?}"));
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
    let result = s.call_with("act", &(serial as u32), options, now);
    let mut m = lock(model);
    match result {
        Ok(id) => {
            m.calls[serial].id = id.0;
            assert!(m.live.insert(id.0, serial).is_none(), "two live calls share id {id}");
        }
        Err(e) => {
            m.calls.pop();
            m.note(format!("  call {serial} refused: {e}"));
        }
    }
}

fn on_outcome(s: &mut Session, model: &Arc<Mutex<Model>>, serial: usize, outcome: Outcome) {
    let now = s.now();
    let then = lock(model).record(serial, outcome, now, true);
    match then {
        Some(Then::Call) => make_call(s, model, true),
        Some(Then::Drop) => s.handle_disconnect(now),
        Some(Then::Close) => {
            lock(model).closing = true;
            s.close(now);
        }
        Some(Then::Nothing) | None => {}
    }
}

// ----- the fake server -----

/// One session on the fake server.
#[derive(Debug)]
struct ServerSession {
    id: u64,
    secret: Secret,
    /// Requests taken: the last `seq`.
    taken: u64,
    /// Callback ids of requests taken and not answered.
    unanswered: Vec<u32>,
    /// Every sequenced frame sent on it, in order.
    frames: Vec<Vec<u8>>,
    /// How many of them reached the client.
    delivered: u64,
    /// Pushes made on it.
    pushes: u32,
    /// The link carrying it, by number.
    link: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Tcp,
    Open,
    /// Welcomed with the new session `spare`; the client's first frame decides.
    Welcomed {
        spare: u64,
    },
    /// A Resume arrived (of session `session`, if it lives, having received `received`); the
    /// answer is not sent yet.
    ResumeAsked {
        session: Option<u64>,
        received: u64,
        spare: u64,
    },
    /// The link carries this session.
    Carrying {
        session: u64,
    },
}

#[derive(Debug)]
struct Link {
    number: u64,
    phase: Phase,
    /// False once it is a black hole: nothing gets through either way.
    alive: bool,
}

struct Run {
    s: Session,
    m: Arc<Mutex<Model>>,
    t0: Instant,
    now: Instant,
    epoch: u64,
    sessions: HashMap<u64, ServerSession>,
    next_session: u64,
    secrets: u8,
    link: Option<Link>,
    links: u64,
    /// The last push number received per session.
    pushes_seen: HashMap<u64, u32>,
    /// Resumes answered, by kind, and their events seen.
    resumes_accepted: u64,
    resumes_refused: u64,
    resumed_events: u64,
    ended_events: u64,
}

fn run(seed: u64) -> Coverage {
    let mut rng = XorShift::new(seed);
    let heartbeat = rng.below(3) != 0;
    let config = Config {
        call_timeout: Duration::from_millis(2000),
        heartbeat_interval: if heartbeat { MS * (50 + rng.below(200) as u32) } else { Duration::MAX },
        idle_timeout: if heartbeat { MS * (300 + rng.below(500) as u32) } else { Duration::MAX },
        connect_timeout: MS * (300 + rng.below(900) as u32),
        backoff_initial: 20 * MS,
        backoff_max: 300 * MS,
        max_attempts: None,
        ack_after_frames: 1 + rng.below(8),
        jitter_seed: Some(seed),
        ..Config::default()
    };
    let model = Arc::new(Mutex::new(Model {
        rng,
        calls: Vec::new(),
        live: HashMap::new(),
        trace: VecDeque::new(),
        closing: false,
    }));
    let _report = ReportOnPanic { seed, model: model.clone() };
    let t0 = Instant::now();
    let mut run = Run {
        s: Session::new(config, t0),
        m: model,
        t0,
        now: t0,
        epoch: 1,
        sessions: HashMap::new(),
        next_session: 100,
        secrets: 0,
        link: None,
        links: 0,
        pushes_seen: HashMap::new(),
        resumes_accepted: 0,
        resumes_refused: 0,
        resumed_events: 0,
        ended_events: 0,
    };
    for _ in 0..STEPS {
        run.step();
        run.after_step();
    }
    run.finish()
}

struct ReportOnPanic {
    seed: u64,
    model: Arc<Mutex<Model>>,
}

impl Drop for ReportOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for line in &lock(&self.model).trace {
                eprintln!("{line}");
            }
            eprintln!(
                "session_random_v2: seed {} failed; replay it with\n  SESSION_SEED={} cargo test -p ticksock-client --test session_random_v2",
                self.seed, self.seed
            );
        }
    }
}

type Step = fn(&mut Run);

impl Run {
    fn below(&self, n: u64) -> u64 {
        lock(&self.m).below(n)
    }

    fn note(&self, line: String) {
        let at = self.now - self.t0;
        lock(&self.m).note(format!("[{at:?}] {line}"));
    }

    fn step(&mut self) {
        const WEIGHTS: [(u64, Step); 17] = [
            (14, Run::game_calls),
            (14, Run::transmit),
            (14, Run::server_answers),
            (6, Run::server_pushes),
            (3, Run::server_acks),
            (6, Run::server_answers_resume),
            (4, Run::server_pongs),
            (6, Run::carry_out_link_commands),
            (10, Run::game_polls_events),
            (12, Run::time_passes),
            (10, Run::connect),
            (10, Run::tcp_opens),
            (10, Run::server_welcomes),
            (4, Run::network_drops),
            (1, Run::link_goes_dead),
            (1, Run::session_expires),
            (1, Run::server_restarts),
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
        make_call(&mut self.s, &self.m, false);
    }

    /// The I/O layer sends some frames; the server reads them.
    fn transmit(&mut self) {
        let n = 1 + self.below(4);
        self.note(format!("transmit up to {n}"));
        for _ in 0..n {
            let asked = self.link.as_ref().is_some_and(|l| matches!(l.phase, Phase::ResumeAsked { .. }));
            let Some(frame) = self.s.poll_transmit() else { return };
            assert!(!asked, "a frame after the Resume, before its answer");
            let decoded = v2::decode_client_frame(Encoding::Binary, &frame).expect("a version 2 frame");
            self.note(format!("  {decoded:?}"));
            if let v2::ClientFrame::Request { request, .. } = decoded {
                let mut m = lock(&self.m);
                if let Some(&serial) = m.live.get(&request.id) {
                    m.calls[serial].handed = true;
                }
            }
            let link = self.link.as_mut().expect("frames come only while a link is open");
            if !link.alive {
                self.note("  lost in the black hole".into());
                continue;
            }
            self.server_reads(decoded);
        }
    }

    fn server_reads(&mut self, frame: v2::ClientFrame<'_>) {
        let link = self.link.as_mut().expect("a link");
        let number = link.number;
        let session = match (link.phase, frame) {
            (Phase::Welcomed { spare }, v2::ClientFrame::Resume { session, epoch, secret, received }) => {
                let live = self.sessions.get(&session).filter(|s| epoch == self.epoch && s.secret == secret);
                if let Some(held) = live {
                    assert_eq!(received, held.delivered, "the Resume's count is not what was delivered");
                }
                link.phase = Phase::ResumeAsked { session: live.map(|s| s.id), received, spare };
                return;
            }
            (_, v2::ClientFrame::Resume { .. }) => panic!("a Resume that is not the link's first frame"),
            (Phase::Welcomed { spare }, _) => {
                // The first frame of a fresh session starts it.
                link.phase = Phase::Carrying { session: spare };
                self.sessions.get_mut(&spare).expect("the welcome's session").link = Some(number);
                spare
            }
            (Phase::Carrying { session }, _) => session,
            (phase, frame) => panic!("{frame:?} on a link in {phase:?}"),
        };
        let held = self.sessions.get_mut(&session).expect("a live session");
        match frame {
            v2::ClientFrame::Ack { ack } => assert_eq!(ack, held.delivered, "an Ack of another count"),
            v2::ClientFrame::Request { seq, ack, request } => {
                assert_eq!(seq, held.taken + 1, "request numbers with a gap or a duplicate");
                assert_eq!(ack, held.delivered, "a request acknowledging another count");
                held.taken = seq;
                held.unanswered.push(request.id);
                let mut m = lock(&self.m);
                if let Some(&serial) = m.live.get(&request.id) {
                    m.calls[serial].taken = true;
                }
            }
            v2::ClientFrame::Resume { .. } => unreachable!("handled above"),
        }
    }

    /// The session the current link carries, if it is alive and carrying.
    fn carried(&self) -> Option<u64> {
        match self.link.as_ref()? {
            Link { phase: Phase::Carrying { session }, alive: true, .. } => Some(*session),
            _ => None,
        }
    }

    /// Sends a sequenced frame on session `sid`: kept, and delivered if its link is up.
    fn emit(&mut self, sid: u64, frame: Vec<u8>) {
        let Some(held) = self.sessions.get_mut(&sid) else { return };
        held.frames.push(frame);
        if self.carried() == Some(sid) {
            self.deliver_pending(sid);
        }
    }

    /// Delivers the frames of `sid` its client has not had, while the client is up.
    fn deliver_pending(&mut self, sid: u64) {
        loop {
            if self.s.link_state() != LinkState::Up {
                return;
            }
            let Some(held) = self.sessions.get_mut(&sid) else { return };
            let Some(frame) = held.frames.get(held.delivered as usize).cloned() else { return };
            held.delivered += 1;
            self.s.handle_frame(&frame, self.now);
        }
    }

    fn server_answers(&mut self) {
        let mut candidates: Vec<(u64, usize)> = Vec::new();
        for (sid, held) in &self.sessions {
            candidates.extend((0..held.unanswered.len()).map(|at| (*sid, at)));
        }
        if candidates.is_empty() {
            return;
        }
        candidates.sort_unstable();
        let (sid, at) = candidates[self.below(candidates.len() as u64) as usize];
        let id = self.sessions.get_mut(&sid).expect("listed").unanswered.swap_remove(at);
        self.note(format!("session {sid} answers id {id}"));
        self.emit(sid, ServerFrame::Reply { id, body: &id.to_le_bytes() }.to_vec());
    }

    fn server_pushes(&mut self) {
        let mut sids: Vec<u64> = self.sessions.keys().copied().collect();
        if sids.is_empty() {
            return;
        }
        sids.sort_unstable();
        let sid = sids[self.below(sids.len() as u64) as usize];
        let held = self.sessions.get_mut(&sid).expect("listed");
        held.pushes += 1;
        let n = held.pushes;
        let body = ticksock_protocol::encode_body(&(sid, n)).expect("encodes");
        self.note(format!("session {sid} pushes {n}"));
        self.emit(sid, ServerFrame::Push { topic: "n".into(), body: &body }.to_vec());
    }

    fn server_acks(&mut self) {
        let Some(sid) = self.carried() else { return };
        let taken = self.sessions[&sid].taken;
        let mut frame = Vec::new();
        v2::write_server_ack(Encoding::Binary, &mut frame, taken);
        self.note(format!("session {sid} acknowledges {taken}"));
        if self.s.link_state() == LinkState::Up {
            self.s.handle_frame(&frame, self.now);
        }
    }

    fn new_secret(&mut self) -> Secret {
        self.secrets = self.secrets.wrapping_add(1);
        [self.secrets; 16]
    }

    fn server_answers_resume(&mut self) {
        let Some(link) = self.link.as_mut().filter(|l| l.alive) else { return };
        let Phase::ResumeAsked { session, received, spare } = link.phase else { return };
        let number = link.number;
        let refuse = self.below(8) == 0;
        // It may have expired since the Resume arrived.
        let session = session.filter(|sid| self.sessions.contains_key(sid));
        match session.filter(|_| !refuse) {
            Some(sid) => {
                let secret = self.new_secret();
                let link = self.link.as_mut().expect("checked");
                link.phase = Phase::Carrying { session: sid };
                self.sessions.remove(&spare);
                let held = self.sessions.get_mut(&sid).expect("live");
                held.secret = secret;
                held.link = Some(number);
                held.delivered = received;
                let taken = held.taken;
                let mut frame = Vec::new();
                v2::write_resumed(Encoding::Binary, &mut frame, taken, &secret);
                self.note(format!("resumed session {sid}: taken {taken}, replay after {received}"));
                self.resumes_accepted += 1;
                self.s.handle_frame(&frame, self.now);
                self.deliver_pending(sid);
            }
            None => {
                let reason = if refuse { resume_reason::SUPERSEDED } else { resume_reason::ENDED };
                if refuse && let Some(sid) = session {
                    // Refused for a reason that leaves the session be: it waits on, unclaimed.
                    self.note(format!("resume of session {sid} refused"));
                }
                let link = self.link.as_mut().expect("checked");
                link.phase = Phase::Carrying { session: spare };
                self.sessions.get_mut(&spare).expect("the welcome's session").link = Some(number);
                let mut frame = Vec::new();
                v2::write_resume_failed(Encoding::Binary, &mut frame, reason, resume_reason::name(reason));
                self.note(format!("resume refused: {}", resume_reason::name(reason)));
                self.resumes_refused += 1;
                self.s.handle_frame(&frame, self.now);
            }
        }
    }

    fn server_pongs(&mut self) {
        if self.link.as_ref().is_some_and(|l| l.alive && l.phase != Phase::Tcp) {
            self.note("the server is heard".into());
            self.s.handle_heard(self.now);
        }
    }

    /// What the link commands mean to the server: a close frame ends the session carried; a
    /// drop leaves it waiting.
    fn carry_out_link_commands(&mut self) {
        while let Some(command) = self.s.poll_link() {
            self.note(format!("  {command:?}"));
            match command {
                LinkCommand::Ping => {}
                LinkCommand::Drop => self.link_gone(false),
                LinkCommand::Close { .. } => {
                    let alive = self.link.as_ref().is_some_and(|l| l.alive);
                    self.link_gone(alive);
                }
                LinkCommand::Redirect => panic!("the fake server never redirects"),
            }
        }
    }

    /// The server loses the link; `closed`: by a close frame, which ends its session.
    fn link_gone(&mut self, closed: bool) {
        let Some(link) = self.link.take() else { return };
        let carried = match link.phase {
            Phase::Carrying { session } => Some(session),
            Phase::Welcomed { spare } | Phase::ResumeAsked { spare, .. } => {
                self.sessions.remove(&spare); // Never started.
                None
            }
            Phase::Tcp | Phase::Open => None,
        };
        if let Some(sid) = carried {
            if closed {
                self.note(format!("  session {sid} ends with its link"));
                self.sessions.remove(&sid);
            } else if let Some(held) = self.sessions.get_mut(&sid) {
                held.link = None;
            }
        }
    }

    fn game_polls_events(&mut self) {
        let n = if self.below(2) == 0 { usize::MAX } else { 1 + self.below(3) as usize };
        for _ in 0..n {
            let Some(event) = self.s.poll_event() else { return };
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: Event) {
        self.note(format!("  {event:?}"));
        match event {
            Event::Outcome { id, outcome, elapsed, .. } => {
                let mut m = lock(&self.m);
                let serial = *m.live.get(&id.0).unwrap_or_else(|| panic!("an outcome for {id}, not waiting"));
                // Checked at the time it happened, not when the game reads it.
                let at = m.calls[serial].made_at + elapsed;
                m.record(serial, outcome, at, false);
            }
            Event::Push { topic, body } => {
                assert_eq!(topic, "n");
                let (sid, n): (u64, u32) = ticksock_protocol::decode_body(&body).expect("a push body");
                let last = self.pushes_seen.entry(sid).or_default();
                assert_eq!(n, *last + 1, "session {sid}: push {n} after {last}");
                *last = n;
            }
            Event::Resumed { .. } => {
                self.resumed_events += 1;
                assert!(self.resumed_events <= self.resumes_accepted, "Resumed without a resume");
            }
            Event::SessionEnded { reason } => {
                self.ended_events += 1;
                assert!(matches!(reason, SessionEnd::ResumeFailed { .. }), "{reason:?}");
                assert!(self.ended_events <= self.resumes_refused, "SessionEnded without a refusal");
            }
            Event::Disconnected => assert!(lock(&self.m).closing, "Disconnected while the session lives"),
            Event::Connected { .. }
            | Event::LinkDropped
            | Event::Reconnecting { .. }
            | Event::Stopped { .. } => {}
            Event::BadPush { .. }
            | Event::EventsDropped { .. }
            | Event::ProtocolError { .. }
            | Event::Redirected { .. }
            | Event::TokenRefused { .. } => {
                panic!("the fake server is correct, never redirects and knows no tokens: {event:?}")
            }
        }
    }

    fn time_passes(&mut self) {
        let dt = match self.below(20) {
            0..=3 => self.s.poll_timeout().map_or(10 * MS, |at| at.saturating_duration_since(self.now)),
            4..=17 => MS * (1 + self.below(30) as u32),
            _ => MS * (100 + self.below(1500) as u32),
        };
        self.now += dt;
        self.note(format!("time passes: {dt:?}"));
        if self.s.poll_timeout().is_some_and(|at| at <= self.now) {
            self.s.handle_timeout(self.now);
        }
    }

    fn connect(&mut self) {
        if self.link.is_some() {
            return;
        }
        while self.s.poll_link().is_some() {}
        if self.s.poll_connect(self.now) {
            self.links += 1;
            self.note(format!("connect: link {}", self.links));
            self.link = Some(Link { number: self.links, phase: Phase::Tcp, alive: true });
        }
    }

    fn tcp_opens(&mut self) {
        let Some(link) = self.link.as_mut().filter(|l| l.phase == Phase::Tcp) else { return };
        link.phase = Phase::Open;
        self.note("the WebSocket opens, version 2".into());
        self.s.handle_connected(Version::V2, self.now);
    }

    fn server_welcomes(&mut self) {
        let Some(link) = self.link.as_mut().filter(|l| l.alive && l.phase == Phase::Open) else { return };
        let spare = self.next_session;
        self.next_session += 1;
        link.phase = Phase::Welcomed { spare };
        let secret = self.new_secret();
        let held = ServerSession {
            id: spare,
            secret,
            taken: 0,
            unanswered: Vec::new(),
            frames: Vec::new(),
            delivered: 0,
            pushes: 0,
            link: None,
        };
        self.sessions.insert(spare, held);
        let mut frame = Vec::new();
        v2::write_welcome(Encoding::Binary, &mut frame, 30, spare, self.epoch, &secret);
        self.note(format!("welcome: new session {spare}"));
        self.s.handle_frame(&frame, self.now);
    }

    fn network_drops(&mut self) {
        let Some(link) = &self.link else { return };
        if !matches!(link.phase, Phase::Carrying { .. }) && self.below(4) != 0 {
            return; // Mostly links that carry a session: those are the ones to resume.
        }
        self.note("the network drops the link".into());
        self.link_gone(false);
        self.s.handle_disconnect(self.now);
    }

    fn link_goes_dead(&mut self) {
        if let Some(link) = self.link.as_mut() {
            link.alive = false;
            self.note("the link goes dead".into());
        }
    }

    fn session_expires(&mut self) {
        if self.below(3) != 0 {
            return; // Rarer than a drop: most sessions outlive a few.
        }
        let expired: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.link.is_none() && self.is_started(s.id))
            .map(|s| s.id)
            .collect();
        if let Some(&sid) = expired.first() {
            self.note(format!("session {sid} expires"));
            self.sessions.remove(&sid);
        }
    }

    /// Whether `sid` is a started session (not the spare of the current link's welcome).
    fn is_started(&self, sid: u64) -> bool {
        !matches!(
            self.link.as_ref().map(|l| l.phase),
            Some(Phase::Welcomed { spare } | Phase::ResumeAsked { spare, .. }) if spare == sid
        )
    }

    fn server_restarts(&mut self) {
        if self.below(3) != 0 {
            return;
        }
        self.note("the server restarts".into());
        self.epoch += 1;
        self.sessions.clear();
        if self.link.take().is_some() {
            self.s.handle_disconnect(self.now);
        }
    }

    fn after_step(&mut self) {
        let state = self.s.link_state();
        if matches!(state, LinkState::Down | LinkState::Closed) && self.link.is_some() {
            // The session let the link go (a command, or a callback's drop or close).
            self.carry_out_link_commands();
            if self.link.is_some() {
                self.link_gone(false);
            }
        }
        let m = lock(&self.m);
        let pending = m.live.keys().filter(|&&id| self.s.is_pending(ticksock_client::CallId(id))).count();
        assert_eq!(self.s.pending_calls(), pending, "the session waits on calls the game does not know");
        if state == LinkState::Closed {
            assert_eq!(self.s.poll_timeout(), None);
        }
    }

    fn finish(mut self) -> Coverage {
        lock(&self.m).closing = true;
        self.s.close(self.now);
        self.after_step();
        while let Some(event) = self.s.poll_event() {
            self.on_event(event);
        }
        let m = lock(&self.m);
        for (serial, call) in m.calls.iter().enumerate() {
            assert!(call.outcome.is_some(), "call {serial} never got an outcome");
        }
        assert_eq!(self.s.pending_calls(), 0);
        assert_eq!(self.resumed_events, self.resumes_accepted, "a resume without its event");
        Coverage {
            accepted: self.resumes_accepted,
            refused: self.resumes_refused,
            resent: self.s.stats().resent,
        }
    }
}
