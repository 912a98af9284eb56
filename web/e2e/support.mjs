// What the end-to-end tests share: bounded waits, starting and stopping a server binary that
// prints `listening on ws://HOST:PORT/`, and a headless Debian Chromium driven by
// playwright-core (which never downloads a browser).
//
//   CHROMIUM_BIN  the browser (default /usr/bin/chromium, Debian's package)
//
// Only loopback addresses are used; everything started here is stopped within bounded time.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
          const m = out.match(/listening on ws:\/\/([^/\s]+)\//);
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

/** A headless browser with a fresh profile. */
export class Browser {
  constructor() {
    this.context = null;
    this.profileDir = null;
  }

  async start() {
    if (!existsSync(CHROMIUM_BIN)) throw new Error(`no browser at ${CHROMIUM_BIN}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
    this.profileDir = mkdtempSync(join(tmpdir(), "ticksock-e2e-profile-"));
    // A fresh --user-data-dir: Playwright takes it as this argument (it refuses it in `args`).
    this.context = await chromium.launchPersistentContext(this.profileDir, {
      executablePath: CHROMIUM_BIN,
      headless: true,
      args: CHROMIUM_ARGS,
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
