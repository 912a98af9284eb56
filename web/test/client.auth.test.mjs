// Unit tests of the client's token (PROTOCOL.md section 13): offered at every connection as the
// `token` query parameter, set and cleared by the game, `authenticate` keeping only a token the
// server accepted (both JSON encodings), dropped on a close 4003 or 4004 with `token_refused`,
// and offered next to a redirect's ticket. Fake WebSocket and fake clock, as in client.test.mjs.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import {
  TicksockClient,
  ReplyError,
  RedirectError,
  TicksockError,
  ErrorCodes,
  CLOSE_AUTH_FAILED,
  CLOSE_AUTH_EXPIRED,
  AUTH_ROUTE,
  AUTH_EXPIRED_TOPIC,
  MAX_TOKEN_BYTES,
  isToken,
  decodeAuthReply,
} from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush, SECRET_B, fakeClient, recordEvents, settle } from "./fakes.mjs";

const URL = "ws://127.0.0.1:7777/";
const NODE_B = "ws://127.0.0.1:9102/";
const TICKET = "AAECAwQ.ZXhhbXBsZQ";
/** Session tokens with every character a token may have, none percent-encoded in a URL. */
const TOKEN_A = "MTcuMTcwMDAwMDAwMC5hbm4.Ab-_~+/=";
const TOKEN_B = "MTguMTcwMDAwMDAwMC5ib2I.xyz";
const ANN = { user: "ann", roles: [], expires_in_ms: 86_400_000 };
let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A client on the fake socket and clock, without jitter or heartbeat. */
function client(options = {}, url = URL) {
  return fakeClient(clock, url, options);
}

/** Records lifecycle events, in order. */
const record = (c) => recordEvents(c, ["connected", "disconnected", "session_ended", "reconnecting", "redirected", "token_refused", "closed"]);

/** Lets the reconnect delay pass after `ws` ended: returns the next socket (not yet open). */
function nextSocket(ws) {
  for (let waited = 0; FakeSocket.last === ws && waited < 10_000; waited += 50) clock.advance(50);
  assert.notEqual(FakeSocket.last, ws, "a new connection attempt");
  return FakeSocket.last;
}

/** The `token` query parameter a socket's URL carries, as written there (null: none). */
function offered(ws) {
  const part = new globalThis.URL(ws.url).search.slice(1).split("&").find((p) => p.startsWith("token="));
  return part === undefined ? null : part.slice("token=".length);
}

test("the token is offered at the first connection and every reconnect, as it is, and setToken changes the next one only", async () => {
  const c = client({ token: TOKEN_A });
  assert.equal(c.token, TOKEN_A);
  const first = FakeSocket.last;
  assert.equal(first.url, `${URL}?token=${TOKEN_A}`, "not percent-encoded: the server does not decode it (13.1)");
  first.welcome();
  // The game signs in as someone else for later connections: this one is left as it is.
  c.setToken(TOKEN_B);
  assert.equal(c.token, TOKEN_B);
  assert.equal(first.closedWith, null, "the current connection stays");
  first.drop(1006);
  const second = nextSocket(first);
  assert.equal(offered(second), TOKEN_B);
  second.welcome();
  c.setToken(null);
  assert.equal(c.token, null);
  second.drop(1006);
  const third = nextSocket(second);
  assert.equal(third.url, URL, "anonymous: no token parameter at all");
  assert.equal(c.currentUrl, URL);
  c.close();
});

