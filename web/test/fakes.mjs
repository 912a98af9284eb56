// Test doubles: a fake WebSocket the test drives by hand, and a fake clock with timers.

/** Session secrets for version 2 welcomes and resumes (32 lowercase hex digits). */
import { TicksockClient } from "../dist/ticksock.js";

export const SECRET_A = "00112233445566778899aabbccddeeff";
export const SECRET_B = "ffeeddccbbaa99887766554433221100";

/** A fake WebSocket. `FakeSocket.all` lists every one constructed, in order. */
export class FakeSocket {
  static all = [];
  static reset() {
    FakeSocket.all = [];
  }
  static get last() {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.protocol = "";
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
  }

  send(data) {
    if (this.readyState === 0) throw new Error("InvalidStateError: still connecting");
    if (this.readyState !== 1) return; // browsers drop data on a closing socket
    this.sent.push(data);
  }
  close(code = 1000, reason = "") {
    this.closedWith = { code, reason };
    this.readyState = 2;
  }

  // ---- driven by the test ----
  /** The requests sent, parsed. */
  get requests() {
    return this.sent.map((s) => JSON.parse(s));
  }
  /** The handshake completes. */
  open(protocol = "ticksock.v1.json") {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
  /** A server frame arrives. */
  receive(frame) {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }
  /** Open and welcome (version 1: the server picked ticksock.v1.json). */
  welcome(tick_hz = 30) {
    this.open();
    this.receive({ type: "welcome", version: 1, tick_hz, conn_id: "4294967296" });
  }
  /** Open on ticksock.v2.json and welcome with a new session (PROTOCOL.md 11.3). */
  welcome2({ conn_id = "4294967296", epoch = "11400714819323198485", secret = SECRET_A, tick_hz = 30 } = {}) {
    this.open("ticksock.v2.json");
    this.receive({ type: "welcome", version: 2, tick_hz, conn_id, epoch, secret });
  }
  /** The frames sent, parsed, of one `type` ("request" for requests, of either version). */
  framesOf(type) {
    return this.requests.filter((f) => (f.type ?? "request") === type);
  }
  reply(id, body) {
    this.receive({ type: "reply", id, body });
  }
  error(id, code, message = "") {
    this.receive({ type: "error", id, code, message });
  }
  push(topic, body) {
    this.receive({ type: "push", topic, body });
  }
  /** The server started the closing handshake: sends are dropped, the close event is yet to come. */
  closing() {
    this.readyState = 2;
  }
  /** The connection drops (or fails to open). */
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: false });
  }
}

/** A fake clock: timers fire only when the test advances time. */
export class FakeClock {
  constructor() {
    this.t = 0;
    this.seq = 0;
    this.timers = new Map(); // handle -> {at, fn, every}
    this.intervalsCreated = 0;
  }
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const h = ++this.seq;
    this.timers.set(h, { at: this.t + Math.max(0, ms), fn, every: null });
    return h;
  }
  clearTimeout(h) {
    this.timers.delete(h);
  }
  setInterval(fn, ms) {
    const h = ++this.seq;
    this.intervalsCreated++;
    this.timers.set(h, { at: this.t + ms, fn, every: ms });
    return h;
  }
  clearInterval(h) {
    this.timers.delete(h);
  }
  /** Intervals still running. */
  get activeIntervals() {
    return [...this.timers.values()].filter((t) => t.every !== null).length;
  }
  /** Timeouts still pending. */
  get activeTimeouts() {
    return [...this.timers.values()].filter((t) => t.every === null).length;
  }
  /** Advance time by `ms`, firing due timers in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [h, t] of this.timers) if (t.at <= end && (next === null || t.at < next[1].at)) next = [h, t];
      if (!next) break;
      const [h, t] = next;
      this.t = t.at;
      if (t.every !== null) t.at += t.every;
      else this.timers.delete(h);
      t.fn();
    }
    this.t = end;
  }
  /**
   * Jump `ms` ahead as a browser does for a throttled background tab: every timer that fell
   * due meanwhile fires once, late, at the new time (intervals are not caught up).
   */
  jump(ms) {
    this.t += ms;
    for (const t of this.timers.values()) if (t.at < this.t) t.at = this.t;
    this.advance(0);
  }
  /** What the client needs as `options.timers`. */
  get api() {
    return {
      now: () => this.now(),
      setTimeout: (fn, ms) => this.setTimeout(fn, ms),
      clearTimeout: (h) => this.clearTimeout(h),
      setInterval: (fn, ms) => this.setInterval(fn, ms),
      clearInterval: (h) => this.clearInterval(h),
    };
  }
}

/** Let queued microtasks (promise callbacks) run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A client on `FakeSocket` and `clock`, without jitter, heartbeat or idle timeout unless
 * `options` ask for them: what the client tests drive by hand.
 */
export function fakeClient(clock, url, options = {}) {
  return new TicksockClient(url, {
    WebSocket: FakeSocket,
    timers: clock.api,
    random: () => 0,
    heartbeatRoute: null,
    idleTimeoutMs: 1e12,
    ...options,
  });
}

/** Settles a promise into {done, ok, value} / {done, ok: false, error} without throwing. */
export function settle(p) {
  const out = { done: false };
  p.then(
    (value) => Object.assign(out, { done: true, ok: true, value }),
    (error) => Object.assign(out, { done: true, ok: false, error }),
  );
  return out;
}

/** Records the client's lifecycle events `names`, in order, as [name, payload]. */
export function recordEvents(c, names) {
  const events = [];
  for (const name of names) c.onEvent(name, (p) => events.push([name, p]));
  return events;
}
