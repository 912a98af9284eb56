/**
 * ticksock browser client: calls that feel like ajax over one WebSocket.
 *
 * It speaks the JSON subprotocol `ticksock.v1.json` (docs/PROTOCOL.md, section 9): every frame
 * is one text message holding one JSON object. A call sends `{"id", "route", "body"}` tagged with
 * a `u32` callback id; the server answers with exactly one reply or error carrying the same id,
 * in any order, and sends pushes `{"type": "push", "topic", "body"}` on its own.
 *
 * ```js
 * import { TicksockClient } from "/ticksock.js";
 * const client = new TicksockClient(`ws://${location.host}/`);
 * const { player_id } = await client.call("login", { name: "ann" });           // Promise form
 * client.call("rooms", null, (err, rooms) => { if (!err) console.log(rooms); }); // callback form
 * client.on("state", (state) => draw(state));                                   // pushes by topic
 * client.onEvent("connected", ({ welcome }) => console.log(welcome.tick_hz));  // lifecycle
 * ```
 *
 * # Every call ends in exactly one outcome
 * A reply (the Promise resolves, or `cb(null, result)`), or one of these errors (the Promise
 * rejects, or `cb(err)`), all `instanceof TicksockError` with a `kind`:
 *
 * | error               | `kind`          | when |
 * |---------------------|-----------------|------|
 * | `ReplyError`        | `"reply"`       | the server answered with an error frame; `code` is its code (PROTOCOL.md sections 6, 8.5) |
 * | `TimeoutError`      | `"timeout"`     | no answer within the call's timeout (counted from the call, time spent queued included) |
 * | `DisconnectedError` | `"disconnected"`| the call had been **sent** and the connection dropped before its answer |
 * | `QueueFullError`    | `"queue_full"`  | the call was made while offline and the offline queue is at its bound (count or bytes) |
 * | `TooLargeError`     | `"too_large"`   | the request frame is larger than `maxFrameBytes` (the server would close the connection) |
 * | `ClosedError`       | `"closed"`      | the client was closed, or gave up reconnecting, before the call could be sent |
 * | `TicksockError`     | `"busy"`/`"encode"` | too many calls waiting (`maxPending`), or the data cannot be written as JSON |
 *
 * The call's entry (its callback and timer) is freed on every outcome; an answer that arrives
 * after the timeout is dropped and counted in `stats.lateAnswers`. Failures found at call time
 * (queue full, too large, closed) are still delivered asynchronously, never from inside `call`.
 *
 * # When the link drops
 * - Calls **already sent** reject at once with `DisconnectedError`: the server may or may not
 *   have handled them, and it never answers them on another connection. They are **not** resent
 *   (resending a chat line or a purchase could do it twice); retry idempotent calls yourself.
 * - Calls made while **not connected** (or while the socket is already closing) wait in a bounded offline queue (`maxQueuedCalls`,
 *   `maxQueuedBytes`; one more rejects at once with `QueueFullError`) and are sent in order once
 *   the next connection has received its welcome. Their timeout keeps running meanwhile.
 * - `connected` listeners run before the queue is flushed, so a call made there (logging in
 *   again: a server session belongs to one connection) goes out ahead of the queued calls.
 * - The client reconnects with exponential backoff and jitter; after `maxAttempts` failed
 *   attempts in a row it gives up (event `closed`, queued calls reject with `ClosedError`). A
 *   connection that stayed up `stableAfterMs` resets the count.
 *
 * # Events, and callbacks that call back into the client
 * A connection that got its welcome emits `connected`, and later exactly one `disconnected`;
 * `closed` comes after the `disconnected` of the connection it ended. When a connection ends,
 * the state is `waiting` (or `closed`) before anything runs; then `disconnected` goes out, then
 * the calls sent on it reject. Listeners and callbacks may call `connect()`, `close()` and
 * `call()` at any point, and what they do stands: a `connect()` there starts the next
 * connection at once (no backoff delay is scheduled on top), a `close()` there is final. While
 * the client stops (`close()`, giving up, a version mismatch), a `connect()` from its callbacks
 * or listeners runs once the stop is done, after its `closed` event; a later `close()` there
 * cancels it.
 *
 * # Heartbeat
 * Browsers answer the server's WebSocket pings by themselves but never show them to scripts, so
 * the heartbeat is an application-level idle check: exactly one interval timer per connection
 * (started on the welcome, cleared when the connection ends), running every
 * `heartbeatIntervalMs`. When nothing was heard for `heartbeatIntervalMs` it sends a probe call
 * (`heartbeatRoute`; any answer, even an "unknown route" error, proves the link), one at a
 * time. The link is taken for dead, closed (code 4000) and replaced when nothing at all was
 * heard for `idleTimeoutMs` **and** a probe has gone unanswered for at least one interval; any
 * frame counts as hearing, but only the probe's answer ends the probe. The probe is what keeps
 * a background tab alive: browsers may throttle its timers to one run a minute, and a long gap
 * seen by a late timer is not death until a probe sent then goes unanswered until the next run.
 * With `heartbeatRoute: null`, or on a socket already closing (no probe can be sent), silence
 * alone decides.
 *
 * The bound: while timers run on time, a dead link is closed within
 * `max(idleTimeoutMs, 2 × heartbeatIntervalMs) + heartbeatIntervalMs` of the last frame heard
 * (20 s with the defaults; it is `idleTimeoutMs + heartbeatIntervalMs` whenever `idleTimeoutMs`
 * is at least twice the interval), and never before `idleTimeoutMs` of silence. After timers
 * ran late, the bound counts from when they run again.
 *
 * Close codes this client sends: 1000 (`close()`), 4000 (heartbeat: idle), 4001 (no welcome
 * within `connectTimeoutMs`), 4002 (protocol error: a frame it cannot read). Browsers allow
 * scripts only 1000 and 3000..4999.
 */

