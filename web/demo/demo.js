// The arena demo page: log in (by name, or with an account or as a guest), join a room, move with
// the arrow keys, chat, and watch the players move: every player of the room from the server's
// `state` pushes, or, when the server runs with --replication, the players in view from the
// `replica` updates, which the page's mirror rebuilds and acknowledges (PROTOCOL.md 8.9, 14); an
// account's totals and the leaderboard on the side. It uses the ticksock client the server serves
// at /ticksock.js (web/dist/ticksock.js, built from web/src/).
import {
  TicksockClient,
  Arena,
  ArenaErrors,
  ErrorCodes,
  isToken,
  ReplicaSync,
  SnapshotInterpolator,
  ARENA_REPLICA_KINDS,
  arenaPlayer,
} from "/ticksock.js";

const $ = (id) => document.getElementById(id);
const canvas = $("arena");
const ctx = canvas.getContext("2d");
const params = new URLSearchParams(location.search);

// The socket's scheme follows the page's: a page served over https may open only wss:// (a ws://
// socket from it is mixed content, which the browser blocks), and the server that served it over
// TLS speaks TLS on the same port.
const wsScheme = location.protocol === "https:" ? "wss" : "ws";

// localStorage keys: the account's session (its token, offered at every connection, so a reload
// is still signed in), the guest's device token (the one way back to that guest), the name typed.
const SESSION_KEY = "ticksock.session";
const DEVICE_KEY = "ticksock.device";
const NAME_KEY = "ticksock.name";

/** The saved session `{token, name, guest}`, or null (none, or not one this page wrote). */
function savedSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null");
    return s && isToken(s.token) && typeof s.name === "string" ? { token: s.token, name: s.name, guest: s.guest === true } : null;
  } catch {
    return null;
  }
}

const saved = savedSession();
const client = new TicksockClient(`${wsScheme}://${location.host}/`, { maxAttempts: null, token: saved?.token ?? null });
// Made before the page's own listeners: on a new server session it has started afresh by the time
// they run.
const replica = new ReplicaSync(client, { kinds: ARENA_REPLICA_KINDS });

/** Everything the page knows; exposed as `window.ticksockDemo` for the console and the e2e test. */
const demo = {
  client,
  // The account signed in, {name, token, guest, confirmed}, or null: the connection is then
  // anonymous, or logged in by name alone. `confirmed` once the server answered as the account.
  account: saved === null ? null : { ...saved, confirmed: false },
  stats: null, // the account's totals from its last flush_stats
  board: { by: "distance", entries: null, at: null }, // the leaderboard shown
  name: null, // logged in as
  loginConn: null, // conn_id of the connection the login was made on
  me: null, // player id
  room: null, // room joined
  names: new Map(), // player id -> name: the room's roster (from the join reply), kept current by presence
  link: "connecting", // "connecting" (first connection), "open", "down" (waiting to reconnect), "rejoining", "closed"
  linkDetail: "", // what the link state says next: why it went down, when the next attempt is
  retryAt: null, // performance.now() of the next reconnect attempt, while down
  labels: [], // the labels drawn in the last frame: {id, text, left, top, right, bottom}, arena pixels
  arenaPx: null, // the arena's side in canvas pixels, in the last frame
  prev: null, // previous state push {tick, players: Map(id -> {x, y}), at}
  cur: null, // latest state push (or the join reply's players)
  // State by replication (--replication): the sync and its mirror, which hold the view; whether
  // this session's room is drawn from it (once its first update came); the positions of the view
  // after each update, for drawing between them; the player of each entity seen; and what the
  // last frame drew {at, tick, players: [{id, x, y}]}.
  replica,
  replicating: false,
  interp: null,
  entityPlayers: new Map(), // entity id -> {playerId, name}
  drawn: null,
  tickHz: null, // from the welcome
  pushIntervalMs: null, // moving average of the time between state pushes
  rttMs: null, // last round trip of an echo call
  rttAvgMs: null,
  dir: { dx: 0, dy: 0 },
  /** The players as last heard: in the view (replication), or in the room (`state`). */
  players() {
    if (this.replicating) {
      return [...replica.mirror.view.values()].map(arenaPlayer).filter((p) => p !== null).map((p) => ({ id: p.playerId, x: p.x, y: p.y }));
    }
    return this.cur ? [...this.cur.players].map(([id, p]) => ({ id, x: p.x, y: p.y })) : [];
  },
};
window.ticksockDemo = demo;

