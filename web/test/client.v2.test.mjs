// Unit tests of the client on ticksock.v2.json (PROTOCOL.md section 11): sessions, seq and ack,
// resume, replay, resume_failed; and that a server picking ticksock.v1.json sees no change.
// Fake WebSocket and fake clock, as in client.test.mjs.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { TicksockClient, DisconnectedError, ClosedError, TooLargeError, ResumeFailReasons, CloseCodes } from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush, SECRET_A, SECRET_B, fakeClient, recordEvents, settle } from "./fakes.mjs";

const URL = "ws://127.0.0.1:7777/";
const SESSION = "4294967296";
const EPOCH = "11400714819323198485";
let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A client on the fake socket and clock, without jitter; no heartbeat unless asked for. */
function client(options = {}) {
  return fakeClient(clock, URL, options);
}

/** Records lifecycle events, in order. */
const record = (c) => recordEvents(c, ["connected", "disconnected", "session_ended", "reconnecting", "closed"]);

/** The requests sent on `ws`, as [seq, ack, id, route, body]. */
const requests = (ws) => ws.framesOf("request").map((r) => [r.seq, r.ack, r.id, r.route, r.body]);

/** Drops the link and lets the reconnect delay pass: returns the next socket (not yet open). */
function dropAndReconnect(ws) {
  ws.drop(1006);
  for (let waited = 0; FakeSocket.last === ws && waited < 10_000; waited += 50) clock.advance(50);
  assert.notEqual(FakeSocket.last, ws, "a new connection attempt");
  return FakeSocket.last;
}

test("v2: a fresh session: the welcome's session is kept, requests carry seq and ack, ack 0 when there is nothing to send", async () => {
  const c = client();
  const events = record(c);
  const ws = FakeSocket.last;
  assert.deepEqual(ws.protocols, ["ticksock.v2.json", "ticksock.v1.json"]);
  ws.welcome2();
  assert.equal(c.state, "open");
  assert.equal(c.protocolVersion, 2);
  assert.deepEqual(events, [["connected", { welcome: { version: 2, tick_hz: 30, conn_id: SESSION, epoch: EPOCH }, reconnected: false, resumed: false }]]);
  assert.deepEqual(ws.requests, [{ type: "ack", ack: 0 }], "11.4: a new session with nothing to send starts with an ack of 0");
  assert.deepEqual(c.session, { conn_id: SESSION, epoch: EPOCH, received: 0, lastSeq: 0, serverReceived: 0, unanswered: 0 });
  assert.ok(!JSON.stringify([c.welcome, c.session]).includes(SECRET_A), "the secret is not shown to the app");

  const a = settle(c.call("echo", "a"));
  const b = settle(c.call("echo", "b"));
  ws.push("state", { tick: 1, players: [] });
  const d = settle(c.call("rooms"));
  assert.deepEqual(requests(ws), [
    [1, 0, 0, "echo", "a"],
    [2, 0, 1, "echo", "b"],
    [3, 1, 2, "rooms", undefined],
  ]);
  assert.deepEqual(ws.requests[1], { type: "request", seq: 1, ack: 0, id: 0, route: "echo", body: "a" }, "the frame of 11.8");
  ws.reply(1, "b");
  ws.reply(0, "a");
  ws.reply(2, []);
  await flush();
  assert.deepEqual([a.value, b.value, d.value], ["a", "b", []]);
  assert.deepEqual(c.session, { conn_id: SESSION, epoch: EPOCH, received: 4, lastSeq: 3, serverReceived: 0, unanswered: 0 });
  ws.receive({ type: "ack", received: 3 });
  assert.equal(c.session.serverReceived, 3);
  c.close();
  assert.equal(clock.timers.size, 0, "no timer left after close()");
});

