//! State replication (`docs/PROTOCOL.md` section 14): the update a server pushes on
//! [`TOPIC_REPLICA`] after a tick, and the acknowledgement a client sends back on
//! [`ROUTE_REPLICA_ACK`].
//!
//! An update brings a client's view of the game's entities from a **baseline** tick the client
//! acknowledged (or from nothing: a full snapshot) to the update's tick: the entities that
//! entered its view (every field), those still in view whose fields changed since the baseline
//! (those fields), and those that left. Field values are opaque here: each is the body
//! encoding (bincode, or JSON text) of the game's type for that field, which the game's client
//! decodes by the entity's `kind`.
//!
//! Servers lay updates out from pieces encoded once per tick ([`FieldBytes`],
//! [`UpdateWriter`]) and never re-encode a field per client; clients decode them as
//! [`ReplicaUpdate`] (binary, owned), read them in place with [`UpdateView`] (binary, no
//! allocation), or as the JSON of section 14.

mod read;

use serde::{Deserialize, Serialize};

pub use self::read::{Entities, EntityRef, Fields, LeftIds, UpdateView};
use crate::frame::put;

/// The push topic of replication updates.
pub const TOPIC_REPLICA: &str = "replica";

/// The route a client acknowledges an update's tick on (request: the tick, a `u64`; reply:
/// an [`AckOutcome`]).
pub const ROUTE_REPLICA_ACK: &str = "replica_ack";

/// One update (the body of a [`TOPIC_REPLICA`] push), as a binary client decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaUpdate {
    /// The tick the update brings the view to.
    pub tick: u64,
    /// The tick it is a delta from, one the client acknowledged; none: a full snapshot (the
    /// client starts from an empty view).
    pub baseline: Option<u64>,
    /// Entities that entered the view since the baseline, with every field.
    pub entered: Vec<EntityUpdate>,
    /// Entities in view at the baseline and now, with the fields that changed since.
    pub changed: Vec<EntityUpdate>,
    /// Ids of the entities that left the view since the baseline (gone, or out of interest).
    pub left: Vec<u32>,
}

/// One entity in an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityUpdate {
    /// The entity's id (never reused while the server runs).
    pub id: u32,
    /// The game's kind of entity: says which type each field has.
    pub kind: u16,
    /// Fields, in increasing index order.
    pub fields: Vec<FieldUpdate>,
}

/// One field's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldUpdate {
    /// The field's index in its kind (0 to 255).
    pub index: u8,
    /// The field's value, body-encoded (decode it with [`decode_body`](crate::decode_body)
    /// as the kind's type for this index).
    pub value: Vec<u8>,
}

/// The answer to [`ROUTE_REPLICA_ACK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// The tick is the client's baseline now: the next update is a delta from it.
    Accepted,
    /// The tick is at or before the baseline already acknowledged (a late or repeated
    /// acknowledgement): nothing changes.
    Stale,
    /// No update of that tick is held for this client: never sent, or sent so long ago that
    /// the server no longer keeps what it held (section 14.4). Nothing changes; if the client
    /// has no newer acknowledgement accepted, the server sends a full snapshot.
    Unknown,
}

/// One field, encoded once and copied as it is into every update that carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldBytes {
    /// Binary: the field's index, the length and the value (a [`FieldUpdate`]'s encoding).
    pub binary: Vec<u8>,
    /// JSON: `[index,value]`, empty when the server keeps no JSON.
    pub json: Vec<u8>,
}

impl FieldBytes {
    /// The pieces of field `index` whose value encodes to `binary` (bincode) and `json` (JSON
    /// text; `None`: the server keeps no JSON form).
    pub fn new(index: u8, binary: &[u8], json: Option<&[u8]>) -> Self {
        let mut field = Self { binary: Vec::with_capacity(binary.len() + 4), json: Vec::new() };
        field.rewrite(index, binary, json);
        field
    }

