// End-to-end: accounts in the demo page (PROTOCOL.md 8.8, 13). In headless Chromium against the
// real server, with a database in a temporary directory: register in the page and see the
// account's name; move, and see the account's totals and its place on the leaderboard; reload:
// still signed in, by the token the upgrade carried (no `auth`, no `login` sent), and
// `flush_stats` answers; a guest keeps its name across a reload, and comes back by its device
// token after signing out; a tampered token in localStorage is refused (close 4003): the page
// says so, shows the account panel again, and plays anonymous (a `login` by name).
//
//   TICKSOCK_SERVER_BIN  the server binary (default ../target/release/ticksock-arena, from web/)
//   CHROMIUM_BIN         the browser (default /usr/bin/chromium, Debian's package)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess, tempDbPath, within } from "./support.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_BIN = resolve(WEB, process.env.TICKSOCK_SERVER_BIN ?? "../target/release/ticksock-arena");

const serverProcess = new ServerProcess(SERVER_BIN, "run `cargo build --release -p ticksock-arena` (or set TICKSOCK_SERVER_BIN)");
const browser = new Browser();

after(async () => {
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  await serverProcess.stop().catch((e) => console.error("e2e: stopping the server:", e));
});

/**
 * Watches the page's WebSockets: each one's URL, and the requests it sent (parsed JSON frames
 * with a `route`), for as long as the page lives. `sockets` is in order of opening.
 */
function watchSockets(page) {
  const sockets = [];
  page.on("websocket", (ws) => {
    const socket = { url: ws.url(), sent: [] };
    sockets.push(socket);
    ws.on("framesent", ({ payload }) => {
      try {
        const f = JSON.parse(String(payload));
        if (typeof f.route === "string") socket.sent.push(f);
      } catch {
        // Not a JSON frame: none is expected on ticksock.v2.json.
      }
    });
  });
  return sockets;
}

/** The `token` query parameter of a WebSocket URL, as written there (null: none). */
function tokenIn(url) {
  const part = new URL(url).search.slice(1).split("&").find((p) => p.startsWith("token="));
  return part === undefined ? null : part.slice("token=".length);
}

/** The routes of the requests the page sent on all its sockets since `from` (an index into `sockets`). */
function routesSent(sockets, from = 0) {
  return sockets.slice(from).flatMap((s) => s.sent.map((f) => f.route));
}

/** (Re)loads the page and waits until its client is connected. */
async function load(page, addr, reload = false) {
  if (reload) await page.reload({ timeout: 15_000 });
  else await page.goto(`http://${addr}/`, { timeout: 15_000 });
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
}

/** What the page says of the account: the name shown, its state, and whether the form is shown. */
function accountShown(page) {
  return page.evaluate(() => ({
    name: document.getElementById("account-who").hidden ? null : document.getElementById("account-name").textContent,
    state: document.getElementById("account-state").textContent,
    form: !document.getElementById("account-form").hidden,
    notice: document.getElementById("account-notice").textContent,
  }));
}

/** Waits until the page shows `name` signed in and the server has answered as the account (`flush_stats`). */
async function signedInAs(page, name) {
  await page.waitForFunction(
    (name) => {
      const d = window.ticksockDemo;
      return d.account?.name === name && d.account.confirmed && d.stats !== null && document.getElementById("account-name").textContent === name;
    },
    name,
    { timeout: 10_000 },
  );
}

/** The saved session in the page's localStorage, parsed (null: none). */
function savedSession(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("ticksock.session") ?? "null"));
}

/** Joins `room` through the Play form; resolves with the player id. */
async function joinRoom(page, room) {
  await page.fill("#room", room);
  await page.click("#join");
  await page.waitForFunction((room) => window.ticksockDemo.room === room && window.ticksockDemo.me !== null, room, { timeout: 10_000 });
  return page.evaluate(() => window.ticksockDemo.me);
}