test("v2: a call made in a connected listener is the new session's first frame (no ack 0 then)", () => {
  const c = client();
  c.onEvent("connected", () => c.call("login", { name: "ann" }).catch(() => {}));
  c.call("chat", { text: "queued" }).catch(() => {});
  FakeSocket.last.welcome2();
  assert.deepEqual(requests(FakeSocket.last), [
    [1, 0, 1, "login", { name: "ann" }],
    [2, 0, 0, "chat", { text: "queued" }],
  ]);
  assert.equal(FakeSocket.last.framesOf("ack").length, 0);
  c.close();
});

test("v2: acks go out within ackDelayMs of the first unacknowledged frame, at once after ackAfterFrames, and not when a request carried the count", () => {
  const c = client();
  const ws = FakeSocket.last;
  ws.welcome2();
  ws.sent.length = 0; // the ack 0
  const acks = () => ws.framesOf("ack").map((f) => f.ack);

  ws.push("state", { tick: 1 }); // t = 0: the first unacknowledged frame
  clock.advance(600);
  ws.push("state", { tick: 2 });
  clock.advance(399);
  assert.deepEqual(acks(), [], "not before 1 s");
  clock.advance(1);
  assert.deepEqual(acks(), [2], "1 s after the first unacknowledged frame, with everything received");
  clock.advance(5000);
  assert.deepEqual(acks(), [2], "nothing new, no ack");

  // A request acknowledges too: the timer started by the frame before it is cancelled.
  ws.push("state", { tick: 3 });
  clock.advance(500);
  c.call("echo", 1).catch(() => {});
  assert.equal(ws.framesOf("request").at(-1).ack, 3);
  clock.advance(2000);
  assert.deepEqual(acks(), [2], "the request carried the count");
  assert.equal(clock.activeTimeouts, 1, "only the call's timeout");

  // 64 frames unacknowledged: an ack at once.
  for (let i = 0; i < 63; i++) ws.push("state", { tick: 10 + i });
  assert.deepEqual(acks(), [2]);
  ws.push("state", { tick: 99 });
  assert.deepEqual(acks(), [2, 67], "after 64 frames");
  clock.advance(1000);
  assert.deepEqual(acks(), [2, 67], "and no second one for the same frames");
  assert.equal(c.stats.acksSent, 3, "ack 0, then 2, then 67");
  c.close();
});

test("v2: ackDelayMs and ackAfterFrames are options", () => {
  const c = client({ ackDelayMs: 200, ackAfterFrames: 3 });
  const ws = FakeSocket.last;
  ws.welcome2();
  ws.push("p", 1);
  clock.advance(200);
  ws.push("p", 2);
  ws.push("p", 3);
  ws.push("p", 4);
  assert.deepEqual(
    ws.framesOf("ack").map((f) => f.ack),
    [0, 1, 4],
  );
  c.close();
});

