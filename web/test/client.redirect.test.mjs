// Unit tests of the client following Error `redirect` (8) to another node of a cluster
// (PROTOCOL.md section 12): the call made again there, one answer, the limit, a refused ticket
// (4002), calls in flight on the old connection, and where reconnects go. Fake WebSocket and
// fake clock, as in client.test.mjs; each FakeSocket plays one node's connection.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import {
  TicksockClient,
  RedirectError,
  DisconnectedError,
  TimeoutError,
  ErrorCodes,
  MAX_REDIRECTS,
  CLOSE_BAD_TICKET,
  REDIRECTED_URL_ATTEMPTS,
} from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush, SECRET_B, fakeClient, recordEvents, settle } from "./fakes.mjs";

const URL = "ws://127.0.0.1:9101/";
const NODE_B = "ws://127.0.0.1:9102/";
const NODE_C = "ws://127.0.0.1:9103/";
const TICKET = "AAECAwQ.ZXhhbXBsZQ";
/** A redirect's message: the node's URL with a ticket in its query (12.2). */
const to = (node, ticket = TICKET) => `${node}?ticket=${ticket}`;
let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A client on the fake socket and clock, without jitter or heartbeat. */
function client(options = {}) {
  return fakeClient(clock, URL, options);
}

/** Records lifecycle events, in order. */
const record = (c) => recordEvents(c, ["connected", "disconnected", "session_ended", "reconnecting", "redirected", "closed"]);

/** The requests sent on `ws`, as [id, route, body]. */
const requests = (ws) => ws.framesOf("request").map((r) => [r.id, r.route, r.body]);

/** A client connected (version 1) to node A, logged in: returns it and A's socket. */
function connectedV1(options) {
  const c = client(options);
  const a = FakeSocket.last;
  a.welcome();
  return { c, a };
}

test("a redirected call is made again on the node it names, and its answer there is the call's one answer", async () => {
  const { c, a } = connectedV1();
  const events = record(c);
  let answers = 0;
  let result = null;
  c.call("join", { room: "arena-7" }, (err, res) => {
    answers++;
    result = err ?? res;
  });
  assert.deepEqual(requests(a), [[0, "join", { room: "arena-7" }]]);
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));

  const b = FakeSocket.last;
  assert.notEqual(b, a, "a new connection");
  assert.equal(b.url, to(NODE_B), "to the URL as it is, ticket included");
  assert.deepEqual(b.protocols, a.protocols, "offering the same subprotocols");
  assert.equal(answers, 0, "the redirect is not the call's answer");
  assert.equal(a.closedWith, null, "the old connection stays until the new node answers");
  assert.equal(c.state, "open");

  b.open();
  assert.equal(b.sent.length, 0, "nothing before the new node's welcome");
  b.receive({ type: "welcome", version: 1, tick_hz: 20, conn_id: "77" });
  assert.deepEqual(requests(b), [[0, "join", { room: "arena-7" }]], "the same route and body, and nothing else (no login)");
  assert.equal(answers, 0);

  b.reply(0, { room: "arena-7", players: [], roster: [] });
  assert.equal(answers, 1);
  assert.deepEqual(result, { room: "arena-7", players: [], roster: [] });
  assert.deepEqual(a.closedWith, { code: 1000, reason: "moved to another node" }, "the old connection closes normally");
  assert.equal(c.currentUrl, NODE_B, "reconnects go to the node, without its one-use ticket");
  assert.equal(c.url, URL, "the URL the client was made with is kept");
  assert.equal(c.welcome.conn_id, "77", "the new connection's welcome");
  assert.equal(c.stats.redirects, 1);
  assert.deepEqual(
    events.map(([name]) => name),
    ["redirected"],
    "no connected (which would ask the app to log in again), no disconnected",
  );
  assert.deepEqual(events[0][1], { url: NODE_B, from: URL, route: "join", welcome: { version: 1, tick_hz: 20, conn_id: "77" } });

  b.reply(0, { room: "again" }); // a second answer to the request
  a.reply(0, { room: "old" }); // and one on the old connection, closed already
  assert.equal(answers, 1, "exactly one answer");
  assert.equal(c.stats.lateAnswers, 1);

  const next = settle(c.call("chat", { text: "hi" }));
  assert.deepEqual(requests(b).at(-1), [1, "chat", { text: "hi" }], "later calls go to the new node");
  assert.equal(requests(a).length, 1);
  b.reply(1, null);
  await flush();
  assert.deepEqual(next, { done: true, ok: true, value: null });
  c.close();
  assert.deepEqual(b.closedWith, { code: 1000, reason: "client closed" });
  assert.equal(clock.timers.size, 0, "no timer left after close()");
});

