// Unit tests of replication on the client (PROTOCOL.md section 14): the bincode reader and writer
// against the primitive vectors of section 3, the six replication vectors of section 14 (read
// from docs/PROTOCOL.md itself), the JSON form of 14.3 giving the same view and digest, the
// `Mirror` (baselines kept and dropped, the bound, refused updates, when to acknowledge) and a
// `ReplicaSync` on a client over the fake WebSocket and clock: full snapshot, deltas, a late
// acknowledgement, an unknown baseline, resets on a new session and none on a resume.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  TicksockClient,
  BincodeReader,
  BincodeWriter,
  BincodeError,
  encodeAs,
  decodeAs,
  Mirror,
  ReplicaSync,
  ReplicaError,
  decodeReplicaUpdate,
  replicaUpdateFromJson,
  decodeAckOutcome,
  encodeReplicaAck,
  viewDigest,
  arenaPlayer,
  ArenaReplica,
  ARENA_REPLICA_KINDS,
  MAX_HELD_VIEWS,
  ACK_INTERVAL_MS,
  REPLICA_TOPIC,
  REPLICA_ACK_ROUTE,
} from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush, SECRET_B } from "./fakes.mjs";

const URL = "ws://127.0.0.1:7777/";

/** Every `vector: NAME = HEX` line of docs/PROTOCOL.md, as NAME -> bytes. */
const VECTORS = new Map(
  [...readFileSync(new globalThis.URL("../../docs/PROTOCOL.md", import.meta.url), "utf8").matchAll(/^vector: (\w+) = ([0-9a-f ]+)$/gm)].map(
    ([, name, hex]) => [name, Uint8Array.from(hex.split(" "), (h) => parseInt(h, 16))],
  ),
);

function vector(name) {
  const bytes = VECTORS.get(name);
  assert.ok(bytes, `docs/PROTOCOL.md has the vector ${name}`);
  return bytes;
}

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
const bytes = (...b) => Uint8Array.from(b);

// ----- bincode (section 3) ----------------------------------------------------------------

test("bincode: the primitive vectors of section 3, written and read back", () => {
  const cases = [
    ["u32_0", "u32", 0],
    ["u32_250", "u32", 250],
    ["u32_251", "u32", 251],
    ["u32_300", "u32", 300],
    ["u32_65535", "u32", 65535],
    ["u32_65536", "u32", 65536],
    ["u32_70000", "u32", 70000],
    ["u32_max", "u32", 4294967295],
    ["u64_4294967296", "u64", 4294967296],
    ["u16_1000", "u16", 1000],
    ["i32_0", "i32", 0],
    ["i32_minus_1", "i32", -1],
    ["i32_1", "i32", 1],
    ["i32_minus_3", "i32", -3],
    ["i32_10", "i32", 10],
    ["i32_minus_126", "i32", -126],
    ["i32_126", "i32", 126],
    ["i32_min", "i32", -2147483648],
    ["i64_minus_200", "i64", -200],
    ["i8_minus_1", "i8", -1],
    ["i8_minus_128", "i8", -128],
    ["u8_255", "u8", 255],
    ["bool_true", "bool", true],
    ["option_none", { option: "u32" }, null],
    ["option_some_300", { option: "u32" }, 300],
    ["string_ann", "string", "ann"],
    ["string_empty", "string", ""],
    ["string_utf8", "string", "é"],
    ["vec_u8", { list: "u8" }, [0xde, 0xad]],
    ["f32_1_5", "f32", 1.5],
  ];
  for (const [name, type, value] of cases) {
    assert.equal(hex(encodeAs(type, value)), hex(vector(name)), `${name} written`);
    assert.deepEqual(decodeAs(type, vector(name)), value, `${name} read`);
  }
  // The arena's State body of section 8.3, as a struct: names, a list, zigzag.
  const state = { struct: [["tick", "u64"], ["players", { list: { struct: [["id", "u32"], ["x", "i32"], ["y", "i32"]] } }]] };
  const body = { tick: 5, players: [{ id: 1, x: 10, y: -3 }] };
  assert.equal(hex(encodeAs(state, body)), hex(vector("body_state")));
  assert.deepEqual(decodeAs(state, vector("body_state")), body);
});