// ----- connection status -----------------------------------------------------------------

function showStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

/**
 * Shows the link state over the arena. While the link is down the world is stale: it is drawn
 * grey behind a notice that says what happens next, rather than left looking alive but frozen.
 */
function setLink(link, detail = "") {
  demo.link = link;
  demo.linkDetail = detail;
  if (link !== "down") demo.retryAt = null;
  showOffline();
}

function showOffline() {
  const box = $("offline");
  const down = demo.link === "down" || demo.link === "closed" || demo.link === "rejoining";
  box.hidden = !down;
  if (!down) return;
  box.dataset.state = demo.link;
  let next;
  if (demo.link === "closed") {
    next = "The page stopped trying.";
  } else if (demo.link === "rejoining") {
    next = `Connected again: joining ${demo.room} again…`;
  } else if (demo.retryAt !== null) {
    const left = Math.max(0, (demo.retryAt - performance.now()) / 1000);
    next = `Reconnecting in ${left.toFixed(1)} s (attempt ${client.failedAttempts})…`;
  } else {
    next = "Reconnecting…";
  }
  $("offline-title").textContent = demo.link === "closed" ? "Connection closed" : demo.link === "rejoining" ? "Reconnected" : "Disconnected";
  $("offline-detail").textContent = demo.linkDetail;
  $("offline-next").textContent = next;
  $("reconnect").hidden = demo.link === "rejoining";
  $("reconnect").textContent = demo.link === "closed" ? "Reconnect" : "Reconnect now";
}

// Skips the backoff delay, or restarts a client that gave up.
$("reconnect").addEventListener("click", () => client.connect());

client.onEvent("connected", async ({ welcome, reconnected, resumed }) => {
  demo.tickHz = welcome.tick_hz;
  // A new server session knows nothing of the old one's view; it may not replicate at all.
  if (!resumed) stopReplicating();
  showStatus("open", resumed ? `resumed · ${welcome.tick_hz} Hz` : `connected · ${welcome.tick_hz} Hz`);
  refreshRooms();
  measureRtt();
  // The board at once; and with a token, the account's totals, which the server answers once it
  // accepted the token the upgrade offered (else it closes with 4003: "token_refused" below).
  if (!resumed) refreshBoard();
  if (resumed) {
    // ticksock.v2 kept the session across the drop: the player, its room and every call in
    // flight are still there, and what was missed has been replayed.
    log("sys", "link restored: session resumed");
  } else if (reconnected && demo.name && demo.room) {
    // A new session (v1, or a resume the server refused): log in and join again. The world
    // stays grey until the join reply brings the room as it is now.
    setLink("rejoining");
    try {
      await enter(demo.name, demo.room);
      log("sys", `reconnected to ${demo.room}`);
    } catch (e) {
      if (e.kind === "reply") {
        // Refused (the room is full, say): no world to show until the player picks a room.
        demo.room = null;
        demo.cur = null;
        demo.prev = null;
        notice(e);
      } // Else the link dropped again: the next connection tries again.
    }
  }
  if (client.connected) setLink("open");
});
client.onEvent("redirected", ({ url, welcome }) => {
  showStatus("open", `connected · ${welcome.tick_hz} Hz`);
  log("sys", `moved to the node at ${url}`);
});
client.onEvent("disconnected", ({ code, reason }) => {
  demo.dir = { dx: 0, dy: 0 };
  held.clear();
  if (restarting) return; // signing out: a new connection follows at once
  showStatus("waiting", `disconnected (${code})`);
  const why = code === 1001 ? "the server is going away (restart or shutdown)" : reason || `close code ${code}`;
  setLink("down", `The link to the server dropped: ${why}.`);
});
client.onEvent("reconnecting", ({ attempt, delayMs }) => {
  showStatus("waiting", `reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})`);
  // Also reached when the very first connection fails: the server is not there yet.
  if (demo.link !== "down") setLink("down", "The server cannot be reached.");
  demo.retryAt = performance.now() + delayMs;
  showOffline();
});
client.onEvent("closed", ({ error }) => {
  if (restarting) return; // signing out: a new connection follows at once
  showStatus("closed", error ? error.message : "closed");
  setLink("closed", error ? error.message : "The connection was closed.");
});
// The server refused the saved token (4003: forged, or from another database) or the account's
// identity expired (4004): the client dropped it and reconnects anonymous; sign in again.
client.onEvent("token_refused", ({ expired }) => {
  const who = demo.account?.name;
  signedOut();
  const what = expired ? `The session${who ? ` of ${who}` : ""} expired` : `The server refused the saved session${who ? ` of ${who}` : ""}`;
  accountNotice(`${what}: sign in again, or play without an account.`);
  log("sys", `${what}; you are not signed in`);
});
client.on("auth_expired", () => log("sys", "your session expired: sign in again"));

