//! A crash is survivable: the real `ticksock-arena` binary is SIGKILLed while clients of the
//! Rust client crate call it continuously, and a new one is started at once on the same port.
//!
//! What it checks:
//! - the port binds at once, with no retry, although connections of the killed server still
//!   hold it (FIN_WAIT or TIME_WAIT): the test checks that a listener without `SO_REUSEADDR`
//!   could not bind it at that moment, so the restart shows that the server sets it;
//! - every client reconnects by itself (the test only drives its loop: `update`, `poll_event`)
//!   within `backoff_max + connect_timeout` of the new server listening, gets a new welcome,
//!   logs in and joins again on `Event::Connected` as a game does, and its calls are answered
//!   again;
//! - every call sent to the killed server ends: answered before the kill, or
//!   `Outcome::Disconnected` at the drop (before the reconnect, long before its timeout); the
//!   calls made while the server was frozen just before the kill are certainly in flight, and
//!   all of them end so. Every call made after the kill (one queued offline, then the load on the
//!   new connection) is answered;
//! - the game after the restart is fresh: player ids start again at 1 (docs/PROTOCOL.md 8.7).
//!
//! "Nothing on disk is corrupt" and "nothing acknowledged is lost" for the database are
//! checked in `durability.rs`; this test's server keeps its database in the target dir.
//!
//! Linux only: it freezes the server with SIGSTOP and reads `/proc` to know the freeze took
//! hold, and what holds the port after the kill (above) is as Linux's TCP does it.
#![cfg(target_os = "linux")]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ticksock_arena::proto::{
    Join, Joined, LoggedIn, Login, Move, Moved, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LOGIN, ROUTE_MOVE,
};
use ticksock_client::{CallId, CallOptions, Client, Config, Event, Outcome, Versions};

/// Players in the arena. The first [`BUSY`] call continuously; the others only watch, so their
/// connections have nothing unread at the kill and close with a FIN, which leaves the port in
/// FIN_WAIT or TIME_WAIT (a connection with unread requests is reset instead and leaves
/// nothing). Two watchers, in case a late pong sits unread in one of them.
const PLAYERS: usize = 5;
const BUSY: usize = 3;
/// The arena they play in.
const ROOM: &str = "lobby";
/// A busy player's calls in flight at most, and the least time between two of its calls: about
/// 500 calls a second each, under the server's default limit of 1000 messages a second.
const WINDOW: usize = 16;
const PACE: Duration = Duration::from_millis(2);
/// Replies each busy player gets from the first server before the kill, then from the second:
/// the load was on, and is on again.
const REPLIES_BEFORE: usize = 200;
const REPLIES_AFTER: usize = 100;
/// Calls each busy player makes while the server is frozen: certainly in flight at the kill.
const FROZEN_CALLS: usize = 4;
/// The bound of the waits that have none of their own: generous, for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);
/// The longest the test's loop waits on a socket between two turns.
const TURN: Duration = Duration::from_millis(1);

/// The clients' settings: no giving up (the test bounds the wait itself), and a first retry
/// soon enough (2.5 to 5 ms after the drop) to be refused before the new server listens, so
/// the retries after a refusal are part of the test.
fn client_config() -> Config {
    Config {
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(3),
        max_attempts: None,
        // What this test checks is version 1's (docs/PROTOCOL.md section 2): calls in flight
        // fail at the drop. (On version 2 they wait for the resume, which the new server
        // refuses; client/tests/resume.rs checks that.)
        versions: Versions::V1Only,
        ..Config::default()
    }
}