test("bincode: bad bytes and values not of their type are clear errors", () => {
  const fails = (fn, pattern) => assert.throws(fn, (e) => e instanceof BincodeError && pattern.test(e.message), String(pattern));
  fails(() => decodeAs("u16", bytes(0xfc, 0, 0, 1, 0)), /u16: first byte 0xfc at offset 0 is not one of its width/);
  fails(() => decodeAs("u32", bytes(0xfd, 0, 0, 0, 0, 1, 0, 0, 0)), /u32: first byte 0xfd/);
  fails(() => decodeAs("u32", bytes(0xfb, 0x2c)), /needs 2 bytes at offset 1, 1 left/);
  fails(() => decodeAs("bool", bytes(2)), /neither 0 nor 1/);
  fails(() => decodeAs("string", bytes(2, 0xc3, 0x28)), /not UTF-8/);
  fails(() => decodeAs("u8", bytes(1, 2)), /1 bytes after the value/);
  // A hostile length costs nothing: refused before anything is reserved for it.
  fails(() => decodeAs({ list: "u32" }, bytes(0xfc, 0xff, 0xff, 0xff, 0x7f, 1)), /length 2147483647 at offset 0 is more than the 1 bytes left hold/);
  fails(() => encodeAs("u8", 256), /u8: got 256, not an integer in 0..=255/);
  fails(() => encodeAs("i32", 1.5), /i32: got 1.5/);
  fails(() => encodeAs("u64", 2 ** 60), /not an exact integer .* below 2\^53/);
  fails(() => encodeAs({ tuple: ["i32", "i32"] }, [1]), /tuple of 2: got an array of 1/);
  fails(() => encodeAs({ tuple: ["i32", "i32"] }, [1, "2"]), /at \[1\]: i32: got "2"/);
  fails(() => encodeAs({ struct: [["x", "i32"]] }, { y: 1 }), /no field "x"/);
  // u64 beyond 2^53 travel as bigint, exactly.
  const big = (1n << 64n) - 1n;
  assert.equal(hex(encodeAs("u64", big)), "fd ff ff ff ff ff ff ff ff");
  assert.equal(decodeAs("u64", encodeAs("u64", big)), big);
  assert.equal(decodeAs("i64", encodeAs("i64", -(1n << 63n))), -(1n << 63n));
});

// ----- the vectors of section 14 -----------------------------------------------------------

/** The arena's player 7, "ann", at (10, -3): entity 1 of body_replica_full. */
const ANN_FIELDS = [
  { index: 0, value: bytes(0x14, 0x05) },
  { index: 1, value: bytes(0x07) },
  { index: 2, value: bytes(0x03, 0x61, 0x6e, 0x6e) },
];

// FNV-1a 64 of the two views, computed from the rule of 14.5 by a separate script (Python):
// entity 1, kind 1, fields 0 (14 05 / 16 05), 1 (07), 2 (03 61 6e 6e).
const DIGEST_ANN_AT_10_MINUS_3 = 12238965651652578693n;
const DIGEST_ANN_AT_11_MINUS_3 = 8446339348064428599n;
const DIGEST_EMPTY = 0xcbf29ce484222325n;

test("vector body_replica_full: a full snapshot of ann, read, applied, decoded as an arena player, digested", () => {
  const update = decodeReplicaUpdate(vector("body_replica_full"));
  assert.deepEqual(update, { tick: 5, baseline: null, entered: [{ id: 1, kind: 1, fields: ANN_FIELDS }], changed: [], left: [] });
  const mirror = new Mirror({ kinds: ARENA_REPLICA_KINDS });
  assert.equal(mirror.digest(), DIGEST_EMPTY, "the empty view's digest is the offset basis");
  const result = mirror.apply(vector("body_replica_full"));
  assert.deepEqual(result, { ok: true, change: { tick: 5, full: true, entered: [1], changed: [], left: [] } });
  assert.equal(mirror.tick, 5);
  assert.deepEqual(arenaPlayer(mirror.view.get(1)), { x: 10, y: -3, playerId: 7, name: "ann" });
  assert.equal(mirror.digest(), DIGEST_ANN_AT_10_MINUS_3);
  // The arena's reply to `replica_digest` after it (call 9): tick 5 and this digest, the u64 as
  // the last 8 bytes, little-endian, after its marker fd.
  const reply = vector("reply_replica_digest");
  assert.deepEqual([...reply.subarray(0, 5)], [0x01, 0x09, 0x01, 0x05, 0xfd]);
  assert.equal(new DataView(reply.buffer, reply.byteOffset + 5, 8).getBigUint64(0, true), mirror.digest());
});

