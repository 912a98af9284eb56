// Unit tests of the snapshot interpolator the demo page draws replicated players with: positions
// between two updates at a render tick that follows the clock, one gap (plus the jitter seen)
// behind the server; held past the latest update; entering, leaving and jumping things. Times are
// passed in, as a page passes performance.now().
import { test } from "node:test";
import assert from "node:assert/strict";
import { SnapshotInterpolator, MAX_DELAY_GAPS } from "../dist/ticksock.js";

const TICK_MS = 1000 / 30;
const LATENCY = 20;

/** When the update of `tick` arrives, `late` ms after the fastest. */
const arrival = (tick, late = 0) => tick * TICK_MS + LATENCY + late;
const at = (entries) => new Map(entries.map(([id, x, y]) => [id, { x, y }]));
const near = (a, b) => Math.abs(a - b) < 1e-9;

test("positions glide between updates two ticks apart, drawn one gap behind the server", () => {
  const interp = new SnapshotInterpolator({ tickMs: TICK_MS });
  assert.equal(interp.sample(0), null, "nothing before the first update");
  for (const tick of [100, 102, 104, 106]) interp.push(tick, arrival(tick), at([[1, (tick - 100) * 5, 50]]));
  assert.equal(interp.delayTicks, 2, "the gap between updates, no jitter");
  // At the arrival of 106, the drawing is at tick 104; a tick later, at 105: halfway to 106.
  const frame = interp.sample(arrival(106) + TICK_MS);
  assert.ok(near(frame.tick, 105), `render tick ${frame.tick}`);
  assert.ok(near(frame.positions.get(1).x, 25), `x ${frame.positions.get(1).x}, between 20 and 30`);
  assert.equal(frame.positions.get(1).y, 50);
  // A quarter of the way.
  const quarter = interp.sample(arrival(106) + TICK_MS / 2);
  assert.ok(near(quarter.positions.get(1).x, 22.5));
  // Past the latest update (nothing moved since): the latest positions, held.
  assert.deepEqual(interp.sample(arrival(106) + 10 * TICK_MS).positions, at([[1, 30, 50]]));
  // Before the first: the first.
  assert.deepEqual(interp.sample(arrival(100) - 5 * TICK_MS).positions, at([[1, 0, 50]]));
});

test("the delay takes in the jitter seen, at most MAX_DELAY_GAPS gaps", () => {
  const interp = new SnapshotInterpolator({ tickMs: TICK_MS });
  interp.push(10, arrival(10), at([[1, 0, 0]]));
  interp.push(13, arrival(13, 50), at([[1, 15, 0]])); // 50 ms late: a tick and a half
  assert.ok(near(interp.delayTicks, 3 + 50 / TICK_MS), `delay ${interp.delayTicks}`);
  // The render tick runs on the fastest arrival's timeline, not the late one's.
  assert.ok(near(interp.renderTick(arrival(13)), 13 - interp.delayTicks));
  interp.push(16, arrival(16, 2000), at([[1, 30, 0]]));
  assert.equal(interp.delayTicks, 3 * MAX_DELAY_GAPS);
});

test("something that appears is drawn from its first update on; something gone is drawn until its next", () => {
  const interp = new SnapshotInterpolator({ tickMs: TICK_MS });
  interp.push(0, arrival(0), at([[1, 0, 0], [2, 100, 100]]));
  interp.push(3, arrival(3), at([[1, 15, 0], [3, 500, 500]]));
  interp.push(6, arrival(6), at([[1, 30, 0], [3, 500, 515]]));
  const between = (t) => interp.sample(arrival(6) + (t - 3) * TICK_MS).positions; // delay is 3 ticks
  assert.deepEqual([...between(1).keys()].sort(), [1, 2], "at tick 1: 2 is still there, 3 not yet");
  assert.deepEqual(between(1).get(2), { x: 100, y: 100 }, "drawn where it was last seen");
  assert.ok(near(between(1).get(1).x, 5));
  assert.deepEqual([...between(4).keys()].sort(), [1, 3], "at tick 4: 2 gone, 3 there");
  assert.ok(near(between(4).get(3).y, 505));
});

test("a move longer than snapDistance is a jump, not a glide", () => {
  const interp = new SnapshotInterpolator({ tickMs: TICK_MS, snapDistance: 100 });
  interp.push(0, arrival(0), at([[1, 0, 0], [2, 0, 0]]));
  interp.push(2, arrival(2), at([[1, 900, 0], [2, 10, 0]]));
  const mid = interp.sample(arrival(2) + TICK_MS).positions; // tick 1, with a delay of 2
  assert.deepEqual(mid.get(1), { x: 0, y: 0 }, "where it was, until the update that moved it");
  assert.ok(near(mid.get(2).x, 5));
  assert.deepEqual(interp.sample(arrival(2) + 2 * TICK_MS).positions.get(1), { x: 900, y: 0 });
});

test("updates not after the latest are ignored; at most maxSnapshots kept; reset forgets them", () => {
  const interp = new SnapshotInterpolator({ tickMs: TICK_MS, maxSnapshots: 3 });
  interp.push(5, arrival(5), at([[1, 0, 0]]));
  interp.push(5, arrival(5), at([[1, 99, 0]]));
  interp.push(4, arrival(4), at([[1, 99, 0]]));
  assert.equal(interp.size, 1);
  assert.deepEqual(interp.sample(arrival(5)).positions, at([[1, 0, 0]]));
  for (const tick of [6, 7, 8, 9]) interp.push(tick, arrival(tick), at([[1, tick, 0]]));
  assert.equal(interp.size, 3);
  interp.reset();
  assert.equal(interp.size, 0);
  assert.equal(interp.sample(arrival(9)), null);
  assert.throws(() => new SnapshotInterpolator({ tickMs: 0 }), RangeError);
});
