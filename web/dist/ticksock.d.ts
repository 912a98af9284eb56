// ticksock-client: the ticksock browser client (subprotocol ticksock.v1.json).
// GENERATED from web/src/client.ts by `npm run build` in web/; do not edit. Served by the server at /ticksock.js.
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
export declare const SUBPROTOCOL = "ticksock.v1.json";
/** The wire format version this client understands (the welcome's `version`). */
export declare const PROTOCOL_VERSION = 1;
/** Error codes the server itself uses (PROTOCOL.md section 6). Codes >= 1000 are the game's. */
export declare const ErrorCodes: {
    readonly UNKNOWN_ROUTE: 1;
    readonly BAD_BODY: 2;
    readonly INTERNAL: 3;
    readonly BAD_FRAME: 4;
    readonly RATE_LIMITED: 5;
    readonly SHUTTING_DOWN: 6;
};
/** Close codes this client sends. */
export declare const CloseCodes: {
    readonly NORMAL: 1000;
    readonly IDLE: 4000;
    readonly CONNECT_TIMEOUT: 4001;
    readonly PROTOCOL_ERROR: 4002;
};
/** What ended a call that did not get a reply. */
export type ErrorKind = "reply" | "timeout" | "disconnected" | "queue_full" | "too_large" | "closed" | "busy" | "encode";
/** The base of every error this client produces. Branch on `kind` (or `instanceof`). */
export declare class TicksockError extends Error {
    /** What went wrong. */
    readonly kind: ErrorKind;
    /** The route of the call that failed ("" when the error is not about one call). */
    readonly route: string;
    constructor(kind: ErrorKind, route: string, message: string);
}
/** The server answered the call with an error frame. */
export declare class ReplyError extends TicksockError {
    /** The error code: < 1000 the server's (`ErrorCodes`), >= 1000 the game's. */
    readonly code: number;
    /** The server's human-readable message (for logs; branch on `code`). */
    readonly serverMessage: string;
    constructor(route: string, code: number, serverMessage: string);
}
/** No answer came within the call's timeout. */
export declare class TimeoutError extends TicksockError {
    /** The timeout that passed, in milliseconds. */
    readonly timeoutMs: number;
    constructor(route: string, timeoutMs: number);
}
/** The call had been sent when the connection dropped: it may or may not have been handled. */
export declare class DisconnectedError extends TicksockError {
    constructor(route: string);
}
/** The call was made offline and the offline queue is full. */
export declare class QueueFullError extends TicksockError {
    constructor(route: string, detail: string);
}
/** The request frame is larger than `maxFrameBytes`. */
export declare class TooLargeError extends TicksockError {
    constructor(route: string, bytes: number, max: number);
}
/** The client was closed, or gave up reconnecting, before the call was sent. */
export declare class ClosedError extends TicksockError {
    constructor(route: string, why: string);
}
/** A route's request and reply types. */
export interface RouteSpec {
    req: unknown;
    res: unknown;
}
/** Route name to its types. */
export type RouteMap = {
    [route: string]: RouteSpec;
};
/** Push topic to its body type. */
export type PushMap = {
    [topic: string]: unknown;
};
/** The default, untyped maps. */
export interface AnyRoutes {
    [route: string]: {
        req: any;
        res: any;
    };
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
    connected: {
        welcome: Welcome;
        reconnected: boolean;
    };
    /** A connection that had been up ended. `failedCalls` calls in flight reject with `DisconnectedError` (after this event's listeners). */
    disconnected: {
        code: number;
        reason: string;
        wasClean: boolean;
        failedCalls: number;
    };
    /** The next connection attempt, number `attempt` (1-based), starts in `delayMs`. */
    reconnecting: {
        attempt: number;
        delayMs: number;
        maxAttempts: number | null;
    };
    /** The client stopped for good: `close()` was called, it gave up reconnecting, or the server speaks another version. */
    closed: {
        reason: "closed" | "gave_up" | "version";
        error: TicksockError | null;
    };
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
/**
 * Callback ids: count up from `first`, wrap at 2^32, skip any id still in use. With fewer than
 * 2^32 ids in use, `next` always finds one.
 */
export declare class CallIds {
    private nextId;
    constructor(first?: number);
    /** The next id not in use. */
    next(inUse: (id: number) => boolean): number;
    /** The id `next` tries first. */
    peek(): number;
}
/** The delay before reconnect attempt `attempt` (1-based), without jitter. */
export declare function backoffCeiling(attempt: number, initialMs: number, maxMs: number): number;
/** UTF-8 length of a string, without allocating. */
export declare function utf8Length(s: string): number;
/**
 * A ticksock client over one WebSocket. `R` maps routes to their request and reply types, `P`
 * push topics to their bodies (see `ArenaRoutes` and `ArenaPushes` for the example game).
 */
export declare class TicksockClient<R extends RouteMap = AnyRoutes, P extends PushMap = AnyPushes> {
    /** The server URL, e.g. `ws://127.0.0.1:7777/`. */
    readonly url: string;
    /** Counters. */
    readonly stats: ClientStats;
    private readonly opts;
    private readonly WS;
    private readonly timers;
    private readonly random;
    private readonly reportListenerError;
    private readonly ids;
    private linkState;
    private ws;
    private welcomeFrame;
    private openedAt;
    private lastHeard;
    private connectTimer;
    private heartbeatTimer;
    private reconnectTimer;
    /** The heartbeat probe waiting for its answer, if any (one at a time). */
    private probe;
    /** Failed attempts in a row; the next attempt's number is this. */
    private attempt;
    /** How many stops (`close()`, giving up, a version mismatch) are running their callbacks. */
    private stopping;
    /** `connect()` was called by a callback of a stop: it runs once the stop is done. */
    private restartRequested;
    /** Every call waiting for its outcome, queued or sent, by id (in call order). */
    private readonly pending;
    /** The offline queue, in call order. */
    private queue;
    private queuedBytes;
    private readonly pushListeners;
    private readonly eventListeners;
    constructor(url: string, options?: ClientOptions);
    /** The link state. */
    get state(): LinkState;
    /** True when the welcome of the current connection arrived: calls go out at once. */
    get connected(): boolean;
    /** The current connection's welcome, or null. */
    get welcome(): Welcome | null;
    /** Calls waiting for their outcome (queued or sent). */
    get pendingCount(): number;
    /** Calls in the offline queue. */
    get queuedCount(): number;
    /** Bytes in the offline queue. */
    get queuedByteCount(): number;
    /** Failed connection attempts in a row so far. */
    get failedAttempts(): number;
    /**
     * Resolves with the welcome once connected (at once if it is); rejects if the client closes
     * first. With `autoConnect: false` it waits for `connect()`.
     */
    ready(): Promise<Welcome>;
    /** Call `route` with `data`; the Promise settles with the call's one outcome. */
    call<K extends keyof R & string>(route: K, data?: R[K]["req"], options?: CallOptions): Promise<R[K]["res"]>;
    /** Call `route` with `data`; `cb(err, result)` is called once, with the call's one outcome. */
    call<K extends keyof R & string>(route: K, data: R[K]["req"], cb: Callback<R[K]["res"]>): void;
    call<K extends keyof R & string>(route: K, data: R[K]["req"], options: CallOptions, cb: Callback<R[K]["res"]>): void;
    private start;
    /** Ends call `id` with its one outcome; false if it had already ended. */
    private finish;
    private transmit;
    /** Listen to pushes on `topic`. Returns a function that stops listening. */
    on<T extends keyof P & string>(topic: T, handler: (body: P[T], topic: T) => void): () => void;
    /** Stop a push listener. */
    off<T extends keyof P & string>(topic: T, handler: (body: P[T], topic: T) => void): void;
    /** Listen to a lifecycle event. Returns a function that stops listening. */
    onEvent<E extends EventName>(event: E, handler: (payload: ClientEvents[E]) => void): () => void;
    /** Stop a lifecycle listener. */
    offEvent<E extends EventName>(event: E, handler: (payload: ClientEvents[E]) => void): void;
    private emit;
    private guard;
    /**
     * Connect now: starts the first connection, skips a pending backoff delay, or restarts a
     * closed client (with a fresh count of attempts). Does nothing while connecting or connected.
     * Called from a callback or listener while the client stops, it runs once the stop is done.
     */
    connect(): void;
    /**
     * Close for good: calls in flight reject with `DisconnectedError`, queued calls with
     * `ClosedError`, events `disconnected` (if a connection was up) then `closed` go out, and no
     * reconnect follows (until `connect()`, which a callback of this close may call).
     */
    close(): void;
    private open;
    private onFrame;
    private onWelcome;
    private startHeartbeat;
    private protocolError;
    /**
     * Ends connection `ws` (closing it if `fromSocket` is false): its timers stop, calls sent on it
     * reject with `DisconnectedError`, and a reconnect is scheduled unless the client is closed.
     */
    private teardown;
    private afterDrop;
    /**
     * The client stops for good: the connection, if any, ends with `code` (its sent calls reject
     * with `DisconnectedError`, and `disconnected` goes out if it was open), queued calls reject
     * with `ClosedError`, then `closed` goes out. A `connect()` from any of their callbacks or
     * listeners runs after that.
     */
    private shutDown;
}
/** Shorthand for `new TicksockClient(url, options)`. */
export declare function connect<R extends RouteMap = AnyRoutes, P extends PushMap = AnyPushes>(url: string, options?: ClientOptions): TicksockClient<R, P>;
/** Arena error codes (PROTOCOL.md section 8.5). */
export declare const ArenaErrors: {
    readonly NOT_LOGGED_IN: 1001;
    readonly NOT_IN_ROOM: 1002;
    readonly NO_SUCH_ROOM: 1003;
    readonly ROOM_FULL: 1004;
    readonly INVALID: 1005;
    readonly NOT_ONLINE: 1006;
};
/** Arena constants (PROTOCOL.md section 8.1). */
export declare const Arena: {
    readonly SIZE: 1000;
    readonly SPEED: 5;
    readonly MAX_NAME_LEN: 32;
    readonly MAX_CHAT_LEN: 256;
};
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
    login: {
        req: {
            name: string;
        };
        res: {
            player_id: number;
        };
    };
    rooms: {
        req: null | undefined;
        res: RoomInfo[];
    };
    join: {
        req: {
            room: string;
        };
        res: {
            room: string;
            players: PlayerState[];
            roster: RosterEntry[];
        };
    };
    leave: {
        req: null | undefined;
        res: null;
    };
    move: {
        req: {
            dx: number;
            dy: number;
        };
        res: {
            tick: number;
        };
    };
    chat: {
        req: {
            text: string;
        };
        res: null;
    };
    whisper: {
        req: {
            to: string;
            text: string;
        };
        res: null;
    };
    echo: {
        req: unknown;
        res: unknown;
    };
}
/** The arena's push topics and bodies. */
export interface ArenaPushes {
    [topic: string]: unknown;
    state: State;
    chat: ChatLine;
    presence: Presence;
    whisper: ChatLine;
}
