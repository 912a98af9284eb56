// Tick-stamped replies (PROTOCOL.md 4.3): the client asks with `ticks=1` at the upgrade when
// `tickStamps` is on, and `callStamped` resolves with the reply's stamp.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { ReplyError } from "../dist/ticksock.js";
import { FakeSocket, FakeClock, fakeClient, flush, settle } from "./fakes.mjs";

const URL = "ws://127.0.0.1:7777/";
let clock;

beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

test("without tickStamps the URL is unchanged and a reply's stamp is null", async () => {
  const c = fakeClient(clock, URL);
  const ws = FakeSocket.last;
  assert.equal(ws.url, URL);
  ws.welcome();
  const p = settle(c.callStamped("echo", "a"));
  ws.reply(0, "a");
  await flush();
  assert.deepEqual(p.value, { tick: null, result: "a" });
  c.close();
});

test("with tickStamps every upgrade asks with ticks=1, beside the token and the URL's own parameters", async () => {
  const c = fakeClient(clock, "ws://127.0.0.1:7777/play?room=x", { tickStamps: true, token: "abc" });
  const ws = FakeSocket.last;
  assert.equal(ws.url, "ws://127.0.0.1:7777/play?room=x&token=abc&ticks=1");
  ws.welcome();
  ws.drop();
  clock.advance(250);
  assert.equal(FakeSocket.last.url, "ws://127.0.0.1:7777/play?room=x&token=abc&ticks=1", "a reconnect asks again");
  assert.notEqual(FakeSocket.last, ws);
  c.close();
  const own = fakeClient(clock, "ws://127.0.0.1:7777/?ticks=0", { tickStamps: true });
  assert.equal(FakeSocket.last.url, "ws://127.0.0.1:7777/?ticks=0", "a ticks parameter of the URL's own is kept");
  own.close();
});

test("callStamped resolves with the stamp on either version; call ignores it; errors reject as before", async () => {
  for (const version of [1, 2]) {
    const c = fakeClient(clock, URL, { tickStamps: true });
    const ws = FakeSocket.last;
    if (version === 1) ws.welcome();
    else ws.welcome2();
    const stamped = settle(c.callStamped("move", { dx: 1, dy: 0 }));
    const plain = settle(c.call("move", { dx: 0, dy: 0 }));
    const refused = settle(c.callStamped("move", { dx: 1, dy: 0 }));
    ws.receive({ type: "reply", id: 0, tick: 300, body: { tick: 300 } });
    ws.receive({ type: "reply", id: 1, tick: 301, body: { tick: 301 } });
    ws.error(2, 1001, "not logged in");
    await flush();
    assert.deepEqual(stamped.value, { tick: 300, result: { tick: 300 } }, `version ${version}`);
    assert.deepEqual(plain.value, { tick: 301 }, "call resolves with the body alone");
    assert.ok(refused.error instanceof ReplyError && refused.error.code === 1001);
    assert.equal(c.stats.replies, 2);
    c.close();
  }
});