test("v2: a dropped link keeps the session; the resume replays a missed reply and push, delivered once, in order", async () => {
  const c = client();
  const events = record(c);
  const seen = [];
  c.on("chat", (line) => seen.push(`push ${line.text}`));
  /** A call in callback form, its outcome logged in `seen` as it happens. */
  const call = (route, body) => c.call(route, body, (err, res) => seen.push(err ? `${body} failed: ${err.kind}` : `reply ${res}`));
  let ws = FakeSocket.last;
  ws.welcome2();
  call("echo", "a"); // id 0, seq 1
  call("echo", "b"); // id 1, seq 2
  ws.reply(0, "a"); // frame 1
  ws.push("chat", { text: "one" }); // frame 2
  call("echo", "c"); // id 2, seq 3

  // The link drops. Meanwhile the server takes "c", answers "b" and "c" and pushes again:
  // frames 3, 4 and 5, kept in its replay buffer.
  ws = dropAndReconnect(ws);
  assert.deepEqual(events.find(([n]) => n === "disconnected")[1], { code: 1006, reason: "", wasClean: false, failedCalls: 0, resuming: true });
  assert.equal(c.state, "connecting");
  assert.equal(c.pendingCount, 2, "calls in flight wait for the resume");
  call("echo", "queued while down");

  ws.welcome2({ conn_id: "8589934592", secret: SECRET_B });
  assert.deepEqual(ws.requests, [{ type: "resume", session: SESSION, epoch: EPOCH, secret: SECRET_A, received: 2 }], "the Resume is the first frame");
  call("echo", "made while resuming");
  clock.advance(5000);
  assert.equal(ws.sent.length, 1, "nothing else before the answer, acks included");
  assert.equal(c.state, "connecting");

  const secret = "0123456789abcdef0123456789abcdef";
  ws.receive({ type: "resumed", received: 3, secret });
  assert.equal(c.state, "open");
  assert.deepEqual(events.at(-1), ["connected", { welcome: { version: 2, tick_hz: 30, conn_id: SESSION, epoch: EPOCH }, reconnected: true, resumed: true }]);
  assert.deepEqual(
    requests(ws),
    [
      [4, 2, 3, "echo", "queued while down"],
      [5, 2, 4, "echo", "made while resuming"],
    ],
    "nothing resent (the server took every request), then the queue as new requests",
  );
  ws.reply(1, "b"); // the replay: frame 3
  ws.reply(2, "c"); // frame 4
  ws.push("chat", { text: "two" }); // frame 5
  ws.reply(3, "queued while down"); // frame 6, new
  ws.reply(4, "made while resuming"); // frame 7
  await flush();
  assert.deepEqual(seen, ["reply a", "push one", "reply b", "reply c", "push two", "reply queued while down", "reply made while resuming"], "each delivered once, in order");
  assert.equal(c.stats.lateAnswers, 0);
  assert.equal(c.stats.resumes, 1);
  assert.equal(c.pendingCount, 0);
  assert.equal(c.session.received, 7);
  assert.equal(events.filter(([n]) => n === "session_ended").length, 0);

  // The next resume uses the secret the Resumed gave, and the new count.
  ws = dropAndReconnect(ws);
  ws.welcome2();
  assert.deepEqual(ws.requests, [{ type: "resume", session: SESSION, epoch: EPOCH, secret, received: 7 }]);
  c.close();
});

test("v2: after a resume only the requests above the server's received count are resent, in order, with their seq and id", async () => {
  const c = client();
  let ws = FakeSocket.last;
  ws.welcome2();
  const calls = ["a", "b", "c", "d", "e"].map((n, i) => settle(c.call("echo", n, i === 3 ? { timeout: 100 } : {})));
  assert.deepEqual(
    requests(ws).map(([seq, , id]) => [seq, id]),
    [
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 4],
    ],
  );
  ws.reply(0, "a"); // frame 1
  ws = dropAndReconnect(ws);
  clock.advance(100); // "d" times out while the link is down: its request must still be resent
  await flush();
  assert.equal(calls[3].error?.kind, "timeout");
  ws.welcome2();
  assert.equal(ws.requests[0].received, 1);
  // The server took a and b (received 2): c, d and e are resent; b's answer comes in the replay.
  ws.receive({ type: "resumed", received: 2, secret: SECRET_B });
  assert.deepEqual(requests(ws), [
    [3, 1, 2, "echo", "c"],
    [4, 1, 3, "echo", "d"],
    [5, 1, 4, "echo", "e"],
  ]);
  assert.equal(c.stats.resentRequests, 3);
  const f = settle(c.call("echo", "f"));
  assert.deepEqual(requests(ws).at(-1), [6, 1, 5, "echo", "f"], "a new request continues the seq, its id unused");
  ws.reply(1, "b"); // replay
  for (const id of [2, 3, 4, 5]) ws.reply(id, ["a", "b", "c", "d", "e", "f"][id]);
  await flush();
  assert.deepEqual(
    calls.map((p) => p.value ?? p.error.kind),
    ["a", "b", "c", "timeout", "e"],
  );
  assert.equal(f.value, "f");
  assert.equal(c.stats.lateAnswers, 1, "d's answer came after its timeout");
  assert.equal(c.session.unanswered, 0);
  c.close();
});