test("the demo page registers, stays signed in across a reload by its token, ranks the account, keeps a guest, and refuses a tampered token", { timeout: 120_000 }, async () => {
  const addr = await serverProcess.start(["--listen", "127.0.0.1:0", "--db", tempDbPath()]);
  // The binary embeds web/ at build time: make sure it embeds these files, not older ones.
  for (const [path, file] of [
    ["/", "demo/index.html"],
    ["/demo.js", "demo/demo.js"],
    ["/ticksock.js", "dist/ticksock.js"],
  ]) {
    const body = await within(5_000, `GET ${path}`, fetch(`http://${addr}${path}`).then((r) => r.text()));
    assert.ok(body === readFileSync(join(WEB, file), "utf8"), `GET ${path} differs from web/${file}: rebuild the server (cargo build --release -p ticksock-arena)`);
  }

  const ctx = await browser.start();
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  const sockets = watchSockets(page);
  await load(page, addr);
  assert.deepEqual(await accountShown(page), { name: null, state: "", form: true, notice: "" }, "a first visit: the account panel");
  assert.equal(tokenIn(sockets[0].url), null, "a first visit offers no token");

  // ----- register, and see the account's name ------------------------------------------
  const name = "ann-e2e";
  await page.fill("#account-user", name);
  await page.fill("#account-password", "correct horse");
  await page.click("#register");
  await signedInAs(page, name);
  assert.deepEqual(routesSent(sockets).filter((r) => ["register", "auth", "login"].includes(r)), ["register", "auth"], "registered, then signed in by auth: no login");
  const session = await savedSession(page);
  assert.equal(session.name, name);
  assert.equal(await page.evaluate(() => window.ticksockDemo.client.token), session.token, "the client holds the saved token");
  assert.equal(await page.inputValue("#name"), name, "the Play form plays as the account");
  assert.equal(await page.isDisabled("#name"), true);

  // ----- move; the totals and the leaderboard show it ------------------------------------
  const room = `acc-${process.pid}`;
  const me = await joinRoom(page, room);
  assert.equal(await page.evaluate(() => window.ticksockDemo.names.get(window.ticksockDemo.me)), name, "the roster names the account");
  const start = await page.evaluate((id) => window.ticksockDemo.players().find((p) => p.id === id), me);
  const key = start.x < 500 ? "ArrowRight" : "ArrowLeft";
  await page.focus("#arena");
  await page.keyboard.down(key);
  await page.waitForFunction(({ id, x0 }) => Math.abs(window.ticksockDemo.players().find((p) => p.id === id).x - x0) >= 50, { id: me, x0: start.x }, { timeout: 5_000 });
  await page.keyboard.up(key);
  // The board refreshes by itself every few seconds; "refresh" asks now. Its flush_stats saves
  // the account's totals first, so the board has them.
  await page.click("#lb-refresh");
  await page.waitForFunction(
    (name) => [...document.querySelectorAll("#lb-list li.me")].some((li) => li.firstChild.textContent === name && Number(li.querySelector(".v").textContent) >= 50),
    name,
    { timeout: 10_000 },
  );
  const totals = await page.evaluate(() => window.ticksockDemo.stats);
  assert.ok(totals.distance >= 50 && totals.games === 1, `the account's totals: ${JSON.stringify(totals)}`);
  assert.equal(Number(await page.textContent("#stat-distance")), totals.distance, "the panel shows them");
  await page.click('#lb-by [data-by="games"]');
  await page.waitForFunction((name) => [...document.querySelectorAll("#lb-list li")].some((li) => li.firstChild.textContent === name && li.querySelector(".v").textContent === "1"), name, { timeout: 5_000 });

  // ----- reload: still signed in by the token the upgrade carried ------------------------
  let from = sockets.length;
  await load(page, addr, true);
  await signedInAs(page, name);
  assert.equal(tokenIn(sockets[from].url), session.token, "the upgrade offered the saved token");
  assert.deepEqual(routesSent(sockets, from).filter((r) => r === "auth" || r === "login"), [], "signed in without auth or login");
  const flushed = await page.evaluate(() => window.ticksockDemo.client.call("flush_stats"));
  assert.ok(flushed.distance >= totals.distance && flushed.games === 1, `flush_stats after the reload: ${JSON.stringify(flushed)}`);
  await joinRoom(page, room);
  assert.equal(await page.evaluate(() => window.ticksockDemo.names.get(window.ticksockDemo.me)), name, "in the room as the account again");

  // ----- a guest keeps its name across a reload, and comes back after signing out --------
  await page.click("#signout");
  await page.waitForFunction(() => window.ticksockDemo.client.connected && window.ticksockDemo.account === null, null, { timeout: 10_000 });
  assert.equal(await savedSession(page), null, "signing out forgets the session");
  assert.equal(tokenIn(sockets.at(-1).url), null, "the connection after signing out is anonymous");
  await page.click("#guest");
  await page.waitForFunction(() => window.ticksockDemo.account?.guest === true && window.ticksockDemo.account.confirmed, null, { timeout: 10_000 });
  const guest = (await accountShown(page)).name;
  assert.match(guest, /^guest-\d+$/);
  assert.equal((await accountShown(page)).state, "(guest)");
  from = sockets.length;
  await load(page, addr, true);
  await signedInAs(page, guest);
  assert.equal(tokenIn(sockets[from].url), (await savedSession(page)).token, "the guest's session token at the upgrade");
  await page.click("#signout");
  await page.waitForFunction(() => window.ticksockDemo.client.connected && window.ticksockDemo.account === null, null, { timeout: 10_000 });
  await page.click("#guest");
  await signedInAs(page, guest);
  assert.equal((await accountShown(page)).name, guest, "the device token brought the same guest back");

  // ----- a tampered token is refused: the panel again, and the page plays anonymous ---------
  const good = await savedSession(page);
  const [claims, tag] = good.token.split(".");
  const flipped = tag[5] === "A" ? "B" : "A";
  const tampered = `${claims}.${tag.slice(0, 5)}${flipped}${tag.slice(6)}`;
  await page.evaluate((s) => localStorage.setItem("ticksock.session", JSON.stringify(s)), { ...good, token: tampered });
  from = sockets.length;
  await load(page, addr, true);
  assert.equal(tokenIn(sockets[from].url), tampered, "the tampered token was offered");
  await page.waitForFunction(() => !document.getElementById("account-form").hidden && window.ticksockDemo.account === null, null, { timeout: 10_000 });
  const refused = await accountShown(page);
  assert.equal(refused.name, null);
  assert.match(refused.notice, /refused the saved session of guest-\d+/);
  assert.match(await page.textContent("#log"), /refused the saved session/);
  assert.equal(await savedSession(page), null, "the refused session is forgotten");
  assert.equal(await page.evaluate(() => window.ticksockDemo.client.token), null, "the client dropped it");
  await page.waitForFunction(() => window.ticksockDemo.client.connected, null, { timeout: 10_000 });
  assert.equal(tokenIn(sockets.at(-1).url), null, "reconnected anonymous");
  await page.fill("#name", "anon-e2e");
  const anonId = await joinRoom(page, room);
  assert.equal(await page.evaluate(() => window.ticksockDemo.names.get(window.ticksockDemo.me)), "anon-e2e");
  assert.ok(anonId > 0);
  assert.ok(routesSent(sockets, from).includes("login"), "anonymous play logs in by name");
  const notAuthenticated = await page.evaluate(() =>
    window.ticksockDemo.client.call("flush_stats").then(
      () => null,
      (e) => e.code,
    ),
  );
  assert.equal(notAuthenticated, 10, "a login by name is not authenticated (unauthenticated, 10)");

  // Page errors: the refused connection's socket closing is expected, nothing else.
  const unexpected = errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(unexpected, [], "no page errors");
  await browser.stop();
  await serverProcess.stop();
});
