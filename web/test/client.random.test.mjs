// Randomized tests of the client (issue 19): random interleavings of calls, replies, pushes,
// drops, reconnects, clock advances and jumps, and callbacks and listeners that call back into
// the client, over the fake socket and clock. After every step it checks:
// - every call has at most one outcome (exactly one once the client is closed at the end);
// - no socket is left behind: one live socket while connecting or open, none otherwise, and
//   every socket the client let go of is detached from it;
// - no timer is left behind: one per unfinished call with a finite timeout, one connect or
//   reconnect timer while connecting or waiting, and the heartbeat (at most one) while open;
// - at most one heartbeat probe in flight, and no other hidden pending entry;
// - a dead link is always detected within the documented bound, and never before idleTimeoutMs
//   of silence (nor, with a probe route, without a probe left unanswered for an interval);
// - lifecycle events come in a consistent order and match the state they announce.
//
// Seeded and reproducible; a failure names its seed and its last steps.
//   TICKSOCK_SEED=123 npm test                 only that run
//   TICKSOCK_RUNS=20000 npm test               more runs (default 3000, seeds 1..RUNS)
//   TICKSOCK_FIRST_SEED=100000 npm test        another range of seeds
//   TICKSOCK_ALL=1 npm test                    go on past a failure; list every failing seed
import { test } from "node:test";
import assert from "node:assert/strict";
import { TicksockClient, CloseCodes } from "../dist/ticksock.js";
import { FakeSocket, FakeClock, flush } from "./fakes.mjs";

const STEPS = 160;
const PROBE = "hb"; // the heartbeat route: user calls use other routes, so probes can be told apart

/** mulberry32: a small seeded generator, good enough to pick test steps. */
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The documented bound (src/client.ts, "Heartbeat"): a dead link is closed within this long of the last frame. */
const deadLinkBoundMs = ({ heartbeatIntervalMs: i, idleTimeoutMs: t }) => Math.max(t, 2 * i) + i;

/** One randomized run: a client, a scripted server and clock, and the checks. */
class Run {
  constructor(seed) {
    this.seed = seed;
    this.random = generator(seed);
    this.clock = new FakeClock();
    this.trace = [];
    this.violations = [];
    this.calls = [];
    /** Per socket: what the scripted server knows of it. */
    this.sockets = new Map();
    this.closes = [];
    this.lastJumpEnd = 0;
    this.budget = 0;
    this.reentered = 0;
    this.quiet = false;
    this.up = false;
    this.reentry = this.random() * 0.5;

    const I = this.int(10, 2000);
    this.opts = {
      heartbeatIntervalMs: I,
      idleTimeoutMs: this.int(Math.ceil(I / 2), 5 * I),
      heartbeatRoute: this.chance(0.85) ? PROBE : null,
      callTimeoutMs: this.int(1, 20 * I),
      connectTimeoutMs: this.int(1, 10 * I),
      backoffInitialMs: this.int(1, 2 * I),
      backoffMaxMs: this.int(1, 20 * I),
      backoffJitter: this.random(),
      maxAttempts: this.chance(0.3) ? null : this.int(1, 8),
      stableAfterMs: this.int(0, 10 * I),
      maxQueuedCalls: this.int(1, 8),
      autoConnect: this.chance(0.8),
    };

    const run = this;
    class Socket extends FakeSocket {
      constructor(url, protocols) {
        super(url, protocols);
        run.sockets.set(this, { lastFrameAt: -1, welcomed: false, answered: new Set(), sentAt: [], broken: false });
      }
      send(data) {
        const before = this.sent.length;
        super.send(data);
        if (this.sent.length > before) run.sockets.get(this).sentAt.push(run.clock.now());
      }
      close(code, reason) {
        if (this.closedWith === null) run.closes.push({ socket: this, code, at: run.clock.now(), readyState: this.readyState });
        super.close(code, reason);
      }
    }
    FakeSocket.reset();
    this.client = new TicksockClient("ws://127.0.0.1:7777/", {
      ...this.opts,
      WebSocket: Socket,
      timers: this.clock.api,
      random: this.random,
      onListenerError: (e) => this.violations.push(`a listener or callback threw: ${e?.stack ?? e}`),
    });
    this.listen();
  }

  int(lo, hi) {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }
  chance(p) {
    return this.random() < p;
  }
  pick(list) {
    return list[Math.floor(this.random() * list.length)];
  }
  note(what) {
    this.trace.push(`t=${this.clock.now()} [${this.client.state}] ${what}`);
    if (this.trace.length > 40) this.trace.shift();
  }
  fail(what) {
    this.violations.push(what);
  }

