// Unit tests of the client (dist/ticksock.js, which `npm test` first checks is a fresh build of
// src/client.ts) against a fake WebSocket and a fake clock.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import {
  TicksockClient,
  CallIds,
  ReplyError,
  TimeoutError,
  DisconnectedError,
  QueueFullError,
  TooLargeError,
  ClosedError,
  TicksockError,
  SUBPROTOCOLS,
  DROPPED_TOPIC,
  backoffCeiling,
  utf8Length,
} from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush, recordEvents, settle } from "./fakes.mjs";

const URL = "ws://127.0.0.1:7777/";
let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A client on the fake socket and clock; `random` 0 means no jitter is taken off. */
function client(options = {}) {
  return new TicksockClient(URL, { WebSocket: FakeSocket, timers: clock.api, random: () => 0, ...options });
}

/** Records events of a client. */
/** Records lifecycle events, in order. */
const record = (c) => recordEvents(c, ["connected", "disconnected", "reconnecting", "closed"]);

test("offers ticksock.v2.json then ticksock.v1.json, speaks v1 when the server picks it, and waits for the welcome before sending", async () => {
  const c = client();
  const events = record(c);
  const ws = FakeSocket.last;
  assert.equal(ws.url, URL);
  assert.deepEqual(ws.protocols, ["ticksock.v2.json", "ticksock.v1.json"]);
  assert.deepEqual(SUBPROTOCOLS, ws.protocols);
  const p = settle(c.call("rooms"));
  ws.open();
  assert.equal(ws.sent.length, 0, "nothing is sent before the welcome");
  assert.equal(c.state, "connecting");
  ws.receive({ type: "welcome", version: 1, tick_hz: 30, conn_id: "4294967296" });
  assert.equal(c.state, "open");
  assert.deepEqual(c.welcome, { version: 1, tick_hz: 30, conn_id: "4294967296" });
  assert.deepEqual(ws.requests, [{ id: 0, route: "rooms" }], "a call without data has no body");
  assert.equal(events[0][0], "connected");
  assert.equal(events[0][1].reconnected, false);
  ws.reply(0, [{ name: "lobby", players: 0, capacity: 64 }]);
  await flush();
  assert.deepEqual(p.value, [{ name: "lobby", players: 0, capacity: 64 }]);
  c.close();
});

test("out-of-order replies reach their own callers, and each entry is freed", async () => {
  const c = client();
  FakeSocket.last.welcome();
  const ws = FakeSocket.last;
  const a = settle(c.call("echo", { n: "a" }));
  const b = settle(c.call("echo", { n: "b" }));
  const d = settle(c.call("join", { room: "x" }));
  const reqs = ws.requests;
  assert.deepEqual(
    reqs.map((r) => [r.route, r.body]),
    [["echo", { n: "a" }], ["echo", { n: "b" }], ["join", { room: "x" }]],
  );
  assert.equal(new Set(reqs.map((r) => r.id)).size, 3, "ids in flight are distinct");
  assert.equal(c.pendingCount, 3);
  // Answers in reverse order, one of them an error.
  ws.error(reqs[2].id, 1003, "no such room");
  ws.reply(reqs[1].id, { n: "b" });
  ws.reply(reqs[0].id, { n: "a" });
  await flush();
  assert.deepEqual(a.value, { n: "a" });
  assert.deepEqual(b.value, { n: "b" });
  assert.ok(d.error instanceof ReplyError);
  assert.equal(d.error.kind, "reply");
  assert.equal(d.error.code, 1003);
  assert.equal(d.error.route, "join");
  assert.equal(c.pendingCount, 0);
  assert.equal(clock.activeTimeouts, 0, "no call timer is left behind");
  c.close();
});

