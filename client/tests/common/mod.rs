//! A real in-process server for the client's tests, with a game made for them.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticksock_client::{Client, Config, Event};
use ticksock_server::{AppError, Caller, ConnId, Ctx, Game, Router, RunningServer, Server};

/// Routes: `double` (u32, answered at once), `later` (answered after some ticks), `never`
/// (never answered: the client's timeout is the only way out), `record` (appends a u32 to a log
/// the test reads), `until_drop` (a u32, answered when the caller's version 2 link drops).
///
/// Hooks: each is noted in [`TestGame::hooks`]; when a version 2 link drops, the game answers
/// that session's `until_drop` calls and then pushes `while_down` (how many it answered), so a
/// test knows both were sent while the link was down.
#[derive(Default)]
pub struct TestGame {
    later: Vec<(u64, Caller, u32)>,
    until_drop: Vec<(Caller, u32)>,
    log: Arc<Mutex<Vec<u32>>>,
    hooks: Arc<Mutex<Vec<Hook>>>,
}

/// A game hook the server ran, with its connection (version 2: session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Connect(ConnId),
    Drop(ConnId),
    Resume(ConnId),
    Disconnect(ConnId),
}

/// The topic the game pushes when a link drops.
pub const TOPIC_WHILE_DOWN: &str = "while_down";

impl TestGame {
    fn note(&self, hook: Hook) {
        self.hooks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(hook);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Later {
    pub ticks: u64,
    pub value: u32,
}

impl Game for TestGame {
    fn routes(router: &mut Router<Self>) {
        router
            .route("double", |_, _, _, n: u32| Ok::<_, AppError>(n.wrapping_mul(2)))
            .route("record", |game: &mut TestGame, _, _, n: u32| {
                let mut log = game.log.lock().map_err(|_| AppError::new(3, "poisoned"))?;
                log.push(n);
                Ok::<_, AppError>(log.len() as u32)
            })
            .deferred("later", |game: &mut TestGame, ctx: &mut Ctx<'_>, caller, req: Later| {
                game.later.push((ctx.tick() + req.ticks, caller, req.value));
                Ok(())
            })
            .deferred("never", |_, _, _, (): ()| Ok(()))
            .deferred("until_drop", |game: &mut TestGame, _, caller, value: u32| {
                game.until_drop.push((caller, value));
                Ok(())
            });
    }

    fn on_connect(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.note(Hook::Connect(conn));
    }

    fn on_drop(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let (mine, others): (Vec<_>, Vec<_>) = self.until_drop.drain(..).partition(|(c, _)| c.conn == conn);
        self.until_drop = others;
        for &(caller, value) in &mine {
            ctx.reply(caller, &value);
        }
        ctx.push(conn, TOPIC_WHILE_DOWN, &(mine.len() as u32));
        self.note(Hook::Drop(conn));
    }

    fn on_resume(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.note(Hook::Resume(conn));
    }

    fn on_disconnect(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.until_drop.retain(|(c, _)| c.conn != conn);
        self.note(Hook::Disconnect(conn));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.tick();
        self.later.retain(|&(due, caller, value)| {
            if due <= now {
                ctx.reply(caller, &value);
                false
            } else {
                true
            }
        });
    }
}

/// Starts the test game on `listen` (port 0 for any); returns the server and its log.
pub fn start_at(listen: SocketAddr) -> (RunningServer, Arc<Mutex<Vec<u32>>>) {
    let (server, log, _) = start_game(server_config(listen));
    (server, log)
}

/// The server settings of the tests: 100 ticks a second, a short close timeout.
pub fn server_config(listen: SocketAddr) -> ticksock_server::Config {
    ticksock_server::Config {
        listen,
        tick_hz: 100,
        close_timeout: Duration::from_millis(300),
        ..ticksock_server::Config::default()
    }
}

/// What the `record` route appended, in order.
pub type Log = Arc<Mutex<Vec<u32>>>;

/// The hooks the game ran, in order.
pub type Hooks = Arc<Mutex<Vec<Hook>>>;

/// Starts the test game with `config`; returns the server, its log and its record of hooks.
pub fn start_game(config: ticksock_server::Config) -> (RunningServer, Log, Hooks) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let game = TestGame { log: log.clone(), hooks: hooks.clone(), ..TestGame::default() };
    (Server::start(config, game).expect("server starts"), log, hooks)
}

pub fn start() -> (RunningServer, Arc<Mutex<Vec<u32>>>) {
    start_at("127.0.0.1:0".parse().expect("addr"))
}

pub fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Short timings so tests are fast.
pub fn fast_config() -> Config {
    Config {
        call_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        max_attempts: None,
        stable_after: Duration::from_millis(300),
        jitter_seed: Some(1),
        ..Config::default()
    }
}

/// Updates the client until `pred` accepts an event (returned), or panics after `within`.
/// Events before it are returned too, in order, for inspection.
pub fn pump_until(client: &mut Client, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        client.update(Instant::now());
        while let Some(event) = client.poll_event() {
            let done = pred(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
        let now = Instant::now();
        assert!(now < deadline, "no matching event within {within:?}; saw {seen:?}");
        client.wait((deadline - now).min(Duration::from_millis(20))).expect("wait");
    }
}

/// Updates the client for `span`, returning every event.
pub fn pump_for(client: &mut Client, span: Duration) -> Vec<Event> {
    let deadline = Instant::now() + span;
    let mut seen = Vec::new();
    loop {
        client.update(Instant::now());
        seen.extend(std::iter::from_fn(|| client.poll_event()));
        let now = Instant::now();
        if now >= deadline {
            return seen;
        }
        client.wait((deadline - now).min(Duration::from_millis(20))).expect("wait");
    }
}