    /// Makes this field `index` with the new values, in the buffers it has (a value that
    /// changes every tick, a position say, costs no allocation once they are large enough).
    pub fn rewrite(&mut self, index: u8, binary: &[u8], json: Option<&[u8]>) {
        self.binary.clear();
        put(&mut self.binary, index);
        put(&mut self.binary, binary.len() as u64);
        self.binary.extend_from_slice(binary);
        self.json.clear();
        if let Some(json) = json {
            // `[index,value]`: the index in decimal (at most 3 digits).
            self.json.push(b'[');
            if index >= 100 {
                self.json.push(b'0' + index / 100);
            }
            if index >= 10 {
                self.json.push(b'0' + index / 10 % 10);
            }
            self.json.push(b'0' + index % 10);
            self.json.push(b',');
            self.json.extend_from_slice(json);
            self.json.push(b']');
        }
    }
}

/// Which form an update is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateForm {
    /// bincode, as [`ReplicaUpdate`] decodes.
    Binary,
    /// JSON text (section 14.3).
    Json,
}

/// Writes one update into a buffer, section by section: [`UpdateWriter::begin`], then the
/// entered entities ([`UpdateWriter::entity`] for each), [`UpdateWriter::next_section`], the
/// changed ones, [`UpdateWriter::next_section`], then [`UpdateWriter::left`] for each id, and
/// [`UpdateWriter::finish`]. The caller need not know a section's count first: binary counts
/// precede their items, so the writer inserts each count when its section ends (one
/// `memmove` of the section per update).
#[derive(Debug)]
pub struct UpdateWriter<'a> {
    out: &'a mut Vec<u8>,
    form: UpdateForm,
    /// Where the current section's items start (binary), and how many it has.
    section_start: usize,
    count: u64,
    section: u8,
    /// The count written before the current section's items ([`UpdateWriter::expect_count`]),
    /// and how many bytes it took.
    expected: Option<(u64, usize)>,
}

const SECTION_NAMES: [&str; 3] = ["entered", "changed", "left"];

impl<'a> UpdateWriter<'a> {
    /// Starts the update of `tick` from `baseline` (`None`: a full snapshot) at the end of
    /// `out`.
    pub fn begin(out: &'a mut Vec<u8>, form: UpdateForm, tick: u64, baseline: Option<u64>) -> Self {
        match form {
            UpdateForm::Binary => {
                put(out, tick);
                match baseline {
                    Some(b) => {
                        out.push(1);
                        put(out, b);
                    }
                    None => out.push(0),
                }
            }
            UpdateForm::Json => {
                let baseline = baseline.map_or_else(|| "null".to_owned(), |b| b.to_string());
                out.extend_from_slice(
                    format!(r#"{{"tick":{tick},"baseline":{baseline},"entered":["#).as_bytes(),
                );
            }
        }
        let section_start = out.len();
        Self { out, form, section_start, count: 0, section: 0, expected: None }
    }

    /// Says how many items the current section will have, before the first: the binary form
    /// then writes the count at once, instead of moving the section's bytes to put it in
    /// front when the section ends. If the section ends with another count, that count is
    /// written instead (so a wrong guess costs that move, never a wrong update).
    pub fn expect_count(&mut self, n: u64) {
        if self.form == UpdateForm::Binary && self.count == 0 && self.expected.is_none() {
            let before = self.out.len();
            put(self.out, n);
            self.expected = Some((n, self.out.len() - before));
            self.section_start = self.out.len();
        }
    }

    /// Adds an entity to the current section (entered or changed) with `fields`, in
    /// increasing index order.
    pub fn entity<'f>(&mut self, id: u32, kind: u16, fields: impl ExactSizeIterator<Item = &'f FieldBytes>) {
        if self.form == UpdateForm::Json && self.count > 0 {
            self.out.push(b',');
        }
        write_entity(self.out, self.form, id, kind, fields);
        self.count += 1;
    }

    /// Adds an entity written by [`write_entity`] in this form (shared by the clients that
    /// need the same entity with the same fields).
    pub fn entity_bytes(&mut self, bytes: &[u8]) {
        if self.form == UpdateForm::Json && self.count > 0 {
            self.out.push(b',');
        }
        self.out.extend_from_slice(bytes);
        self.count += 1;
    }

    /// Adds an id to the left section (after the second [`UpdateWriter::next_section`]).
    pub fn left(&mut self, id: u32) {
        match self.form {
            UpdateForm::Binary => put(self.out, id),
            UpdateForm::Json => {
                if self.count > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(id.to_string().as_bytes());
            }
        }
        self.count += 1;
    }

