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
export const SUBPROTOCOLS: readonly string[] = [SUBPROTOCOL_V2, SUBPROTOCOL_V1];
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
} as const;

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
export function isToken(token: unknown): token is string {
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
export type ErrorKind = "reply" | "timeout" | "disconnected" | "queue_full" | "too_large" | "closed" | "busy" | "encode" | "redirect" | "bad_reply";

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

/**
 * The call was answered with a redirect (PROTOCOL.md 12.2) that could not be followed: too many
 * for one call, a URL that is not `ws://` or `wss://`, a node that could not be reached or gave
 * no welcome, a ticket the node refused (close 4002), or a node that broke the protocol. The
 * request was not handled on the new node (a new connection that drops after the request went
 * out fails the call with `DisconnectedError` instead). The client stays where it was.
 */
export class RedirectError extends TicksockError {
  /** The node's URL without its ticket ("" when the redirect's message was not a usable URL). */
  readonly url: string;
  constructor(route: string, url: string, why: string) {
    super("redirect", route, `${route}: redirect${url ? ` to ${url}` : ""} not followed: ${why}`);
    this.name = "RedirectError";
    this.url = url;
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
  connected: { welcome: Welcome; reconnected: boolean; resumed: boolean };
  /**
   * A connection that had been up ended. `resuming: true` (version 2): the client keeps the
   * session and resumes it on the next connection; calls in flight wait and `failedCalls` is 0.
   * `resuming: false`: `failedCalls` calls in flight reject with `DisconnectedError` (after this
   * event's listeners).
   */
  disconnected: { code: number; reason: string; wasClean: boolean; failedCalls: number; resuming: boolean };
  /**
   * The version 2 session ended while the client runs: the server refused its resume
   * (`resume_failed`, `code` from `ResumeFailReasons`), the server now speaks version 1 only
   * (`version_1`), or the server's answer to the resume made no sense (`protocol_error`). The
   * `failedCalls` calls without an answer reject with `DisconnectedError` after this event's
   * listeners; a `connected` with `resumed: false` follows once a new session is up.
   */
  session_ended: { reason: SessionEndReason; code: number | null; message: string; failedCalls: number };
  /** The next connection attempt, number `attempt` (1-based), starts in `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; maxAttempts: number | null };
  /**
   * A call was answered with a redirect (PROTOCOL.md 12.2), made again on the node it named, and
   * answered there: that node's connection (`welcome`) is now the client's connection, and
   * reconnects go to `url` (the node's URL without its ticket). It is already logged in there
   * (the ticket carried the identity): do not log in again. No `connected` goes out for it; on
   * version 2 it carries a new session. `from` is the URL the client was using before.
   */
  redirected: { url: string; from: string; route: string; welcome: Welcome };
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
  token_refused: { code: number; reason: string; expired: boolean; token: string | null };
  /** The client stopped for good: `close()` was called, it gave up reconnecting, or the server speaks another version. */
  closed: { reason: "closed" | "gave_up" | "version"; error: TicksockError | null };
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
  /** The request frame's fields without the braces and the version 2 header: `"id":..,"route":..[,"body":..]`. */
  core: string;
  /** UTF-8 bytes of the version 1 frame (`{` core `}`): what the offline queue counts. */
  bytes: number;
  /** true while waiting in the offline queue, false once sent. */
  queued: boolean;
  /** The outcome; `tick` is a reply's stamp (PROTOCOL.md 4.3), null when it has none. */
  cb: (err: TicksockError | null, result?: unknown, tick?: number | null) => void;
  timer: unknown;
  startedAt: number;
  /** When it was sent (for the round trip), 0 before. */
  sentAt: number;
  internal: boolean;
  /** Redirects followed for it so far (at most `MAX_REDIRECTS`). */
  redirects: number;
  /**
   * Sent, and waiting on a connection that is not the current one: a redirect's new connection,
   * or an old connection draining after a redirect. Such a call is not failed with the current
   * connection, but with its own.
   */
  away: boolean;
}

/** A redirect being followed (PROTOCOL.md 12.2): the call made again on a new connection to the node it names. */
interface Hop {
  entry: Entry;
  ws: WebSocketLike;
  /** The node's URL without its ticket: where reconnects go once the client has moved there. */
  url: string;
  /** The new connection's welcome, once it came. */
  welcome: Welcome | null;
  version: 1 | 2;
  /** Version 2: the new connection's session, from its welcome (the secret stays in it). */
  session: Session | null;
  secret: string;
  /** The request went out on the new connection. */
  sent: boolean;
  /** Until the welcome: `connectTimeoutMs`. */
  timer: unknown;
  /** The token offered on the new connection, next to the ticket (null: none). */
  token: string | null;
}

/** An old connection after a redirect moved the client: the calls in flight there get their answers there, for a bounded time. */
interface Drain {
  ws: WebSocketLike;
  /** The calls that wait on it, by id. */
  calls: Map<number, Entry>;
  timer: unknown;
}

/** A request sent on a version 2 session whose answer has not arrived: kept to be resent after a resume. */
interface SentRequest {
  seq: number;
  id: number;
  core: string;
}

/** The version 2 session the client holds, across links. */
interface Session {
  /** The Welcome that started it (`tick_hz` updated by each resume). */
  welcome: Welcome;
  connId: string;
  epoch: string;
  /** 32 lowercase hex digits; replaced by every Resumed. */
  secret: string;
  /** Sequenced frames received (the client's received count). */
  received: number;
  /** The received count last sent to the server (in a request, an ack or a resume). */
  acked: number;
  /** The `seq` of the last request sent. */
  lastSeq: number;
  /** The highest `seq` the server said it has taken. */
  serverReceived: number;
  /** Requests sent and not answered, by callback id, in `seq` order (Map keeps insertion order). */
  unanswered: Map<number, SentRequest>;
}

type Resolved = Required<Omit<ClientOptions, "WebSocket" | "timers" | "random" | "firstId" | "onListenerError" | "token">>;

const DEFAULTS: Resolved = {
  autoConnect: true,
  tickStamps: false,
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
  ackDelayMs: 1_000,
  ackAfterFrames: 64,
  redirectDrainMs: 5_000,
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
function u64Text(v: unknown): string | null {
  if (typeof v === "string" && /^[0-9]{1,20}$/.test(v)) return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return String(v);
  return null;
}

/** A count of a version 2 frame (`received`, `reason`): a non-negative safe integer, else null. */
function frameCount(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

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

/** A version 2 session just started by `welcome`, its counts at 0. */
function newSession(welcome: Welcome, secret: string): Session {
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
function requestFrameBytes(v1Bytes: number, version: 1 | 2): number {
  return version === 2 ? v1Bytes + V2_REQUEST_OVERHEAD : v1Bytes;
}

/**
 * The URL of a redirect's message (PROTOCOL.md 12.2), taken as it is, and the same without its
 * `ticket` parameter (the ticket is good once: reconnects go to the node without it). A string
 * says why the message is not a usable URL.
 */
function redirectTarget(message: unknown): { url: string; reconnectUrl: string } | string {
  if (typeof message !== "string") return "the redirect carries no URL";
  let parsed: URL;
  try {
    parsed = new URL(message);
  } catch {
    return `the redirect's message ${JSON.stringify(message.slice(0, 80))} is not a URL`;
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") return `the redirect's URL ${JSON.stringify(message.slice(0, 80))} is not ws:// or wss://`;
  parsed.searchParams.delete("ticket");
  return { url: message, reconnectUrl: parsed.toString() };
}

/** The name of a raw query parameter (`name=value`, or `name` alone), not percent-decoded. */
function queryName(part: string): string {
  const eq = part.indexOf("=");
  return eq < 0 ? part : part.slice(0, eq);
}

/** The raw parameters of `url`'s query, in order (the server reads them raw too: 13.1). */
function queryParts(url: string): string[] {
  return new URL(url).search
    .slice(1)
    .split("&")
    .filter((part) => part !== "");
}

/** The `token` parameter of `url`'s query, as it is written there, or null. */
function tokenOfUrl(url: string): string | null {
  const part = queryParts(url).find((p) => queryName(p) === TOKEN_PARAM);
  return part === undefined ? null : part.slice(TOKEN_PARAM.length + 1);
}

/**
 * `url` offering `token` at the upgrade (PROTOCOL.md 13.1): its `token` parameters replaced by
 * `token=<token>` (last, written as it is: its characters need no escaping), or removed when
 * `token` is null. The other parameters (a redirect's `ticket`, a game's own) stay as they are.
 * A URL that has nothing to change is returned as it is.
 */
function urlWithToken(url: string, token: string | null): string {
  const parts = queryParts(url);
  const kept = parts.filter((part) => queryName(part) !== TOKEN_PARAM);
  if (token === null && kept.length === parts.length) return url;
  if (token !== null) kept.push(`${TOKEN_PARAM}=${token}`);
  const parsed = new URL(url);
  parsed.search = kept.length > 0 ? `?${kept.join("&")}` : "";
  return parsed.toString();
}

/** The query parameter that asks for tick-stamped replies (PROTOCOL.md 4.3). */
const TICKS_PARAM = "ticks";

/** `url` asking for tick-stamped replies: `ticks=1` added, unless it has a `ticks` parameter already. */
function urlAskingTicks(url: string): string {
  if (queryParts(url).some((part) => queryName(part) === TICKS_PARAM)) return url;
  const parsed = new URL(url);
  parsed.search = parsed.search === "" ? `?${TICKS_PARAM}=1` : `${parsed.search}&${TICKS_PARAM}=1`;
  return parsed.toString();
}

/** `token`, if it can be offered at the upgrade; else a `TypeError` saying why (`what` names it). */
function checkedToken(token: unknown, what: string): string {
  if (isToken(token)) return token;
  const shown = typeof token === "string" ? `${JSON.stringify(token.slice(0, 40))}${token.length > 40 ? "..." : ""} (${token.length} characters)` : String(token);
  throw new TypeError(`ticksock: ${what} ${shown} is not a token: 1 to ${MAX_TOKEN_BYTES} of the characters A-Z a-z 0-9 - _ . ~ + / = (PROTOCOL.md 13.1)`);
}

/** An `auth` reply's body as an `AuthReply` (PROTOCOL.md 13.2), or a string saying what is wrong with it. */
export function decodeAuthReply(body: unknown): AuthReply | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "it is not an object";
  const b = body as Record<string, unknown>;
  if (typeof b.user !== "string") return "its `user` is not a string";
  if (!Array.isArray(b.roles) || !b.roles.every((r) => typeof r === "string")) return "its `roles` is not a list of strings";
  const expires = b.expires_in_ms ?? null;
  if (expires !== null && (typeof expires !== "number" || !Number.isInteger(expires) || expires < 0)) return "its `expires_in_ms` is neither null nor a whole number of milliseconds";
  return { user: b.user, roles: [...(b.roles as string[])], expires_in_ms: expires };
}

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
  /** The server URL the client was made with, e.g. `ws://127.0.0.1:7777/` (after a redirect, see `currentUrl`). */
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

  private readonly opts: Resolved;
  private readonly WS: WebSocketConstructor;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly reportListenerError: (err: unknown) => void;
  private readonly ids: CallIds;

  private linkState: LinkState = "idle";
  private ws: WebSocketLike | null = null;
  /** The version the current socket speaks, from its subprotocol (1 until it opens). */
  private linkVersion: 1 | 2 = 1;
  /** The welcome of the current connection once it is ready (`connected` went out), else null. */
  private welcomeFrame: Welcome | null = null;
  /** The current connection's own welcome, from its arrival: on version 2, its new session. */
  private linkWelcome: { welcome: Welcome; secret: string } | null = null;
  /** A version 2 Resume went out on the current connection and its answer has not come. */
  private awaitingResume = false;
  /** Frames the client sent on the current connection (to know whether a new session's first frame went out). */
  private linkFramesSent = 0;
  /** The version 2 session held across links, or null (version 1, or none yet). */
  private sessionState: Session | null = null;
  /** The pending `ack` frame's timer (version 2), or null. */
  private ackTimer: unknown = null;
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
  /** Where connections go: `url`, or the node a redirect moved the client to (without its ticket). */
  private connectUrl: string;
  /** The redirect being followed, if any (one at a time). */
  private hop: Hop | null = null;
  /** Old connections that a redirect left, waiting for the answers to their calls in flight. */
  private readonly drains = new Set<Drain>();
  /** The token offered at the next connection, or null (see "Tokens"). */
  private heldToken: string | null;
  /**
   * The token the current connection's identity rests on: the one offered at its upgrade, or the
   * one an `auth` on it accepted since; null for none. A close 4003 or 4004 refuses this one.
   */
  private linkToken: string | null = null;

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
    this.connectUrl = url;
    this.heldToken = options.token === undefined ? tokenOfUrl(url) : options.token;
    if (this.heldToken !== null) checkedToken(this.heldToken, options.token === undefined ? "the URL's token" : "options.token");
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

  /**
   * Where the client connects now: `url`, or the node a redirect moved it to (its URL without the
   * ticket); without a `token` parameter either way (the held token is added at each connect).
   */
  get currentUrl(): string {
    return urlWithToken(this.connectUrl, null);
  }
  /**
   * The token offered at the next connection (see "Tokens"), or null for none: set by
   * `options.token`, `setToken` and an accepted `authenticate`; dropped on a close 4003 or 4004.
   */
  get token(): string | null {
    return this.heldToken;
  }
  /** The link state. */
  get state(): LinkState {
    return this.linkState;
  }
  /** True when the welcome of the current connection arrived: calls go out at once. */
  get connected(): boolean {
    return this.linkState === "open";
  }
  /**
   * The welcome of the connection that is ready, or null while none is. On version 2 it names
   * the session: after a resume, the `conn_id` and `epoch` of the session that resumed.
   */
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
  /** The wire format version of the connection that is ready (1 or 2), or null when none is. */
  get protocolVersion(): 1 | 2 | null {
    return this.welcomeFrame === null ? null : this.linkVersion;
  }
  /** The version 2 session the client holds (while connected, and while it waits to resume it), or null. */
  get session(): SessionInfo | null {
    const s = this.sessionState;
    if (!s) return null;
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

  // ----- tokens (PROTOCOL.md section 13) -------------------------------------------------------

  /**
   * Offer `token` at every connection from the next one on (the reconnects and resumes
   * included), or no token with `null`. The current connection keeps its identity: to change it
   * now, use `authenticate`. Throws a `TypeError` for a string that is not a token (`isToken`).
   */
  setToken(token: string | null): void {
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
  authenticate(token: string, options: CallOptions = {}): Promise<AuthReply> {
    let checked: string;
    try {
      checked = checkedToken(token, "authenticate:");
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.start(
        AUTH_ROUTE,
        checked,
        options,
        (err, body) => {
          if (err) return reject(err);
          const reply = decodeAuthReply(body);
          if (typeof reply === "string") return reject(new TicksockError("bad_reply", AUTH_ROUTE, `${AUTH_ROUTE}: the reply is not an AuthReply: ${reply}`));
          this.heldToken = checked;
          // The answer came on the current connection: its identity now rests on this token.
          this.linkToken = checked;
          resolve(reply);
        },
        false,
      );
    });
  }

  /**
   * A connection whose identity rested on `refused` was closed for it (4003, 4004): the client
   * drops that token, unless the game has set another since.
   */
  private dropRefusedToken(refused: string | null): void {
    if (refused !== null && this.heldToken === refused) this.heldToken = null;
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

  /**
   * Call `route` with `data`, as `call`; the Promise resolves with the reply and its stamp: the
   * first tick whose state includes the call's effects (PROTOCOL.md 4.3), or null when the reply
   * has none (without `tickStamps`, or from a server that does not stamp). To reconcile a
   * prediction: a state of tick `S` includes every call stamped `<= S`.
   */
  callStamped<K extends keyof R & string>(route: K, data?: R[K]["req"], options: CallOptions = {}): Promise<Stamped<R[K]["res"]>> {
    return new Promise((resolve, reject) => {
      this.start(route, data, options, (err, result, tick) => (err ? reject(err) : resolve({ tick: tick ?? null, result: result as R[K]["res"] })), false);
    });
  }

  /** The URL of an upgrade to `url`: offering `token`, and asking for stamps if `tickStamps`. */
  private upgradeUrl(url: string, token: string | null): string {
    const withToken = urlWithToken(url, token);
    return this.opts.tickStamps ? urlAskingTicks(withToken) : withToken;
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
    const id = this.ids.next((id) => this.idInUse(id));
    const core = `"id":${id},"route":${JSON.stringify(route)}${body === undefined ? "" : `,"body":${body}`}`;
    const bytes = utf8Length(core) + 2;
    // Checked against the version of the current (or, offline, the last) connection; a queued
    // call is checked again when it goes out, on the version of that connection.
    const frameBytes = requestFrameBytes(bytes, this.linkVersion);
    if (frameBytes > this.opts.maxFrameBytes) return failLater(new TooLargeError(route, frameBytes, this.opts.maxFrameBytes));
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
    const entry: Entry = {
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
  private finish(id: number, err: TicksockError | null, result?: unknown, tick: number | null = null): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    this.pending.delete(id);
    if (entry.timer !== null) this.timers.clearTimeout(entry.timer);
    entry.timer = null;
    // A call that ends (its timeout, say) while its redirect is followed ends the new connection too.
    if (this.hop !== null && this.hop.entry === entry) this.endHop(this.hop, CloseCodes.NORMAL, "call ended");
    entry.away = false;
    if (entry.queued) {
      const i = this.queue.indexOf(entry);
      if (i >= 0) this.queue.splice(i, 1);
      this.queuedBytes -= entry.bytes;
      entry.queued = false;
    }
    if (err) entry.cb(err);
    else entry.cb(null, result, tick);
    return true;
  }

  /**
   * An id is in use while its call waits for its outcome and, on version 2, while its request
   * waits for its answer (a call that timed out included: its request may be resent, and its
   * late answer must not reach another call).
   */
  private idInUse(id: number): boolean {
    return this.pending.has(id) || (this.sessionState !== null && this.sessionState.unanswered.has(id));
  }

  /**
   * Sends the call on the current connection. On version 2 it takes the session's next `seq`
   * and is kept until its answer arrives, whatever happens to the call.
   */
  private transmit(entry: Entry): void {
    const ws = this.ws;
    if (!ws) return;
    entry.sentAt = this.timers.now();
    const s = this.linkVersion === 2 ? this.sessionState : null;
    if (s !== null) {
      const seq = s.lastSeq + 1;
      s.lastSeq = seq;
      s.unanswered.set(entry.id, { seq, id: entry.id, core: entry.core });
      this.sendRequestV2(ws, s, seq, entry.core);
    } else {
      // Only a socket that is not open throws; its close comes next and fails the call.
      this.sendFrame(ws, `{${entry.core}}`);
    }
    this.stats.sent++;
  }

  /** A version 2 request: it carries the received count, which acknowledges every frame so far. */
  private sendRequestV2(ws: WebSocketLike, s: Session, seq: number, core: string): void {
    this.sendFrame(ws, `{"type":"request","seq":${seq},"ack":${s.received},${core}}`);
    this.acknowledged(s);
  }

  /** A version 2 `ack` frame with the received count. */
  private sendAck(ws: WebSocketLike, s: Session): void {
    this.sendFrame(ws, `{"type":"ack","ack":${s.received}}`);
    this.stats.acksSent++;
    this.acknowledged(s);
  }

  /** The received count went out: nothing is left to acknowledge. */
  private acknowledged(s: Session): void {
    s.acked = s.received;
    if (this.ackTimer !== null) {
      this.timers.clearTimeout(this.ackTimer);
      this.ackTimer = null;
    }
  }

  /** Sends one frame; false if the socket threw (it is not open: its close event comes next). */
  private sendFrame(ws: WebSocketLike, text: string): boolean {
    try {
      ws.send(text);
    } catch {
      return false;
    }
    this.linkFramesSent++;
    return true;
  }

  /** Sends the offline queue in order, while the connection stays ready. */
  private flushQueue(ws: WebSocketLike): void {
    while (this.queue.length > 0 && this.ws === ws && this.linkState === "open" && ws.readyState === OPEN) {
      const entry = this.queue.shift()!;
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
    this.linkWelcome = null;
    this.awaitingResume = false;
    this.linkFramesSent = 0;
    let ws: WebSocketLike;
    const token = this.heldToken;
    try {
      ws = new this.WS(this.upgradeUrl(this.connectUrl, token), [...SUBPROTOCOLS]);
    } catch (e) {
      // E.g. a SecurityError; it counts as a failed attempt.
      this.ws = null;
      this.afterDrop(false, 0);
      return;
    }
    this.ws = ws;
    this.linkToken = token;
    this.attach(ws);
    ws.onopen = () => {
      if (!SUBPROTOCOLS.includes(ws.protocol)) this.protocolError(ws, `the server chose subprotocol "${ws.protocol}"`);
    };
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = null;
      const what = this.awaitingResume ? "no answer to the resume" : "no welcome";
      this.teardown(ws, CloseCodes.CONNECT_TIMEOUT, `${what} within ${this.opts.connectTimeoutMs} ms`, false);
    }, this.opts.connectTimeoutMs);
  }

  /** The handlers of the current connection `ws` (its `onopen` is set where it opens). */
  private attach(ws: WebSocketLike): void {
    ws.onopen = null;
    ws.onmessage = (ev: { data: unknown }) => this.onFrame(ws, ev.data);
    ws.onclose = (ev: { code?: number; reason?: string; wasClean?: boolean }) =>
      this.teardown(ws, ev.code ?? 1006, ev.reason ?? "", ev.wasClean ?? false, true);
    ws.onerror = () => {
      // A close event follows; it does the work.
    };
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
          if (s === null || this.welcomeFrame === null) return this.protocolError(ws, `a ${f.type} before the session was settled`);
          if (f.type !== "push" && typeof f.id === "number") s.unanswered.delete(f.id);
          this.countSequenced(ws, s);
        }
        return f.type === "push" ? this.onPush(f) : this.onAnswer(f);
      case "ack":
        if (v2) return this.onServerAck(ws, f);
        break;
      case "resumed":
        if (v2) return this.onResumed(ws, f);
        break;
      case "resume_failed":
        if (v2) return this.onResumeFailed(ws, f);
        break;
    }
    return this.protocolError(ws, `a frame of unknown type ${JSON.stringify(f.type)}`);
  }

  private onAnswer(f: any): void {
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
    if (f.type === "error" && Number(f.code) === ErrorCodes.REDIRECT && !entry.internal) return this.followRedirect(entry, f.message);
    if (f.type === "reply") {
      this.stats.replies++;
      // `tick`: the stamp of a connection that asked for stamps (PROTOCOL.md 4.3).
      this.finish(f.id, null, f.body ?? null, typeof f.tick === "number" ? f.tick : null);
    } else {
      this.stats.errorReplies++;
      this.finish(f.id, new ReplyError(entry.route, Number(f.code), String(f.message ?? "")));
    }
  }

  private onPush(f: any): void {
    this.stats.pushes++;
    const dropped = f.topic === DROPPED_TOPIC && typeof f.body === "number";
    if (dropped) this.stats.eventsDropped += f.body;
    const set = this.pushListeners.get(f.topic);
    if (!set || set.size === 0) {
      // The server's count is kept in the stats even when nobody listens: not unheard.
      if (!dropped) this.stats.unheardPushes++;
      return;
    }
    for (const h of [...set]) this.guard(() => h(f.body ?? null, f.topic));
  }

  private onWelcome(ws: WebSocketLike, f: any): void {
    if (this.linkState !== "connecting" || this.linkWelcome !== null) return this.protocolError(ws, "a second welcome");
    const version = ws.protocol === SUBPROTOCOL_V2 ? 2 : 1;
    if (f.version !== version) {
      const err = new ClosedError("", `the server speaks protocol version ${f.version} on ${ws.protocol || "its subprotocol"}, which is version ${version}`);
      this.shutDown("version", err, CloseCodes.PROTOCOL_ERROR, "unsupported version", false);
      return;
    }
    this.linkVersion = version;
    const tick_hz = Number(f.tick_hz);
    if (version === 1) {
      const welcome: Welcome = { version, tick_hz, conn_id: String(f.conn_id) };
      this.linkWelcome = { welcome, secret: "" };
      if (this.sessionState !== null) {
        // The server went back to version 1: the session cannot be resumed there.
        this.endSession("version_1", null, "the server speaks version 1 only");
        if (this.ws !== ws || this.linkState !== "connecting") return; // a listener closed or replaced it
      }
      return this.becomeReady(ws, welcome, false);
    }
    const conn_id = u64Text(f.conn_id);
    const epoch = u64Text(f.epoch);
    const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
    if (conn_id === null || epoch === null || secret === null) return this.protocolError(ws, "a version 2 welcome without a valid conn_id, epoch and secret");
    const welcome: Welcome = { version, tick_hz, conn_id, epoch };
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
  private onResumed(ws: WebSocketLike, f: any): void {
    const s = this.sessionState;
    const link = this.linkWelcome;
    if (!this.awaitingResume || s === null || link === null) return this.protocolError(ws, "a resumed frame that answers no resume");
    const received = frameCount(f.received);
    const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
    if (received === null || received > s.lastSeq || secret === null) {
      // Retrying would meet the same answer: the session is given up, the next link starts afresh.
      const what = received !== null && received > s.lastSeq ? `says it took request ${received}, but the last sent was ${s.lastSeq}` : "has no valid received count and secret";
      this.endSession("protocol_error", null, `the server's resumed frame ${what}`);
      if (this.ws === ws) this.protocolError(ws, `a resumed frame that ${what}`);
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
      if (r.seq <= received) continue;
      this.sendRequestV2(ws, s, r.seq, r.core);
      this.stats.sent++;
      this.stats.resentRequests++;
      const entry = this.pending.get(r.id);
      if (entry) entry.sentAt = now;
    }
    s.welcome = { ...s.welcome, tick_hz: link.welcome.tick_hz };
    this.becomeReady(ws, s.welcome, true);
  }

  /** The server's answer to a Resume that failed: the session ended, the link carries a new one. */
  private onResumeFailed(ws: WebSocketLike, f: any): void {
    const link = this.linkWelcome;
    if (!this.awaitingResume || link === null) return this.protocolError(ws, "a resume_failed frame that answers no resume");
    const code = frameCount(f.reason);
    this.endSession("resume_failed", code, String(f.message ?? ""));
    if (this.ws !== ws || this.linkState !== "connecting") return; // a listener closed or replaced it
    // 11.4: the link carries on as the new session of its Welcome, counts from 0; its first
    // frame after the failed Resume (a request, else an ack of 0) starts it.
    this.sessionState = newSession(link.welcome, link.secret);
    this.linkFramesSent = 0;
    this.becomeReady(ws, link.welcome, false);
  }

  /** The server's count of the requests it has taken (11.2). */
  private onServerAck(ws: WebSocketLike, f: any): void {
    const s = this.sessionState;
    const received = frameCount(f.received);
    if (this.awaitingResume || s === null || this.welcomeFrame === null) return this.protocolError(ws, "an ack before the session was settled");
    if (received === null || received > s.lastSeq) return this.protocolError(ws, `an ack of ${JSON.stringify(f.received)}, but the last request sent was ${s.lastSeq}`);
    s.serverReceived = Math.max(s.serverReceived, received);
  }

  /**
   * One more sequenced frame received: acknowledged at once after `ackAfterFrames` of them,
   * else within `ackDelayMs` (unless a request carries the count first).
   */
  private countSequenced(ws: WebSocketLike, s: Session): void {
    s.received++;
    if (s.received - s.acked >= this.opts.ackAfterFrames) {
      if (ws.readyState === OPEN) this.sendAck(ws, s);
      return;
    }
    this.scheduleAck(ws, s);
  }

  /** An `ack` frame within `ackDelayMs`, unless one is scheduled already or a request carries the count first. */
  private scheduleAck(ws: WebSocketLike, s: Session): void {
    if (this.ackTimer !== null) return;
    this.ackTimer = this.timers.setTimeout(() => {
      this.ackTimer = null;
      if (this.ws === ws && this.sessionState === s && this.linkState === "open" && s.received > s.acked && ws.readyState === OPEN) this.sendAck(ws, s);
    }, this.opts.ackDelayMs);
  }

  /**
   * The connection is ready for calls: its welcome arrived (version 1), or its version 2
   * session is settled (new, resumed, or new after a failed resume).
   */
  private becomeReady(ws: WebSocketLike, welcome: Welcome, resumed: boolean): void {
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
  private endSession(reason: SessionEndReason, code: number | null, message: string): void {
    if (this.sessionState === null) return;
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
  private sentCalls(): Entry[] {
    const sent: Entry[] = [];
    for (const entry of this.pending.values()) if (!entry.queued && !entry.away) sent.push(entry);
    return sent;
  }

  /** Each of `sent` that still waits rejects with `DisconnectedError`. */
  private rejectSent(sent: Entry[]): void {
    for (const entry of sent) {
      // A callback may have ended some already (a close() in it ends the rest).
      if (this.pending.get(entry.id) !== entry) continue;
      this.finish(entry.id, new DisconnectedError(entry.route));
      if (!entry.internal) this.stats.disconnectedCalls++;
    }
  }

  // ----- redirects (PROTOCOL.md section 12) ----------------------------------------------------

  /**
   * Call `entry` was answered with a redirect to the node of URL `message`: it is made again on
   * a new connection there (12.2). The current connection stays the client's until that answer.
   */
  private followRedirect(entry: Entry, message: unknown): void {
    const target = redirectTarget(message);
    const fail = (url: string, why: string) => this.finish(entry.id, new RedirectError(entry.route, url, why));
    if (typeof target === "string") return void fail("", target);
    if (entry.redirects >= MAX_REDIRECTS) return void fail(target.reconnectUrl, `the call was redirected more than ${MAX_REDIRECTS} times`);
    // One at a time: a second move while the first is under way would leave the client on
    // whichever answered last. The spec lets a client that cannot follow fail the call (6).
    if (this.hop !== null) return void fail(target.reconnectUrl, "another call's redirect is being followed");
    const from = this.ws;
    if (from === null || this.linkState !== "open") return void fail(target.reconnectUrl, "the client is not connected");
    let ws: WebSocketLike;
    // The ticket carries the identity; the token goes along, so that the node's connection rests
    // on it as the ones the client opens there later will.
    const token = this.heldToken;
    try {
      ws = new this.WS(this.upgradeUrl(target.url, token), [...SUBPROTOCOLS]);
    } catch (e) {
      // E.g. a SecurityError: a ws:// node for a page served over https.
      return void fail(target.reconnectUrl, `the WebSocket could not be made: ${String(e)}`);
    }
    entry.redirects++;
    entry.away = true;
    const hop: Hop = { entry, ws, url: target.reconnectUrl, welcome: null, version: 1, session: null, secret: "", sent: false, timer: null, token };
    this.hop = hop;
    ws.onopen = () => {
      if (!SUBPROTOCOLS.includes(ws.protocol)) this.hopFailed(hop, `the node chose subprotocol "${ws.protocol}"`);
    };
    ws.onmessage = (ev: { data: unknown }) => this.onHopFrame(hop, ev.data);
    ws.onclose = (ev: { code?: number; reason?: string }) => this.onHopClose(hop, ev.code ?? 1006, ev.reason ?? "");
    ws.onerror = () => {
      // A close event follows; it does the work.
    };
    hop.timer = this.timers.setTimeout(() => {
      hop.timer = null;
      this.hopFailed(hop, `no welcome within ${this.opts.connectTimeoutMs} ms`, CloseCodes.CONNECT_TIMEOUT);
    }, this.opts.connectTimeoutMs);
  }

  /** The redirect is over: its connection's handlers and timer go (it is closed with `code` unless null). */
  private endHop(hop: Hop, code: number | null, reason: string): void {
    if (this.hop !== hop) return;
    this.hop = null;
    hop.entry.away = false;
    hop.ws.onopen = hop.ws.onmessage = hop.ws.onclose = hop.ws.onerror = null;
    if (hop.timer !== null) this.timers.clearTimeout(hop.timer);
    hop.timer = null;
    if (code === null) return;
    try {
      hop.ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  /** The redirect cannot be followed: its connection closes and the call fails with `RedirectError`. */
  private hopFailed(hop: Hop, why: string, code: number = CloseCodes.PROTOCOL_ERROR): void {
    if (this.hop !== hop) return;
    this.endHop(hop, code, why.slice(0, 120));
    this.finish(hop.entry.id, new RedirectError(hop.entry.route, hop.url, why));
  }

  private onHopClose(hop: Hop, code: number, reason: string): void {
    if (this.hop !== hop) return;
    if (code === CLOSE_AUTH_FAILED || code === CLOSE_AUTH_EXPIRED) {
      // The node handled nothing of the connection: the call was not made there.
      const entry = hop.entry;
      this.dropRefusedToken(hop.token);
      this.endHop(hop, null, "");
      this.emit("token_refused", { code, reason, expired: code === CLOSE_AUTH_EXPIRED, token: hop.token });
      if (this.pending.get(entry.id) === entry) this.finish(entry.id, new RedirectError(entry.route, hop.url, `the node refused the token (close ${code})`));
      return;
    }
    if (code === CLOSE_BAD_TICKET) return this.hopFailed(hop, `the node refused the ticket (close ${code})`);
    if (!hop.sent) return this.hopFailed(hop, `the connection closed (${code}) before the request was sent there`);
    // The request went out and may have been handled: as any call whose link dropped.
    this.endHop(hop, null, "");
    this.finish(hop.entry.id, new DisconnectedError(hop.entry.route));
    this.stats.disconnectedCalls++;
  }

  /** A frame on a redirect's new connection: its welcome, then the answer (pushes before it are heard). */
  private onHopFrame(hop: Hop, data: unknown): void {
    if (this.hop !== hop) return;
    let f: any = null;
    try {
      f = typeof data === "string" ? JSON.parse(data) : null;
    } catch {
      // Reported below.
    }
    if (typeof f !== "object" || f === null) return this.hopFailed(hop, "the node sent a message that is not a JSON object");
    if (hop.welcome === null) return this.onHopWelcome(hop, f);
    const s = hop.session;
    switch (f.type) {
      case "reply":
      case "error":
        if (f.id !== hop.entry.id) return this.hopFailed(hop, `the node answered request ${JSON.stringify(f.id)}, which it was not sent`);
        if (s !== null) {
          s.unanswered.delete(f.id);
          s.received++;
        }
        this.moveTo(hop);
        return this.onAnswer(f);
      case "push":
        if (s !== null) s.received++;
        return this.onPush(f);
      case "ack":
        if (s !== null) return;
        break;
    }
    this.hopFailed(hop, `the node sent a frame of type ${JSON.stringify(f.type)} before the answer`);
  }

  /** The new node's welcome: the request goes out there at once, as its first (12.2). */
  private onHopWelcome(hop: Hop, f: any): void {
    const ws = hop.ws;
    const version = ws.protocol === SUBPROTOCOL_V2 ? 2 : 1;
    if (f.type !== "welcome" || f.version !== version) return this.hopFailed(hop, `the node's first frame is not a version ${version} welcome`);
    const tick_hz = Number(f.tick_hz);
    if (version === 1) {
      hop.welcome = { version, tick_hz, conn_id: String(f.conn_id) };
    } else {
      const conn_id = u64Text(f.conn_id);
      const epoch = u64Text(f.epoch);
      const secret = typeof f.secret === "string" && SECRET_PATTERN.test(f.secret) ? f.secret : null;
      if (conn_id === null || epoch === null || secret === null) return this.hopFailed(hop, "the node's version 2 welcome has no valid conn_id, epoch and secret");
      hop.welcome = { version, tick_hz, conn_id, epoch };
      hop.session = newSession(hop.welcome, secret);
      hop.secret = secret;
    }
    hop.version = version;
    if (hop.timer !== null) this.timers.clearTimeout(hop.timer);
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
    } catch {
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
  private moveTo(hop: Hop): void {
    const old = this.ws;
    const welcome = hop.welcome;
    if (old === null || welcome === null) return; // endHop ran with the old connection's teardown
    const inFlight = this.sentCalls();
    this.endHop(hop, null, "");
    for (const timer of [this.connectTimer, this.ackTimer]) if (timer !== null) this.timers.clearTimeout(timer);
    if (this.heartbeatTimer !== null) this.timers.clearInterval(this.heartbeatTimer);
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
    if (s !== null && s.received > s.acked) this.scheduleAck(ws, s);
    this.emit("redirected", { url: hop.url, from, route: hop.entry.route, welcome });
    this.flushQueue(ws);
  }

  /** Old connection `ws` waits for the answers to `calls` (for `redirectDrainMs`), then closes with 1000. */
  private drain(ws: WebSocketLike, calls: Entry[]): void {
    const drain: Drain = { ws, calls: new Map(), timer: null };
    ws.onopen = null;
    ws.onmessage = (ev: { data: unknown }) => this.onDrainFrame(drain, ev.data);
    ws.onclose = () => this.endDrain(drain, null);
    ws.onerror = () => {
      // A close event follows; it does the work.
    };
    for (const entry of calls) {
      entry.away = true;
      drain.calls.set(entry.id, entry);
    }
    this.drains.add(drain);
    if (calls.length === 0) return this.endDrain(drain, "moved to another node");
    drain.timer = this.timers.setTimeout(() => {
      drain.timer = null;
      this.endDrain(drain, "moved to another node");
    }, this.opts.redirectDrainMs);
  }

  /**
   * A frame on an old connection: the answer of a call that waits there ends it (it may be a
   * redirect of its own). Pushes are dropped: the client's connection is the new one.
   */
  private onDrainFrame(drain: Drain, data: unknown): void {
    let f: any = null;
    try {
      f = typeof data === "string" ? JSON.parse(data) : null;
    } catch {
      return; // it is going away: nothing more is asked of it
    }
    if (f === null || (f.type !== "reply" && f.type !== "error")) return;
    const entry = drain.calls.get(f.id);
    if (entry !== undefined && this.pending.get(f.id) === entry) {
      drain.calls.delete(f.id);
      entry.away = false;
      this.onAnswer(f);
    }
    for (const [id, e] of drain.calls) if (this.pending.get(id) !== e) drain.calls.delete(id);
    if (drain.calls.size === 0) this.endDrain(drain, "moved to another node");
  }

  /** The old connection is done (closed with 1000 and `reason` unless null: it closed itself); its calls left reject with `DisconnectedError`. */
  private endDrain(drain: Drain, reason: string | null): void {
    if (!this.drains.delete(drain)) return;
    const ws = drain.ws;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (drain.timer !== null) this.timers.clearTimeout(drain.timer);
    drain.timer = null;
    if (reason !== null) {
      try {
        ws.close(CloseCodes.NORMAL, reason);
      } catch {
        // Already closed.
      }
    }
    const left = [...drain.calls.values()];
    drain.calls.clear();
    for (const entry of left) entry.away = false;
    this.rejectSent(left);
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
    // A redirect followed from this connection ends with it: the client would have nowhere to
    // come back to if the new node failed. Its call fails below, with the calls of this one.
    const hop = this.hop;
    if (hop !== null) this.endHop(hop, CloseCodes.NORMAL, "the connection it came from dropped");
    // A node that refuses a ticket (12.3) is no place to reconnect to.
    if (fromSocket && code === CLOSE_BAD_TICKET) this.connectUrl = this.url;
    // A token refused (13.1) or expired (13.4) would be refused at every reconnect: it goes
    // before anything runs, so that a connect() from a listener is anonymous already.
    const refusedToken = this.linkToken;
    this.linkToken = null;
    const tokenRefused = fromSocket && (code === CLOSE_AUTH_FAILED || code === CLOSE_AUTH_EXPIRED);
    if (tokenRefused) this.dropRefusedToken(refusedToken);
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
    if (this.linkState !== "closed") this.linkState = "waiting";
    // Version 2: the session outlives the link unless the client is closing. Its calls wait for
    // the resume (their requests are kept); only heartbeat probes, which prove this link alone,
    // end here (their requests are kept too: the seq must have no gap).
    const resuming = this.sessionState !== null && this.linkState !== "closed";
    const sent = this.sentCalls().filter((entry) => (!resuming || entry.internal) && entry !== hop?.entry);
    const failedCalls = sent.filter((entry) => !entry.internal).length;
    // The event first, so that its listeners, and the calls' callbacks after them, see the
    // events in order: a close() there follows the `disconnected` with its `closed`.
    if (wasOpen) this.emit("disconnected", { code, reason, wasClean, failedCalls, resuming });
    if (tokenRefused) this.emit("token_refused", { code, reason, expired: code === CLOSE_AUTH_EXPIRED, token: refusedToken });
    this.rejectSent(sent);
    if (hop !== null && this.pending.get(hop.entry.id) === hop.entry) {
      // Sent on the new node, it may have been handled there: its fate is unknown.
      this.finish(hop.entry.id, hop.sent ? new DisconnectedError(hop.entry.route) : new RedirectError(hop.entry.route, hop.url, "the connection it came from dropped first"));
      if (hop.sent) this.stats.disconnectedCalls++;
    }
    // Reconnect only if no callback connected or closed meanwhile.
    if (this.linkState === "waiting" && this.ws === null && this.reconnectTimer === null) this.afterDrop(wasOpen, upFor);
  }

  private afterDrop(wasOpen: boolean, upFor: number): void {
    if (wasOpen && upFor >= this.opts.stableAfterMs) this.attempt = 0;
    this.attempt++;
    // 12.4: a node the client was redirected to may be gone for good; the URL it started from
    // (a load balancer, say) leads to a live node.
    if (this.connectUrl !== this.url && this.attempt > REDIRECTED_URL_ATTEMPTS) this.connectUrl = this.url;
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
      for (const drain of [...this.drains]) this.endDrain(drain, "client closed");
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
  /** `register`: an account has that name already. */
  NAME_TAKEN: 1007,
  /** `signin`, `guest`: wrong name or password, or an unknown device token. */
  BAD_CREDENTIALS: 1008,
  /** Accounts: the server's database failed or stayed busy (retry later), or it keeps no accounts. */
  STORE: 1009,
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
  login: { req: { name: string }; res: { player_id: number } };
  rooms: { req: null | undefined; res: RoomInfo[] };
  join: { req: { room: string }; res: { room: string; players: PlayerState[]; roster: RosterEntry[] } };
  leave: { req: null | undefined; res: null };
  move: { req: { dx: number; dy: number }; res: { tick: number } };
  chat: { req: { text: string }; res: null };
  whisper: { req: { to: string; text: string }; res: null };
  echo: { req: unknown; res: unknown };
  register: { req: { name: string; password: string }; res: AccountSession };
  signin: { req: { name: string; password: string }; res: AccountSession };
  guest: { req: { device_token: string | null }; res: GuestSession };
  leaderboard: { req: { by: LeaderboardBy; limit: number }; res: LeaderboardEntry[] };
  flush_stats: { req: null | undefined; res: PlayerStats };
  auth: { req: string; res: AuthReply };
  /** With `--replication` (PROTOCOL.md 8.9, 14.4): acknowledges an update's tick (`ReplicaSync` does it). */
  replica_ack: { req: number; res: "accepted" | "stale" | "unknown" };
  /**
   * With `--replication --replica-digests`: the tick and digest of the view last sent to this
   * connection, or null. The digest is a u64, which a JSON number holds only to 53 bits: compare
   * it with `Number(mirror.digest(tick))`, or read its digits from the frame's text.
   */
  replica_digest: { req: null | undefined; res: [number, number] | null };
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