test("the URL's own query is kept, its token taken as the first and replaced by a later one", async () => {
  const base = "ws://127.0.0.1:7777/play?room=x%20y&token=old.one&lang=en";
  const c = client({}, base);
  assert.equal(c.token, "old.one", "a token in the URL is the first connection's token");
  const first = FakeSocket.last;
  assert.equal(first.url, "ws://127.0.0.1:7777/play?room=x%20y&lang=en&token=old.one");
  assert.equal(c.currentUrl, "ws://127.0.0.1:7777/play?room=x%20y&lang=en", "currentUrl shows no token");
  first.welcome();
  c.setToken(TOKEN_A);
  first.drop(1006);
  const second = nextSocket(first);
  assert.equal(second.url, `ws://127.0.0.1:7777/play?room=x%20y&lang=en&token=${TOKEN_A}`, "one token, the held one");
  c.setToken(null);
  second.drop(1006);
  assert.equal(nextSocket(second).url, "ws://127.0.0.1:7777/play?room=x%20y&lang=en", "the URL's token is gone with the client's");
  c.close();
  // options.token wins over the URL's.
  const d = client({ token: null }, base);
  assert.equal(d.token, null);
  assert.equal(FakeSocket.last.url, "ws://127.0.0.1:7777/play?room=x%20y&lang=en");
  d.close();
});

test("a string that is not a token is refused before anything is sent", async () => {
  assert.equal(isToken(TOKEN_A), true);
  assert.equal(isToken("a".repeat(MAX_TOKEN_BYTES)), true);
  for (const bad of ["", "a b", "a&b", "a%20", "é", "a".repeat(MAX_TOKEN_BYTES + 1), 7, null]) assert.equal(isToken(bad), false, JSON.stringify(bad));
  assert.throws(() => client({ token: "two words" }), (e) => e instanceof TypeError && /not a token/.test(e.message));
  assert.throws(() => client({}, `${URL}?token=a%26b`), TypeError, "a percent-encoded token in the URL");
  const c = client();
  const ws = FakeSocket.last;
  ws.welcome();
  assert.throws(() => c.setToken("x&admin=1"), TypeError);
  assert.equal(c.token, null, "unchanged");
  const p = settle(c.authenticate(""));
  await flush();
  assert.ok(p.error instanceof TypeError);
  assert.deepEqual(ws.sent, [], "nothing went out");
  c.close();
});

test("authenticate (v1): auth with the token; an accepted one is kept for the next connections, a refused one is not", async () => {
  const c = client({ token: TOKEN_A });
  const ws = FakeSocket.last;
  ws.welcome();
  // Refused: the held token stays.
  const refused = settle(c.authenticate(TOKEN_B));
  const [req] = ws.requests;
  assert.deepEqual(req, { id: req.id, route: AUTH_ROUTE, body: TOKEN_B }, "the body is the token, a JSON string (13.2)");
  ws.error(req.id, ErrorCodes.UNAUTHENTICATED, "the session token is not valid here");
  await flush();
  assert.ok(refused.error instanceof ReplyError);
  assert.equal(refused.error.code, 10);
  assert.equal(c.token, TOKEN_A);
  // Accepted: the reply decoded, the token kept.
  const accepted = settle(c.authenticate(TOKEN_B));
  const req2 = ws.requests[1];
  ws.reply(req2.id, { user: "bob", roles: ["mod"], expires_in_ms: null });
  await flush();
  assert.deepEqual(accepted.value, { user: "bob", roles: ["mod"], expires_in_ms: null });
  assert.equal(c.token, TOKEN_B);
  ws.drop(1006);
  assert.equal(offered(nextSocket(ws)), TOKEN_B);
  c.close();
});

