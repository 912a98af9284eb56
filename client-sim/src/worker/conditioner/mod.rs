//! The link conditioner (`--latency-ms`, `--jitter-ms`, `--bandwidth-kbps`): one per bot's
//! connection, it holds the frames between the session and the socket, in both directions,
//! for what a real network would take: a delay drawn per frame, in order, behind a token
//! bucket. Pure: `now` is passed in, the worker's timers wake the bot when a frame is due
//! ([`Conditioner::wake_to_arm`]), and the bot moves the frames (`worker::bot`).
//!
//! It also keeps, per call in flight, how long its request and its answer were held, so that
//! the report can split each round trip into the conditioner's share and the rest
//! ([`Conditioner::settle`]).
//!
//! - `lane`: one direction: the queue in order, the bucket, the window.

mod lane;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ticksock_client::backoff::XorShift;
use ticksock_protocol::{ClientFrame, Encoding, ServerFrame, Version, v2};

pub(crate) use self::lane::WINDOW_BYTES;
use self::lane::{Bucket, Lane};
use crate::Options;

/// The bucket holds what the cap carries in this long, and at least [`MIN_BURST_BYTES`]: a
/// short burst above the cap, as a link's buffer lets through.
const BURST: Duration = Duration::from_millis(20);
/// The smallest bucket: one Ethernet frame's payload.
const MIN_BURST_BYTES: f64 = 1500.0;

/// What a bot's link adds to each frame, from the options. Both directions get the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    /// The mean one-way delay (`--latency-ms`).
    pub latency: Duration,
    /// Each frame's delay is uniform in latency ± this (`--jitter-ms`, at most the latency).
    pub jitter: Duration,
    /// The cap, bytes a second (`--bandwidth-kbps` × 125); 0: none.
    pub bytes_per_sec: f64,
}

impl Shape {
    /// The shape the options ask for; `None` when they ask for nothing (all three 0), and
    /// then frames go straight between session and socket, with no queue at all.
    pub(crate) fn from_options(opts: &Options) -> Option<Shape> {
        let shape = Shape {
            latency: Duration::from_secs_f64(opts.latency_ms.max(0.0) / 1000.0),
            jitter: Duration::from_secs_f64(opts.jitter_ms.max(0.0) / 1000.0),
            bytes_per_sec: opts.bandwidth_kbps.max(0.0) * 125.0,
        };
        let none = shape.latency.is_zero() && shape.jitter.is_zero() && shape.bytes_per_sec == 0.0;
        (!none).then_some(shape)
    }

    /// The bucket's depth, bytes (see [`BURST`]).
    pub(crate) fn burst_bytes(&self) -> f64 {
        (self.bytes_per_sec * BURST.as_secs_f64()).max(MIN_BURST_BYTES)
    }

    fn bucket(&self, now: Instant) -> Option<Bucket> {
        (self.bytes_per_sec > 0.0).then(|| Bucket::new(self.bytes_per_sec, self.burst_bytes(), now))
    }
}

/// One connection's conditioner: a lane each way, the delays' random source, the wake armed
/// with the worker's timers, and the time each call in flight was held so far.
#[derive(Debug)]
pub(crate) struct Conditioner {
    shape: Shape,
    /// Frames from the session to the socket.
    up: Lane,
    /// Frames from the socket to the session.
    down: Lane,
    rng: XorShift,
    /// The earliest wake set with the worker's timers and not yet come.
    armed: Option<Instant>,
    /// Per callback id: how long its request, and then its answer, were held.
    held: HashMap<u32, Duration>,
}

impl Conditioner {
    /// A new connection's conditioner at `now`, its delays drawn from `seed`.
    pub(crate) fn new(shape: Shape, seed: u64, now: Instant) -> Self {
        Self {
            shape,
            up: Lane::new(shape.bucket(now), true),
            down: Lane::new(shape.bucket(now), false),
            rng: XorShift::new(seed),
            armed: None,
            held: HashMap::new(),
        }
    }

