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
export const MAX_DELAY_GAPS = 4;

interface Snapshot {
  tick: number;
  /** How late it arrived on the timeline: `arrivedAt - tick * tickMs`. */
  lateness: number;
  positions: ReadonlyMap<number, Point>;
}

/** Positions between snapshots, for drawing. */
export class SnapshotInterpolator {
  private readonly tickMs: number;
  private readonly maxSnapshots: number;
  private readonly snapDistance: number;
  private snapshots: Snapshot[] = [];

  /** An interpolator with no snapshot yet; throws a `RangeError` for a `tickMs` that is not positive. */
  constructor(options: InterpolatorOptions) {
    if (!(options.tickMs > 0)) throw new RangeError(`tickMs must be positive, not ${options.tickMs}`);
    this.tickMs = options.tickMs;
    this.maxSnapshots = Math.max(2, options.maxSnapshots ?? 32);
    this.snapDistance = options.snapDistance ?? Infinity;
  }

  /** Snapshots kept. */
  get size(): number {
    return this.snapshots.length;
  }

  /** Forgets every snapshot (a new session: its ids and ticks mean other things). */
  reset(): void {
    this.snapshots = [];
  }

  /**
   * Adds the positions at `tick`, which arrived at `arrivedAt`. A tick not after the latest kept
   * is ignored (the view only moves forward).
   */
  push(tick: number, arrivedAt: number, positions: ReadonlyMap<number, Point>): void {
    const last = this.snapshots[this.snapshots.length - 1];
    if (last !== undefined && tick <= last.tick) return;
    this.snapshots.push({ tick, lateness: arrivedAt - tick * this.tickMs, positions });
    if (this.snapshots.length > this.maxSnapshots) this.snapshots.shift();
  }

  /** How far behind the estimated server tick frames are drawn, in ticks; null before any snapshot. */
  get delayTicks(): number | null {
    if (this.snapshots.length === 0) return null;
    let gap = Infinity;
    let earliest = Infinity;
    let latest = -Infinity;
    this.snapshots.forEach((s, i) => {
      if (i > 0) gap = Math.min(gap, s.tick - this.snapshots[i - 1]!.tick);
      earliest = Math.min(earliest, s.lateness);
      latest = Math.max(latest, s.lateness);
    });
    if (gap === Infinity) gap = 1;
    return Math.min(gap + (latest - earliest) / this.tickMs, gap * MAX_DELAY_GAPS);
  }

  /** The tick a frame at `now` draws; null before any snapshot. */
  renderTick(now: number): number | null {
    const delay = this.delayTicks;
    if (delay === null) return null;
    const origin = Math.min(...this.snapshots.map((s) => s.lateness));
    return (now - origin) / this.tickMs - delay;
  }

  /** What a frame at `now` draws; null before any snapshot. */
  sample(now: number): InterpolatedFrame | null {
    const tick = this.renderTick(now);
    if (tick === null) return null;
    const snaps = this.snapshots;
    let i = snaps.length - 1;
    while (i >= 0 && snaps[i]!.tick > tick) i--;
    if (i < 0 || i === snaps.length - 1) {
      const held = snaps[Math.max(i, 0)]!;
      return { tick, positions: new Map(held.positions) };
    }
    const a = snaps[i]!;
    const b = snaps[i + 1]!;
    const alpha = (tick - a.tick) / (b.tick - a.tick);
    const positions = new Map<number, Point>();
    for (const [id, p] of a.positions) {
      const q = b.positions.get(id);
      const jump = q === undefined || Math.abs(q.x - p.x) > this.snapDistance || Math.abs(q.y - p.y) > this.snapDistance;
      positions.set(id, jump ? p : { x: p.x + (q.x - p.x) * alpha, y: p.y + (q.y - p.y) * alpha });
    }
    return { tick, positions };
  }
}