// ----- log in and join -------------------------------------------------------------------

function notice(err) {
  $("notice").textContent = err ? String(err.message ?? err) : "";
}

const ERROR_TEXT = {
  [ArenaErrors.ROOM_FULL]: "that room is full: pick another",
  [ArenaErrors.INVALID]: "a name or room must be 1 to 32 bytes",
  [ArenaErrors.NO_SUCH_ROOM]: "no such room",
};

async function enter(name, room) {
  const conn = client.welcome?.conn_id ?? null;
  if (demo.account) {
    // The token logged the connection in as the account (at the upgrade, or by `auth`): no
    // `login`, which would make it a player of that name that earns nothing. Its id comes from
    // the join reply's roster, below.
    name = demo.account.name;
    demo.name = name;
    demo.loginConn = null;
  } else if (demo.name !== name || demo.loginConn !== conn || demo.me === null) {
    // Log in once per connection (and again for another name).
    const { player_id } = await client.call("login", { name });
    demo.name = name;
    demo.me = player_id;
    demo.loginConn = conn;
  }
  const joined = await client.call("join", { room });
  const joinedOn = client.welcome?.conn_id ?? null;
  if (demo.account || joinedOn !== demo.loginConn) {
    // The arena lives on another node of a cluster: the client followed the redirect, and the
    // ticket logged it in there under the same name, with that node's player id, which the
    // roster names (PROTOCOL.md 8.7, 12).
    const me = joined.roster.find((p) => p.name === name);
    if (me) demo.me = me.id;
    demo.loginConn = joinedOn;
  }
  demo.room = joined.room;
  // Everyone in the room, named: every player is labelled from the start, not only those who
  // have chatted. Presence pushes keep it current.
  demo.names = new Map(joined.roster.map(({ id, name }) => [id, name]));
  demo.prev = null;
  demo.cur = { tick: 0, players: toMap(joined.players), at: performance.now() };
  // With replication, the room's first update (a full snapshot) replaces the join reply's players.
  stopReplicating();
  $("joined-as").textContent = `${name} in ${joined.room}`;
  if (!demo.account) localStorage.setItem(NAME_KEY, name);
  refreshRooms();
}

$("join-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim() || "lobby";
  notice(null);
  try {
    await enter(name, room);
    log("sys", `you joined ${demo.room} as ${name} (#${demo.me})`);
    canvas.focus();
  } catch (e) {
    notice(e.code && ERROR_TEXT[e.code] ? { message: `${ERROR_TEXT[e.code]} (${e.code})` } : e);
  }
});

/** The name the Play form offers to log in by (a signed-in account's own replaces it meanwhile). */
const nameToOffer = () => params.get("name") ?? localStorage.getItem(NAME_KEY) ?? `player-${Math.floor(Math.random() * 9000 + 1000)}`;
$("name").value = nameToOffer();
$("room").value = params.get("room") ?? "lobby";

// ----- accounts --------------------------------------------------------------------------
// PROTOCOL.md 8.8: `register`, `signin` and `guest` answer a session token; `authenticate` sends
// it in `auth`, which makes this connection the account's player, and the client offers it at
// every connection after (a reload too, from localStorage). Plain `login` by name still works
// for whoever wants no account; it earns nothing.

function accountNotice(text) {
  $("account-notice").textContent = text ?? "";
}

const ACCOUNT_ERROR_TEXT = {
  [ArenaErrors.INVALID]: "a name is 1 to 32 bytes (and not guest-…), a password 1 to 128",
  [ArenaErrors.NAME_TAKEN]: "an account has that name already: pick another, or sign in",
  [ArenaErrors.BAD_CREDENTIALS]: "wrong name or password",
  [ArenaErrors.STORE]: "the server's database cannot answer now: try again later",
  [ErrorCodes.RATE_LIMITED]: "too many tries: wait a moment",
  [ErrorCodes.UNAUTHENTICATED]: "the server refused the session token",
};

