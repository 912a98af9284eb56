// End-to-end: the TS client follows a real redirect in headless Chromium (issue 15, PROTOCOL.md
// section 12). The test starts its own redis-server and two arena nodes in one cluster. Bob's
// page, on node 2's demo page, joins arena "x" first, so node 2 holds it; ann's page, on node
// 1's demo page, logs in there (in the lobby) and then joins "x" through the form. Node 1
// answers that join with Error `redirect` (8); the page's client follows it by itself: a new
// WebSocket to node 2 with the ticket, the same `join` sent there first and no `login`, the join
// resolves with a roster of ann and bob, `redirected` fires, `currentUrl` is node 2's URL
// without the ticket, and the old connection is closed with 1000 (its session ends on node 1).
// Bob hears ann arrive once, and never leave; ann gets room x's state from node 2; whispers
// from bob reach ann, once each, since she is online on node 2.
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
//   REDIS_SERVER_BIN     the Redis server (default `redis-server` on the PATH; the test fails
//                        without one, it never skips)
//
// Only loopback addresses are used. Browser, nodes and Redis are stopped at the end, within
// bounded time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, RedisProcess, ServerProcess, tempDbPath, within } from "./support.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");
const HINT = "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)";

const redis = new RedisProcess();
const node1 = new ServerProcess(SERVER_BIN, HINT);
const node2 = new ServerProcess(SERVER_BIN, HINT);
const browser = new Browser();

after(async () => {
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  // The nodes before Redis: a node leaving says so to the registry.
  for (const node of [node1, node2]) await node.stop().catch((e) => console.error("e2e: stopping a node:", e));
  await redis.stop().catch((e) => console.error("e2e: stopping redis-server:", e));
});

/** Node `addr`'s unlabelled metrics (`GET /metrics`): name -> value. */
async function metrics(addr) {
  const res = await within(5_000, `GET /metrics of ${addr}`, fetch(`http://${addr}/metrics`));
  assert.equal(res.status, 200, "GET /metrics");
  const values = new Map();
  for (const line of (await res.text()).split("\n")) {
    const m = line.match(/^(ticksock_[a-z_]+) (\S+)$/);
    if (m) values.set(m[1], Number(m[2]));
  }
  return values;
}

/** Calls `probe` every 50 ms until it resolves truthy (then resolves with that); fails past `ms`. */
async function until(what, probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Records every WebSocket `page` opens (its URL, the frames each way as parsed JSON, and whether
 * it closed), from the browser's side: what went over the wire, whatever the client believes.
 * Installed before the page loads.
 */
function recordSockets(page) {
  const sockets = [];
  page.on("websocket", (ws) => {
    const s = { url: ws.url(), sent: [], received: [], closed: false };
    sockets.push(s);
    const parse = (payload) => {
      try {
        return JSON.parse(typeof payload === "string" ? payload : payload.toString());
      } catch {
        return { unparsed: String(payload) };
      }
    };
    ws.on("framesent", ({ payload }) => s.sent.push(parse(payload)));
    ws.on("framereceived", ({ payload }) => s.received.push(parse(payload)));
    ws.on("close", () => (s.closed = true));
  });
  return sockets;
}

/**
 * Records in the page, before its script runs, each `close(code)` the page makes on a
 * WebSocket, with the socket's URL: the close code the browser does not report otherwise.
 */
function recordCloses(page) {
  return page.addInitScript(() => {
    window.e2eCloses = [];
    const close = WebSocket.prototype.close;
    WebSocket.prototype.close = function (code, reason) {
      window.e2eCloses.push({ url: this.url, code: code ?? null, reason: reason ?? null });
      return close.call(this, code, reason);
    };
  });
}

/**
 * Records in the page what the test checks: every call the page's client makes (route, body
 * and outcome: a login made again would show), its lifecycle events, and the `presence` and
 * `whisper` pushes it hears. Installed once the demo page is up, before it logs in.
 */
function instrument(page) {
  return page.evaluate(() => {
    const client = window.ticksockDemo.client;
    const e2e = { calls: [], events: [], presence: [], whispers: [] };
    window.e2e = e2e;
    // demo.js calls `client.call(...)` on this object, so its calls go through here too.
    const call = client.call.bind(client);
    client.call = (route, body, ...rest) => {
      const record = { route, body, outcome: null };
      e2e.calls.push(record);
      const p = call(route, body, ...rest);
      // The callback form returns nothing: only promise calls have an outcome to record.
      p?.then?.(
        (result) => (record.outcome = { result }),
        (e) => (record.outcome = { error: { kind: e.kind, code: e.code ?? null, message: e.message } }),
      );
      return p;
    };
    for (const name of ["connected", "disconnected", "redirected", "session_ended", "closed"]) {
      client.onEvent(name, (payload) => {
        const { welcome, error, ...rest } = payload;
        e2e.events.push({ name, ...rest, conn_id: welcome?.conn_id ?? null, error: error?.message ?? null });
      });
    }
    client.on("presence", (p) => e2e.presence.push(p));
    client.on("whisper", (w) => e2e.whispers.push(w));
  });
}

/** Opens node `addr`'s demo page in a new page of `ctx`, recording its sockets and errors. */
async function openDemo(ctx, addr, label) {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`${label}: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`${label} console: ${m.text()}`));
  const sockets = recordSockets(page);
  await recordCloses(page);
  await page.goto(`http://${addr}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
  await instrument(page);
  return { page, errors, sockets };
}

/** Waits in `page` until `fn(arg)` is truthy, with a message that says what did not happen. */
async function pageWait(page, what, fn, arg, ms = 15_000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout: ms })).jsonValue();
  } catch (e) {
    const state = await page
      .evaluate(() => JSON.stringify({ e2e: window.e2e, link: window.ticksockDemo.link, status: document.getElementById("status").textContent }))
      .catch(() => "(page state unavailable)");
    throw new Error(`timed out after ${ms} ms: ${what}; page: ${state}\n${e.message}`);
  }
}

