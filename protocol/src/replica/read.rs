//! A binary update read in place ([`UpdateView`]): the same bytes [`ReplicaUpdate`] decodes,
//! without allocating. A client applies some 30 updates a second of tens of entities each; the
//! owned decode costs an allocation per entity and per field value, and a load generator
//! running thousands of clients spent most of its time in them.
//!
//! [`UpdateView::parse`] checks the whole body once; the iterators then walk bytes known to be
//! well formed, so they yield plain values, not `Result`s.
//!
//! [`ReplicaUpdate`]: super::ReplicaUpdate

use bincode::error::DecodeError;

use crate::BodyError;
use crate::frame::{ONE_BYTE_UINT, U16_FOLLOWS, U32_FOLLOWS, U64_FOLLOWS};

/// An update's body, checked, with its sections borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct UpdateView<'a> {
    /// The tick the update brings the view to.
    pub tick: u64,
    /// The tick it is a delta from; none: a full snapshot.
    pub baseline: Option<u64>,
    entered: Section<'a>,
    changed: Section<'a>,
    left: Section<'a>,
}

/// A section's item count and its bytes (the items, after the count).
#[derive(Debug, Clone, Copy)]
struct Section<'a> {
    count: usize,
    bytes: &'a [u8],
}

/// One entity of an update's `entered` or `changed` section.
#[derive(Debug, Clone, Copy)]
pub struct EntityRef<'a> {
    /// The entity's id.
    pub id: u32,
    /// The game's kind of entity.
    pub kind: u16,
    fields: Section<'a>,
}

impl<'a> EntityRef<'a> {
    /// The fields, as (index, body-encoded value), in the order sent (increasing index).
    pub fn fields(&self) -> Fields<'a> {
        Fields { reader: Reader(self.fields.bytes), left: self.fields.count }
    }
}

impl<'a> UpdateView<'a> {
    /// Reads `body` (a binary update, section 14.3), checking all of it: every count, id,
    /// kind and field, and that nothing trails. Errors are those of
    /// [`decode_body`](crate::decode_body) for a body that is no update.
    pub fn parse(body: &'a [u8]) -> Result<Self, BodyError> {
        let mut r = Reader(body);
        let tick = r.u64()?;
        let baseline = match r.byte()? {
            0 => None,
            1 => Some(r.u64()?),
            tag => return Err(invalid(format!("option tag {tag}"))),
        };
        let entered = r.section(Reader::skip_entity)?;
        let changed = r.section(Reader::skip_entity)?;
        let left = r.section(|r| r.u32().map(drop))?;
        if !r.0.is_empty() {
            return Err(BodyError::Trailing(r.0.len()));
        }
        Ok(Self { tick, baseline, entered, changed, left })
    }

    /// The entities that entered the view, with every field.
    pub fn entered(&self) -> Entities<'a> {
        Entities { reader: Reader(self.entered.bytes), left: self.entered.count }
    }

    /// The entities still in view whose fields changed, with those fields.
    pub fn changed(&self) -> Entities<'a> {
        Entities { reader: Reader(self.changed.bytes), left: self.changed.count }
    }

    /// The ids of the entities that left the view.
    pub fn left(&self) -> LeftIds<'a> {
        LeftIds { reader: Reader(self.left.bytes), left: self.left.count }
    }
}

/// The entities of a section, in the order sent.
#[derive(Debug, Clone)]
pub struct Entities<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Entities<'a> {
    type Item = EntityRef<'a>;

    fn next(&mut self) -> Option<EntityRef<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Checked by `UpdateView::parse`: cannot fail.
        let id = self.reader.u32().ok()?;
        let kind = self.reader.u16().ok()?;
        let fields = self.reader.section(Reader::skip_field).ok()?;
        Some(EntityRef { id, kind, fields })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entities<'_> {}

