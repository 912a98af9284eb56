// ticksock-client: the ticksock browser client (subprotocols ticksock.v2.json and ticksock.v1.json).
// GENERATED from web/src/ (client.ts, bincode.ts, replica.ts, interpolation.ts) by `npm run build` in web/; do not edit. Served by the server at /ticksock.js.
/**
 * ticksock browser client: calls that feel like ajax over one WebSocket.
 *
 * It offers the JSON subprotocols `ticksock.v2.json` and `ticksock.v1.json`, in that order, and
 * speaks the one the server picks (docs/PROTOCOL.md, sections 9 and 11): every frame is one text
 * message holding one JSON object. A call sends `{"id", "route", "body"}` tagged with a `u32`
 * callback id; the server answers with exactly one reply or error carrying the same id, in any
 * order, and sends pushes `{"type": "push", "topic", "body"}` on its own. On version 2 the
 * server session survives a dropped link: see "Version 2" below.
 *
 * ```js
 * import { TicksockClient } from "/ticksock.js";
 * const client = new TicksockClient(`ws://${location.host}/`);
 * const { player_id } = await client.call("login", { name: "ann" });           // Promise form
 * client.call("rooms", null, (err, rooms) => { if (!err) console.log(rooms); }); // callback form
 * client.on("state", (state) => draw(state));                                   // pushes by topic
 * client.onEvent("connected", ({ welcome, resumed }) => { if (!resumed) logIn(); }); // lifecycle
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
 * | `DisconnectedError` | `"disconnected"`| the call had been **sent** and its answer was lost: the connection dropped (version 1), or the session ended (version 2) |
 * | `QueueFullError`    | `"queue_full"`  | the call was made while offline and the offline queue is at its bound (count or bytes) |
 * | `TooLargeError`     | `"too_large"`   | the request frame is larger than `maxFrameBytes` (the server would close the connection) |
 * | `ClosedError`       | `"closed"`      | the client was closed, or gave up reconnecting, before the call could be sent |
 * | `RedirectError`     | `"redirect"`    | the call was redirected to another node (cluster) and the redirect could not be followed: see "Clusters" |
 * | `TicksockError`     | `"busy"`/`"encode"` | too many calls waiting (`maxPending`), or the data cannot be written as JSON |
 * | `TicksockError`     | `"bad_reply"`   | the server's reply is not what the route answers (`authenticate`: not an `AuthReply`) |
 *
 * The call's entry (its callback and timer) is freed on every outcome; an answer that arrives
 * after the timeout (or a second answer to one request) is dropped and counted in
 * `stats.lateAnswers`. Failures found at call time (queue full, too large, closed) are still
 * delivered asynchronously, never from inside `call`.
 *
 * # When the link drops
 * - On **version 1**, calls **already sent** reject at once with `DisconnectedError`: the server
 *   may or may not have handled them, and it never answers them on another connection. They are
 *   **not** resent (resending a chat line or a purchase could do it twice); retry idempotent
 *   calls yourself. On **version 2** they wait for the session's resume instead (below).
 * - Calls made while **not connected** (or while the socket is already closing, or while a
 *   resume is under way) wait in a bounded offline queue (`maxQueuedCalls`, `maxQueuedBytes`;
 *   one more rejects at once with `QueueFullError`) and are sent in order once the next
 *   connection is ready. Their timeout keeps running meanwhile.
 * - `connected` listeners run before the queue is flushed, so a call made there (logging in
 *   again when `resumed` is false: a new server session knows nobody) goes out ahead of the
 *   queued calls.
 * - The client reconnects with exponential backoff and jitter; after `maxAttempts` failed
 *   attempts in a row it gives up (event `closed`, queued calls reject with `ClosedError`). A
 *   connection that stayed up `stableAfterMs` resets the count.
 *
 * # Version 2: sessions that survive a dropped link (PROTOCOL.md section 11)
 * On `ticksock.v2.json` the welcome opens a **session** (`conn_id`, `epoch` and a secret the
 * client keeps to itself). The client numbers its requests (`seq`), counts the replies, errors
 * and pushes it receives, and acknowledges that count: in every request, and in an `ack` frame
 * once frames have waited `ackDelayMs` (or `ackAfterFrames` arrived) without one. It keeps every
 * request until its answer arrives. When the link drops:
 * - `disconnected` goes out with `resuming: true` and `failedCalls: 0`: calls in flight keep
 *   waiting (their timeouts keep running), and pushes sent meanwhile are kept by the server.
 * - On the next connection the client's first frame is a `resume` with the session's ids, its
 *   secret and its received count; it sends nothing else until the answer.
 * - **Resumed**: the client adopts the new secret and resends the requests the server had not
 *   taken (with their original `seq` and id, in order); `connected` goes out with
 *   `resumed: true` (nothing was lost and the session is still logged in); then the offline
 *   queue goes out. The server replays what the client missed: each answer and push arrives
 *   once, in order.
 * - **Resume failed** (the session ended: its grace passed, the server restarted, ...): the
 *   link carries a new session. `session_ended` goes out (with the server's reason code), then
 *   every call that had no answer rejects with `DisconnectedError` (its fate is unknown), then
 *   `connected` with `resumed: false` (log in again there), then the offline queue goes out as
 *   new requests of the new session.
 * - An answer for a call that is no longer waiting (answered already, or timed out) is ignored.
 * If the server speaks version 1 only, all of this is off and the client behaves as version 1.
 *
 * # Clusters: redirects (PROTOCOL.md section 12)
 * A node of a cluster may answer a call with Error `redirect` (8): the call must be made on
 * another node, whose URL (with a one-use ticket) is the message. The client follows it and the
 * app sees only the call's answer from there:
 * - It opens a new WebSocket to that URL as it is, offering the same subprotocols. After its
 *   welcome it sends the same route and body there (on version 2, as the first request of the
 *   new connection's session). Until that answer the old connection stays the client's: calls
 *   made meanwhile go out on it, and pushes from both are heard.
 * - The answer there is the call's answer. With it, the new connection becomes the client's:
 *   `redirected` goes out (`url`, `welcome`; no `connected`), the call settles, and reconnects go
 *   to `currentUrl`, the node's URL without its `ticket` (a ticket is good once). The ticket
 *   logged the new connection in as the same user: **do not log in again** there. On version 2
 *   it carries a **new session** (that node's); the old one ends with its connection and is
 *   never resumed.
 * - Calls **in flight on the old connection** when the client moves wait there for their
 *   answers for up to `redirectDrainMs` (5 s); then (or when it has none left) it is closed
 *   with 1000, and those still unanswered reject with `DisconnectedError`, as on a dropped
 *   version 1 link. Pushes on it after the move are dropped.
 * - An answer there may be a redirect again: it is followed from the new node, up to
 *   `MAX_REDIRECTS` (3) for one call; one more fails the call with `RedirectError`.
 * - The call fails with `RedirectError`, and the client stays on its connection, when the URL
 *   is not `ws://` or `wss://`, the node cannot be reached or sends no welcome within
 *   `connectTimeoutMs`, it breaks the protocol, it refuses the ticket (it closes with 4002,
 *   `CLOSE_BAD_TICKET`, right after its welcome: nothing was handled), or another call's
 *   redirect is being followed (one at a time). If the new connection drops after the request
 *   went out, the call fails with `DisconnectedError` (it may have been handled); if the old
 *   one drops first, the redirect is given up with it and its call fails with the others.
 * - A connection closed with 4002 sends the next attempt back to `url`, the URL the client was
 *   made with, with the usual backoff; so do `REDIRECTED_URL_ATTEMPTS` (3) failed attempts in a
 *   row to a node the client was redirected to (the node may be gone for good: 12.4).
 *
 * # Tokens (PROTOCOL.md section 13)
 * A server with an authenticator identifies a connection by a token (what it is, and how a
 * player gets one, is the game's business: the arena's `register`, `signin` and `guest` answer
 * one). The client holds at most one, and offers it at **every connection it opens**: the first,
 * each reconnect, each version 2 resume, and a redirect's connection (next to its ticket). It
 * goes in the `token` query parameter, the one form a browser can send (13.1): the URL's other
 * parameters are kept as they are, a `token` already in it is replaced, and the token is written
 * as it is, not percent-encoded (the server does not decode it). A token is 1 to 4096 of the
 * characters `A-Z a-z 0-9 - _ . ~ + / =` (`isToken`); anything else throws a `TypeError`.
 * - `options.token`, or a `token` parameter in the URL given to the constructor, is the token of
 *   the first connection. `setToken(token)` replaces it and `setToken(null)` forgets it, both for
 *   the **next** connection: the current one keeps the identity it has. `token` reads it back.
 * - `authenticate(token)` sends the `auth` request (13.2) with it, on the current connection (or
 *   the next, from the offline queue), which makes it the connection's identity at once. It
 *   resolves with the server's `AuthReply` (`user`, `roles`, `expires_in_ms`) and keeps the
 *   token, to offer it from then on, **only when the server accepted it**: a refusal rejects
 *   with `ReplyError` code 10 (`ErrorCodes.UNAUTHENTICATED`) and leaves the held token as it was.
 *   Use it to sign in without reconnecting, and to refresh a token before it expires (13.4).
 * - A close **4003** (`CLOSE_AUTH_FAILED`: the token offered at the upgrade was refused) or
 *   **4004** (`CLOSE_AUTH_EXPIRED`: the identity expired and its grace passed) drops the token the
 *   connection's identity rested on, since a reconnect offering it would be refused again,
 *   forever (a token the game set with `setToken` since is kept). The client then reconnects,
 *   anonymous, as after any drop, and emits `token_refused` right after `disconnected`: sign in
 *   again there. On a redirect's connection, either close fails the call with `RedirectError`
 *   (nothing was handled there) and drops the token the same way.
 * - `auth_expired` (13.4) is an ordinary push, heard with `on("auth_expired", ...)`: it comes
 *   right before the 4004 close, and is the last chance to `authenticate` with a new token.
 *
 * # Events, and callbacks that call back into the client
 * A connection that becomes ready (version 1: its welcome arrived; version 2: its new session
 * started or its resume was answered) emits `connected`, and later exactly one `disconnected`;
 * `closed` comes after the `disconnected` of the connection it ended. So an app tells the cases
 * apart by:
 *
 * | event | payload | meaning |
 * |-------|---------|---------|
 * | `connected` | `resumed: false` | a new server session: log in (and join) |
 * | `connected` | `resumed: true` | the earlier session resumed: nothing was lost, nothing to redo |
 * | `disconnected` | `resuming: true` | **the link dropped, resuming**: calls wait, the client reconnects |
 * | `disconnected` | `resuming: false` | the link dropped and its calls failed (version 1, or the client is closing) |
 * | `session_ended` | `reason`, `code` | **the session ended**: its unanswered calls fail; log in again on the next `connected` |
 * | `reconnecting` | `attempt`, `delayMs` | the next attempt is scheduled |
 * | `redirected` | `url`, `welcome` | a redirect moved the client to another node, logged in as before: nothing to redo |
 * | `token_refused` | `code`, `expired`, `token` | the server closed the connection for its token (4003, 4004): the client dropped it and reconnects anonymous; sign in again |
 * | `closed` | `reason` | the client stopped for good (its session, if any, is given up with it) |
 *
 * When a connection ends, the state is `waiting` (or `closed`) before anything runs; then
 * `disconnected` goes out, then the calls that failed with it reject. Listeners and callbacks
 * may call `connect()`, `close()` and `call()` at any point, and what they do stands: a
 * `connect()` there starts the next connection at once (no backoff delay is scheduled on top),
 * a `close()` there is final. While the client stops (`close()`, giving up, a version
 * mismatch), a `connect()` from its callbacks or listeners runs once the stop is done, after
 * its `closed` event; a later `close()` there cancels it.
 *
 * # Heartbeat
 * Browsers answer the server's WebSocket pings by themselves but never show them to scripts, so
 * the heartbeat is an application-level idle check: exactly one interval timer per connection
 * (started when it is ready, cleared when it ends), running every `heartbeatIntervalMs`. When
 * nothing was heard for `heartbeatIntervalMs` it sends a probe call (`heartbeatRoute`; any
 * answer, even an "unknown route" error, proves the link), one at a time. The link is taken for
 * dead, closed (code 4000) and replaced when nothing at all was heard for `idleTimeoutMs`
 * **and** a probe has gone unanswered for at least one interval; any frame counts as hearing,
 * but only the probe's answer ends the probe. The probe is what keeps a background tab alive:
 * browsers may throttle its timers to one run a minute, and a long gap seen by a late timer is
 * not death until a probe sent then goes unanswered until the next run. With
 * `heartbeatRoute: null`, or on a socket already closing (no probe can be sent), silence alone
 * decides.
 *
 * The bound: while timers run on time, a dead link is closed within
 * `max(idleTimeoutMs, 2 × heartbeatIntervalMs) + heartbeatIntervalMs` of the last frame heard
 * (20 s with the defaults; it is `idleTimeoutMs + heartbeatIntervalMs` whenever `idleTimeoutMs`
 * is at least twice the interval), and never before `idleTimeoutMs` of silence. After timers
 * ran late, the bound counts from when they run again.
 *
 * Close codes this client sends: 1000 (`close()`, and an old connection after a redirect), 4000 (heartbeat: idle), 4001 (no welcome,
 * or no answer to its resume, within `connectTimeoutMs`), 4002 (protocol error: a frame it
 * cannot read). Browsers allow scripts only 1000 and 3000..4999.
 */
/** The version 1 JSON subprotocol (PROTOCOL.md section 9). */
export const SUBPROTOCOL_V1 = "ticksock.v1.json";
/** The version 2 JSON subprotocol: sessions that survive a dropped link (PROTOCOL.md 11.8). */
export const SUBPROTOCOL_V2 = "ticksock.v2.json";
/** The subprotocols this client offers, most preferred first; it speaks whichever the server picks. */
export const SUBPROTOCOLS = [SUBPROTOCOL_V2, SUBPROTOCOL_V1];
/** @deprecated The client offers `SUBPROTOCOLS`; this is `SUBPROTOCOL_V1`. */
export const SUBPROTOCOL = SUBPROTOCOL_V1;
/** The highest wire format version this client speaks (the welcome's `version`); it speaks 1 too. */
export const PROTOCOL_VERSION = 2;
/** Error codes the server itself uses (PROTOCOL.md sections 6 and 11.6). Codes >= 1000 are the game's. */
export const ErrorCodes = {
    UNKNOWN_ROUTE: 1,
    BAD_BODY: 2,
    INTERNAL: 3,
    BAD_FRAME: 4,
    RATE_LIMITED: 5,
    SHUTTING_DOWN: 6,
    /** Version 2: a resent request the server had taken already, whose answer is gone. */
    STALE_REQUEST: 7,
    /**
     * Only from a server in a cluster (PROTOCOL.md 12.2): the call must be made on another node;
     * the message is its URL, a ticket included. The client follows it (see "Clusters"), so a
     * call never rejects with it.
     */
    REDIRECT: 8,
    /** The server's queue for slow work is full; the request was not handled (retry later). */
    BUSY: 9,
    /**
     * The route needs an authenticated connection and this one is not, or an `auth` request's
     * token was refused (PROTOCOL.md 13.2, 13.3).
     */
    UNAUTHENTICATED: 10,
    /** The route needs a role the connection's identity does not have (PROTOCOL.md 13.3). */
    FORBIDDEN: 11,
};
/**
 * The close code of a server that refused the token a connection offered at its upgrade
 * (PROTOCOL.md 7.5, 13.1), sent right after the welcome: nothing of the connection was handled.
 * The client drops that token (see "Tokens").
 */
