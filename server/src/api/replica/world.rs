//! The replicated entities: their fields, encoded once when set, stamped with the version
//! that changed them, and indexed by group and grid cell for interest queries.

use rustc_hash::FxHashMap;
use ticksock_protocol::replica::FieldBytes;

use crate::ConnId;

/// An entity's id: a number from 1, never reused while the server runs (a client that saw an
/// id leave never sees it come back as something else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub(crate) u32);

impl EntityId {
    /// The number clients see.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A square of the world's interest grid (the game chooses its size: a cell is whatever
/// `x`, `y` it passes). A watcher with radius `r` sees the entities of the cells within `r`
/// of its own on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cell {
    /// Column.
    pub x: i32,
    /// Row.
    pub y: i32,
}

impl Cell {
    /// Whether `other` is within `radius` cells of this one on both axes.
    pub fn near(self, other: Cell, radius: u32) -> bool {
        self.x.abs_diff(other.x) <= radius && self.y.abs_diff(other.y) <= radius
    }
}

/// One field's current value.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) bytes: FieldBytes,
    /// Where the value starts in `bytes.binary` (after its index and length).
    pub(crate) value_at: usize,
    /// The version in which it last changed.
    pub(crate) changed: u64,
}

/// One entity.
#[derive(Debug)]
pub(crate) struct Entity {
    pub(crate) kind: u16,
    /// By index; `None` for an index never set.
    pub(crate) fields: Vec<Option<Field>>,
    pub(crate) group: Box<str>,
    /// `None`: seen from anywhere in the group.
    pub(crate) cell: Option<Cell>,
    /// `Some`: seen only by these connections (a secret), interest rules still applying.
    pub(crate) only: Option<Vec<ConnId>>,
    /// The latest version in which any field changed (so "changed since v?" is one compare).
    pub(crate) changed: u64,
}

impl Field {
    /// The value's binary encoding, as the game's type encodes it.
    pub(crate) fn value(&self) -> &[u8] {
        &self.bytes.binary[self.value_at..]
    }
}

impl Entity {
    /// The fields set, in index order.
    pub(crate) fn present(&self) -> impl ExactSizeIterator<Item = &FieldBytes> + Clone {
        PresentFields { fields: &self.fields, at: 0, left: self.fields.iter().flatten().count() }
    }

    /// The fields changed after `version`, in index order, and how many.
    pub(crate) fn changed_after(&self, version: u64) -> (usize, impl Iterator<Item = &FieldBytes> + Clone) {
        let n = self.fields.iter().flatten().filter(|f| f.changed > version).count();
        (n, self.fields.iter().flatten().filter(move |f| f.changed > version).map(|f| &f.bytes))
    }
}

/// [`Entity::present`]'s iterator, which knows its length.
#[derive(Clone)]
struct PresentFields<'a> {
    fields: &'a [Option<Field>],
    at: usize,
    left: usize,
}

impl<'a> Iterator for PresentFields<'a> {
    type Item = &'a FieldBytes;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(slot) = self.fields.get(self.at) {
            self.at += 1;
            if let Some(field) = slot {
                self.left -= 1;
                return Some(&field.bytes);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PresentFields<'_> {}

/// The entities of one group, by cell.
#[derive(Debug, Default)]
pub(crate) struct GroupIndex {
    pub(crate) cells: FxHashMap<Cell, Vec<u32>>,
    /// Entities without a cell: every watcher of the group sees them.
    pub(crate) anywhere: Vec<u32>,
}

impl GroupIndex {
    pub(crate) fn insert(&mut self, id: u32, cell: Option<Cell>) {
        match cell {
            Some(cell) => self.cells.entry(cell).or_default().push(id),
            None => self.anywhere.push(id),
        }
    }

    pub(crate) fn remove(&mut self, id: u32, cell: Option<Cell>) {
        let list = match cell {
            Some(cell) => self.cells.get_mut(&cell),
            None => Some(&mut self.anywhere),
        };
        if let Some(list) = list
            && let Some(at) = list.iter().position(|&e| e == id)
        {
            list.swap_remove(at);
            if list.is_empty()
                && let Some(cell) = cell
            {
                self.cells.remove(&cell);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.anywhere.is_empty()
    }

    /// Appends the ids of the entities within `radius` of `center` (every one for `None`),
    /// unsorted.
    pub(crate) fn query(&self, center: Option<Cell>, radius: u32, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.anywhere);
        match center {
            None => self.cells.values().for_each(|ids| out.extend_from_slice(ids)),
            // Walk the square when it has fewer cells than the group holds, else the group.
            Some(c) if (2 * u64::from(radius) + 1).pow(2) <= self.cells.len() as u64 => {
                let r = i64::from(radius);
                for dx in -r..=r {
                    for dy in -r..=r {
                        let (Ok(x), Ok(y)) =
                            (i32::try_from(i64::from(c.x) + dx), i32::try_from(i64::from(c.y) + dy))
                        else {
                            continue;
                        };
                        if let Some(ids) = self.cells.get(&Cell { x, y }) {
                            out.extend_from_slice(ids);
                        }
                    }
                }
            }
            Some(c) => {
                for (cell, ids) in &self.cells {
                    if c.near(*cell, radius) {
                        out.extend_from_slice(ids);
                    }
                }
            }
        }
    }
}
