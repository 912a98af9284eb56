//! Backpressure by class of message over real sockets (PROTOCOL.md 7.3, "Under backpressure"):
//! a client that reads at a tenth of what it is sent stays connected, draws recent states,
//! gets every reply and is told how many events it lost; one that stops reading is closed
//! after the stalled-reader time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ticksock_protocol::{ClientFrame, ServerFrame};
use ticksock_server::metrics::ReactorCounters;
use ticksock_server::{AppError, Config, Ctx, Game, Router, RunningServer, Server};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const TICK_HZ: u16 = 20;
/// Each tick: one state and this many events, to every connection: 1.1 MB/s, of which the
/// slow reader takes a tenth.
const EVENTS_PER_TICK: u64 = 6;
const STATE_PADDING: usize = 8_000;
const EVENT_PADDING: usize = 8_000;
const MAX_HELD_EVENTS: usize = 16;
const HOLD_AFTER_BYTES: usize = 8 << 10;
/// Kept unsent in the server's kernel at most: with the client's receive buffer, what stands
/// between a state released and its reader.
const NOTSENT_LOWAT: usize = 8 << 10;

/// Pushes a state (latest-wins) and a few events to everyone each tick, stamped with the
/// microseconds since `epoch`, and answers `ask` with what it is asked.
struct Flood {
    epoch: Instant,
    tick: u64,
    event_seq: u64,
}

impl Game for Flood {
    fn routes(router: &mut Router<Self>) {
        router.latest_wins("state");
        router.route("ask", |_, _, _, n: u32| Ok::<_, AppError>(n));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.tick += 1;
        let stamp = self.epoch.elapsed().as_micros() as u64;
        ctx.send_to_all("state", &(stamp, self.tick, vec![7u8; STATE_PADDING]));
        for _ in 0..EVENTS_PER_TICK {
            self.event_seq += 1;
            ctx.send_to_all("chat", &(self.event_seq, vec![9u8; EVENT_PADDING]));
        }
    }
}

fn start(epoch: Instant, stalled_reader_timeout: Duration) -> RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tick_hz: TICK_HZ,
        hold_after_bytes: HOLD_AFTER_BYTES,
        tcp_notsent_lowat: NOTSENT_LOWAT,
        max_held_events: MAX_HELD_EVENTS,
        stalled_reader_timeout,
        // Long enough for the stalled reader to read its close frame after it is sent.
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    Server::start(config, Flood { epoch, tick: 0, event_seq: 0 }).expect("server starts")
}

/// A socket that lets its reader take at most `rate` bytes a second (at most `chunk` a read):
/// a client that cannot keep up.
struct Throttled {
    stream: TcpStream,
    rate: f64,
    started: Instant,
    taken: u64,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = (self.started.elapsed().as_secs_f64() * self.rate) as u64;
        let room = allowed.saturating_sub(self.taken).min(buf.len() as u64) as usize;
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

/// Connects over a socket with a small receive buffer (so what the kernel holds for the
/// client stays small next to what the server holds back), reading at `rate` bytes a second.
fn connect_throttled(addr: SocketAddr, rate: f64) -> WebSocket<Throttled> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(8 << 10).expect("rcvbuf");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let throttled = Throttled { stream, rate: f64::INFINITY, started: Instant::now(), taken: 0 };
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", ticksock_protocol::SUBPROTOCOL.parse().expect("h"));
    let (mut ws, _) = tungstenite::client(request, throttled).expect("upgrade");
    let stream = ws.get_mut();
    stream.rate = rate;
    stream.started = Instant::now();
    ws
}

/// What the slow reader saw.
#[derive(Debug, Default)]
struct Seen {
    states: u64,
    /// The largest age of a state when read, in microseconds.
    oldest_state_us: u64,
    events: u64,
    /// Events dropped, as the `ticksock.dropped` pushes said.
    told_dropped: u64,
    /// Events missing from the sequence: must equal `told_dropped`.
    missing: u64,
    last_event: u64,
    replies: Vec<u32>,
    bytes: u64,
}

