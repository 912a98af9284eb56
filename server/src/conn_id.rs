//! Connection ids that survive slot reuse.

use std::fmt;

/// Names one connection for its whole life, and never another.
///
/// The reactor keeps connections in a slab, whose slots are reused. The `generation` is
/// unique to each connection that occupies a slot, so a reply or push addressed to a
/// connection that has since closed finds a different generation in the slot and is dropped,
/// never delivered to the newcomer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// Makes the id of the connection in slot `index`, the `generation`-th to use it.
    pub fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }

    /// The slab slot.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Which occupant of the slot this is.
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The id as the welcome frame carries it: generation in the high 32 bits, index in the low.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The inverse of [`ConnId::to_u64`].
    pub fn from_u64(value: u64) -> Self {
        // Truncation is the point: the halves are the two fields.
        Self { index: value as u32, generation: (value >> 32) as u32 }
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}g{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_round_trip() {
        let id = ConnId::new(7, 3);
        assert_eq!(id.to_u64(), (3 << 32) | 7);
        assert_eq!(ConnId::from_u64(id.to_u64()), id);
    }

    #[test]
    fn same_slot_different_generation_differs() {
        assert_ne!(ConnId::new(1, 1), ConnId::new(1, 2));
    }
}