function accountError(e) {
  const text = e.kind === "reply" ? ACCOUNT_ERROR_TEXT[e.code] : null;
  return text ? `${text} (${e.code})` : String(e.message ?? e);
}

/** Shows who is signed in (and their totals), or the form to sign in. */
function showAccount() {
  const a = demo.account;
  $("account-who").hidden = a === null;
  $("my-stats").hidden = a === null;
  $("account-form").hidden = a !== null;
  if (a !== null) {
    $("account-name").textContent = a.name;
    $("account-state").textContent = !a.confirmed ? "(checking…)" : a.guest ? "(guest)" : "";
  }
  // Signed in, the account's name is the player's: the Play form only joins.
  const nameInput = $("name");
  if (a !== null) {
    nameInput.value = a.name;
  } else if (nameInput.disabled) {
    nameInput.value = nameToOffer();
  }
  nameInput.disabled = a !== null;
  const s = a === null ? null : demo.stats;
  $("stat-distance").textContent = s ? String(s.distance) : "–";
  $("stat-messages").textContent = s ? String(s.messages) : "–";
  $("stat-games").textContent = s ? String(s.games) : "–";
}

/**
 * The page is no longer signed in: the session is forgotten (the guest's device token is kept),
 * and the account's player with it: no name, no room, until the player logs in or signs in.
 */
function signedOut() {
  localStorage.removeItem(SESSION_KEY);
  if (demo.account !== null) {
    demo.name = null;
    demo.me = null;
    demo.loginConn = null;
    demo.room = null;
    demo.cur = null;
    demo.prev = null;
    demo.names = new Map();
    $("joined-as").textContent = "";
  }
  demo.account = null;
  demo.stats = null;
  showAccount();
  renderBoard();
}

/**
 * Signs this connection in with `token` (`auth`), keeps the session for the next connections
 * and page loads, and joins the room again as the account: `auth` with another name took the
 * player out of its room, as a `login` would (8.7).
 */
async function useToken(token, guest) {
  const reply = await client.authenticate(token);
  demo.account = { name: reply.user, token, guest, confirmed: true };
  demo.stats = null;
  localStorage.setItem(SESSION_KEY, JSON.stringify({ token, name: reply.user, guest }));
  accountNotice(null);
  demo.name = reply.user;
  demo.me = null;
  showAccount();
  log("sys", `signed in as ${reply.user}${guest ? " (guest)" : ""}`);
  if (demo.room !== null) {
    try {
      await enter(reply.user, demo.room);
    } catch (e) {
      notice(e);
    }
  }
  refreshBoard();
}

/** `register` or `signin` with the form's name and password, then sign in with the answer's token. */
async function withPassword(route) {
  const name = $("account-user").value.trim();
  const password = $("account-password").value;
  accountNotice(null);
  try {
    const { token } = await client.call(route, { name, password });
    $("account-password").value = "";
    await useToken(token, false);
  } catch (e) {
    accountNotice(accountError(e));
  }
}

/** `guest` with this browser's device token (a new guest the first time), then sign in as it. */
async function playAsGuest() {
  accountNotice(null);
  try {
    let device = localStorage.getItem(DEVICE_KEY);
    let session;
    try {
      session = await client.call("guest", { device_token: device });
    } catch (e) {
      if (device === null || e.code !== ArenaErrors.BAD_CREDENTIALS) throw e;
      // This server does not know that guest (its database is another one): a new guest.
      device = null;
      localStorage.removeItem(DEVICE_KEY);
      session = await client.call("guest", { device_token: null });
      log("sys", "the guest saved in this browser is unknown here: playing as a new guest");
    }
    localStorage.setItem(DEVICE_KEY, session.device_token);
    await useToken(session.token, true);
  } catch (e) {
    accountNotice(accountError(e));
  }
}

/** Set while the page replaces its connection itself: its `disconnected` and `closed` are not news. */
let restarting = false;

/**
 * Forgets the session and starts an anonymous connection: the current one stays the account's
 * player until it ends, and no request undoes a token.
 */
function signOut() {
  const who = demo.account?.name;
  client.setToken(null);
  signedOut();
  accountNotice(null);
  restarting = true;
  try {
    client.close();
    client.connect();
  } finally {
    restarting = false;
  }
  setLink("connecting");
  showStatus("connecting", "connecting…");
  log("sys", `signed out${who ? ` of ${who}` : ""}`);
}