#[test]
fn a_server_killed_under_load_restarts_on_its_port_and_every_client_comes_back() {
    let mut first = ServerProcess::spawn("127.0.0.1:0".parse().expect("a literal address"));
    let addr = first.address();
    let mut players: Vec<Player> = (0..PLAYERS).map(|i| Player::new(i, addr)).collect();

    // Load: every player logged in and in the arena, the busy ones answered again and again.
    run_until(&mut players, true, "every player plays on the first server", |players| {
        players.iter().all(|p| p.ready_on == 1 && (!p.busy || p.replies_on(1) >= REPLIES_BEFORE))
    });
    let first_ids: BTreeSet<u32> = players.iter().map(|p| p.player_ids[0]).collect();
    assert_eq!(first_ids, (1..=PLAYERS as u32).collect(), "ids on the first server");

    // Freeze the server, then call: those calls stay unanswered whatever the timing.
    first.freeze();
    for player in players.iter_mut().filter(|p| p.busy) {
        for _ in 0..FROZEN_CALLS {
            player.load_call(true);
        }
        assert_eq!(player.client.session().queued_calls(), 0, "{}: the frozen calls were sent", player.name);
    }
    let killed_at = Instant::now();
    first.kill();

    // The killed server's connections still hold the port: a listener without SO_REUSEADDR
    // cannot have it now, so the restart below shows that the server sets it.
    match bind_without_reuseaddr(addr) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        other => panic!(
            "binding {addr} without SO_REUSEADDR right after the kill gave {other:?}, not AddrInUse: \
             no connection of the killed server held the port (the watchers' should, in TIME_WAIT), \
             so this run cannot show that the restart needs SO_REUSEADDR"
        ),
    }
    let mut second = ServerProcess::spawn(addr);

    // The clients run on meanwhile: they see the drop, and retry (refused until it listens).
    let deadline = Instant::now() + PATIENCE;
    let up_at = loop {
        assert!(Instant::now() < deadline, "the new server did not print its address within {PATIENCE:?}");
        turn(&mut players, true);
        if let Some(listening) = second.poll_address() {
            assert_eq!(listening, addr, "the new server listens on the killed one's port");
            break Instant::now();
        }
    };

    // Each client reconnects within its backoff's longest delay (the next attempt after the
    // last refused one) plus the connect timeout (that attempt reaches the welcome, or fails).
    let config = client_config();
    let reconnect_by = up_at + config.backoff_max + config.connect_timeout;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = Instant::now();
        for p in players.iter().filter(|p| p.welcomes.len() < 2) {
            assert!(
                now <= reconnect_by,
                "{} did not reconnect within {:?} of the new server listening: {:?}, last error {:?}",
                p.name,
                reconnect_by - up_at,
                p.client.session(),
                p.client.last_error()
            );
        }
        let done = players.iter().all(|p| {
            p.ready_on == 2 && p.offline_answered() && (!p.busy || p.replies_on(2) >= REPLIES_AFTER)
        });
        if done {
            break;
        }
        assert!(now < deadline, "the players did not play again within {PATIENCE:?}: {players:#?}");
        turn(&mut players, true);
    }
    // The load stops; the calls still out are answered.
    run_until(&mut players, false, "the last calls are answered", |players| {
        players.iter().all(|p| p.client.session().pending_calls() == 0)
    });

    for player in &players {
        player.check(killed_at, &config);
        let reconnected = player.welcomes[1].saturating_duration_since(up_at);
        println!(
            "{}: reconnected {reconnected:?} after the new server listened, {} connect attempts, \
             {} calls ended Disconnected, conn_id {} then {}",
            player.name,
            player.client.session().stats().connect_attempts,
            player.client.session().stats().disconnected,
            player.conn_ids[0],
            player.conn_ids[1],
        );
    }
    let second_ids: BTreeSet<u32> = players.iter().map(|p| p.player_ids[1]).collect();
    assert_eq!(second_ids, (1..=PLAYERS as u32).collect(), "a fresh game numbers its players from 1 again");
    assert!(second.is_running(), "the new server is still up");
    println!("the new server listened {:?} after the kill", up_at - killed_at);
}

/// One turn of the clients' loop: each does what is due, then the loop waits a little on the
/// first one's socket (a short breath, not a spin).
fn turn(players: &mut [Player], load: bool) {
    for player in players.iter_mut() {
        player.pump(load);
    }
    players[0].client.wait(TURN).expect("polling a socket");
}

/// Runs the clients until `done` holds, at most [`PATIENCE`].
fn run_until(players: &mut [Player], load: bool, what: &str, mut done: impl FnMut(&[Player]) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(players) {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}: {players:#?}");
        turn(players, load);
    }
}

/// Binds a TCP socket to `addr` without `SO_REUSEADDR`: socket2 sets no option on a new socket,
/// unlike the standard library's and mio's `TcpListener::bind`, which set it on Unix.
fn bind_without_reuseaddr(addr: SocketAddr) -> std::io::Result<()> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.bind(&addr.into())
}

