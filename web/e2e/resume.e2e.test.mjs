// End-to-end: a page keeps its player, its room and a pending call across a connection that the
// network kills (issue 14). The demo page reaches the real server through a TCP proxy
// (link_proxy.mjs) that carries its HTTP requests and its WebSocket. The page logs in and joins a
// room; then the proxy holds back what the server sends on the WebSocket, the page makes a call,
// and once the server's answer (and some `state` pushes after it) are held in the proxy, the
// proxy resets both sockets of that connection (no close frame). The page's client must resume
// its `ticksock.v2.json` session on a new TCP connection through the proxy: the pending call
// resolves exactly once with its answer, the player and room are the same with no new login,
// the `state` pushes go on with no tick lost or repeated, the page says it resumed, and the
// server counts one resume.
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
//
// Only loopback addresses are used. Server, proxy and browser are stopped at the end, within
// bounded time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess, tempDbPath, within } from "./support.mjs";
import { LinkProxy } from "./link_proxy.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");

const serverProcess = new ServerProcess(SERVER_BIN, "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)");
const browser = new Browser();
let proxy = null;

after(async () => {
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  await proxy?.stop().catch((e) => console.error("e2e: stopping the proxy:", e));
  await serverProcess.stop().catch((e) => console.error("e2e: stopping the server:", e));
});

/** The server's metrics (`GET /metrics`, straight from the server): name -> value, unlabelled ones. */
async function metrics(addr) {
  const res = await within(5_000, "GET /metrics", fetch(`http://${addr}/metrics`));
  assert.equal(res.status, 200, "GET /metrics");
  const values = new Map();
  for (const line of (await res.text()).split("\n")) {
    const m = line.match(/^(ticksock_[a-z_]+) (\S+)$/);
    if (m) values.set(m[1], Number(m[2]));
  }
  for (const name of ["ticksock_resumes_total", "ticksock_resume_failures_total", "ticksock_ticks_skipped_total"]) {
    assert.ok(values.has(name), `/metrics has ${name}`);
  }
  return values;
}

/**
 * Records, in the page, what the test checks: every route the page's client calls (so a login
 * made again would show), the tick of every `state` push, the client's lifecycle events, and the
 * outcomes of the call held across the kill. Installed before the page logs in.
 */
function instrument(page) {
  return page.evaluate(() => {
    const client = window.ticksockDemo.client;
    const e2e = { routes: [], ticks: [], events: [], held: [] };
    window.e2e = e2e;
    // demo.js calls `client.call(...)` on this object, so its calls go through here too.
    const call = client.call.bind(client);
    client.call = (route, ...rest) => {
      e2e.routes.push(route);
      return call(route, ...rest);
    };
    client.on("state", ({ tick }) => e2e.ticks.push(tick));
    for (const name of ["connected", "disconnected", "session_ended", "closed"]) {
      client.onEvent(name, (payload) => {
        const { welcome, error, ...rest } = payload;
        e2e.events.push({ name, ...rest, conn_id: welcome?.conn_id ?? null });
      });
    }
  });
}

/** Waits in `page` until `fn(arg)` is truthy, with a message that says what did not happen. */
async function pageWait(page, what, fn, arg, ms = 15_000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout: ms })).jsonValue();
  } catch (e) {
    const state = await page
      .evaluate(() => JSON.stringify({ events: window.e2e?.events, link: window.ticksockDemo.link, status: document.getElementById("status").textContent }))
      .catch(() => "(page state unavailable)");
    throw new Error(`timed out after ${ms} ms: ${what}; page: ${state}\n${e.message}`);
  }
}

