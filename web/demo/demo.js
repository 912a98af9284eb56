// The arena demo page: log in, join a room, move with the arrow keys, chat, and watch every
// player of the room move from the server's `state` pushes. It uses the ticksock client the
// server serves at /ticksock.js (web/dist/ticksock.js, built from web/src/client.ts).
import { TicksockClient, Arena, ArenaErrors } from "/ticksock.js";

const $ = (id) => document.getElementById(id);
const canvas = $("arena");
const ctx = canvas.getContext("2d");
const params = new URLSearchParams(location.search);

const client = new TicksockClient(`ws://${location.host}/`, { maxAttempts: null });

/** Everything the page knows; exposed as `window.ticksockDemo` for the console and the e2e test. */
const demo = {
  client,
  name: null, // logged in as
  loginConn: null, // conn_id of the connection the login was made on
  me: null, // player id
  room: null, // room joined
  names: new Map(), // player id -> name, learned from presence and chat
  prev: null, // previous state push {tick, players: Map(id -> {x, y}), at}
  cur: null, // latest state push
  tickHz: null, // from the welcome
  pushIntervalMs: null, // moving average of the time between state pushes
  rttMs: null, // last round trip of an echo call
  rttAvgMs: null,
  dir: { dx: 0, dy: 0 },
  players() {
    return this.cur ? [...this.cur.players].map(([id, p]) => ({ id, x: p.x, y: p.y })) : [];
  },
};
window.ticksockDemo = demo;

// ----- connection status -----------------------------------------------------------------

function showStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

client.onEvent("connected", async ({ welcome, reconnected }) => {
  demo.tickHz = welcome.tick_hz;
  showStatus("open", `connected · ${welcome.tick_hz} Hz`);
  refreshRooms();
  measureRtt();
  if (reconnected && demo.name && demo.room) {
    // A server session belongs to one connection: log in and join again.
    try {
      await enter(demo.name, demo.room);
      log("sys", `reconnected to ${demo.room}`);
    } catch (e) {
      notice(e);
    }
  }
});
client.onEvent("disconnected", ({ code }) => {
  showStatus("waiting", `disconnected (${code})`);
  demo.dir = { dx: 0, dy: 0 };
  held.clear();
});
client.onEvent("reconnecting", ({ attempt, delayMs }) => {
  showStatus("waiting", `reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})`);
});
client.onEvent("closed", ({ error }) => showStatus("closed", error ? error.message : "closed"));

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
  // Log in once per connection (and again for another name).
  const conn = client.welcome?.conn_id ?? null;
  if (demo.name !== name || demo.loginConn !== conn || demo.me === null) {
    const { player_id } = await client.call("login", { name });
    demo.name = name;
    demo.me = player_id;
    demo.loginConn = conn;
    demo.names.set(player_id, name);
  }
  const joined = await client.call("join", { room });
  demo.room = joined.room;
  demo.prev = null;
  demo.cur = { tick: 0, players: toMap(joined.players), at: performance.now() };
  $("joined-as").textContent = `${name} in ${joined.room}`;
  localStorage.setItem("ticksock.name", name);
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

$("name").value = params.get("name") ?? localStorage.getItem("ticksock.name") ?? `guest-${Math.floor(Math.random() * 9000 + 1000)}`;
$("room").value = params.get("room") ?? "lobby";

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

let roomsSoon = null;
client.on("presence", ({ player_id, name, joined }) => {
  demo.names.set(player_id, name);
  log("sys", `${name} ${joined ? "joined" : "left"}`);
  // Player counts changed: refresh the room list soon (once for a burst of arrivals).
  roomsSoon ??= setTimeout(() => {
    roomsSoon = null;
    refreshRooms();
  }, 300);
});
client.on("chat", ({ player_id, name, text }) => {
  demo.names.set(player_id, name);
  log("chat", text, name);
});
client.on("whisper", ({ player_id, name, text }) => {
  demo.names.set(player_id, name);
  log("whisper", text, `${name} (whisper)`);
});

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
  $("count").textContent = demo.cur ? `${demo.cur.players.size} in ${demo.room ?? "–"}` : "–";
  const mine = demo.cur && demo.me !== null ? demo.cur.players.get(demo.me) : null;
  $("you").textContent = mine ? `#${demo.me} at ${mine.x}, ${mine.y}` : demo.me !== null ? `#${demo.me}` : "–";
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

function colorOf(id) {
  return `hsl(${(id * 137.508) % 360} 70% 62%)`;
}

/** Positions between the last two state pushes, one tick behind, for smooth motion. */
function positions(now) {
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

function draw(now) {
  fitCanvas();
  const full = canvas.width;
  // The arena sits inside a margin, so that players on its edge are drawn whole.
  const pad = Math.round(full * 0.025);
  const w = full - 2 * pad;
  const k = w / Arena.SIZE;
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
    ctx.fillStyle = "#8b95a5";
    ctx.font = `${Math.round(16 * k * 1.6)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.fillText(client.connected ? "pick a name and a room, then Join" : "connecting…", w / 2, w / 2);
    requestAnimationFrame(draw);
    return;
  }
  const r = Math.max(3, 9 * k);
  const font = Math.max(10, Math.round(12 * k * 1.4));
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  let mine = null;
  for (const p of positions(now)) {
    if (p.id === demo.me) {
      mine = p;
      continue;
    }
    ctx.fillStyle = colorOf(p.id);
    ctx.beginPath();
    ctx.arc(p.x * k, p.y * k, r, 0, Math.PI * 2);
    ctx.fill();
    const name = demo.names.get(p.id);
    if (name) {
      ctx.fillStyle = "#8b95a5";
      ctx.fillText(name, p.x * k, p.y * k - r - 4);
    }
  }
  if (mine) {
    ctx.fillStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(mine.x * k, mine.y * k, r * 1.5, 0, Math.PI * 2);
    ctx.fill();
    ctx.strokeStyle = "#6cc4ff";
    ctx.lineWidth = Math.max(2, 3 * k);
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.fillText(`${demo.name} (you)`, mine.x * k, mine.y * k - r * 1.5 - 6);
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