/// What a call asked, to check its answer.
#[derive(Debug)]
enum Request {
    Login,
    Join,
    Move,
    Echo(Vec<u8>),
}

/// A call and how it ended.
#[derive(Debug)]
struct Call {
    request: Request,
    made_at: Instant,
    /// Welcomes the client had received when it made the call: the connection it was made on.
    conn: usize,
    /// Whether that connection was up (else the call waited in the offline queue).
    online: bool,
    /// Made while the server was frozen, just before the kill.
    frozen: bool,
    outcome: Option<(Outcome, Instant)>,
}

/// One client and what it saw.
struct Player {
    name: String,
    busy: bool,
    client: Client,
    calls: HashMap<CallId, Call>,
    /// When each welcome (`Event::Connected`) came.
    welcomes: Vec<Instant>,
    /// The connection id each welcome gave (for the report: a new server may give the same).
    conn_ids: Vec<u64>,
    /// The `player_id` each connection's login answered.
    player_ids: Vec<u32>,
    /// The connection (counted in welcomes) on which the join was answered: from then on it plays.
    ready_on: usize,
    /// `Event::Disconnected`s seen.
    drops: usize,
    /// Load calls answered with a reply, by connection.
    replies: [usize; 3],
    next_call_at: Instant,
    sequence: u32,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("name", &self.name)
            .field("welcomes", &self.welcomes.len())
            .field("ready_on", &self.ready_on)
            .field("drops", &self.drops)
            .field("replies", &self.replies)
            .field("session", self.client.session())
            .field("last_error", &self.client.last_error())
            .finish()
    }
}

impl Player {
    fn new(index: usize, addr: SocketAddr) -> Self {
        let client = Client::new(&format!("ws://{addr}/"), client_config()).expect("a valid URL");
        Self {
            name: format!("crash-{index}"),
            busy: index < BUSY,
            client,
            calls: HashMap::new(),
            welcomes: Vec::new(),
            conn_ids: Vec::new(),
            player_ids: Vec::new(),
            ready_on: 0,
            drops: 0,
            replies: [0; 3],
            next_call_at: Instant::now(),
            sequence: 0,
        }
    }

    /// Load calls answered with a reply on connection `conn`.
    fn replies_on(&self, conn: usize) -> usize {
        self.replies[conn]
    }

    /// Whether the call made while offline has been answered.
    fn offline_answered(&self) -> bool {
        self.calls.values().any(|c| !c.online && c.outcome.is_some())
    }