test("authenticate (v2): the same over ticksock.v2.json, seq and all; a reply that is not an AuthReply keeps nothing", async () => {
  const c = client();
  const ws = FakeSocket.last;
  ws.welcome2();
  const bad = settle(c.authenticate(TOKEN_A));
  const good = settle(c.authenticate(TOKEN_B));
  const [r1, r2] = ws.framesOf("request");
  assert.deepEqual([r1.seq, r1.route, r1.body], [1, "auth", TOKEN_A]);
  assert.deepEqual([r2.seq, r2.route, r2.body], [2, "auth", TOKEN_B]);
  ws.reply(r1.id, { user: "ann", roles: "admin" });
  await flush();
  assert.ok(bad.error instanceof TicksockError);
  assert.equal(bad.error.kind, "bad_reply");
  assert.match(bad.error.message, /roles/);
  assert.equal(c.token, null, "not kept: the server's answer does not say it was accepted");
  ws.reply(r2.id, { user: "bob", roles: [], expires_in_ms: 5000 });
  await flush();
  assert.deepEqual(good.value, { user: "bob", roles: [], expires_in_ms: 5000 });
  assert.equal(c.token, TOKEN_B);
  // A resume link offers it too.
  ws.drop(1006);
  const next = nextSocket(ws);
  assert.equal(offered(next), TOKEN_B);
  next.welcome2({ conn_id: "9", secret: SECRET_B });
  assert.equal(next.framesOf("resume").length, 1, "the resume goes out on the link that offered the token");
  c.close();
});

test("decodeAuthReply takes AuthReply's JSON form and names what is wrong with anything else", () => {
  assert.deepEqual(decodeAuthReply(ANN), ANN);
  assert.deepEqual(decodeAuthReply({ user: "ann", roles: [] }), { user: "ann", roles: [], expires_in_ms: null }, "none may be left out");
  for (const [body, what] of [
    [null, "not an object"],
    [["ann"], "not an object"],
    [{ roles: [] }, "user"],
    [{ user: "ann", roles: [1] }, "roles"],
    [{ user: "ann", roles: [], expires_in_ms: -1 }, "expires_in_ms"],
    [{ user: "ann", roles: [], expires_in_ms: "5" }, "expires_in_ms"],
  ]) {
    assert.match(decodeAuthReply(body), new RegExp(what), JSON.stringify(body));
  }
});

test("close 4003: the token is dropped, token_refused follows disconnected, and the reconnect is anonymous", async () => {
  const c = client({ token: TOKEN_A });
  const events = record(c);
  const ws = FakeSocket.last;
  // 13.1: the server welcomes, then refuses the token; nothing of the connection is handled.
  ws.welcome();
  const call = settle(c.call("rooms"));
  let tokenSeenByListener;
  c.onEvent("disconnected", () => (tokenSeenByListener = c.token));
  ws.drop(CLOSE_AUTH_FAILED, "authentication failed");
  await flush();
  assert.equal(tokenSeenByListener, null, "dropped before any listener runs");
  assert.equal(c.token, null);
  assert.deepEqual(
    events.map(([name]) => name),
    ["connected", "disconnected", "token_refused", "reconnecting"],
  );
  assert.deepEqual(events[2][1], { code: 4003, reason: "authentication failed", expired: false, token: TOKEN_A });
  assert.equal(call.error.kind, "disconnected", "its calls fail as on any v1 drop");
  const next = nextSocket(ws);
  assert.equal(next.url, URL, "anonymous");
  next.welcome();
  assert.equal(c.connected, true);
  c.close();
});

test("close 4004 after the auth_expired push: the push is heard, then the token the identity rested on is dropped", async () => {
  const c = client();
  const events = record(c);
  const ws = FakeSocket.last;
  ws.welcome2();
  const p = settle(c.authenticate(TOKEN_A));
  const [req] = ws.framesOf("request");
  ws.reply(req.id, ANN);
  await flush();
  assert.deepEqual(p.value, ANN);
  const heard = [];
  c.on(AUTH_EXPIRED_TOPIC, (body) => heard.push(["auth_expired", body, c.token]));
  c.onEvent("token_refused", () => heard.push(["token_refused"]));
  ws.push("auth_expired", null);
  ws.drop(CLOSE_AUTH_EXPIRED, "authentication expired");
  assert.deepEqual(heard, [["auth_expired", null, TOKEN_A], ["token_refused"]], "an ordinary push, before the close");
  const refused = events.find(([name]) => name === "token_refused")[1];
  assert.deepEqual(refused, { code: 4004, reason: "authentication expired", expired: true, token: TOKEN_A });
  assert.equal(c.token, null);
  // Version 2: the link is resumed as after any drop, anonymous.
  const next = nextSocket(ws);
  assert.equal(next.url, URL);
  c.close();
});