/** The subprotocol this client offers and speaks. */
export const SUBPROTOCOL = "ticksock.v1.json";
/** The wire format version this client understands (the welcome's `version`). */
export const PROTOCOL_VERSION = 1;

/** Error codes the server itself uses (PROTOCOL.md section 6). Codes >= 1000 are the game's. */
export const ErrorCodes = {
  UNKNOWN_ROUTE: 1,
  BAD_BODY: 2,
  INTERNAL: 3,
  BAD_FRAME: 4,
  RATE_LIMITED: 5,
  SHUTTING_DOWN: 6,
} as const;

/** Close codes this client sends. */
export const CloseCodes = {
  NORMAL: 1000,
  IDLE: 4000,
  CONNECT_TIMEOUT: 4001,
  PROTOCOL_ERROR: 4002,
} as const;

// ---------------------------------------------------------------------------------------------
// Errors

/** What ended a call that did not get a reply. */
export type ErrorKind = "reply" | "timeout" | "disconnected" | "queue_full" | "too_large" | "closed" | "busy" | "encode";

/** The base of every error this client produces. Branch on `kind` (or `instanceof`). */
export class TicksockError extends Error {
  /** What went wrong. */
  readonly kind: ErrorKind;
  /** The route of the call that failed ("" when the error is not about one call). */
  readonly route: string;
  constructor(kind: ErrorKind, route: string, message: string) {
    super(message);
    this.name = "TicksockError";
    this.kind = kind;
    this.route = route;
  }
}

/** The server answered the call with an error frame. */
export class ReplyError extends TicksockError {
  /** The error code: < 1000 the server's (`ErrorCodes`), >= 1000 the game's. */
  readonly code: number;
  /** The server's human-readable message (for logs; branch on `code`). */
  readonly serverMessage: string;
  constructor(route: string, code: number, serverMessage: string) {
    super("reply", route, `${route}: error ${code}${serverMessage ? `: ${serverMessage}` : ""}`);
    this.name = "ReplyError";
    this.code = code;
    this.serverMessage = serverMessage;
  }
}