$("account-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  withPassword("signin");
});
$("register").addEventListener("click", () => withPassword("register"));
$("guest").addEventListener("click", () => playAsGuest());
$("signout").addEventListener("click", () => signOut());
showAccount();

// ----- leaderboard and the account's totals ----------------------------------------------

const BOARD_SIZE = 10;
const BOARD_EVERY_MS = 5000;
let boardBusy = false;

/**
 * Saves the account's stats and shows its totals (`flush_stats`), then the top accounts by the
 * chosen stat, which so include what the player earned until now.
 */
async function refreshBoard() {
  if (!client.connected || boardBusy) return;
  boardBusy = true;
  try {
    const account = demo.account;
    if (account !== null) {
      try {
        const totals = await client.call("flush_stats", null, { timeout: 5000 });
        if (demo.account === account) {
          demo.stats = totals;
          account.confirmed = true;
        }
      } catch (e) {
        if (e.kind === "reply" && demo.account === account) accountNotice(`your totals: ${accountError(e)}`);
      }
      showAccount();
    }
    const by = demo.board.by;
    const entries = await client.call("leaderboard", { by, limit: BOARD_SIZE }, { timeout: 5000 });
    if (by === demo.board.by) {
      demo.board.entries = entries;
      demo.board.at = new Date();
      renderBoard();
    }
  } catch (e) {
    $("lb-when").textContent = `not refreshed: ${e.kind === "reply" ? accountError(e) : e.message}`;
  } finally {
    boardBusy = false;
  }
}

function renderBoard() {
  const { by, entries, at } = demo.board;
  for (const button of document.querySelectorAll("#lb-by [data-by]")) button.setAttribute("aria-pressed", String(button.dataset.by === by));
  $("lb-list").replaceChildren(
    ...(entries ?? []).map(({ name, value }) => {
      const li = document.createElement("li");
      li.className = demo.account?.name === name ? "me" : "";
      const v = document.createElement("span");
      v.className = "v";
      v.textContent = String(value);
      li.append(document.createTextNode(name), v);
      return li;
    }),
  );
  $("lb-empty").hidden = entries === null || entries.length > 0;
  $("lb-when").textContent = at === null ? "" : `by ${by}, at ${at.toLocaleTimeString()}`;
}

for (const button of document.querySelectorAll("#lb-by [data-by]")) {
  button.addEventListener("click", () => {
    demo.board = { by: button.dataset.by, entries: null, at: null };
    renderBoard();
    refreshBoard();
  });
}
$("lb-refresh").addEventListener("click", () => refreshBoard());

// Refreshed every few seconds while it can be seen: the tab in front and the panel on screen.
let boardOnScreen = true;
new IntersectionObserver((seen) => {
  boardOnScreen = seen.some((entry) => entry.isIntersecting);
}).observe($("leaderboard"));
setInterval(() => {
  if (document.visibilityState === "visible" && boardOnScreen) refreshBoard();
}, BOARD_EVERY_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshBoard();
});

// ----- rooms -----------------------------------------------------------------------------

async function refreshRooms() {
  if (!client.connected) return;
  try {
    const rooms = await client.call("rooms", null, { timeout: 3000 });
    rooms.sort((a, b) => (a.name === "lobby" ? -1 : b.name === "lobby" ? 1 : a.name.localeCompare(b.name, "en", { numeric: true })));
    const list = $("rooms");
    list.replaceChildren(
      ...rooms.map((r) => {
        const li = document.createElement("li");
        li.className = r.name === demo.room ? "current" : "";
        li.title = "click to join";
        const name = document.createElement("span");
        name.textContent = r.name;
        const n = document.createElement("span");
        n.className = "n";
        n.textContent = `${r.players}/${r.capacity}`;
        li.append(name, n);
        li.addEventListener("click", () => {
          $("room").value = r.name;
          $("join-form").requestSubmit();
        });
        return li;
      }),
    );
  } catch {
    // Offline or slow: the next refresh tries again.
  }
}
setInterval(refreshRooms, 3000);

// ----- pushes ----------------------------------------------------------------------------

function toMap(players) {
  return new Map(players.map((p) => [p.id, { x: p.x, y: p.y }]));
}