export const CLOSE_AUTH_FAILED = 4003;
/**
 * The close code of a server whose connection's identity expired and whose grace passed without
 * a new token (PROTOCOL.md 7.5, 13.4); an `auth_expired` push comes right before it. The client
 * drops the token (see "Tokens").
 */
export const CLOSE_AUTH_EXPIRED = 4004;
/** The route that checks a token and makes it the connection's identity (PROTOCOL.md 13.2); see `authenticate`. */
export const AUTH_ROUTE = "auth";
/** The push topic of an identity that expired, right before the close 4004 (PROTOCOL.md 13.4). */
export const AUTH_EXPIRED_TOPIC = "auth_expired";
/**
 * The server's own push topic (PROTOCOL.md 7.3): the count of events (pushes that are not
 * latest-wins states, such as chat) it dropped for this client because it read too slowly,
 * since its last such push. The client adds it to `stats.eventsDropped`; listen to it with
 * `on(DROPPED_TOPIC, (count) => ...)` to tell the player ("300 messages missed").
 */
export const DROPPED_TOPIC = "ticksock.dropped";
/** The longest token a server takes at the upgrade, in bytes (PROTOCOL.md 13.1). */
export const MAX_TOKEN_BYTES = 4096;
/** The query parameter that carries the token at the upgrade (PROTOCOL.md 13.1). */
const TOKEN_PARAM = "token";
/** The characters of a token (PROTOCOL.md 13.1), which a URL carries as they are. */
const TOKEN_PATTERN = /^[A-Za-z0-9\-_.~+/=]+$/;
/**
 * True when `token` can be offered at the upgrade: 1 to `MAX_TOKEN_BYTES` of the characters
 * `A-Z a-z 0-9 - _ . ~ + / =` (PROTOCOL.md 13.1).
 */
export function isToken(token) {
    return typeof token === "string" && token.length <= MAX_TOKEN_BYTES && TOKEN_PATTERN.test(token);
}
/** Redirects the client follows for one call; one more fails the call with `RedirectError` (PROTOCOL.md 12.2). */
export const MAX_REDIRECTS = 3;
/**
 * The close code a node in a cluster sends right after its welcome when it refuses the ticket
 * of the connection's URL (PROTOCOL.md 7.5, 12.3). The same number as `CloseCodes.PROTOCOL_ERROR`,
 * which this client sends: the two travel in opposite directions.
 */
export const CLOSE_BAD_TICKET = 4002;
/**
 * Failed connection attempts in a row to a node the client was redirected to, after which it
 * goes back to the URL it was made with (PROTOCOL.md 12.4: the node may be gone for good).
 */
export const REDIRECTED_URL_ATTEMPTS = 3;
/** Why the server refused a resume (PROTOCOL.md 11.5): `session_ended`'s `code`. */
export const ResumeFailReasons = {
    UNKNOWN_SESSION: 1,
    ENDED: 2,
    GAP_LOST: 3,
    RESTARTED: 4,
    BAD_SECRET: 5,
    SUPERSEDED: 6,
    BAD_COUNT: 7,
    NOT_FIRST: 8,
};
/** Close codes this client sends. */
export const CloseCodes = {
    NORMAL: 1000,
    IDLE: 4000,
    CONNECT_TIMEOUT: 4001,
    PROTOCOL_ERROR: 4002,
};
/** The base of every error this client produces. Branch on `kind` (or `instanceof`). */
export class TicksockError extends Error {
    constructor(kind, route, message) {
        super(message);
        this.name = "TicksockError";
        this.kind = kind;
        this.route = route;
    }
}
/** The server answered the call with an error frame. */
export class ReplyError extends TicksockError {
    constructor(route, code, serverMessage) {
        super("reply", route, `${route}: error ${code}${serverMessage ? `: ${serverMessage}` : ""}`);
        this.name = "ReplyError";
        this.code = code;
        this.serverMessage = serverMessage;
    }
}
/** No answer came within the call's timeout. */
export class TimeoutError extends TicksockError {
    constructor(route, timeoutMs) {
        super("timeout", route, `${route}: no answer within ${timeoutMs} ms`);
        this.name = "TimeoutError";
        this.timeoutMs = timeoutMs;
    }
}
/** The call had been sent when the connection dropped: it may or may not have been handled. */
export class DisconnectedError extends TicksockError {
    constructor(route) {
        super("disconnected", route, `${route}: the connection dropped before the answer; the call may or may not have been handled`);
        this.name = "DisconnectedError";
    }
}
/** The call was made offline and the offline queue is full. */
export class QueueFullError extends TicksockError {
    constructor(route, detail) {
        super("queue_full", route, `${route}: offline queue full (${detail}); the call was not queued`);
        this.name = "QueueFullError";
    }
}
/** The request frame is larger than `maxFrameBytes`. */
export class TooLargeError extends TicksockError {
    constructor(route, bytes, max) {
        super("too_large", route, `${route}: request frame of ${bytes} bytes is over the ${max}-byte limit`);
        this.name = "TooLargeError";
    }
}
/**
 * The call was answered with a redirect (PROTOCOL.md 12.2) that could not be followed: too many
 * for one call, a URL that is not `ws://` or `wss://`, a node that could not be reached or gave
 * no welcome, a ticket the node refused (close 4002), or a node that broke the protocol. The
 * request was not handled on the new node (a new connection that drops after the request went
 * out fails the call with `DisconnectedError` instead). The client stays where it was.
 */
export class RedirectError extends TicksockError {
    constructor(route, url, why) {
        super("redirect", route, `${route}: redirect${url ? ` to ${url}` : ""} not followed: ${why}`);
        this.name = "RedirectError";
        this.url = url;
    }
}
/** The client was closed, or gave up reconnecting, before the call was sent. */
export class ClosedError extends TicksockError {
    constructor(route, why) {
        super("closed", route, `${route ? `${route}: ` : ""}${why}`);
        this.name = "ClosedError";
    }
}
// ---------------------------------------------------------------------------------------------
// Callback ids
const ID_SPACE = 4294967296; // 2^32
/**
 * Callback ids: count up from `first`, wrap at 2^32, skip any id still in use. With fewer than
 * 2^32 ids in use, `next` always finds one.
 */
export class CallIds {
    constructor(first = 0) {
        this.nextId = toU32(first);
    }
    /** The next id not in use. */
    next(inUse) {
        for (;;) {
            const id = this.nextId;
            this.nextId = id + 1 === ID_SPACE ? 0 : id + 1;
            if (!inUse(id))
                return id;
        }
    }
    /** The id `next` tries first. */
    peek() {
        return this.nextId;
    }
}
function toU32(n) {
    return ((Math.floor(n) % ID_SPACE) + ID_SPACE) % ID_SPACE;
}
const DEFAULTS = {
    autoConnect: true,
    tickStamps: false,
    callTimeoutMs: 10000,
    connectTimeoutMs: 10000,
    heartbeatIntervalMs: 5000,
    idleTimeoutMs: 15000,
    heartbeatRoute: "echo",
    backoffInitialMs: 250,
    backoffMaxMs: 30000,
    backoffJitter: 0.5,
    maxAttempts: 10,
    stableAfterMs: 10000,
    maxQueuedCalls: 256,
    maxQueuedBytes: 256 * 1024,
    maxPending: 65536,
    maxFrameBytes: 65536,
    ackDelayMs: 1000,
    ackAfterFrames: 64,
    redirectDrainMs: 5000,
};
/**
 * What a version 2 request frame adds to the version 1 one (`"type":"request","seq":S,"ack":A,`),
 * with room for `seq` and `ack` of 16 digits each (2^53 and more): a request that fits the
 * limit when first sent still fits when it is resent later with a larger `ack`.
 */
const V2_REQUEST_OVERHEAD = '"type":"request","seq":,"ack":,'.length + 2 * 16;
/** A version 2 secret in JSON: 16 bytes as 32 lowercase hex digits (PROTOCOL.md 11.8). */
const SECRET_PATTERN = /^[0-9a-f]{32}$/;
/** A u64 of a version 2 frame that JSON carries as a decimal string (`conn_id`, `epoch`). */
function u64Text(v) {
    if (typeof v === "string" && /^[0-9]{1,20}$/.test(v))
        return v;
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0)
        return String(v);
    return null;
}
/** A count of a version 2 frame (`received`, `reason`): a non-negative safe integer, else null. */
function frameCount(v) {
    return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}
/** `WebSocket.OPEN`. */
const OPEN = 1;
/** Browsers clamp longer timer delays to 0, firing them at once. */
const MAX_TIMER_MS = 2147483647;
const defaultTimers = {
    now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h),
    setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
    clearInterval: (h) => globalThis.clearInterval(h),
};
/** A version 2 session just started by `welcome`, its counts at 0. */
function newSession(welcome, secret) {
    return {
        welcome,
        connId: welcome.conn_id,
        epoch: welcome.epoch ?? "0",
        secret,
        received: 0,
        acked: 0,
        lastSeq: 0,
        serverReceived: 0,
        unanswered: new Map(),
    };
}
/** The largest size a request frame of version 1 size `v1Bytes` can have on `version` (see `V2_REQUEST_OVERHEAD`). */
function requestFrameBytes(v1Bytes, version) {
    return version === 2 ? v1Bytes + V2_REQUEST_OVERHEAD : v1Bytes;
}
/**
 * The URL of a redirect's message (PROTOCOL.md 12.2), taken as it is, and the same without its
 * `ticket` parameter (the ticket is good once: reconnects go to the node without it). A string
 * says why the message is not a usable URL.
 */
function redirectTarget(message) {
    if (typeof message !== "string")
        return "the redirect carries no URL";
    let parsed;
    try {
        parsed = new URL(message);
    }
    catch {
        return `the redirect's message ${JSON.stringify(message.slice(0, 80))} is not a URL`;
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:")
        return `the redirect's URL ${JSON.stringify(message.slice(0, 80))} is not ws:// or wss://`;
    parsed.searchParams.delete("ticket");
    return { url: message, reconnectUrl: parsed.toString() };
}
/** The name of a raw query parameter (`name=value`, or `name` alone), not percent-decoded. */
function queryName(part) {
    const eq = part.indexOf("=");
    return eq < 0 ? part : part.slice(0, eq);
}
/** The raw parameters of `url`'s query, in order (the server reads them raw too: 13.1). */
function queryParts(url) {
    return new URL(url).search
        .slice(1)
        .split("&")
        .filter((part) => part !== "");
}
/** The `token` parameter of `url`'s query, as it is written there, or null. */
function tokenOfUrl(url) {
    const part = queryParts(url).find((p) => queryName(p) === TOKEN_PARAM);
    return part === undefined ? null : part.slice(TOKEN_PARAM.length + 1);
}
/**
 * `url` offering `token` at the upgrade (PROTOCOL.md 13.1): its `token` parameters replaced by
 * `token=<token>` (last, written as it is: its characters need no escaping), or removed when
 * `token` is null. The other parameters (a redirect's `ticket`, a game's own) stay as they are.
 * A URL that has nothing to change is returned as it is.
 */
function urlWithToken(url, token) {
    const parts = queryParts(url);
    const kept = parts.filter((part) => queryName(part) !== TOKEN_PARAM);
    if (token === null && kept.length === parts.length)
        return url;
    if (token !== null)
        kept.push(`${TOKEN_PARAM}=${token}`);
    const parsed = new URL(url);
    parsed.search = kept.length > 0 ? `?${kept.join("&")}` : "";
    return parsed.toString();
}
/** The query parameter that asks for tick-stamped replies (PROTOCOL.md 4.3). */
const TICKS_PARAM = "ticks";
/** `url` asking for tick-stamped replies: `ticks=1` added, unless it has a `ticks` parameter already. */
function urlAskingTicks(url) {
    if (queryParts(url).some((part) => queryName(part) === TICKS_PARAM))
        return url;
    const parsed = new URL(url);
    parsed.search = parsed.search === "" ? `?${TICKS_PARAM}=1` : `${parsed.search}&${TICKS_PARAM}=1`;
    return parsed.toString();
}
/** `token`, if it can be offered at the upgrade; else a `TypeError` saying why (`what` names it). */
function checkedToken(token, what) {
    if (isToken(token))
        return token;
    const shown = typeof token === "string" ? `${JSON.stringify(token.slice(0, 40))}${token.length > 40 ? "..." : ""} (${token.length} characters)` : String(token);
    throw new TypeError(`ticksock: ${what} ${shown} is not a token: 1 to ${MAX_TOKEN_BYTES} of the characters A-Z a-z 0-9 - _ . ~ + / = (PROTOCOL.md 13.1)`);
}
/** An `auth` reply's body as an `AuthReply` (PROTOCOL.md 13.2), or a string saying what is wrong with it. */
export function decodeAuthReply(body) {
    if (typeof body !== "object" || body === null || Array.isArray(body))
        return "it is not an object";
    const b = body;
    if (typeof b.user !== "string")
        return "its `user` is not a string";
    if (!Array.isArray(b.roles) || !b.roles.every((r) => typeof r === "string"))
        return "its `roles` is not a list of strings";
    const expires = b.expires_in_ms ?? null;
    if (expires !== null && (typeof expires !== "number" || !Number.isInteger(expires) || expires < 0))
        return "its `expires_in_ms` is neither null nor a whole number of milliseconds";
    return { user: b.user, roles: [...b.roles], expires_in_ms: expires };
}
/** The delay before reconnect attempt `attempt` (1-based), without jitter. */
export function backoffCeiling(attempt, initialMs, maxMs) {
    const doublings = Math.min(Math.max(attempt - 1, 0), 30);
    return Math.min(initialMs * 2 ** doublings, Math.max(maxMs, initialMs));
}
/** UTF-8 length of a string, without allocating. */
export function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80)
            n += 1;
        else if (c < 0x800)
            n += 2;
        else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
            n += 4;
            i++;
        }
        else
            n += 3;
    }
    return n;
}
/**
 * A ticksock client over one WebSocket. `R` maps routes to their request and reply types, `P`
 * push topics to their bodies (see `ArenaRoutes` and `ArenaPushes` for the example game).
 */