/// An entity's fields: (index, body-encoded value).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        self.left = self.left.checked_sub(1)?;
        // Checked by `UpdateView::parse`: cannot fail.
        let index = self.reader.byte().ok()?;
        let len = self.reader.len().ok()?;
        Some((index, self.reader.take(len).ok()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// The ids of an update's `left` section.
#[derive(Debug, Clone)]
pub struct LeftIds<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl Iterator for LeftIds<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.left = self.left.checked_sub(1)?;
        // Checked by `UpdateView::parse`: cannot fail.
        self.reader.u32().ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for LeftIds<'_> {}

fn invalid(what: String) -> BodyError {
    BodyError::Decode(DecodeError::OtherString(what))
}

fn end(additional: usize) -> BodyError {
    BodyError::Decode(DecodeError::UnexpectedEnd { additional })
}

/// The bytes not read yet. Integers are bincode's varints (section 3): below 251 one byte;
/// 251, 252, 253 announce a little-endian u16, u32, u64.
#[derive(Debug, Clone)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        if self.0.len() < n {
            return Err(end(n - self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, BodyError> {
        Ok(self.take(1)?[0])
    }

    /// A varint of at most `max_marker` ([`U16_FOLLOWS`], [`U32_FOLLOWS`] or [`U64_FOLLOWS`]).
    fn varint(&mut self, max_marker: u8) -> Result<u64, BodyError> {
        let first = self.byte()?;
        let width = match first {
            0..=ONE_BYTE_UINT => return Ok(u64::from(first)),
            U16_FOLLOWS => 2,
            U32_FOLLOWS => 4,
            U64_FOLLOWS => 8,
            _ => return Err(invalid(format!("integer marker {first}"))),
        };
        if first > max_marker {
            return Err(invalid(format!("integer marker {first} too wide")));
        }
        let mut bytes = [0u8; 8];
        bytes[..width].copy_from_slice(self.take(width)?);
        Ok(u64::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, BodyError> {
        self.varint(U64_FOLLOWS)
    }

    fn u32(&mut self) -> Result<u32, BodyError> {
        // A u32 marker's value fits: at most 4 bytes were read.
        Ok(self.varint(U32_FOLLOWS)? as u32)
    }

    fn u16(&mut self) -> Result<u16, BodyError> {
        Ok(self.varint(U16_FOLLOWS)? as u16)
    }

    /// A sequence's length, as a count of items still to read.
    fn len(&mut self) -> Result<usize, BodyError> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| invalid(format!("length {n}")))
    }

    /// A count, then `count` items each read by `skip`; the section's bytes.
    fn section(
        &mut self,
        skip: fn(&mut Reader<'a>) -> Result<(), BodyError>,
    ) -> Result<Section<'a>, BodyError> {
        let count = self.len()?;
        let start = self.0;
        for _ in 0..count {
            skip(self)?;
        }
        let used = start.len() - self.0.len();
        Ok(Section { count, bytes: &start[..used] })
    }

    fn skip_entity(&mut self) -> Result<(), BodyError> {
        self.u32()?;
        self.u16()?;
        self.section(Reader::skip_field).map(drop)
    }

    fn skip_field(&mut self) -> Result<(), BodyError> {
        self.byte()?;
        let len = self.len()?;
        self.take(len).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EntityUpdate, FieldUpdate, ReplicaUpdate};
    use super::*;

    /// What the view yields, as the owned type.
    fn owned(view: &UpdateView<'_>) -> ReplicaUpdate {
        let entities = |es: Entities<'_>| {
            es.map(|e| EntityUpdate {
                id: e.id,
                kind: e.kind,
                fields: e
                    .fields()
                    .map(|(index, value)| FieldUpdate { index, value: value.to_vec() })
                    .collect(),
            })
            .collect()
        };
        ReplicaUpdate {
            tick: view.tick,
            baseline: view.baseline,
            entered: entities(view.entered()),
            changed: entities(view.changed()),
            left: view.left().collect(),
        }
    }

    fn sample() -> ReplicaUpdate {
        let field = |index, value: &[u8]| FieldUpdate { index, value: value.to_vec() };
        ReplicaUpdate {
            tick: 1 << 40,
            baseline: Some(300),
            entered: vec![
                EntityUpdate { id: 70_000, kind: 1000, fields: vec![field(0, &[1, 2]), field(2, &[0; 300])] },
                EntityUpdate { id: 1, kind: 2, fields: vec![] },
            ],
            changed: vec![EntityUpdate { id: u32::MAX, kind: u16::MAX, fields: vec![field(255, &[])] }],
            left: vec![9, 65_536, u32::MAX],
        }
    }

    #[test]
    fn reads_what_the_owned_decode_reads() {
        let update = sample();
        let bytes = crate::encode_body(&update).expect("encodes");
        let view = UpdateView::parse(&bytes).expect("parses");
        assert_eq!(owned(&view), update);
        assert_eq!(view.entered().len(), 2);
        let empty =
            ReplicaUpdate { baseline: None, entered: vec![], changed: vec![], left: vec![], ..update };
        let bytes = crate::encode_body(&empty).expect("encodes");
        assert_eq!(owned(&UpdateView::parse(&bytes).expect("parses")), empty);
    }

    /// Every prefix, every byte changed, and a byte added: the view accepts exactly what the
    /// owned decode accepts, and reads the same from it.
    #[test]
    fn refuses_what_the_owned_decode_refuses() {
        let bytes = crate::encode_body(&sample()).expect("encodes");
        let mut cases: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for at in 0..bytes.len() {
            for value in [0u8, 1, 2, 250, 251, 252, 253, 254, 255] {
                let mut changed = bytes.clone();
                changed[at] = value;
                cases.push(changed);
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        cases.push(longer);
        for case in cases {
            let owned_decode = crate::decode_body::<ReplicaUpdate>(&case);
            let view = UpdateView::parse(&case);
            match (owned_decode, view) {
                (Ok(update), Ok(view)) => assert_eq!(owned(&view), update, "{case:?}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{case:?}: owned {a:?}, view {:?}", b.map(|v| owned(&v))),
            }
        }
    }
}
