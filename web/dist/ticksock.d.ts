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
export declare const SUBPROTOCOL_V1 = "ticksock.v1.json";
/** The version 2 JSON subprotocol: sessions that survive a dropped link (PROTOCOL.md 11.8). */
export declare const SUBPROTOCOL_V2 = "ticksock.v2.json";
/** The subprotocols this client offers, most preferred first; it speaks whichever the server picks. */
export declare const SUBPROTOCOLS: readonly string[];
/** @deprecated The client offers `SUBPROTOCOLS`; this is `SUBPROTOCOL_V1`. */
export declare const SUBPROTOCOL = "ticksock.v1.json";
/** The highest wire format version this client speaks (the welcome's `version`); it speaks 1 too. */
export declare const PROTOCOL_VERSION = 2;
/** Error codes the server itself uses (PROTOCOL.md sections 6 and 11.6). Codes >= 1000 are the game's. */
export declare const ErrorCodes: {
    readonly UNKNOWN_ROUTE: 1;
    readonly BAD_BODY: 2;
    readonly INTERNAL: 3;
    readonly BAD_FRAME: 4;
    readonly RATE_LIMITED: 5;
    readonly SHUTTING_DOWN: 6;
    /** Version 2: a resent request the server had taken already, whose answer is gone. */
    readonly STALE_REQUEST: 7;
    /**
     * Only from a server in a cluster (PROTOCOL.md 12.2): the call must be made on another node;
     * the message is its URL, a ticket included. The client follows it (see "Clusters"), so a
     * call never rejects with it.
     */
    readonly REDIRECT: 8;
    /** The server's queue for slow work is full; the request was not handled (retry later). */
    readonly BUSY: 9;
    /**
     * The route needs an authenticated connection and this one is not, or an `auth` request's
     * token was refused (PROTOCOL.md 13.2, 13.3).
     */
    readonly UNAUTHENTICATED: 10;
    /** The route needs a role the connection's identity does not have (PROTOCOL.md 13.3). */
    readonly FORBIDDEN: 11;
};
/**
 * The close code of a server that refused the token a connection offered at its upgrade
 * (PROTOCOL.md 7.5, 13.1), sent right after the welcome: nothing of the connection was handled.
 * The client drops that token (see "Tokens").
 */
export declare const CLOSE_AUTH_FAILED = 4003;
/**
 * The close code of a server whose connection's identity expired and whose grace passed without
 * a new token (PROTOCOL.md 7.5, 13.4); an `auth_expired` push comes right before it. The client
 * drops the token (see "Tokens").
 */
export declare const CLOSE_AUTH_EXPIRED = 4004;
/** The route that checks a token and makes it the connection's identity (PROTOCOL.md 13.2); see `authenticate`. */
export declare const AUTH_ROUTE = "auth";
/** The push topic of an identity that expired, right before the close 4004 (PROTOCOL.md 13.4). */
export declare const AUTH_EXPIRED_TOPIC = "auth_expired";
/**
 * The server's own push topic (PROTOCOL.md 7.3): the count of events (pushes that are not
 * latest-wins states, such as chat) it dropped for this client because it read too slowly,
 * since its last such push. The client adds it to `stats.eventsDropped`; listen to it with
 * `on(DROPPED_TOPIC, (count) => ...)` to tell the player ("300 messages missed").
 */
export declare const DROPPED_TOPIC = "ticksock.dropped";
/** The longest token a server takes at the upgrade, in bytes (PROTOCOL.md 13.1). */
export declare const MAX_TOKEN_BYTES = 4096;
/**
 * True when `token` can be offered at the upgrade: 1 to `MAX_TOKEN_BYTES` of the characters
 * `A-Z a-z 0-9 - _ . ~ + / =` (PROTOCOL.md 13.1).
 */
export declare function isToken(token: unknown): token is string;
/** Redirects the client follows for one call; one more fails the call with `RedirectError` (PROTOCOL.md 12.2). */
export declare const MAX_REDIRECTS = 3;
/**
 * The close code a node in a cluster sends right after its welcome when it refuses the ticket
 * of the connection's URL (PROTOCOL.md 7.5, 12.3). The same number as `CloseCodes.PROTOCOL_ERROR`,
 * which this client sends: the two travel in opposite directions.
 */
export declare const CLOSE_BAD_TICKET = 4002;
/**
 * Failed connection attempts in a row to a node the client was redirected to, after which it
 * goes back to the URL it was made with (PROTOCOL.md 12.4: the node may be gone for good).
 */
export declare const REDIRECTED_URL_ATTEMPTS = 3;
/** Why the server refused a resume (PROTOCOL.md 11.5): `session_ended`'s `code`. */
export declare const ResumeFailReasons: {
    readonly UNKNOWN_SESSION: 1;
    readonly ENDED: 2;
    readonly GAP_LOST: 3;
    readonly RESTARTED: 4;
    readonly BAD_SECRET: 5;
    readonly SUPERSEDED: 6;
    readonly BAD_COUNT: 7;
    readonly NOT_FIRST: 8;
};
/** Close codes this client sends. */
export declare const CloseCodes: {
    readonly NORMAL: 1000;
    readonly IDLE: 4000;
    readonly CONNECT_TIMEOUT: 4001;
    readonly PROTOCOL_ERROR: 4002;
};
/** What ended a call that did not get a reply. */
export type ErrorKind = "reply" | "timeout" | "disconnected" | "queue_full" | "too_large" | "closed" | "busy" | "encode" | "redirect" | "bad_reply";
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
/**
 * The call was answered with a redirect (PROTOCOL.md 12.2) that could not be followed: too many
 * for one call, a URL that is not `ws://` or `wss://`, a node that could not be reached or gave
 * no welcome, a ticket the node refused (close 4002), or a node that broke the protocol. The
 * request was not handled on the new node (a new connection that drops after the request went
 * out fails the call with `DisconnectedError` instead). The client stays where it was.
 */