test("callback form: cb(null, result) or cb(err), exactly once", async () => {
  const c = client();
  const ws = FakeSocket.last;
  ws.welcome();
  const calls = [];
  c.call("login", { name: "ann" }, (err, res) => calls.push(["login", err, res]));
  c.call("chat", { text: "" }, { timeout: 500 }, (err, res) => calls.push(["chat", err, res]));
  const [login, chat] = ws.requests;
  ws.reply(login.id, { player_id: 7 });
  ws.reply(login.id, { player_id: 8 }); // a duplicate answer: dropped
  ws.error(chat.id, 1005, "empty");
  clock.advance(1000); // its timeout was cleared: no second outcome
  await flush();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0], ["login", null, { player_id: 7 }]);
  assert.equal(calls[1][1].code, 1005);
  assert.equal(c.stats.lateAnswers, 1);
  c.close();
});

test("a timeout rejects, frees the entry, and a late answer is dropped", async () => {
  const c = client({ callTimeoutMs: 1000 });
  const ws = FakeSocket.last;
  ws.welcome();
  const slow = settle(c.call("echo", 1, { timeout: 100 }));
  const normal = settle(c.call("echo", 2));
  const [r1, r2] = ws.requests;
  clock.advance(99);
  await flush();
  assert.equal(slow.done, false);
  clock.advance(1);
  await flush();
  assert.ok(slow.error instanceof TimeoutError);
  assert.equal(slow.error.kind, "timeout");
  assert.equal(slow.error.timeoutMs, 100);
  assert.equal(c.pendingCount, 1, "the timed-out entry is freed");
  ws.reply(r1.id, 1); // too late
  await flush();
  assert.equal(c.stats.lateAnswers, 1);
  assert.equal(c.stats.timeouts, 1);
  clock.advance(900); // the default timeout of the other call
  await flush();
  assert.ok(normal.error instanceof TimeoutError);
  assert.equal(c.pendingCount, 0);
  ws.reply(r2.id, 2);
  assert.equal(c.stats.lateAnswers, 2);
  assert.equal(clock.activeTimeouts, 0);
  c.close();
});

test("timeout: Infinity waits forever and sets no timer", async () => {
  const c = client({ heartbeatRoute: null, idleTimeoutMs: 1e12 });
  FakeSocket.last.welcome();
  const p = settle(c.call("echo", 1, { timeout: Infinity }));
  assert.equal(clock.activeTimeouts, 0);
  clock.advance(1e9);
  await flush();
  assert.equal(p.done, false);
  FakeSocket.last.reply(FakeSocket.last.requests[0].id, 1);
  await flush();
  assert.equal(p.value, 1);
  c.close();
});

test("callback ids wrap at 2^32 and skip ids still in flight", async () => {
  const ids = new CallIds(2 ** 32 - 2);
  const inUse = new Set([2 ** 32 - 1, 0]);
  assert.equal(ids.next((id) => inUse.has(id)), 2 ** 32 - 2);
  assert.equal(ids.next((id) => inUse.has(id)), 1, "skips 2^32-1 and 0, wrapping");
  assert.equal(ids.next((id) => inUse.has(id)), 2);

  // Through the client: the ids on the wire wrap, and replies find their callers.
  const c = client({ firstId: 2 ** 32 - 2 });
  const ws = FakeSocket.last;
  ws.welcome();
  const ps = [1, 2, 3, 4].map((n) => settle(c.call("echo", n)));
  assert.deepEqual(
    ws.requests.map((r) => r.id),
    [4294967294, 4294967295, 0, 1],
  );
  for (const r of ws.requests.reverse()) ws.reply(r.id, r.body * 10);
  await flush();
  assert.deepEqual(
    ps.map((p) => p.value),
    [10, 20, 30, 40],
  );
  c.close();
});

test("a full cycle of ids never hands out one still in flight", () => {
  // An id held for a whole wrap: with first = 2^32 - 3, hold 2^32 - 3 and go around.
  const ids = new CallIds(2 ** 32 - 3);
  const held = ids.next(() => false);
  assert.equal(held, 2 ** 32 - 3);
  // Jump near the end of the cycle by skipping the ids "in use" in between.
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push(ids.next((id) => id === held));
  assert.deepEqual(seen, [2 ** 32 - 2, 2 ** 32 - 1, 0, 1, 2]);
  const again = new CallIds(held);
  assert.equal(again.next((id) => id === held), 2 ** 32 - 2, "the held id is skipped when the counter reaches it");
});

