//! Close reasons that arrive from other nodes. A close frame's reason travels to the reactor as
//! a `&'static str` (no allocation per close on the hot path); a reason another node sent is a
//! `String`, so it is interned here once. Games use a handful of reasons, but a node must not
//! grow without bound because a peer sends many: past [`MAX_REASONS`] distinct ones, a fixed
//! reason stands in.

use std::collections::HashSet;

use parking_lot::Mutex;

/// Distinct reasons kept. A game's reasons ("banned", "kicked", "replaced") are a few; 64
/// leaves room and bounds the memory to a few KiB (a close reason is at most 123 bytes).
pub const MAX_REASONS: usize = 64;

/// The reason used once [`MAX_REASONS`] are kept.
pub const OTHER_REASON: &str = "closed by another node";

static REASONS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

/// `reason` as a `&'static str`: the same pointer for the same text every time.
pub fn intern(reason: &str) -> &'static str {
    let mut guard = REASONS.lock();
    let reasons = guard.get_or_insert_with(HashSet::new);
    if let Some(&kept) = reasons.get(reason) {
        return kept;
    }
    if reasons.len() >= MAX_REASONS {
        return OTHER_REASON;
    }
    // Leaked on purpose, at most MAX_REASONS times in the process's life.
    let kept: &'static str = Box::leak(reason.to_owned().into_boxed_str());
    reasons.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_is_kept_once_and_past_the_bound_a_fixed_reason_stands_in() {
        let a = intern("banned for cheating");
        assert!(std::ptr::eq(a, intern(&String::from("banned for cheating"))));
        // Other tests of this binary may intern too: fill up to the bound whatever they did.
        for n in 0..MAX_REASONS {
            let _ = intern(&format!("reason {n}"));
        }
        assert_eq!(intern("one more, never seen"), OTHER_REASON);
        assert!(std::ptr::eq(a, intern("banned for cheating")), "kept ones stay");
        assert!(REASONS.lock().as_ref().is_some_and(|r| r.len() == MAX_REASONS));
    }
}
