// End-to-end: the real server binary serves the demo page; two headless Chromium pages join the
// same room, each labels the other by name (from the join reply's roster, or presence) before
// anyone chats, one moves and the other sees it, labels stay inside the arena at its walls, one
// calls routes and gets the right data, chat goes across, the world greys out behind a
// "disconnected" notice while the server is down, both reconnect when it restarts, and
// screenshots of each state go to web/e2e-artifacts/.
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
//
// Only loopback addresses are used. Server and browser are stopped at the end, within bounded time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess, tempDbPath, within, screenshot } from "./support.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");

const serverProcess = new ServerProcess(SERVER_BIN, "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)");
const browser = new Browser();

/** Starts the server (by default on a free loopback port); resolves with its "host:port". */
// One database for both runs of the server (a restart keeps the accounts), in a temporary directory.
const db = tempDbPath();
const startServer = (listen = "127.0.0.1:0") => serverProcess.start(["--listen", listen, "--db", db]);
const stopServer = () => serverProcess.stop();
const startBrowser = () => browser.start();
const stopBrowser = () => browser.stop();

after(async () => {
  await stopBrowser().catch((e) => console.error("e2e: stopping the browser:", e));
  await stopServer().catch((e) => console.error("e2e: stopping the server:", e));
});

// ----- helpers ---------------------------------------------------------------------------

