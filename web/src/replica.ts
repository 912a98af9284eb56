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

import type { TicksockClient, Timers } from "./client.js";
import { BincodeError, BincodeReader, BincodeWriter, decodeAs, encodeAs, type BincodeType } from "./bincode.js";

/** The push topic of updates (14.2). */
export const REPLICA_TOPIC = "replica";
/** The route that acknowledges an update's tick (14.4): request the tick, reply an `AckOutcome`. */
export const REPLICA_ACK_ROUTE = "replica_ack";
/** Views a `Mirror` keeps for the server to use as baselines, by default: more than the server holds (32). */
export const MAX_HELD_VIEWS = 64;
/** The least time between two acknowledgements, by default (14.4). */
export const ACK_INTERVAL_MS = 100;

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
const ACK_OUTCOMES: readonly AckOutcome[] = ["accepted", "stale", "unknown"];

/** The field types of one kind of entity, by field index. */
export type KindFields = { readonly [index: number]: BincodeType | undefined };
/** The field types of a game's kinds of entity, by kind (what `Mirror` needs to read JSON updates). */
export type ReplicaKinds = { readonly [kind: number]: KindFields | undefined };

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
export class ReplicaError extends Error {
  override name = "ReplicaError";
  constructor(
    /** `decode`: not an update (or a field not of its type); `unknown_baseline`: its baseline view is not held; `out_of_order`: not newer than the latest. */
    readonly kind: ReplicaErrorKind,
    message: string,
    /** The update's tick, when it could be read. */
    readonly tick: number | null = null,
    /** Its baseline, for `unknown_baseline`. */
    readonly baseline: number | null = null,
  ) {
    super(message);
  }
}

/** The outcome of `Mirror.apply`. */
export type ApplyResult = { ok: true; change: ReplicaChange } | { ok: false; error: ReplicaError };

/** A `Mirror`'s settings. */
export interface MirrorOptions {
  /** Views kept for the server to use as baselines. Default `MAX_HELD_VIEWS` (64). */
  maxViews?: number;
  /** The least time between two acknowledgements, in ms. Default `ACK_INTERVAL_MS` (100). */
  ackIntervalMs?: number;
  /** The field types of each kind of entity: needed for JSON updates (see "Field values are bytes"). Default none. */
  kinds?: ReplicaKinds;
}

// ---------------------------------------------------------------------------------------------
// Reading updates

