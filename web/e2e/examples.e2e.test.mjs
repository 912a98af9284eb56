// End-to-end: the example programs of `ticksock-examples` serve their pages, and the pages work
// in headless Chromium through the TS client: the counter's buttons add to one total that a
// second page sees pushed; two chat pages join under names, see each other, and talk. Ctrl-C
// (SIGINT) stops each program gracefully (checked by its exit status).
//
//   TICKSOCK_EXAMPLES_DIR  where the example binaries are (default ../target/release/examples,
//                          from web/; build them with `cargo build --release --examples -p
//                          ticksock-examples`)
//
// Only loopback addresses are used. Programs and browser are stopped within bounded time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Browser, ServerProcess } from "./support.mjs";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const EXAMPLES = resolve(WEB, process.env.TICKSOCK_EXAMPLES_DIR ?? "../target/release/examples");
const HINT = "run `cargo build --release --examples -p ticksock-examples` (or set TICKSOCK_EXAMPLES_DIR)";

const browser = new Browser();
const programs = [];

/** Starts an example program on a free loopback port; resolves with it and its "host:port". */
async function startExample(name) {
  const program = new ServerProcess(join(EXAMPLES, name), HINT);
  programs.push(program);
  const addr = await program.start(["--listen", "127.0.0.1:0"]);
  return { program, addr };
}

/** Stops a program with SIGINT and checks that it exited by itself with status 0. */
async function stopGracefully(program) {
  const child = program.child;
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  await program.stop();
  assert.deepEqual(await exited, { code: 0, signal: null }, `exit status after SIGINT\n${program.log}`);
}

after(async () => {
  await browser.stop().catch((e) => console.error("e2e: stopping the browser:", e));
  for (const program of programs) await program.stop().catch((e) => console.error("e2e: stopping:", e));
});

/** Opens `url` in a new page that records its errors. */
async function open(ctx, url, label) {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`${label}: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`${label} console: ${m.text()}`));
  await page.goto(url, { timeout: 15_000 });
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"), null, {
    timeout: 15_000,
  });
  return { page, errors };
}

const text = (page, selector) => page.locator(selector).textContent();

test("the counter's page adds, and another page sees the total pushed", { timeout: 60_000 }, async () => {
  const { program, addr } = await startExample("counter");
  const ctx = await browser.start();
  const a = await open(ctx, `http://${addr}/`, "a");
  const b = await open(ctx, `http://${addr}/`, "b");
  assert.match(await text(a.page, "#status"), /connected, \d+ ticks a second/);
  await a.page.waitForFunction(() => document.getElementById("total").textContent === "0");

  await a.page.click('button[data-add="10"]');
  await a.page.waitForFunction(() => document.getElementById("total").textContent === "10");
  await a.page.fill("#amount", "5");
  await a.page.click("#add-form button");
  await a.page.waitForFunction(() => document.getElementById("total").textContent === "15");
  // b did nothing: it learns the total from the once-a-second push.
  await b.page.waitForFunction(() => document.getElementById("total").textContent === "15", null, { timeout: 5_000 });

  await stopGracefully(program);
  await a.page.waitForFunction(() => document.getElementById("status").textContent.startsWith("disconnected (1001)"));
  assert.deepEqual([...a.errors, ...b.errors], []);
  await browser.stop();
});

test("two chat pages join under names, see each other and talk", { timeout: 60_000 }, async () => {
  const { program, addr } = await startExample("chat");
  const ctx = await browser.start();
  const ann = await open(ctx, `http://${addr}/`, "ann");
  const bob = await open(ctx, `http://${addr}/`, "bob");
  const join = async ({ page }, name) => {
    await page.fill("#name", name);
    await page.click("#join-form button");
    await page.waitForSelector("#say-form:not([hidden])");
  };
  await join(ann, "ann");
  await join(bob, "bob");
  await ann.page.waitForFunction(() => document.getElementById("names").textContent === "annbob");
  assert.equal(await text(bob.page, "#names"), "annbob");

  await bob.page.fill("#text", "hello ann");
  await bob.page.click("#say-form button");
  await ann.page.waitForFunction(() => document.getElementById("log").textContent.includes("bob: hello ann"));

  await stopGracefully(program);
  assert.deepEqual([...ann.errors, ...bob.errors], []);
  await browser.stop();
});