test("offline queue: bounded by count, rejects at once, flushes in order", async () => {
  const c = client({ maxQueuedCalls: 3 });
  const ws = FakeSocket.last;
  const ps = ["a", "b", "c"].map((t) => settle(c.call("chat", { text: t })));
  assert.equal(c.queuedCount, 3);
  const over = settle(c.call("chat", { text: "d" }));
  await flush(); // no time passes: it rejects at once
  assert.ok(over.error instanceof QueueFullError);
  assert.equal(over.error.kind, "queue_full");
  assert.match(over.error.message, /offline queue full/);
  assert.equal(c.pendingCount, 3, "the rejected call holds no entry");
  assert.ok(ps.every((p) => !p.done));
  ws.welcome();
  assert.deepEqual(
    ws.requests.map((r) => r.body.text),
    ["a", "b", "c"],
  );
  assert.equal(c.queuedCount, 0);
  assert.equal(c.queuedByteCount, 0);
  for (const r of ws.requests) ws.reply(r.id, null);
  await flush();
  assert.ok(ps.every((p) => p.ok && p.value === null));
  c.close();
});

test("offline queue: bounded by bytes", async () => {
  const c = client({ maxQueuedBytes: 110 });
  const first = settle(c.call("chat", { text: "x".repeat(40) })); 
  assert.equal(c.queuedCount, 1);
  assert.equal(c.queuedByteCount, `{"id":0,"route":"chat","body":{"text":"${"x".repeat(40)}"}}`.length); // 82
  const second = settle(c.call("chat", { text: "y".repeat(40) }));
  await flush();
  assert.ok(second.error instanceof QueueFullError);
  assert.match(second.error.message, /bytes/);
  const small = settle(c.call("leave"));
  assert.equal(c.queuedCount, 2, "a call that still fits is queued");
  FakeSocket.last.welcome();
  assert.deepEqual(
    FakeSocket.last.requests.map((r) => r.route),
    ["chat", "leave"],
  );
  assert.equal(first.done || small.done, false);
  c.close();
});

test("a queued call that times out leaves the queue and is never sent", async () => {
  const c = client();
  const a = settle(c.call("echo", "a", { timeout: 100 }));
  const b = settle(c.call("echo", "b", { timeout: 5000 }));
  const bytesBoth = c.queuedByteCount;
  clock.advance(100);
  await flush();
  assert.ok(a.error instanceof TimeoutError);
  assert.equal(c.queuedCount, 1);
  assert.ok(c.queuedByteCount < bytesBoth);
  FakeSocket.last.welcome();
  assert.deepEqual(
    FakeSocket.last.requests.map((r) => r.body),
    ["b"],
  );
  assert.equal(b.done, false);
  c.close();
});

test("a request over maxFrameBytes rejects with TooLargeError", async () => {
  const c = client({ maxFrameBytes: 64 });
  FakeSocket.last.welcome();
  const p = settle(c.call("chat", { text: "é".repeat(40) }));
  await flush();
  assert.ok(p.error instanceof TooLargeError);
  assert.equal(FakeSocket.last.sent.length, 0);
  assert.equal(c.pendingCount, 0);
  assert.equal(utf8Length("é"), 2);
  assert.equal(utf8Length("😀"), 4);
  c.close();
});