test("v2: the new node's connection carries a new session: the resent call is its first request, and no resume of the old one", async () => {
  const c = client();
  const a = FakeSocket.last;
  a.welcome2();
  const join = settle(c.call("join", { room: "arena-7" }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome2({ conn_id: "9", epoch: "5", secret: SECRET_B });
  assert.deepEqual(b.requests, [{ type: "request", seq: 1, ack: 0, id: 0, route: "join", body: { room: "arena-7" } }]);
  b.push("presence", { player_id: 1, name: "bob", joined: true }); // heard before the answer: counted in the new session
  b.reply(0, { room: "arena-7", players: [], roster: [] });
  await flush();
  assert.equal(join.ok, true);
  assert.deepEqual(c.session, { conn_id: "9", epoch: "5", received: 2, lastSeq: 1, serverReceived: 0, unanswered: 0 });
  assert.equal(c.protocolVersion, 2);
  assert.equal(a.closedWith.code, 1000);
  c.call("move", { dx: 1, dy: 0 }).catch(() => {});
  assert.deepEqual(b.framesOf("request").at(-1), { type: "request", seq: 2, ack: 2, id: 1, route: "move", body: { dx: 1, dy: 0 } });

  // The link to B drops: the client resumes B's session at B, not A's.
  b.drop(1006);
  clock.advance(250);
  const b2 = FakeSocket.last;
  assert.equal(b2.url, NODE_B);
  b2.welcome2({ conn_id: "10", epoch: "5" });
  assert.deepEqual(b2.requests[0], { type: "resume", session: "9", epoch: "5", secret: SECRET_B, received: 2 });
  c.close();
});

test(`a call is redirected at most ${MAX_REDIRECTS} times; one more fails it with RedirectError`, async () => {
  const { c, a } = connectedV1();
  const events = record(c);
  const join = settle(c.call("join", { room: "far" }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  // Each node sends it on again (a server bug): the last one once too many.
  const targets = [to(NODE_B), to(NODE_C, "T1"), to(NODE_B, "T2"), to(NODE_C, "T3")];
  for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
    const ws = FakeSocket.last;
    assert.equal(ws.url, targets[hop]);
    ws.welcome();
    assert.deepEqual(requests(ws), [[0, "join", { room: "far" }]]);
    ws.error(0, ErrorCodes.REDIRECT, targets[hop + 1]);
  }
  await flush();
  assert.equal(FakeSocket.all.length, 1 + MAX_REDIRECTS, "the fourth redirect is not followed");
  assert.equal(join.ok, false);
  assert.ok(join.error instanceof RedirectError);
  assert.equal(join.error.kind, "redirect");
  assert.equal(join.error.route, "join");
  assert.match(join.error.message, /more than 3 times/);
  assert.equal(c.stats.redirects, MAX_REDIRECTS, "the client moved with each answer");
  assert.equal(c.currentUrl, NODE_B);
  assert.equal(c.state, "open", "the connection it is on stays");
  assert.deepEqual(
    events.map(([name, p]) => `${name} ${p.url}`),
    [`redirected ${NODE_B}`, `redirected ${NODE_C}`, `redirected ${NODE_B}`],
  );
  // Each old connection closed once it had nothing in flight.
  assert.deepEqual(
    FakeSocket.all.map((ws) => ws.closedWith?.code ?? null),
    [1000, 1000, 1000, null],
  );
  c.close();
});

test("a ticket the new node refuses (close 4002 after its welcome) fails the call; the client stays on its connection", async () => {
  const { c, a } = connectedV1();
  const events = record(c);
  const join = settle(c.call("join", { room: "arena-7" }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome();
  b.drop(CLOSE_BAD_TICKET, "invalid or expired ticket");
  await flush();
  assert.ok(join.error instanceof RedirectError, String(join.error));
  assert.match(join.error.message, /refused the ticket \(close 4002\)/);
  assert.equal(join.error.url, NODE_B, "the ticket is not in the error");
  assert.equal(c.state, "open");
  assert.equal(c.currentUrl, URL);
  assert.equal(a.closedWith, null, "the old connection is kept");
  assert.equal(c.welcome.conn_id, "4294967296");
  assert.deepEqual(events, [], "no event: the client never left");
  const rooms = settle(c.call("rooms"));
  assert.deepEqual(requests(a).at(-1), [1, "rooms", undefined]);
  a.reply(1, []);
  await flush();
  assert.equal(rooms.ok, true);
  assert.equal(FakeSocket.all.length, 2, "no reconnect");
  c.close();
});

test("a 4002 close of the client's connection sends the next attempt back to the URL it was made with, after the usual backoff", () => {
  const { c, a } = connectedV1();
  c.call("join", { room: "arena-7" }).catch(() => {});
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome();
  b.reply(0, {});
  assert.equal(c.currentUrl, NODE_B);
  const events = record(c);
  b.drop(CLOSE_BAD_TICKET);
  assert.equal(c.currentUrl, URL);
  assert.deepEqual(events.at(-1), ["reconnecting", { attempt: 1, delayMs: 250, maxAttempts: 10 }]);
  clock.advance(249);
  assert.equal(FakeSocket.last, b, "not before the backoff delay");
  clock.advance(1);
  assert.equal(FakeSocket.last.url, URL);
  c.close();
});

test("calls in flight on the old connection get their answers there; the old connection closes once they have them", async () => {
  const { c, a } = connectedV1();
  const chat = settle(c.call("chat", { text: "before" }));
  const join = settle(c.call("join", { room: "arena-7" }));
  a.error(1, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  const during = settle(c.call("rooms")); // made while the redirect is followed: on the old connection
  assert.deepEqual(requests(a).at(-1), [2, "rooms", undefined]);
  b.welcome();
  let pushes = 0;
  c.on("chat", () => pushes++);
  b.reply(1, { room: "arena-7" });
  await flush();
  assert.equal(join.ok, true);
  assert.equal(a.closedWith, null, "two calls still wait on the old connection");
  a.push("chat", { player_id: 1, name: "x", text: "from the old node" });
  assert.equal(pushes, 0, "pushes on the old connection after the move are dropped");
  a.reply(2, [{ name: "lobby", players: 1, capacity: 64 }]);
  await flush();
  assert.equal(during.ok, true);
  assert.equal(a.closedWith, null);
  a.reply(0, null);
  await flush();
  assert.deepEqual(chat, { done: true, ok: true, value: null });
  assert.deepEqual(a.closedWith, { code: 1000, reason: "moved to another node" }, "closed with its last answer");
  assert.equal(clock.activeTimeouts, 0, "the drain's timer is gone with it (the calls' timers too)");
  assert.equal(c.pendingCount, 0);
  c.close();
});

test("calls in flight on the old connection that get no answer within redirectDrainMs reject with DisconnectedError", async () => {
  const { c, a } = connectedV1({ redirectDrainMs: 2_000 });
  const chat = settle(c.call("chat", { text: "lost" }));
  const join = settle(c.call("join", { room: "arena-7" }));
  a.error(1, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome();
  b.reply(1, {});
  clock.advance(1_999);
  await flush();
  assert.equal(join.ok, true);
  assert.equal(chat.done, false);
  clock.advance(1);
  await flush();
  assert.ok(chat.error instanceof DisconnectedError);
  assert.deepEqual(a.closedWith, { code: 1000, reason: "moved to another node" });
  assert.equal(c.stats.disconnectedCalls, 1);
  assert.equal(c.state, "open", "the new connection is not affected");
  c.close();
});

test("the old connection dropping while it drains fails only its own calls; close() fails those still draining", async () => {
  const { c, a } = connectedV1();
  const first = settle(c.call("chat", { text: "one" }));
  c.call("join", { room: "arena-7" }).catch(() => {});
  a.error(1, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome();
  b.reply(1, {});
  const onB = settle(c.call("chat", { text: "two" }));
  a.drop(1006);
  await flush();
  assert.ok(first.error instanceof DisconnectedError);
  assert.equal(onB.done, false, "a call on the new connection is not touched");
  assert.equal(c.state, "open");
  assert.equal(FakeSocket.all.length, 2, "no reconnect: the client's connection is up");

  // A second move leaves B draining; close() ends it.
  c.call("join", { room: "far" }).catch(() => {});
  b.error(3, ErrorCodes.REDIRECT, to(NODE_C));
  const cc = FakeSocket.last;
  cc.welcome();
  cc.reply(3, {});
  assert.equal(b.closedWith, null, "B drains: `two` waits there");
  c.close();
  await flush();
  assert.ok(onB.error instanceof DisconnectedError);
  assert.deepEqual(b.closedWith, { code: 1000, reason: "client closed" });
  assert.equal(clock.timers.size, 0);
});

test("reconnects go to the new node; after REDIRECTED_URL_ATTEMPTS failed attempts there, back to the URL the client was made with", () => {
  const { c, a } = connectedV1();
  c.call("join", { room: "arena-7" }).catch(() => {});
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  FakeSocket.last.welcome();
  FakeSocket.last.reply(0, {});
  const urls = [];
  for (let i = 0; i <= REDIRECTED_URL_ATTEMPTS; i++) {
    const failed = FakeSocket.last;
    failed.drop(1006); // the link drops, then each attempt fails
    while (FakeSocket.last === failed) clock.advance(50);
    urls.push(FakeSocket.last.url);
  }
  assert.deepEqual(urls, [NODE_B, NODE_B, NODE_B, URL]);
  FakeSocket.last.welcome();
  assert.equal(c.state, "open");
  assert.equal(c.currentUrl, URL);
  c.close();
});

test("a redirect that cannot be followed fails the call at once and opens nothing: no URL, not ws(s)://, another under way", async () => {
  const { c, a } = connectedV1();
  const bad = [settle(c.call("join", { room: "a" })), settle(c.call("join", { room: "b" })), settle(c.call("join", { room: "c" }))];
  a.error(0, ErrorCodes.REDIRECT, "https://127.0.0.1:9102/?ticket=x");
  a.error(1, ErrorCodes.REDIRECT, "node b");
  a.receive({ type: "error", id: 2, code: ErrorCodes.REDIRECT });
  await flush();
  assert.equal(FakeSocket.all.length, 1);
  assert.deepEqual(
    bad.map((r) => [r.error.kind, r.error.message.replace(/^join: redirect (to \S+ )?not followed: /, "")]),
    [
      ["redirect", 'the redirect\'s URL "https://127.0.0.1:9102/?ticket=x" is not ws:// or wss://'],
      ["redirect", 'the redirect\'s message "node b" is not a URL'],
      ["redirect", "the redirect carries no URL"],
    ],
  );

  const first = settle(c.call("join", { room: "d" }));
  const second = settle(c.call("join", { room: "e" }));
  a.error(3, ErrorCodes.REDIRECT, to(NODE_B));
  a.error(4, ErrorCodes.REDIRECT, to(NODE_C));
  await flush();
  assert.equal(FakeSocket.all.length, 2, "one redirect at a time");
  assert.match(second.error.message, /another call's redirect is being followed/);
  FakeSocket.last.welcome();
  FakeSocket.last.reply(3, {});
  await flush();
  assert.equal(first.ok, true);
  c.close();
});

test("a new node that sends no welcome, or closes before it, fails the call with RedirectError and is closed", async () => {
  const { c, a } = connectedV1({ connectTimeoutMs: 3_000 });
  const silent = settle(c.call("join", { room: "a" }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.open();
  clock.advance(3_000);
  await flush();
  assert.match(silent.error.message, /no welcome within 3000 ms/);
  assert.equal(b.closedWith.code, 4001);

  const refused = settle(c.call("join", { room: "b" }));
  a.error(1, ErrorCodes.REDIRECT, to(NODE_C));
  FakeSocket.last.drop(1006);
  await flush();
  assert.match(refused.error.message, /closed \(1006\) before the request was sent there/);
  assert.equal(c.state, "open");
  assert.equal(a.closedWith, null);
  c.close();
});

test("the new node's connection dropping after the request went out fails the call with DisconnectedError (it may have run)", async () => {
  const { c, a } = connectedV1();
  const join = settle(c.call("join", { room: "a" }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  FakeSocket.last.welcome();
  FakeSocket.last.drop(1011);
  await flush();
  assert.ok(join.error instanceof DisconnectedError);
  assert.equal(c.currentUrl, URL);
  assert.equal(a.closedWith, null);
  c.close();
});

test("a call that times out while its redirect is followed closes the new connection; the old one dropping gives the redirect up", async () => {
  const { c, a } = connectedV1();
  const slow = settle(c.call("join", { room: "a" }, { timeout: 1_000 }));
  a.error(0, ErrorCodes.REDIRECT, to(NODE_B));
  const b = FakeSocket.last;
  b.welcome();
  clock.advance(1_000);
  await flush();
  assert.ok(slow.error instanceof TimeoutError);
  assert.equal(b.closedWith.code, 1000);
  b.reply(0, {}); // too late, and on a connection the client left
  assert.equal(c.currentUrl, URL);

  const events = record(c);
  const join = settle(c.call("join", { room: "b" }));
  a.error(1, ErrorCodes.REDIRECT, to(NODE_C));
  const cc = FakeSocket.last;
  a.drop(1006);
  await flush();
  assert.ok(join.error instanceof RedirectError);
  assert.match(join.error.message, /the connection it came from dropped first/);
  assert.equal(cc.closedWith.code, 1000);
  assert.deepEqual(events.map(([name]) => name), ["disconnected", "reconnecting"]);
  clock.advance(250);
  assert.equal(FakeSocket.last.url, URL, "it reconnects where it was");
  c.close();
});