/** No answer came within the call's timeout. */
export class TimeoutError extends TicksockError {
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor(route: string, timeoutMs: number) {
    super("timeout", route, `${route}: no answer within ${timeoutMs} ms`);
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** The call had been sent when the connection dropped: it may or may not have been handled. */
export class DisconnectedError extends TicksockError {
  constructor(route: string) {
    super("disconnected", route, `${route}: the connection dropped before the answer; the call may or may not have been handled`);
    this.name = "DisconnectedError";
  }
}

/** The call was made offline and the offline queue is full. */
export class QueueFullError extends TicksockError {
  constructor(route: string, detail: string) {
    super("queue_full", route, `${route}: offline queue full (${detail}); the call was not queued`);
    this.name = "QueueFullError";
  }
}

/** The request frame is larger than `maxFrameBytes`. */
export class TooLargeError extends TicksockError {
  constructor(route: string, bytes: number, max: number) {
    super("too_large", route, `${route}: request frame of ${bytes} bytes is over the ${max}-byte limit`);
    this.name = "TooLargeError";
  }
}

/** The client was closed, or gave up reconnecting, before the call was sent. */
export class ClosedError extends TicksockError {
  constructor(route: string, why: string) {
    super("closed", route, `${route ? `${route}: ` : ""}${why}`);
    this.name = "ClosedError";
  }
}

// ---------------------------------------------------------------------------------------------
// Types

/** A route's request and reply types. */
export interface RouteSpec {
  req: unknown;
  res: unknown;
}
/** Route name to its types. */
export type RouteMap = { [route: string]: RouteSpec };
/** Push topic to its body type. */
export type PushMap = { [topic: string]: unknown };
/** The default, untyped maps. */
export interface AnyRoutes {
  [route: string]: { req: any; res: any };
}
export interface AnyPushes {
  [topic: string]: any;
}

/** The welcome frame, the first the server sends on every connection. */
export interface Welcome {
  version: number;
  tick_hz: number;
  /** Opaque; a decimal string because it can exceed 2^53. */
  conn_id: string;
}

/** Lifecycle events and their payloads. */
export interface ClientEvents {
  /** A connection is up and its welcome arrived. `reconnected` is false for the first one. */
  connected: { welcome: Welcome; reconnected: boolean };
  /** A connection that had been up ended. `failedCalls` calls in flight reject with `DisconnectedError` (after this event's listeners). */
  disconnected: { code: number; reason: string; wasClean: boolean; failedCalls: number };
  /** The next connection attempt, number `attempt` (1-based), starts in `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; maxAttempts: number | null };
  /** The client stopped for good: `close()` was called, it gave up reconnecting, or the server speaks another version. */
  closed: { reason: "closed" | "gave_up" | "version"; error: TicksockError | null };
}
export type EventName = keyof ClientEvents;

/** Node-style callback of the callback form of `call`. */
export type Callback<T> = (err: TicksockError | null, result?: T) => void;

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds to wait for the answer, counted from the call; `Infinity` waits forever. Default: `callTimeoutMs`. */
  timeout?: number;
}

/** The part of the WebSocket API this client uses; the browser's `WebSocket` fits it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
/** A WebSocket constructor, injectable for tests or for non-browser runtimes. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Clock and timers, injectable for tests. Times are in milliseconds. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Every timing and bound of a client, with its default. */
export interface ClientOptions {
  /** The WebSocket constructor. Default: `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Connect from the constructor. Default true; else call `connect()`. */
  autoConnect?: boolean;
  /** Default timeout of a call. Default 10 000 ms. */
  callTimeoutMs?: number;
  /** How long a connection attempt may take, up to the welcome. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Heartbeat period: after this long without hearing anything, send a probe call. Default 5 000 ms. */
  heartbeatIntervalMs?: number;
  /** After this long without hearing anything (and a probe unanswered for an interval), the connection is taken for dead. Default 15 000 ms. */
  idleTimeoutMs?: number;
  /** The route of the heartbeat probe, or null to send none (then only the idle check runs). Default "echo". */
  heartbeatRoute?: string | null;
  /** Delay before the first reconnect attempt; it doubles with each failed attempt. Default 250 ms. */
  backoffInitialMs?: number;
  /** Longest delay between attempts. Default 30 000 ms. */
  backoffMaxMs?: number;
  /** Random fraction taken off each delay, 0..1: a delay d becomes a value in [d(1-jitter), d]. Default 0.5. */
  backoffJitter?: number;
  /** Failed attempts in a row after which the client gives up; null retries forever. Default 10. */
  maxAttempts?: number | null;
  /** A connection that stays up this long resets the count of failed attempts. Default 10 000 ms. */
  stableAfterMs?: number;
  /** Calls queued while offline, at most. Default 256. */
  maxQueuedCalls?: number;
  /** Bytes (UTF-8 request frames) queued while offline, at most. Default 256 KiB. */
  maxQueuedBytes?: number;
  /** Calls waiting for an answer (queued or sent), at most. Default 65 536. */
  maxPending?: number;
  /** Largest request frame, in bytes; the server closes the connection (1009) above its limit. Default 65 536. */
  maxFrameBytes?: number;
  /** Clock and timers. Default: `performance.now` and the global timers. */
  timers?: Timers;
  /** Random source in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
  /** The first callback id (tests use it to reach the wraparound). Default 0. */
  firstId?: number;
  /** Receives what a listener or callback throws. Default: `reportError`, else `console.error`. */
  onListenerError?: (err: unknown) => void;
}

/** Counters, for display and tests. */
export interface ClientStats {
  /** Request frames sent (heartbeat probes included). */
  sent: number;
  replies: number;
  errorReplies: number;
  timeouts: number;
  /** Calls that rejected with `DisconnectedError`. */
  disconnectedCalls: number;
  /** Answers whose call had already ended (after a timeout). */
  lateAnswers: number;
  pushes: number;
  /** Pushes on topics without a listener. */
  unheardPushes: number;
  /** Connections whose welcome arrived. */
  connections: number;
  heartbeatProbes: number;
  /** Round trip (send to answer) of the last answered call, and a moving average (ms); null before the first. */
  rttMs: number | null;
  rttAvgMs: number | null;
}

/** The client's link state. `open` means the welcome arrived and calls go out at once. */
export type LinkState = "idle" | "connecting" | "open" | "waiting" | "closed";

// ---------------------------------------------------------------------------------------------
// Callback ids

const ID_SPACE = 0x1_0000_0000; // 2^32

/**
 * Callback ids: count up from `first`, wrap at 2^32, skip any id still in use. With fewer than
 * 2^32 ids in use, `next` always finds one.
 */
export class CallIds {
  private nextId: number;
  constructor(first = 0) {
    this.nextId = toU32(first);
  }
  /** The next id not in use. */
  next(inUse: (id: number) => boolean): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id + 1 === ID_SPACE ? 0 : id + 1;
      if (!inUse(id)) return id;
    }
  }
  /** The id `next` tries first. */
  peek(): number {
    return this.nextId;
  }
}

function toU32(n: number): number {
  return ((Math.floor(n) % ID_SPACE) + ID_SPACE) % ID_SPACE;
}

// ---------------------------------------------------------------------------------------------
// The client