test("calls in flight reject with DisconnectedError when the link drops; queued ones wait", async () => {
  const c = client();
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome();
  const sent1 = settle(c.call("move", { dx: 1, dy: 0 }));
  const sent2 = settle(c.call("echo", 5));
  ws.drop(1011, "boom");
  await flush();
  assert.ok(sent1.error instanceof DisconnectedError);
  assert.equal(sent1.error.kind, "disconnected");
  assert.ok(sent2.error instanceof DisconnectedError);
  const dis = events.find(([n]) => n === "disconnected");
  assert.deepEqual(dis[1], { code: 1011, reason: "boom", wasClean: false, failedCalls: 2, resuming: false });
  assert.equal(c.stats.disconnectedCalls, 2);
  assert.equal(c.state, "waiting");
  // Made while offline: queued, sent on the next connection.
  const later = settle(c.call("echo", 6));
  assert.equal(c.queuedCount, 1);
  clock.advance(250);
  ws = FakeSocket.last;
  assert.equal(FakeSocket.all.length, 2);
  ws.welcome();
  assert.deepEqual(
    ws.requests.map((r) => r.body),
    [6],
  );
  ws.reply(ws.requests[0].id, 6);
  await flush();
  assert.equal(later.value, 6);
  assert.equal(events.filter(([n]) => n === "connected").at(-1)[1].reconnected, true);
  c.close();
});

test("a call made while the socket is closing is queued, not lost, and goes out on the next connection", async () => {
  const c = client();
  const ws = FakeSocket.last;
  ws.welcome();
  ws.closing(); // e.g. the server sent close 1001; the close event comes later
  const p = settle(c.call("echo", "late"));
  assert.equal(ws.sent.length, 0, "nothing is handed to a closing socket");
  assert.equal(c.queuedCount, 1);
  ws.drop(1001, "going away");
  await flush();
  assert.equal(p.done, false, "it was never sent, so it is not Disconnected");
  clock.advance(250);
  FakeSocket.last.welcome();
  const [r] = FakeSocket.last.requests;
  assert.equal(r.body, "late");
  FakeSocket.last.reply(r.id, "late");
  await flush();
  assert.equal(p.value, "late");
  c.close();
});

test("connected listeners run before the queue is flushed (re-login goes first)", async () => {
  const c = client();
  c.onEvent("connected", () => {
    c.call("login", { name: "ann" }).catch(() => {});
  });
  c.call("chat", { text: "queued" }).catch(() => {});
  FakeSocket.last.welcome();
  assert.deepEqual(
    FakeSocket.last.requests.map((r) => r.route),
    ["login", "chat"],
  );
  c.close();
});

test("reconnect: exponential backoff with jitter, then give up after maxAttempts", async () => {
  let r = 0;
  const randoms = [0, 1, 0.5, 0, 0];
  const c = client({ backoffInitialMs: 100, backoffMaxMs: 1000, backoffJitter: 0.5, maxAttempts: 5, random: () => randoms[r++] });
  const events = record(c);
  const queued = settle(c.call("echo", 1, { timeout: Infinity }));
  // Every attempt fails before its welcome (e.g. the server is down).
  const delays = [];
  for (let i = 0; i < 6; i++) {
    const before = FakeSocket.all.length;
    FakeSocket.last.drop();
    const ev = events.at(-1);
    if (ev[0] !== "reconnecting") break;
    delays.push(ev[1].delayMs);
    assert.equal(ev[1].attempt, i + 1);
    clock.advance(ev[1].delayMs - 1);
    assert.equal(FakeSocket.all.length, before, "no attempt before the delay");
    clock.advance(1);
    assert.equal(FakeSocket.all.length, before + 1, "one attempt after the delay");
  }
  // Ceilings 100, 200, 400, 800, 1000 (capped); jitter takes off random * 0.5 of each.
  assert.deepEqual(delays, [100, 100, 300, 800, 1000]);
  assert.equal(backoffCeiling(4, 100, 1000), 800);
  assert.equal(backoffCeiling(40, 100, 1000), 1000);
  const closed = events.at(-1);
  assert.equal(closed[0], "closed");
  assert.equal(closed[1].reason, "gave_up");
  assert.equal(c.state, "closed");
  await flush();
  assert.ok(queued.error instanceof ClosedError, "queued calls reject when the client gives up");
  assert.equal(c.pendingCount, 0);
  assert.equal(clock.timers.size, 0, "no timer is left");
  // connect() restarts a closed client with a fresh count.
  c.connect();
  assert.equal(c.state, "connecting");
  c.close();
});