test("vector push_replica_delta: the push frame's body is a delta from tick 5: ann moved, entity 2 left", () => {
  const frame = new BincodeReader(vector("push_replica_delta"));
  assert.equal(frame.u8(), 3, "a Push frame");
  assert.equal(frame.string(), REPLICA_TOPIC);
  const body = vector("push_replica_delta").subarray(frame.offset);
  assert.deepEqual(decodeReplicaUpdate(body), {
    tick: 7,
    baseline: 5,
    entered: [],
    changed: [{ id: 1, kind: 1, fields: [{ index: 0, value: bytes(0x16, 0x05) }] }],
    left: [2],
  });
  const mirror = new Mirror({ kinds: ARENA_REPLICA_KINDS });
  mirror.apply(vector("body_replica_full"));
  const result = mirror.apply(body);
  assert.deepEqual(result, { ok: true, change: { tick: 7, full: false, entered: [], changed: [1], left: [] } });
  assert.deepEqual(arenaPlayer(mirror.view.get(1)), { x: 11, y: -3, playerId: 7, name: "ann" }, "the fields not in the delta kept");
  assert.equal(mirror.digest(), DIGEST_ANN_AT_11_MINUS_3);
  assert.equal(mirror.digest(5), DIGEST_ANN_AT_10_MINUS_3, "the baseline's view is still held");
});

test("vectors request_replica_ack, reply_replica_ack, body_ack_outcome_stale, body_ack_outcome_unknown", () => {
  const request = new BincodeWriter().u8(0).u32(9).string(REPLICA_ACK_ROUTE).raw(encodeReplicaAck(7)).finish();
  assert.equal(hex(request), hex(vector("request_replica_ack")), "a Request, id 9, route replica_ack, tick 7");
  const reply = new BincodeReader(vector("reply_replica_ack"));
  assert.equal(reply.u8(), 1, "a Reply frame");
  assert.equal(reply.u32(), 9);
  assert.equal(decodeAckOutcome(vector("reply_replica_ack").subarray(reply.offset)), "accepted");
  assert.equal(decodeAckOutcome(vector("body_ack_outcome_stale")), "stale");
  assert.equal(decodeAckOutcome(vector("body_ack_outcome_unknown")), "unknown");
  assert.throws(() => decodeAckOutcome(bytes(3)), /no AckOutcome of index 3/);
});

test("the JSON form (14.3) of the same updates gives the same fields, view and digest", () => {
  const fullJson = { tick: 5, baseline: null, entered: [{ id: 1, kind: 1, fields: [[0, [10, -3]], [1, 7], [2, "ann"]] }], changed: [], left: [] };
  // The example of section 14.3, verbatim.
  const deltaJson = JSON.parse('{"tick": 7, "baseline": 5, "entered": [], "changed": [{"id": 1, "kind": 1, "fields": [[0, [11, -3]]]}], "left": [2]}');
  assert.deepEqual(replicaUpdateFromJson(fullJson, ARENA_REPLICA_KINDS), decodeReplicaUpdate(vector("body_replica_full")));
  const push = vector("push_replica_delta");
  assert.deepEqual(replicaUpdateFromJson(deltaJson, ARENA_REPLICA_KINDS), decodeReplicaUpdate(push.subarray(9)));
  const mirror = new Mirror({ kinds: ARENA_REPLICA_KINDS });
  assert.equal(mirror.apply(fullJson).ok, true);
  assert.equal(mirror.digest(), DIGEST_ANN_AT_10_MINUS_3);
  assert.equal(mirror.apply(deltaJson).ok, true);
  assert.equal(mirror.digest(), DIGEST_ANN_AT_11_MINUS_3);
  assert.equal(viewDigest(mirror.view), DIGEST_ANN_AT_11_MINUS_3);
});