    /// Does what is due: the client's I/O and timers, its events (logging in and joining again
    /// on every welcome, a call queued on every drop), and, if `load`, the next load call.
    fn pump(&mut self, load: bool) {
        self.client.update(Instant::now());
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Connected { conn_id, .. } => {
                    self.welcomes.push(Instant::now());
                    self.conn_ids.push(conn_id);
                    self.call(Request::Login, false);
                    self.call(Request::Join, false);
                }
                Event::Outcome { id, outcome, .. } => self.ended(id, outcome),
                Event::Disconnected => {
                    self.drops += 1;
                    // A game that goes on while offline: this call waits for the next connection.
                    self.call(Request::Move, false);
                }
                Event::Stopped { reason } => panic!("{}: the client stopped: {reason}", self.name),
                Event::ProtocolError { problem } => panic!("{}: protocol error: {problem}", self.name),
                Event::Reconnecting { .. }
                | Event::Push { .. }
                | Event::BadPush { .. }
                | Event::EventsDropped { .. } => {}
                Event::LinkDropped | Event::Resumed { .. } | Event::SessionEnded { .. } => {
                    panic!("{}: a version 2 event on version 1: {event:?}", self.name)
                }
                Event::Redirected { .. } => {
                    panic!("{}: a redirect from a single server: {event:?}", self.name)
                }
                Event::TokenRefused { .. } => panic!("{}: no token was offered: {event:?}", self.name),
            }
        }
        let playing = self.client.is_connected() && self.ready_on == self.welcomes.len();
        let now = Instant::now();
        if load && self.busy && playing && now >= self.next_call_at {
            if self.client.session().pending_calls() < WINDOW {
                self.load_call(false);
            }
            self.next_call_at = now + PACE;
        }
    }

    /// Makes the next load call: a move and an echo in turn.
    fn load_call(&mut self, frozen: bool) {
        self.sequence += 1;
        let request = if self.sequence.is_multiple_of(2) {
            Request::Move
        } else {
            Request::Echo(format!("{} {}", self.name, self.sequence).into_bytes())
        };
        self.call(request, frozen);
    }

    fn call(&mut self, request: Request, frozen: bool) {
        let made_at = Instant::now();
        let online = self.client.is_connected();
        let client = &mut self.client;
        let id = match &request {
            Request::Login => client.call(ROUTE_LOGIN, &Login { name: self.name.clone() }),
            Request::Join => client.call(ROUTE_JOIN, &Join { room: ROOM.into() }),
            Request::Move => {
                let dx = if self.sequence.is_multiple_of(4) { 1 } else { -1 };
                client.call(ROUTE_MOVE, &Move { dx, dy: 0 })
            }
            Request::Echo(body) => client.call_raw(ROUTE_ECHO, body, CallOptions::default()),
        }
        // Calls fail at once only on a full offline queue, a frame too large, or a closed
        // session: a few small calls at a time, on a session that never gives up.
        .unwrap_or_else(|e| panic!("{}: the call was refused at once: {e}", self.name));
        let conn = self.welcomes.len();
        let call = Call { request, made_at, conn, online, frozen, outcome: None };
        assert!(self.calls.insert(id, call).is_none(), "{}: {id} was made twice", self.name);
    }

    /// A call ended: note how; a login or a join is decoded at once (the player plays on it).
    fn ended(&mut self, id: CallId, outcome: Outcome) {
        let name = &self.name;
        let call =
            self.calls.get_mut(&id).unwrap_or_else(|| panic!("{name}: an outcome for {id}, never made"));
        assert!(call.outcome.is_none(), "{name}: a second outcome for {id}: {outcome:?}");
        match call.request {
            Request::Login => {
                let me: LoggedIn = outcome.clone().decode().unwrap_or_else(|e| panic!("{name}: login: {e}"));
                self.player_ids.push(me.player_id);
            }
            Request::Join => {
                let joined: Joined = outcome.clone().decode().unwrap_or_else(|e| panic!("{name}: join: {e}"));
                assert_eq!(joined.room, ROOM);
                self.ready_on = call.conn;
            }
            Request::Move | Request::Echo(_) if outcome.is_reply() && call.online => {
                // A third connection fails the test in `check`; it is not counted here.
                if let Some(replies) = self.replies.get_mut(call.conn) {
                    *replies += 1;
                }
            }
            Request::Move | Request::Echo(_) => {}
        }
        call.outcome = Some((outcome, Instant::now()));
    }

    /// Every call ended as it should have (see the file's docs), and the client is back.
    fn check(&self, killed_at: Instant, config: &Config) {
        let name = &self.name;
        assert_eq!(self.welcomes.len(), 2, "{name}: one welcome from each server");
        assert_eq!(self.client.session().stats().connections, 2, "{name}: two connections");
        assert_eq!(self.drops, 1, "{name}: one drop");
        assert_eq!(self.player_ids.len(), 2, "{name}: one login on each server");
        let reconnected_at = self.welcomes[1];
        let mut dropped = 0;
        for (id, call) in &self.calls {
            let Some((outcome, ended_at)) = &call.outcome else {
                panic!("{name}: {id} ({call:?}) never ended");
            };
            let to_the_killed_server = call.conn == 1 && call.online;
            match outcome {
                Outcome::Disconnected if to_the_killed_server => {
                    dropped += 1;
                    assert!(*ended_at >= killed_at, "{name}: {id} failed before the kill: {call:?}");
                    assert!(*ended_at <= reconnected_at, "{name}: {id} failed only after the reconnect");
                    assert!(
                        *ended_at < call.made_at + config.call_timeout,
                        "{name}: {id} failed at its timeout, not at the drop"
                    );
                }
                Outcome::Reply(body) if !call.frozen => check_reply(name, *id, &call.request, body),
                other => panic!(
                    "{name}: {id} ({call:?}) ended {other:?}; a call to the killed server ends with its \
                     reply or Disconnected (Disconnected if made while it was frozen), any other is answered"
                ),
            }
        }
        if self.busy {
            assert!(dropped >= FROZEN_CALLS, "{name}: {dropped} calls failed at the drop");
        }
        assert_eq!(self.client.session().queued_calls(), 0, "{name}: nothing left in the offline queue");
    }
}