test("reconnect: the attempt count resets after a connection stayed up stableAfterMs", () => {
  const c = client({ backoffInitialMs: 100, backoffMaxMs: 10_000, stableAfterMs: 5000, heartbeatRoute: null, idleTimeoutMs: 1e9 });
  const events = record(c);
  const delays = () => events.filter(([n]) => n === "reconnecting").map(([, p]) => p.delayMs);
  FakeSocket.last.drop(); // attempt 1
  clock.advance(100);
  FakeSocket.last.drop(); // attempt 2
  clock.advance(200);
  FakeSocket.last.welcome(); // up, but briefly
  clock.advance(1000);
  FakeSocket.last.drop(); // unstable: attempt 3
  assert.deepEqual(delays(), [100, 200, 400]);
  clock.advance(400);
  FakeSocket.last.welcome();
  clock.advance(5000); // stable now
  FakeSocket.last.drop();
  assert.deepEqual(delays(), [100, 200, 400, 100], "the count restarts from 1");
  assert.equal(c.failedAttempts, 1);
  c.close();
});

test("exactly one heartbeat timer per connection, cleared when it ends", () => {
  const c = client({ heartbeatIntervalMs: 1000, idleTimeoutMs: 3000, backoffInitialMs: 10 });
  let maxActive = 0;
  const watch = () => (maxActive = Math.max(maxActive, clock.activeIntervals));
  for (let i = 0; i < 4; i++) {
    assert.equal(clock.activeIntervals, 0, "no heartbeat before the welcome");
    FakeSocket.last.welcome();
    watch();
    assert.equal(clock.activeIntervals, 1);
    for (let k = 0; k < 10; k++) {
      clock.advance(250);
      FakeSocket.last.push("state", { tick: k, players: [] }); // frames keep it alive
      watch();
    }
    FakeSocket.last.drop();
    watch();
    assert.equal(clock.activeIntervals, 0, "the heartbeat stops with its connection");
    clock.advance(1000); // the reconnect delay
  }
  assert.equal(maxActive, 1);
  assert.equal(clock.intervalsCreated, 4, "one per connection, no more");
  c.close();
  assert.equal(clock.activeIntervals, 0);
  assert.equal(clock.timers.size, 0, "nothing left after close()");
});

test("heartbeat: a quiet link gets one probe; a dead one is closed (4000) and replaced", () => {
  const c = client({ heartbeatIntervalMs: 1000, idleTimeoutMs: 3000, heartbeatRoute: "echo" });
  const events = record(c);
  const ws = FakeSocket.last;
  ws.welcome();
  clock.advance(1000);
  assert.deepEqual(
    ws.requests.map((r) => [r.route, r.body]),
    [["echo", null]],
    "one probe after a quiet interval",
  );
  clock.advance(500);
  ws.reply(ws.requests[0].id, null); // t = 1.5 s: the link is alive
  clock.advance(500);
  assert.equal(ws.sent.length, 1, "no probe half an interval after hearing from the server");
  clock.advance(1000);
  assert.equal(ws.sent.length, 2, "quiet for an interval: a second probe");
  clock.advance(1000);
  assert.equal(ws.sent.length, 2, "one probe at a time");
  assert.equal(c.state, "open");
  clock.advance(1000); // t = 5 s, 3.5 s without a frame: dead
  assert.deepEqual(ws.closedWith?.code, 4000);
  assert.equal(events.filter(([n]) => n === "disconnected").length, 1);
  assert.equal(events.filter(([n]) => n === "disconnected")[0][1].failedCalls, 0, "probes are not user calls");
  assert.equal(c.pendingCount, 0);
  assert.equal(c.state, "waiting");
  assert.equal(clock.activeIntervals, 0);
  assert.equal(c.stats.heartbeatProbes, 2);
  c.close();
});