// ----- the mirror --------------------------------------------------------------------------

/** A JSON update of arena players: `players` maps entity id -> [x, y] (player id = entity id + 100, name "p<id>"). */
function update(tick, baseline, { entered = {}, moved = {}, left = [] } = {}) {
  const player = (id, [x, y]) => ({ id: Number(id), kind: ArenaReplica.KIND_PLAYER, fields: [[0, [x, y]], [1, Number(id) + 100], [2, `p${id}`]] });
  return {
    tick,
    baseline,
    entered: Object.entries(entered).map(([id, pos]) => player(id, pos)),
    changed: Object.entries(moved).map(([id, pos]) => ({ id: Number(id), kind: ArenaReplica.KIND_PLAYER, fields: [[0, pos]] })),
    left,
  };
}

/** The view as entity id -> [x, y]. */
function positions(view) {
  return Object.fromEntries([...view].map(([id, e]) => [id, [arenaPlayer(e).x, arenaPlayer(e).y]]));
}

test("mirror: a delta applies to the view of its baseline, not to the latest view (an acknowledgement that came late)", () => {
  const m = new Mirror({ kinds: ARENA_REPLICA_KINDS });
  m.apply(update(10, null, { entered: { 1: [0, 0], 2: [50, 50] } }));
  // Tick 12 from 10: 2 went out of sight, 1 moved.
  assert.deepEqual(m.apply(update(12, 10, { moved: { 1: [5, 0] }, left: [2] })).change, { tick: 12, full: false, entered: [], changed: [1], left: [2] });
  // The server had not had the acknowledgement of 12 yet: tick 14 is again from 10. Entity 2 is
  // back where it was at 10 (so the delta says nothing of it), 1 moved on.
  const r = m.apply(update(14, 10, { moved: { 1: [10, 0] } }));
  assert.deepEqual(r.change, { tick: 14, full: false, entered: [2], changed: [1], left: [] }, "2 entered, relative to the view of 12");
  assert.deepEqual(positions(m.view), { 1: [10, 0], 2: [50, 50] });
  assert.deepEqual(m.heldTicks, [10, 12, 14], "views from the baseline on");
  // Now the server has 14 acknowledged: 16 from 14, and the views before 14 go.
  m.apply(update(16, 14, { moved: { 2: [55, 50] } }));
  assert.deepEqual(m.heldTicks, [14, 16]);
  assert.deepEqual(positions(m.view), { 1: [10, 0], 2: [55, 50] });
  assert.deepEqual(positions(m.viewAt(14)), { 1: [10, 0], 2: [50, 50] }, "a kept view never changes");
});

