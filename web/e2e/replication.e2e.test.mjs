// End-to-end: the demo page against a server with state by replication (PROTOCOL.md 8.9, 14):
// `--replication --replica-digests --state-every 2`. The page joins a room; three players of the
// TS client in a Node process (replica_bots.mjs) join it and walk: two to the page's own cell
// (one of them then patrols to and fro), one to the far corner. The page's view (its mirror)
// holds the near ones and not the far one, and says so in its panel; its digest equals the
// server's `replica_digest` of the same tick, read exactly from the reply frame's text; its
// acknowledgements are accepted; and the patrolling player is drawn between the positions of two
// updates (interpolated), not only at them. A screenshot goes to web/e2e-artifacts/.
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
//
// Only loopback addresses are used. Server, bots and browser are stopped at the end, within bounded time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess, tempDbPath, within, screenshot } from "./support.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");
/** The server's interest rule (its defaults, PROTOCOL.md 8.9): 100-unit cells, one cell around. */
const AOI_CELL = 100;

const serverProcess = new ServerProcess(SERVER_BIN, "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)");
const browser = new Browser();
let bots = null;

after(async () => {
  await stopBots().catch((e) => console.error("e2e: stopping the bots:", e));
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  await serverProcess.stop().catch((e) => console.error("e2e: stopping the server:", e));
});

// ----- the bots ----------------------------------------------------------------------------

/**
 * Forks replica_bots.mjs (with Node 20's flag for a global WebSocket, where it is needed) and
 * starts `specs` there; resolves with the process. Its messages are collected in `bots.messages`.
 */