/** Reads the binary form of an update (14.2); throws a `BincodeError`. */
export function decodeReplicaUpdate(bytes: Uint8Array): ReplicaUpdate {
  const r = new BincodeReader(bytes);
  const tick = r.u64Number("tick");
  const baseline = r.bool() ? r.u64Number("baseline") : null;
  // An entity takes at least 3 bytes (id, kind, field count); an id at least 1.
  const entities = (what: string): EntityUpdate[] => {
    const n = r.length(what, 3);
    const out: EntityUpdate[] = [];
    for (let i = 0; i < n; i++) {
      const id = r.u32();
      const kind = r.u16();
      const count = r.length("fields", 2);
      const fields: FieldUpdate[] = [];
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
  const left: number[] = [];
  for (let i = 0; i < leftCount; i++) left.push(r.u32());
  r.end("the update");
  return { tick, baseline, entered, changed, left };
}

/**
 * Reads the JSON form of an update (14.3), writing each field's value as bincode by the type
 * `kinds` declares for it; throws a `BincodeError` (not an update, an undeclared kind or field, a
 * value not of its type).
 */
export function replicaUpdateFromJson(body: unknown, kinds: ReplicaKinds): ReplicaUpdate {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BincodeError("an update is an object");
  const u = body as Record<string, unknown>;
  const tick = jsonCount(u.tick, "tick");
  const baseline = u.baseline === null ? null : jsonCount(u.baseline, "baseline");
  const entities = (what: string): EntityUpdate[] =>
    jsonList(u[what], what).map((e, i) => {
      const where = `${what}[${i}]`;
      if (typeof e !== "object" || e === null || Array.isArray(e)) throw new BincodeError(`${where} is not an entity object`);
      const { id, kind, fields } = e as Record<string, unknown>;
      const entity = { id: jsonInt(id, 0xffff_ffff, `${where}.id`), kind: jsonInt(kind, 0xffff, `${where}.kind`) };
      const types = kinds[entity.kind];
      return {
        ...entity,
        fields: jsonList(fields, `${where}.fields`).map((f, n) => {
          const at = `${where}.fields[${n}]`;
          if (!Array.isArray(f) || f.length !== 2) throw new BincodeError(`${at} is not [index, value]`);
          const index = jsonInt(f[0], 0xff, `${at} index`);
          if (types === undefined) throw new BincodeError(`${at}: no field types for kind ${entity.kind} (MirrorOptions.kinds)`);
          const type = types[index];
          if (type === undefined) throw new BincodeError(`${at}: kind ${entity.kind} has no field ${index}`);
          try {
            return { index, value: encodeAs(type, f[1]) };
          } catch (e) {
            throw new BincodeError(`${at}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }),
      };
    });
  const entered = entities("entered");
  const changed = entities("changed");
  const left = jsonList(u.left, "left").map((id, i) => jsonInt(id, 0xffff_ffff, `left[${i}]`));
  return { tick, baseline, entered, changed, left };
}

function jsonCount(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new BincodeError(`${what}: got ${String(v)}, not a tick`);
  return v;
}

function jsonInt(v: unknown, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw new BincodeError(`${what}: got ${String(v)}, not an integer in 0..=${max}`);
  return v;
}

function jsonList(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new BincodeError(`${what} is not a list`);
  return v;
}

/** Reads the binary form of an `AckOutcome` (a unit enum: its variant index, a u32); throws a `BincodeError`. */
export function decodeAckOutcome(bytes: Uint8Array): AckOutcome {
  const r = new BincodeReader(bytes);
  const variant = r.u32();
  r.end("the outcome");
  const outcome = ACK_OUTCOMES[variant];
  if (outcome === undefined) throw new BincodeError(`no AckOutcome of index ${variant}`);
  return outcome;
}

/** Field `index` of `entity` read as `type` (its JSON form); undefined if not set; throws a `BincodeError` if it is not one. */
export function decodeField(entity: MirrorEntity, index: number, type: BincodeType): unknown {
  const bytes = entity.fields[index];
  return bytes === undefined ? undefined : decodeAs(type, bytes);
}

// ---------------------------------------------------------------------------------------------
// The mirror

/** A view kept, with its tick. */
interface HeldView {
  tick: number;
  entities: Map<number, MirrorEntity>;
}

const EMPTY_VIEW: ReplicaView = new Map();

/** The reconstructed view of one client, and the views it may be sent deltas from. Sans-I/O: `now` is passed in. */
export class Mirror {
  /** Views kept, at most. */
  readonly maxViews: number;
  /** The least time between two acknowledgements, in ms. */
  readonly ackIntervalMs: number;
  private readonly kinds: ReplicaKinds;
  /** Oldest first; the last is the current view. */
  private views: HeldView[] = [];
  /** The tick to acknowledge next, once due. */
  private ackPending: number | null = null;
  /** Whether that tick's update was a full snapshot (acknowledged at once). */
  private ackNow = false;
  private lastAckAt: number | null = null;

  /** An empty mirror. */
  constructor(options: MirrorOptions = {}) {
    this.maxViews = Math.max(1, options.maxViews ?? MAX_HELD_VIEWS);
    this.ackIntervalMs = options.ackIntervalMs ?? ACK_INTERVAL_MS;
    this.kinds = options.kinds ?? {};
  }

  /** The current view (empty before the first update). */
  get view(): ReplicaView {
    return this.views[this.views.length - 1]?.entities ?? EMPTY_VIEW;
  }

  /** The tick of the current view; null before the first update. */
  get tick(): number | null {
    return this.views[this.views.length - 1]?.tick ?? null;
  }

  /** The ticks of the views held, oldest first. */
  get heldTicks(): number[] {
    return this.views.map((v) => v.tick);
  }

  /** The held view of `tick`, or null. */
  viewAt(tick: number): ReplicaView | null {
    return this.views.find((v) => v.tick === tick)?.entities ?? null;
  }

  /** Forgets every view and any acknowledgement due: a new server session starts with a full snapshot. */
  reset(): void {
    this.views = [];
    this.ackPending = null;
    this.ackNow = false;
  }

  /**
   * Applies the body of a `replica` push: its binary form (a `Uint8Array`) or its JSON form (the
   * parsed object). Never throws; an update it refuses changes nothing.
   */
  apply(body: unknown): ApplyResult {
    let update: ReplicaUpdate;
    try {
      update = body instanceof Uint8Array ? decodeReplicaUpdate(body) : replicaUpdateFromJson(body, this.kinds);
      if (body instanceof Uint8Array) this.checkFields(update);
    } catch (e) {
      const tick = typeof (body as { tick?: unknown } | null)?.tick === "number" ? (body as { tick: number }).tick : null;
      return { ok: false, error: new ReplicaError("decode", `not a replica update: ${e instanceof Error ? e.message : String(e)}`, tick) };
    }
    const latest = this.tick;
    if (latest !== null && update.tick <= latest) {
      return { ok: false, error: new ReplicaError("out_of_order", `update of tick ${update.tick} after tick ${latest}`, update.tick) };
    }
    let base: ReplicaView = EMPTY_VIEW;
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
    for (const id of update.left) view.delete(id);
    for (const e of update.entered) view.set(e.id, { kind: e.kind, fields: withFields([], e.fields) });
    for (const e of update.changed) view.set(e.id, { kind: e.kind, fields: withFields(view.get(e.id)?.fields ?? [], e.fields) });

    const before = this.view;
    const entered = [...view.keys()].filter((id) => !before.has(id));
    const left = [...before.keys()].filter((id) => !view.has(id));
    const full = update.baseline === null;
    if (!full) this.views = this.views.filter((v) => v.tick >= update.baseline!);
    this.views.push({ tick: update.tick, entities: view });
    if (this.views.length > this.maxViews) this.views.splice(0, this.views.length - this.maxViews);
    this.ackPending = update.tick;
    this.ackNow ||= full;
    return { ok: true, change: { tick: update.tick, full, entered, changed: update.changed.map((e) => e.id), left } };
  }

  /** Fields of a declared kind in a binary update must read as their types (JSON ones were written so). */
  private checkFields(update: ReplicaUpdate): void {
    for (const e of [...update.entered, ...update.changed]) {
      const types = this.kinds[e.kind];
      if (types === undefined) continue;
      for (const f of e.fields) {
        const type = types[f.index];
        if (type === undefined) throw new BincodeError(`entity ${e.id}: kind ${e.kind} has no field ${f.index}`);
        try {
          decodeAs(type, f.value);
        } catch (err) {
          throw new BincodeError(`entity ${e.id} field ${f.index}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }

  /** The tick to acknowledge now, if one is due (send it on `replica_ack`); else null. */
  pollAck(now: number): number | null {
    const due = this.ackDueAt();
    if (due === null || now < due) return null;
    const tick = this.ackPending;
    this.ackPending = null;
    this.ackNow = false;
    this.lastAckAt = now;
    return tick;
  }

  /** When the pending acknowledgement is due (a time `pollAck` takes it at); null if none is pending. */
  ackDueAt(): number | null {
    if (this.ackPending === null) return null;
    if (this.ackNow || this.lastAckAt === null) return -Infinity;
    return this.lastAckAt + this.ackIntervalMs;
  }

  /**
   * The digest of the current view (14.5), or of the held view of `tick` (null if not held): to
   * compare with the server's. A u64.
   */
  digest(): bigint;
  digest(tick: number): bigint | null;
  digest(tick?: number): bigint | null {
    const view = tick === undefined ? this.view : this.viewAt(tick);
    return view === null ? null : viewDigest(view);
  }
}

function withFields(old: readonly (Uint8Array | undefined)[], updates: readonly FieldUpdate[]): (Uint8Array | undefined)[] {
  const fields = old.slice();
  for (const f of updates) {
    while (fields.length < f.index) fields.push(undefined);
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
export function viewDigest(view: ReplicaView): bigint {
  let hash = FNV_OFFSET;
  const write = (bytes: Uint8Array): void => {
    for (const b of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(b)) * FNV_PRIME);
  };
  const head = new Uint8Array(6);
  const headView = new DataView(head.buffer);
  const fieldHead = new Uint8Array(5);
  const fieldView = new DataView(fieldHead.buffer);
  for (const id of [...view.keys()].sort((a, b) => a - b)) {
    const entity = view.get(id)!;
    headView.setUint32(0, id, true);
    headView.setUint16(4, entity.kind, true);
    write(head);
    entity.fields.forEach((value, index) => {
      if (value === undefined) return;
      fieldView.setUint8(0, index);
      fieldView.setUint32(1, value.length, true);
      write(fieldHead);
      write(value);
    });
  }
  return hash;
}

// ---------------------------------------------------------------------------------------------
// A client's replication

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

const systemTimers: Timers = {
  now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
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
  /** The mirror it feeds: its `view` is the reconstructed state. */
  readonly mirror: Mirror;
  /** Counters, for display and tests. */
  readonly stats: ReplicaSyncStats = { updates: 0, fullSnapshots: 0, refused: 0, acks: 0, accepted: 0, stale: 0, unknown: 0, failed: 0, resets: 0 };
  private readonly timers: Timers;
  private readonly ackTimeoutMs: number;
  private readonly reportListenerError: (err: unknown) => void;
  private ackTimer: unknown = null;
  private readonly changeListeners = new Set<(change: ReplicaChange) => void>();
  private readonly errorListeners = new Set<(error: ReplicaError) => void>();
  private readonly unsubscribe: (() => void)[];

  /** Starts listening to `client`'s `replica` pushes and session events. */
  constructor(
    private readonly client: TicksockClient<any, any>,
    options: ReplicaSyncOptions = {},
  ) {
    this.mirror = new Mirror(options);
    this.timers = options.timers ?? systemTimers;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.reportListenerError =
      options.onListenerError ??
      ((err) => {
        const report = (globalThis as any).reportError;
        if (typeof report === "function") report(err);
        else console.error("ticksock: a replica listener threw", err);
      });
    this.unsubscribe = [
      client.on(REPLICA_TOPIC, (body: unknown) => this.onUpdate(body)),
      client.onEvent("connected", ({ resumed }) => (resumed ? this.pumpAck() : this.reset())),
      client.onEvent("redirected", () => this.reset()),
    ];
  }

  /** Listen to applied updates. Returns a function that stops listening. */
  onChange(listener: (change: ReplicaChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Listen to refused updates. Returns a function that stops listening. */
  onError(listener: (error: ReplicaError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Stops listening to the client; the mirror keeps its views. */
  close(): void {
    for (const off of this.unsubscribe) off();
    this.unsubscribe.length = 0;
    this.clearAckTimer();
  }

  private onUpdate(body: unknown): void {
    const result = this.mirror.apply(body);
    if (!result.ok) {
      this.stats.refused++;
      for (const listener of [...this.errorListeners]) this.guard(() => listener(result.error));
      return;
    }
    this.stats.updates++;
    if (result.change.full) this.stats.fullSnapshots++;
    this.pumpAck();
    for (const listener of [...this.changeListeners]) this.guard(() => listener(result.change));
  }

  /** Runs a listener; what it throws is reported (`onListenerError`), and the others still run. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.reportListenerError(e);
    }
  }

  private reset(): void {
    if (this.mirror.tick !== null) this.stats.resets++;
    this.mirror.reset();
    this.clearAckTimer();
  }

  /** Sends the acknowledgement if it is due; else has the timer come back when it is. */
  private pumpAck(): void {
    // Offline, a call would wait in the queue and might reach another session: wait for the link.
    if (!this.client.connected) return;
    const now = this.timers.now();
    const tick = this.mirror.pollAck(now);
    if (tick !== null) this.sendAck(tick);
    const due = this.mirror.ackDueAt();
    if (due !== null && this.ackTimer === null) {
      this.ackTimer = this.timers.setTimeout(() => {
        this.ackTimer = null;
        this.pumpAck();
      }, Math.max(0, due - now));
    }
  }

  private sendAck(tick: number): void {
    this.stats.acks++;
    this.client.call(REPLICA_ACK_ROUTE, tick, { timeout: this.ackTimeoutMs }).then(
      (outcome: unknown) => {
        // An outcome this client does not know is counted as the server not knowing the tick.
        if (outcome === "accepted" || outcome === "stale") this.stats[outcome]++;
        else this.stats.unknown++;
      },
      () => this.stats.failed++,
    );
  }

  private clearAckTimer(): void {
    if (this.ackTimer !== null) this.timers.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The arena's entities (PROTOCOL.md 8.9)

/** The arena's replicated kinds and field indexes. */
export const ArenaReplica = { KIND_PLAYER: 1, FIELD_POSITION: 0, FIELD_PLAYER_ID: 1, FIELD_NAME: 2 } as const;

const PLAYER_FIELDS = {
  [ArenaReplica.FIELD_POSITION]: { tuple: ["i32", "i32"] },
  [ArenaReplica.FIELD_PLAYER_ID]: "u32",
  [ArenaReplica.FIELD_NAME]: "string",
} as const satisfies KindFields;

/** The field types of the arena's kinds: a player's position `(i32, i32)`, player id `u32`, name `string`. */
export const ARENA_REPLICA_KINDS: ReplicaKinds = { [ArenaReplica.KIND_PLAYER]: PLAYER_FIELDS };

/** An arena player as the mirror holds it. */
export interface ArenaPlayer {
  x: number;
  y: number;
  /** As in `PlayerState.id` and `ChatLine.player_id`. */
  playerId: number;
  name: string;
}

/** `entity` read as an arena player; null if it is another kind, or a field is missing or not of its type. */
export function arenaPlayer(entity: MirrorEntity): ArenaPlayer | null {
  if (entity.kind !== ArenaReplica.KIND_PLAYER) return null;
  try {
    const position = decodeField(entity, ArenaReplica.FIELD_POSITION, PLAYER_FIELDS[ArenaReplica.FIELD_POSITION]) as [number, number] | undefined;
    const playerId = decodeField(entity, ArenaReplica.FIELD_PLAYER_ID, PLAYER_FIELDS[ArenaReplica.FIELD_PLAYER_ID]) as number | undefined;
    const name = decodeField(entity, ArenaReplica.FIELD_NAME, PLAYER_FIELDS[ArenaReplica.FIELD_NAME]) as string | undefined;
    if (position === undefined || playerId === undefined || name === undefined) return null;
    return { x: position[0], y: position[1], playerId, name };
  } catch {
    return null;
  }
}

/** Writes `tick` as the binary body of a `replica_ack` request (a u64). */
export function encodeReplicaAck(tick: number): Uint8Array {
  return new BincodeWriter().u64(tick).finish();
}