test("mirror: refused updates (unknown baseline, out of order, not an update) change nothing and are never thrown", () => {
  const m = new Mirror({ kinds: ARENA_REPLICA_KINDS });
  const refused = (body, kind, pattern) => {
    const before = { tick: m.tick, held: m.heldTicks, digest: m.digest() };
    const r = m.apply(body);
    assert.equal(r.ok, false);
    assert.ok(r.error instanceof ReplicaError);
    assert.equal(r.error.kind, kind);
    assert.match(r.error.message, pattern);
    assert.deepEqual({ tick: m.tick, held: m.heldTicks, digest: m.digest() }, before, "nothing changed");
    return r.error;
  };
  const unknownFirst = refused(update(3, 2, { moved: { 1: [0, 0] } }), "unknown_baseline", /no view of the baseline tick 2/);
  assert.deepEqual([unknownFirst.tick, unknownFirst.baseline], [3, 2]);
  m.apply(update(10, null, { entered: { 1: [0, 0] } }));
  assert.equal(m.pollAck(0), 10);
  refused(update(12, 11, { moved: { 1: [5, 0] } }), "unknown_baseline", /baseline tick 11/);
  assert.equal(m.pollAck(1_000), null, "nothing to acknowledge for a refused update");
  refused(update(10, null, {}), "out_of_order", /update of tick 10 after tick 10/);
  refused({ tick: "x" }, "decode", /not a replica update: tick: got x/);
  refused(null, "decode", /an update is an object/);
  refused(update(12, 10, { moved: { 1: [1.5, 0] } }), "decode", /changed\[0\]\.fields\[0\]: at \[0\]: i32: got 1.5/);
  refused({ ...update(12, 10), changed: [{ id: 1, kind: 9, fields: [[0, 1]] }] }, "decode", /no field types for kind 9/);
  refused({ ...update(12, 10), changed: [{ id: 1, kind: 1, fields: [[7, 1]] }] }, "decode", /kind 1 has no field 7/);
  refused(bytes(0x0c, 0x01), "decode", /baseline: needs 1 bytes/);
  // A binary update of a declared kind whose field is not of its type.
  const bad = new BincodeWriter().u64(12).u8(0).length(1).u32(1).u16(1).length(1).u8(1).byteSeq(bytes(0xfd)).length(0).length(0).finish();
  refused(bad, "decode", /entity 1 field 1: u32: first byte 0xfd/);
  // And a good one still applies after all that.
  assert.equal(m.apply(update(12, 10, { moved: { 1: [5, 0] } })).ok, true);
});

test("mirror: views are bounded by maxViews; a full snapshot keeps the views before it", () => {
  assert.equal(new Mirror().maxViews, MAX_HELD_VIEWS);
  assert.equal(MAX_HELD_VIEWS, 64);
  const m = new Mirror({ kinds: ARENA_REPLICA_KINDS, maxViews: 4 });
  m.apply(update(1, null, { entered: { 1: [0, 0] } }));
  m.apply(update(2, 1, { moved: { 1: [5, 0] } }));
  // A full snapshot: an acknowledgement of 1 or 2 may still reach the server after it.
  m.apply(update(3, null, { entered: { 1: [10, 0] } }));
  assert.deepEqual(m.heldTicks, [1, 2, 3]);
  assert.equal(m.apply(update(4, 2, { moved: { 1: [15, 0] } })).ok, true, "a delta from before the snapshot applies");
  assert.deepEqual(m.heldTicks, [2, 3, 4]);
  for (let t = 5; t <= 9; t++) m.apply(update(t, null, { entered: { 1: [t, 0] } }));
  assert.deepEqual(m.heldTicks, [6, 7, 8, 9], "at most maxViews, the oldest dropped");
  assert.equal(m.apply(update(10, 5, {})).error.kind, "unknown_baseline");
});

test("mirror: acknowledges at once after a full snapshot, else the latest tick at most every ackIntervalMs", () => {
  assert.equal(new Mirror().ackIntervalMs, ACK_INTERVAL_MS);
  const m = new Mirror({ kinds: ARENA_REPLICA_KINDS, ackIntervalMs: 250 });
  assert.equal(m.ackDueAt(), null);
  m.apply(update(1, null, { entered: { 1: [0, 0] } }));
  assert.equal(m.pollAck(1000), 1, "a full snapshot: at once");
  m.apply(update(2, 1, { moved: { 1: [5, 0] } }));
  m.apply(update(3, 1, { moved: { 1: [10, 0] } }));
  assert.equal(m.ackDueAt(), 1250);
  assert.equal(m.pollAck(1249), null, "not before the interval");
  assert.equal(m.pollAck(1250), 3, "the latest tick applied");
  assert.equal(m.pollAck(5000), null, "once");
  m.apply(update(4, 3, { moved: { 1: [15, 0] } }));
  m.apply(update(5, null, { entered: { 1: [20, 0] } }));
  assert.equal(m.pollAck(1300), 5, "a full snapshot does not wait for the interval");
  m.reset();
  assert.deepEqual([m.tick, m.heldTicks, m.view.size, m.ackDueAt()], [null, [], 0, null]);
});

// ----- a client's replication, over the fake socket --------------------------------------

let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

function client(options = {}) {
  return new TicksockClient(URL, { WebSocket: FakeSocket, timers: clock.api, random: () => 0, heartbeatRoute: null, idleTimeoutMs: 1e12, ...options });
}