/**
 * Resolves with the outcome of the first `route` call the page makes after its `from`th call
 * whose body has `key` = `value`, once it has one.
 */
function callOutcome(page, what, from, route, key, value) {
  return pageWait(
    page,
    what,
    ({ from, route, key, value }) => window.e2e.calls.slice(from).find((c) => c.route === route && c.body?.[key] === value)?.outcome,
    { from, route, key, value },
  );
}

/** Joins `room` as `name` through the demo page's form; resolves once the page is in it. */
async function joinThroughForm(page, name, room) {
  const from = await page.evaluate(() => window.e2e.calls.length);
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join");
  const outcome = await callOutcome(page, `${name}'s join of ${room} is answered`, from, "join", "room", room);
  assert.ok(outcome.result, `${name}'s join of ${room} failed: ${JSON.stringify(outcome)}`);
  await pageWait(page, `${name}'s page is in ${room}`, (room) => window.ticksockDemo.room === room && window.ticksockDemo.me !== null, room);
}

/** Whispers `text` to `to` through the demo page's chat box (`/w NAME text`); resolves once it is answered. */
async function whisperThroughChat(page, to, text) {
  const from = await page.evaluate(() => window.e2e.calls.length);
  await page.fill("#say", `/w ${to} ${text}`);
  await page.press("#say", "Enter");
  const outcome = await callOutcome(page, `the whisper ${JSON.stringify(text)} is answered`, from, "whisper", "text", text);
  assert.deepEqual(outcome, { result: null }, `the whisper ${JSON.stringify(text)} to ${to} was answered`);
}

const requests = (socket) => socket.sent.filter((f) => f.type === "request");

