//! The bots' own timers (a scenario's moves, chats, retries, pauses): a wheel of 1 ms slots
//! for the next two seconds and a heap for later ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// What a bot's timer is for: the scenario's own (`T`), or the link conditioner's frames
/// coming due (`worker::conditioner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Wake<T> {
    /// The scenario's timer: stale once the bot's generation has moved on.
    Script(T),
    /// Frames held for the bot's link may be due: never stale (a wake with nothing due only
    /// costs a look).
    Link,
}

/// A bot's timer: `timer` (the scenario's kind) for bot `bot` at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerEntry<T> {
    pub at: Instant,
    /// The bot's index in its worker.
    pub bot: usize,
    /// Stale when the bot's generation has moved on.
    pub generation: u32,
    pub timer: T,
}

/// Bot timers: a wheel of 1 ms slots for the next two seconds (moves, retries: O(1) each way,
/// where 100 000 moves a second through a heap cost more), and a heap for later ones (chat).
pub(crate) struct Timers<T> {
    origin: Instant,
    slots: Vec<Vec<TimerEntry<T>>>,
    /// The next slot (in ms since `origin`) not yet handed out.
    cursor: u64,
    in_wheel: usize,
    far: BinaryHeap<Reverse<TimerEntry<T>>>,
}

const WHEEL_SLOTS: u64 = 2048;

impl<T: Ord> Timers<T> {
    /// No timers; slot 0 ends at `origin`.
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            origin,
            slots: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            in_wheel: 0,
            far: BinaryHeap::new(),
        }
    }

    /// The slot of `at`, rounded up so that a timer never fires early.
    fn slot_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    pub(crate) fn schedule(&mut self, entry: TimerEntry<T>) {
        let slot = self.slot_of(entry.at).max(self.cursor);
        if slot - self.cursor < WHEEL_SLOTS {
            self.slots[(slot % WHEEL_SLOTS) as usize].push(entry);
            self.in_wheel += 1;
        } else {
            self.far.push(Reverse(entry));
        }
    }

    /// Moves every timer due at `now` into `out`.
    pub(crate) fn due(&mut self, now: Instant, out: &mut Vec<TimerEntry<T>>) {
        let now_slot = self.slot_of(now);
        // Slot `s` holds timers in (s - 1 ms, s ms]: it is due once `now` reaches its end.
        let last_due = if self.origin + Duration::from_millis(now_slot) <= now {
            now_slot
        } else {
            now_slot.saturating_sub(1)
        };
        loop {
            // Far timers that came within the wheel's reach move into it.
            while let Some(Reverse(entry)) = self.far.peek() {
                if self.slot_of(entry.at).max(self.cursor) - self.cursor >= WHEEL_SLOTS {
                    break;
                }
                let Some(Reverse(entry)) = self.far.pop() else { break };
                self.schedule(entry);
            }
            if self.cursor > last_due {
                return;
            }
            if self.in_wheel == 0 {
                // Nothing in the wheel: jump, but not past the first far timer.
                let far = self.far.peek().map_or(u64::MAX, |Reverse(e)| self.slot_of(e.at) - WHEEL_SLOTS + 1);
                self.cursor = self.cursor.max(far.min(last_due + 1));
                if self.cursor > last_due {
                    continue;
                }
            }
            let slot = &mut self.slots[(self.cursor % WHEEL_SLOTS) as usize];
            self.in_wheel -= slot.len();
            out.append(slot);
            self.cursor += 1;
        }
    }

    /// When to look again: the end of the first slot holding a timer, or the first far timer
    /// if that is sooner.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let far = self.far.peek().map(|Reverse(entry)| entry.at);
        if self.in_wheel == 0 {
            return far;
        }
        // Some slot within the wheel's reach holds a timer: find the first.
        let ahead = (0..WHEEL_SLOTS)
            .find(|k| !self.slots[((self.cursor + k) % WHEEL_SLOTS) as usize].is_empty())
            .unwrap_or(0);
        let wheel = self.origin + Duration::from_millis(self.cursor + ahead);
        Some(far.map_or(wheel, |far| far.min(wheel)))
    }
}

#[cfg(test)]
mod tests {
    use ticksock_client::backoff::XorShift;

    use super::*;

    #[test]
    fn timers_never_fire_early_nor_more_than_a_millisecond_late_and_none_is_lost() {
        let origin = Instant::now();
        let mut timers = Timers::new(origin);
        let mut rng = XorShift::new(3);
        let mut want = Vec::new();
        for bot in 0..2000 {
            // Up to 12 s ahead: most within the wheel, some far.
            let at = origin + Duration::from_micros(rng.below(12_000_000));
            timers.schedule(TimerEntry { at, bot, generation: 0, timer: () });
            want.push((at, bot));
        }
        let mut got = Vec::new();
        let mut out = Vec::new();
        let mut now = origin;
        let mut wakes = 0;
        while got.len() < want.len() {
            let wake = timers.next_wake().expect("timers remain");
            assert!(wake >= now, "the next wake is not in the past");
            // Sometimes the loop is late, by up to 30 ms.
            let late =
                if rng.below(2) == 0 { Duration::ZERO } else { Duration::from_micros(rng.below(30_000)) };
            now = wake + late;
            timers.due(now, &mut out);
            wakes += 1;
            for e in out.drain(..) {
                assert!(e.at <= now, "fired early");
                if late == Duration::ZERO {
                    assert!(now - e.at < Duration::from_millis(1), "fired {:?} late", now - e.at);
                }
                got.push((e.at, e.bot));
            }
            assert!(now < origin + Duration::from_secs(20), "stuck");
        }
        assert!(wakes <= 2 * want.len(), "{wakes} wakeups for {} timers", want.len());
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(timers.next_wake(), None);
    }
}