/** The `replica_ack` requests sent on `ws`, as [id, tick]. */
const acks = (ws) => ws.framesOf("request").filter((r) => r.route === REPLICA_ACK_ROUTE).map((r) => [r.id, r.body]);

/** Drops the link and lets the reconnect delay pass: returns the next socket (not yet open). */
function dropAndReconnect(ws) {
  ws.drop(1006);
  for (let waited = 0; FakeSocket.last === ws && waited < 10_000; waited += 50) clock.advance(50);
  assert.notEqual(FakeSocket.last, ws, "a new connection attempt");
  return FakeSocket.last;
}

test("sync: full snapshot, deltas, a late acknowledgement and an unknown baseline, acknowledged as the mirror says", async () => {
  const c = client();
  const sync = new ReplicaSync(c, { kinds: ARENA_REPLICA_KINDS, timers: clock.api });
  const changes = [];
  const errors = [];
  sync.onChange((change) => changes.push(change));
  sync.onError((error) => errors.push(error));
  const ws = FakeSocket.last;
  ws.welcome2();

  // The full snapshot: applied and acknowledged at once.
  clock.advance(1000);
  ws.push(REPLICA_TOPIC, update(30, null, { entered: { 1: [100, 100], 2: [150, 100] } }));
  assert.deepEqual(changes.at(-1), { tick: 30, full: true, entered: [1, 2], changed: [], left: [] });
  assert.deepEqual(acks(ws), [[0, 30]]);

  // Deltas from 30 while the acknowledgement travels: acknowledged once the interval has passed,
  // by the timer, with the latest tick.
  clock.advance(33);
  ws.push(REPLICA_TOPIC, update(31, 30, { moved: { 1: [105, 100] } }));
  clock.advance(33);
  ws.push(REPLICA_TOPIC, update(32, 30, { moved: { 1: [110, 100] }, left: [2] }));
  assert.deepEqual(acks(ws), [[0, 30]], "not within 100 ms of the last");
  clock.advance(33);
  assert.deepEqual(acks(ws), [[0, 30]]);
  clock.advance(1); // 100 ms since the acknowledgement of 30
  assert.deepEqual(acks(ws), [[0, 30], [1, 32]]);
  ws.reply(0, "accepted");

  // The acknowledgement of 32 is late: the server builds 33 from 30 still. Entity 2 came back to
  // where it was at 30, so that delta says nothing of it: only the view of 30 has it.
  clock.advance(33);
  ws.push(REPLICA_TOPIC, update(33, 30, { moved: { 1: [115, 100] } }));
  assert.deepEqual(changes.at(-1), { tick: 33, full: false, entered: [2], changed: [1], left: [] });
  assert.deepEqual(positions(sync.mirror.view), { 1: [115, 100], 2: [150, 100] });
  ws.reply(1, "accepted");
  // 34 from 32 (the server has it now); a repeated acknowledgement of 32 would be stale.
  clock.advance(33);
  ws.push(REPLICA_TOPIC, update(34, 32, { moved: { 1: [120, 100] }, entered: { 2: [150, 100] } }));
  assert.deepEqual(sync.mirror.heldTicks, [32, 33, 34]);
  assert.deepEqual(positions(sync.mirror.view), { 1: [120, 100], 2: [150, 100] });

  // An update from a baseline the mirror does not hold: refused and reported, the view stays.
  const digest = sync.mirror.digest();
  ws.push(REPLICA_TOPIC, update(35, 31, { moved: { 1: [125, 100] } }));
  assert.equal(errors.length, 1);
  assert.equal(errors[0].kind, "unknown_baseline");
  assert.equal(sync.mirror.digest(), digest);
  assert.equal(sync.mirror.tick, 34);
  // A body that is not an update: reported, nothing thrown into the client's push handling.
  ws.push(REPLICA_TOPIC, { tick: 36, baseline: null, entered: "nope", changed: [], left: [] });
  assert.equal(errors.at(-1).kind, "decode");

  clock.advance(100);
  assert.deepEqual(acks(ws).at(-1), [2, 34], "the latest applied tick, not a refused one");
  ws.reply(2, "stale");
  // Then the server gives up that baseline: a full snapshot, acknowledged at once.
  clock.advance(10);
  ws.push(REPLICA_TOPIC, update(40, null, { entered: { 1: [130, 100] } }));
  assert.deepEqual(acks(ws).at(-1), [3, 40]);
  ws.reply(3, "unknown");
  await flush();
  clock.advance(10_000);
  assert.equal(acks(ws).length, 4, "nothing more to acknowledge");
  assert.deepEqual(sync.stats, { updates: 6, fullSnapshots: 2, refused: 2, acks: 4, accepted: 2, stale: 1, unknown: 1, failed: 0, resets: 0 });
});