export class TicksockClient {
    constructor(url, options = {}) {
        /** Counters. */
        this.stats = {
            sent: 0,
            replies: 0,
            errorReplies: 0,
            timeouts: 0,
            disconnectedCalls: 0,
            lateAnswers: 0,
            pushes: 0,
            unheardPushes: 0,
            eventsDropped: 0,
            connections: 0,
            heartbeatProbes: 0,
            acksSent: 0,
            resumes: 0,
            resentRequests: 0,
            sessionsEnded: 0,
            redirects: 0,
            rttMs: null,
            rttAvgMs: null,
        };
        this.linkState = "idle";
        this.ws = null;
        /** The version the current socket speaks, from its subprotocol (1 until it opens). */
        this.linkVersion = 1;
        /** The welcome of the current connection once it is ready (`connected` went out), else null. */
        this.welcomeFrame = null;
        /** The current connection's own welcome, from its arrival: on version 2, its new session. */
        this.linkWelcome = null;
        /** A version 2 Resume went out on the current connection and its answer has not come. */
        this.awaitingResume = false;
        /** Frames the client sent on the current connection (to know whether a new session's first frame went out). */
        this.linkFramesSent = 0;
        /** The version 2 session held across links, or null (version 1, or none yet). */
        this.sessionState = null;
        /** The pending `ack` frame's timer (version 2), or null. */
        this.ackTimer = null;
        this.openedAt = 0;
        this.lastHeard = 0;
        this.connectTimer = null;
        this.heartbeatTimer = null;
        this.reconnectTimer = null;
        /** The heartbeat probe waiting for its answer, if any (one at a time). */
        this.probe = null;
        /** Failed attempts in a row; the next attempt's number is this. */
        this.attempt = 0;
        /** How many stops (`close()`, giving up, a version mismatch) are running their callbacks. */
        this.stopping = 0;
        /** `connect()` was called by a callback of a stop: it runs once the stop is done. */
        this.restartRequested = false;
        /** The redirect being followed, if any (one at a time). */
        this.hop = null;
        /** Old connections that a redirect left, waiting for the answers to their calls in flight. */
        this.drains = new Set();
        /**
         * The token the current connection's identity rests on: the one offered at its upgrade, or the
         * one an `auth` on it accepted since; null for none. A close 4003 or 4004 refuses this one.
         */
        this.linkToken = null;
        /** Every call waiting for its outcome, queued or sent, by id (in call order). */
        this.pending = new Map();
        /** The offline queue, in call order. */
        this.queue = [];
        this.queuedBytes = 0;
        this.pushListeners = new Map();
        this.eventListeners = new Map();
        new URL(url); // throws a SyntaxError now for a URL that can never work
        this.url = url;
        this.connectUrl = url;
        this.heldToken = options.token === undefined ? tokenOfUrl(url) : options.token;
        if (this.heldToken !== null)
            checkedToken(this.heldToken, options.token === undefined ? "the URL's token" : "options.token");
        const opts = { ...DEFAULTS };
        for (const key of Object.keys(DEFAULTS)) {
            const v = options[key];
            if (v !== undefined)
                opts[key] = v;
        }
        this.opts = opts;
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (typeof WS !== "function")
            throw new TypeError("ticksock: no WebSocket in this runtime; pass options.WebSocket");
        this.WS = WS;
        this.timers = options.timers ?? defaultTimers;
        this.random = options.random ?? Math.random;
        this.ids = new CallIds(options.firstId ?? 0);
        this.reportListenerError =
            options.onListenerError ??
                ((err) => {
                    const report = globalThis.reportError;
                    if (typeof report === "function")
                        report(err);
                    else
                        console.error("ticksock: a listener threw", err);
                });
        if (opts.autoConnect)
            this.connect();
    }
    // ----- state -----------------------------------------------------------------------------
    /**
     * Where the client connects now: `url`, or the node a redirect moved it to (its URL without the
     * ticket); without a `token` parameter either way (the held token is added at each connect).
     */
    get currentUrl() {
        return urlWithToken(this.connectUrl, null);
    }
    /**
     * The token offered at the next connection (see "Tokens"), or null for none: set by
     * `options.token`, `setToken` and an accepted `authenticate`; dropped on a close 4003 or 4004.
     */
    get token() {
        return this.heldToken;
    }
    /** The link state. */
    get state() {
        return this.linkState;
    }
    /** True when the welcome of the current connection arrived: calls go out at once. */
    get connected() {
        return this.linkState === "open";
    }
    /**
     * The welcome of the connection that is ready, or null while none is. On version 2 it names
     * the session: after a resume, the `conn_id` and `epoch` of the session that resumed.
     */
    get welcome() {
        return this.welcomeFrame;
    }
    /** Calls waiting for their outcome (queued or sent). */
    get pendingCount() {
        return this.pending.size;
    }
    /** Calls in the offline queue. */
    get queuedCount() {
        return this.queue.length;
    }
    /** Bytes in the offline queue. */
    get queuedByteCount() {
        return this.queuedBytes;
    }
    /** Failed connection attempts in a row so far. */
    get failedAttempts() {
        return this.attempt;
    }
    /** The wire format version of the connection that is ready (1 or 2), or null when none is. */
    get protocolVersion() {
        return this.welcomeFrame === null ? null : this.linkVersion;
    }
    /** The version 2 session the client holds (while connected, and while it waits to resume it), or null. */
    get session() {
        const s = this.sessionState;
        if (!s)
            return null;
        return {
            conn_id: s.connId,
            epoch: s.epoch,
            received: s.received,
            lastSeq: s.lastSeq,
            serverReceived: s.serverReceived,
            unanswered: s.unanswered.size,
        };
    }
    /**
     * Resolves with the welcome once connected (at once if it is); rejects if the client closes
     * first. With `autoConnect: false` it waits for `connect()`.
     */
    ready() {
        if (this.linkState === "open" && this.welcomeFrame)
            return Promise.resolve(this.welcomeFrame);
        if (this.linkState === "closed")
            return Promise.reject(new ClosedError("", "the client is closed"));
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
    // ----- tokens (PROTOCOL.md section 13) -------------------------------------------------------
    /**
     * Offer `token` at every connection from the next one on (the reconnects and resumes
     * included), or no token with `null`. The current connection keeps its identity: to change it
     * now, use `authenticate`. Throws a `TypeError` for a string that is not a token (`isToken`).
     */
    setToken(token) {
        this.heldToken = token === null ? null : checkedToken(token, "setToken:");
    }
    /**
     * Sends `auth` (PROTOCOL.md 13.2) with `token`: the server checks it and, if it is good, makes
     * it the connection's identity at once (it signs an anonymous connection in, refreshes an
     * expiring one, or changes its user). Resolves with the server's `AuthReply`, and from then on
     * the client offers `token` at each connection (as `setToken` would). Rejects as any call does
     * (a refused token: `ReplyError` with code `ErrorCodes.UNAUTHENTICATED`), or with a
     * `TicksockError` of kind `bad_reply` when the answer is not an `AuthReply`; the held token
     * is then left as it was. Rejects with a `TypeError`, sending nothing, for a string that is not
     * a token. Made while offline, it waits in the offline queue as any call.
     */
    authenticate(token, options = {}) {
        let checked;
        try {
            checked = checkedToken(token, "authenticate:");
        }
        catch (e) {
            return Promise.reject(e);
        }
        return new Promise((resolve, reject) => {
            this.start(AUTH_ROUTE, checked, options, (err, body) => {
                if (err)
                    return reject(err);
                const reply = decodeAuthReply(body);
                if (typeof reply === "string")
                    return reject(new TicksockError("bad_reply", AUTH_ROUTE, `${AUTH_ROUTE}: the reply is not an AuthReply: ${reply}`));
                this.heldToken = checked;
                // The answer came on the current connection: its identity now rests on this token.
                this.linkToken = checked;
                resolve(reply);
            }, false);
        });
    }
    /**
     * A connection whose identity rested on `refused` was closed for it (4003, 4004): the client
     * drops that token, unless the game has set another since.
     */
    dropRefusedToken(refused) {
        if (refused !== null && this.heldToken === refused)
            this.heldToken = null;
    }
    call(route, data, a, b) {
        let options = {};
        let cb;
        if (typeof a === "function")
            cb = a;
        else {
            options = a ?? {};
            if (typeof b === "function")
                cb = b;
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
    /**
     * Call `route` with `data`, as `call`; the Promise resolves with the reply and its stamp: the
     * first tick whose state includes the call's effects (PROTOCOL.md 4.3), or null when the reply
     * has none (without `tickStamps`, or from a server that does not stamp). To reconcile a
     * prediction: a state of tick `S` includes every call stamped `<= S`.
     */
    callStamped(route, data, options = {}) {
        return new Promise((resolve, reject) => {
            this.start(route, data, options, (err, result, tick) => (err ? reject(err) : resolve({ tick: tick ?? null, result: result })), false);
        });
    }
    /** The URL of an upgrade to `url`: offering `token`, and asking for stamps if `tickStamps`. */
    upgradeUrl(url, token) {
        const withToken = urlWithToken(url, token);
        return this.opts.tickStamps ? urlAskingTicks(withToken) : withToken;
    }
    start(route, data, options, cb, internal) {
        const failLater = (err) => queueMicrotask(() => cb(err));
        if (this.linkState === "closed")
            return failLater(new ClosedError(route, "the client is closed"));
        if (this.pending.size >= this.opts.maxPending) {
            return failLater(new TicksockError("busy", route, `${route}: ${this.pending.size} calls already waiting (maxPending)`));
        }
        let body;
        try {
            body = data === undefined ? undefined : JSON.stringify(data);
        }
        catch (e) {
            return failLater(new TicksockError("encode", route, `${route}: data is not JSON: ${String(e)}`));
        }
        const id = this.ids.next((id) => this.idInUse(id));
        const core = `"id":${id},"route":${JSON.stringify(route)}${body === undefined ? "" : `,"body":${body}`}`;
        const bytes = utf8Length(core) + 2;
        // Checked against the version of the current (or, offline, the last) connection; a queued
        // call is checked again when it goes out, on the version of that connection.
        const frameBytes = requestFrameBytes(bytes, this.linkVersion);
        if (frameBytes > this.opts.maxFrameBytes)
            return failLater(new TooLargeError(route, frameBytes, this.opts.maxFrameBytes));
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
        const entry = {
            id,
            route,
            core,
            bytes,
            queued: !online,
            cb,
            timer: null,
            startedAt: this.timers.now(),
            sentAt: 0,
            internal,
            redirects: 0,
            away: false,
        };
        const timeoutMs = options.timeout ?? this.opts.callTimeoutMs;
        if (Number.isFinite(timeoutMs)) {
            const ms = Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS);
            entry.timer = this.timers.setTimeout(() => {
                if (this.finish(id, new TimeoutError(route, timeoutMs)))
                    this.stats.timeouts++;
            }, ms);
        }
        this.pending.set(id, entry);
        if (online)
            this.transmit(entry);
        else {
            this.queue.push(entry);
            this.queuedBytes += bytes;
        }
    }
    /** Ends call `id` with its one outcome; false if it had already ended. */
    finish(id, err, result, tick = null) {
        const entry = this.pending.get(id);
        if (!entry)
            return false;
        this.pending.delete(id);
        if (entry.timer !== null)
            this.timers.clearTimeout(entry.timer);
        entry.timer = null;
        // A call that ends (its timeout, say) while its redirect is followed ends the new connection too.
        if (this.hop !== null && this.hop.entry === entry)
            this.endHop(this.hop, CloseCodes.NORMAL, "call ended");
        entry.away = false;
        if (entry.queued) {
            const i = this.queue.indexOf(entry);
            if (i >= 0)
                this.queue.splice(i, 1);
            this.queuedBytes -= entry.bytes;
            entry.queued = false;
        }
        if (err)
            entry.cb(err);
        else
            entry.cb(null, result, tick);
        return true;
    }
    /**
     * An id is in use while its call waits for its outcome and, on version 2, while its request
     * waits for its answer (a call that timed out included: its request may be resent, and its
     * late answer must not reach another call).
     */
    idInUse(id) {
        return this.pending.has(id) || (this.sessionState !== null && this.sessionState.unanswered.has(id));
    }
    /**
     * Sends the call on the current connection. On version 2 it takes the session's next `seq`
     * and is kept until its answer arrives, whatever happens to the call.
     */
    transmit(entry) {
        const ws = this.ws;
        if (!ws)
            return;
        entry.sentAt = this.timers.now();
        const s = this.linkVersion === 2 ? this.sessionState : null;
        if (s !== null) {
            const seq = s.lastSeq + 1;
            s.lastSeq = seq;
            s.unanswered.set(entry.id, { seq, id: entry.id, core: entry.core });
            this.sendRequestV2(ws, s, seq, entry.core);
        }
        else {
            // Only a socket that is not open throws; its close comes next and fails the call.
            this.sendFrame(ws, `{${entry.core}}`);
        }
        this.stats.sent++;
    }
    /** A version 2 request: it carries the received count, which acknowledges every frame so far. */
    sendRequestV2(ws, s, seq, core) {
        this.sendFrame(ws, `{"type":"request","seq":${seq},"ack":${s.received},${core}}`);
        this.acknowledged(s);
    }
    /** A version 2 `ack` frame with the received count. */
    sendAck(ws, s) {
        this.sendFrame(ws, `{"type":"ack","ack":${s.received}}`);
        this.stats.acksSent++;
        this.acknowledged(s);
    }
    /** The received count went out: nothing is left to acknowledge. */
    acknowledged(s) {
        s.acked = s.received;
        if (this.ackTimer !== null) {
            this.timers.clearTimeout(this.ackTimer);
            this.ackTimer = null;
        }
    }
    /** Sends one frame; false if the socket threw (it is not open: its close event comes next). */
    sendFrame(ws, text) {
        try {
            ws.send(text);
        }
        catch {
            return false;
        }
        this.linkFramesSent++;
        return true;
    }
    /** Sends the offline queue in order, while the connection stays ready. */
    flushQueue(ws) {
        while (this.queue.length > 0 && this.ws === ws && this.linkState === "open" && ws.readyState === OPEN) {
            const entry = this.queue.shift();
            entry.queued = false;
            this.queuedBytes -= entry.bytes;
            // Queued before the version was known, it may not fit a version 2 frame.
            const frameBytes = requestFrameBytes(entry.bytes, this.linkVersion);
            if (frameBytes > this.opts.maxFrameBytes) {
                this.finish(entry.id, new TooLargeError(entry.route, frameBytes, this.opts.maxFrameBytes));
                continue;
            }
            this.transmit(entry);
        }
    }
    // ----- pushes and events -----------------------------------------------------------------
    /** Listen to pushes on `topic`. Returns a function that stops listening. */
    on(topic, handler) {
        let set = this.pushListeners.get(topic);
        if (!set)
            this.pushListeners.set(topic, (set = new Set()));
        set.add(handler);
        return () => this.off(topic, handler);
    }
    /** Stop a push listener. */
    off(topic, handler) {
        const set = this.pushListeners.get(topic);
        if (!set)
            return;
        set.delete(handler);
        if (set.size === 0)
            this.pushListeners.delete(topic);
    }
    /** Listen to a lifecycle event. Returns a function that stops listening. */
    onEvent(event, handler) {
        let set = this.eventListeners.get(event);
        if (!set)
            this.eventListeners.set(event, (set = new Set()));
        set.add(handler);
        return () => this.offEvent(event, handler);
    }
    /** Stop a lifecycle listener. */
    offEvent(event, handler) {
        this.eventListeners.get(event)?.delete(handler);
    }
    emit(event, payload) {
        const set = this.eventListeners.get(event);
        if (!set)
            return;
        for (const h of [...set])
            this.guard(() => h(payload));
    }
    guard(fn) {
        try {
            fn();
        }
        catch (e) {
            this.reportListenerError(e);
        }
    }
    // ----- connection ------------------------------------------------------------------------
    /**
     * Connect now: starts the first connection, skips a pending backoff delay, or restarts a
     * closed client (with a fresh count of attempts). Does nothing while connecting or connected.
     * Called from a callback or listener while the client stops, it runs once the stop is done.
     */
    connect() {
        // Called from a callback or listener of a stop: the stop finishes first (its queued calls
        // reject and its `closed` event goes out while the state still says closed), then this runs.
        if (this.stopping > 0) {
            this.restartRequested = true;
            return;
        }
        if (this.linkState === "connecting" || this.linkState === "open")
            return;
        if (this.reconnectTimer !== null) {
            this.timers.clearTimeout(this.reconnectTimer);
            this.reconnectTimer = null;
        }
        if (this.linkState === "closed")
            this.attempt = 0;
        this.open();
    }
    /**
     * Close for good: calls in flight reject with `DisconnectedError`, queued calls with
     * `ClosedError`, events `disconnected` (if a connection was up) then `closed` go out, and no
     * reconnect follows (until `connect()`, which a callback of this close may call).
     */
    close() {
        this.restartRequested = false; // the later of connect() and close() in a callback wins
        if (this.linkState === "closed")
            return;
        this.shutDown("closed", null, CloseCodes.NORMAL, "client closed", true);
    }
    open() {
        this.linkState = "connecting";
        this.welcomeFrame = null;
        this.linkWelcome = null;
        this.awaitingResume = false;
        this.linkFramesSent = 0;
        let ws;
        const token = this.heldToken;
        try {
            ws = new this.WS(this.upgradeUrl(this.connectUrl, token), [...SUBPROTOCOLS]);
        }
        catch (e) {
            // E.g. a SecurityError; it counts as a failed attempt.
            this.ws = null;
            this.afterDrop(false, 0);
            return;
        }
        this.ws = ws;
        this.linkToken = token;
        this.attach(ws);
        ws.onopen = () => {
            if (!SUBPROTOCOLS.includes(ws.protocol))
                this.protocolError(ws, `the server chose subprotocol "${ws.protocol}"`);
        };
        this.connectTimer = this.timers.setTimeout(() => {
            this.connectTimer = null;
            const what = this.awaitingResume ? "no answer to the resume" : "no welcome";
            this.teardown(ws, CloseCodes.CONNECT_TIMEOUT, `${what} within ${this.opts.connectTimeoutMs} ms`, false);
        }, this.opts.connectTimeoutMs);
    }
    /** The handlers of the current connection `ws` (its `onopen` is set where it opens). */
    attach(ws) {
        ws.onopen = null;
        ws.onmessage = (ev) => this.onFrame(ws, ev.data);
        ws.onclose = (ev) => this.teardown(ws, ev.code ?? 1006, ev.reason ?? "", ev.wasClean ?? false, true);
        ws.onerror = () => {
            // A close event follows; it does the work.
        };
    }
    onFrame(ws, data) {
        if (ws !== this.ws)
            return;
        this.lastHeard = this.timers.now();
        if (typeof data !== "string")
            return this.protocolError(ws, "a binary message on the JSON subprotocol");
        let f;
        try {
            f = JSON.parse(data);
        }
        catch {
            return this.protocolError(ws, "a message that is not JSON");
        }
        if (typeof f !== "object" || f === null)
            return this.protocolError(ws, "a message that is not a JSON object");
        const v2 = this.linkWelcome !== null && this.linkVersion === 2;
        switch (f.type) {
            case "welcome":
                return this.onWelcome(ws, f);
            case "reply":
            case "error":
            case "push":
                if (v2) {
                    // A sequenced frame (11.2): counted, whatever becomes of it, before anything it
                    // causes, so that a request sent from its callback acknowledges it.
                    const s = this.sessionState;
                    if (s === null || this.welcomeFrame === null)
                        return this.protocolError(ws, `a ${f.type} before the session was settled`);
                    if (f.type !== "push" && typeof f.id === "number")
                        s.unanswered.delete(f.id);
                    this.countSequenced(ws, s);
                }
                return f.type === "push" ? this.onPush(f) : this.onAnswer(f);
            case "ack":
                if (v2)
                    return this.onServerAck(ws, f);
                break;
            case "resumed":
                if (v2)
                    return this.onResumed(ws, f);
                break;
            case "resume_failed":
                if (v2)
                    return this.onResumeFailed(ws, f);
                break;
        }
        return this.protocolError(ws, `a frame of unknown type ${JSON.stringify(f.type)}`);
    }
    onAnswer(f) {
        const entry = typeof f.id === "number" ? this.pending.get(f.id) : undefined;
        if (!entry || entry.queued) {
            // Its call ended already (a timeout), or it is a second answer: dropped.
            this.stats.lateAnswers++;
            return;
        }
        const rtt = this.timers.now() - entry.sentAt;
        this.stats.rttMs = rtt;
        this.stats.rttAvgMs = this.stats.rttAvgMs === null ? rtt : this.stats.rttAvgMs * 0.8 + rtt * 0.2;
        // A probe's redirect proves the link as any answer does; only the app's calls follow one.
        if (f.type === "error" && Number(f.code) === ErrorCodes.REDIRECT && !entry.internal)
            return this.followRedirect(entry, f.message);
        if (f.type === "reply") {
            this.stats.replies++;
            // `tick`: the stamp of a connection that asked for stamps (PROTOCOL.md 4.3).
            this.finish(f.id, null, f.body ?? null, typeof f.tick === "number" ? f.tick : null);
        }
        else {
            this.stats.errorReplies++;
            this.finish(f.id, new ReplyError(entry.route, Number(f.code), String(f.message ?? "")));
        }
    }
    onPush(f) {
        this.stats.pushes++;
        const dropped = f.topic === DROPPED_TOPIC && typeof f.body === "number";
        if (dropped)
            this.stats.eventsDropped += f.body;
        const set = this.pushListeners.get(f.topic);
        if (!set || set.size === 0) {
            // The server's count is kept in the stats even when nobody listens: not unheard.
            if (!dropped)
                this.stats.unheardPushes++;
            return;
        }
        for (const h of [...set])
            this.guard(() => h(f.body ?? null, f.topic));
    }
    onWelcome(ws, f) {
        if (this.linkState !== "connecting" || this.linkWelcome !== null)
            return this.protocolError(ws, "a second welcome");
        const version = ws.protocol === SUBPROTOCOL_V2 ? 2 : 1;
        if (f.version !== version) {
            const err = new ClosedError("", `the server speaks protocol version ${f.version} on ${ws.protocol || "its subprotocol"}, which is version ${version}`);
            this.shutDown("version", err, CloseCodes.PROTOCOL_ERROR, "unsupported version", false);
            return;
        }
        this.linkVersion = version;
        const tick_hz = Number(f.tick_hz);
        if (version === 1) {
            const welcome = { version, tick_hz, conn_id: String(f.conn_id) };
            this.linkWelcome = { welcome, secret: "" };
            if (this.sessionState !== null) {
                // The server went back to version 1: the session cannot be resumed there.
                this.endSession("version_1", null, "the server speaks version 1 only");
                if (this.ws !== ws || this.linkState !== "connecting")
                    return; // a listener closed or replaced it
            }
            return this.becomeReady(ws, welcome, false);
        }
        const conn_id = u64Text(f.conn_id);
        const epoch = u64Text(f.epoch);
        const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
        if (conn_id === null || epoch === null || secret === null)
            return this.protocolError(ws, "a version 2 welcome without a valid conn_id, epoch and secret");
        const welcome = { version, tick_hz, conn_id, epoch };
        this.linkWelcome = { welcome, secret };
        const s = this.sessionState;
        if (s === null) {
            this.sessionState = newSession(welcome, secret);
            return this.becomeReady(ws, welcome, false);
        }
        // 11.4: the Resume is the first frame, and nothing else goes out until its answer (calls
        // made meanwhile wait in the offline queue). The connect timer runs on until then.
        this.awaitingResume = true;
        this.sendFrame(ws, `{"type":"resume","session":"${s.connId}","epoch":"${s.epoch}","secret":"${s.secret}","received":${s.received}}`);
        this.acknowledged(s);
    }
    /** The server's answer to a Resume that succeeded: resend what it had not taken, then carry on. */
    onResumed(ws, f) {
        const s = this.sessionState;
        const link = this.linkWelcome;
        if (!this.awaitingResume || s === null || link === null)
            return this.protocolError(ws, "a resumed frame that answers no resume");
        const received = frameCount(f.received);
        const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
        if (received === null || received > s.lastSeq || secret === null) {
            // Retrying would meet the same answer: the session is given up, the next link starts afresh.
            const what = received !== null && received > s.lastSeq ? `says it took request ${received}, but the last sent was ${s.lastSeq}` : "has no valid received count and secret";
            this.endSession("protocol_error", null, `the server's resumed frame ${what}`);
            if (this.ws === ws)
                this.protocolError(ws, `a resumed frame that ${what}`);
            return;
        }
        this.awaitingResume = false;
        s.secret = secret; // the one just sent is retired (11.3)
        s.serverReceived = Math.max(s.serverReceived, received);
        this.stats.resumes++;
        // 11.4: every request above the server's count, in order, with its original seq and id, and
        // before any new request (a new seq before them would be a gap).
        const now = this.timers.now();
        for (const r of s.unanswered.values()) {
            if (r.seq <= received)
                continue;
            this.sendRequestV2(ws, s, r.seq, r.core);
            this.stats.sent++;
            this.stats.resentRequests++;
            const entry = this.pending.get(r.id);
            if (entry)
                entry.sentAt = now;
        }
        s.welcome = { ...s.welcome, tick_hz: link.welcome.tick_hz };
        this.becomeReady(ws, s.welcome, true);
    }
    /** The server's answer to a Resume that failed: the session ended, the link carries a new one. */
    onResumeFailed(ws, f) {
        const link = this.linkWelcome;
        if (!this.awaitingResume || link === null)
            return this.protocolError(ws, "a resume_failed frame that answers no resume");
        const code = frameCount(f.reason);
        this.endSession("resume_failed", code, String(f.message ?? ""));
        if (this.ws !== ws || this.linkState !== "connecting")
            return; // a listener closed or replaced it
        // 11.4: the link carries on as the new session of its Welcome, counts from 0; its first
        // frame after the failed Resume (a request, else an ack of 0) starts it.
        this.sessionState = newSession(link.welcome, link.secret);
        this.linkFramesSent = 0;
        this.becomeReady(ws, link.welcome, false);
    }
    /** The server's count of the requests it has taken (11.2). */
    onServerAck(ws, f) {
        const s = this.sessionState;
        const received = frameCount(f.received);
        if (this.awaitingResume || s === null || this.welcomeFrame === null)
            return this.protocolError(ws, "an ack before the session was settled");
        if (received === null || received > s.lastSeq)
            return this.protocolError(ws, `an ack of ${JSON.stringify(f.received)}, but the last request sent was ${s.lastSeq}`);
        s.serverReceived = Math.max(s.serverReceived, received);
    }
    /**
     * One more sequenced frame received: acknowledged at once after `ackAfterFrames` of them,
     * else within `ackDelayMs` (unless a request carries the count first).
     */
    countSequenced(ws, s) {
        s.received++;
        if (s.received - s.acked >= this.opts.ackAfterFrames) {
            if (ws.readyState === OPEN)
                this.sendAck(ws, s);
            return;
        }
        this.scheduleAck(ws, s);
    }
    /** An `ack` frame within `ackDelayMs`, unless one is scheduled already or a request carries the count first. */
    scheduleAck(ws, s) {
        if (this.ackTimer !== null)
            return;
        this.ackTimer = this.timers.setTimeout(() => {
            this.ackTimer = null;
            if (this.ws === ws && this.sessionState === s && this.linkState === "open" && s.received > s.acked && ws.readyState === OPEN)
                this.sendAck(ws, s);
        }, this.opts.ackDelayMs);
    }
    /**
     * The connection is ready for calls: its welcome arrived (version 1), or its version 2
     * session is settled (new, resumed, or new after a failed resume).
     */
    becomeReady(ws, welcome, resumed) {
        if (this.connectTimer !== null) {
            this.timers.clearTimeout(this.connectTimer);
            this.connectTimer = null;
        }
        this.welcomeFrame = welcome;
        this.linkState = "open";
        this.openedAt = this.timers.now();
        this.lastHeard = this.openedAt;
        this.stats.connections++;
        this.startHeartbeat(ws);
        this.emit("connected", { welcome, reconnected: this.stats.connections > 1, resumed });
        // Flush the offline queue in order (a listener above may have closed or dropped the link).
        this.flushQueue(ws);
        // 11.4: a new version 2 session starts with the client's first frame; with nothing to send,
        // an ack of 0 tells the game it exists.
        const s = this.sessionState;
        if (!resumed && s !== null && this.linkFramesSent === 0 && this.ws === ws && this.linkState === "open" && ws.readyState === OPEN) {
            this.sendAck(ws, s);
        }
    }
    /**
     * The version 2 session is over while the client runs: `session_ended` goes out, then every
     * call sent and not answered rejects with `DisconnectedError` (its fate is unknown).
     */
    endSession(reason, code, message) {
        if (this.sessionState === null)
            return;
        this.sessionState = null;
        this.awaitingResume = false;
        if (this.ackTimer !== null) {
            this.timers.clearTimeout(this.ackTimer);
            this.ackTimer = null;
        }
        this.stats.sessionsEnded++;
        const sent = this.sentCalls();
        const failedCalls = sent.filter((entry) => !entry.internal).length;
        this.emit("session_ended", { reason, code, message, failedCalls });
        this.rejectSent(sent);
    }
    /** The calls sent on the current connection (or session) and still waiting for their outcome, in call order. */
    sentCalls() {
        const sent = [];
        for (const entry of this.pending.values())
            if (!entry.queued && !entry.away)
                sent.push(entry);
        return sent;
    }
    /** Each of `sent` that still waits rejects with `DisconnectedError`. */
    rejectSent(sent) {
        for (const entry of sent) {
            // A callback may have ended some already (a close() in it ends the rest).
            if (this.pending.get(entry.id) !== entry)
                continue;
            this.finish(entry.id, new DisconnectedError(entry.route));
            if (!entry.internal)
                this.stats.disconnectedCalls++;
        }
    }
    // ----- redirects (PROTOCOL.md section 12) ----------------------------------------------------
    /**
     * Call `entry` was answered with a redirect to the node of URL `message`: it is made again on
     * a new connection there (12.2). The current connection stays the client's until that answer.
     */
    followRedirect(entry, message) {
        const target = redirectTarget(message);
        const fail = (url, why) => this.finish(entry.id, new RedirectError(entry.route, url, why));
        if (typeof target === "string")
            return void fail("", target);
        if (entry.redirects >= MAX_REDIRECTS)
            return void fail(target.reconnectUrl, `the call was redirected more than ${MAX_REDIRECTS} times`);
        // One at a time: a second move while the first is under way would leave the client on
        // whichever answered last. The spec lets a client that cannot follow fail the call (6).
        if (this.hop !== null)
            return void fail(target.reconnectUrl, "another call's redirect is being followed");
        const from = this.ws;
        if (from === null || this.linkState !== "open")
            return void fail(target.reconnectUrl, "the client is not connected");
        let ws;
        // The ticket carries the identity; the token goes along, so that the node's connection rests
        // on it as the ones the client opens there later will.
        const token = this.heldToken;
        try {
            ws = new this.WS(this.upgradeUrl(target.url, token), [...SUBPROTOCOLS]);
        }
        catch (e) {
            // E.g. a SecurityError: a ws:// node for a page served over https.
            return void fail(target.reconnectUrl, `the WebSocket could not be made: ${String(e)}`);
        }
        entry.redirects++;
        entry.away = true;
        const hop = { entry, ws, url: target.reconnectUrl, welcome: null, version: 1, session: null, secret: "", sent: false, timer: null, token };
        this.hop = hop;
        ws.onopen = () => {
            if (!SUBPROTOCOLS.includes(ws.protocol))
                this.hopFailed(hop, `the node chose subprotocol "${ws.protocol}"`);
        };
        ws.onmessage = (ev) => this.onHopFrame(hop, ev.data);
        ws.onclose = (ev) => this.onHopClose(hop, ev.code ?? 1006, ev.reason ?? "");
        ws.onerror = () => {
            // A close event follows; it does the work.
        };
        hop.timer = this.timers.setTimeout(() => {
            hop.timer = null;
            this.hopFailed(hop, `no welcome within ${this.opts.connectTimeoutMs} ms`, CloseCodes.CONNECT_TIMEOUT);
        }, this.opts.connectTimeoutMs);
    }
    /** The redirect is over: its connection's handlers and timer go (it is closed with `code` unless null). */
    endHop(hop, code, reason) {
        if (this.hop !== hop)
            return;
        this.hop = null;
        hop.entry.away = false;
        hop.ws.onopen = hop.ws.onmessage = hop.ws.onclose = hop.ws.onerror = null;
        if (hop.timer !== null)
            this.timers.clearTimeout(hop.timer);
        hop.timer = null;
        if (code === null)
            return;
        try {
            hop.ws.close(code, reason);
        }
        catch {
            // Already closed.
        }
    }
    /** The redirect cannot be followed: its connection closes and the call fails with `RedirectError`. */
    hopFailed(hop, why, code = CloseCodes.PROTOCOL_ERROR) {
        if (this.hop !== hop)
            return;
        this.endHop(hop, code, why.slice(0, 120));
        this.finish(hop.entry.id, new RedirectError(hop.entry.route, hop.url, why));
    }
    onHopClose(hop, code, reason) {
        if (this.hop !== hop)
            return;
        if (code === CLOSE_AUTH_FAILED || code === CLOSE_AUTH_EXPIRED) {
            // The node handled nothing of the connection: the call was not made there.
            const entry = hop.entry;
            this.dropRefusedToken(hop.token);
            this.endHop(hop, null, "");
            this.emit("token_refused", { code, reason, expired: code === CLOSE_AUTH_EXPIRED, token: hop.token });
            if (this.pending.get(entry.id) === entry)
                this.finish(entry.id, new RedirectError(entry.route, hop.url, `the node refused the token (close ${code})`));
            return;
        }
        if (code === CLOSE_BAD_TICKET)
            return this.hopFailed(hop, `the node refused the ticket (close ${code})`);
        if (!hop.sent)
            return this.hopFailed(hop, `the connection closed (${code}) before the request was sent there`);
        // The request went out and may have been handled: as any call whose link dropped.
        this.endHop(hop, null, "");
        this.finish(hop.entry.id, new DisconnectedError(hop.entry.route));
        this.stats.disconnectedCalls++;
    }
    /** A frame on a redirect's new connection: its welcome, then the answer (pushes before it are heard). */
    onHopFrame(hop, data) {
        if (this.hop !== hop)
            return;
        let f = null;
        try {
            f = typeof data === "string" ? JSON.parse(data) : null;
        }
        catch {
            // Reported below.
        }
        if (typeof f !== "object" || f === null)
            return this.hopFailed(hop, "the node sent a message that is not a JSON object");
        if (hop.welcome === null)
            return this.onHopWelcome(hop, f);
        const s = hop.session;
        switch (f.type) {
            case "reply":
            case "error":
                if (f.id !== hop.entry.id)
                    return this.hopFailed(hop, `the node answered request ${JSON.stringify(f.id)}, which it was not sent`);
                if (s !== null) {
                    s.unanswered.delete(f.id);
                    s.received++;
                }
                this.moveTo(hop);
                return this.onAnswer(f);
            case "push":
                if (s !== null)
                    s.received++;
                return this.onPush(f);
            case "ack":
                if (s !== null)
                    return;
                break;
        }
        this.hopFailed(hop, `the node sent a frame of type ${JSON.stringify(f.type)} before the answer`);
    }
    /** The new node's welcome: the request goes out there at once, as its first (12.2). */
    onHopWelcome(hop, f) {
        const ws = hop.ws;
        const version = ws.protocol === SUBPROTOCOL_V2 ? 2 : 1;
        if (f.type !== "welcome" || f.version !== version)
            return this.hopFailed(hop, `the node's first frame is not a version ${version} welcome`);
        const tick_hz = Number(f.tick_hz);
        if (version === 1) {
            hop.welcome = { version, tick_hz, conn_id: String(f.conn_id) };
        }
        else {
            const conn_id = u64Text(f.conn_id);
            const epoch = u64Text(f.epoch);
            const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
            if (conn_id === null || epoch === null || secret === null)
                return this.hopFailed(hop, "the node's version 2 welcome has no valid conn_id, epoch and secret");
            hop.welcome = { version, tick_hz, conn_id, epoch };
            hop.session = newSession(hop.welcome, secret);
            hop.secret = secret;
        }
        hop.version = version;
        if (hop.timer !== null)
            this.timers.clearTimeout(hop.timer);
        hop.timer = null; // from now on the call's own timeout is the bound
        const entry = hop.entry;
        const frameBytes = requestFrameBytes(entry.bytes, version);
        if (frameBytes > this.opts.maxFrameBytes) {
            this.endHop(hop, CloseCodes.NORMAL, "request too large");
            this.finish(entry.id, new TooLargeError(entry.route, frameBytes, this.opts.maxFrameBytes));
            return;
        }
        const s = hop.session;
        let frame = `{${entry.core}}`;
        if (s !== null) {
            // The new session's first request (11.4), its answer counted in that session.
            s.lastSeq = 1;
            s.unanswered.set(entry.id, { seq: 1, id: entry.id, core: entry.core });
            frame = `{"type":"request","seq":1,"ack":0,${entry.core}}`;
        }
        try {
            ws.send(frame);
        }
        catch {
            return this.hopFailed(hop, "the request could not be sent");
        }
        hop.sent = true;
        entry.sentAt = this.timers.now();
        this.stats.sent++;
    }
    /**
     * The new node answered: its connection becomes the client's (12.2 step 3). Calls still in
     * flight on the old one wait there for `redirectDrainMs`; then it closes with 1000.
     */
    moveTo(hop) {
        const old = this.ws;
        const welcome = hop.welcome;
        if (old === null || welcome === null)
            return; // endHop ran with the old connection's teardown
        const inFlight = this.sentCalls();
        this.endHop(hop, null, "");
        for (const timer of [this.connectTimer, this.ackTimer])
            if (timer !== null)
                this.timers.clearTimeout(timer);
        if (this.heartbeatTimer !== null)
            this.timers.clearInterval(this.heartbeatTimer);
        this.connectTimer = this.ackTimer = this.heartbeatTimer = null;
        this.probe = null;
        // The old session is given up with its connection: nothing of it is resumed elsewhere.
        this.drain(old, inFlight);
        const ws = hop.ws;
        this.ws = ws;
        this.attach(ws);
        this.linkToken = hop.token;
        this.linkVersion = hop.version;
        this.linkWelcome = { welcome, secret: hop.secret };
        this.awaitingResume = false;
        this.linkFramesSent = 1;
        this.sessionState = hop.session;
        this.welcomeFrame = welcome;
        this.linkState = "open";
        this.openedAt = this.timers.now();
        this.lastHeard = this.openedAt;
        this.attempt = 0;
        this.stats.connections++;
        this.stats.redirects++;
        const from = this.connectUrl;
        this.connectUrl = hop.url;
        this.startHeartbeat(ws);
        const s = this.sessionState;
        if (s !== null && s.received > s.acked)
            this.scheduleAck(ws, s);
        this.emit("redirected", { url: hop.url, from, route: hop.entry.route, welcome });
        this.flushQueue(ws);
    }
    /** Old connection `ws` waits for the answers to `calls` (for `redirectDrainMs`), then closes with 1000. */
    drain(ws, calls) {
        const drain = { ws, calls: new Map(), timer: null };
        ws.onopen = null;
        ws.onmessage = (ev) => this.onDrainFrame(drain, ev.data);
        ws.onclose = () => this.endDrain(drain, null);
        ws.onerror = () => {
            // A close event follows; it does the work.
        };
        for (const entry of calls) {
            entry.away = true;
            drain.calls.set(entry.id, entry);
        }
        this.drains.add(drain);
        if (calls.length === 0)
            return this.endDrain(drain, "moved to another node");
        drain.timer = this.timers.setTimeout(() => {
            drain.timer = null;
            this.endDrain(drain, "moved to another node");
        }, this.opts.redirectDrainMs);
    }
    /**
     * A frame on an old connection: the answer of a call that waits there ends it (it may be a
     * redirect of its own). Pushes are dropped: the client's connection is the new one.
     */
    onDrainFrame(drain, data) {
        let f = null;
        try {
            f = typeof data === "string" ? JSON.parse(data) : null;
        }
        catch {
            return; // it is going away: nothing more is asked of it
        }
        if (f === null || (f.type !== "reply" && f.type !== "error"))
            return;
        const entry = drain.calls.get(f.id);
        if (entry !== undefined && this.pending.get(f.id) === entry) {
            drain.calls.delete(f.id);
            entry.away = false;
            this.onAnswer(f);
        }
        for (const [id, e] of drain.calls)
            if (this.pending.get(id) !== e)
                drain.calls.delete(id);
        if (drain.calls.size === 0)
            this.endDrain(drain, "moved to another node");
    }
    /** The old connection is done (closed with 1000 and `reason` unless null: it closed itself); its calls left reject with `DisconnectedError`. */
    endDrain(drain, reason) {
        if (!this.drains.delete(drain))
            return;
        const ws = drain.ws;
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        if (drain.timer !== null)
            this.timers.clearTimeout(drain.timer);
        drain.timer = null;
        if (reason !== null) {
            try {
                ws.close(CloseCodes.NORMAL, reason);
            }
            catch {
                // Already closed.
            }
        }
        const left = [...drain.calls.values()];
        drain.calls.clear();
        for (const entry of left)
            entry.away = false;
        this.rejectSent(left);
    }
    startHeartbeat(ws) {
        if (this.heartbeatTimer !== null)
            this.timers.clearInterval(this.heartbeatTimer); // never two
        this.heartbeatTimer = this.timers.setInterval(() => {
            if (ws !== this.ws || this.linkState !== "open")
                return;
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
            }
            else if (canProbe && idle >= interval && this.probe === null) {
                const probe = { sentAt: now };
                this.probe = probe;
                this.stats.heartbeatProbes++;
                const answered = () => {
                    if (this.probe === probe)
                        this.probe = null;
                };
                this.start(route, null, { timeout: Infinity }, answered, true);
            }
        }, this.opts.heartbeatIntervalMs);
    }
    protocolError(ws, what) {
        this.teardown(ws, CloseCodes.PROTOCOL_ERROR, `protocol error: ${what}`.slice(0, 120), false);
    }
    /**
     * Ends connection `ws` (closing it if `fromSocket` is false): its timers stop, calls sent on it
     * reject with `DisconnectedError`, and a reconnect is scheduled unless the client is closed.
     */
    teardown(ws, code, reason, wasClean, fromSocket = false) {
        if (ws !== this.ws)
            return;
        this.ws = null;
        // A redirect followed from this connection ends with it: the client would have nowhere to
        // come back to if the new node failed. Its call fails below, with the calls of this one.
        const hop = this.hop;
        if (hop !== null)
            this.endHop(hop, CloseCodes.NORMAL, "the connection it came from dropped");
        // A node that refuses a ticket (12.3) is no place to reconnect to.
        if (fromSocket && code === CLOSE_BAD_TICKET)
            this.connectUrl = this.url;
        // A token refused (13.1) or expired (13.4) would be refused at every reconnect: it goes
        // before anything runs, so that a connect() from a listener is anonymous already.
        const refusedToken = this.linkToken;
        this.linkToken = null;
        const tokenRefused = fromSocket && (code === CLOSE_AUTH_FAILED || code === CLOSE_AUTH_EXPIRED);
        if (tokenRefused)
            this.dropRefusedToken(refusedToken);
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        if (!fromSocket) {
            try {
                ws.close(code, reason);
            }
            catch {
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
        if (this.ackTimer !== null) {
            this.timers.clearTimeout(this.ackTimer);
            this.ackTimer = null;
        }
        this.probe = null;
        const wasOpen = this.welcomeFrame !== null;
        const upFor = wasOpen ? this.timers.now() - this.openedAt : 0;
        this.welcomeFrame = null;
        this.linkWelcome = null;
        this.awaitingResume = false;
        // The state and what fails are settled before any listener or callback runs: those may call
        // connect() or close(), and what they start must be left alone below.
        if (this.linkState !== "closed")
            this.linkState = "waiting";
        // Version 2: the session outlives the link unless the client is closing. Its calls wait for
        // the resume (their requests are kept); only heartbeat probes, which prove this link alone,
        // end here (their requests are kept too: the seq must have no gap).
        const resuming = this.sessionState !== null && this.linkState !== "closed";
        const sent = this.sentCalls().filter((entry) => (!resuming || entry.internal) && entry !== hop?.entry);
        const failedCalls = sent.filter((entry) => !entry.internal).length;
        // The event first, so that its listeners, and the calls' callbacks after them, see the
        // events in order: a close() there follows the `disconnected` with its `closed`.
        if (wasOpen)
            this.emit("disconnected", { code, reason, wasClean, failedCalls, resuming });
        if (tokenRefused)
            this.emit("token_refused", { code, reason, expired: code === CLOSE_AUTH_EXPIRED, token: refusedToken });
        this.rejectSent(sent);
        if (hop !== null && this.pending.get(hop.entry.id) === hop.entry) {
            // Sent on the new node, it may have been handled there: its fate is unknown.
            this.finish(hop.entry.id, hop.sent ? new DisconnectedError(hop.entry.route) : new RedirectError(hop.entry.route, hop.url, "the connection it came from dropped first"));
            if (hop.sent)
                this.stats.disconnectedCalls++;
        }
        // Reconnect only if no callback connected or closed meanwhile.
        if (this.linkState === "waiting" && this.ws === null && this.reconnectTimer === null)
            this.afterDrop(wasOpen, upFor);
    }
    afterDrop(wasOpen, upFor) {
        if (wasOpen && upFor >= this.opts.stableAfterMs)
            this.attempt = 0;
        this.attempt++;
        // 12.4: a node the client was redirected to may be gone for good; the URL it started from
        // (a load balancer, say) leads to a live node.
        if (this.connectUrl !== this.url && this.attempt > REDIRECTED_URL_ATTEMPTS)
            this.connectUrl = this.url;
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
            if (this.linkState === "waiting")
                this.open();
        }, delayMs);
        this.emit("reconnecting", { attempt: this.attempt, delayMs, maxAttempts: max });
    }
    /**
     * The client stops for good: the connection, if any, ends with `code` (its sent calls reject
     * with `DisconnectedError`, and `disconnected` goes out if it was open), queued calls reject
     * with `ClosedError`, then `closed` goes out. A `connect()` from any of their callbacks or
     * listeners runs after that.
     */
    shutDown(reason, error, code, closeReason, wasClean) {
        this.linkState = "closed";
        if (this.reconnectTimer !== null) {
            this.timers.clearTimeout(this.reconnectTimer);
            this.reconnectTimer = null;
        }
        const why = error ? error.message : "the client was closed";
        this.stopping++;
        try {
            if (this.ws)
                this.teardown(this.ws, code, closeReason, wasClean);
            for (const drain of [...this.drains])
                this.endDrain(drain, "client closed");
            // A version 2 session is given up with the client: calls that waited for its resume fail
            // as calls lost to a dropped link do.
            if (this.sessionState !== null) {
                this.sessionState = null;
                this.rejectSent(this.sentCalls());
            }
            // Calls made from the callbacks meanwhile are refused (the state says closed): the
            // queue only shrinks.
            for (let entry = this.queue.shift(); entry; entry = this.queue.shift()) {
                this.finish(entry.id, new ClosedError(entry.route, `not sent: ${why}`));
            }
            this.emit("closed", { reason, error });
        }
        finally {
            this.stopping--;
        }
        if (this.stopping === 0 && this.restartRequested) {
            this.restartRequested = false;
            this.connect();
        }
    }
}
/** Shorthand for `new TicksockClient(url, options)`. */
export function connect(url, options) {
    return new TicksockClient(url, options);
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
    /** `register`: an account has that name already. */
    NAME_TAKEN: 1007,
    /** `signin`, `guest`: wrong name or password, or an unknown device token. */
    BAD_CREDENTIALS: 1008,
    /** Accounts: the server's database failed or stayed busy (retry later), or it keeps no accounts. */
    STORE: 1009,
};
/** Arena constants (PROTOCOL.md section 8.1). */
export const Arena = { SIZE: 1000, SPEED: 5, MAX_NAME_LEN: 32, MAX_CHAT_LEN: 256 };

/**
 * bincode 2, "standard" configuration: the binary body encoding of PROTOCOL.md section 3, for the
 * values the client reads or writes as bytes. The client itself speaks JSON; what needs bytes is
 * replication (section 14): a `replica` update's binary form, and the fields of a view, whose
 * digest (14.5) is defined over their binary encoding, so a field that arrives as JSON is written
 * as bincode by its declared type (`BincodeType`) before it is kept.
 *
 * Integers: u8 and i8 are one raw byte; u16, u32, u64 are varints (3.1), shortest form when
 * written, and a field's declared width bounds the first byte when read; signed ones are zigzag
 * varints (3.2). A u64 or i64 is read as a `number` when it fits one exactly (below 2^53), else
 * as a `bigint`; either is accepted when writing. Lengths are u64 varints, bounded by the bytes
 * left (a hostile length costs nothing). Every failure throws a `BincodeError` that says what
 * was wrong and where.
 */
/** Bytes that are not what was expected, or a value that does not fit its type. */
export class BincodeError extends Error {
    constructor() {
        super(...arguments);
        this.name = "BincodeError";
    }
}
/** Varint first bytes (3.1): 251 (`fb`) is a u16 next, 252 a u32, 253 a u64. */
const U16_MARK = 251;
const U32_MARK = 252;
const U64_MARK = 253;
const TWO_32 = 4294967296;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();
/** `n` as a number when it is one exactly, else as it is. */
function narrow(n) {
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}
/** Reads bincode values from the start of `bytes`, in turn. */
export class BincodeReader {
    /** A reader of `bytes`, from their start. */
    constructor(bytes) {
        this.bytes = bytes;
        this.pos = 0;
        this.data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    /** Bytes read so far. */
    get offset() {
        return this.pos;
    }
    /** Bytes not read yet. */
    get remaining() {
        return this.bytes.length - this.pos;
    }
    /** Throws unless every byte was read: a body is one value, with nothing after it. */
    end(what = "the value") {
        if (this.remaining > 0)
            throw new BincodeError(`${this.remaining} bytes after ${what}`);
    }
    need(n, what) {
        if (this.remaining < n)
            throw new BincodeError(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
        const at = this.pos;
        this.pos += n;
        return at;
    }
    /** A u8: one raw byte. */
    u8() {
        return this.bytes[this.need(1, "u8")];
    }
    /** An i8: one raw byte, two's complement. */
    i8() {
        return this.data.getInt8(this.need(1, "i8"));
    }
    /** A bool: `00` or `01`, any other byte an error. */
    bool() {
        const b = this.bytes[this.need(1, "bool")];
        if (b > 1)
            throw new BincodeError(`bool: byte ${b} at offset ${this.pos - 1} is neither 0 nor 1`);
        return b === 1;
    }
    /** A varint whose first byte is at most `maxFirst` (the field's width, 3.1). */
    varint(maxFirst, what) {
        const at = this.pos;
        const b = this.bytes[this.need(1, what)];
        if (b < U16_MARK)
            return BigInt(b);
        if (b > maxFirst)
            throw new BincodeError(`${what}: first byte 0x${b.toString(16)} at offset ${at} is not one of its width`);
        if (b === U16_MARK)
            return BigInt(this.data.getUint16(this.need(2, what), true));
        if (b === U32_MARK)
            return BigInt(this.data.getUint32(this.need(4, what), true));
        return this.data.getBigUint64(this.need(8, what), true);
    }
    /** A u16: a varint of at most `fb` and 2 bytes. */
    u16() {
        return Number(this.varint(U16_MARK, "u16"));
    }
    /** A u32: a varint of at most `fc` and 4 bytes. */
    u32() {
        return Number(this.varint(U32_MARK, "u32"));
    }
    /** A u64: a number below 2^53, else a bigint. */
    u64() {
        return narrow(this.varint(U64_MARK, "u64"));
    }
    /** A u64 that must be a number (a tick, a count): throws above 2^53. */
    u64Number(what = "u64") {
        const v = this.varint(U64_MARK, what);
        if (v > BigInt(Number.MAX_SAFE_INTEGER))
            throw new BincodeError(`${what}: ${v} is beyond 2^53`);
        return Number(v);
    }
    /** An i16: a zigzag varint of a u16's width. */
    i16() {
        return Number(unzigzag(this.varint(U16_MARK, "i16")));
    }
    /** An i32: a zigzag varint of a u32's width. */
    i32() {
        return Number(unzigzag(this.varint(U32_MARK, "i32")));
    }
    /** An i64: a number within ±2^53, else a bigint. */
    i64() {
        return narrow(unzigzag(this.varint(U64_MARK, "i64")));
    }
    /** An f32: 4 bytes LE. */
    f32() {
        return this.data.getFloat32(this.need(4, "f32"), true);
    }
    /** An f64: 8 bytes LE. */
    f64() {
        return this.data.getFloat64(this.need(8, "f64"), true);
    }
    /**
     * A length (a u64), of items at least `itemBytes` bytes each: more than the bytes left could
     * hold is an error before anything is reserved for them.
     */
    length(what, itemBytes = 1) {
        const at = this.pos;
        const n = this.varint(U64_MARK, `${what} length`);
        const most = itemBytes > 0 ? Math.floor(this.remaining / itemBytes) : MAX_EMPTY_ITEMS;
        if (n > BigInt(most))
            throw new BincodeError(`${what}: length ${n} at offset ${at} is more than the ${this.remaining} bytes left hold`);
        return Number(n);
    }
    /** A byte sequence: its length, then its bytes (a view into the input, not a copy). */
    byteSeq(what = "bytes") {
        const n = this.length(what);
        const at = this.need(n, what);
        return this.bytes.subarray(at, at + n);
    }
    /** A string: its length in bytes, then that much UTF-8 (invalid UTF-8 is an error). */
    string() {
        const at = this.pos;
        const bytes = this.byteSeq("string");
        try {
            return utf8Decoder.decode(bytes);
        }
        catch {
            throw new BincodeError(`string at offset ${at} is not UTF-8`);
        }
    }
}
/**
 * The most items of zero bytes each (`()`, an empty tuple) a list may claim: they take no input
 * to bound them, so this does (the server's decoder has a 1 MiB budget, 3.7).
 */
const MAX_EMPTY_ITEMS = 1 << 20;
function unzigzag(u) {
    return u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
}
function zigzag(n) {
    return n >= 0n ? n << 1n : ((-n - 1n) << 1n) | 1n;
}
/** Writes bincode values, in turn; `finish` gives the bytes. */
export class BincodeWriter {
    constructor() {
        this.buf = new Uint8Array(64);
        this.len = 0;
    }
    room(n) {
        if (this.len + n > this.buf.length) {
            const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
            bigger.set(this.buf.subarray(0, this.len));
            this.buf = bigger;
        }
        const at = this.len;
        this.len += n;
        return at;
    }
    view(at, n) {
        return new DataView(this.buf.buffer, at, n);
    }
    /** The bytes written (a copy). */
    finish() {
        return this.buf.slice(0, this.len);
    }
    /** `bytes` as they are (no length). */
    raw(bytes) {
        this.buf.set(bytes, this.room(bytes.length));
        return this;
    }
    /** A u8: one raw byte. */
    u8(v) {
        this.buf[this.room(1)] = checkedInt(v, 0, 0xff, "u8");
        return this;
    }
    /** An i8: one raw byte, two's complement. */
    i8(v) {
        this.view(this.room(1), 1).setInt8(0, checkedInt(v, -0x80, 0x7f, "i8"));
        return this;
    }
    /** A bool: `00` or `01`. */
    bool(v) {
        this.buf[this.room(1)] = v ? 1 : 0;
        return this;
    }
    /** A varint in its shortest form (3.1). */
    varint(v) {
        if (v < BigInt(U16_MARK)) {
            this.buf[this.room(1)] = Number(v);
        }
        else if (v <= 0xffffn) {
            this.buf[this.room(1)] = U16_MARK;
            this.view(this.room(2), 2).setUint16(0, Number(v), true);
        }
        else if (v < BigInt(TWO_32)) {
            this.buf[this.room(1)] = U32_MARK;
            this.view(this.room(4), 4).setUint32(0, Number(v), true);
        }
        else {
            this.buf[this.room(1)] = U64_MARK;
            this.view(this.room(8), 8).setBigUint64(0, v, true);
        }
        return this;
    }
    /** A u16 varint. */
    u16(v) {
        return this.varint(BigInt(checkedInt(v, 0, 0xffff, "u16")));
    }
    /** A u32 varint. */
    u32(v) {
        return this.varint(BigInt(checkedInt(v, 0, TWO_32 - 1, "u32")));
    }
    /** A u64 varint (a number must be below 2^53: a larger one may have been rounded). */
    u64(v) {
        return this.varint(checkedBig(v, 0n, U64_MAX, "u64"));
    }
    /** An i16 zigzag varint. */
    i16(v) {
        return this.varint(zigzag(BigInt(checkedInt(v, -0x8000, 0x7fff, "i16"))));
    }
    /** An i32 zigzag varint. */
    i32(v) {
        return this.varint(zigzag(BigInt(checkedInt(v, -2147483648, 2147483647, "i32"))));
    }
    /** An i64 zigzag varint (a number must be within ±2^53). */
    i64(v) {
        return this.varint(zigzag(checkedBig(v, I64_MIN, I64_MAX, "i64")));
    }
    /** An f32: 4 bytes LE (the number rounded to single precision). */
    f32(v) {
        this.view(this.room(4), 4).setFloat32(0, checkedNumber(v, "f32"), true);
        return this;
    }
    /** An f64: 8 bytes LE. */
    f64(v) {
        this.view(this.room(8), 8).setFloat64(0, checkedNumber(v, "f64"), true);
        return this;
    }
    /** A length (of a string, byte sequence or list). */
    length(n) {
        return this.varint(BigInt(n));
    }
    /** A byte sequence: its length, then its bytes. */
    byteSeq(bytes) {
        return this.length(bytes.length).raw(bytes);
    }
    /** A string: its UTF-8 length, then its UTF-8. */
    string(s) {
        if (typeof s !== "string")
            throw new BincodeError(`string: got ${describe(s)}`);
        return this.byteSeq(utf8Encoder.encode(s));
    }
}
function checkedInt(v, min, max, what) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
        throw new BincodeError(`${what}: got ${describe(v)}, not an integer in ${min}..=${max}`);
    }
    return v;
}
function checkedBig(v, min, max, what) {
    // A number above 2^53 may be a rounded value (JSON.parse rounds silently): refused.
    const n = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : null;
    if (n === null || n < min || n > max) {
        throw new BincodeError(`${what}: got ${describe(v)}, not an exact integer in ${min}..=${max} (a number must be below 2^53)`);
    }
    return n;
}
function checkedNumber(v, what) {
    if (typeof v !== "number")
        throw new BincodeError(`${what}: got ${describe(v)}, not a number`);
    return v;
}
/** A short description of a value for an error message. */
function describe(v) {
    if (typeof v === "string")
        return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
    if (typeof v === "bigint")
        return `${v}n`;
    if (Array.isArray(v))
        return `an array of ${v.length}`;
    if (v === null)
        return "null";
    if (typeof v === "object")
        return "an object";
    return String(v);
}
/** `value` (its JSON form) written as bincode of `type`; throws a `BincodeError` if it is not one. */
export function encodeAs(type, value) {
    const w = new BincodeWriter();
    writeValue(w, type, value, "");
    return w.finish();
}
/** `bytes`, the bincode of one `type` (every byte of it), read back as its JSON form; throws a `BincodeError`. */
export function decodeAs(type, bytes) {
    const r = new BincodeReader(bytes);
    const value = readValue(r, type);
    r.end();
    return value;
}
function writeValue(w, type, v, path) {
    try {
        writeTyped(w, type, v, path);
    }
    catch (e) {
        // Said once, where it happened: the innermost path is the useful one.
        if (e instanceof BincodeError && !e.message.startsWith("at ") && path !== "")
            throw new BincodeError(`at ${path}: ${e.message}`);
        throw e;
    }
}
function writeTyped(w, type, v, path) {
    switch (type) {
        case "u8":
            w.u8(v);
            return;
        case "u16":
            w.u16(v);
            return;
        case "u32":
            w.u32(v);
            return;
        case "u64":
            w.u64(v);
            return;
        case "i8":
            w.i8(v);
            return;
        case "i16":
            w.i16(v);
            return;
        case "i32":
            w.i32(v);
            return;
        case "i64":
            w.i64(v);
            return;
        case "f32":
            w.f32(v);
            return;
        case "f64":
            w.f64(v);
            return;
        case "bool":
            if (typeof v !== "boolean")
                throw new BincodeError(`bool: got ${describe(v)}`);
            w.bool(v);
            return;
        case "string":
            w.string(v);
            return;
        case "unit":
            if (v !== null)
                throw new BincodeError(`(): got ${describe(v)}, not null`);
            return;
    }
    if ("tuple" in type) {
        if (!Array.isArray(v) || v.length !== type.tuple.length)
            throw new BincodeError(`tuple of ${type.tuple.length}: got ${describe(v)}`);
        type.tuple.forEach((t, i) => writeValue(w, t, v[i], `${path}[${i}]`));
    }
    else if ("option" in type) {
        w.bool(v !== null);
        if (v !== null)
            writeValue(w, type.option, v, `${path}?`);
    }
    else if ("list" in type) {
        if (!Array.isArray(v))
            throw new BincodeError(`list: got ${describe(v)}`);
        w.length(v.length);
        v.forEach((item, i) => writeValue(w, type.list, item, `${path}[${i}]`));
    }
    else {
        if (typeof v !== "object" || v === null || Array.isArray(v))
            throw new BincodeError(`struct: got ${describe(v)}`);
        for (const [name, t] of type.struct) {
            if (!(name in v))
                throw new BincodeError(`struct: no field ${JSON.stringify(name)}`);
            writeValue(w, t, v[name], `${path}.${name}`);
        }
    }
}
function readValue(r, type) {
    switch (type) {
        case "u8":
            return r.u8();
        case "u16":
            return r.u16();
        case "u32":
            return r.u32();
        case "u64":
            return r.u64();
        case "i8":
            return r.i8();
        case "i16":
            return r.i16();
        case "i32":
            return r.i32();
        case "i64":
            return r.i64();
        case "f32":
            return r.f32();
        case "f64":
            return r.f64();
        case "bool":
            return r.bool();
        case "string":
            return r.string();
        case "unit":
            return null;
    }
    if ("tuple" in type)
        return type.tuple.map((t) => readValue(r, t));
    if ("option" in type)
        return r.bool() ? readValue(r, type.option) : null;
    if ("list" in type) {
        const n = r.length("list", minBytes(type.list));
        const items = [];
        for (let i = 0; i < n; i++)
            items.push(readValue(r, type.list));
        return items;
    }
    const out = {};
    for (const [name, t] of type.struct)
        out[name] = readValue(r, t);
    return out;
}
/** The fewest bytes a value of `type` takes (a list's items must fit in what is left). */
function minBytes(type) {
    if (type === "unit")
        return 0;
    if (typeof type === "string")
        return type === "f32" ? 4 : type === "f64" ? 8 : 1;
    if ("tuple" in type)
        return type.tuple.reduce((sum, t) => sum + minBytes(t), 0);
    if ("struct" in type)
        return type.struct.reduce((sum, [, t]) => sum + minBytes(t), 0);
    return 1; // an option's tag, a list's length
}

/**
 * State replication, the client side (PROTOCOL.md section 14): a `Mirror` applies the server's
 * `replica` updates and holds the reconstructed view (the entities the player may see, with their
 * fields); a `ReplicaSync` feeds it a client's pushes, acknowledges as it says, and starts it
 * afresh on a new server session.
 *
 * ```js
 * import { TicksockClient, ReplicaSync, ARENA_REPLICA_KINDS, arenaPlayer } from "/ticksock.js";
 * const client = new TicksockClient(`ws://${location.host}/`);
 * const replica = new ReplicaSync(client, { kinds: ARENA_REPLICA_KINDS });
 * replica.onChange(({ entered, changed, left }) => redraw(replica.mirror.view));
 * replica.onError((err) => console.warn(err.kind, err.message));           // never thrown
 * for (const entity of replica.mirror.view.values()) draw(arenaPlayer(entity)); // {x, y, playerId, name}
 * ```
 *
 * # Updates and views
 * An update brings the view from a **baseline** tick the client acknowledged (or from nothing: a
 * full snapshot) to its own tick: entities that entered (every field), entities whose fields
 * changed (those fields), and ids that left. The server may build an update on any baseline it
 * holds an acknowledgement for, and later updates may be in flight when an acknowledgement
 * arrives, so the mirror keeps the view of each tick from the latest update's baseline on (the
 * server never goes back before it), and the views before a full snapshot too (an
 * acknowledgement of one of them may still reach the server after it sent the snapshot); at most
 * `maxViews` (`MAX_HELD_VIEWS`, 64: more than the server's 32). Applying an update:
 * 1. no baseline: start from an empty view; else from the held view of the baseline tick. An
 *    update whose baseline view is not held is refused (`unknown_baseline`): nothing changes, and
 *    the server sends a full snapshot once it no longer holds that baseline itself;
 * 2. remove `left`, add `entered` with their fields, set the fields of `changed` (the others keep
 *    their value);
 * 3. keep the result as the view of the update's tick, and forget the views older than its
 *    baseline (not for a full snapshot).
 *
 * # Field values are bytes
 * A field's value is kept as its **binary** body encoding (bincode, PROTOCOL.md section 3), the
 * form the view's digest (14.5) is defined over. An update in the binary form of 14.2 (a
 * `Uint8Array`) carries those bytes. One in the JSON form of 14.3 (what a JSON connection, so
 * this client, receives) carries each field's JSON value: the mirror writes it as bincode by the
 * type its kind declares for that index (`kinds`, e.g. `ARENA_REPLICA_KINDS`), so an entity of a
 * kind it has no types for makes that update a `decode` error. Binary fields of a declared kind
 * are checked against their types too. `decodeField` reads a value back; `arenaPlayer` reads the
 * arena's players.
 *
 * # Acknowledging (14.4)
 * After applying an update the mirror has its tick to acknowledge (route `replica_ack`): at once
 * after a full snapshot, else at most once per `ackIntervalMs` (`ACK_INTERVAL_MS`, 100 ms), the
 * latest tick applied by then. `pollAck(now)` takes it when due; `ackDueAt()` says when it will
 * be. The longer a client waits, the larger each delta; a lost acknowledgement costs only that.
 *
 * # Errors
 * `apply` never throws: a body that is not an update (`decode`), an update whose baseline view is
 * not held (`unknown_baseline`), or one not newer than the latest applied (`out_of_order`) comes
 * back as a `ReplicaError`, and the mirror is as it was.
 */
/** The push topic of updates (14.2). */
export const REPLICA_TOPIC = "replica";
/** The route that acknowledges an update's tick (14.4): request the tick, reply an `AckOutcome`. */
export const REPLICA_ACK_ROUTE = "replica_ack";
/** Views a `Mirror` keeps for the server to use as baselines, by default: more than the server holds (32). */
export const MAX_HELD_VIEWS = 64;
/** The least time between two acknowledgements, by default (14.4). */
export const ACK_INTERVAL_MS = 100;
const ACK_OUTCOMES = ["accepted", "stale", "unknown"];
/** An update that was not applied; the mirror is as it was. */
export class ReplicaError extends Error {
    constructor(
    /** `decode`: not an update (or a field not of its type); `unknown_baseline`: its baseline view is not held; `out_of_order`: not newer than the latest. */
    kind, message, 
    /** The update's tick, when it could be read. */
    tick = null, 
    /** Its baseline, for `unknown_baseline`. */
    baseline = null) {
        super(message);
        this.kind = kind;
        this.tick = tick;
        this.baseline = baseline;
        this.name = "ReplicaError";
    }
}
// ---------------------------------------------------------------------------------------------
// Reading updates
/** Reads the binary form of an update (14.2); throws a `BincodeError`. */
export function decodeReplicaUpdate(bytes) {
    const r = new BincodeReader(bytes);
    const tick = r.u64Number("tick");
    const baseline = r.bool() ? r.u64Number("baseline") : null;
    // An entity takes at least 3 bytes (id, kind, field count); an id at least 1.
    const entities = (what) => {
        const n = r.length(what, 3);
        const out = [];
        for (let i = 0; i < n; i++) {
            const id = r.u32();
            const kind = r.u16();
            const count = r.length("fields", 2);
            const fields = [];
            for (let f = 0; f < count; f++) {
                const index = r.u8();
                fields.push({ index, value: r.byteSeq("field value") });
            }
            out.push({ id, kind, fields });
        }
        return out;
    };
    const entered = entities("entered");
    const changed = entities("changed");
    const leftCount = r.length("left");
    const left = [];
    for (let i = 0; i < leftCount; i++)
        left.push(r.u32());
    r.end("the update");
    return { tick, baseline, entered, changed, left };
}
/**
 * Reads the JSON form of an update (14.3), writing each field's value as bincode by the type
 * `kinds` declares for it; throws a `BincodeError` (not an update, an undeclared kind or field, a
 * value not of its type).
 */
export function replicaUpdateFromJson(body, kinds) {
    if (typeof body !== "object" || body === null || Array.isArray(body))
        throw new BincodeError("an update is an object");
    const u = body;
    const tick = jsonCount(u.tick, "tick");
    const baseline = u.baseline === null ? null : jsonCount(u.baseline, "baseline");
    const entities = (what) => jsonList(u[what], what).map((e, i) => {
        const where = `${what}[${i}]`;
        if (typeof e !== "object" || e === null || Array.isArray(e))
            throw new BincodeError(`${where} is not an entity object`);
        const { id, kind, fields } = e;
        const entity = { id: jsonInt(id, 4294967295, `${where}.id`), kind: jsonInt(kind, 0xffff, `${where}.kind`) };
        const types = kinds[entity.kind];
        return {
            ...entity,
            fields: jsonList(fields, `${where}.fields`).map((f, n) => {
                const at = `${where}.fields[${n}]`;
                if (!Array.isArray(f) || f.length !== 2)
                    throw new BincodeError(`${at} is not [index, value]`);
                const index = jsonInt(f[0], 0xff, `${at} index`);
                if (types === undefined)
                    throw new BincodeError(`${at}: no field types for kind ${entity.kind} (MirrorOptions.kinds)`);
                const type = types[index];
                if (type === undefined)
                    throw new BincodeError(`${at}: kind ${entity.kind} has no field ${index}`);
                try {
                    return { index, value: encodeAs(type, f[1]) };
                }
                catch (e) {
                    throw new BincodeError(`${at}: ${e instanceof Error ? e.message : String(e)}`);
                }
            }),
        };
    });
    const entered = entities("entered");
    const changed = entities("changed");
    const left = jsonList(u.left, "left").map((id, i) => jsonInt(id, 4294967295, `left[${i}]`));
    return { tick, baseline, entered, changed, left };
}
function jsonCount(v, what) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
        throw new BincodeError(`${what}: got ${String(v)}, not a tick`);
    return v;
}
function jsonInt(v, max, what) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)
        throw new BincodeError(`${what}: got ${String(v)}, not an integer in 0..=${max}`);
    return v;
}
function jsonList(v, what) {
    if (!Array.isArray(v))
        throw new BincodeError(`${what} is not a list`);
    return v;
}
/** Reads the binary form of an `AckOutcome` (a unit enum: its variant index, a u32); throws a `BincodeError`. */
export function decodeAckOutcome(bytes) {
    const r = new BincodeReader(bytes);
    const variant = r.u32();
    r.end("the outcome");
    const outcome = ACK_OUTCOMES[variant];
    if (outcome === undefined)
        throw new BincodeError(`no AckOutcome of index ${variant}`);
    return outcome;
}
/** Field `index` of `entity` read as `type` (its JSON form); undefined if not set; throws a `BincodeError` if it is not one. */
export function decodeField(entity, index, type) {
    const bytes = entity.fields[index];
    return bytes === undefined ? undefined : decodeAs(type, bytes);
}
const EMPTY_VIEW = new Map();
/** The reconstructed view of one client, and the views it may be sent deltas from. Sans-I/O: `now` is passed in. */
export class Mirror {
    /** An empty mirror. */
    constructor(options = {}) {
        /** Oldest first; the last is the current view. */
        this.views = [];
        /** The tick to acknowledge next, once due. */
        this.ackPending = null;
        /** Whether that tick's update was a full snapshot (acknowledged at once). */
        this.ackNow = false;
        this.lastAckAt = null;
        this.maxViews = Math.max(1, options.maxViews ?? MAX_HELD_VIEWS);
        this.ackIntervalMs = options.ackIntervalMs ?? ACK_INTERVAL_MS;
        this.kinds = options.kinds ?? {};
    }
    /** The current view (empty before the first update). */
    get view() {
        return this.views[this.views.length - 1]?.entities ?? EMPTY_VIEW;
    }
    /** The tick of the current view; null before the first update. */
    get tick() {
        return this.views[this.views.length - 1]?.tick ?? null;
    }
    /** The ticks of the views held, oldest first. */
    get heldTicks() {
        return this.views.map((v) => v.tick);
    }
    /** The held view of `tick`, or null. */
    viewAt(tick) {
        return this.views.find((v) => v.tick === tick)?.entities ?? null;
    }
    /** Forgets every view and any acknowledgement due: a new server session starts with a full snapshot. */
    reset() {
        this.views = [];
        this.ackPending = null;
        this.ackNow = false;
    }
    /**
     * Applies the body of a `replica` push: its binary form (a `Uint8Array`) or its JSON form (the
     * parsed object). Never throws; an update it refuses changes nothing.
     */
    apply(body) {
        let update;
        try {
            update = body instanceof Uint8Array ? decodeReplicaUpdate(body) : replicaUpdateFromJson(body, this.kinds);
            if (body instanceof Uint8Array)
                this.checkFields(update);
        }
        catch (e) {
            const tick = typeof body?.tick === "number" ? body.tick : null;
            return { ok: false, error: new ReplicaError("decode", `not a replica update: ${e instanceof Error ? e.message : String(e)}`, tick) };
        }
        const latest = this.tick;
        if (latest !== null && update.tick <= latest) {
            return { ok: false, error: new ReplicaError("out_of_order", `update of tick ${update.tick} after tick ${latest}`, update.tick) };
        }
        let base = EMPTY_VIEW;
        if (update.baseline !== null) {
            const held = this.viewAt(update.baseline);
            if (held === null) {
                const error = new ReplicaError("unknown_baseline", `no view of the baseline tick ${update.baseline}`, update.tick, update.baseline);
                return { ok: false, error };
            }
            base = held;
        }
        // Views are never changed once kept (older ones are baselines): entities are replaced, not edited.
        const view = new Map(base);
        for (const id of update.left)
            view.delete(id);
        for (const e of update.entered)
            view.set(e.id, { kind: e.kind, fields: withFields([], e.fields) });
        for (const e of update.changed)
            view.set(e.id, { kind: e.kind, fields: withFields(view.get(e.id)?.fields ?? [], e.fields) });
        const before = this.view;
        const entered = [...view.keys()].filter((id) => !before.has(id));
        const left = [...before.keys()].filter((id) => !view.has(id));
        const full = update.baseline === null;
        if (!full)
            this.views = this.views.filter((v) => v.tick >= update.baseline);
        this.views.push({ tick: update.tick, entities: view });
        if (this.views.length > this.maxViews)
            this.views.splice(0, this.views.length - this.maxViews);
        this.ackPending = update.tick;
        this.ackNow || (this.ackNow = full);
        return { ok: true, change: { tick: update.tick, full, entered, changed: update.changed.map((e) => e.id), left } };
    }
    /** Fields of a declared kind in a binary update must read as their types (JSON ones were written so). */
    checkFields(update) {
        for (const e of [...update.entered, ...update.changed]) {
            const types = this.kinds[e.kind];
            if (types === undefined)
                continue;
            for (const f of e.fields) {
                const type = types[f.index];
                if (type === undefined)
                    throw new BincodeError(`entity ${e.id}: kind ${e.kind} has no field ${f.index}`);
                try {
                    decodeAs(type, f.value);
                }
                catch (err) {
                    throw new BincodeError(`entity ${e.id} field ${f.index}: ${err instanceof Error ? err.message : String(err)}`);
                }
            }
        }
    }
    /** The tick to acknowledge now, if one is due (send it on `replica_ack`); else null. */
    pollAck(now) {
        const due = this.ackDueAt();
        if (due === null || now < due)
            return null;
        const tick = this.ackPending;
        this.ackPending = null;
        this.ackNow = false;
        this.lastAckAt = now;
        return tick;
    }
    /** When the pending acknowledgement is due (a time `pollAck` takes it at); null if none is pending. */
    ackDueAt() {
        if (this.ackPending === null)
            return null;
        if (this.ackNow || this.lastAckAt === null)
            return -Infinity;
        return this.lastAckAt + this.ackIntervalMs;
    }
    digest(tick) {
        const view = tick === undefined ? this.view : this.viewAt(tick);
        return view === null ? null : viewDigest(view);
    }
}
function withFields(old, updates) {
    const fields = old.slice();
    for (const f of updates) {
        while (fields.length < f.index)
            fields.push(undefined);
        fields[f.index] = f.value;
    }
    return fields;
}
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
/**
 * FNV-1a 64 over each entity in increasing id order: its id (4 bytes LE), kind (2 bytes LE), then
 * each field set, in index order: the index (1 byte), the value's length (4 bytes LE), its bytes.
 */