  /** Lifecycle listeners: the first of each checks, the others may call back into the client. */
  listen() {
    const c = this.client;
    c.onEvent("connected", () => {
      if (c.state !== "open") this.fail(`connected while ${c.state}`);
      if (this.up) this.fail("connected twice without disconnected between");
      this.up = true;
    });
    c.onEvent("disconnected", () => {
      if (c.state !== "waiting" && c.state !== "closed") this.fail(`disconnected while ${c.state}`);
      if (!this.up) this.fail("disconnected without connected");
      this.up = false;
    });
    c.onEvent("reconnecting", () => {
      if (c.state !== "waiting") this.fail(`reconnecting while ${c.state}`);
    });
    c.onEvent("closed", () => {
      if (c.state !== "closed") this.fail(`closed while ${c.state}`);
      if (this.up) this.fail("closed while a connection is up");
    });
    // Defect 10's reference behaviour: a call made in a connected listener goes out first.
    c.onEvent("connected", () => {
      if (this.quiet || !this.chance(0.3)) return;
      const socket = FakeSocket.last;
      if (socket.sent.length !== 0) this.fail("something was sent before the connected listeners ran");
      this.call("login");
      if (socket.sent.length !== 1 || socket.requests[0].route !== "login") this.fail("a login made in a connected listener did not go out at once");
    });
    for (const name of ["connected", "disconnected", "reconnecting", "closed"]) c.onEvent(name, () => this.reenter(name));
    c.on("p", () => this.reenter("push"));
  }

  /** What a callback or listener may do to the client, within the step's budget. */
  reenter(where) {
    if (this.quiet || this.budget <= 0 || !this.chance(this.reentry)) return;
    this.budget--;
    this.reentered++;
    const c = this.client;
    switch (this.int(0, 5)) {
      case 0:
        this.note(`  (${where}) connect()`);
        return c.connect();
      case 1:
        this.note(`  (${where}) close()`);
        return c.close();
      case 2:
        this.note(`  (${where}) close(); connect()`);
        c.close();
        return c.connect();
      case 3:
        this.note(`  (${where}) connect(); close()`);
        c.connect();
        return c.close();
      default:
        return this.call("r");
    }
  }

  /** A call with a random timeout, in callback or Promise form, its outcomes recorded. */
  call(route) {
    const record = { n: this.calls.length, route, outcomes: [] };
    const timeout = this.pick([undefined, undefined, this.int(0, 3 * this.opts.idleTimeoutMs), Infinity]);
    record.finite = Number.isFinite(timeout ?? this.opts.callTimeoutMs);
    this.calls.push(record);
    const done = (outcome) => {
      record.outcomes.push(outcome);
      if (record.outcomes.length > 1) this.fail(`call #${record.n} got a second outcome: ${record.outcomes.join(", ")}`);
    };
    const options = timeout === undefined ? {} : { timeout };
    if (this.chance(0.8)) {
      this.client.call(route, { n: record.n }, options, (err) => {
        done(err ? err.kind : "ok");
        this.reenter(`call #${record.n} ${err ? err.kind : "ok"}`);
      });
    } else {
      this.client.call(route, { n: record.n }, options).then(
        () => done("ok"),
        (err) => done(err.kind),
      );
    }
  }

  // ---- the scripted server ---------------------------------------------------------------

  /** The socket the client is on, if the server still has it open. */
  get current() {
    const s = FakeSocket.last;
    return s && s.closedWith === null && s.readyState === 1 ? s : null;
  }
  deliver(socket, frame) {
    this.sockets.get(socket).lastFrameAt = this.clock.now();
    socket.receive(frame);
  }
  unanswered(socket) {
    const info = this.sockets.get(socket);
    return socket.requests.map((r, i) => ({ ...r, sentAt: info.sentAt[i] })).filter((r) => !info.answered.has(r.id));
  }

