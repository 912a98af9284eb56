//! Issue 18 item 3's slow-reader run against a running arena: FAST players in one arena chat
//! (one line of TEXT bytes every 50 ms each) and read everything; SLOW players in the same
//! arena read at READ_SHARE of what a fast player receives, ask `echo` every 100 ms, and count
//! what they get. Every second it prints the slow readers' state age and the server's RSS.
//!
//! ```sh
//! cargo build --release -p ticksock-arena -p benches --bin slow_readers
//! target/release/ticksock-arena --listen 127.0.0.1:7790 &
//! target/release/slow_readers 127.0.0.1:7790 --server-pid $! --secs 60
//! ```
//!
//! Flags: `--slow N` (4), `--fast N` (16), `--read-share F` (0.1), `--secs S` (60), `--text B`
//! (200), `--server-pid PID` (for its RSS from `/proc`). A state's age is how many ticks
//! behind the newest tick a fast player has seen it is when a slow reader reads it (fast
//! players read as it comes, so theirs is the server's tick, give or take a turn). At the
//! end each slow reader reads at full speed until every `echo` is answered; the counts say
//! whether all were, how many chat lines it got, and how many the server said it dropped
//! (`ticksock.dropped`). Exits 1 if a slow reader was disconnected or missed a reply.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticksock_arena::proto::{
    Chat, Join, Login, ROUTE_CHAT, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LOGIN, State, TOPIC_CHAT, TOPIC_STATE,
};
use ticksock_protocol::{ClientFrame, ServerFrame, TOPIC_DROPPED};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const ROOM: &str = "slow-readers";

struct Args {
    addr: SocketAddr,
    slow: usize,
    fast: usize,
    read_share: f64,
    secs: u64,
    text: usize,
    server_pid: Option<u32>,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        addr: "127.0.0.1:7777".parse().expect("addr"),
        slow: 4,
        fast: 16,
        read_share: 0.1,
        secs: 60,
        text: 200,
        server_pid: None,
    };
    while let Some(arg) = it.next() {
        let mut value = |what: &str| {
            let text = it.next().unwrap_or_else(|| usage_error(&format!("{arg} needs a value ({what})")));
            Flag { name: arg.clone(), text }
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--slow" => a.slow = value("N").parse(),
            "--fast" => a.fast = value("N").parse(),
            "--read-share" => a.read_share = value("F").parse(),
            "--secs" => a.secs = value("S").parse(),
            "--text" => a.text = value("B").parse(),
            "--server-pid" => a.server_pid = Some(value("PID").parse()),
            addr => a.addr = addr.parse().unwrap_or_else(|e| usage_error(&format!("{addr}: {e}"))),
        }
    }
    a
}

/// A flag's value as typed.
struct Flag {
    name: String,
    text: String,
}

impl Flag {
    /// The value, or the usage and exit 2 if it does not parse.
    fn parse<T: std::str::FromStr<Err: std::fmt::Display>>(self) -> T {
        self.text.parse().unwrap_or_else(|e| usage_error(&format!("{} {}: {e}", self.name, self.text)))
    }
}

/// How to call it.
const USAGE: &str = "usage: slow_readers ADDR [--slow N] [--fast N] [--read-share F] [--secs S] \
                     [--text B] [--server-pid PID]";

/// Says what was wrong with the command line, and how to call it; exits 2.
fn usage_error(problem: &str) -> ! {
    eprintln!("slow_readers: {problem}\n{USAGE}");
    std::process::exit(2)
}

/// A socket whose reader takes at most `rate` bytes a second (infinite: all it can).
struct Throttled {
    stream: TcpStream,
    rate: f64,
    started: Instant,
    taken: u64,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = if self.rate.is_finite() {
            let allowed = (self.started.elapsed().as_secs_f64() * self.rate) as u64;
            allowed.saturating_sub(self.taken).min(buf.len() as u64) as usize
        } else {
            buf.len()
        };
        if room == 0 {
            std::thread::sleep(Duration::from_millis(2));
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(&mut buf[..room])?;
        self.taken += n as u64;
        Ok(n)
    }
}