test("v2: a duplicate answer (its call no longer waiting) is ignored, but counted as a received frame", async () => {
  const c = client();
  let ws = FakeSocket.last;
  ws.welcome2();
  const outcomes = [];
  c.call("login", { name: "ann" }, (err, res) => outcomes.push(err ? err.kind : res));
  ws.reply(0, { player_id: 1 }); // frame 1
  ws.reply(0, { player_id: 1 }); // frame 2: a duplicate on the same link
  ws = dropAndReconnect(ws);
  ws.welcome2();
  ws.receive({ type: "resumed", received: 1, secret: SECRET_B });
  ws.reply(0, { player_id: 1 }); // frame 3: the server answers it once more (11.6)
  ws.error(0, 7, "stale request"); // frame 4
  await flush();
  assert.deepEqual(outcomes, [{ player_id: 1 }], "one outcome");
  assert.equal(c.stats.lateAnswers, 3);
  assert.equal(c.session.received, 4);
  c.close();
});

test("v2: resume_failed: session_ended, pending calls fail with DisconnectedError, then connected on the new session, then the queue", async () => {
  const c = client();
  const events = record(c);
  const order = [];
  let ws = FakeSocket.last;
  ws.welcome2();
  const login = settle(c.call("login", { name: "ann" }));
  ws.reply(0, { player_id: 1 });
  const calls = [settle(c.call("join", { room: "a1" })), settle(c.call("chat", { text: "hi" }, { timeout: Infinity }))];
  c.call("move", { dx: 1, dy: 0 }, (err) => order.push(`move ${err?.kind}`));
  ws.push("state", { tick: 1 });
  ws = dropAndReconnect(ws);
  const queued = settle(c.call("chat", { text: "queued" }));
  c.onEvent("session_ended", () => order.push(`session_ended, ${c.pendingCount} pending`));
  c.onEvent("connected", ({ resumed }) => {
    order.push(`connected resumed=${resumed}`);
    if (!resumed) c.call("login", { name: "ann" }).catch(() => {}); // log in again
  });
  ws.welcome2({ conn_id: "8589934592", secret: SECRET_B });
  assert.equal(ws.requests[0].type, "resume");
  ws.receive({ type: "resume_failed", reason: ResumeFailReasons.ENDED, message: "session ended" });
  await flush();
  assert.deepEqual(order, ["session_ended, 4 pending", "move disconnected", "connected resumed=false"]);
  assert.deepEqual(
    events.filter(([n]) => n !== "reconnecting"),
    [
      ["connected", { welcome: { version: 2, tick_hz: 30, conn_id: SESSION, epoch: EPOCH }, reconnected: false, resumed: false }],
      ["disconnected", { code: 1006, reason: "", wasClean: false, failedCalls: 0, resuming: true }],
      ["session_ended", { reason: "resume_failed", code: 2, message: "session ended", failedCalls: 3 }],
      ["connected", { welcome: { version: 2, tick_hz: 30, conn_id: "8589934592", epoch: EPOCH }, reconnected: true, resumed: false }],
    ],
  );
  assert.equal(login.value.player_id, 1);
  for (const p of calls) assert.ok(p.error instanceof DisconnectedError, "the error of a call lost to a dropped link");
  assert.equal(c.stats.disconnectedCalls, 3);
  assert.equal(c.stats.sessionsEnded, 1);
  // The new session: counts from 0, the login made in the listener first, then the queue.
  assert.deepEqual(
    requests(ws).map(([seq, ack, , route]) => [seq, ack, route]),
    [
      [1, 0, "login"],
      [2, 0, "chat"],
    ],
  );
  assert.equal(ws.framesOf("ack").length, 0, "requests started the session: no ack 0");
  assert.deepEqual(c.session, { conn_id: "8589934592", epoch: EPOCH, received: 0, lastSeq: 2, serverReceived: 0, unanswered: 2 });
  assert.equal(queued.done, false);
  ws.reply(requests(ws)[1][2], null);
  await flush();
  assert.equal(queued.value, null);

  // A later drop resumes the new session with its own secret.
  ws = dropAndReconnect(ws);
  ws.welcome2();
  assert.deepEqual(ws.requests, [{ type: "resume", session: "8589934592", epoch: EPOCH, secret: SECRET_B, received: 1 }]);
  c.close();
});