    /// How many items the current section has.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Ends the current section and starts the next.
    pub fn next_section(&mut self) {
        self.close_section();
        self.section += 1;
        if self.form == UpdateForm::Json {
            let name = SECTION_NAMES[usize::from(self.section).min(2)];
            self.out.extend_from_slice(format!(r#"],"{name}":["#).as_bytes());
        }
        self.section_start = self.out.len();
        self.count = 0;
    }

    /// Ends the update.
    pub fn finish(mut self) {
        self.close_section();
        if self.form == UpdateForm::Json {
            self.out.extend_from_slice(b"]}");
        }
    }

    fn close_section(&mut self) {
        if self.form != UpdateForm::Binary {
            return;
        }
        match self.expected.take() {
            Some((n, _)) if n == self.count => {}
            expected => {
                // The count goes before the section's items, in place of a wrong one.
                let mut count = Vec::with_capacity(9);
                put(&mut count, self.count);
                let (_, written) = expected.unwrap_or((0, 0));
                let start = self.section_start - written;
                self.out.splice(start..self.section_start, count);
            }
        }
    }
}

/// The digest of a view (section 14.5), fed entity by entity in increasing id order, each
/// entity's fields in increasing index order: FNV-1a 64 over each entity's id and kind, then
/// each field's index, value length and value bytes (the binary value).
#[derive(Debug, Clone, Copy)]
pub struct ViewDigest(u64);

impl Default for ViewDigest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl ViewDigest {
    /// The next entity of the view.
    pub fn entity(&mut self, id: u32, kind: u16) {
        self.write(&id.to_le_bytes());
        self.write(&kind.to_le_bytes());
    }

    /// The next field of the current entity: its index and binary value.
    pub fn field(&mut self, index: u8, value: &[u8]) {
        self.write(&[index]);
        // A field value is far below 4 GiB (decoded under DECODE_LIMIT, 1 MiB).
        self.write(&(value.len() as u32).to_le_bytes());
        self.write(value);
    }

    /// The digest so far.
    pub fn finish(self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Writes one entity with `fields` (in increasing index order), as an update's section holds
/// it, at the end of `out`.
pub fn write_entity<'f>(
    out: &mut Vec<u8>,
    form: UpdateForm,
    id: u32,
    kind: u16,
    fields: impl ExactSizeIterator<Item = &'f FieldBytes>,
) {
    match form {
        UpdateForm::Binary => {
            put(out, id);
            put(out, kind);
            put(out, fields.len() as u64);
            for field in fields {
                out.extend_from_slice(&field.binary);
            }
        }
        UpdateForm::Json => {
            out.extend_from_slice(format!(r#"{{"id":{id},"kind":{kind},"fields":["#).as_bytes());
            for (n, field) in fields.enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&field.json);
            }
            out.extend_from_slice(b"]}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: Serialize>(index: u8, value: &T) -> FieldBytes {
        let binary = crate::encode_body(value).expect("encodes");
        let json = serde_json::to_vec(value).expect("encodes");
        FieldBytes::new(index, &binary, Some(&json))
    }

    fn write(form: UpdateForm) -> Vec<u8> {
        let (pos, name, hp) = (field(0, &(3i32, -4i32)), field(1, &"ann"), field(2, &7u32));
        let mut out = Vec::new();
        let mut w = UpdateWriter::begin(&mut out, form, 300, Some(298));
        w.entity(1, 2, [&pos, &name, &hp].into_iter());
        w.entity(70_000, 1, std::iter::empty());
        w.next_section();
        w.entity(5, 2, [&hp].into_iter());
        w.next_section();
        w.left(9);
        w.left(300);
        w.finish();
        out
    }

    #[test]
    fn a_written_binary_update_decodes_as_replica_update() {
        let update: ReplicaUpdate = crate::decode_body(&write(UpdateForm::Binary)).expect("decodes");
        assert_eq!(update.tick, 300);
        assert_eq!(update.baseline, Some(298));
        assert_eq!(update.entered.len(), 2);
        assert_eq!(update.entered[0].id, 1);
        assert_eq!(update.entered[0].kind, 2);
        let fields: Vec<u8> = update.entered[0].fields.iter().map(|f| f.index).collect();
        assert_eq!(fields, [0, 1, 2]);
        let pos: (i32, i32) = crate::decode_body(&update.entered[0].fields[0].value).expect("a position");
        assert_eq!(pos, (3, -4));
        let name: String = crate::decode_body(&update.entered[0].fields[1].value).expect("a name");
        assert_eq!(name, "ann");
        assert_eq!(update.entered[1], EntityUpdate { id: 70_000, kind: 1, fields: vec![] });
        assert_eq!(update.changed.len(), 1);
        let hp: u32 = crate::decode_body(&update.changed[0].fields[0].value).expect("hp");
        assert_eq!((update.changed[0].id, update.changed[0].fields[0].index, hp), (5, 2, 7));
        assert_eq!(update.left, [9, 300]);
        // And the writer agrees with serde's own encoding of the same update.
        assert_eq!(crate::encode_body(&update).expect("encodes"), write(UpdateForm::Binary));
    }

    #[test]
    fn a_written_json_update_is_the_json_of_section_14() {
        let text = String::from_utf8(write(UpdateForm::Json)).expect("UTF-8");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let expected = serde_json::json!({
            "tick": 300, "baseline": 298,
            "entered": [
                {"id": 1, "kind": 2, "fields": [[0, [3, -4]], [1, "ann"], [2, 7]]},
                {"id": 70000, "kind": 1, "fields": []}
            ],
            "changed": [{"id": 5, "kind": 2, "fields": [[2, 7]]}],
            "left": [9, 300]
        });
        assert_eq!(value, expected);
    }

    #[test]
    fn counts_given_first_or_found_at_the_end_or_wrong_make_the_same_bytes() {
        let pos = field(0, &(3i32, -4i32));
        let write = |expect: Option<[u64; 3]>| {
            let mut out = Vec::new();
            let mut w = UpdateWriter::begin(&mut out, UpdateForm::Binary, 300, Some(298));
            let expect = |w: &mut UpdateWriter<'_>, section: usize| {
                if let Some(counts) = expect {
                    w.expect_count(counts[section]);
                }
            };
            expect(&mut w, 0);
            for id in [1, 70_000] {
                w.entity(id, 2, [&pos].into_iter());
            }
            w.next_section();
            expect(&mut w, 1);
            w.next_section();
            expect(&mut w, 2);
            for id in 0..300 {
                w.left(id);
            }
            w.finish();
            out
        };
        let found = write(None);
        assert_eq!(write(Some([2, 0, 300])), found, "counts given first");
        assert_eq!(write(Some([7, 1, 3])), found, "wrong counts, mended");
        assert_eq!(write(Some([0, 250, 70_000])), found, "wrong counts of another width");
        let update: ReplicaUpdate = crate::decode_body(&found).expect("decodes");
        assert_eq!((update.entered.len(), update.changed.len(), update.left.len()), (2, 0, 300));
    }

    #[test]
    fn a_rewritten_field_is_the_field_made_new() {
        let mut field = FieldBytes::new(0, &[], None);
        for index in [0u8, 9, 10, 99, 100, 255] {
            let (binary, json) = (vec![index; usize::from(index) % 7], format!("\"{index}\""));
            let made = FieldBytes::new(index, &binary, Some(json.as_bytes()));
            assert_eq!(made.json, format!("[{index},{json}]").as_bytes());
            field.rewrite(index, &binary, Some(json.as_bytes()));
            assert_eq!(field, made);
        }
        field.rewrite(3, &[1], None);
        assert_eq!(field, FieldBytes::new(3, &[1], None));
        assert!(field.json.is_empty());
    }

    #[test]
    fn an_empty_update_in_either_form() {
        for form in [UpdateForm::Binary, UpdateForm::Json] {
            let mut out = Vec::new();
            let mut w = UpdateWriter::begin(&mut out, form, 1, None);
            w.next_section();
            w.next_section();
            w.finish();
            match form {
                UpdateForm::Binary => {
                    let update: ReplicaUpdate = crate::decode_body(&out).expect("decodes");
                    assert_eq!(
                        update,
                        ReplicaUpdate {
                            tick: 1,
                            baseline: None,
                            entered: vec![],
                            changed: vec![],
                            left: vec![]
                        }
                    );
                }
                UpdateForm::Json => {
                    assert_eq!(out, br#"{"tick":1,"baseline":null,"entered":[],"changed":[],"left":[]}"#);
                }
            }
        }
    }
}
