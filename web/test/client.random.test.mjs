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
// - lifecycle events come in a consistent order and match the state they announce;
// - nothing waits in the offline queue while a connection is ready.
// The version 2 runs (ticksock.v2.json) script a server that keeps sessions across links, with
// replay buffers, and also check:
// - the client's first frame on a link is a resume exactly when it holds a session, and it
//   sends nothing else until the answer; a new session starts with a request or an ack of 0;
// - request seqs have no gap and no repeat, and acks never go back nor past what was sent;
// - every push of a session reaches the app exactly once, in order, across drops and resumes;
//   every reply reaches the call it answers;
// - frames are acknowledged within ackDelayMs, and never more than ackAfterFrames wait.
//
// Seeded and reproducible; a failure names its seed and its last steps.
//   TICKSOCK_SEED=123 npm test                 only that run
//   TICKSOCK_RUNS=20000 npm test               more runs (default 3000, seeds 1..RUNS)
//   TICKSOCK_FIRST_SEED=100000 npm test        another range of seeds
//   TICKSOCK_ALL=1 npm test                    go on past a failure; list every failing seed
//   TICKSOCK_V2_RUNS=5000 npm test             version 2 runs (default 1500)
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

/** The scripted server's run (PROTOCOL.md 11.3: `epoch`). */
const EPOCH = "77";