test("v2: resume_failed with nothing to send: the new session starts with an ack of 0", () => {
  const c = client();
  let ws = FakeSocket.last;
  ws.welcome2();
  ws = dropAndReconnect(ws);
  ws.welcome2({ conn_id: "8589934592", secret: SECRET_B, epoch: "7" });
  ws.receive({ type: "resume_failed", reason: ResumeFailReasons.RESTARTED, message: "another run" });
  assert.deepEqual(ws.requests, [
    { type: "resume", session: SESSION, epoch: EPOCH, secret: SECRET_A, received: 0 },
    { type: "ack", ack: 0 },
  ]);
  assert.equal(c.session.epoch, "7");
  c.close();
});

test("v2: a link lost before the resume's answer (or with none in connectTimeoutMs) resumes again with the same secret", async () => {
  const c = client({ connectTimeoutMs: 3000 });
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome2();
  const p = settle(c.call("echo", 1));
  ws = dropAndReconnect(ws);
  ws.welcome2();
  ws.drop(); // before Resumed
  clock.advance(500); // second attempt
  ws = FakeSocket.last;
  ws.welcome2();
  clock.advance(3000); // no answer: 4001
  assert.equal(ws.closedWith.code, CloseCodes.CONNECT_TIMEOUT);
  assert.equal(events.filter(([n]) => n === "disconnected").length, 1, "links that never resumed were never up");
  clock.advance(1000);
  ws = FakeSocket.last;
  ws.welcome2();
  assert.deepEqual(ws.requests, [{ type: "resume", session: SESSION, epoch: EPOCH, secret: SECRET_A, received: 0 }]);
  ws.receive({ type: "resumed", received: 0, secret: SECRET_B });
  assert.deepEqual(requests(ws), [[1, 0, 0, "echo", 1]], "resent");
  ws.reply(0, 1);
  await flush();
  assert.equal(p.value, 1);
  c.close();
});

test("v2: close() while a session waits to resume: sent calls fail Disconnected, queued ones Closed, no session_ended", async () => {
  const c = client();
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome2();
  const sent = settle(c.call("echo", 1));
  ws.drop();
  const queued = settle(c.call("echo", 2));
  c.close();
  await flush();
  assert.ok(sent.error instanceof DisconnectedError);
  assert.ok(queued.error instanceof ClosedError);
  assert.deepEqual(
    events.map(([n]) => n),
    ["connected", "disconnected", "reconnecting", "closed"],
  );
  assert.equal(c.session, null);
  assert.equal(clock.timers.size, 0);
  // connect() after close() starts a fresh session.
  c.connect();
  FakeSocket.last.welcome2({ conn_id: "5" });
  assert.deepEqual(FakeSocket.last.requests, [{ type: "ack", ack: 0 }]);
  c.close();
});

test("v2: giving up reconnecting fails the calls that waited for the resume", async () => {
  const c = client({ maxAttempts: 2 });
  const ws = FakeSocket.last;
  ws.welcome2();
  const sent = settle(c.call("echo", 1));
  ws.drop(); // attempt 1
  clock.advance(250);
  FakeSocket.last.drop(); // attempt 2
  clock.advance(500);
  FakeSocket.last.drop(); // attempt 3: gives up
  await flush();
  assert.equal(c.state, "closed");
  assert.ok(sent.error instanceof DisconnectedError);
  assert.equal(c.pendingCount, 0);
});