client.on("state", (state) => {
  const at = performance.now();
  if (demo.cur && demo.cur.tick > 0) {
    const dt = at - demo.cur.at;
    if (dt < 1000) demo.pushIntervalMs = demo.pushIntervalMs === null ? dt : demo.pushIntervalMs * 0.9 + dt * 0.1;
  }
  demo.prev = demo.cur;
  demo.cur = { tick: state.tick, players: toMap(state.players), at };
});

// State by replication: each update brings the mirror's view; the page draws the players in it,
// between the positions of the last updates (SnapshotInterpolator), so that they glide even when
// updates come a few ticks apart (--state-every). The ReplicaSync acknowledges them.
replica.onChange(({ tick }) => {
  const at = performance.now();
  if (demo.replicating && demo.cur !== null) {
    const dt = at - demo.cur.at;
    if (dt < 1000) demo.pushIntervalMs = demo.pushIntervalMs === null ? dt : demo.pushIntervalMs * 0.9 + dt * 0.1;
  }
  demo.replicating = true;
  const positions = new Map();
  for (const [entity, e] of replica.mirror.view) {
    const p = arenaPlayer(e);
    if (p === null) continue;
    positions.set(entity, { x: p.x, y: p.y });
    demo.entityPlayers.set(entity, { playerId: p.playerId, name: p.name });
    demo.names.set(p.playerId, p.name);
  }
  // Drawn from the interpolator; `cur` keeps the tick and when it came, for the panel.
  demo.cur = { tick, players: new Map(), at };
  demo.prev = null;
  demo.interp ??= new SnapshotInterpolator({ tickMs: 1000 / (demo.tickHz || 30), snapDistance: 100 });
  demo.interp.push(tick, at, positions);
});
replica.onError((err) => console.warn(`replica update refused (${err.kind}): ${err.message}`));

/** Back to the `state` path until an update comes: a new session, or another room. */
function stopReplicating() {
  demo.replicating = false;
  demo.interp = null;
  demo.entityPlayers.clear();
  demo.drawn = null;
}

let roomsSoon = null;
client.on("presence", ({ player_id, name, joined }) => {
  if (joined) {
    demo.names.set(player_id, name);
  } else {
    // Gone from the room: the next state will not list them, so stop drawing them now rather
    // than drawing them unnamed until it comes.
    demo.names.delete(player_id);
    demo.cur?.players.delete(player_id);
    demo.prev?.players.delete(player_id);
  }
  log("sys", `${name} ${joined ? "joined" : "left"}`);
  // Player counts changed: refresh the room list soon (once for a burst of arrivals).
  roomsSoon ??= setTimeout(() => {
    roomsSoon = null;
    refreshRooms();
  }, 300);
});
client.on("chat", ({ name, text }) => log("chat", text, name));
client.on("whisper", ({ name, text }) => log("whisper", text, `${name} (whisper)`));

// ----- chat ------------------------------------------------------------------------------

function log(kind, text, who) {
  const li = document.createElement("li");
  if (kind === "sys") {
    li.className = "sys";
    li.textContent = text;
  } else {
    li.className = kind === "whisper" ? "whisper" : "";
    const w = document.createElement("span");
    w.className = "who";
    w.textContent = `${who}: `;
    li.append(w, document.createTextNode(text));
  }
  const list = $("log");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(li);
  while (list.children.length > 200) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

$("chat-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("say");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  canvas.focus(); // back to the game: the arrow keys move again
  const m = text.match(/^\/w(?:hisper)?\s+(\S+)\s+(.+)$/);
  try {
    if (m) {
      await client.call("whisper", { to: m[1], text: m[2] });
      log("whisper", m[2], `you → ${m[1]}`);
    } else {
      await client.call("chat", { text });
    }
  } catch (e) {
    log("sys", e.code === ArenaErrors.NOT_IN_ROOM || e.code === ArenaErrors.NOT_LOGGED_IN ? "join a room to chat" : e.message);
  }
});

// ----- moving ----------------------------------------------------------------------------

const KEYS = {
  ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
  KeyA: [-1, 0], KeyD: [1, 0], KeyW: [0, -1], KeyS: [0, 1],
};
const held = new Set();

function typing(ev) {
  const t = ev.target;
  return t instanceof HTMLElement && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
}