    /// A frame's delay: uniform in latency ± jitter.
    fn delay(&mut self) -> Duration {
        let spread = self.shape.jitter.as_secs_f64() * (2.0 * self.rng.next_f64() - 1.0);
        Duration::from_secs_f64((self.shape.latency.as_secs_f64() + spread).max(0.0))
    }

    /// Whether it takes more of the session's frames (else they wait in the session).
    pub(crate) fn takes_outbound(&self) -> bool {
        self.up.has_room()
    }

    /// Whether it takes more from the socket (else the bytes wait in the socket buffers).
    pub(crate) fn takes_inbound(&self) -> bool {
        self.down.has_room()
    }

    /// Holds a frame the session sent at `now`.
    pub(crate) fn hold_outbound(&mut self, now: Instant, frame: Vec<u8>) {
        let delay = self.delay();
        self.up.push(now, frame, delay);
    }

    /// Holds a frame read from the socket at `now`; whether it takes more.
    pub(crate) fn hold_inbound(&mut self, now: Instant, frame: &[u8]) -> bool {
        let delay = self.delay();
        self.down.push(now, frame.to_vec(), delay);
        self.down.has_room()
    }

    /// The next outbound frame due at `now`, and how long it was held; a request's hold is
    /// kept for its call (`version`: the link's, to read the frame).
    pub(crate) fn release_outbound(
        &mut self,
        now: Instant,
        version: Option<Version>,
    ) -> Option<(Vec<u8>, Duration)> {
        let (frame, held) = self.up.pop_due(now)?;
        if let Some(id) = request_id(version, &frame) {
            *self.held.entry(id).or_default() += held;
        }
        Some((frame, held))
    }

    /// The next inbound frame due at `now`, and how long it was held; an answer's hold is
    /// added to its call's, if its request went through here.
    pub(crate) fn release_inbound(
        &mut self,
        now: Instant,
        version: Option<Version>,
    ) -> Option<(Vec<u8>, Duration)> {
        let (frame, held) = self.down.pop_due(now)?;
        if let Some(total) = answer_id(version, &frame).and_then(|id| self.held.get_mut(&id)) {
            *total += held;
        }
        Some((frame, held))
    }

    /// Call `id` ended: how long its request and its answer were held (zero for a call whose
    /// frames did not go through this conditioner). Forgets the call.
    pub(crate) fn settle(&mut self, id: u32) -> Duration {
        self.held.remove(&id).unwrap_or_default()
    }