impl Write for Throttled {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// One arena player on `ticksock.v1`, with a small receive buffer for a slow one (what the
/// kernel holds for it then stays small next to what the server holds back).
struct Player {
    ws: WebSocket<Throttled>,
    next_id: u32,
}

impl Player {
    fn connect(addr: SocketAddr, small_buffer: bool) -> io::Result<Player> {
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        if small_buffer {
            socket.set_recv_buffer_size(16 << 10)?;
        }
        socket.connect(&addr.into())?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(5)))?;
        let throttled = Throttled { stream, rate: f64::INFINITY, started: Instant::now(), taken: 0 };
        let mut request = format!("ws://{addr}/").into_client_request().map_err(io::Error::other)?;
        let protocol = ticksock_protocol::SUBPROTOCOL.parse().map_err(io::Error::other)?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
        let (ws, _) = tungstenite::client(request, throttled).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Player { ws, next_id: 0 })
    }

    fn send<T: serde::Serialize>(&mut self, route: &str, body: &T) -> u32 {
        self.next_id += 1;
        let body = ticksock_protocol::encode_body(body).expect("arena bodies encode");
        let frame = ClientFrame::Request { id: self.next_id, route, body: &body }.to_vec();
        self.ws.send(Message::Binary(frame.into())).expect("send");
        self.next_id
    }

    /// The next data message, `None` when none came in the read timeout; an error when the
    /// connection ended.
    fn recv(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self.ws.read() {
            Ok(Message::Binary(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(Message::Close(frame)) => Err(format!("closed: {frame:?}")),
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Calls `route` and waits for its answer, reading past pushes.
    fn call<T: serde::Serialize>(&mut self, route: &str, body: &T) {
        let id = self.send(route, body);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(bytes) = self.recv().expect("connected")
                && let Ok(ServerFrame::Reply { id: got, .. } | ServerFrame::Error { id: got, .. }) =
                    ServerFrame::decode(&bytes)
                && got == id
            {
                return;
            }
        }
        panic!("no answer to {route}");
    }

    fn enter(addr: SocketAddr, name: String, small_buffer: bool) -> Player {
        let mut p = Player::connect(addr, small_buffer).expect("connect");
        p.call(ROUTE_LOGIN, &Login { name });
        p.call(ROUTE_JOIN, &Join { room: ROOM.into() });
        p
    }
}

/// What the run shares between threads.
#[derive(Default)]
struct Shared {
    /// The newest tick a fast player has seen.
    newest_tick: AtomicU64,
    /// Bytes fast player 0 received, to set the slow readers' rate.
    fast_bytes: AtomicU64,
    stop: AtomicBool,
    slow_done: AtomicU64,
}

/// What one slow reader saw.
struct SlowReport {
    ages: Histogram<u64>,
    states: u64,
    chats: u64,
    told_dropped: u64,
    asked: u32,
    answered: u32,
    cut_off: Option<String>,
    rate: f64,
}

fn fast_player(addr: SocketAddr, n: usize, text: usize, shared: Arc<Shared>) {
    let mut p = Player::enter(addr, format!("fast{n}"), false);
    let line = "x".repeat(text);
    let mut next_chat = Instant::now();
    while !shared.stop.load(Relaxed) {
        if Instant::now() >= next_chat {
            p.send(ROUTE_CHAT, &Chat { text: line.clone() });
            next_chat += Duration::from_millis(50);
        }
        match p.recv() {
            Ok(Some(bytes)) => {
                if n == 0 {
                    shared.fast_bytes.fetch_add(bytes.len() as u64 + 2, Relaxed);
                }
                if let Ok(ServerFrame::Push { topic, body }) = ServerFrame::decode(&bytes)
                    && topic == TOPIC_STATE
                    && let Ok(state) = ticksock_protocol::decode_body::<State>(body)
                {
                    shared.newest_tick.fetch_max(state.tick, Relaxed);
                }
            }
            Ok(None) => {}
            Err(e) => panic!("fast player {n} cut off: {e}"),
        }
    }
}

fn slow_player(addr: SocketAddr, n: usize, rate: f64, secs: u64, shared: Arc<Shared>) -> SlowReport {
    let mut p = Player::enter(addr, format!("slow{n}"), true);
    let mut report = SlowReport {
        ages: Histogram::new(3).expect("histogram"),
        states: 0,
        chats: 0,
        told_dropped: 0,
        asked: 0,
        answered: 0,
        cut_off: None,
        rate,
    };
    let first_echo = p.next_id + 1;
    let started = Instant::now();
    {
        let socket = p.ws.get_mut();
        socket.rate = rate;
        socket.started = started;
        socket.taken = 0;
    }
    let slow_until = started + Duration::from_secs(secs);
    let mut next_ask = started;
    loop {
        let now = Instant::now();
        if now < slow_until && now >= next_ask {
            p.send(ROUTE_ECHO, &[0u8; 8]);
            report.asked += 1;
            next_ask += Duration::from_millis(100);
        }
        if now >= slow_until {
            p.ws.get_mut().rate = f64::INFINITY;
            if report.answered == report.asked || now > slow_until + Duration::from_secs(20) {
                break;
            }
        }
        let bytes = match p.recv() {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(e) => {
                report.cut_off = Some(format!("after {:?}: {e}", started.elapsed()));
                break;
            }
        };
        match ServerFrame::decode(&bytes) {
            Ok(ServerFrame::Push { topic, body }) if topic == TOPIC_STATE => {
                if let Ok(state) = ticksock_protocol::decode_body::<State>(body) {
                    let newest = shared.newest_tick.load(Relaxed);
                    if now < slow_until {
                        report.ages.saturating_record(newest.saturating_sub(state.tick));
                    }
                    report.states += 1;
                }
            }
            Ok(ServerFrame::Push { topic, .. }) if topic == TOPIC_CHAT => report.chats += 1,
            Ok(ServerFrame::Push { topic, body }) if topic == TOPIC_DROPPED => {
                report.told_dropped += ticksock_protocol::decode_body::<u64>(body).unwrap_or(0);
            }
            Ok(ServerFrame::Reply { id, .. }) if id >= first_echo => report.answered += 1,
            _ => {}
        }
    }
    shared.slow_done.fetch_add(1, Relaxed);
    report
}

/// The server's resident set in MiB, from `/proc`.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The server's `/metrics` lines that start with one of `names`.
fn metrics(addr: SocketAddr, names: &[&str]) -> Vec<String> {
    let Ok(mut s) = TcpStream::connect(addr) else { return vec![] };
    let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines().filter(|l| names.iter().any(|n| l.starts_with(n))).map(str::to_owned).collect()
}

fn main() {
    let a = args();
    let shared = Arc::new(Shared::default());
    let fast: Vec<_> = (0..a.fast)
        .map(|n| {
            let shared = shared.clone();
            let (addr, text) = (a.addr, a.text);
            std::thread::spawn(move || fast_player(addr, n, text, shared))
        })
        .collect();
    // What a player is sent, measured on fast player 0 over 3 s once all chat.
    std::thread::sleep(Duration::from_secs(2));
    let before = shared.fast_bytes.load(Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    let sent_rate = (shared.fast_bytes.load(Relaxed) - before) as f64 / 3.0;
    let rate = sent_rate * a.read_share;
    println!(
        "a player is sent {:.1} KB/s; {} slow readers read {:.1} KB/s ({}), for {} s; {} fast players chat {} B every 50 ms",
        sent_rate / 1e3,
        a.slow,
        rate / 1e3,
        a.read_share,
        a.secs,
        a.fast,
        a.text
    );
    let slow: Vec<_> = (0..a.slow)
        .map(|n| {
            let shared = shared.clone();
            let (addr, secs) = (a.addr, a.secs);
            std::thread::spawn(move || slow_player(addr, n, rate, secs, shared))
        })
        .collect();
    let started = Instant::now();
    let mut rss = Vec::new();
    while shared.slow_done.load(Relaxed) < a.slow as u64 {
        std::thread::sleep(Duration::from_secs(1));
        let secs = started.elapsed().as_secs();
        if let Some(mib) = a.server_pid.and_then(rss_mib) {
            rss.push((secs, mib));
            if secs.is_multiple_of(5) {
                println!("t={secs:>3}s server RSS {mib:.1} MiB");
            }
        }
    }
    let names =
        ["ticksock_held_bytes", "ticksock_states_conflated", "ticksock_events_dropped", "ticksock_closes"];
    let server_metrics = metrics(a.addr, &names);
    shared.stop.store(true, Relaxed);
    for f in fast {
        f.join().expect("a fast player panicked");
    }
    let mut failed = false;
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for (n, s) in slow.into_iter().enumerate() {
        let r = s.join().expect("a slow reader panicked");
        all.add(&r.ages).expect("same bounds");
        println!(
            "slow{n}: read {:.1} KB/s; connected throughout: {}; states {} (age in ticks p50 {} p99 {} max {}); \
             echo answered {}/{}; chat lines {}; told dropped {}",
            r.rate / 1e3,
            r.cut_off.as_deref().map_or("yes".to_owned(), |e| format!("NO ({e})")),
            r.states,
            r.ages.value_at_quantile(0.5),
            r.ages.value_at_quantile(0.99),
            r.ages.max(),
            r.answered,
            r.asked,
            r.chats,
            r.told_dropped
        );
        failed |= r.cut_off.is_some() || r.answered != r.asked;
    }
    println!(
        "all slow readers: state age in ticks p50 {} p90 {} p99 {} max {} over {} states",
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.9),
        all.value_at_quantile(0.99),
        all.max(),
        all.len()
    );
    if let (Some(first), Some(peak), Some(last)) =
        (rss.first(), rss.iter().map(|r| r.1).reduce(f64::max), rss.last())
    {
        println!(
            "server RSS: {:.1} MiB at {}s, peak {peak:.1} MiB, {:.1} MiB at {}s",
            first.1, first.0, last.1, last.0
        );
    }
    for line in server_metrics {
        println!("{line}");
    }
    std::process::exit(i32::from(failed));
}