test("v2: a reconnect that lands on a version 1 server ends the session", async () => {
  const c = client();
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome2();
  const sent = settle(c.call("echo", 1));
  ws = dropAndReconnect(ws);
  ws.welcome(); // ticksock.v1.json
  await flush();
  assert.deepEqual(
    events.filter(([n]) => n === "session_ended" || n === "connected").map(([n, p]) => [n, p.reason ?? p.resumed]),
    [
      ["connected", false],
      ["session_ended", "version_1"],
      ["connected", false],
    ],
  );
  assert.ok(sent.error instanceof DisconnectedError);
  assert.equal(c.session, null);
  assert.equal(c.protocolVersion, 1);
  assert.deepEqual(ws.requests, [], "no resume, no ack on version 1");
  c.close();
});

test("v2: a resumed frame that claims requests never sent ends the session; the next link starts afresh", async () => {
  const c = client();
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome2();
  const sent = settle(c.call("echo", 1));
  ws = dropAndReconnect(ws);
  ws.welcome2();
  ws.receive({ type: "resumed", received: 5, secret: SECRET_B });
  await flush();
  assert.equal(ws.closedWith.code, CloseCodes.PROTOCOL_ERROR);
  assert.deepEqual(events.find(([n]) => n === "session_ended")[1], {
    reason: "protocol_error",
    code: null,
    message: "the server's resumed frame says it took request 5, but the last sent was 1",
    failedCalls: 1,
  });
  assert.ok(sent.error instanceof DisconnectedError);
  clock.advance(500);
  FakeSocket.last.welcome2({ conn_id: "9" });
  assert.deepEqual(FakeSocket.last.requests, [{ type: "ack", ack: 0 }], "a fresh session");
  c.close();
});

test("v2: frames out of place are protocol errors (4002)", () => {
  const cases = [
    [(ws) => ws.receive({ type: "resumed", received: 0, secret: SECRET_B }), "resumed without a resume"],
    [(ws) => ws.receive({ type: "resume_failed", reason: 2, message: "" }), "resume_failed without a resume"],
    [(ws) => ws.receive({ type: "ack", received: 9 }), "an ack above the last seq"],
    [(ws) => ws.receive({ type: "welcome", version: 2, tick_hz: 30, conn_id: "1", epoch: "1", secret: SECRET_B }), "a second welcome"],
  ];
  for (const [send, what] of cases) {
    FakeSocket.reset();
    const c = client();
    const ws = FakeSocket.last;
    ws.welcome2();
    send(ws);
    assert.equal(ws.closedWith?.code, CloseCodes.PROTOCOL_ERROR, what);
    c.close();
  }
  // A welcome without a valid secret, and a reply while the resume is unanswered.
  FakeSocket.reset();
  let c = client();
  FakeSocket.last.open("ticksock.v2.json");
  FakeSocket.last.receive({ type: "welcome", version: 2, tick_hz: 30, conn_id: "1", epoch: "1", secret: "XYZ" });
  assert.equal(FakeSocket.last.closedWith?.code, CloseCodes.PROTOCOL_ERROR, "a bad secret");
  c.close();
  FakeSocket.reset();
  c = client();
  let ws = FakeSocket.last;
  ws.welcome2();
  ws = dropAndReconnect(ws);
  ws.welcome2();
  ws.reply(0, null);
  assert.equal(ws.closedWith?.code, CloseCodes.PROTOCOL_ERROR, "a reply before the resume's answer");
  assert.notEqual(c.session, null, "the session is kept: the next link resumes it");
  c.close();
});

test("v2: a welcome whose version does not match the subprotocol stops the client", () => {
  const c = client();
  const events = record(c);
  FakeSocket.last.open("ticksock.v2.json");
  FakeSocket.last.receive({ type: "welcome", version: 1, tick_hz: 30, conn_id: "1" });
  assert.equal(c.state, "closed");
  assert.equal(events.at(-1)[1].reason, "version");
});