function steer() {
  let dx = 0;
  let dy = 0;
  for (const code of held) {
    dx += KEYS[code][0];
    dy += KEYS[code][1];
  }
  dx = Math.sign(dx);
  dy = Math.sign(dy);
  if (dx === demo.dir.dx && dy === demo.dir.dy) return; // key repeat: nothing new to say
  demo.dir = { dx, dy };
  if (demo.room === null || !client.connected) return;
  // A direction is worth little later: a short timeout keeps stale moves from piling up offline.
  client.call("move", { dx, dy }, { timeout: 2000 }).catch((e) => {
    const between = e.kind === "disconnected" || e.kind === "timeout" || e.code === ArenaErrors.NOT_LOGGED_IN || e.code === ArenaErrors.NOT_IN_ROOM;
    if (!between) notice(e);
  });
}

window.addEventListener("keydown", (ev) => {
  if (!(ev.code in KEYS) || typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  ev.preventDefault();
  held.add(ev.code);
  steer();
});
window.addEventListener("keyup", (ev) => {
  if (!(ev.code in KEYS)) return;
  held.delete(ev.code);
  steer();
});
window.addEventListener("blur", () => {
  held.clear();
  steer();
});
window.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !typing(ev)) {
    ev.preventDefault();
    $("say").focus();
  } else if (ev.key === "Escape" && typing(ev)) {
    canvas.focus();
  }
});

// ----- round trip and tick rate ----------------------------------------------------------

async function measureRtt() {
  if (!client.connected) return;
  const t0 = performance.now();
  try {
    await client.call("echo", t0, { timeout: 5000 });
    const rtt = performance.now() - t0;
    demo.rttMs = rtt;
    demo.rttAvgMs = demo.rttAvgMs === null ? rtt : demo.rttAvgMs * 0.8 + rtt * 0.2;
  } catch {
    // Shown as stale; the status line says why.
  }
}
setInterval(measureRtt, 1000);

function ms(v) {
  return v === null ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(0);
}

function updatePanel() {
  $("rtt").textContent = demo.rttMs === null ? "–" : `${ms(demo.rttMs)} ms (avg ${ms(demo.rttAvgMs)} ms)`;
  const seen = demo.pushIntervalMs ? 1000 / demo.pushIntervalMs : null;
  $("tickrate").textContent =
    demo.tickHz === null
      ? "–"
      : `server ${demo.tickHz} Hz · seen ${seen === null ? "–" : `${seen.toFixed(1)} Hz (${demo.pushIntervalMs.toFixed(1)} ms)`}`;
  $("tick").textContent = demo.cur && demo.cur.tick ? String(demo.cur.tick) : "–";
  if (demo.replicating) {
    $("count").textContent = `${replica.mirror.view.size} in view in ${demo.room ?? "–"}`;
    $("count").title = "state by replication: only the players near you are sent";
  } else {
    $("count").textContent = demo.cur ? `${demo.cur.players.size} in ${demo.room ?? "–"}` : "–";
    $("count").title = "";
  }
  const mine = demo.me === null ? null : demo.replicating ? demo.players().find((p) => p.id === demo.me) : demo.cur?.players.get(demo.me);
  $("you").textContent = mine ? `#${demo.me} at ${mine.x}, ${mine.y}` : demo.me !== null ? `#${demo.me}` : "–";
  if (demo.link === "down") showOffline(); // the countdown to the next attempt
}
setInterval(updatePanel, 250);

// ----- drawing ---------------------------------------------------------------------------

function fitCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const size = Math.round(canvas.clientWidth * dpr);
  if (size > 0 && canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
}

/** A player's colour; grey while the link is down, so the stale world does not look live. */
function colorOf(id, live) {
  return live ? `hsl(${(id * 137.508) % 360} 70% 62%)` : "#59616e";
}

/**
 * Where a label of `width` x `height` goes for a dot of radius `r` at (`x`, `y`), in an arena
 * drawn `side` pixels wide: centred above the dot, moved below it at the top wall, and slid
 * along at the side walls, so that it stays inside the arena, whole. Returns its box.
 */
function placeLabel(x, y, r, width, height, side) {
  const gap = 4;
  let top = y - r - gap - height;
  if (top < 0) top = y + r + gap;
  top = Math.min(Math.max(top, 0), side - height);
  const left = Math.min(Math.max(x - width / 2, 0), side - width);
  return { left, top, right: left + width, bottom: top + height };
}

/** Draws `text` as the label of player `id` at the dot (`x`, `y`) and records where it went. */
function drawLabel(id, text, x, y, r, font, side, labels) {
  ctx.font = font.css;
  const box = placeLabel(x, y, r, ctx.measureText(text).width, font.px, side);
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText(text, box.left, box.top);
  labels.push({ id, text, ...box });
}