test("sync: a new server session starts the mirror afresh; a resumed one keeps it, and what was due is acknowledged", async () => {
  const c = client();
  const sync = new ReplicaSync(c, { kinds: ARENA_REPLICA_KINDS, timers: clock.api });
  let ws = FakeSocket.last;
  ws.welcome2();
  ws.push(REPLICA_TOPIC, update(10, null, { entered: { 1: [0, 0] } }));
  clock.advance(10);
  ws.push(REPLICA_TOPIC, update(11, 10, { moved: { 1: [5, 0] } }));
  // The link drops before the acknowledgement of 11 was due; the session resumes.
  ws = dropAndReconnect(ws);
  clock.advance(500);
  assert.equal(acks(ws).length, 0, "nothing sent while the link is down");
  ws.welcome2({ conn_id: "8589934592", secret: SECRET_B });
  ws.receive({ type: "resumed", received: 1, secret: SECRET_B });
  assert.deepEqual(positions(sync.mirror.view), { 1: [5, 0] }, "the view is kept");
  assert.deepEqual(acks(ws), [[1, 11]], "the acknowledgement that fell due meanwhile goes out on the resumed link");
  assert.equal(sync.stats.resets, 0);

  // Now the session ends (the server restarted): the next session starts with a full snapshot,
  // and a delta from the old session's ticks must not apply.
  ws = dropAndReconnect(ws);
  ws.welcome2({ conn_id: "12884901888", secret: SECRET_B });
  ws.receive({ type: "resume_failed", reason: 2, message: "ended" });
  assert.equal(sync.stats.resets, 1);
  assert.equal(sync.mirror.view.size, 0);
  ws.push(REPLICA_TOPIC, update(12, 11, { moved: { 1: [10, 0] } }));
  assert.equal(sync.stats.refused, 1);
  ws.push(REPLICA_TOPIC, update(3, null, { entered: { 7: [500, 500] } }));
  assert.deepEqual(positions(sync.mirror.view), { 7: [500, 500] }, "ticks start again in a new server run");
  await flush();
});

test("sync: on version 1 every connection is a new session; close() stops listening", async () => {
  const c = client();
  const sync = new ReplicaSync(c, { kinds: ARENA_REPLICA_KINDS, timers: clock.api });
  let ws = FakeSocket.last;
  ws.welcome();
  ws.push(REPLICA_TOPIC, update(10, null, { entered: { 1: [0, 0] } }));
  assert.equal(sync.mirror.tick, 10);
  ws = dropAndReconnect(ws);
  ws.welcome();
  assert.equal(sync.mirror.tick, null);
  assert.equal(sync.stats.resets, 1);
  // A listener that throws is reported, and the others still hear the change.
  const thrown = [];
  const sync2 = new ReplicaSync(c, { kinds: ARENA_REPLICA_KINDS, timers: clock.api, onListenerError: (e) => thrown.push(e.message) });
  const heard = [];
  sync2.onChange(() => {
    throw new Error("listener bug");
  });
  sync2.onChange((change) => heard.push(change.tick));
  sync.close();
  ws.push(REPLICA_TOPIC, update(20, null, { entered: { 1: [0, 0] } }));
  assert.equal(sync.mirror.tick, null, "a closed sync hears nothing");
  assert.deepEqual([thrown, heard], [["listener bug"], [20]]);
  sync2.close();
  await flush();
});