/** One randomized run: a client, a scripted server and clock, and the checks. */
class Run {
  /** `v2`: the server speaks ticksock.v2.json (sessions, resume) instead of ticksock.v1.json. */
  constructor(seed, v2 = false) {
    this.seed = seed;
    this.v2 = v2;
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
    if (v2) {
      this.opts.ackDelayMs = this.int(1, 2 * I);
      this.opts.ackAfterFrames = this.int(1, 8);
      // A close() gives the session up: fewer of them, and fewer give-ups, leave sessions
      // to resume.
      if (this.chance(0.6)) this.opts.maxAttempts = null;
      this.reentry *= 0.3;
    }
    /** Version 2: the server's sessions by conn_id, and the pushes the app saw, by session. */
    this.sessions = new Map();
    this.secrets = 0;
    this.pushesSeen = new Map();
    /** Version 2: resumes that replayed frames, answers made while their session had no link. */
    this.replays = 0;
    this.detachedAnswers = 0;

    const run = this;
    class Socket extends FakeSocket {
      constructor(url, protocols) {
        super(url, protocols);
        run.sockets.set(this, {
          lastFrameAt: -1,
          welcomed: false,
          answered: new Set(),
          sentAt: [],
          broken: false,
          // Version 2: the session the welcome offered, the one the link carries, whether the
          // client held one when welcomed, client frames read, a resume read and not yet
          // answered, where the acks of the link's session start, sequenced frames delivered.
          offered: null,
          session: null,
          clientHadSession: false,
          read: 0,
          resume: null,
          ackFrom: 0,
          delivered: [],
        });
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
    if (this.v2) {
      c.on("p", (body) => {
        const last = this.pushesSeen.get(body.s) ?? -1;
        if (body.k !== last + 1) this.fail(`push ${body.k} of session ${body.s} reached the app after push ${last}`);
        this.pushesSeen.set(body.s, body.k);
      });
      c.onEvent("session_ended", () => {
        if (c.state === "open") this.fail("session_ended while open");
        if (this.up) this.fail("session_ended while a connection is up");
      });
    }
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
    c.onEvent("connected", ({ resumed }) => {
      if (this.quiet || !this.chance(0.3)) return;
      const socket = FakeSocket.last;
      const before = socket.sent.length;
      // Version 2: a resume goes first; after a successful one, so do the resent requests.
      const early = socket.requests.filter((f) => f.type !== "resume");
      if (!resumed && early.length !== 0) this.fail("something was sent before the connected listeners ran");
      this.call("login");
      if (socket.sent.length !== before + 1 || socket.requests.at(-1).route !== "login") this.fail("a login made in a connected listener did not go out at once");
    });
    const events = ["connected", "disconnected", "reconnecting", "closed", ...(this.v2 ? ["session_ended"] : [])];
    for (const name of events) c.onEvent(name, () => this.reenter(name));
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
      this.client.call(route, { n: record.n }, options, (err, res) => {
        if (!err) this.checkResult(record, res);
        done(err ? err.kind : "ok");
        this.reenter(`call #${record.n} ${err ? err.kind : "ok"}`);
      });
    } else {
      this.client.call(route, { n: record.n }, options).then(
        (res) => {
          this.checkResult(record, res);
          done("ok");
        },
        (err) => done(err.kind),
      );
    }
  }

  /** A reply echoes its request's body: a call must get its own. */
  checkResult(record, res) {
    if (res?.n !== record.n) this.fail(`call #${record.n} got the answer of ${JSON.stringify(res)}`);
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

  // ---- the scripted version 2 server (PROTOCOL.md 11) ------------------------------------

  /** A new session, as a welcome offers it: nothing taken, nothing sent. */
  newSession() {
    const session = { id: String(this.sessions.size + 1), secret: this.secret(), received: 0, frames: [], clientAck: 0, taken: [], socket: null, ended: false, pushes: 0 };
    this.sessions.set(session.id, session);
    return session;
  }
  secret() {
    return (++this.secrets).toString(16).padStart(32, "0");
  }
  live(socket) {
    return socket.closedWith === null && socket.readyState === 1;
  }
  /** The socket a session's frames go to now, or null while it has no link. */
  linkOf(session) {
    const socket = session.socket;
    return socket && this.live(socket) && this.sockets.get(socket).session === session ? socket : null;
  }
  /** The highest count the client acknowledged on `socket` for the session the link carries. */
  maxAck(socket) {
    let max = 0;
    for (const f of socket.requests.slice(this.sockets.get(socket).ackFrom)) max = Math.max(max, f.type === "resume" ? f.received : f.ack);
    return max;
  }

  /** What the server does besides the main step: accept, welcome, read, end a session whose grace passed. */
  serverSteps() {
    const last = FakeSocket.last;
    if (last && last.readyState === 0 && last.closedWith === null && this.chance(0.3)) {
      this.note("server: handshake (ticksock.v2.json)");
      last.open("ticksock.v2.json");
    }
    const s = this.current;
    if (s && !this.sockets.get(s).welcomed && this.chance(0.3)) this.welcome(s);
    if (this.current && this.chance(0.6)) this.serverRead(this.current);
    if (this.chance(0.03)) {
      const idle = [...this.sessions.values()].filter((session) => !session.ended && !this.linkOf(session));
      if (idle.length > 0) {
        const session = this.pick(idle);
        session.ended = true;
        this.note(`server: session ${session.id} ends (grace passed)`);
      }
    }
  }

  /** Reads what the client sent on `socket`, answering a resume now or later. */
  serverRead(socket) {
    const info = this.sockets.get(socket);
    for (;;) {
      while (info.read < socket.sent.length) {
        const f = JSON.parse(socket.sent[info.read++]);
        if (!info.welcomed) this.fail(`a ${f.type} frame before the welcome`);
        else if (info.resume) this.fail(`a ${f.type} frame after the resume, before its answer`);
        else if (info.session === null && info.offered !== null) this.firstFrame(socket, info, f);
        else this.takeFrame(info, f);
      }
      if (info.resume && this.live(socket) && this.chance(0.5)) {
        this.answerResume(socket, info);
        continue; // the client answers the answer at once: resent requests, the queue
      }
      return;
    }
  }

  /** 11.4: the client's first frame decides whether the link resumes a session or starts one. */
  firstFrame(socket, info, f) {
    if (f.type === "resume") {
      if (!info.clientHadSession) this.fail("a resume from a client that held no session");
      const session = this.sessions.get(f.session);
      if (!session) return this.fail(`a resume of session ${f.session}, which never existed`);
      if (f.secret !== session.secret) this.fail(`a resume of session ${f.session} with a retired secret`);
      if (f.epoch !== EPOCH) this.fail(`a resume with epoch ${f.epoch}`);
      if (!(f.received >= session.clientAck && f.received <= session.frames.length)) {
        this.fail(`a resume with received ${f.received}: acknowledged ${session.clientAck}, sent ${session.frames.length}`);
      }
      session.clientAck = Math.max(session.clientAck, f.received);
      // Refused when the session ended, and now and then as by a server that restarted.
      const reason = session.ended ? 2 : this.chance(0.1) ? 4 : 0;
      info.resume = { session, received: f.received, reason };
      this.note(`server: reads a resume of session ${session.id} (received ${f.received})`);
      return;
    }
    if (info.clientHadSession) this.fail(`a client holding a session started a new one with a ${f.type} frame`);
    if (f.type === "ack" && f.ack !== 0) this.fail(`a new session's first frame is an ack of ${f.ack}`);
    info.session = info.offered;
    info.session.socket = socket;
    this.takeFrame(info, f);
  }

  answerResume(socket, info) {
    const { session, received, reason } = info.resume;
    info.resume = null;
    if (reason !== 0) {
      session.ended = true;
      info.session = info.offered;
      info.session.socket = socket;
      info.ackFrom = socket.sent.length; // the resume's count was the old session's
      this.note(`server: resume_failed ${reason}; the link carries session ${info.session.id}`);
      this.deliver(socket, { type: "resume_failed", reason, message: "refused" });
      return;
    }
    session.secret = this.secret();
    info.session = session;
    session.socket = socket;
    this.note(`server: resumed session ${session.id} (received ${session.received}, replays ${session.frames.length - received})`);
    if (session.frames.length > received) this.replays++;
    this.deliver(socket, { type: "resumed", received: session.received, secret: session.secret });
    for (let k = received + 1; k <= session.frames.length && this.linkOf(session) === socket; k++) this.deliverSequenced(socket, session, k);
  }

  /** A frame of the session the link carries: seq and ack checked, a request taken. */
  takeFrame(info, f) {
    const session = info.session;
    if (session === null) return this.fail(`a ${f.type} frame on a link without a session`);
    if (f.type === "resume") return this.fail("a resume that is not the first frame on its link");
    if (f.type !== "ack" && f.type !== "request") return this.fail(`a frame of type ${f.type}`);
    if (!(Number.isInteger(f.ack) && f.ack >= session.clientAck && f.ack <= session.frames.length)) {
      this.fail(`an ack of ${f.ack}: acknowledged ${session.clientAck} before, sent ${session.frames.length}`);
    }
    session.clientAck = Math.max(session.clientAck, f.ack);
    if (f.type === "ack") return;
    if (f.seq !== session.received + 1) return this.fail(`request seq ${f.seq} on session ${session.id}, which took ${session.received}`);
    session.received = f.seq;
    session.taken.push({ id: f.id, route: f.route, body: f.body });
  }

  /** A sequenced frame of `session`: kept for replay, delivered if it has a link. */
  sendSequenced(session, frame) {
    session.frames.push(frame);
    const socket = this.linkOf(session);
    if (socket) this.deliverSequenced(socket, session, session.frames.length);
  }
  deliverSequenced(socket, session, k) {
    const info = this.sockets.get(socket);
    const frame = session.frames[k - 1];
    info.delivered.push({ k, at: this.clock.now() });
    if (frame.type !== "push") info.answered.add(frame.id);
    this.deliver(socket, frame);
    const waiting = k - this.maxAck(socket);
    if (this.live(socket) && this.client.state === "open" && waiting >= this.opts.ackAfterFrames) {
      this.fail(`${waiting} frames unacknowledged (ackAfterFrames ${this.opts.ackAfterFrames})`);
    }
  }

  /** A session that is not over: mostly the current link's, else any (answers while it has no link). */
  someSession(want) {
    const s = this.current;
    const mine = s && this.sockets.get(s).session;
    if (mine && !mine.ended && want(mine) && this.chance(0.7)) return mine;
    const all = [...this.sessions.values()].filter((session) => !session.ended && want(session) && (session.socket !== null || session === mine));
    return all.length > 0 ? this.pick(all) : null;
  }
  serverAnswer() {
    const session = this.someSession((x) => x.taken.length > 0);
    if (!session) return;
    const [r] = session.taken.splice(Math.floor(this.random() * session.taken.length), 1);
    this.note(`server: answers ${r.route} ${r.id} on session ${session.id}${this.linkOf(session) ? "" : " (no link)"}`);
    if (!this.linkOf(session)) this.detachedAnswers++;
    if (this.chance(0.8)) this.sendSequenced(session, { type: "reply", id: r.id, body: r.body ?? null });
    else this.sendSequenced(session, { type: "error", id: r.id, code: 1, message: "no" });
  }
  serverPush() {
    const session = this.someSession(() => true);
    if (!session) return;
    const topic = this.chance(0.8) ? "p" : "unheard";
    this.note(`server: push ${topic} on session ${session.id}${this.linkOf(session) ? "" : " (no link)"}`);
    this.sendSequenced(session, { type: "push", topic, body: { s: session.id, k: topic === "p" ? session.pushes++ : -1 } });
  }

  /** The server's welcome on `s`; now and then of the wrong version. */
  welcome(s) {
    const info = this.sockets.get(s);
    const speaks = this.v2 ? 2 : 1;
    const version = this.chance(0.01) ? 3 - speaks : speaks;
    if (info.welcomed || version !== speaks) info.broken = true;
    info.welcomed = true;
    this.note(`server: welcome v${version}`);
    if (this.v2) {
      info.offered = this.newSession();
      info.clientHadSession = this.client.session !== null;
      const { id: conn_id, secret } = info.offered;
      this.deliver(s, { type: "welcome", version, tick_hz: 30, conn_id, epoch: EPOCH, secret });
    } else {
      this.deliver(s, { type: "welcome", version, tick_hz: 30, conn_id: "1" });
    }
  }

  /** One random step. */
  step() {
    const c = this.client;
    const I = this.opts.heartbeatIntervalMs;
    const T = this.opts.idleTimeoutMs;
    if (this.v2) this.serverSteps();
    const last = FakeSocket.last;
    const w = this.random() * 100;
    if (w < 14) {
      this.note("call");
      this.call("r");
    } else if (w < 22) {
      if (last && last.readyState === 0 && last.closedWith === null) {
        const speaks = this.v2 ? "ticksock.v2.json" : "ticksock.v1.json";
        const protocol = this.chance(0.03) ? "other" : speaks;
        if (protocol !== speaks) this.sockets.get(last).broken = true;
        this.note(`server: handshake (${protocol})`);
        last.open(protocol);
      }
    } else if (w < 31) {
      const s = this.current;
      if (s) this.welcome(s);
    } else if (w < 47) {
      const s = this.current;
      if (this.v2) {
        this.serverAnswer();
      } else if (s && this.sockets.get(s).welcomed) {
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
      if (this.v2) {
        this.serverPush();
      } else if (s && this.sockets.get(s).welcomed) {
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
        // Version 2: what the client sent may or may not have reached the server.
        if (this.v2 && s === this.current && this.chance(0.5)) this.serverRead(s);
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
      // Version 2: a close() gives the session up; most are skipped, to leave some to resume.
      if (this.v2 && this.chance(0.8)) return;
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
    if (this.v2) {
      // Requests resent after a resume make the socket's unanswered requests no guide to the
      // probe: the one pending entry the app did not make, at most, while open.
      const hidden = c.pendingCount - unfinished.length;
      if (hidden < 0 || hidden > (state === "open" ? 1 : 0)) this.fail(`pendingCount ${c.pendingCount}, but ${unfinished.length} calls without an outcome (${state})`);
    } else {
      const probes = state === "open" && live[0] ? this.unanswered(live[0]).filter((r) => r.route === PROBE) : [];
      if (probes.length > 1) this.fail(`${probes.length} probes in flight`);
      if (c.pendingCount !== unfinished.length + probes.length) {
        this.fail(`pendingCount ${c.pendingCount}, but ${unfinished.length} calls without an outcome and ${probes.length} probes`);
      }
    }
    const wantIntervals = state === "open" ? 1 : 0;
    if (this.clock.activeIntervals !== wantIntervals) this.fail(`${this.clock.activeIntervals} heartbeat timers while ${state}`);
    const wantTimeouts = unfinished.filter((call) => call.finite).length + (state === "connecting" || state === "waiting" ? 1 : 0);
    // Version 2: the ack timer too, while open.
    const ackTimers = this.clock.activeTimeouts - wantTimeouts;
    if (ackTimers !== 0 && !(this.v2 && state === "open" && ackTimers === 1)) {
      this.fail(`${this.clock.activeTimeouts} timeouts pending, expected ${wantTimeouts} (${state})`);
    }

    // A ready link takes the offline queue at once: nothing waits in it while one is up.
    if (state === "open" && live[0] && live[0].readyState === 1 && c.queuedCount !== 0) this.fail(`${c.queuedCount} calls queued while open`);

    // Version 2: a link that carries a new session has sent its first frame (11.4: a request,
    // else an ack of 0), so that the game knows of it.
    if (this.v2 && state === "open" && live[0] && live[0].readyState === 1) {
      const info = this.sockets.get(live[0]);
      if (info.resume === null && live[0].sent.length === info.ackFrom && (info.ackFrom > 0 || info.session === null)) {
        this.fail("the link's new session is ready and the client sent nothing on it");
      }
    }

    // Version 2: what the link delivered is acknowledged within ackDelayMs (timers run late
    // only in a jump, and fire when it ends).
    if (this.v2 && state === "open" && live[0] && live[0].readyState === 1 && this.sockets.get(live[0]).session) {
      const acked = this.maxAck(live[0]);
      const first = this.sockets.get(live[0]).delivered.find((d) => d.k > acked);
      if (first && now - first.at >= this.opts.ackDelayMs) this.fail(`frame ${first.k} unacknowledged for ${now - first.at} ms (ackDelayMs ${this.opts.ackDelayMs})`);
    }

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
async function runOnce(seed, v2 = false) {
  const run = new Run(seed, v2);
  const report = () => {
    if (run.violations.length === 0) return;
    const opts = JSON.stringify(run.opts);
    throw new Error(
      `${v2 ? "v2 " : ""}seed ${seed}: ${run.violations[0]}\n  rerun: TICKSOCK_SEED=${seed} npm test\n  options: ${opts}\n  last steps:\n    ${run.trace.join("\n    ")}`,
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

const v2Runs = Number(process.env.TICKSOCK_V2_RUNS ?? 1500);

test(one ? `randomized version 2 run, seed ${one}` : `randomized version 2 runs: seeds ${first}..${first + v2Runs - 1}`, async () => {
  const seeds = one ? [Number(one)] : Array.from({ length: v2Runs }, (_, i) => first + i);
  if (!process.env.TICKSOCK_ALL) {
    for (const seed of seeds) await runOnce(seed, true);
    return;
  }
  const failures = [];
  for (const seed of seeds) await runOnce(seed, true).catch((e) => failures.push(e.message.split("\n")[0]));
  assert.deepEqual(failures, [], `${failures.length} of ${seeds.length} runs failed`);
});

test("the randomized version 2 runs reach the states they are meant to reach", async () => {
  const seen = { resumed: 0, newSession: 0, sessionEnded: 0, resuming: 0, replayed: 0, resent: 0, acks: 0, detachedAnswers: 0 };
  for (let seed = 1; seed <= 300; seed++) {
    const run = new Run(seed, true);
    const c = run.client;
    c.onEvent("connected", ({ resumed }) => (resumed ? seen.resumed++ : seen.newSession++));
    c.onEvent("session_ended", () => seen.sessionEnded++);
    c.onEvent("disconnected", ({ resuming }) => resuming && seen.resuming++);
    for (let i = 0; i < STEPS; i++) {
      run.budget = 3;
      run.step();
      await flush();
    }
    seen.replayed += run.replays > 0 ? 1 : 0;
    seen.detachedAnswers += run.detachedAnswers > 0 ? 1 : 0;
    seen.resent += c.stats.resentRequests > 0 ? 1 : 0;
    seen.acks += c.stats.acksSent > 0 ? 1 : 0;
    run.finish();
  }
  for (const [name, n] of Object.entries(seen)) assert.ok(n >= 50, `${name}: only ${n} in 300 runs`);
});