export function viewDigest(view) {
    let hash = FNV_OFFSET;
    const write = (bytes) => {
        for (const b of bytes)
            hash = BigInt.asUintN(64, (hash ^ BigInt(b)) * FNV_PRIME);
    };
    const head = new Uint8Array(6);
    const headView = new DataView(head.buffer);
    const fieldHead = new Uint8Array(5);
    const fieldView = new DataView(fieldHead.buffer);
    for (const id of [...view.keys()].sort((a, b) => a - b)) {
        const entity = view.get(id);
        headView.setUint32(0, id, true);
        headView.setUint16(4, entity.kind, true);
        write(head);
        entity.fields.forEach((value, index) => {
            if (value === undefined)
                return;
            fieldView.setUint8(0, index);
            fieldView.setUint32(1, value.length, true);
            write(fieldHead);
            write(value);
        });
    }
    return hash;
}
const systemTimers = {
    now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h),
    setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
    clearInterval: (h) => globalThis.clearInterval(h),
};
/**
 * A client's replication: applies every `replica` push to `mirror`, reports each change
 * (`onChange`) and each refused update (`onError`, never thrown), acknowledges when the mirror
 * says (a timer takes an acknowledgement that is not due yet when it becomes due, so the last
 * update before a quiet spell is acknowledged too), and resets the mirror on a new server session
 * (`connected` with `resumed: false`, and `redirected`: the server starts it with a full
 * snapshot). A version 2 session that resumed goes on as it was.
 */