interface Entry {
  id: number;
  route: string;
  text: string;
  bytes: number;
  /** true while waiting in the offline queue, false once sent. */
  queued: boolean;
  cb: (err: TicksockError | null, result?: unknown) => void;
  timer: unknown;
  startedAt: number;
  /** When it was sent (for the round trip), 0 before. */
  sentAt: number;
  internal: boolean;
}

type Resolved = Required<Omit<ClientOptions, "WebSocket" | "timers" | "random" | "firstId" | "onListenerError">>;

const DEFAULTS: Resolved = {
  autoConnect: true,
  callTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  heartbeatIntervalMs: 5_000,
  idleTimeoutMs: 15_000,
  heartbeatRoute: "echo",
  backoffInitialMs: 250,
  backoffMaxMs: 30_000,
  backoffJitter: 0.5,
  maxAttempts: 10,
  stableAfterMs: 10_000,
  maxQueuedCalls: 256,
  maxQueuedBytes: 256 * 1024,
  maxPending: 65_536,
  maxFrameBytes: 65_536,
};

/** `WebSocket.OPEN`. */
const OPEN = 1;

/** Browsers clamp longer timer delays to 0, firing them at once. */
const MAX_TIMER_MS = 0x7fff_ffff;

const defaultTimers: Timers = {
  now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
};

/** The delay before reconnect attempt `attempt` (1-based), without jitter. */
export function backoffCeiling(attempt: number, initialMs: number, maxMs: number): number {
  const doublings = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(initialMs * 2 ** doublings, Math.max(maxMs, initialMs));
}

/** UTF-8 length of a string, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * A ticksock client over one WebSocket. `R` maps routes to their request and reply types, `P`
 * push topics to their bodies (see `ArenaRoutes` and `ArenaPushes` for the example game).
 */
export class TicksockClient<R extends RouteMap = AnyRoutes, P extends PushMap = AnyPushes> {
  /** The server URL, e.g. `ws://127.0.0.1:7777/`. */
  readonly url: string;
  /** Counters. */
  readonly stats: ClientStats = {
    sent: 0,
    replies: 0,
    errorReplies: 0,
    timeouts: 0,
    disconnectedCalls: 0,
    lateAnswers: 0,
    pushes: 0,
    unheardPushes: 0,
    connections: 0,
    heartbeatProbes: 0,
    rttMs: null,
    rttAvgMs: null,
  };

  private readonly opts: Resolved;
  private readonly WS: WebSocketConstructor;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly reportListenerError: (err: unknown) => void;
  private readonly ids: CallIds;

  private linkState: LinkState = "idle";
  private ws: WebSocketLike | null = null;
  private welcomeFrame: Welcome | null = null;
  private openedAt = 0;
  private lastHeard = 0;
  private connectTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private reconnectTimer: unknown = null;
  /** The heartbeat probe waiting for its answer, if any (one at a time). */
  private probe: { sentAt: number } | null = null;
  /** Failed attempts in a row; the next attempt's number is this. */
  private attempt = 0;
  /** How many stops (`close()`, giving up, a version mismatch) are running their callbacks. */
  private stopping = 0;
  /** `connect()` was called by a callback of a stop: it runs once the stop is done. */
  private restartRequested = false;

  /** Every call waiting for its outcome, queued or sent, by id (in call order). */
  private readonly pending = new Map<number, Entry>();
  /** The offline queue, in call order. */
  private queue: Entry[] = [];
  private queuedBytes = 0;

  private readonly pushListeners = new Map<string, Set<(body: any, topic: string) => void>>();
  private readonly eventListeners = new Map<string, Set<(payload: any) => void>>();

