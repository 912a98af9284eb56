// Compile-time checks of the client's types (`npm test` runs `tsc` on this file; it is never run).
import { TicksockClient, type ArenaRoutes, type ArenaPushes, type TicksockError, type AuthReply } from "../src/client.js";
import { ReplicaSync, Mirror, arenaPlayer, ARENA_REPLICA_KINDS, type ReplicaChange, type ArenaPlayer } from "../src/replica.js";
import { SnapshotInterpolator, type Point } from "../src/interpolation.js";

declare const arena: TicksockClient<ArenaRoutes, ArenaPushes>;

export async function typed(): Promise<void> {
  const logged: { player_id: number } = await arena.call("login", { name: "ann" });
  const rooms = await arena.call("rooms");
  const first: string | undefined = rooms[0]?.name;
  arena.call("move", { dx: 1, dy: 0 }, (err: TicksockError | null, moved?: { tick: number }) => void [err, moved]);
  arena.call("join", { room: "lobby" }, { timeout: 1000 }, () => {});
  arena.on("state", (s) => s.players.map((p) => p.x + p.y));
  arena.on("chat", (line) => line.text.toUpperCase());
  arena.onEvent("disconnected", ({ code, failedCalls }) => code + failedCalls);
  arena.onEvent("disconnected", ({ resuming }) => (resuming ? "resuming" : "lost"));
  arena.onEvent("connected", ({ resumed, welcome }) => (resumed ? welcome.epoch : welcome.conn_id));
  arena.onEvent("session_ended", ({ reason, code, failedCalls }) => [reason.toUpperCase(), code ?? 0, failedCalls]);
  arena.onEvent("redirected", ({ url, from, route, welcome }) => [url, from, route, welcome.conn_id]);
  const { tick: stamp, result: movedAt } = await arena.callStamped("move", { dx: 1, dy: 0 });
  const reconciled: number = (stamp ?? 0) + movedAt.tick;
  const where: string = arena.currentUrl;
  const reply: AuthReply = await arena.authenticate("t0k.en");
  const expiresIn: number | null = reply.expires_in_ms;
  arena.setToken(null);
  const heldToken: string | null = arena.token;
  arena.onEvent("token_refused", ({ code, expired, token, reason }) => [code, expired ? "expired" : "refused", token ?? "", reason]);
  const guest = await arena.call("guest", { device_token: null });
  arena.setToken(guest.token);
  const board = await arena.call("leaderboard", { by: "distance", limit: 10 });
  const top: number | undefined = board[0]?.value;
  const totals = await arena.call("flush_stats");
  arena.on("auth_expired", (body) => body === null);
  void [expiresIn, heldToken, guest.device_token, top, totals.distance + totals.messages + totals.games];
  // @ts-expect-error: a token is a string
  arena.setToken(7);
  // @ts-expect-error: not a stat the leaderboard ranks by
  await arena.call("leaderboard", { by: "kills", limit: 10 });
  const session: { conn_id: string; received: number } | null = arena.session;
  const version: 1 | 2 | null = arena.protocolVersion;
  // @ts-expect-error: not a reason a session ends for
  arena.onEvent("session_ended", ({ reason }) => reason === "timeout");
  // @ts-expect-error: login takes a name
  await arena.call("login", { nom: "ann" });
  // @ts-expect-error: a player's x is a number
  arena.on("state", (s) => s.players[0]!.x.toUpperCase());
  // @ts-expect-error: not an event
  arena.onEvent("connectd", () => {});
  // @ts-expect-error: the ticket is not shown: a redirect names the node's URL without it
  arena.onEvent("redirected", ({ ticket }) => ticket);
  void [logged, first, session, version, where, reconciled];

  // Replication (PROTOCOL.md 14): a sync on a typed client, its mirror's view, the arena's players.
  const sync = new ReplicaSync(arena, { kinds: ARENA_REPLICA_KINDS, ackIntervalMs: 100 });
  const stop: () => void = sync.onChange(({ tick, full, entered, changed, left }: ReplicaChange) => [tick, full, entered, changed, left]);
  sync.onError((err) => (err.kind === "unknown_baseline" ? err.baseline : err.tick));
  const players: (ArenaPlayer | null)[] = [...sync.mirror.view.values()].map(arenaPlayer);
  const digest: bigint = sync.mirror.digest();
  const held: bigint | null = sync.mirror.digest(7);
  const outcome: "accepted" | "stale" | "unknown" = await arena.call("replica_ack", 7);
  const check = await arena.call("replica_digest");
  const result = new Mirror().apply(new Uint8Array([0]));
  if (result.ok) void result.change.entered;
  else void result.error.kind;
  const frame = new SnapshotInterpolator({ tickMs: 33 }).sample(0);
  const p: Point | undefined = frame?.positions.get(1);
  // @ts-expect-error: not a kind of refusal
  sync.onError((err) => err.kind === "late");
  // @ts-expect-error: a tick is a number
  await arena.call("replica_ack", "7");
  void [stop, players, digest, held, outcome, check?.[1], p];

  // Untyped by default: any route, any data.
  const loose = new TicksockClient("ws://127.0.0.1:7777/", { autoConnect: false });
  const anything = await loose.call("whatever", { x: 1 });
  void anything;
}