export class ReplicaSync {
    /** Starts listening to `client`'s `replica` pushes and session events. */
    constructor(client, options = {}) {
        this.client = client;
        /** Counters, for display and tests. */
        this.stats = { updates: 0, fullSnapshots: 0, refused: 0, acks: 0, accepted: 0, stale: 0, unknown: 0, failed: 0, resets: 0 };
        this.ackTimer = null;
        this.changeListeners = new Set();
        this.errorListeners = new Set();
        this.mirror = new Mirror(options);
        this.timers = options.timers ?? systemTimers;
        this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
        this.reportListenerError =
            options.onListenerError ??
                ((err) => {
                    const report = globalThis.reportError;
                    if (typeof report === "function")
                        report(err);
                    else
                        console.error("ticksock: a replica listener threw", err);
                });
        this.unsubscribe = [
            client.on(REPLICA_TOPIC, (body) => this.onUpdate(body)),
            client.onEvent("connected", ({ resumed }) => (resumed ? this.pumpAck() : this.reset())),
            client.onEvent("redirected", () => this.reset()),
        ];
    }
    /** Listen to applied updates. Returns a function that stops listening. */
    onChange(listener) {
        this.changeListeners.add(listener);
        return () => this.changeListeners.delete(listener);
    }
    /** Listen to refused updates. Returns a function that stops listening. */
    onError(listener) {
        this.errorListeners.add(listener);
        return () => this.errorListeners.delete(listener);
    }
    /** Stops listening to the client; the mirror keeps its views. */
    close() {
        for (const off of this.unsubscribe)
            off();
        this.unsubscribe.length = 0;
        this.clearAckTimer();
    }
    onUpdate(body) {
        const result = this.mirror.apply(body);
        if (!result.ok) {
            this.stats.refused++;
            for (const listener of [...this.errorListeners])
                this.guard(() => listener(result.error));
            return;
        }
        this.stats.updates++;
        if (result.change.full)
            this.stats.fullSnapshots++;
        this.pumpAck();
        for (const listener of [...this.changeListeners])
            this.guard(() => listener(result.change));
    }
    /** Runs a listener; what it throws is reported (`onListenerError`), and the others still run. */
    guard(fn) {
        try {
            fn();
        }
        catch (e) {
            this.reportListenerError(e);
        }
    }
    reset() {
        if (this.mirror.tick !== null)
            this.stats.resets++;
        this.mirror.reset();
        this.clearAckTimer();
    }
    /** Sends the acknowledgement if it is due; else has the timer come back when it is. */
    pumpAck() {
        // Offline, a call would wait in the queue and might reach another session: wait for the link.
        if (!this.client.connected)
            return;
        const now = this.timers.now();
        const tick = this.mirror.pollAck(now);
        if (tick !== null)
            this.sendAck(tick);
        const due = this.mirror.ackDueAt();
        if (due !== null && this.ackTimer === null) {
            this.ackTimer = this.timers.setTimeout(() => {
                this.ackTimer = null;
                this.pumpAck();
            }, Math.max(0, due - now));
        }
    }
    sendAck(tick) {
        this.stats.acks++;
        this.client.call(REPLICA_ACK_ROUTE, tick, { timeout: this.ackTimeoutMs }).then((outcome) => {
            // An outcome this client does not know is counted as the server not knowing the tick.
            if (outcome === "accepted" || outcome === "stale")
                this.stats[outcome]++;
            else
                this.stats.unknown++;
        }, () => this.stats.failed++);
    }
    clearAckTimer() {
        if (this.ackTimer !== null)
            this.timers.clearTimeout(this.ackTimer);
        this.ackTimer = null;
    }
}
// ---------------------------------------------------------------------------------------------
// The arena's entities (PROTOCOL.md 8.9)
/** The arena's replicated kinds and field indexes. */
export const ArenaReplica = { KIND_PLAYER: 1, FIELD_POSITION: 0, FIELD_PLAYER_ID: 1, FIELD_NAME: 2 };
const PLAYER_FIELDS = {
    [ArenaReplica.FIELD_POSITION]: { tuple: ["i32", "i32"] },
    [ArenaReplica.FIELD_PLAYER_ID]: "u32",
    [ArenaReplica.FIELD_NAME]: "string",
};
/** The field types of the arena's kinds: a player's position `(i32, i32)`, player id `u32`, name `string`. */
export const ARENA_REPLICA_KINDS = { [ArenaReplica.KIND_PLAYER]: PLAYER_FIELDS };
/** `entity` read as an arena player; null if it is another kind, or a field is missing or not of its type. */
export function arenaPlayer(entity) {
    if (entity.kind !== ArenaReplica.KIND_PLAYER)
        return null;
    try {
        const position = decodeField(entity, ArenaReplica.FIELD_POSITION, PLAYER_FIELDS[ArenaReplica.FIELD_POSITION]);
        const playerId = decodeField(entity, ArenaReplica.FIELD_PLAYER_ID, PLAYER_FIELDS[ArenaReplica.FIELD_PLAYER_ID]);
        const name = decodeField(entity, ArenaReplica.FIELD_NAME, PLAYER_FIELDS[ArenaReplica.FIELD_NAME]);
        if (position === undefined || playerId === undefined || name === undefined)
            return null;
        return { x: position[0], y: position[1], playerId, name };
    }
    catch {
        return null;
    }
}
/** Writes `tick` as the binary body of a `replica_ack` request (a u64). */
export function encodeReplicaAck(tick) {
    return new BincodeWriter().u64(tick).finish();
}