    /// When the bot must be woken next, if that is sooner than the wake already set (or none
    /// is); the caller sets it with the worker's timers.
    pub(crate) fn wake_to_arm(&mut self) -> Option<Instant> {
        let next = match (self.up.next_due(), self.down.next_due()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        if self.armed.is_some_and(|armed| armed <= next) {
            return None;
        }
        self.armed = Some(next);
        Some(next)
    }

    /// A wake came at `now`: a wake set for then or earlier is spent.
    pub(crate) fn woke(&mut self, now: Instant) {
        if self.armed.is_some_and(|armed| armed <= now) {
            self.armed = None;
        }
    }
}

/// The callback id of a request frame the session sent on a link of `version`.
fn request_id(version: Option<Version>, frame: &[u8]) -> Option<u32> {
    match version {
        Some(Version::V2) => match v2::decode_client_frame(Encoding::Binary, frame).ok()? {
            v2::ClientFrame::Request { request, .. } => Some(request.id),
            _ => None,
        },
        _ => match ClientFrame::decode(frame).ok()? {
            ClientFrame::Request { id, .. } => Some(id),
        },
    }
}

/// The callback id a reply or error frame from the server answers.
fn answer_id(version: Option<Version>, frame: &[u8]) -> Option<u32> {
    match version {
        Some(Version::V2) => match v2::decode_server_frame(Encoding::Binary, frame).ok()? {
            v2::ServerFrame::Reply { id, .. } | v2::ServerFrame::Error { id, .. } => Some(id),
            _ => None,
        },
        _ => match ServerFrame::decode(frame).ok()? {
            ServerFrame::Reply { id, .. } | ServerFrame::Error { id, .. } => Some(id),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn shape(latency_ms: u64, jitter_ms: u64, kbps: f64) -> Shape {
        Shape { latency: ms(latency_ms), jitter: ms(jitter_ms), bytes_per_sec: kbps * 125.0 }
    }

    fn request(id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        ticksock_protocol::write_raw_request(Encoding::Binary, &mut out, id, "move", &[1, 2])
            .expect("a raw body always encodes");
        out
    }

    fn reply(id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        ticksock_protocol::write_raw_reply(Encoding::Binary, &mut out, id, &[0])
            .expect("a raw body always encodes");
        out
    }

    fn push() -> Vec<u8> {
        let mut out = Vec::new();
        ticksock_protocol::write_push(Encoding::Binary, &mut out, "state", &7u32).expect("encodes");
        out
    }

    #[test]
    fn nothing_asked_is_no_conditioner_at_all() {
        let opts = Options::new("ws://127.0.0.1:1/");
        assert_eq!(Shape::from_options(&opts), None);
        let asked = Options { latency_ms: 80.0, jitter_ms: 20.0, bandwidth_kbps: 256.0, ..opts.clone() };
        assert_eq!(Shape::from_options(&asked), Some(shape(80, 20, 256.0)));
        let capped = Options { bandwidth_kbps: 8.0, ..opts };
        let capped = Shape::from_options(&capped).expect("a cap alone is a shape");
        assert_eq!((capped.bytes_per_sec, capped.burst_bytes()), (1000.0, 1500.0));
        assert_eq!(shape(0, 0, 10_000.0).burst_bytes(), 25_000.0, "20 ms of 1.25 MB/s");
    }

    #[test]
    fn a_call_is_held_twice_the_latency_there_and_back() {
        let t0 = Instant::now();
        let mut link = Conditioner::new(shape(50, 0, 0.0), 1, t0);
        link.hold_outbound(t0, request(7));
        assert_eq!(link.wake_to_arm(), Some(t0 + ms(50)));
        assert_eq!(link.wake_to_arm(), None, "armed already");
        assert!(link.release_outbound(t0 + ms(49), None).is_none());
        link.woke(t0 + ms(50));
        let (frame, held) = link.release_outbound(t0 + ms(50), None).expect("due");
        assert_eq!((frame, held), (request(7), ms(50)));
        // The server answers at once; the answer comes in 1 ms later, behind a push.
        link.hold_inbound(t0 + ms(51), &push());
        link.hold_inbound(t0 + ms(51), &reply(7));
        assert_eq!(link.wake_to_arm(), Some(t0 + ms(101)));
        let (first, _) = link.release_inbound(t0 + ms(101), None).expect("due");
        assert_eq!(first, push(), "in order");
        let (second, held) = link.release_inbound(t0 + ms(102), None).expect("due");
        assert_eq!((second, held), (reply(7), ms(51)), "taken 1 ms late: held 51 ms");
        assert_eq!(link.settle(7), ms(101), "request 50 ms + answer 51 ms");
        assert_eq!(link.settle(7), Duration::ZERO, "forgotten once settled");
        assert_eq!(link.wake_to_arm(), None, "nothing held");
    }

    #[test]
    fn answers_to_calls_it_never_saw_are_not_kept() {
        let t0 = Instant::now();
        let mut link = Conditioner::new(shape(10, 0, 0.0), 1, t0);
        link.hold_inbound(t0, &reply(3));
        assert!(link.release_inbound(t0 + ms(10), None).is_some());
        assert!(link.held.is_empty(), "a late answer after its call timed out adds nothing");
    }

    #[test]
    fn version_2_frames_are_read_for_their_ids_too() {
        let mut out = Vec::new();
        v2::write_raw_request(Encoding::Binary, &mut out, 5, 4, 9, "move", &[1]).expect("encodes");
        assert_eq!(request_id(Some(Version::V2), &out), Some(9));
        assert_eq!(request_id(None, &request(11)), Some(11));
        assert_eq!(answer_id(None, &reply(12)), Some(12));
        assert_eq!(answer_id(None, &push()), None);
        let mut ack = Vec::new();
        v2::write_client_ack(Encoding::Binary, &mut ack, 3);
        assert_eq!(request_id(Some(Version::V2), &ack), None);
    }

    #[test]
    fn jitter_spreads_delays_uniformly_around_the_latency_and_keeps_order() {
        let t0 = Instant::now();
        let mut link = Conditioner::new(shape(80, 20, 0.0), 42, t0);
        let n = 10_000u64;
        for i in 0..n {
            link.hold_inbound(t0 + ms(i), &push());
        }
        let (mut held, mut now) = (Vec::new(), t0);
        while let Some(due) = link.wake_to_arm() {
            now = due;
            link.woke(now);
            while let Some((_, h)) = link.release_inbound(now, None) {
                held.push(h);
            }
        }
        assert_eq!(held.len() as u64, n);
        assert!(now < t0 + ms(n + 101));
        let (min, max) = (held.iter().min().copied(), held.iter().max().copied());
        assert!(min >= Some(ms(60)) && max <= Some(ms(100)), "{min:?} {max:?}");
        // Frames 1 ms apart with delays spread over 40 ms often wait for an earlier one: the
        // mean is above the latency, as TCP's in-order delivery makes it.
        let mean = held.iter().sum::<Duration>() / n as u32;
        assert!(mean > ms(85) && mean < ms(100), "{mean:?}");
        // Frames far apart see the drawn delay itself: mean 80 ms, spread over ± 20 ms.
        let mut sparse = Conditioner::new(shape(80, 20, 0.0), 7, t0);
        let mut draws = Vec::new();
        for i in 0..2_000u64 {
            let at = t0 + ms(i * 200);
            sparse.hold_inbound(at, &push());
            let due = sparse.wake_to_arm().expect("one held");
            sparse.woke(due);
            draws.push(sparse.release_inbound(due, None).expect("due").1);
        }
        let mean = draws.iter().sum::<Duration>() / draws.len() as u32;
        assert!(mean > ms(79) && mean < ms(81), "{mean:?}");
        let below_70 = draws.iter().filter(|d| **d < ms(70)).count();
        assert!((400..600).contains(&below_70), "a quarter below 70 ms: {below_70}");
    }

    #[test]
    fn a_capped_link_passes_its_rate_and_stops_taking_at_its_window() {
        let t0 = Instant::now();
        // 80 kbps: 10 000 bytes/s, a 1 500-byte bucket; 498-byte payloads are 502 wire bytes.
        let mut link = Conditioner::new(shape(0, 0, 80.0), 1, t0);
        let mut taken = 0;
        while link.hold_inbound(t0, &[0; 498]) {
            taken += 1;
        }
        assert!(!link.takes_inbound() && link.takes_outbound(), "only the full lane stops");
        assert_eq!(taken + 1, WINDOW_BYTES.div_ceil(498));
        let mut delivered = Vec::new();
        while let Some(due) = link.wake_to_arm() {
            link.woke(due);
            while let Some((frame, _)) = link.release_inbound(due, None) {
                delivered.push((due, frame.len()));
            }
            if due > t0 + ms(3_000) {
                break;
            }
        }
        // Three frames fit the bucket at once; then one every 50.2 ms: 20 a second.
        let in_first_two_secs = delivered.iter().filter(|(at, _)| *at < t0 + ms(2_000)).count();
        assert_eq!(in_first_two_secs, 3 + 39, "{:?}", &delivered[..5]);
        assert!(link.takes_inbound(), "room again once frames went through");
    }
}