test("heartbeat: throttled timers (a background tab) do not kill a live link", () => {
  const c = client({ heartbeatIntervalMs: 5000, idleTimeoutMs: 15000 });
  const ws = FakeSocket.last;
  ws.welcome();
  for (let minute = 1; minute <= 3; minute++) {
    ws.sent.length = 0;
    clock.jump(60_000); // the heartbeat fires once a minute, 60 s after the last frame
    assert.equal(c.state, "open", `minute ${minute}: a long gap alone is not death`);
    assert.equal(ws.requests.length, 1, "a probe goes out instead");
    ws.reply(ws.requests[0].id, null); // and the server answers it
  }
  clock.jump(60_000); // a probe again, and this time no answer
  clock.jump(60_000);
  assert.equal(ws.closedWith?.code, 4000, "an unanswered probe is death");
  c.close();
});

test("heartbeat without a probe route: idle alone decides", () => {
  const c = client({ heartbeatIntervalMs: 1000, idleTimeoutMs: 3000, heartbeatRoute: null });
  const ws = FakeSocket.last;
  ws.welcome();
  clock.advance(2000);
  ws.push("state", { tick: 1, players: [] });
  clock.advance(2000);
  assert.equal(c.state, "open");
  assert.equal(ws.sent.length, 0, "no probes");
  clock.advance(1000);
  assert.equal(ws.closedWith?.code, 4000);
  c.close();
});

test("push listeners by topic: on, off, unsubscribe, and a throwing listener is contained", () => {
  const thrown = [];
  const c = client({ onListenerError: (e) => thrown.push(e) });
  FakeSocket.last.welcome();
  const states = [];
  const chats = [];
  const offState = c.on("state", (s) => states.push(s.tick));
  const chat = (line, topic) => chats.push([topic, line.text]);
  c.on("chat", () => {
    throw new Error("listener bug");
  });
  c.on("chat", chat);
  FakeSocket.last.push("state", { tick: 1, players: [] });
  FakeSocket.last.push("chat", { player_id: 1, name: "ann", text: "hi" });
  FakeSocket.last.push("unknown-topic", {});
  offState();
  c.off("chat", chat);
  FakeSocket.last.push("state", { tick: 2, players: [] });
  FakeSocket.last.push("chat", { player_id: 1, name: "ann", text: "again" });
  assert.deepEqual(states, [1]);
  assert.deepEqual(chats, [["chat", "hi"]]);
  assert.equal(thrown.length, 2);
  assert.equal(c.stats.unheardPushes, 2);
  c.close();
});

test("the server's count of dropped events adds up in stats, heard or not", () => {
  const c = client();
  FakeSocket.last.welcome();
  FakeSocket.last.push(DROPPED_TOPIC, 300);
  const heard = [];
  c.on(DROPPED_TOPIC, (count) => heard.push(count));
  FakeSocket.last.push(DROPPED_TOPIC, 2);
  assert.equal(c.stats.eventsDropped, 302);
  assert.deepEqual(heard, [2]);
  assert.equal(c.stats.unheardPushes, 0, "the count is the client's own, not an unheard push");
  c.close();
});

test("close(): sent calls reject Disconnected, queued ones Closed, no reconnect, later calls Closed", async () => {
  const c = client();
  const events = record(c);
  const ws = FakeSocket.last;
  ws.welcome();
  const inFlight = settle(c.call("echo", 1));
  c.close();
  assert.equal(ws.closedWith.code, 1000);
  await flush();
  assert.ok(inFlight.error instanceof DisconnectedError);
  const after = settle(c.call("echo", 2));
  await flush();
  assert.ok(after.error instanceof ClosedError);
  assert.ok(after.error instanceof TicksockError);
  clock.advance(60_000);
  assert.equal(FakeSocket.all.length, 1, "no reconnect after close()");
  assert.deepEqual(
    events.map(([n]) => n),
    ["connected", "disconnected", "closed"],
  );
  assert.equal(clock.timers.size, 0);

  // Queued calls of a client closed before it connected.
  const c2 = client();
  const q = settle(c2.call("echo", 1));
  c2.close();
  await flush();
  assert.ok(q.error instanceof ClosedError);
});