  constructor(url: string, options: ClientOptions = {}) {
    new URL(url); // throws a SyntaxError now for a URL that can never work
    this.url = url;
    const opts: Resolved = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof Resolved)[]) {
      const v = options[key];
      if (v !== undefined) (opts as any)[key] = v;
    }
    this.opts = opts;
    const WS = options.WebSocket ?? (globalThis as any).WebSocket;
    if (typeof WS !== "function") throw new TypeError("ticksock: no WebSocket in this runtime; pass options.WebSocket");
    this.WS = WS;
    this.timers = options.timers ?? defaultTimers;
    this.random = options.random ?? Math.random;
    this.ids = new CallIds(options.firstId ?? 0);
    this.reportListenerError =
      options.onListenerError ??
      ((err) => {
        const report = (globalThis as any).reportError;
        if (typeof report === "function") report(err);
        else console.error("ticksock: a listener threw", err);
      });
    if (opts.autoConnect) this.connect();
  }

  // ----- state -----------------------------------------------------------------------------

  /** The link state. */
  get state(): LinkState {
    return this.linkState;
  }
  /** True when the welcome of the current connection arrived: calls go out at once. */
  get connected(): boolean {
    return this.linkState === "open";
  }
  /** The current connection's welcome, or null. */
  get welcome(): Welcome | null {
    return this.welcomeFrame;
  }
  /** Calls waiting for their outcome (queued or sent). */
  get pendingCount(): number {
    return this.pending.size;
  }
  /** Calls in the offline queue. */
  get queuedCount(): number {
    return this.queue.length;
  }
  /** Bytes in the offline queue. */
  get queuedByteCount(): number {
    return this.queuedBytes;
  }
  /** Failed connection attempts in a row so far. */
  get failedAttempts(): number {
    return this.attempt;
  }

  /**
   * Resolves with the welcome once connected (at once if it is); rejects if the client closes
   * first. With `autoConnect: false` it waits for `connect()`.
   */
  ready(): Promise<Welcome> {
    if (this.linkState === "open" && this.welcomeFrame) return Promise.resolve(this.welcomeFrame);
    if (this.linkState === "closed") return Promise.reject(new ClosedError("", "the client is closed"));
    return new Promise((resolve, reject) => {
      const offConnected = this.onEvent("connected", ({ welcome }) => {
        offConnected();
        offClosed();
        resolve(welcome);
      });
      const offClosed = this.onEvent("closed", ({ error }) => {
        offConnected();
        offClosed();
        reject(error ?? new ClosedError("", "the client is closed"));
      });
    });
  }

  // ----- calls -----------------------------------------------------------------------------

  /** Call `route` with `data`; the Promise settles with the call's one outcome. */
  call<K extends keyof R & string>(route: K, data?: R[K]["req"], options?: CallOptions): Promise<R[K]["res"]>;
  /** Call `route` with `data`; `cb(err, result)` is called once, with the call's one outcome. */
  call<K extends keyof R & string>(route: K, data: R[K]["req"], cb: Callback<R[K]["res"]>): void;
  call<K extends keyof R & string>(route: K, data: R[K]["req"], options: CallOptions, cb: Callback<R[K]["res"]>): void;
  call(route: string, data?: unknown, a?: CallOptions | Callback<unknown>, b?: Callback<unknown>): Promise<unknown> | void {
    let options: CallOptions = {};
    let cb: Callback<unknown> | undefined;
    if (typeof a === "function") cb = a;
    else {
      options = a ?? {};
      if (typeof b === "function") cb = b;
    }
    if (cb) {
      const user = cb;
      this.start(route, data, options, (err, result) => this.guard(() => user(err, result)), false);
      return;
    }
    return new Promise((resolve, reject) => {
      this.start(route, data, options, (err, result) => (err ? reject(err) : resolve(result)), false);
    });
  }

  private start(route: string, data: unknown, options: CallOptions, cb: Entry["cb"], internal: boolean): void {
    const failLater = (err: TicksockError) => queueMicrotask(() => cb(err));
    if (this.linkState === "closed") return failLater(new ClosedError(route, "the client is closed"));
    if (this.pending.size >= this.opts.maxPending) {
      return failLater(new TicksockError("busy", route, `${route}: ${this.pending.size} calls already waiting (maxPending)`));
    }
    let body: string | undefined;
    try {
      body = data === undefined ? undefined : JSON.stringify(data);
    } catch (e) {
      return failLater(new TicksockError("encode", route, `${route}: data is not JSON: ${String(e)}`));
    }
    const id = this.ids.next((id) => this.pending.has(id));
    const text = `{"id":${id},"route":${JSON.stringify(route)}${body === undefined ? "" : `,"body":${body}`}}`;
    const bytes = utf8Length(text);
    if (bytes > this.opts.maxFrameBytes) return failLater(new TooLargeError(route, bytes, this.opts.maxFrameBytes));
    // A socket already closing (its close event still to come) sends nothing: queue the call
    // for the next connection instead, since it was never sent.
    const online = this.linkState === "open" && this.ws !== null && this.ws.readyState === OPEN;
    if (!online) {
      if (this.queue.length >= this.opts.maxQueuedCalls) {
        return failLater(new QueueFullError(route, `${this.queue.length} of ${this.opts.maxQueuedCalls} calls`));
      }
      if (this.queuedBytes + bytes > this.opts.maxQueuedBytes) {
        return failLater(new QueueFullError(route, `${this.queuedBytes} + ${bytes} bytes over ${this.opts.maxQueuedBytes}`));
      }
    }
    const entry: Entry = { id, route, text, bytes, queued: !online, cb, timer: null, startedAt: this.timers.now(), sentAt: 0, internal };
    const timeoutMs = options.timeout ?? this.opts.callTimeoutMs;
    if (Number.isFinite(timeoutMs)) {
      const ms = Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS);
      entry.timer = this.timers.setTimeout(() => {
        if (this.finish(id, new TimeoutError(route, timeoutMs))) this.stats.timeouts++;
      }, ms);
    }
    this.pending.set(id, entry);
    if (online) this.transmit(entry);
    else {
      this.queue.push(entry);
      this.queuedBytes += bytes;
    }
  }

  /** Ends call `id` with its one outcome; false if it had already ended. */
  private finish(id: number, err: TicksockError | null, result?: unknown): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    this.pending.delete(id);
    if (entry.timer !== null) this.timers.clearTimeout(entry.timer);
    entry.timer = null;
    if (entry.queued) {
      const i = this.queue.indexOf(entry);
      if (i >= 0) this.queue.splice(i, 1);
      this.queuedBytes -= entry.bytes;
      entry.queued = false;
    }
    if (err) entry.cb(err);
    else entry.cb(null, result);
    return true;
  }

  private transmit(entry: Entry): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      entry.sentAt = this.timers.now();
      ws.send(entry.text);
      this.stats.sent++;
    } catch {
      // Only a socket that is not open throws; its close comes next and fails the call.
    }
  }

  // ----- pushes and events -----------------------------------------------------------------

  /** Listen to pushes on `topic`. Returns a function that stops listening. */
  on<T extends keyof P & string>(topic: T, handler: (body: P[T], topic: T) => void): () => void {
    let set = this.pushListeners.get(topic);
    if (!set) this.pushListeners.set(topic, (set = new Set()));
    set.add(handler as (body: any, topic: string) => void);
    return () => this.off(topic, handler);
  }

  /** Stop a push listener. */
  off<T extends keyof P & string>(topic: T, handler: (body: P[T], topic: T) => void): void {
    const set = this.pushListeners.get(topic);
    if (!set) return;
    set.delete(handler as (body: any, topic: string) => void);
    if (set.size === 0) this.pushListeners.delete(topic);
  }

  /** Listen to a lifecycle event. Returns a function that stops listening. */
  onEvent<E extends EventName>(event: E, handler: (payload: ClientEvents[E]) => void): () => void {
    let set = this.eventListeners.get(event);
    if (!set) this.eventListeners.set(event, (set = new Set()));
    set.add(handler);
    return () => this.offEvent(event, handler);
  }

  /** Stop a lifecycle listener. */
  offEvent<E extends EventName>(event: E, handler: (payload: ClientEvents[E]) => void): void {
    this.eventListeners.get(event)?.delete(handler);
  }

  private emit<E extends EventName>(event: E, payload: ClientEvents[E]): void {
    const set = this.eventListeners.get(event);
    if (!set) return;
    for (const h of [...set]) this.guard(() => h(payload));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.reportListenerError(e);
    }
  }

  // ----- connection ------------------------------------------------------------------------

  /**
   * Connect now: starts the first connection, skips a pending backoff delay, or restarts a
   * closed client (with a fresh count of attempts). Does nothing while connecting or connected.
   * Called from a callback or listener while the client stops, it runs once the stop is done.
   */
  connect(): void {
    // Called from a callback or listener of a stop: the stop finishes first (its queued calls
    // reject and its `closed` event goes out while the state still says closed), then this runs.
    if (this.stopping > 0) {
      this.restartRequested = true;
      return;
    }
    if (this.linkState === "connecting" || this.linkState === "open") return;
    if (this.reconnectTimer !== null) {
      this.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    if (this.linkState === "closed") this.attempt = 0;
    this.open();
  }

  /**
   * Close for good: calls in flight reject with `DisconnectedError`, queued calls with
   * `ClosedError`, events `disconnected` (if a connection was up) then `closed` go out, and no
   * reconnect follows (until `connect()`, which a callback of this close may call).
   */
  close(): void {
    this.restartRequested = false; // the later of connect() and close() in a callback wins
    if (this.linkState === "closed") return;
    this.shutDown("closed", null, CloseCodes.NORMAL, "client closed", true);
  }

  private open(): void {
    this.linkState = "connecting";
    this.welcomeFrame = null;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url, SUBPROTOCOL);
    } catch (e) {
      // E.g. a SecurityError; it counts as a failed attempt.
      this.ws = null;
      this.afterDrop(false, 0);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (ws.protocol !== SUBPROTOCOL) this.protocolError(ws, `the server chose subprotocol "${ws.protocol}"`);
    };
    ws.onmessage = (ev: { data: unknown }) => this.onFrame(ws, ev.data);
    ws.onclose = (ev: { code?: number; reason?: string; wasClean?: boolean }) =>
      this.teardown(ws, ev.code ?? 1006, ev.reason ?? "", ev.wasClean ?? false, true);
    ws.onerror = () => {
      // A close event follows; it does the work.
    };
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = null;
      this.teardown(ws, CloseCodes.CONNECT_TIMEOUT, `no welcome within ${this.opts.connectTimeoutMs} ms`, false);
    }, this.opts.connectTimeoutMs);
  }

  private onFrame(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.ws) return;
    this.lastHeard = this.timers.now();
    if (typeof data !== "string") return this.protocolError(ws, "a binary message on the JSON subprotocol");
    let f: any;
    try {
      f = JSON.parse(data);
    } catch {
      return this.protocolError(ws, "a message that is not JSON");
    }
    if (typeof f !== "object" || f === null) return this.protocolError(ws, "a message that is not a JSON object");
    switch (f.type) {
      case "welcome":
        return this.onWelcome(ws, f);
      case "reply":
      case "error": {
        const entry = typeof f.id === "number" ? this.pending.get(f.id) : undefined;
        if (!entry || entry.queued) {
          this.stats.lateAnswers++;
          return;
        }
        const rtt = this.timers.now() - entry.sentAt;
        this.stats.rttMs = rtt;
        this.stats.rttAvgMs = this.stats.rttAvgMs === null ? rtt : this.stats.rttAvgMs * 0.8 + rtt * 0.2;
        if (f.type === "reply") {
          this.stats.replies++;
          this.finish(f.id, null, f.body ?? null);
        } else {
          this.stats.errorReplies++;
          this.finish(f.id, new ReplyError(entry.route, Number(f.code), String(f.message ?? "")));
        }
        return;
      }
      case "push": {
        this.stats.pushes++;
        const set = this.pushListeners.get(f.topic);
        if (!set || set.size === 0) {
          this.stats.unheardPushes++;
          return;
        }
        for (const h of [...set]) this.guard(() => h(f.body ?? null, f.topic));
        return;
      }
      default:
        return this.protocolError(ws, `a frame of unknown type ${JSON.stringify(f.type)}`);
    }
  }

  private onWelcome(ws: WebSocketLike, f: any): void {
    if (this.linkState !== "connecting") return this.protocolError(ws, "a second welcome");
    if (f.version !== PROTOCOL_VERSION) {
      const err = new ClosedError("", `the server speaks protocol version ${f.version}, this client ${PROTOCOL_VERSION}`);
      this.shutDown("version", err, CloseCodes.PROTOCOL_ERROR, "unsupported version", false);
      return;
    }
    if (this.connectTimer !== null) {
      this.timers.clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    this.welcomeFrame = { version: f.version, tick_hz: Number(f.tick_hz), conn_id: String(f.conn_id) };
    this.linkState = "open";
    this.openedAt = this.timers.now();
    this.lastHeard = this.openedAt;
    this.stats.connections++;
    this.startHeartbeat(ws);
    this.emit("connected", { welcome: this.welcomeFrame, reconnected: this.stats.connections > 1 });
    // Flush the offline queue in order (a listener above may have closed or dropped the link).
    while (this.queue.length > 0 && this.ws === ws && this.linkState === "open" && ws.readyState === OPEN) {
      const entry = this.queue.shift()!;
      entry.queued = false;
      this.queuedBytes -= entry.bytes;
      this.transmit(entry);
    }
  }

  private startHeartbeat(ws: WebSocketLike): void {
    if (this.heartbeatTimer !== null) this.timers.clearInterval(this.heartbeatTimer); // never two
    this.heartbeatTimer = this.timers.setInterval(() => {
      if (ws !== this.ws || this.linkState !== "open") return;
      const now = this.timers.now();
      const idle = now - this.lastHeard;
      const interval = this.opts.heartbeatIntervalMs;
      const route = this.opts.heartbeatRoute;
      const canProbe = route !== null && ws.readyState === OPEN;
      // Silence alone is not death when a probe can go out: a background tab whose timers the
      // browser throttled to one a minute sees long gaps on a live link. So it also takes a
      // probe left unanswered for at least an interval (one sent by a late run has until the
      // next run). A frame heard ends the silence but not the probe: only its answer does, so
      // a frame that came just after the probe cannot keep a link that then went quiet alive.
      const probeOverdue = this.probe !== null && now - this.probe.sentAt >= interval;
      if (idle >= this.opts.idleTimeoutMs && (!canProbe || probeOverdue)) {
        this.teardown(ws, CloseCodes.IDLE, `nothing heard for ${Math.round(idle)} ms`, false);
      } else if (canProbe && idle >= interval && this.probe === null) {
        const probe = { sentAt: now };
        this.probe = probe;
        this.stats.heartbeatProbes++;
        const answered = () => {
          if (this.probe === probe) this.probe = null;
        };
        this.start(route, null, { timeout: Infinity }, answered, true);
      }
    }, this.opts.heartbeatIntervalMs);
  }

  private protocolError(ws: WebSocketLike, what: string): void {
    this.teardown(ws, CloseCodes.PROTOCOL_ERROR, `protocol error: ${what}`.slice(0, 120), false);
  }

  /**
   * Ends connection `ws` (closing it if `fromSocket` is false): its timers stop, calls sent on it
   * reject with `DisconnectedError`, and a reconnect is scheduled unless the client is closed.
   */
  private teardown(ws: WebSocketLike, code: number, reason: string, wasClean: boolean, fromSocket = false): void {
    if (ws !== this.ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (!fromSocket) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closed.
      }
    }
    if (this.connectTimer !== null) {
      this.timers.clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    if (this.heartbeatTimer !== null) {
      this.timers.clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
    this.probe = null;
    const wasOpen = this.welcomeFrame !== null;
    const upFor = wasOpen ? this.timers.now() - this.openedAt : 0;
    this.welcomeFrame = null;
    // The state and what fails are settled before any listener or callback runs: those may call
    // connect() or close(), and what they start must be left alone below.
    if (this.linkState !== "closed") this.linkState = "waiting";
    const sent: Entry[] = [];
    for (const entry of this.pending.values()) if (!entry.queued) sent.push(entry);
    const failedCalls = sent.filter((entry) => !entry.internal).length;
    // The event first, so that its listeners, and the calls' callbacks after them, see the
    // events in order: a close() there follows the `disconnected` with its `closed`.
    if (wasOpen) this.emit("disconnected", { code, reason, wasClean, failedCalls });
    for (const entry of sent) {
      // A callback may have ended some already (a close() in it ends the rest).
      if (this.pending.get(entry.id) !== entry) continue;
      this.finish(entry.id, new DisconnectedError(entry.route));
      if (!entry.internal) this.stats.disconnectedCalls++;
    }
    // Reconnect only if no callback connected or closed meanwhile.
    if (this.linkState === "waiting" && this.ws === null && this.reconnectTimer === null) this.afterDrop(wasOpen, upFor);
  }

  private afterDrop(wasOpen: boolean, upFor: number): void {
    if (wasOpen && upFor >= this.opts.stableAfterMs) this.attempt = 0;
    this.attempt++;
    const max = this.opts.maxAttempts;
    if (max !== null && this.attempt > max) {
      this.shutDown("gave_up", new ClosedError("", `gave up after ${max} failed connection attempts`), CloseCodes.NORMAL, "", false);
      return;
    }
    this.linkState = "waiting";
    const ceiling = backoffCeiling(this.attempt, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
    const jitter = Math.min(Math.max(this.opts.backoffJitter, 0), 1);
    const delayMs = Math.round(ceiling * (1 - jitter * this.random()));
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.linkState === "waiting") this.open();
    }, delayMs);
    this.emit("reconnecting", { attempt: this.attempt, delayMs, maxAttempts: max });
  }

  /**
   * The client stops for good: the connection, if any, ends with `code` (its sent calls reject
   * with `DisconnectedError`, and `disconnected` goes out if it was open), queued calls reject
   * with `ClosedError`, then `closed` goes out. A `connect()` from any of their callbacks or
   * listeners runs after that.
   */
  private shutDown(
    reason: ClientEvents["closed"]["reason"],
    error: TicksockError | null,
    code: number,
    closeReason: string,
    wasClean: boolean,
  ): void {
    this.linkState = "closed";
    if (this.reconnectTimer !== null) {
      this.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    const why = error ? error.message : "the client was closed";
    this.stopping++;
    try {
      if (this.ws) this.teardown(this.ws, code, closeReason, wasClean);
      // Calls made from the callbacks meanwhile are refused (the state says closed): the
      // queue only shrinks.
      for (let entry = this.queue.shift(); entry; entry = this.queue.shift()) {
        this.finish(entry.id, new ClosedError(entry.route, `not sent: ${why}`));
      }
      this.emit("closed", { reason, error });
    } finally {
      this.stopping--;
    }
    if (this.stopping === 0 && this.restartRequested) {
      this.restartRequested = false;
      this.connect();
    }
  }
}