function startBots(url, room, specs) {
  const execArgv = typeof globalThis.WebSocket === "function" ? [] : ["--experimental-websocket"];
  const child = fork(join(HERE, "replica_bots.mjs"), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  process.on("exit", () => child.kill("SIGKILL"));
  bots = { child, messages: [] };
  child.on("message", (m) => bots.messages.push(m));
  child.send({ type: "start", url, room, bots: specs });
  return bots;
}

/** Waits until the bots sent a message for which `pick` returns something; returns it. */
async function botMessage(what, pick, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const errors = bots.messages.filter((m) => m.type === "error");
    assert.deepEqual(errors, [], "the bots had no errors");
    const found = pick(bots.messages);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}; the bots said ${JSON.stringify(bots.messages)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopBots() {
  const b = bots;
  bots = null;
  if (!b || b.child.exitCode !== null) return;
  const exited = new Promise((resolve) => b.child.once("exit", resolve));
  if (b.child.connected) b.child.send({ type: "stop" });
  try {
    await within(5_000, "the bots' exit", exited);
  } catch {
    b.child.kill("SIGKILL");
  }
}

// ----- the page ----------------------------------------------------------------------------

/**
 * Records the text of every frame `page`'s WebSockets send and receive: the digest of
 * `replica_digest` is a u64, which JSON.parse in the page rounds to 53 bits; its text is exact.
 */
function recordFrames(page) {
  const frames = { sent: [], received: [] };
  page.on("websocket", (ws) => {
    ws.on("framesent", ({ payload }) => frames.sent.push(String(payload)));
    ws.on("framereceived", ({ payload }) => frames.received.push(String(payload)));
  });
  return frames;
}

/** The page's view as its players: [{id, x, y}], sorted by id. */
function viewOf(page) {
  return page.evaluate(() => window.ticksockDemo.players().sort((a, b) => a.id - b.id));
}

/**
 * Asks the server for the digest of the view it last sent the page (`replica_digest`), and the
 * page's mirror for the digest of its view of that tick, at the moment the answer arrives (after
 * the updates sent before it, before any later one). Returns {tick, page, server} as decimal
 * strings; null while the server has sent no update yet.
 */
async function digests(page, frames) {
  const asked = await page.evaluate(async () => {
    const d = window.ticksockDemo;
    const reply = await d.client.call("replica_digest");
    if (reply === null) return null;
    const tick = reply[0];
    return { tick, page: d.replica.mirror.digest(tick)?.toString() ?? null, held: d.replica.mirror.heldTicks };
  });
  if (asked === null) return null;
  const ids = frames.sent.map((f) => JSON.parse(f)).filter((f) => f.route === "replica_digest").map((f) => f.id);
  const id = ids.at(-1);
  const text = frames.received.find((f) => new RegExp(`"id":${id}[,}]`).test(f) && f.includes('"type":"reply"'));
  const m = text?.match(/"body":\[(\d+),(\d+)\]/);
  assert.ok(m, `the reply to replica_digest (id ${id}) in the frames received: ${text}`);
  assert.equal(Number(m[1]), asked.tick);
  return { tick: asked.tick, page: asked.page, server: m[2], held: asked.held };
}

// ----- the test ----------------------------------------------------------------------------

test("the demo page draws the players in view from replication: near ones in, far one out, digest equal to the server's, interpolated", { timeout: 120_000 }, async () => {
  const db = tempDbPath("replication");
  const addr = await serverProcess.start(["--listen", "127.0.0.1:0", "--db", db, "--replication", "--replica-digests", "--state-every", "2"]);
  // The binary embeds web/ at build time: make sure it embeds these files, not older ones.
  for (const [path, file] of [
    ["/demo.js", "demo/demo.js"],
    ["/ticksock.js", "dist/ticksock.js"],
  ]) {
    const res = await within(5_000, `GET ${path}`, fetch(`http://${addr}${path}`));
    assert.ok(
      (await res.text()) === readFileSync(join(WEB, file), "utf8"),
      `GET ${path} differs from web/${file}: the server binary is stale; rebuild it (cargo build --release -p ticksock-arena)`,
    );
  }

  const ctx = await browser.start();
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`console ${m.type()}: ${m.text()}`);
  });
  const frames = recordFrames(page);
  await page.goto(`http://${addr}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });

  // The page plays: it joins, and its first update (a full snapshot) shows it itself.
  const room = `repl-${process.pid}`;
  await page.fill("#name", "watcher");
  await page.fill("#room", room);
  await page.click("#join");
  await page.waitForFunction(() => window.ticksockDemo.me !== null && window.ticksockDemo.replicating, null, { timeout: 10_000 });
  const me = await page.evaluate(() => window.ticksockDemo.me);
  const [mine] = (await viewOf(page)).filter((p) => p.id === me);
  assert.ok(mine, "the page's own player is in its view");
  await page.waitForFunction((me) => window.ticksockDemo.drawn?.players.some((p) => p.id === me), me, { timeout: 5_000 });

  // Targets: two in the page's own cell, and the corner farthest from it, 4 cells away or more.
  const cell = { x: Math.floor(mine.x / AOI_CELL) * AOI_CELL, y: Math.floor(mine.y / AOI_CELL) * AOI_CELL };
  const far = { x: mine.x < 500 ? 950 : 50, y: mine.y < 500 ? 950 : 50 };
  startBots(`ws://${addr}/`, room, [
    { name: "near-still", target: { x: cell.x + 50, y: cell.y + 25 } },
    { name: "near-patrol", target: { x: cell.x + 50, y: cell.y + 75 }, patrol: 45 },
    { name: "far", target: far },
  ]);
  const ids = {};
  for (const name of ["near-still", "near-patrol", "far"]) {
    const arrived = await botMessage(`${name} arrives`, (ms) => ms.find((m) => m.type === "arrived" && m.name === name), 30_000);
    ids[name] = arrived.playerId;
  }

  // The page's view: itself and the near ones, not the far one (which may have crossed the view
  // on its way: it must have left it).
  const expected = [me, ids["near-still"], ids["near-patrol"]].sort((a, b) => a - b);
  await page.waitForFunction(
    (expected) => JSON.stringify(window.ticksockDemo.players().map((p) => p.id).sort((a, b) => a - b)) === JSON.stringify(expected),
    expected,
    { timeout: 10_000 },
  ).catch(async () => assert.fail(`the page's view ${JSON.stringify(await viewOf(page))}, expected the players ${expected} (far: ${ids.far})`));
  const view = await viewOf(page);
  assert.ok(!view.some((p) => p.id === ids.far), "the far player is not in view");
  for (const p of view) {
    assert.ok(Math.abs(Math.floor(p.x / AOI_CELL) - Math.floor(mine.x / AOI_CELL)) <= 1, `player ${p.id} at x ${p.x} is within a cell`);
    assert.ok(Math.abs(Math.floor(p.y / AOI_CELL) - Math.floor(mine.y / AOI_CELL)) <= 1, `player ${p.id} at y ${p.y} is within a cell`);
  }
  // The panel says how many are in view; the names come from the view itself.
  await page.waitForFunction((room) => document.getElementById("count").textContent === `3 in view in ${room}`, room, { timeout: 2_000 });
  assert.equal(await page.evaluate((id) => window.ticksockDemo.names.get(id), ids["near-patrol"]), "near-patrol");

  // Its digest equals the server's for the same tick, while the patrol moves (new updates keep
  // coming): several times, each from the exact digits of the reply.
  let compared = 0;
  for (let round = 0; round < 20 && compared < 5; round++) {
    const d = await digests(page, frames);
    if (d === null) continue;
    assert.equal(d.page, d.server, `tick ${d.tick}: the page's digest (views held: ${d.held}) equals the server's`);
    compared++;
    await page.waitForTimeout(150);
  }
  assert.equal(compared, 5, "five digests compared");

  // Interpolated: over a second of frames, the patrolling player is drawn between the positions
  // of the two updates around the frame's render tick, not only at them.
  const seen = await page.evaluate(async (id) => {
    const d = window.ticksockDemo;
    const updates = [];
    const record = ({ tick }) => {
      const p = d.players().find((p) => p.id === id);
      if (p) updates.push({ tick, x: p.x, y: p.y });
    };
    const off = d.replica.onChange(record);
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    await wait(400);
    const drawn = [];
    const until = performance.now() + 1000;
    await new Promise((done) => {
      const frame = () => {
        const f = d.drawn;
        const p = f?.players.find((p) => p.id === id);
        if (p) drawn.push({ tick: f.tick, x: p.x, y: p.y });
        if (performance.now() < until) requestAnimationFrame(frame);
        else done();
      };
      requestAnimationFrame(frame);
    });
    await wait(400);
    off();
    return { updates, drawn };
  }, ids["near-patrol"]);
  assert.ok(seen.updates.length >= 10, `updates of the patrol in 1.8 s at 15 a second: ${seen.updates.length}`);
  let between = 0;
  for (const f of seen.drawn) {
    const i = seen.updates.findLastIndex((u) => u.tick <= f.tick);
    const [a, b] = [seen.updates[i], seen.updates[i + 1]];
    if (!a || !b || a.x === b.x || f.tick === a.tick) continue;
    const lerp = a.x + ((b.x - a.x) * (f.tick - a.tick)) / (b.tick - a.tick);
    assert.ok(Math.abs(f.x - lerp) < 1e-6, `frame at tick ${f.tick}: drawn x ${f.x}, between ${a.x} (tick ${a.tick}) and ${b.x} (tick ${b.tick}) is ${lerp}`);
    if (f.x !== a.x && f.x !== b.x) between++;
  }
  assert.ok(between >= 5, `frames drawn strictly between two updates' positions: ${between} of ${seen.drawn.length}`);

  // It acknowledged, and the server accepted: its updates are deltas, not snapshots every time.
  const stats = await page.evaluate(() => window.ticksockDemo.replica.stats);
  assert.ok(stats.accepted > 0, `acknowledgements accepted: ${JSON.stringify(stats)}`);
  assert.equal(stats.refused, 0, `no update refused: ${JSON.stringify(stats)}`);
  assert.ok(stats.updates > 4 * stats.fullSnapshots, `mostly deltas: ${JSON.stringify(stats)}`);
  assert.equal(frames.received.filter((f) => f.includes('"topic":"state"')).length, 0, "no state push from a replicating server");

  await screenshot(page, "replication.png");
  assert.deepEqual(errors, [], "no page errors or warnings");
});