/**
 * Snapshot interpolation: where to draw things that the server places only at its updates (the
 * positions of a replicated view after each update, say), so that they glide between updates
 * instead of jumping at each, even when updates come a few ticks apart (`--state-every`).
 *
 * The drawing runs a little in the past, on the server's tick timeline: each update is a snapshot
 * of positions at its tick, and a frame draws the positions at a **render tick** between the
 * latest two snapshots around it, interpolated linearly. The render tick follows the clock:
 * - the server's tick `k` is taken to happen at `origin + k * tickMs` locally, where `origin` is
 *   the earliest of `arrivedAt - tick * tickMs` over the snapshots kept (the update that came
 *   fastest: the others were late by network or scheduling jitter);
 * - a frame at `now` draws tick `(now - origin) / tickMs - delay`, where `delay` is the gap
 *   between updates (the smallest seen, in ticks) plus the jitter seen (the spread of that
 *   lateness), at most `MAX_DELAY_GAPS` gaps: long enough that the next snapshot has nearly
 *   always arrived when the drawing needs it.
 * Past the latest snapshot (no update for a while: nothing moved) it draws the latest positions;
 * before the first, the first. Something in one snapshot and not the next is drawn where it was
 * until the render tick reaches the next; something that appears is drawn from its first
 * snapshot on. A move longer than `snapDistance` along an axis is a jump, not a glide: drawn
 * where it was until the render tick reaches the next snapshot, then there.
 *
 * Sans-I/O: the caller passes the times (`performance.now()` in a page).
 */