test("v2: heartbeat probes are requests of the session; a probe lost with its link is still resent (no seq gap)", async () => {
  const c = client({ heartbeatRoute: "hb", heartbeatIntervalMs: 1000, idleTimeoutMs: 3000 });
  let ws = FakeSocket.last;
  ws.welcome2();
  ws.sent.length = 0;
  clock.advance(1000);
  assert.deepEqual(requests(ws), [[1, 0, 0, "hb", null]]);
  const p = settle(c.call("echo", "after the probe"));
  ws = dropAndReconnect(ws);
  assert.equal(c.pendingCount, 1, "the probe's call ended with its link; the user call waits");
  ws.welcome2();
  ws.receive({ type: "resumed", received: 0, secret: SECRET_B });
  assert.deepEqual(
    requests(ws).map(([seq, , id, route]) => [seq, id, route]),
    [
      [1, 0, "hb"],
      [2, 1, "echo"],
    ],
  );
  ws.reply(0, null); // the old probe's answer: nobody waits for it
  ws.reply(1, "after the probe");
  await flush();
  assert.equal(p.value, "after the probe");
  assert.equal(c.stats.lateAnswers, 1);
  c.close();
});

test("v2: a call queued offline that only fits a version 1 frame fails with TooLargeError when a v2 link takes it", async () => {
  const c = client({ maxFrameBytes: 100 });
  const body = "x".repeat(50); // {"id":0,"route":"echo","body":"xxx…"}: 82 bytes, fits v1, not v2 with its header
  const p = settle(c.call("echo", body));
  const small = settle(c.call("echo", 1));
  FakeSocket.last.welcome2();
  await flush();
  assert.ok(p.error instanceof TooLargeError);
  assert.deepEqual(requests(FakeSocket.last), [[1, 0, 1, "echo", 1]], "the next call takes seq 1: no gap");
  assert.equal(small.done, false);
  // Online on v2, the check is made at call time.
  const q = settle(c.call("echo", body));
  await flush();
  assert.ok(q.error instanceof TooLargeError);
  c.close();
});

test("v1 server: nothing changes (no seq, no ack, no resume; calls in flight fail on a drop)", async () => {
  const c = client();
  const events = record(c);
  let ws = FakeSocket.last;
  ws.welcome(); // the server picked ticksock.v1.json
  assert.equal(c.protocolVersion, 1);
  assert.equal(c.session, null);
  assert.deepEqual(events[0], ["connected", { welcome: { version: 1, tick_hz: 30, conn_id: SESSION }, reconnected: false, resumed: false }]);
  assert.equal(ws.sent.length, 0, "no ack 0 on version 1");
  const a = settle(c.call("echo", "a", { timeout: Infinity }));
  for (let i = 0; i < 100; i++) ws.push("state", { tick: i });
  clock.advance(10_000);
  assert.deepEqual(ws.requests, [{ id: 0, route: "echo", body: "a" }], "the version 1 frame, and no ack frames");
  ws = dropAndReconnect(ws);
  await flush();
  assert.ok(a.error instanceof DisconnectedError);
  assert.deepEqual(events.find(([n]) => n === "disconnected")[1], { code: 1006, reason: "", wasClean: false, failedCalls: 1, resuming: false });
  ws.welcome();
  assert.deepEqual(ws.requests, [], "no resume");
  assert.equal(events.at(-1)[1].resumed, false);
  for (const type of ["ack", "resumed", "resume_failed"]) {
    const s = FakeSocket.last;
    s.receive({ type, received: 0, secret: SECRET_B });
    assert.equal(s.closedWith?.code, CloseCodes.PROTOCOL_ERROR, `a ${type} frame on version 1`);
    clock.advance(10_000);
    FakeSocket.last.welcome();
  }
  assert.equal(events.filter(([n]) => n === "session_ended").length, 0);
  c.close();
});