  /** One random step. */
  step() {
    const c = this.client;
    const I = this.opts.heartbeatIntervalMs;
    const T = this.opts.idleTimeoutMs;
    const last = FakeSocket.last;
    const w = this.random() * 100;
    if (w < 14) {
      this.note("call");
      this.call("r");
    } else if (w < 22) {
      if (last && last.readyState === 0 && last.closedWith === null) {
        const protocol = this.chance(0.03) ? "other" : "ticksock.v1.json";
        if (protocol !== "ticksock.v1.json") this.sockets.get(last).broken = true;
        this.note(`server: handshake (${protocol})`);
        last.open(protocol);
      }
    } else if (w < 31) {
      const s = this.current;
      if (s) {
        const info = this.sockets.get(s);
        const version = this.chance(0.01) ? 2 : 1;
        if (info.welcomed || version !== 1) info.broken = true;
        info.welcomed = true;
        this.note(`server: welcome v${version}`);
        this.deliver(s, { type: "welcome", version, tick_hz: 30, conn_id: "1" });
      }
    } else if (w < 47) {
      const s = this.current;
      if (s && this.sockets.get(s).welcomed) {
        const open = this.unanswered(s);
        if (open.length > 0) {
          const r = this.pick(open);
          this.sockets.get(s).answered.add(r.id);
          this.note(`server: answers ${r.route} ${r.id}`);
          if (this.chance(0.8)) this.deliver(s, { type: "reply", id: r.id, body: r.body ?? null });
          else this.deliver(s, { type: "error", id: r.id, code: 1, message: "no" });
        } else if (this.chance(0.2)) {
          this.note("server: an answer to no call");
          this.deliver(s, { type: "reply", id: this.int(0, 50), body: null });
        }
      }
    } else if (w < 56) {
      const s = this.current;
      if (s && this.sockets.get(s).welcomed) {
        const topic = this.chance(0.8) ? "p" : "unheard";
        this.note(`server: push ${topic}`);
        this.deliver(s, { type: "push", topic, body: null });
      }
    } else if (w < 58) {
      if (last && last.readyState === 1 && last.closedWith === null) {
        this.note("server: starts closing");
        last.closing();
      }
    } else if (w < 63) {
      const s = this.chance(0.8) ? last : this.pick(FakeSocket.all);
      if (s && s.readyState !== 3) {
        this.note(`server: drops socket ${FakeSocket.all.indexOf(s)}`);
        s.drop(this.pick([1006, 1001, 1011]));
      }
    } else if (w < 64) {
      const s = this.current;
      if (s) {
        this.sockets.get(s).broken = true;
        this.note("server: garbage");
        this.deliver(s, "not json");
      }
    } else if (w < 67) {
      this.note("connect()");
      c.connect();
    } else if (w < 69) {
      this.note("close()");
      c.close();
    } else if (w < 84) {
      const ms = this.int(0, I);
      this.note(`advance ${ms}`);
      this.clock.advance(ms);
    } else if (w < 95) {
      const ms = this.int(0, 3 * T);
      this.note(`advance ${ms}`);
      this.clock.advance(ms);
    } else {
      const ms = this.int(0, 10 * T);
      this.note(`jump ${ms}`);
      this.clock.jump(ms);
      this.lastJumpEnd = this.clock.now();
    }
  }

  // ---- the checks --------------------------------------------------------------------------

  check() {
    const c = this.client;
    const state = c.state;
    const now = this.clock.now();
    const I = this.opts.heartbeatIntervalMs;
    const T = this.opts.idleTimeoutMs;

    // Sockets: one live while connecting or open, none otherwise; the others let go of.
    const live = FakeSocket.all.filter((s) => s.closedWith === null && s.readyState !== 3);
    const linked = state === "connecting" || state === "open";
    if (live.length !== (linked ? 1 : 0)) this.fail(`${live.length} live sockets while ${state}`);
    if (linked && live[0] !== FakeSocket.last) this.fail("the live socket is not the newest");
    for (const s of FakeSocket.all) {
      if (s !== live[0] && (s.onmessage !== null || s.onclose !== null)) this.fail(`socket ${FakeSocket.all.indexOf(s)} ended but still wired to the client`);
    }

    // Calls and timers.
    const unfinished = this.calls.filter((call) => call.outcomes.length === 0);
    const probes = state === "open" && live[0] ? this.unanswered(live[0]).filter((r) => r.route === PROBE) : [];
    if (probes.length > 1) this.fail(`${probes.length} probes in flight`);
    if (c.pendingCount !== unfinished.length + probes.length) {
      this.fail(`pendingCount ${c.pendingCount}, but ${unfinished.length} calls without an outcome and ${probes.length} probes`);
    }
    const wantIntervals = state === "open" ? 1 : 0;
    if (this.clock.activeIntervals !== wantIntervals) this.fail(`${this.clock.activeIntervals} heartbeat timers while ${state}`);
    const wantTimeouts = unfinished.filter((call) => call.finite).length + (state === "connecting" || state === "waiting" ? 1 : 0);
    if (this.clock.activeTimeouts !== wantTimeouts) this.fail(`${this.clock.activeTimeouts} timeouts pending, expected ${wantTimeouts} (${state})`);

    // A dead link is detected within the bound (counted from the last frame, or from the end of
    // the last clock jump: a throttled tab's timers run late by design).
    if (state === "open" && live[0]) {
      const since = Math.max(this.sockets.get(live[0]).lastFrameAt, this.lastJumpEnd);
      if (now - since >= deadLinkBoundMs(this.opts)) {
        const socket = live[0].readyState === 1 ? "open" : "closing";
        this.fail(`still open ${now - since} ms after the last frame (bound ${deadLinkBoundMs(this.opts)} ms; the socket is ${socket})`);
      }
    }

    // The closes the client made: each for a reason the script gave it.
    for (const { socket, code, at, readyState } of this.closes.splice(0)) {
      const info = this.sockets.get(socket);
      const which = `socket ${FakeSocket.all.indexOf(socket)}`;
      if (code === CloseCodes.IDLE) {
        if (at - info.lastFrameAt < T) this.fail(`${which} closed as idle after only ${at - info.lastFrameAt} ms of silence`);
        if (this.opts.heartbeatRoute !== null && readyState === 1) {
          const probe = this.unanswered(socket).find((r) => r.route === PROBE);
          if (!probe) this.fail(`${which} closed as idle with no probe unanswered`);
          else if (at - probe.sentAt < I) this.fail(`${which} closed as idle ${at - probe.sentAt} ms after its probe`);
        }
      } else if (code === CloseCodes.PROTOCOL_ERROR) {
        if (!info.broken) this.fail(`${which} closed for a protocol error the server never made`);
      } else if (code !== CloseCodes.NORMAL && code !== CloseCodes.CONNECT_TIMEOUT) {
        this.fail(`${which} closed with code ${code}`);
      }
    }
  }

