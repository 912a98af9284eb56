//! A Redis and arena nodes as processes, for the cluster tests: each test starts its own
//! `redis-server` on a free loopback port (and fails, saying how to install it, if there is
//! none: it never passes without one) and its own `ticksock-arena` nodes.

#![allow(dead_code)] // each test file uses a part

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use super::arena::ArenaProcess;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticksock_client::{BlockingClient, Config, Event};

/// A `redis-server` of the test's own, without persistence, killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port} after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let mut redis = Self { port: free_port(), child: None };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): the cluster tests need it; install it \
                     (Debian: apt-get install redis-server); .ci/run does"
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: whatever it held is gone, as after a crash without persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs a command with `redis-cli` (installed with `redis-server`); its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A TCP proxy in front of a Redis, which a test can cut (every connection through it ends,
/// and new ones end at once) and restore: one node loses Redis while the others keep it. It
/// can also hold Redis's answers for a while, as a slow network would.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// A proxy to `redis`, on a free port.
    pub fn start(redis: &Redis) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        let target = redis.port;
        let (cut, stopped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let held = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let proxy = Self {
            port,
            cut: cut.clone(),
            held: held.clone(),
            stopped: stopped.clone(),
            streams: streams.clone(),
        };
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let ends = [client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone()];
                let [Ok(c1), Ok(s1), Ok(c2), Ok(s2)] = ends else { continue };
                streams.lock().expect("not poisoned").extend([c2, s2]);
                pipe(client, server, None);
                pipe(s1, c1, Some(held.clone()));
            }
        });
        proxy
    }

    /// `redis://127.0.0.1:PORT` through the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Ends every connection through it, and each new one at once.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().expect("not poisoned").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// Holds what Redis answers until [`Proxy::release`].
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Passes on what it held, and what comes after.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread, which then sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` until either ends, then ends both; while `held` is set, what it read
/// waits.
fn pipe(mut from: TcpStream, mut to: TcpStream, held: Option<Arc<AtomicBool>>) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            while held.as_ref().is_some_and(|h| h.load(Ordering::SeqCst)) {
                std::thread::sleep(Duration::from_millis(2));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database file of its own for a node: the tests run at once, and servers starting
/// together on one new file race to create it.
fn fresh_db(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}/cluster-{}-{name}-{n}.db", env!("CARGO_TARGET_TMPDIR"), std::process::id())
}

/// A `ticksock-arena` node of a cluster, killed when dropped.
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    process: ArenaProcess,
}

impl Node {
    /// Starts node `name` in the cluster at `redis`, with leases of `lease_ms`.
    pub fn start(redis: &Redis, name: &str, lease_ms: u64) -> Self {
        Self::start_at(&redis.url(), name, lease_ms)
    }

    /// Starts node `name` in the cluster whose Redis is at `redis_url` (a [`Proxy`]'s, say).
    pub fn start_at(redis_url: &str, name: &str, lease_ms: u64) -> Self {
        // Its database in the target dir, not the source tree (the default is the working dir).
        let db = fresh_db(name);
        let lease = lease_ms.to_string();
        let args = ["--cluster", redis_url, "--node-name", name, "--cluster-lease-ms", &lease];
        let process = ArenaProcess::start_with(std::path::Path::new(&db), &args, Stdio::null());
        Self { name: name.to_owned(), addr: process.addr(), process }
    }

    /// `ws://ADDR/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Its `/metrics` value of `name` (a counter or gauge without labels).
    pub fn metric(&self, name: &str) -> u64 {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr).expect("metrics");
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// Stops it (SIGSTOP), as a stalled machine: its threads and timers stand still.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.process.pid().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {signal} node {}", self.name);
    }

    /// SIGKILLs it: it says no goodbye.
    pub fn kill(&mut self) {
        self.process.kill_if_running();
    }
}

/// A player: a Rust client connected to a node.
pub struct Player {
    pub client: BlockingClient,
}

impl Player {
    /// Connects to `url`.
    pub fn connect(url: &str) -> Self {
        let client =
            BlockingClient::connect(url, Config::default(), Duration::from_secs(10)).expect("connects");
        Self { client }
    }

    /// Pushes on `topic` that arrive within `within` of the call (others are dropped).
    pub fn pushes<T: serde::de::DeserializeOwned>(&mut self, topic: &str, within: Duration) -> Vec<T> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.client.wait_event(left) {
                Some(Event::Push { topic: t, body }) if t == topic => {
                    got.push(ticksock_protocol::decode_body(&body).expect("a push of the expected type"));
                }
                Some(_) => {}
                None => break,
            }
        }
        got
    }
}

/// Calls `probe` every 20 ms until it is true; how long that took. Panics past `within`.
pub fn wait_until(within: Duration, what: &str, mut probe: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !probe() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}
