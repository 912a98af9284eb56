// What the end-to-end tests share: bounded waits, starting and stopping a server binary that
// prints `listening on ws://HOST:PORT/` (or `wss://` when it serves TLS), a redis-server of a test's own (for a cluster), and a
// headless Debian Chromium driven by playwright-core (which never downloads a browser).
//
//   CHROMIUM_BIN      the browser (default /usr/bin/chromium, Debian's package)
//   REDIS_SERVER_BIN  the Redis server (default `redis-server` on the PATH)
//
// Only loopback addresses are used; everything started here is stopped within bounded time.
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Rejects after `ms` with `what`, unless `promise` settles first. */
export function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

/** A server process: `start` resolves with its "host:port" once it prints where it listens. */
export class ServerProcess {
  /** `bin`: the binary; `hint`: how to build it, said when it is missing. */
  constructor(bin, hint) {
    this.bin = bin;
    this.hint = hint;
    this.child = null;
    this.log = "";
    // Last resort if the runner is torn down: never leave the server behind.
    process.on("exit", () => this.child?.kill("SIGKILL"));
  }

  start(args) {
    if (!existsSync(this.bin)) throw new Error(`no server binary at ${this.bin}: ${this.hint}`);
    const child = spawn(this.bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stderr.on("data", (d) => (this.log += d));
    return within(
      15_000,
      "the server's `listening on` line",
      new Promise((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d) => {
          this.log += d;
          out += d;
          const m = out.match(/listening on wss?:\/\/([^/\s]+)\//);
          if (m) resolve(m[1]);
        });
        child.on("error", reject);
        child.on("exit", (code, signal) => reject(new Error(`server exited (${code ?? signal}) before listening:\n${this.log}`)));
      }),
    );
  }

  /** Stops it with SIGINT (its graceful shutdown), then SIGKILL if it takes over 5 s. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    try {
      await within(5_000, "server shutdown", exited);
    } catch {
      child.kill("SIGKILL");
      await within(2_000, "server kill", exited).catch(() => {});
    }
  }
}

/**
 * A path for an arena database (`--db`) in a new temporary directory, removed when the test
 * process exits: the binary's default is a file in its working directory, and a test never
 * writes one into the repository. `label` names the file.
 */
export function tempDbPath(label = "arena") {
  const dir = mkdtempSync(join(tmpdir(), "ticksock-e2e-db-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, `${label}.db`);
}

/** A TCP port on 127.0.0.1 that nothing listens on (at the time of the call). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves true if a Redis answers PING on 127.0.0.1:`port` within a second, else false. */
function redisAnswers(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1_000);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.once("error", () => done(false));
  });
}

/**
 * A redis-server of the test's own on a free loopback port, without persistence. Without one the
 * test fails, saying how to install it: a cluster test never passes (or skips) without Redis.
 */
export class RedisProcess {
  constructor(bin = process.env.REDIS_SERVER_BIN ?? "redis-server") {
    this.bin = bin;
    this.child = null;
    this.log = "";
    process.on("exit", () => this.child?.kill("SIGKILL"));
  }

  /** Starts it; resolves with its `redis://127.0.0.1:PORT` once it answers PING. */
  async start() {
    const port = await freePort();
    const child = spawn(this.bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    child.stdout.on("data", (d) => (this.log += d));
    child.stderr.on("data", (d) => (this.log += d));
    let startError = null;
    child.once("error", (e) => {
      startError = new Error(
        `cannot start ${this.bin} (${e.code ?? e.message}): the cluster e2e test needs a Redis server; ` +
          "install it (Debian: apt-get install redis-server; .ci/run does) or set REDIS_SERVER_BIN",
      );
    });
    child.once("exit", (code, signal) => {
      startError ??= new Error(`${this.bin} exited (${code ?? signal}) before answering PING:\n${this.log}`);
    });
    const deadline = Date.now() + 10_000;
    while (!(await redisAnswers(port))) {
      if (startError) throw startError;
      if (Date.now() > deadline) throw new Error(`${this.bin} does not answer PING on port ${port} after 10 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return `redis://127.0.0.1:${port}`;
  }

  /** Stops it (SIGTERM; it has nothing to save), then SIGKILL if it takes over 5 s. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    try {
      await within(5_000, "redis-server shutdown", exited);
    } catch {
      child.kill("SIGKILL");
      await within(2_000, "redis-server kill", exited).catch(() => {});
    }
  }
}

/** A headless browser with a fresh profile. */
export class Browser {
  constructor() {
    this.context = null;
    this.profileDir = null;
  }

  /** Launches it; `extraArgs` go on Chromium's command line after the shared ones. */
  async start(extraArgs = []) {
    if (!existsSync(CHROMIUM_BIN)) throw new Error(`no browser at ${CHROMIUM_BIN}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
    this.profileDir = mkdtempSync(join(tmpdir(), "ticksock-e2e-profile-"));
    // A fresh --user-data-dir: Playwright takes it as this argument (it refuses it in `args`).
    this.context = await chromium.launchPersistentContext(this.profileDir, {
      executablePath: CHROMIUM_BIN,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      timeout: 30_000,
      viewport: { width: 1200, height: 800 },
    });
    return this.context;
  }

  async stop() {
    const ctx = this.context;
    this.context = null;
    if (ctx) {
      const proc = ctx.browser()?.process?.();
      try {
        await within(10_000, "browser close", ctx.close());
      } catch {
        proc?.kill("SIGKILL");
      }
    }
    if (this.profileDir) rmSync(this.profileDir, { recursive: true, force: true });
    this.profileDir = null;
  }
}

/** Where the end-to-end tests leave their screenshots: web/e2e-artifacts. */
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "e2e-artifacts");

/** Saves a screenshot of `page` to web/e2e-artifacts/`file` and checks it is a real PNG. */
export async function screenshot(page, file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, file);
  rmSync(path, { force: true }); // no passing on a previous run's file
  await page.screenshot({ path });
  const png = readFileSync(path);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${file} is a PNG`);
  assert.ok(png.length > 10_000, `${file}: ${png.length} bytes`);
}