impl Seen {
    fn take(&mut self, bytes: &[u8], epoch: Instant, pending_notice: &mut u64) {
        self.bytes += bytes.len() as u64;
        match ServerFrame::decode(bytes).expect("server frames decode") {
            ServerFrame::Push { topic, body } => match &*topic {
                "state" => {
                    let (stamp, _tick, _pad): (u64, u64, Vec<u8>) =
                        ticksock_protocol::decode_body(body).expect("state");
                    let age = (epoch.elapsed().as_micros() as u64).saturating_sub(stamp);
                    self.oldest_state_us = self.oldest_state_us.max(age);
                    self.states += 1;
                }
                "chat" => {
                    let (seq, _pad): (u64, Vec<u8>) = ticksock_protocol::decode_body(body).expect("chat");
                    if self.last_event > 0 {
                        let gap = seq - self.last_event - 1;
                        assert_eq!(
                            gap, *pending_notice,
                            "a gap of {gap} events after event {}",
                            self.last_event
                        );
                        self.missing += gap;
                    }
                    *pending_notice = 0;
                    self.last_event = seq;
                    self.events += 1;
                }
                ticksock_protocol::TOPIC_DROPPED => {
                    let count: u64 = ticksock_protocol::decode_body(body).expect("count");
                    assert!(count > 0, "a notice of nothing dropped");
                    assert_eq!(*pending_notice, 0, "two notices with no event between");
                    *pending_notice = count;
                    self.told_dropped += count;
                }
                other => panic!("unexpected topic {other}"),
            },
            ServerFrame::Reply { body, .. } => {
                self.replies.push(ticksock_protocol::decode_body(body).expect("reply"));
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads at `rate` bytes a second for `slow_for`, asking a question every 50 ms; then reads
/// at full speed until every question is answered.
fn run_slow_reader(server: &RunningServer, epoch: Instant, rate: f64, slow_for: Duration) -> (Seen, u32) {
    let mut ws = connect_throttled(server.local_addr(), rate);
    let mut seen = Seen::default();
    let mut notice = 0;
    let started = Instant::now();
    let mut next_ask = started;
    let mut asked = 0u32;
    let mut welcomed = false;
    loop {
        let now = Instant::now();
        let slow = now < started + slow_for;
        if slow && now >= next_ask {
            asked += 1;
            let body = ticksock_protocol::encode_body(&asked).expect("encode");
            let frame = ClientFrame::Request { id: asked, route: "ask", body: &body }.to_vec();
            ws.send(Message::Binary(frame.into())).expect("ask");
            next_ask += Duration::from_millis(50);
        }
        if !slow {
            ws.get_mut().rate = f64::INFINITY;
            if seen.replies.len() as u32 == asked {
                break;
            }
            assert!(now < started + slow_for + Duration::from_secs(10), "replies missing at the end");
        }
        match ws.read() {
            Ok(Message::Binary(bytes)) if !welcomed => {
                welcomed = matches!(ServerFrame::decode(&bytes), Ok(ServerFrame::Welcome { .. }));
                assert!(welcomed, "the welcome comes first");
            }
            Ok(Message::Binary(bytes)) => seen.take(&bytes, epoch, &mut notice),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("the slow reader was cut off after {:?}: {e}", started.elapsed()),
        }
    }
    (seen, asked)
}

/// The bytes a second the server sends one connection, before any is held back.
fn sent_rate() -> f64 {
    let state = STATE_PADDING + 40;
    let events = EVENTS_PER_TICK as usize * (EVENT_PADDING + 30);
    ((state + events) * usize::from(TICK_HZ)) as f64
}

#[test]
fn a_client_reading_a_tenth_of_what_it_is_sent_stays_with_recent_states_and_every_reply() {
    let epoch = Instant::now();
    // Short, so that a slow reader's pauses would cross it if they were stalls.
    let server = start(epoch, Duration::from_millis(1_500));
    let rate = sent_rate() / 10.0;
    let (seen, asked) = run_slow_reader(&server, epoch, rate, Duration::from_secs(6));
    let counters = server.metrics().reactor();
    eprintln!("{seen:?} asked {asked}, {counters:?}");
    let tick_us = 1_000_000 / u64::from(TICK_HZ);

    // A state is drawn at most a few ticks after it was made: what stands before it is the
    // hold's threshold and a frame, the kernel's unsent bytes and the client's receive buffer
    // (about 40 KB, a third of a second at this reader's 112 KB/s). Without conflation, states
    // queue behind states: 2 s old after 6 s, and growing.
    let oldest_ticks = seen.oldest_state_us as f64 / tick_us as f64;
    eprintln!("oldest state {oldest_ticks:.1} ticks");
    assert!(oldest_ticks <= 12.0, "a state {oldest_ticks:.1} ticks old");
    // What the server holds back for it stays bounded: the held events, one state, and the
    // replies of a turn or two (without conflation: 425 KB after 6 s, and growing).
    let bound = MAX_HELD_EVENTS * (EVENT_PADDING + 30) + (STATE_PADDING + 40) + (4 << 10);
    assert!(counters.held_bytes_max as usize <= bound, "held {} > {bound}", counters.held_bytes_max);
    assert!(counters.states_conflated > 0, "states were conflated");
    assert!(seen.states >= 30, "states kept coming: {}", seen.states);
    assert_eq!(seen.replies, (1..=asked).collect::<Vec<_>>(), "every reply, in order");
    assert!(asked >= 100, "asked {asked}");
    assert_eq!(counters.stalled_closes + counters.overflow_closes, 0, "it stayed connected");
    assert_eq!(seen.missing, seen.told_dropped, "each event dropped was told");
    assert!(seen.told_dropped > 0 && counters.events_dropped >= seen.told_dropped, "events were dropped");
}

/// Polls the server's counters until `done` holds of them, for at most `within`.
fn wait_for(
    server: &RunningServer,
    within: Duration,
    done: impl Fn(&ReactorCounters) -> bool,
) -> ReactorCounters {
    let deadline = Instant::now() + within;
    loop {
        let counters = server.metrics().reactor();
        if done(&counters) {
            return counters;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {counters:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_client_that_stops_reading_is_closed_after_the_stalled_reader_time_and_not_before() {
    let epoch = Instant::now();
    let timeout = Duration::from_millis(1_500);
    let server = start(epoch, timeout);
    let mut ws = connect_throttled(server.local_addr(), 0.0);
    let connected = Instant::now();
    // Its frames are soon held back; from then on its socket takes nothing.
    let held = wait_for(&server, Duration::from_secs(5), |c| c.holding == 1);
    assert_eq!(held.stalled_closes, 0);
    let closed = wait_for(&server, timeout + Duration::from_secs(5), |c| c.stalled_closes == 1);
    let after = connected.elapsed();
    assert!(after >= timeout, "closed after {after:?}, before the stalled-reader time");
    assert_eq!(closed.holding, 0, "what was held for it is gone");
    assert_eq!(closed.held_bytes, 0);
    // It reads again: what was queued, then the close frame, 4005.
    ws.get_mut().rate = f64::INFINITY;
    let code = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, Some(ticksock_protocol::CLOSE_STALLED_READER));
}