export declare class RedirectError extends TicksockError {
    /** The node's URL without its ticket ("" when the redirect's message was not a usable URL). */
    readonly url: string;
    constructor(route: string, url: string, why: string);
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
/**
 * The welcome frame, the first the server sends on every connection. On version 2 it is the
 * welcome of the current session: after a resume, `conn_id` and `epoch` are those of the
 * session that resumed (the name the game knows it by), `tick_hz` the latest link's. The
 * session's secret is never shown.
 */
export interface Welcome {
    /** The wire format version of the link: 1 or 2. */
    version: number;
    tick_hz: number;
    /** Opaque; a decimal string because it can exceed 2^53. On version 2, the session's name. */
    conn_id: string;
    /** Version 2 only: the server run the session belongs to (a decimal string). */
    epoch?: string;
}
/** The version 2 session the client holds (`TicksockClient.session`); its secret is not shown. */
export interface SessionInfo {
    /** The session's `conn_id` (a decimal string). */
    conn_id: string;
    /** The server run it belongs to (a decimal string). */
    epoch: string;
    /** Sequenced frames (replies, errors, pushes) received on the session. */
    received: number;
    /** The `seq` of the last request sent on the session (0 before the first). */
    lastSeq: number;
    /** The highest `seq` the server said it has taken (its acks and its resume answer). */
    serverReceived: number;
    /** Requests sent whose answer has not arrived yet (calls that timed out included). */
    unanswered: number;
}
/**
 * The answer to an `auth` request (PROTOCOL.md 13.2): who the connection is now. `authenticate`
 * resolves with it.
 */
export interface AuthReply {
    /** The user the connection is now bound to. */
    user: string;
    /** Its roles (none: an empty list). */
    roles: string[];
    /** How long until the identity expires, in milliseconds from the answer; null: it does not. */
    expires_in_ms: number | null;
}
/** Why a version 2 session ended while the client was running (`session_ended`'s `reason`). */
export type SessionEndReason = "resume_failed" | "version_1" | "protocol_error";
/** Lifecycle events and their payloads. */
export interface ClientEvents {
    /**
     * A connection is up and ready for calls. `reconnected` is false for the first one.
     * `resumed` is true when it carries on the earlier version 2 session (nothing was lost); false
     * when it starts a new server session (every version 1 connection): log in there.
     */
    connected: {
        welcome: Welcome;
        reconnected: boolean;
        resumed: boolean;
    };
    /**
     * A connection that had been up ended. `resuming: true` (version 2): the client keeps the
     * session and resumes it on the next connection; calls in flight wait and `failedCalls` is 0.
     * `resuming: false`: `failedCalls` calls in flight reject with `DisconnectedError` (after this
     * event's listeners).
     */
    disconnected: {
        code: number;
        reason: string;
        wasClean: boolean;
        failedCalls: number;
        resuming: boolean;
    };
    /**
     * The version 2 session ended while the client runs: the server refused its resume
     * (`resume_failed`, `code` from `ResumeFailReasons`), the server now speaks version 1 only
     * (`version_1`), or the server's answer to the resume made no sense (`protocol_error`). The
     * `failedCalls` calls without an answer reject with `DisconnectedError` after this event's
     * listeners; a `connected` with `resumed: false` follows once a new session is up.
     */
    session_ended: {
        reason: SessionEndReason;
        code: number | null;
        message: string;
        failedCalls: number;
    };
    /** The next connection attempt, number `attempt` (1-based), starts in `delayMs`. */
    reconnecting: {
        attempt: number;
        delayMs: number;
        maxAttempts: number | null;
    };
    /**
     * A call was answered with a redirect (PROTOCOL.md 12.2), made again on the node it named, and
     * answered there: that node's connection (`welcome`) is now the client's connection, and
     * reconnects go to `url` (the node's URL without its ticket). It is already logged in there
     * (the ticket carried the identity): do not log in again. No `connected` goes out for it; on
     * version 2 it carries a new session. `from` is the URL the client was using before.
     */
    redirected: {
        url: string;
        from: string;
        route: string;
        welcome: Welcome;
    };
    /**
     * The server closed a connection for its token (see "Tokens"): `code` 4003
     * (`CLOSE_AUTH_FAILED`, the token offered at the upgrade was refused; `expired` false) or 4004
     * (`CLOSE_AUTH_EXPIRED`, the identity expired; `expired` true), with the close's `reason`.
     * `token` is the token the connection's identity rested on (null if it had none), which the
     * client dropped unless the game set another since: `client.token` says what it holds now.
     * It goes out right after the `disconnected` of that connection (for a redirect's connection,
     * before its call fails with `RedirectError`); the client reconnects anonymous as usual.
     * Sign in again here.
     */
    token_refused: {
        code: number;
        reason: string;
        expired: boolean;
        token: string | null;
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
/** A reply with its stamp (`callStamped`): `tick` is the first tick whose state includes the call's effects, null when the reply has none. */
export interface Stamped<T> {
    tick: number | null;
    result: T;
}
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
    /**
     * The token to offer at the first connection and the next ones (see "Tokens"), or null for
     * none. Default: the `token` parameter of the URL, if it has one, else none.
     */
    token?: string | null;
    /**
     * Ask the server to stamp every reply with the tick whose state first includes the call's
     * effects (PROTOCOL.md 4.3): the upgrade URL gets `ticks=1`, and `callStamped` resolves with
     * the stamp, for a game that predicts locally and reconciles against the server's state. A
     * server that does not know it sends plain replies (the stamp is then null). Default false.
     */
    tickStamps?: boolean;
    /** Default timeout of a call. Default 10 000 ms. */
    callTimeoutMs?: number;
    /** How long a connection attempt may take, up to the welcome (on a version 2 resume, up to its answer). Default 10 000 ms. */
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
    /**
     * Largest request frame, in bytes; the server closes the connection (1009) above its limit.
     * On version 2 the check leaves room for `seq` and `ack` at their widest (63 bytes). Default 65 536.
     */
    maxFrameBytes?: number;
    /** Version 2: longest a received frame goes unacknowledged before an `ack` frame is sent. Default 1 000 ms (PROTOCOL.md 11.2). */
    ackDelayMs?: number;
    /** Version 2: send an `ack` frame at once when this many frames are unacknowledged. Default 64. */
    ackAfterFrames?: number;
    /**
     * After a redirect moved the client to another node, how long calls still in flight on the old
     * connection may wait for their answers there before it is closed (and they reject with
     * `DisconnectedError`). Default 5 000 ms.
     */
    redirectDrainMs?: number;
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
    /** Answers whose call had already ended (after a timeout, or a second answer). */
    lateAnswers: number;
    pushes: number;
    /** Pushes on topics without a listener. */
    unheardPushes: number;
    /** Events the server dropped because this client read too slowly (`DROPPED_TOPIC`, PROTOCOL.md 7.3). */
    eventsDropped: number;
    /** Connections whose welcome arrived. */
    connections: number;
    heartbeatProbes: number;
    /** Version 2: `ack` frames sent. */
    acksSent: number;
    /** Version 2: sessions resumed. */
    resumes: number;
    /** Version 2: requests sent again after a resume. */
    resentRequests: number;
    /** Version 2: sessions that ended while the client ran (`session_ended` events). */
    sessionsEnded: number;
    /** Redirects followed to their end: the client moved to another node (`redirected` events). */
    redirects: number;
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
/** An `auth` reply's body as an `AuthReply` (PROTOCOL.md 13.2), or a string saying what is wrong with it. */
export declare function decodeAuthReply(body: unknown): AuthReply | string;
/** The delay before reconnect attempt `attempt` (1-based), without jitter. */
export declare function backoffCeiling(attempt: number, initialMs: number, maxMs: number): number;
/** UTF-8 length of a string, without allocating. */
export declare function utf8Length(s: string): number;
/**
 * A ticksock client over one WebSocket. `R` maps routes to their request and reply types, `P`
 * push topics to their bodies (see `ArenaRoutes` and `ArenaPushes` for the example game).
 */
export declare class TicksockClient<R extends RouteMap = AnyRoutes, P extends PushMap = AnyPushes> {
    /** The server URL the client was made with, e.g. `ws://127.0.0.1:7777/` (after a redirect, see `currentUrl`). */
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
    /** The version the current socket speaks, from its subprotocol (1 until it opens). */
    private linkVersion;
    /** The welcome of the current connection once it is ready (`connected` went out), else null. */
    private welcomeFrame;
    /** The current connection's own welcome, from its arrival: on version 2, its new session. */
    private linkWelcome;
    /** A version 2 Resume went out on the current connection and its answer has not come. */
    private awaitingResume;
    /** Frames the client sent on the current connection (to know whether a new session's first frame went out). */
    private linkFramesSent;
    /** The version 2 session held across links, or null (version 1, or none yet). */
    private sessionState;
    /** The pending `ack` frame's timer (version 2), or null. */
    private ackTimer;
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
    /** Where connections go: `url`, or the node a redirect moved the client to (without its ticket). */
    private connectUrl;
    /** The redirect being followed, if any (one at a time). */
    private hop;
    /** Old connections that a redirect left, waiting for the answers to their calls in flight. */
    private readonly drains;
    /** The token offered at the next connection, or null (see "Tokens"). */
    private heldToken;
    /**
     * The token the current connection's identity rests on: the one offered at its upgrade, or the
     * one an `auth` on it accepted since; null for none. A close 4003 or 4004 refuses this one.
     */
    private linkToken;
    /** Every call waiting for its outcome, queued or sent, by id (in call order). */
    private readonly pending;
    /** The offline queue, in call order. */
    private queue;
    private queuedBytes;
    private readonly pushListeners;
    private readonly eventListeners;
    constructor(url: string, options?: ClientOptions);
    /**
     * Where the client connects now: `url`, or the node a redirect moved it to (its URL without the
     * ticket); without a `token` parameter either way (the held token is added at each connect).
     */
    get currentUrl(): string;
    /**
     * The token offered at the next connection (see "Tokens"), or null for none: set by
     * `options.token`, `setToken` and an accepted `authenticate`; dropped on a close 4003 or 4004.
     */
    get token(): string | null;
    /** The link state. */
    get state(): LinkState;
    /** True when the welcome of the current connection arrived: calls go out at once. */
    get connected(): boolean;
    /**
     * The welcome of the connection that is ready, or null while none is. On version 2 it names
     * the session: after a resume, the `conn_id` and `epoch` of the session that resumed.
     */
    get welcome(): Welcome | null;
    /** Calls waiting for their outcome (queued or sent). */
    get pendingCount(): number;
    /** Calls in the offline queue. */
    get queuedCount(): number;
    /** Bytes in the offline queue. */
    get queuedByteCount(): number;
    /** Failed connection attempts in a row so far. */
    get failedAttempts(): number;
    /** The wire format version of the connection that is ready (1 or 2), or null when none is. */
    get protocolVersion(): 1 | 2 | null;
    /** The version 2 session the client holds (while connected, and while it waits to resume it), or null. */
    get session(): SessionInfo | null;
    /**
     * Resolves with the welcome once connected (at once if it is); rejects if the client closes
     * first. With `autoConnect: false` it waits for `connect()`.
     */
    ready(): Promise<Welcome>;
    /**
     * Offer `token` at every connection from the next one on (the reconnects and resumes
     * included), or no token with `null`. The current connection keeps its identity: to change it
     * now, use `authenticate`. Throws a `TypeError` for a string that is not a token (`isToken`).
     */
    setToken(token: string | null): void;
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
    authenticate(token: string, options?: CallOptions): Promise<AuthReply>;
    /**
     * A connection whose identity rested on `refused` was closed for it (4003, 4004): the client
     * drops that token, unless the game has set another since.
     */
    private dropRefusedToken;
    /** Call `route` with `data`; the Promise settles with the call's one outcome. */
    call<K extends keyof R & string>(route: K, data?: R[K]["req"], options?: CallOptions): Promise<R[K]["res"]>;
    /** Call `route` with `data`; `cb(err, result)` is called once, with the call's one outcome. */
    call<K extends keyof R & string>(route: K, data: R[K]["req"], cb: Callback<R[K]["res"]>): void;
    call<K extends keyof R & string>(route: K, data: R[K]["req"], options: CallOptions, cb: Callback<R[K]["res"]>): void;
    /**
     * Call `route` with `data`, as `call`; the Promise resolves with the reply and its stamp: the
     * first tick whose state includes the call's effects (PROTOCOL.md 4.3), or null when the reply
     * has none (without `tickStamps`, or from a server that does not stamp). To reconcile a
     * prediction: a state of tick `S` includes every call stamped `<= S`.
     */
    callStamped<K extends keyof R & string>(route: K, data?: R[K]["req"], options?: CallOptions): Promise<Stamped<R[K]["res"]>>;
    /** The URL of an upgrade to `url`: offering `token`, and asking for stamps if `tickStamps`. */
    private upgradeUrl;
    private start;
    /** Ends call `id` with its one outcome; false if it had already ended. */
    private finish;
    /**
     * An id is in use while its call waits for its outcome and, on version 2, while its request
     * waits for its answer (a call that timed out included: its request may be resent, and its
     * late answer must not reach another call).
     */
    private idInUse;
    /**
     * Sends the call on the current connection. On version 2 it takes the session's next `seq`
     * and is kept until its answer arrives, whatever happens to the call.
     */
    private transmit;
    /** A version 2 request: it carries the received count, which acknowledges every frame so far. */
    private sendRequestV2;
    /** A version 2 `ack` frame with the received count. */
    private sendAck;
    /** The received count went out: nothing is left to acknowledge. */
    private acknowledged;
    /** Sends one frame; false if the socket threw (it is not open: its close event comes next). */
    private sendFrame;
    /** Sends the offline queue in order, while the connection stays ready. */
    private flushQueue;
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
    /** The handlers of the current connection `ws` (its `onopen` is set where it opens). */
    private attach;
    private onFrame;
    private onAnswer;
    private onPush;
    private onWelcome;
    /** The server's answer to a Resume that succeeded: resend what it had not taken, then carry on. */
    private onResumed;
    /** The server's answer to a Resume that failed: the session ended, the link carries a new one. */
    private onResumeFailed;
    /** The server's count of the requests it has taken (11.2). */
    private onServerAck;
    /**
     * One more sequenced frame received: acknowledged at once after `ackAfterFrames` of them,
     * else within `ackDelayMs` (unless a request carries the count first).
     */
    private countSequenced;
    /** An `ack` frame within `ackDelayMs`, unless one is scheduled already or a request carries the count first. */
    private scheduleAck;
    /**
     * The connection is ready for calls: its welcome arrived (version 1), or its version 2
     * session is settled (new, resumed, or new after a failed resume).
     */
    private becomeReady;
    /**
     * The version 2 session is over while the client runs: `session_ended` goes out, then every
     * call sent and not answered rejects with `DisconnectedError` (its fate is unknown).
     */
    private endSession;
    /** The calls sent on the current connection (or session) and still waiting for their outcome, in call order. */
    private sentCalls;
    /** Each of `sent` that still waits rejects with `DisconnectedError`. */
    private rejectSent;
    /**
     * Call `entry` was answered with a redirect to the node of URL `message`: it is made again on
     * a new connection there (12.2). The current connection stays the client's until that answer.
     */
    private followRedirect;
    /** The redirect is over: its connection's handlers and timer go (it is closed with `code` unless null). */
    private endHop;
    /** The redirect cannot be followed: its connection closes and the call fails with `RedirectError`. */
    private hopFailed;
    private onHopClose;
    /** A frame on a redirect's new connection: its welcome, then the answer (pushes before it are heard). */
    private onHopFrame;
    /** The new node's welcome: the request goes out there at once, as its first (12.2). */
    private onHopWelcome;
    /**
     * The new node answered: its connection becomes the client's (12.2 step 3). Calls still in
     * flight on the old one wait there for `redirectDrainMs`; then it closes with 1000.
     */
    private moveTo;
    /** Old connection `ws` waits for the answers to `calls` (for `redirectDrainMs`), then closes with 1000. */
    private drain;
    /**
     * A frame on an old connection: the answer of a call that waits there ends it (it may be a
     * redirect of its own). Pushes are dropped: the client's connection is the new one.
     */
    private onDrainFrame;
    /** The old connection is done (closed with 1000 and `reason` unless null: it closed itself); its calls left reject with `DisconnectedError`. */
    private endDrain;
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
    /** `register`: an account has that name already. */
    readonly NAME_TAKEN: 1007;
    /** `signin`, `guest`: wrong name or password, or an unknown device token. */
    readonly BAD_CREDENTIALS: 1008;
    /** Accounts: the server's database failed or stayed busy (retry later), or it keeps no accounts. */
    readonly STORE: 1009;
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
/** The reply of `register` and `signin`: a session token, for `authenticate` and `setToken` (PROTOCOL.md 8.8). */
export interface AccountSession {
    token: string;
}
/** The reply of `guest`: a session token, and the device token that brings this guest back (keep it). */
export interface GuestSession {
    token: string;
    device_token: string;
}
/** The stat `leaderboard` ranks by. */
export type LeaderboardBy = "distance" | "messages" | "games";
/** One account of a `leaderboard` reply, highest `value` first. */
export interface LeaderboardEntry {
    name: string;
    value: number;
}
/** An account's totals, as `flush_stats` answers them once saved. */
export interface PlayerStats {
    /** Arena units moved. */
    distance: number;
    /** `chat` lines and `whisper`s sent. */
    messages: number;
    /** Arenas entered by `join`. */
    games: number;
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
    register: {
        req: {
            name: string;
            password: string;
        };
        res: AccountSession;
    };
    signin: {
        req: {
            name: string;
            password: string;
        };
        res: AccountSession;
    };
    guest: {
        req: {
            device_token: string | null;
        };
        res: GuestSession;
    };
    leaderboard: {
        req: {
            by: LeaderboardBy;
            limit: number;
        };
        res: LeaderboardEntry[];
    };
    flush_stats: {
        req: null | undefined;
        res: PlayerStats;
    };
    auth: {
        req: string;
        res: AuthReply;
    };
    /** With `--replication` (PROTOCOL.md 8.9, 14.4): acknowledges an update's tick (`ReplicaSync` does it). */
    replica_ack: {
        req: number;
        res: "accepted" | "stale" | "unknown";
    };
    /**
     * With `--replication --replica-digests`: the tick and digest of the view last sent to this
     * connection, or null. The digest is a u64, which a JSON number holds only to 53 bits: compare
     * it with `Number(mirror.digest(tick))`, or read its digits from the frame's text.
     */
    replica_digest: {
        req: null | undefined;
        res: [number, number] | null;
    };
}
/** The arena's push topics and bodies. */
export interface ArenaPushes {
    [topic: string]: unknown;
    state: State;
    chat: ChatLine;
    presence: Presence;
    whisper: ChatLine;
    /** The account's identity expired (PROTOCOL.md 13.4): a close 4004 follows. */
    auth_expired: null;
    /** With `--replication`, instead of `state`: an update of the player's view (PROTOCOL.md 14.3), for a `ReplicaSync`. */
    replica: unknown;
}

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
export declare class BincodeError extends Error {
    name: string;
}
/** Reads bincode values from the start of `bytes`, in turn. */
export declare class BincodeReader {
    readonly bytes: Uint8Array;
    private pos;
    private readonly data;
    /** A reader of `bytes`, from their start. */
    constructor(bytes: Uint8Array);
    /** Bytes read so far. */
    get offset(): number;
    /** Bytes not read yet. */
    get remaining(): number;
    /** Throws unless every byte was read: a body is one value, with nothing after it. */
    end(what?: string): void;
    private need;
    /** A u8: one raw byte. */
    u8(): number;
    /** An i8: one raw byte, two's complement. */
    i8(): number;
    /** A bool: `00` or `01`, any other byte an error. */
    bool(): boolean;
    /** A varint whose first byte is at most `maxFirst` (the field's width, 3.1). */
    private varint;
    /** A u16: a varint of at most `fb` and 2 bytes. */
    u16(): number;
    /** A u32: a varint of at most `fc` and 4 bytes. */
    u32(): number;
    /** A u64: a number below 2^53, else a bigint. */
    u64(): number | bigint;
    /** A u64 that must be a number (a tick, a count): throws above 2^53. */
    u64Number(what?: string): number;
    /** An i16: a zigzag varint of a u16's width. */
    i16(): number;
    /** An i32: a zigzag varint of a u32's width. */
    i32(): number;
    /** An i64: a number within ±2^53, else a bigint. */
    i64(): number | bigint;
    /** An f32: 4 bytes LE. */
    f32(): number;
    /** An f64: 8 bytes LE. */
    f64(): number;
    /**
     * A length (a u64), of items at least `itemBytes` bytes each: more than the bytes left could
     * hold is an error before anything is reserved for them.
     */
    length(what: string, itemBytes?: number): number;
    /** A byte sequence: its length, then its bytes (a view into the input, not a copy). */
    byteSeq(what?: string): Uint8Array;
    /** A string: its length in bytes, then that much UTF-8 (invalid UTF-8 is an error). */
    string(): string;
}
/** Writes bincode values, in turn; `finish` gives the bytes. */
export declare class BincodeWriter {
    private buf;
    private len;
    private room;
    private view;
    /** The bytes written (a copy). */
    finish(): Uint8Array;
    /** `bytes` as they are (no length). */
    raw(bytes: Uint8Array): this;
    /** A u8: one raw byte. */
    u8(v: number): this;
    /** An i8: one raw byte, two's complement. */
    i8(v: number): this;
    /** A bool: `00` or `01`. */
    bool(v: boolean): this;
    /** A varint in its shortest form (3.1). */
    private varint;
    /** A u16 varint. */
    u16(v: number): this;
    /** A u32 varint. */
    u32(v: number): this;
    /** A u64 varint (a number must be below 2^53: a larger one may have been rounded). */
    u64(v: number | bigint): this;
    /** An i16 zigzag varint. */
    i16(v: number): this;
    /** An i32 zigzag varint. */
    i32(v: number): this;
    /** An i64 zigzag varint (a number must be within ±2^53). */
    i64(v: number | bigint): this;
    /** An f32: 4 bytes LE (the number rounded to single precision). */
    f32(v: number): this;
    /** An f64: 8 bytes LE. */
    f64(v: number): this;
    /** A length (of a string, byte sequence or list). */
    length(n: number): this;
    /** A byte sequence: its length, then its bytes. */
    byteSeq(bytes: Uint8Array): this;
    /** A string: its UTF-8 length, then its UTF-8. */
    string(s: string): this;
}
/**
 * A Rust type, for writing its JSON value (serde_json's form: a tuple or a list is an array, a
 * struct an object with its field names, `()` and `None` are `null`) as bincode, and reading
 * bincode back to that JSON value. Enums are not described: a game that replicates one declares
 * its bincode form (a `u32` variant index, then its fields) as a tuple, and sends that.
 */
export type BincodeType = "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "bool" | "f32" | "f64" | "string" | "unit" | {
    readonly tuple: readonly BincodeType[];
} | {
    readonly option: BincodeType;
} | {
    readonly list: BincodeType;
} | {
    readonly struct: readonly (readonly [name: string, type: BincodeType])[];
};
/** `value` (its JSON form) written as bincode of `type`; throws a `BincodeError` if it is not one. */
export declare function encodeAs(type: BincodeType, value: unknown): Uint8Array;
/** `bytes`, the bincode of one `type` (every byte of it), read back as its JSON form; throws a `BincodeError`. */
export declare function decodeAs(type: BincodeType, bytes: Uint8Array): unknown;

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
export declare const REPLICA_TOPIC = "replica";
/** The route that acknowledges an update's tick (14.4): request the tick, reply an `AckOutcome`. */
export declare const REPLICA_ACK_ROUTE = "replica_ack";
/** Views a `Mirror` keeps for the server to use as baselines, by default: more than the server holds (32). */
export declare const MAX_HELD_VIEWS = 64;
/** The least time between two acknowledgements, by default (14.4). */
export declare const ACK_INTERVAL_MS = 100;
/** One field's value in an update: its index (0 to 255) and its binary body encoding. */
export interface FieldUpdate {
    index: number;
    value: Uint8Array;
}
/** One entity in an update: its id, its kind, and fields in increasing index order. */
export interface EntityUpdate {
    id: number;
    kind: number;
    fields: FieldUpdate[];
}
/** An update (the body of a `replica` push, 14.2), with its fields as bytes. */
export interface ReplicaUpdate {
    /** The tick it brings the view to. */
    tick: number;
    /** The tick it is a delta from; null: a full snapshot. */
    baseline: number | null;
    entered: EntityUpdate[];
    changed: EntityUpdate[];
    left: number[];
}
/** The answer to `replica_ack` (14.4): the tick is the baseline now; it was at or before it; no such update is held. */
export type AckOutcome = "accepted" | "stale" | "unknown";
/** The field types of one kind of entity, by field index. */
export type KindFields = {
    readonly [index: number]: BincodeType | undefined;
};
/** The field types of a game's kinds of entity, by kind (what `Mirror` needs to read JSON updates). */
export type ReplicaKinds = {
    readonly [kind: number]: KindFields | undefined;
};
/** One entity of a view: its kind and its fields' binary values by index (`undefined`: not set). */
export interface MirrorEntity {
    readonly kind: number;
    readonly fields: readonly (Uint8Array | undefined)[];
}
/** A view: the entities in sight, by id. */
export type ReplicaView = ReadonlyMap<number, MirrorEntity>;
/** What an applied update changed, relative to the view before it (not to its baseline). */
export interface ReplicaChange {
    /** The update's tick. */
    tick: number;
    /** Whether it was a full snapshot. */
    full: boolean;
    /** Ids of entities that are in the view now and were not. */
    entered: number[];
    /** Ids of entities whose fields the update set. */
    changed: number[];
    /** Ids of entities that were in the view and are not now. */
    left: number[];
}
/** Why an update was not applied. */
export type ReplicaErrorKind = "decode" | "unknown_baseline" | "out_of_order";
/** An update that was not applied; the mirror is as it was. */
export declare class ReplicaError extends Error {
    /** `decode`: not an update (or a field not of its type); `unknown_baseline`: its baseline view is not held; `out_of_order`: not newer than the latest. */
    readonly kind: ReplicaErrorKind;
    /** The update's tick, when it could be read. */
    readonly tick: number | null;
    /** Its baseline, for `unknown_baseline`. */
    readonly baseline: number | null;
    name: string;
    constructor(
    /** `decode`: not an update (or a field not of its type); `unknown_baseline`: its baseline view is not held; `out_of_order`: not newer than the latest. */
    kind: ReplicaErrorKind, message: string, 
    /** The update's tick, when it could be read. */
    tick?: number | null, 
    /** Its baseline, for `unknown_baseline`. */
    baseline?: number | null);
}
/** The outcome of `Mirror.apply`. */
export type ApplyResult = {
    ok: true;
    change: ReplicaChange;
} | {
    ok: false;
    error: ReplicaError;
};
/** A `Mirror`'s settings. */
export interface MirrorOptions {
    /** Views kept for the server to use as baselines. Default `MAX_HELD_VIEWS` (64). */
    maxViews?: number;
    /** The least time between two acknowledgements, in ms. Default `ACK_INTERVAL_MS` (100). */
    ackIntervalMs?: number;
    /** The field types of each kind of entity: needed for JSON updates (see "Field values are bytes"). Default none. */
    kinds?: ReplicaKinds;
}
/** Reads the binary form of an update (14.2); throws a `BincodeError`. */
export declare function decodeReplicaUpdate(bytes: Uint8Array): ReplicaUpdate;
/**
 * Reads the JSON form of an update (14.3), writing each field's value as bincode by the type
 * `kinds` declares for it; throws a `BincodeError` (not an update, an undeclared kind or field, a
 * value not of its type).
 */
export declare function replicaUpdateFromJson(body: unknown, kinds: ReplicaKinds): ReplicaUpdate;
/** Reads the binary form of an `AckOutcome` (a unit enum: its variant index, a u32); throws a `BincodeError`. */
export declare function decodeAckOutcome(bytes: Uint8Array): AckOutcome;
/** Field `index` of `entity` read as `type` (its JSON form); undefined if not set; throws a `BincodeError` if it is not one. */
export declare function decodeField(entity: MirrorEntity, index: number, type: BincodeType): unknown;
/** The reconstructed view of one client, and the views it may be sent deltas from. Sans-I/O: `now` is passed in. */
export declare class Mirror {
    /** Views kept, at most. */
    readonly maxViews: number;
    /** The least time between two acknowledgements, in ms. */
    readonly ackIntervalMs: number;
    private readonly kinds;
    /** Oldest first; the last is the current view. */
    private views;
    /** The tick to acknowledge next, once due. */
    private ackPending;
    /** Whether that tick's update was a full snapshot (acknowledged at once). */
    private ackNow;
    private lastAckAt;
    /** An empty mirror. */
    constructor(options?: MirrorOptions);
    /** The current view (empty before the first update). */
    get view(): ReplicaView;
    /** The tick of the current view; null before the first update. */
    get tick(): number | null;
    /** The ticks of the views held, oldest first. */
    get heldTicks(): number[];
    /** The held view of `tick`, or null. */
    viewAt(tick: number): ReplicaView | null;
    /** Forgets every view and any acknowledgement due: a new server session starts with a full snapshot. */
    reset(): void;
    /**
     * Applies the body of a `replica` push: its binary form (a `Uint8Array`) or its JSON form (the
     * parsed object). Never throws; an update it refuses changes nothing.
     */
    apply(body: unknown): ApplyResult;
    /** Fields of a declared kind in a binary update must read as their types (JSON ones were written so). */
    private checkFields;
    /** The tick to acknowledge now, if one is due (send it on `replica_ack`); else null. */
    pollAck(now: number): number | null;
    /** When the pending acknowledgement is due (a time `pollAck` takes it at); null if none is pending. */
    ackDueAt(): number | null;
    /**
     * The digest of the current view (14.5), or of the held view of `tick` (null if not held): to
     * compare with the server's. A u64.
     */
    digest(): bigint;
    digest(tick: number): bigint | null;
}
/**
 * FNV-1a 64 over each entity in increasing id order: its id (4 bytes LE), kind (2 bytes LE), then
 * each field set, in index order: the index (1 byte), the value's length (4 bytes LE), its bytes.
 */
export declare function viewDigest(view: ReplicaView): bigint;
/** A `ReplicaSync`'s settings: the mirror's, and how it acknowledges. */
export interface ReplicaSyncOptions extends MirrorOptions {
    /** Clock and timers (the acknowledgement's timer). Default: `performance.now` and the global timers. */
    timers?: Timers;
    /** The timeout of a `replica_ack` call. Default 5 000 ms. */
    ackTimeoutMs?: number;
    /** Receives what an `onChange` or `onError` listener throws. Default: `reportError`, else `console.error`. */
    onListenerError?: (err: unknown) => void;
}
/** A `ReplicaSync`'s counters. */
export interface ReplicaSyncStats {
    /** Updates applied, full snapshots included. */
    updates: number;
    fullSnapshots: number;
    /** Updates refused (`onError`). */
    refused: number;
    /** `replica_ack` calls sent, and their outcomes (`failed`: no answer, the link dropped say). */
    acks: number;
    accepted: number;
    stale: number;
    unknown: number;
    failed: number;
    /** Times the mirror was started afresh while it held a view (a new server session). */
    resets: number;
}
/**
 * A client's replication: applies every `replica` push to `mirror`, reports each change
 * (`onChange`) and each refused update (`onError`, never thrown), acknowledges when the mirror
 * says (a timer takes an acknowledgement that is not due yet when it becomes due, so the last
 * update before a quiet spell is acknowledged too), and resets the mirror on a new server session
 * (`connected` with `resumed: false`, and `redirected`: the server starts it with a full
 * snapshot). A version 2 session that resumed goes on as it was.
 */
export declare class ReplicaSync {
    private readonly client;
    /** The mirror it feeds: its `view` is the reconstructed state. */
    readonly mirror: Mirror;
    /** Counters, for display and tests. */
    readonly stats: ReplicaSyncStats;
    private readonly timers;
    private readonly ackTimeoutMs;
    private readonly reportListenerError;
    private ackTimer;
    private readonly changeListeners;
    private readonly errorListeners;
    private readonly unsubscribe;
    /** Starts listening to `client`'s `replica` pushes and session events. */
    constructor(client: TicksockClient<any, any>, options?: ReplicaSyncOptions);
    /** Listen to applied updates. Returns a function that stops listening. */
    onChange(listener: (change: ReplicaChange) => void): () => void;
    /** Listen to refused updates. Returns a function that stops listening. */
    onError(listener: (error: ReplicaError) => void): () => void;
    /** Stops listening to the client; the mirror keeps its views. */
    close(): void;
    private onUpdate;
    /** Runs a listener; what it throws is reported (`onListenerError`), and the others still run. */
    private guard;
    private reset;
    /** Sends the acknowledgement if it is due; else has the timer come back when it is. */
    private pumpAck;
    private sendAck;
    private clearAckTimer;
}
/** The arena's replicated kinds and field indexes. */
export declare const ArenaReplica: {
    readonly KIND_PLAYER: 1;
    readonly FIELD_POSITION: 0;
    readonly FIELD_PLAYER_ID: 1;
    readonly FIELD_NAME: 2;
};
/** The field types of the arena's kinds: a player's position `(i32, i32)`, player id `u32`, name `string`. */
export declare const ARENA_REPLICA_KINDS: ReplicaKinds;
/** An arena player as the mirror holds it. */
export interface ArenaPlayer {
    x: number;
    y: number;
    /** As in `PlayerState.id` and `ChatLine.player_id`. */
    playerId: number;
    name: string;
}
/** `entity` read as an arena player; null if it is another kind, or a field is missing or not of its type. */
export declare function arenaPlayer(entity: MirrorEntity): ArenaPlayer | null;
/** Writes `tick` as the binary body of a `replica_ack` request (a u64). */
export declare function encodeReplicaAck(tick: number): Uint8Array;

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
/** A position. */
export interface Point {
    x: number;
    y: number;
}
/** A `SnapshotInterpolator`'s settings. */
export interface InterpolatorOptions {
    /** Milliseconds per server tick (1000 / the welcome's `tick_hz`). */
    tickMs: number;
    /** Snapshots kept; the clock's estimate looks at them all. Default 32. */
    maxSnapshots?: number;
    /** A move longer than this along either axis between two snapshots is drawn as a jump. Default `Infinity`. */
    snapDistance?: number;
}
/** What a frame draws: the render tick (fractional) and the positions at it, by id. */
export interface InterpolatedFrame {
    tick: number;
    positions: Map<number, Point>;
}
/** The longest delay, in gaps between updates: a burst of jitter must not leave the drawing far behind. */
export declare const MAX_DELAY_GAPS = 4;
/** Positions between snapshots, for drawing. */
export declare class SnapshotInterpolator {
    private readonly tickMs;
    private readonly maxSnapshots;
    private readonly snapDistance;
    private snapshots;
    /** An interpolator with no snapshot yet; throws a `RangeError` for a `tickMs` that is not positive. */
    constructor(options: InterpolatorOptions);
    /** Snapshots kept. */
    get size(): number;
    /** Forgets every snapshot (a new session: its ids and ticks mean other things). */
    reset(): void;
    /**
     * Adds the positions at `tick`, which arrived at `arrivedAt`. A tick not after the latest kept
     * is ignored (the view only moves forward).
     */
    push(tick: number, arrivedAt: number, positions: ReadonlyMap<number, Point>): void;
    /** How far behind the estimated server tick frames are drawn, in ticks; null before any snapshot. */
    get delayTicks(): number | null;
    /** The tick a frame at `now` draws; null before any snapshot. */
    renderTick(now: number): number | null;
    /** What a frame at `now` draws; null before any snapshot. */
    sample(now: number): InterpolatedFrame | null;
}