/** Opens the demo page and collects its errors. */
async function openPage(page, addr, label) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`${label}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${label} console: ${m.text()}`);
  });
  await page.goto(`http://${addr}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
  return errors;
}

/** Logs in as `name` and joins `room` through the form; resolves with the player id. */
async function joinAs(page, name, room) {
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join");
  await page.waitForFunction((room) => window.ticksockDemo.room === room && window.ticksockDemo.me !== null, room, { timeout: 10_000 });
  return page.evaluate(() => window.ticksockDemo.me);
}

/** Resolves once `page` draws a label `text` for player `id`, whole inside the arena; returns it. */
async function labelOf(page, id, text) {
  const handle = await page.waitForFunction(
    ({ id, text }) => {
      const d = window.ticksockDemo;
      const l = d.labels.find((l) => l.id === id && l.text === text);
      const inside = l && l.left >= 0 && l.top >= 0 && l.right <= d.arenaPx && l.bottom <= d.arenaPx;
      return inside ? { ...l, arenaPx: d.arenaPx } : null;
    },
    { id, text },
    { timeout: 5_000 },
  );
  return handle.jsonValue();
}

/** How many pixels of `page`'s canvas are clearly coloured (players live), not grey. */
function colouredPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById("arena");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
    }
    return n;
  });
}

/** Player `id`'s position as `page` last saw it in a state push, or null. */
function seenPosition(page, id) {
  return page.evaluate((id) => window.ticksockDemo.players().find((p) => p.id === id) ?? null, id);
}

// ----- the test --------------------------------------------------------------------------

test("two browsers play in one room through the server's own demo page", { timeout: 120_000 }, async () => {
  const addr = await startServer();
  assert.match(addr, /^127\.0\.0\.1:\d+$/);

  // The binary embeds web/ at build time: make sure it embeds these files, not older ones.
  for (const [path, file] of [
    ["/", "demo/index.html"],
    ["/demo.js", "demo/demo.js"],
    ["/ticksock.js", "dist/ticksock.js"],
  ]) {
    const res = await within(5_000, `GET ${path}`, fetch(`http://${addr}${path}`));
    assert.equal(res.status, 200, `GET ${path}`);
    const body = await res.text();
    assert.ok(
      body === readFileSync(join(WEB, file), "utf8"),
      `GET ${path} differs from web/${file}: the server binary is stale; rebuild it (cargo build --release -p ticksock-arena)`,
    );
  }

  const ctx = await startBrowser();
  const alice = ctx.pages()[0] ?? (await ctx.newPage());
  const bob = await ctx.newPage();
  // Page errors and console errors, collected until the end.
  const errors = [await openPage(alice, addr, "alice"), await openPage(bob, addr, "bob")];

  const room = `e2e-${process.pid}`;
  const aliceId = await joinAs(alice, "alice", room);
  const bobId = await joinAs(bob, "bob", room);
  assert.notEqual(aliceId, bobId);

  // Each sees the other in the room's state pushes.
  await bob.waitForFunction((id) => window.ticksockDemo.players().some((p) => p.id === id), aliceId, { timeout: 5_000 });
  await alice.waitForFunction((id) => window.ticksockDemo.players().some((p) => p.id === id), bobId, { timeout: 5_000 });
  // Each labels the other by name before anyone has chatted: bob, who came second, knows alice
  // from the join reply's roster; alice knows bob from his presence push.
  await labelOf(bob, aliceId, "alice");
  await labelOf(alice, bobId, "bob");
  await labelOf(bob, bobId, "bob (you)");
  assert.equal(await bob.evaluate((id) => window.ticksockDemo.names.get(id), aliceId), "alice", "alice is in bob's roster");
  assert.doesNotMatch(await bob.textContent("#log"), /alice:/, "alice has not chatted yet");
  // A third player, carol (a bare client in alice's page), comes and goes: both pages label her
  // from her presence push, and drop her, name and dot, when she leaves.
  const carolId = await alice.evaluate(async (room) => {
    const { TicksockClient } = await import("/ticksock.js");
    window.carol = new TicksockClient(`ws://${location.host}/`);
    const { player_id } = await window.carol.call("login", { name: "carol" });
    await window.carol.call("join", { room });
    return player_id;
  }, room);
  for (const page of [alice, bob]) await labelOf(page, carolId, "carol");
  await alice.evaluate(() => window.carol.call("leave"));
  for (const page of [alice, bob]) {
    await page.waitForFunction(
      (id) => {
        const d = window.ticksockDemo;
        return !d.names.has(id) && !d.players().some((p) => p.id === id) && !d.labels.some((l) => l.id === id);
      },
      carolId,
      { timeout: 5_000 },
    );
  }
  await alice.evaluate(() => window.carol.close());
  const welcome = await alice.evaluate(() => window.ticksockDemo.client.welcome);
  assert.equal(welcome.version, 2, "the page speaks ticksock.v2.json");
  assert.ok(welcome.tick_hz > 0);

  // Alice moves with the arrow keys; Bob sees her move.
  const start = await seenPosition(bob, aliceId);
  assert.ok(start, "bob sees alice");
  const key = start.x < 500 ? "ArrowRight" : "ArrowLeft";
  const sign = key === "ArrowRight" ? 1 : -1;
  await alice.focus("#arena");
  await alice.keyboard.down(key);
  await alice.waitForFunction(({ id, x0, sign }) => {
    const p = window.ticksockDemo.players().find((p) => p.id === id);
    return p && (p.x - x0) * sign >= 40;
  }, { id: aliceId, x0: start.x, sign }, { timeout: 5_000 });
  await alice.keyboard.up(key);
  await bob.waitForFunction(({ id, x0, sign }) => {
    const p = window.ticksockDemo.players().find((p) => p.id === id);
    return p && (p.x - x0) * sign >= 40;
  }, { id: aliceId, x0: start.x, sign }, { timeout: 5_000 });
  // She stops when the key goes up: two pushes a few ticks apart agree (and they are two
  // different pushes: bob's tick went on, so "the same position" is not a frozen page).
  await alice.waitForTimeout(300);
  const tick1 = await bob.evaluate(() => window.ticksockDemo.cur.tick);
  const stopped1 = await seenPosition(bob, aliceId);
  await alice.waitForTimeout(300);
  const tick2 = await bob.evaluate(() => window.ticksockDemo.cur.tick);
  const stopped2 = await seenPosition(bob, aliceId);
  assert.ok(tick2 > tick1, `bob keeps receiving state pushes (tick ${tick1} then ${tick2})`);
  assert.deepEqual(stopped2, stopped1, "alice stopped after keyup");
  assert.equal(stopped1.y, start.y, "a horizontal move keeps y");
  assert.ok((stopped1.x - start.x) * sign >= 40, `bob saw alice move from x=${start.x} to x=${stopped1.x}`);
  // Both pages agree on where she stopped, and bob, who did not press a key, did not move.
  assert.deepEqual(await seenPosition(alice, aliceId), stopped1, "alice's own view of herself matches bob's");
  assert.deepEqual(await seenPosition(alice, bobId), await seenPosition(bob, bobId), "both pages see bob in one place");

  // Alice walks into a top corner (the nearer one): her labels stay whole inside the arena
  // there, below her dot rather than above the top wall, and slid inwards from the side wall,
  // on her page and on bob's.
  const here = await seenPosition(alice, aliceId);
  const corner = { x: here.x < 500 ? 0 : 999, y: 0 };
  const keys = [corner.x === 0 ? "ArrowLeft" : "ArrowRight", "ArrowUp"];
  await alice.focus("#arena");
  for (const k of keys) await alice.keyboard.down(k);
  await bob.waitForFunction(
    ({ id, corner }) => {
      const p = window.ticksockDemo.players().find((p) => p.id === id);
      return p && p.x === corner.x && p.y === corner.y;
    },
    { id: aliceId, corner },
    { timeout: 15_000 },
  );
  for (const k of keys) await alice.keyboard.up(k);
  await alice.waitForFunction(
    ({ id, corner }) => {
      const p = window.ticksockDemo.players().find((p) => p.id === id);
      return p && p.x === corner.x && p.y === corner.y;
    },
    { id: aliceId, corner },
    { timeout: 5_000 },
  );
  for (const [page, text] of [[bob, "alice"], [alice, "alice (you)"]]) {
    const label = await labelOf(page, aliceId, text);
    // At the wall the label touches the arena's edge along x: it was slid in, not cut off.
    const atSide = corner.x === 0 ? label.left === 0 : Math.abs(label.right - label.arenaPx) < 0.5;
    assert.ok(atSide, `${text}: label slid inside at the side wall: ${JSON.stringify(label)}`);
    assert.ok(label.top > 0, `${text}: label below the dot at the top wall: ${JSON.stringify(label)}`);
  }

  // A call's Promise resolves with the right data.
  assert.equal(await alice.evaluate(() => window.ticksockDemo.client.call("echo", 1) instanceof Promise), true);
  const payload = { hello: ["world", 1, true, null], n: 3.5, nested: { ok: "é😀" } };
  const echoed = await alice.evaluate((p) => window.ticksockDemo.client.call("echo", p), payload);
  assert.deepEqual(echoed, payload);
  const rooms = await alice.evaluate(() => window.ticksockDemo.client.call("rooms"));
  const ours = rooms.find((r) => r.name === room);
  assert.deepEqual(ours, { name: room, players: 2, capacity: 64 });
  assert.ok(rooms.some((r) => r.name === "lobby"));
  // The callback form, and an error reply with its code.
  const viaCallback = await bob.evaluate(
    () => new Promise((resolve) => window.ticksockDemo.client.call("rooms", null, (err, r) => resolve({ err: err && err.message, n: r && r.length }))),
  );
  assert.equal(viaCallback.err, null);
  assert.ok(viaCallback.n >= 2);
  const failed = await bob.evaluate(() =>
    window.ticksockDemo.client.call("no-such-route", {}).then(
      () => null,
      (e) => ({ name: e.name, kind: e.kind, code: e.code }),
    ),
  );
  assert.deepEqual(failed, { name: "ReplyError", kind: "reply", code: 1 });

  // Chat: alice says something, bob's log shows it.
  await alice.fill("#say", "hello from alice");
  await alice.press("#say", "Enter");
  await bob.waitForFunction(() => document.getElementById("log").textContent.includes("alice: hello from alice"), null, { timeout: 5_000 });
  // Bob came in second: alice got his presence push.
  assert.match(await alice.textContent("#log"), /bob joined/);

  // The panel shows the round trip and the tick rate it measures.
  await bob.waitForFunction(() => /seen \d/.test(document.getElementById("tickrate").textContent) && /ms/.test(document.getElementById("rtt").textContent), null, { timeout: 5_000 });
  const tickrate = await bob.textContent("#tickrate");
  const rtt = await bob.textContent("#rtt");
  const seenHz = Number(tickrate.match(/seen ([\d.]+) Hz/)[1]);
  assert.match(tickrate, new RegExp(`server ${welcome.tick_hz} Hz`));
  assert.ok(seenHz > welcome.tick_hz * 0.5 && seenHz < welcome.tick_hz * 1.5, `observed ${seenHz} Hz vs ${welcome.tick_hz} Hz`);
  console.log(`e2e: bob's panel: round trip ${rtt}; tick rate ${tickrate}`);

  // The canvas is drawn: some pixels are bright (players), most are dark (background).
  const drawn = await bob.evaluate(() => {
    const c = document.getElementById("arena");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let bright = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 400) bright++;
    return { bright, total: d.length / 4 };
  });
  assert.ok(drawn.bright > 50 && drawn.bright < drawn.total / 4, `canvas pixels: ${JSON.stringify(drawn)}`);

  for (const [page, file] of [[bob, "arena-bob.png"], [alice, "arena-alice.png"]]) await screenshot(page, file);
  assert.ok(await bob.isHidden("#offline"), "no disconnected notice while connected");
  assert.ok((await colouredPixels(bob)) > 50, "the live world is in colour");

  // The server stops: the pages say so over a grey world, with what happens next, instead of
  // showing a world that looks alive but is frozen.
  await stopServer(); // graceful: close 1001 to both pages
  for (const page of [alice, bob]) {
    await page.waitForSelector("#offline", { state: "visible", timeout: 5_000 });
    await page.waitForFunction(() => /Reconnecting/.test(document.getElementById("offline-next").textContent), null, { timeout: 5_000 });
  }
  assert.equal(await bob.evaluate(() => window.ticksockDemo.client.connected), false);
  assert.equal(await bob.textContent("#offline-title"), "Disconnected");
  assert.match(await bob.textContent("#offline-detail"), /going away/);
  assert.ok(await bob.isVisible("#reconnect"), "a button to reconnect at once");
  await bob.waitForFunction(() => window.ticksockDemo.link === "down", null, { timeout: 5_000 });
  await bob.waitForTimeout(100); // a frame or two drawn in the down state
  assert.equal(await colouredPixels(bob), 0, "the stale world is grey");
  await screenshot(bob, "arena-disconnected.png");

  // It comes back: the pages reconnect, log in and join again, and the notice goes. Alice waits
  // for her next attempt; bob presses "Reconnect now" while his next attempt is still over a
  // second away, and is back before it was due.
  await bob.waitForFunction(() => window.ticksockDemo.retryAt !== null && window.ticksockDemo.retryAt - performance.now() > 1000, null, {
    timeout: 15_000,
  });
  const again = await startServer(addr);
  assert.equal(again, addr);
  const due = await bob.evaluate(() => window.ticksockDemo.retryAt);
  await bob.click("#reconnect");
  await bob.waitForFunction(() => window.ticksockDemo.client.connected, null, { timeout: 5_000 });
  const backAt = await bob.evaluate(() => performance.now());
  assert.ok(backAt < due, `bob reconnected at once (${backAt.toFixed(0)} ms), not at his next attempt (${due.toFixed(0)} ms)`);
  for (const page of [alice, bob]) {
    await page.waitForFunction(
      (room) => window.ticksockDemo.client.connected && window.ticksockDemo.room === room && window.ticksockDemo.client.stats.connections >= 2,
      room,
      { timeout: 15_000 },
    );
  }
  // A restarted server has no session to resume (ticksock.v2 refuses it: `restarted`): each
  // page logged in and joined again on the new session.
  for (const page of [alice, bob]) {
    await page.waitForFunction((room) => document.getElementById("log").textContent.includes(`reconnected to ${room}`), room, { timeout: 5_000 });
  }
  const aliceIdNow = await alice.evaluate(() => window.ticksockDemo.me);
  await bob.waitForFunction((id) => window.ticksockDemo.players().some((p) => p.id === id), aliceIdNow, { timeout: 5_000 });
  for (const page of [alice, bob]) await page.waitForSelector("#offline", { state: "hidden", timeout: 5_000 });
  await labelOf(bob, aliceIdNow, "alice");
  assert.ok((await colouredPixels(bob)) > 50, "the world is in colour again");
  await screenshot(bob, "arena-reconnected.png");
  assert.deepEqual(await alice.evaluate(() => window.ticksockDemo.client.call("echo", "after restart")), "after restart");

  // Page errors: the failed reconnect attempts while the server was down are expected.
  const unexpected = errors.flat().filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(unexpected, [], "no page errors");
  await stopBrowser();
  await stopServer();
});