test("a token the game set after the connection opened survives that connection's 4003, and the next one offers it", async () => {
  const c = client({ token: TOKEN_A });
  const events = record(c);
  const ws = FakeSocket.last;
  ws.welcome();
  c.setToken(TOKEN_B); // signed in anew meanwhile, for the next connection
  ws.drop(CLOSE_AUTH_FAILED, "authentication failed");
  assert.equal(c.token, TOKEN_B);
  assert.equal(events.find(([name]) => name === "token_refused")[1].token, TOKEN_A, "the event names the refused one");
  assert.equal(offered(nextSocket(ws)), TOKEN_B);
  c.close();
});

test("other closes keep the token, and a listener's connect() after a 4003 opens an anonymous connection at once", async () => {
  const c = client({ token: TOKEN_A });
  const ws = FakeSocket.last;
  ws.welcome();
  for (const code of [1001, 1006, 4002]) {
    const cur = FakeSocket.last;
    if (cur.readyState !== 1) cur.welcome();
    cur.drop(code);
    assert.equal(c.token, TOKEN_A, `close ${code}`);
    assert.equal(offered(nextSocket(cur)), TOKEN_A, `reconnect after ${code}`);
  }
  const cur = FakeSocket.last;
  cur.welcome();
  c.onEvent("token_refused", () => c.connect());
  cur.drop(CLOSE_AUTH_FAILED);
  assert.notEqual(FakeSocket.last, cur, "connected from the listener, without waiting for the backoff");
  assert.equal(FakeSocket.last.url, URL);
  c.close();
});

test("a redirect's connection offers the token next to its ticket; reconnects there carry the token and not the ticket", async () => {
  const c = client({ token: TOKEN_A });
  const a = FakeSocket.last;
  a.welcome();
  const events = record(c);
  const join = settle(c.call("join", { room: "arena-7" }));
  const [req] = a.requests;
  a.error(req.id, ErrorCodes.REDIRECT, `${NODE_B}?ticket=${TICKET}`);
  const b = FakeSocket.last;
  assert.equal(b.url, `${NODE_B}?ticket=${TICKET}&token=${TOKEN_A}`, "the ticket kept as it is, the token added");
  b.welcome();
  const [again] = b.requests;
  b.reply(again.id, { room: "arena-7", players: [], roster: [] });
  await flush();
  assert.equal(join.ok, true);
  assert.equal(events.at(-1)[0], "redirected");
  assert.equal(c.currentUrl, NODE_B);
  b.drop(1006);
  const b2 = nextSocket(b);
  assert.equal(b2.url, `${NODE_B}?token=${TOKEN_A}`, "no ticket (good once), the token");
  c.close();
});

test("a redirect's node refusing the token (4003) fails the call with RedirectError, drops the token, and the client stays", async () => {
  const c = client({ token: TOKEN_A });
  const a = FakeSocket.last;
  a.welcome();
  const events = record(c);
  const join = settle(c.call("join", { room: "arena-7" }));
  a.error(a.requests[0].id, ErrorCodes.REDIRECT, `${NODE_B}?ticket=${TICKET}`);
  const b = FakeSocket.last;
  b.welcome();
  assert.equal(b.requests.length, 1, "the call went out there after the welcome");
  b.drop(CLOSE_AUTH_FAILED, "authentication failed");
  await flush();
  assert.ok(join.error instanceof RedirectError, String(join.error));
  assert.match(join.error.message, /refused the token/);
  assert.equal(c.token, null);
  assert.deepEqual(
    events.map(([name]) => name),
    ["token_refused"],
  );
  assert.equal(c.connected, true, "still on the first node");
  assert.equal(c.currentUrl, URL);
  c.close();
});