/** Shorthand for `new TicksockClient(url, options)`. */
export function connect<R extends RouteMap = AnyRoutes, P extends PushMap = AnyPushes>(
  url: string,
  options?: ClientOptions,
): TicksockClient<R, P> {
  return new TicksockClient<R, P>(url, options);
}

// ---------------------------------------------------------------------------------------------
// The example game, "arena" (arena/src/proto.rs; PROTOCOL.md section 8)

/** Arena error codes (PROTOCOL.md section 8.5). */
export const ArenaErrors = {
  NOT_LOGGED_IN: 1001,
  NOT_IN_ROOM: 1002,
  NO_SUCH_ROOM: 1003,
  ROOM_FULL: 1004,
  INVALID: 1005,
  NOT_ONLINE: 1006,
} as const;

/** Arena constants (PROTOCOL.md section 8.1). */
export const Arena = { SIZE: 1000, SPEED: 5, MAX_NAME_LEN: 32, MAX_CHAT_LEN: 256 } as const;

export interface PlayerState {
  id: number;
  x: number;
  y: number;
}
/** One player of an arena and their name, as `join` lists them (PROTOCOL.md section 8.3). */
export interface RosterEntry {
  id: number;
  name: string;
}
export interface RoomInfo {
  name: string;
  players: number;
  capacity: number;
}
export interface ChatLine {
  player_id: number;
  name: string;
  text: string;
}
export interface Presence {
  player_id: number;
  name: string;
  joined: boolean;
}
export interface State {
  tick: number;
  players: PlayerState[];
}

/** The arena's routes: request and reply types. */
export interface ArenaRoutes {
  [route: string]: RouteSpec;
  login: { req: { name: string }; res: { player_id: number } };
  rooms: { req: null | undefined; res: RoomInfo[] };
  join: { req: { room: string }; res: { room: string; players: PlayerState[]; roster: RosterEntry[] } };
  leave: { req: null | undefined; res: null };
  move: { req: { dx: number; dy: number }; res: { tick: number } };
  chat: { req: { text: string }; res: null };
  whisper: { req: { to: string; text: string }; res: null };
  echo: { req: unknown; res: unknown };
}

/** The arena's push topics and bodies. */
export interface ArenaPushes {
  [topic: string]: unknown;
  state: State;
  chat: ChatLine;
  presence: Presence;
  whisper: ChatLine;
}