test("protocol errors and a missing welcome close the connection and reconnect", () => {
  const c = client({ connectTimeoutMs: 2000 });
  const events = record(c);
  FakeSocket.last.open();
  clock.advance(2000); // no welcome
  assert.equal(FakeSocket.all[0].closedWith.code, 4001);
  assert.equal(events.at(-1)[0], "reconnecting");
  clock.advance(250);
  FakeSocket.last.welcome();
  FakeSocket.last.receive("this is not json");
  assert.equal(FakeSocket.all[1].closedWith.code, 4002);
  assert.equal(events.at(-1)[1].delayMs, 500, "a connection that dropped at once counts as a failed attempt");
  clock.advance(500);
  FakeSocket.last.welcome();
  FakeSocket.last.onmessage({ data: new ArrayBuffer(2) }); // binary on the JSON subprotocol
  assert.equal(FakeSocket.all[2].closedWith.code, 4002);
  assert.equal(events.filter(([n]) => n === "disconnected").length, 2);
  c.close();
});

test("a welcome of another version stops the client", async () => {
  const c = client();
  const events = record(c);
  const q = settle(c.call("echo", 1));
  FakeSocket.last.open();
  FakeSocket.last.receive({ type: "welcome", version: 2, tick_hz: 30, conn_id: "1" });
  await flush();
  assert.equal(c.state, "closed");
  assert.equal(events.at(-1)[1].reason, "version");
  assert.ok(q.error instanceof ClosedError);
  await assert.rejects(c.ready(), ClosedError);
});

test("ready() resolves with the welcome", async () => {
  const c = client();
  const r = c.ready();
  FakeSocket.last.welcome(20);
  assert.equal((await r).tick_hz, 20);
  assert.equal((await c.ready()).tick_hz, 20);
  c.close();
});

// ---- issue 19, defect 7: a dead link must be detected even when a frame arrives after the probe

/** The documented bound: a dead link is closed within this long of the last frame heard. */
const deadBound = ({ heartbeatIntervalMs: i, idleTimeoutMs: t }) => Math.max(t, 2 * i) + i;

for (const gap of [0, 1, 2500]) {
  test(`heartbeat: a frame ${gap} ms after the probe, then silence: closed 4000 within the bound`, () => {
    const opts = { heartbeatIntervalMs: 5000, idleTimeoutMs: 15000 };
    const c = client(opts);
    const events = record(c);
    const ws = FakeSocket.last;
    ws.welcome();
    clock.advance(5000);
    assert.deepEqual(
      ws.requests.map((r) => r.route),
      ["echo"],
      "the probe went out",
    );
    clock.advance(gap);
    ws.push("state", { tick: 1, players: [] }); // the last frame ever heard; the probe is never answered
    const lastFrame = clock.now();
    let closedAt = null;
    c.onEvent("disconnected", () => (closedAt ??= clock.now()));
    for (let i = 0; i < 600 && closedAt === null; i++) clock.advance(1000); // up to 10 minutes
    assert.equal(ws.closedWith?.code, 4000, `still ${c.state} ${clock.now() - lastFrame} ms after the last frame`);
    assert.ok(closedAt - lastFrame >= opts.idleTimeoutMs, `closed after ${closedAt - lastFrame} ms of silence, before idleTimeoutMs`);
    assert.ok(closedAt - lastFrame < deadBound(opts), `closed ${closedAt - lastFrame} ms after the last frame`);
    assert.equal(events.filter(([n]) => n === "reconnecting").length, 1, "and it reconnects");
    c.close();
  });
}

test("heartbeat: a closing socket whose close event never comes is still taken for dead", () => {
  const opts = { heartbeatIntervalMs: 1000, idleTimeoutMs: 3000 };
  const c = client(opts);
  const ws = FakeSocket.last;
  ws.welcome();
  ws.closing(); // no probe can be sent on it
  clock.advance(deadBound(opts));
  assert.equal(ws.closedWith?.code, 4000);
  assert.equal(FakeSocket.all.length, 2, "and it reconnects");
  c.close();
});