test("a page keeps its player, room and pending call across a killed connection", { timeout: 120_000 }, async () => {
  const serverAddr = await serverProcess.start(["--listen", "127.0.0.1:0", "--db", tempDbPath()]);
  proxy = new LinkProxy(serverAddr);
  const addr = await proxy.start();

  const ctx = await browser.start();
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.goto(`http://${addr}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
  await instrument(page);

  // The page came through the proxy: its files, and its WebSocket, on version 2.
  const [link] = proxy.webSockets();
  assert.equal(proxy.webSockets().length, 1, "one WebSocket through the proxy");
  assert.ok(link.upgraded, "the proxy saw the upgrade answered");
  const welcome = link.serverJson()[0].json;
  assert.equal(welcome.type, "welcome");
  assert.equal(welcome.version, 2, "the page speaks ticksock.v2.json");
  assert.equal(await page.evaluate(() => window.ticksockDemo.client.welcome.conn_id), welcome.conn_id);

  // Log in and join through the form.
  const room = `resume-${process.pid}`;
  await page.fill("#name", "rosa");
  await page.fill("#room", room);
  await page.click("#join");
  const me = await pageWait(page, "joined the room", (room) => window.ticksockDemo.room === room && window.ticksockDemo.me, room);
  const before = await metrics(serverAddr);
  assert.equal(before.get("ticksock_resumes_total"), 0, "no resume yet");
  // State pushes arrive, with this player in them.
  await pageWait(page, "state pushes before the kill", () => window.e2e.ticks.length >= 10 && window.ticksockDemo.players().length > 0);
  assert.ok(await page.evaluate((me) => window.ticksockDemo.players().some((p) => p.id === me), me), "the player is in the state pushes");

  // The server's bytes stop reaching the page; the page makes a call. Its request goes to the
  // server, whose answer is held in the proxy with the pushes sent after it.
  proxy.hold(link);
  const payload = { held: `across the kill ${process.pid}`, n: 14 };
  await page.evaluate((payload) => {
    // The callback form: every outcome is recorded, so a second one would show.
    window.ticksockDemo.client.call("echo", payload, { timeout: 60_000 }, (err, result) => {
      window.e2e.held.push(err ? { error: { kind: err.kind, message: err.message } } : { result });
    });
  }, payload);
  const isHeldAnswer = (m) => m.json?.type === "reply" && JSON.stringify(m.json.body) === JSON.stringify(payload);
  await proxy.waitFor("the server's answer to the held call, held in the proxy", 15_000, () => link.toClient.some((m) => m.held && isHeldAnswer(m)));
  const heldTicks = () => link.toClient.filter((m) => m.held && m.json?.type === "push" && m.json.topic === "state").map((m) => m.json.body.tick);
  await proxy.waitFor("three state pushes held in the proxy", 15_000, () => heldTicks().length >= 3);
  // The page has neither: the answer is in flight when the connection dies.
  const pendingAtKill = await page.evaluate(() => ({ held: window.e2e.held.length, ticks: window.e2e.ticks.slice(-1)[0] }));
  assert.equal(pendingAtKill.held, 0, "the page has not had the answer before the kill");

  proxy.kill(link);
  const killedTicks = heldTicks();
  assert.ok(killedTicks[0] > pendingAtKill.ticks, `the held pushes (ticks ${killedTicks}) come after the page's last (${pendingAtKill.ticks})`);

  // The page's client sees the link drop, keeps its session, and resumes it on a new TCP
  // connection through the proxy.
  await pageWait(page, "a disconnected event that resumes", () => window.e2e.events.some((e) => e.name === "disconnected"));
  const dropped = await page.evaluate(() => window.e2e.events.find((e) => e.name === "disconnected"));
  assert.equal(dropped.resuming, true, `the page's client resumes: ${JSON.stringify(dropped)}`);
  assert.equal(dropped.failedCalls, 0, "no call failed with the link");
  await pageWait(page, "connected again", () => window.e2e.events.some((e) => e.name === "connected"));
  const back = await page.evaluate(() => window.e2e.events);
  assert.deepEqual(
    back.map((e) => e.name),
    ["disconnected", "connected"],
    `events: ${JSON.stringify(back)}`,
  );
  assert.equal(back[1].resumed, true, `connected says resumed: ${JSON.stringify(back[1])}`);
  assert.equal(back[1].conn_id, welcome.conn_id, "the resumed session is the first one");

  const links = proxy.webSockets();
  assert.equal(links.length, 2, "one new WebSocket, through the proxy");
  const again = links[1];
  assert.notEqual(again, link);
  const firstFromClient = again.clientJson()[0]?.json;
  assert.equal(firstFromClient?.type, "resume", `the new link starts with a resume: ${JSON.stringify(firstFromClient)}`);
  assert.equal(firstFromClient.session, welcome.conn_id, "it resumes the page's session");
  assert.deepEqual(
    again.serverJson().slice(0, 2).map((m) => m.json.type),
    ["welcome", "resumed"],
    "the server answered the resume",
  );

  // The call resolves, once, with its answer.
  await pageWait(page, "the held call's answer", () => window.e2e.held.length > 0);
  // Another call's answer comes after it: by then any second answer to the held call (a replay
  // sent twice) has arrived too, since the server sends a session's frames in order.
  assert.equal(await page.evaluate(() => window.ticksockDemo.client.call("echo", "after")), "after");
  assert.deepEqual(await page.evaluate(() => window.e2e.held), [{ result: payload }], "the held call resolved exactly once, with its answer");
  assert.equal(again.toClient.filter(isHeldAnswer).length, 1, "the server replayed the held answer once on the new link");

  // The same player in the same room, and no second login or join.
  const demo = await page.evaluate(() => ({ me: window.ticksockDemo.me, room: window.ticksockDemo.room, link: window.ticksockDemo.link }));
  assert.deepEqual(demo, { me, room, link: "open" }, "the page keeps its player and room");
  const routes = await page.evaluate(() => window.e2e.routes);
  assert.equal(routes.filter((r) => r === "login").length, 1, `one login: ${routes}`);
  assert.equal(routes.filter((r) => r === "join").length, 1, `one join: ${routes}`);
  const rooms = await page.evaluate(() => window.ticksockDemo.client.call("rooms"));
  assert.deepEqual(
    rooms.find((r) => r.name === room),
    { name: room, players: 1, capacity: 64 },
    "the server has one player in the room: the page's, not a second one",
  );

  // State pushes go on, with this player in them: every tick the proxy held reached the page
  // (replayed), and no tick came twice or went missing, except for tick slots the server itself
  // skipped (a tick that overran on a loaded machine, counted in its metrics).
  const afterKill = killedTicks[killedTicks.length - 1];
  await pageWait(page, "state pushes after the resume", (t) => window.e2e.ticks.filter((x) => x > t).length >= 10, afterKill);
  assert.ok(await page.evaluate((me) => window.ticksockDemo.players().some((p) => p.id === me), me), "the player is in the state pushes after the resume");
  const ticks = await page.evaluate(() => window.e2e.ticks);
  const skipped = (await metrics(serverAddr)).get("ticksock_ticks_skipped_total") - before.get("ticksock_ticks_skipped_total");
  for (const t of killedTicks) assert.equal(ticks.filter((x) => x === t).length, 1, `held tick ${t} reached the page once`);
  let gaps = 0;
  for (let i = 1; i < ticks.length; i++) {
    assert.ok(ticks[i] > ticks[i - 1], `ticks go up: ${ticks[i - 1]} then ${ticks[i]}`);
    gaps += ticks[i] - ticks[i - 1] - 1;
  }
  assert.ok(gaps <= skipped, `${gaps} ticks missing between ${ticks[0]} and ${ticks[ticks.length - 1]}, the server skipped ${skipped}`);

  // The page shows it resumed: no notice over the arena, the status says so, and so does its log.
  await page.waitForSelector("#offline", { state: "hidden", timeout: 5_000 });
  assert.match(await page.textContent("#status"), /^resumed/);
  assert.match(await page.textContent("#log"), /session resumed/);
  assert.doesNotMatch(await page.textContent("#log"), /reconnected to/, "the page did not join again");

  // The server counts exactly one resume, and no refused one.
  const end = await metrics(serverAddr);
  assert.equal(end.get("ticksock_resumes_total"), 1, "ticksock_resumes_total");
  assert.equal(end.get("ticksock_resume_failures_total"), 0, "ticksock_resume_failures_total");

  for (const l of proxy.links) {
    assert.equal(l.fromClient.error, null, `link ${l.n}: client bytes read as WebSocket frames`);
    assert.equal(l.fromServer.error, null, `link ${l.n}: server bytes read as WebSocket frames`);
  }
  // A killed connection may be logged by the browser as a failed WebSocket; nothing else may fail.
  const unexpected = errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(unexpected, [], "no page errors");
  console.log(
    `e2e: resumed session ${welcome.conn_id} through the proxy; held ticks ${killedTicks.join(",")} replayed; ` +
      `${ticks.length} ticks ${ticks[0]}..${ticks[ticks.length - 1]}, server skipped ${skipped}`,
  );
});
