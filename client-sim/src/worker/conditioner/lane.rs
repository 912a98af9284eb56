//! One direction of a conditioned link: a queue of frames, each with the time it is due, in
//! the order they came (TCP delivers in order), behind an optional token bucket.
//!
//! Pure arithmetic over `Instant`s passed in: no clock, no socket, no randomness (the delay of
//! each frame is drawn by the caller).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes a lane holds before it takes no more: about what a TCP window lets a connection
/// have in flight. Past it the backlog waits where a real one would, in the socket buffers and
/// the server's queue, instead of growing here without bound.
pub(crate) const WINDOW_BYTES: usize = 256 << 10;

/// A token bucket in bytes: `rate` bytes a second, at most `depth` saved up. It starts full.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: f64,
    depth: f64,
    /// The tokens at `at` (negative after a frame larger than `depth`: a debt repaid first).
    tokens: f64,
    /// When the last frame left (tokens are known from then on).
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`: `rate` bytes a second (above 0), `depth` bytes deep.
    pub(crate) fn new(rate: f64, depth: f64, now: Instant) -> Self {
        Self { rate, depth, tokens: depth, at: now }
    }

    /// When a frame of `bytes`, ready at `ready`, leaves: once the bucket holds its size (or
    /// is full, for a frame larger than the bucket), and never before the frame before it.
    /// The frame takes its size from the bucket. Over any span of T seconds the frames that
    /// leave carry at most `rate` × T bytes plus the larger of `depth` and one frame.
    pub(crate) fn release(&mut self, ready: Instant, bytes: usize) -> Instant {
        let start = ready.max(self.at);
        let refill = start.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        let tokens = (self.tokens + refill).min(self.depth);
        let need = (bytes as f64).min(self.depth);
        let wait = if tokens >= need { 0.0 } else { (need - tokens) / self.rate };
        let leaves = start + Duration::from_secs_f64(wait);
        self.tokens = tokens + wait * self.rate - bytes as f64;
        self.at = leaves;
        leaves
    }
}

/// A frame held, and when it came and is due.
#[derive(Debug)]
struct Held {
    due: Instant,
    came: Instant,
    frame: Vec<u8>,
}

/// One direction: frames in order, each due after its bucket release plus its delay, and never
/// before the frame ahead of it.
#[derive(Debug)]
pub(crate) struct Lane {
    bucket: Option<Bucket>,
    /// A WebSocket client masks its frames: 4 bytes more on the wire than a server's.
    masked: bool,
    queue: VecDeque<Held>,
    held_bytes: usize,
    /// The due time of the last frame taken: a later frame is never due before it.
    last_due: Option<Instant>,
}

impl Lane {
    /// An empty lane; `bucket` caps its rate (none: no cap). `masked`: frames from a client.
    pub(crate) fn new(bucket: Option<Bucket>, masked: bool) -> Self {
        Self { bucket, masked, queue: VecDeque::new(), held_bytes: 0, last_due: None }
    }

    /// Whether the lane takes more frames ([`WINDOW_BYTES`]).
    pub(crate) fn has_room(&self) -> bool {
        self.held_bytes < WINDOW_BYTES
    }

    /// Holds `frame`, come at `now`, for `delay` after the bucket lets it go; returns when it
    /// is due.
    pub(crate) fn push(&mut self, now: Instant, frame: Vec<u8>, delay: Duration) -> Instant {
        let leaves = match &mut self.bucket {
            Some(bucket) => bucket.release(now, wire_bytes(frame.len(), self.masked)),
            None => now,
        };
        let due = self.last_due.map_or(leaves + delay, |last| last.max(leaves + delay));
        self.last_due = Some(due);
        self.held_bytes += frame.len();
        self.queue.push_back(Held { due, came: now, frame });
        due
    }

    /// The first frame, if it is due at `now`, and how long it was held.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Vec<u8>, Duration)> {
        if self.queue.front()?.due > now {
            return None;
        }
        let held = self.queue.pop_front()?;
        self.held_bytes -= held.frame.len();
        Some((held.frame, now.saturating_duration_since(held.came)))
    }

    /// When the first frame is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|h| h.due)
    }
}

/// The bytes of a WebSocket frame carrying `payload` bytes: the header (2 bytes, 2 or 8 more
/// for a long payload, 4 more when `masked`) and the payload. TCP and IP headers are not
/// counted.
pub(crate) fn wire_bytes(payload: usize, masked: bool) -> usize {
    let length = match payload {
        0..=125 => 0,
        126..=65_535 => 2,
        _ => 8,
    };
    2 + length + if masked { 4 } else { 0 } + payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_frame_is_due_after_its_delay_and_held_until_then() {
        let t0 = Instant::now();
        let mut lane = Lane::new(None, false);
        assert_eq!(lane.push(t0, vec![1; 10], ms(50)), t0 + ms(50));
        assert_eq!(lane.next_due(), Some(t0 + ms(50)));
        assert!(lane.pop_due(t0 + ms(49)).is_none(), "not before it is due");
        let (frame, held) = lane.pop_due(t0 + ms(52)).expect("due");
        assert_eq!((frame, held), (vec![1; 10], ms(52)), "held until taken, lateness included");
        assert_eq!(lane.next_due(), None);
    }

    #[test]
    fn frames_stay_in_order_whatever_their_delays() {
        let t0 = Instant::now();
        let mut lane = Lane::new(None, false);
        // The second frame drew a shorter delay: it waits for the first, as TCP would.
        let first = lane.push(t0, vec![1], ms(70));
        let second = lane.push(t0 + ms(1), vec![2], ms(30));
        let third = lane.push(t0 + ms(100), vec![3], ms(30));
        assert_eq!((first, second, third), (t0 + ms(70), t0 + ms(70), t0 + ms(130)));
        let order: Vec<u8> =
            std::iter::from_fn(|| lane.pop_due(t0 + ms(200)).map(|(frame, _)| frame[0])).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn a_bucket_lets_through_its_rate_and_its_depth_no_more() {
        // 10 000 bytes/s, 1 000 deep; 100-byte frames offered at 100 000 bytes/s for 2 s.
        let t0 = Instant::now();
        let mut bucket = Bucket::new(10_000.0, 1_000.0, t0);
        let leaves: Vec<Instant> =
            (0..2_000u64).map(|i| bucket.release(t0 + Duration::from_micros(i * 1_000), 100)).collect();
        assert!(leaves.windows(2).all(|w| w[0] <= w[1]), "in order");
        // The full bucket lets the first ones go as they come, then one every 10 ms.
        assert!((0..10).all(|i| leaves[i] == t0 + ms(i as u64)));
        let gap = leaves[20] - leaves[19];
        assert!(gap > ms(9) && gap < ms(11), "{gap:?}");
        // Over any span, at most rate × span + depth.
        for span in [ms(100), ms(500), ms(1_000)] {
            for start in (0..1_500).step_by(50).map(|k| t0 + ms(k)) {
                let n = leaves.iter().filter(|at| **at >= start && **at < start + span).count();
                let most = 10_000.0 * span.as_secs_f64() + 1_000.0;
                assert!((n * 100) as f64 <= most + 1e-6, "{n} frames in {span:?} from {start:?}");
            }
        }
        // Offered below its rate, the bucket delays nothing.
        let mut idle = Bucket::new(10_000.0, 1_000.0, t0);
        for i in 0..100u64 {
            let ready = t0 + ms(i * 20);
            assert_eq!(idle.release(ready, 150), ready);
        }
    }

    #[test]
    fn a_frame_larger_than_the_bucket_waits_for_it_full_then_owes_the_rest() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(1_000.0, 500.0, t0);
        assert_eq!(bucket.release(t0, 1_500), t0, "the full bucket lets it go");
        // It owes 1 000 bytes: the next 100-byte frame waits for 1 100 bytes of refill.
        let next = bucket.release(t0, 100);
        assert!(next - t0 > ms(1_099) && next - t0 < ms(1_101), "{:?}", next - t0);
    }

    #[test]
    fn a_capped_lane_adds_its_delay_after_the_bucket_and_counts_the_websocket_header() {
        let t0 = Instant::now();
        // 1 000 bytes/s, 200 deep: a 98-byte payload is 100 bytes on the wire (unmasked).
        let mut lane = Lane::new(Some(Bucket::new(1_000.0, 200.0, t0)), false);
        let dues: Vec<Instant> = (0..4).map(|_| lane.push(t0, vec![0; 98], ms(40))).collect();
        assert_eq!(dues[..2], [t0 + ms(40), t0 + ms(40)], "the bucket's depth goes at once");
        let after = |k: usize| (dues[k] - t0).as_secs_f64();
        assert!((after(2) - 0.140).abs() < 1e-6 && (after(3) - 0.240).abs() < 1e-6, "{dues:?}");
        assert_eq!(wire_bytes(98, true), 104);
        assert_eq!((wire_bytes(126, false), wire_bytes(70_000, false)), (130, 70_010));
    }

    #[test]
    fn a_lane_takes_frames_until_its_window_is_full() {
        let t0 = Instant::now();
        let mut lane = Lane::new(None, false);
        let mut taken = 0;
        while lane.has_room() {
            lane.push(t0, vec![0; 1000], ms(10));
            taken += 1;
        }
        assert_eq!(taken, WINDOW_BYTES.div_ceil(1000));
        assert!(lane.pop_due(t0 + ms(10)).is_some());
        assert!(lane.has_room(), "taking a frame out makes room");
    }
}