/// A reply is the answer to its call.
fn check_reply(name: &str, id: CallId, request: &Request, body: &[u8]) {
    match request {
        Request::Echo(sent) => assert_eq!(body, sent, "{name}: {id}: echo answers the body it was sent"),
        Request::Move => {
            ticksock_protocol::decode_body::<Moved>(body)
                .unwrap_or_else(|e| panic!("{name}: {id}: move: {e}"));
        }
        Request::Login | Request::Join => {} // Decoded when they ended.
    }
}

/// The `ticksock-arena` binary; killed when dropped, so a failing test leaves no server behind.
struct ServerProcess {
    /// The `--listen` it was given.
    listen: SocketAddr,
    child: Child,
    /// The address it printed on stdout, or why none came.
    listening: Receiver<Result<SocketAddr, String>>,
    /// Its stderr, read to the end (when it exits).
    stderr: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts the server on `listen`; its address comes later ([`ServerProcess::address`]).
    fn spawn(listen: SocketAddr) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticksock-arena"))
            .args(["--listen", &listen.to_string()])
            // Its database in the target dir, not the source tree (the default is the working dir).
            .args(["--db", concat!(env!("CARGO_TARGET_TMPDIR"), "/crash.db")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (tell, listening) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = match lines.next() {
                Some(Ok(line)) => address_in(&line).ok_or_else(|| format!("no address in {line:?}")),
                _ => Err("it exited without saying where it listens".to_owned()),
            };
            // The test may have stopped listening (it failed already): nothing to do then.
            let _ = tell.send(first);
            lines.for_each(drop);
        });
        // Read as it comes, so that the server never blocks on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self { listen, child, listening, stderr: Some(stderr) }
    }

    /// The address it listens on, waiting for it.
    fn address(&mut self) -> SocketAddr {
        match self.listening.recv_timeout(PATIENCE) {
            Ok(Ok(addr)) => addr,
            Ok(Err(why)) => self.failed(&why),
            Err(RecvTimeoutError::Timeout) => self.failed("no address within the patience"),
            Err(RecvTimeoutError::Disconnected) => self.failed("its stdout reader stopped"),
        }
    }

    /// The address it listens on, if it has printed it yet.
    fn poll_address(&mut self) -> Option<SocketAddr> {
        match self.listening.try_recv() {
            Ok(Ok(addr)) => Some(addr),
            Ok(Err(why)) => self.failed(&why),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => self.failed("its stdout reader stopped"),
        }
    }

    /// Fails the test with what the server said on stderr (a bind error, say).
    fn failed(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait();
        let stderr = self.stderr.take().map(|reader| reader.join().unwrap_or_default());
        panic!("the server on --listen {} did not start: {why}; {status:?}; stderr: {stderr:?}", self.listen);
    }

    /// Stops it (SIGSTOP) and waits until every one of its threads has stopped.
    fn freeze(&self) {
        let pid = self.child.id();
        let sent = Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("kill runs");
        assert!(sent.success(), "SIGSTOP to {pid}");
        let deadline = Instant::now() + PATIENCE;
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "the server's threads did not stop within {PATIENCE:?}");
            std::thread::yield_now();
        }
    }

    /// SIGKILL (`Child::kill`), and waits until it is gone: its sockets are closed by then.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert!(!status.success(), "it was killed, not ended: {status:?}");
    }

    /// Whether it has not exited.
    fn is_running(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|status| status.is_none())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the server's first line (`listening on ws://ADDR/ ...`).
fn address_in(line: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("ws://"))
        .and_then(|word| word.trim_end_matches('/').parse().ok())
}

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/PID/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // "PID (NAME) STATE ...": the name may hold spaces and parentheses; the state follows
            // the last ')'.
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
        })
    })
}