/** Where to draw each player at `now`: between the last two updates or state pushes, for smooth motion. */
function positions(now) {
  if (demo.replicating) return replicatedPositions(now);
  const { prev, cur } = demo;
  if (!cur) return [];
  const span = demo.pushIntervalMs ?? 1000 / (demo.tickHz || 30);
  const a = prev ? Math.min(1, (now - cur.at) / span) : 1;
  const out = [];
  for (const [id, p] of cur.players) {
    const q = prev && prev.players.get(id);
    const jump = q && (Math.abs(q.x - p.x) > 50 || Math.abs(q.y - p.y) > 50);
    out.push(q && !jump ? { id, x: q.x + (p.x - q.x) * a, y: q.y + (p.y - q.y) * a } : { id, x: p.x, y: p.y });
  }
  return out;
}

/** The players of the mirror's view, interpolated between updates; recorded in `demo.drawn`. */
function replicatedPositions(now) {
  const frame = demo.interp?.sample(now);
  if (!frame) return [];
  const out = [];
  for (const [entity, p] of frame.positions) {
    const player = demo.entityPlayers.get(entity);
    if (player) out.push({ id: player.playerId, x: p.x, y: p.y });
  }
  demo.drawn = { at: now, tick: frame.tick, players: out };
  return out;
}

function draw(now) {
  fitCanvas();
  const full = canvas.width;
  const live = demo.link === "open" || demo.link === "connecting";
  // The arena sits inside a margin, so that players on its edge are drawn whole.
  const pad = Math.round(full * 0.025);
  const w = full - 2 * pad;
  const k = w / Arena.SIZE;
  demo.arenaPx = w;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#0b0e13";
  ctx.fillRect(0, 0, full, full);
  ctx.translate(pad, pad);
  ctx.strokeStyle = "#1b222c";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let g = 0; g <= Arena.SIZE; g += 100) {
    ctx.moveTo(Math.round(g * k) + 0.5, 0);
    ctx.lineTo(Math.round(g * k) + 0.5, w);
    ctx.moveTo(0, Math.round(g * k) + 0.5);
    ctx.lineTo(w, Math.round(g * k) + 0.5);
  }
  ctx.stroke();
  ctx.strokeStyle = "#2a3340";
  ctx.strokeRect(0.5, 0.5, Math.round(w), Math.round(w));

  if (!demo.cur) {
    demo.labels = [];
    ctx.fillStyle = "#8b95a5";
    ctx.font = `${Math.round(16 * k * 1.6)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    // While the link is down the notice over the canvas says it.
    const hint = demo.account ? "pick a room, then Join" : "pick a name and a room, then Join";
    if (live) ctx.fillText(client.connected ? hint : "connecting…", w / 2, w / 2);
    requestAnimationFrame(draw);
    return;
  }
  const r = Math.max(3, 9 * k);
  const px = Math.max(10, Math.round(12 * k * 1.4));
  const font = { px, css: `${px}px system-ui, sans-serif` };
  const bold = { px, css: `600 ${px}px system-ui, sans-serif` };
  const labels = [];
  let mine = null;
  for (const p of positions(now)) {
    if (p.id === demo.me) {
      mine = p;
      continue;
    }
    ctx.fillStyle = colorOf(p.id, live);
    ctx.beginPath();
    ctx.arc(p.x * k, p.y * k, r, 0, Math.PI * 2);
    ctx.fill();
    // Every player is labelled: by name from the roster, by id until a name is known.
    ctx.fillStyle = live ? "#8b95a5" : "#4b525d";
    drawLabel(p.id, demo.names.get(p.id) ?? `#${p.id}`, p.x * k, p.y * k, r, font, w, labels);
  }
  if (mine) {
    ctx.fillStyle = live ? "#ffffff" : "#8b95a5";
    ctx.beginPath();
    ctx.arc(mine.x * k, mine.y * k, r * 1.5, 0, Math.PI * 2);
    ctx.fill();
    ctx.strokeStyle = live ? "#6cc4ff" : "#59616e";
    ctx.lineWidth = Math.max(2, 3 * k);
    ctx.stroke();
    drawLabel(mine.id, `${demo.name} (you)`, mine.x * k, mine.y * k, r * 1.5 + 2, bold, w, labels);
  }
  demo.labels = labels;
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