  /** Ends the run: after close(), every call has its one outcome and nothing is left. */
  finish() {
    this.quiet = true;
    this.client.close();
  }
  checkFinished() {
    const c = this.client;
    if (c.state !== "closed") this.fail(`state ${c.state} after close()`);
    if (this.clock.timers.size !== 0) this.fail(`${this.clock.timers.size} timers left after close()`);
    const missing = this.calls.filter((call) => call.outcomes.length !== 1);
    if (missing.length > 0) this.fail(`${missing.length} calls without exactly one outcome after close(): #${missing.map((m) => m.n).join(", #")}`);
    if (c.pendingCount !== 0) this.fail(`pendingCount ${c.pendingCount} after close()`);
  }
}

/** One run; throws with the seed and the last steps on the first broken invariant. */
async function runOnce(seed) {
  const run = new Run(seed);
  const report = () => {
    if (run.violations.length === 0) return;
    const opts = JSON.stringify(run.opts);
    throw new Error(
      `seed ${seed}: ${run.violations[0]}\n  rerun: TICKSOCK_SEED=${seed} npm test\n  options: ${opts}\n  last steps:\n    ${run.trace.join("\n    ")}`,
    );
  };
  await flush();
  run.check();
  report();
  for (let i = 0; i < STEPS; i++) {
    run.budget = 3;
    run.step();
    await flush(); // microtasks: Promise outcomes, failures delivered asynchronously
    run.check();
    report();
  }
  run.finish();
  await flush();
  run.check();
  run.checkFinished();
  report();
}

const one = process.env.TICKSOCK_SEED;
const runs = Number(process.env.TICKSOCK_RUNS ?? 3000);
const first = Number(process.env.TICKSOCK_FIRST_SEED ?? 1);

test(one ? `randomized run, seed ${one}` : `randomized runs: seeds ${first}..${first + runs - 1}`, async () => {
  const seeds = one ? [Number(one)] : Array.from({ length: runs }, (_, i) => first + i);
  if (!process.env.TICKSOCK_ALL) {
    for (const seed of seeds) await runOnce(seed);
    return;
  }
  const failures = [];
  for (const seed of seeds) await runOnce(seed).catch((e) => failures.push(e.message.split("\n")[0]));
  assert.deepEqual(failures, [], `${failures.length} of ${seeds.length} runs failed`);
});

test("the randomized runs reach the states they are meant to reach", async () => {
  // A guard against a script that quietly stops exercising the client: over a few hundred
  // runs, each kind of event happens many times.
  const seen = { connected: 0, disconnected: 0, idle: 0, reconnecting: 0, closed: 0, jumps: 0, reentered: 0 };
  for (let seed = 1; seed <= 300; seed++) {
    const run = new Run(seed);
    for (const name of ["connected", "disconnected", "reconnecting", "closed"]) run.client.onEvent(name, () => seen[name]++);
    run.client.onEvent("disconnected", ({ code }) => code === CloseCodes.IDLE && seen.idle++);
    for (let i = 0; i < STEPS; i++) {
      run.budget = 3;
      run.step();
      await flush();
    }
    seen.jumps += run.lastJumpEnd > 0 ? 1 : 0;
    seen.reentered += run.reentered > 0 ? 1 : 0;
    run.finish();
  }
  for (const [name, n] of Object.entries(seen)) assert.ok(n >= 50, `${name}: only ${n} in 300 runs`);
});