// ---- issue 19, defect 8: a callback run by a teardown may connect() or close(); connect()

/** Sockets the client has neither closed nor seen close. */
const liveSockets = () => FakeSocket.all.filter((s) => s.closedWith === null && s.readyState !== 3);

test("a callback that runs close(); connect() while the link drops leaves one clean new connection", async () => {
  const c = client({ heartbeatRoute: null, idleTimeoutMs: 1e9 });
  const events = record(c);
  FakeSocket.last.welcome();
  let later = null;
  c.call("echo", 1, () => {
    c.close();
    c.connect();
    later = settle(c.call("echo", "queued for the new connection"));
  });
  FakeSocket.last.drop();
  assert.equal(c.state, "connecting", "the state the callback left");
  assert.deepEqual(
    events.map(([n]) => n),
    ["connected", "disconnected", "closed"],
    "the drop, then the close: no stray event",
  );
  assert.equal(FakeSocket.all.length, 2);
  assert.deepEqual(liveSockets(), [FakeSocket.last]);
  await flush();
  assert.equal(later.done, false, "a call queued after connect() is not rejected");
  FakeSocket.last.welcome();
  assert.equal(FakeSocket.last.closedWith, null, "the new welcome is accepted");
  assert.equal(c.state, "open");
  assert.deepEqual(
    FakeSocket.last.requests.map((r) => r.body),
    ["queued for the new connection"],
  );
  c.connect(); // connected already: nothing
  assert.equal(FakeSocket.all.length, 2);
  c.close();
  assert.deepEqual(liveSockets(), []);
  assert.equal(clock.timers.size, 0, "no timer left after close()");
});

test("a callback that calls connect() while close() runs restarts the client after close() is done", async () => {
  const c = client({ heartbeatRoute: null, idleTimeoutMs: 1e9 });
  const events = record(c);
  FakeSocket.last.welcome();
  c.call("echo", 1, () => c.connect());
  c.close();
  assert.deepEqual(
    events.map(([n]) => n),
    ["connected", "disconnected", "closed"],
  );
  assert.equal(c.state, "connecting");
  assert.deepEqual(liveSockets(), [FakeSocket.last]);
  assert.equal(FakeSocket.all.length, 2);
  const p = settle(c.call("echo", 2));
  FakeSocket.last.welcome();
  assert.equal(c.state, "open");
  assert.equal(FakeSocket.last.closedWith, null);
  assert.deepEqual(
    FakeSocket.last.requests.map((r) => r.body),
    [2],
  );
  await flush();
  assert.equal(p.done, false);
  c.close();
  assert.deepEqual(liveSockets(), []);
  assert.equal(clock.timers.size, 0);
});

test("a disconnected listener that reconnects at once: no second socket, no lost state", () => {
  const c = client({ heartbeatRoute: null, idleTimeoutMs: 1e9 });
  const events = record(c);
  const off = c.onEvent("disconnected", () => c.connect());
  FakeSocket.last.welcome();
  FakeSocket.last.drop();
  assert.equal(c.state, "connecting");
  assert.deepEqual(liveSockets(), [FakeSocket.last]);
  assert.equal(events.filter(([n]) => n === "reconnecting").length, 0, "no reconnect scheduled on top");
  assert.equal(clock.activeTimeouts, 1, "only the new attempt's connect timer");
  FakeSocket.last.welcome();
  assert.equal(c.state, "open");
  off(); // else close() would reconnect too: connect() in a listener always means connect
  c.close();
  assert.equal(clock.timers.size, 0);
});

test("a callback that closes the client while the link drops: connected, disconnected, closed", async () => {
  const c = client();
  const events = record(c);
  FakeSocket.last.welcome();
  c.call("echo", 1, () => c.close());
  FakeSocket.last.drop();
  assert.deepEqual(
    events.map(([n]) => n),
    ["connected", "disconnected", "closed"],
  );
  assert.equal(c.state, "closed");
  assert.equal(clock.timers.size, 0, "no reconnect is scheduled");
});
