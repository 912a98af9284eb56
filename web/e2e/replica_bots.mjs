// Players for the replication e2e test: a Node process (forked, with an IPC channel) that runs
// the TS client (dist/ticksock.js) for each bot, with a ReplicaSync that rebuilds the bot's view
// and acknowledges it, as the page does. Each bot logs in, joins the room, and walks to its
// target, steering by its own position in its view; a bot with `patrol` then walks to and fro
// along x, `patrol` units either side of its target, so that the others see it move.
//
// Messages from the parent:  {type: "start", url, room, bots: [{name, target: {x, y}, patrol}]}
//                            {type: "stop"}
// Messages to the parent:    {type: "joined", name, playerId}
//                            {type: "arrived", name, playerId, x, y}
//                            {type: "error", message}
//
// Node 20 has a WebSocket only behind --experimental-websocket: the parent forks this with it.
import { TicksockClient, ReplicaSync, ARENA_REPLICA_KINDS, arenaPlayer, Arena } from "../dist/ticksock.js";

/** How close to its target a bot stops: its view lags by an update or two, so it overshoots by a few steps. */
const NEAR_ENOUGH = 25;
/** How often a bot looks at its view and steers. */
const STEER_EVERY_MS = 30;

const bots = [];

process.on("message", (msg) => {
  if (msg.type === "start") start(msg).catch((e) => send({ type: "error", message: String(e?.stack ?? e) }));
  if (msg.type === "stop") stop();
});
process.on("disconnect", stop);

function send(msg) {
  if (process.connected) process.send(msg);
}

async function start({ url, room, bots: specs }) {
  await Promise.all(specs.map((spec) => startBot(url, room, spec)));
}

async function startBot(url, room, { name, target, patrol = 0 }) {
  const client = new TicksockClient(url, { maxAttempts: 3 });
  const sync = new ReplicaSync(client, { kinds: ARENA_REPLICA_KINDS });
  sync.onError((err) => send({ type: "error", message: `${name}: replica update refused: ${err.message}` }));
  const bot = { name, client, sync, timer: null };
  bots.push(bot);
  const { player_id: playerId } = await client.call("login", { name });
  const joined = await client.call("join", { room });
  send({ type: "joined", name, playerId });
  const start = joined.players.find((p) => p.id === playerId);
  let dir = { dx: 0, dy: 0 };
  let goal = { ...target };
  let arrived = false;
  bot.timer = setInterval(() => {
    const own = [...sync.mirror.view.values()].map(arenaPlayer).find((p) => p?.playerId === playerId) ?? start;
    let next = steer(own, goal);
    if (next.dx === 0 && next.dy === 0) {
      if (!arrived) {
        arrived = true;
        send({ type: "arrived", name, playerId, x: own.x, y: own.y });
      }
      // A patrol turns round at each end.
      if (patrol > 0) {
        goal = { x: goal.x <= target.x ? Math.min(target.x + patrol, Arena.SIZE - 1) : Math.max(target.x - patrol, 0), y: target.y };
        next = steer(own, goal);
      }
    }
    if (next.dx !== dir.dx || next.dy !== dir.dy) {
      dir = next;
      client.call("move", dir).catch((e) => send({ type: "error", message: `${name}: move: ${e.message}` }));
    }
  }, STEER_EVERY_MS);
}

/** The direction from `own` towards `goal`: 0 along an axis where it is near enough. */
function steer(own, goal) {
  const axis = (from, to) => (Math.abs(to - from) < NEAR_ENOUGH ? 0 : Math.sign(to - from));
  return { dx: axis(own.x, goal.x), dy: axis(own.y, goal.y) };
}

function stop() {
  for (const bot of bots.splice(0)) {
    clearInterval(bot.timer);
    bot.sync.close();
    bot.client.close();
  }
  if (process.connected) process.disconnect();
}