/** The longest delay, in gaps between updates: a burst of jitter must not leave the drawing far behind. */
export const MAX_DELAY_GAPS = 4;
/** Positions between snapshots, for drawing. */
export class SnapshotInterpolator {
    /** An interpolator with no snapshot yet; throws a `RangeError` for a `tickMs` that is not positive. */
    constructor(options) {
        this.snapshots = [];
        if (!(options.tickMs > 0))
            throw new RangeError(`tickMs must be positive, not ${options.tickMs}`);
        this.tickMs = options.tickMs;
        this.maxSnapshots = Math.max(2, options.maxSnapshots ?? 32);
        this.snapDistance = options.snapDistance ?? Infinity;
    }
    /** Snapshots kept. */
    get size() {
        return this.snapshots.length;
    }
    /** Forgets every snapshot (a new session: its ids and ticks mean other things). */
    reset() {
        this.snapshots = [];
    }
    /**
     * Adds the positions at `tick`, which arrived at `arrivedAt`. A tick not after the latest kept
     * is ignored (the view only moves forward).
     */
    push(tick, arrivedAt, positions) {
        const last = this.snapshots[this.snapshots.length - 1];
        if (last !== undefined && tick <= last.tick)
            return;
        this.snapshots.push({ tick, lateness: arrivedAt - tick * this.tickMs, positions });
        if (this.snapshots.length > this.maxSnapshots)
            this.snapshots.shift();
    }
    /** How far behind the estimated server tick frames are drawn, in ticks; null before any snapshot. */
    get delayTicks() {
        if (this.snapshots.length === 0)
            return null;
        let gap = Infinity;
        let earliest = Infinity;
        let latest = -Infinity;
        this.snapshots.forEach((s, i) => {
            if (i > 0)
                gap = Math.min(gap, s.tick - this.snapshots[i - 1].tick);
            earliest = Math.min(earliest, s.lateness);
            latest = Math.max(latest, s.lateness);
        });
        if (gap === Infinity)
            gap = 1;
        return Math.min(gap + (latest - earliest) / this.tickMs, gap * MAX_DELAY_GAPS);
    }
    /** The tick a frame at `now` draws; null before any snapshot. */
    renderTick(now) {
        const delay = this.delayTicks;
        if (delay === null)
            return null;
        const origin = Math.min(...this.snapshots.map((s) => s.lateness));
        return (now - origin) / this.tickMs - delay;
    }
    /** What a frame at `now` draws; null before any snapshot. */
    sample(now) {
        const tick = this.renderTick(now);
        if (tick === null)
            return null;
        const snaps = this.snapshots;
        let i = snaps.length - 1;
        while (i >= 0 && snaps[i].tick > tick)
            i--;
        if (i < 0 || i === snaps.length - 1) {
            const held = snaps[Math.max(i, 0)];
            return { tick, positions: new Map(held.positions) };
        }
        const a = snaps[i];
        const b = snaps[i + 1];
        const alpha = (tick - a.tick) / (b.tick - a.tick);
        const positions = new Map();
        for (const [id, p] of a.positions) {
            const q = b.positions.get(id);
            const jump = q === undefined || Math.abs(q.x - p.x) > this.snapDistance || Math.abs(q.y - p.y) > this.snapDistance;
            positions.set(id, jump ? p : { x: p.x + (q.x - p.x) * alpha, y: p.y + (q.y - p.y) * alpha });
        }
        return { tick, positions };
    }
}