test("a page follows a redirect to the node that holds the arena, as the same player", { timeout: 120_000 }, async () => {
  const redisUrl = await redis.start();
  // ann's page, served by node 1, follows a redirect to node 2: node 2 must allow node 1's
  // origin. The nodes' ports are known only once they listen, so they allow any; a deployment
  // lists its site's origin on every node (README, "Cluster").
  const cluster = ["--listen", "127.0.0.1:0", "--cluster", redisUrl, "--allowed-origins", "*"];
  // Each node its own database, in a temporary directory.
  const addr1 = await node1.start([...cluster, "--node-name", "n1", "--db", tempDbPath("n1")]);
  const addr2 = await node2.start([...cluster, "--node-name", "n2", "--db", tempDbPath("n2")]);
  const url1 = `ws://${addr1}/`;
  const url2 = `ws://${addr2}/`;

  const ctx = await browser.start();
  const ann = await openDemo(ctx, addr1, "ann");
  const bob = await openDemo(ctx, addr2, "bob");

  // ann logs in on node 1 (the demo logs in, then joins the lobby, which every node has).
  await joinThroughForm(ann.page, "ann", "lobby");
  const annOnNode1 = await ann.page.evaluate(() => window.ticksockDemo.me);
  // bob joins "x" first: node 2 creates it and holds it.
  await joinThroughForm(bob.page, "bob", "x");
  // Node 1 lists it once the registry says so (a join before that could find no owner yet).
  await until("node 1 lists arena x with bob in it", () =>
    ann.page.evaluate(async () => (await window.ticksockDemo.client.call("rooms")).some((r) => r.name === "x" && r.players === 1)),
  );

  // ann joins "x" through the form: node 1 redirects, and her client follows by itself.
  await joinThroughForm(ann.page, "ann", "x");
  const annState = await ann.page.evaluate(() => ({
    e2e: window.e2e,
    currentUrl: window.ticksockDemo.client.currentUrl,
    url: window.ticksockDemo.client.url,
    me: window.ticksockDemo.me,
    names: [...window.ticksockDemo.names.values()].sort(),
    stats: window.ticksockDemo.client.stats,
  }));

  // The join resolved, with a Joined from node 2 whose roster has ann and bob.
  const joins = annState.e2e.calls.filter((c) => c.route === "join");
  assert.deepEqual(
    joins.map((c) => c.body.room),
    ["lobby", "x"],
    "the page joined twice: the lobby, then x (the redirect made no call of the page's)",
  );
  const joined = joins[1].outcome?.result;
  assert.ok(joined, `the join of x resolved: ${JSON.stringify(joins[1])}`);
  assert.equal(joined.room, "x");
  assert.deepEqual(joined.roster.map((r) => r.name).sort(), ["ann", "bob"], "the roster has ann and bob");
  const annId = joined.roster.find((r) => r.name === "ann").id;
  assert.equal(annState.me, annId, "the demo took ann's id on node 2 from the roster");
  assert.deepEqual(annState.names, ["ann", "bob"], "ann's page names both players");

  // ann did not log in again: one login, on node 1, by the page and on the wire.
  const logins = annState.e2e.calls.filter((c) => c.route === "login");
  assert.equal(logins.length, 1, `one login: ${JSON.stringify(annState.e2e.calls.map((c) => c.route))}`);
  assert.deepEqual(logins[0].outcome, { result: { player_id: annOnNode1 } }, "the login was answered, on node 1");

  // The redirected event, once, to node 2's URL without its ticket; and no `connected` for it.
  const events = annState.e2e.events;
  assert.deepEqual(
    events.map((e) => e.name),
    ["redirected"],
    `events after the page was up: ${JSON.stringify(events)}`,
  );
  assert.equal(events[0].url, url2, "redirected to node 2's URL, without the ticket");
  assert.equal(events[0].from, url1, "from node 1's URL");
  assert.equal(events[0].route, "join");
  assert.equal(annState.currentUrl, url2, "currentUrl is node 2's URL without the ticket");
  assert.equal(annState.url, url1, "url is still the one the client was made with");
  assert.equal(annState.stats.redirects, 1, "the client counts one redirect");

  // On the wire: node 1 answered the join with Error redirect (8) and a ticket URL for node 2;
  // the page opened a WebSocket there and sent the same join first, and no login.
  assert.equal(ann.sockets.length, 2, `ann's page opened two WebSockets: ${ann.sockets.map((s) => s.url)}`);
  const [old, moved] = ann.sockets;
  assert.equal(old.url, url1);
  const joinOnNode1 = requests(old).find((f) => f.route === "join" && f.body?.room === "x");
  assert.ok(joinOnNode1, "the join of x went to node 1 first");
  const redirect = old.received.find((f) => f.type === "error" && f.id === joinOnNode1.id);
  assert.equal(redirect?.code, 8, `node 1 answered it with Error redirect (8): ${JSON.stringify(redirect)}`);
  assert.match(redirect.message, /^ws:\/\/[^?]+\/\?ticket=[A-Za-z0-9_.-]{1,512}$/, "a URL with a ticket");
  assert.ok(redirect.message.startsWith(`${url2}?ticket=`), `the URL is node 2's: ${redirect.message}`);
  assert.equal(moved.url, redirect.message, "the page connected to the redirect's URL as it is");
  const movedRequests = requests(moved);
  assert.deepEqual(
    { route: movedRequests[0]?.route, body: movedRequests[0]?.body },
    { route: "join", body: { room: "x" } },
    "the first request on node 2 is the same join",
  );
  assert.equal(movedRequests.filter((f) => f.route === "login").length, 0, "no login on node 2");
  assert.equal(requests(old).filter((f) => f.route === "login").length, 1, "one login on node 1");
  assert.equal(moved.received[0]?.type, "welcome", "node 2 welcomed the ticket's connection");
  assert.equal(moved.received[0]?.version, 2, "on ticksock.v2.json, as before");

  // The old connection is closed with 1000 (once nothing is in flight there, or after the
  // drain's bound), and node 1 ended its session: a close frame went, no drop.
  await until("the old WebSocket closed", () => old.closed, 10_000);
  const closes = await ann.page.evaluate(() => window.e2eCloses);
  assert.deepEqual(
    closes.map(({ url, code }) => ({ url, code })),
    [{ url: url1, code: 1000 }],
    `the page closed node 1's socket, once, with 1000: ${JSON.stringify(closes)}`,
  );
  assert.equal(moved.closed, false, "node 2's socket stays open");
  await until("node 1 has no session left", async () => (await metrics(addr1)).get("ticksock_sessions_open") === 0);

  // The cluster counted it: one redirect made by node 1, one ticket redeemed by node 2.
  const m1 = await metrics(addr1);
  const m2 = await metrics(addr2);
  assert.equal(m1.get("ticksock_cluster_redirects_total"), 1, "node 1 made one redirect");
  assert.equal(m2.get("ticksock_cluster_tickets_redeemed_total"), 1, "node 2 redeemed one ticket");
  assert.equal(m2.get("ticksock_cluster_tickets_refused_total"), 0, "and refused none");

  // Bob heard ann arrive, with her id on node 2, and his page labels her.
  await pageWait(bob.page, "bob hears ann join", () => window.e2e.presence.some((p) => p.name === "ann"));
  const bobNames = await bob.page.evaluate(() => [...window.ticksockDemo.names.entries()]);
  assert.ok(
    bobNames.some(([id, name]) => id === annId && name === "ann"),
    `bob's page names ann (#${annId}): ${JSON.stringify(bobNames)}`,
  );
  // ann gets room x's state from node 2, with both players in it.
  const bobId = await bob.page.evaluate(() => window.ticksockDemo.me);
  await pageWait(
    ann.page,
    "ann's page sees both players in x's state",
    (ids) => ids.every((id) => window.ticksockDemo.players().some((p) => p.id === id)),
    [annId, bobId],
  );

  // A whisper from bob reaches ann: she is online on node 2. Two, one after the other: when
  // the second has arrived, a duplicate of the first would have too.
  await whisperThroughChat(bob.page, "ann", "welcome to x");
  await pageWait(ann.page, "ann gets bob's first whisper", () => window.e2e.whispers.length >= 1);
  await whisperThroughChat(bob.page, "ann", "again");
  await pageWait(ann.page, "ann gets bob's second whisper", () => window.e2e.whispers.length >= 2);
  const whispers = await ann.page.evaluate(() => window.e2e.whispers);
  assert.deepEqual(
    whispers.map((w) => [w.name, w.text]),
    [
      ["bob", "welcome to x"],
      ["bob", "again"],
    ],
    "ann got each whisper once",
  );
  assert.match(await ann.page.textContent("#log"), /bob \(whisper\): welcome to x/, "ann's page shows the whisper");
  assert.match(await ann.page.textContent("#log"), /moved to the node at/, "ann's page logged the move");

  // Bob heard ann arrive once, and never leave: her old connection closing on node 1 left
  // node 1's lobby, not x.
  const presence = await bob.page.evaluate(() => window.e2e.presence);
  assert.deepEqual(presence, [{ player_id: annId, name: "ann", joined: true }], "one presence: ann joined");

  // The move made the page no other connection, and nothing on it failed.
  const settled = await ann.page.evaluate(() => ({ events: window.e2e.events, connected: window.ticksockDemo.client.connected, link: window.ticksockDemo.link }));
  assert.deepEqual(settled.events.map((e) => e.name), ["redirected"], `no event since: ${JSON.stringify(settled.events)}`);
  assert.equal(settled.connected, true);
  assert.equal(settled.link, "open");
  assert.equal(ann.sockets.length, 2, "still two WebSockets");
  const end1 = await metrics(addr1);
  const end2 = await metrics(addr2);
  for (const [name, m] of [
    ["n1", end1],
    ["n2", end2],
  ]) {
    assert.equal(m.get("ticksock_cluster_lost_total"), 0, `${name}: nothing lost between nodes`);
    assert.equal(m.get("ticksock_cluster_duplicates_total"), 0, `${name}: nothing doubled between nodes`);
  }
  assert.deepEqual([...ann.errors, ...bob.errors], [], "no page errors");
  console.log(
    `e2e: ann moved from ${url1} (#${annOnNode1}) to ${url2} (#${annId}) by a redirect; ` +
      `bob heard her once; ${whispers.length} whispers arrived once each`,
  );
});
