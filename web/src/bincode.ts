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
  override name = "BincodeError";
}

/** Varint first bytes (3.1): 251 (`fb`) is a u16 next, 252 a u32, 253 a u64. */
const U16_MARK = 251;
const U32_MARK = 252;
const U64_MARK = 253;
const TWO_32 = 0x1_0000_0000;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** `n` as a number when it is one exactly, else as it is. */
function narrow(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Reads bincode values from the start of `bytes`, in turn. */
export class BincodeReader {
  private pos = 0;
  private readonly data: DataView;

  /** A reader of `bytes`, from their start. */
  constructor(readonly bytes: Uint8Array) {
    this.data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.pos;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws unless every byte was read: a body is one value, with nothing after it. */
  end(what = "the value"): void {
    if (this.remaining > 0) throw new BincodeError(`${this.remaining} bytes after ${what}`);
  }

  private need(n: number, what: string): number {
    if (this.remaining < n) throw new BincodeError(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** A u8: one raw byte. */
  u8(): number {
    return this.bytes[this.need(1, "u8")]!;
  }

  /** An i8: one raw byte, two's complement. */
  i8(): number {
    return this.data.getInt8(this.need(1, "i8"));
  }

  /** A bool: `00` or `01`, any other byte an error. */
  bool(): boolean {
    const b = this.bytes[this.need(1, "bool")]!;
    if (b > 1) throw new BincodeError(`bool: byte ${b} at offset ${this.pos - 1} is neither 0 nor 1`);
    return b === 1;
  }

  /** A varint whose first byte is at most `maxFirst` (the field's width, 3.1). */
  private varint(maxFirst: number, what: string): bigint {
    const at = this.pos;
    const b = this.bytes[this.need(1, what)]!;
    if (b < U16_MARK) return BigInt(b);
    if (b > maxFirst) throw new BincodeError(`${what}: first byte 0x${b.toString(16)} at offset ${at} is not one of its width`);
    if (b === U16_MARK) return BigInt(this.data.getUint16(this.need(2, what), true));
    if (b === U32_MARK) return BigInt(this.data.getUint32(this.need(4, what), true));
    return this.data.getBigUint64(this.need(8, what), true);
  }

  /** A u16: a varint of at most `fb` and 2 bytes. */
  u16(): number {
    return Number(this.varint(U16_MARK, "u16"));
  }

  /** A u32: a varint of at most `fc` and 4 bytes. */
  u32(): number {
    return Number(this.varint(U32_MARK, "u32"));
  }

  /** A u64: a number below 2^53, else a bigint. */
  u64(): number | bigint {
    return narrow(this.varint(U64_MARK, "u64"));
  }

  /** A u64 that must be a number (a tick, a count): throws above 2^53. */
  u64Number(what = "u64"): number {
    const v = this.varint(U64_MARK, what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BincodeError(`${what}: ${v} is beyond 2^53`);
    return Number(v);
  }

  /** An i16: a zigzag varint of a u16's width. */
  i16(): number {
    return Number(unzigzag(this.varint(U16_MARK, "i16")));
  }

  /** An i32: a zigzag varint of a u32's width. */
  i32(): number {
    return Number(unzigzag(this.varint(U32_MARK, "i32")));
  }

  /** An i64: a number within ±2^53, else a bigint. */
  i64(): number | bigint {
    return narrow(unzigzag(this.varint(U64_MARK, "i64")));
  }

  /** An f32: 4 bytes LE. */
  f32(): number {
    return this.data.getFloat32(this.need(4, "f32"), true);
  }

  /** An f64: 8 bytes LE. */
  f64(): number {
    return this.data.getFloat64(this.need(8, "f64"), true);
  }

  /**
   * A length (a u64), of items at least `itemBytes` bytes each: more than the bytes left could
   * hold is an error before anything is reserved for them.
   */
  length(what: string, itemBytes = 1): number {
    const at = this.pos;
    const n = this.varint(U64_MARK, `${what} length`);
    const most = itemBytes > 0 ? Math.floor(this.remaining / itemBytes) : MAX_EMPTY_ITEMS;
    if (n > BigInt(most)) throw new BincodeError(`${what}: length ${n} at offset ${at} is more than the ${this.remaining} bytes left hold`);
    return Number(n);
  }

  /** A byte sequence: its length, then its bytes (a view into the input, not a copy). */
  byteSeq(what = "bytes"): Uint8Array {
    const n = this.length(what);
    const at = this.need(n, what);
    return this.bytes.subarray(at, at + n);
  }

  /** A string: its length in bytes, then that much UTF-8 (invalid UTF-8 is an error). */
  string(): string {
    const at = this.pos;
    const bytes = this.byteSeq("string");
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new BincodeError(`string at offset ${at} is not UTF-8`);
    }
  }
}

/**
 * The most items of zero bytes each (`()`, an empty tuple) a list may claim: they take no input
 * to bound them, so this does (the server's decoder has a 1 MiB budget, 3.7).
 */
const MAX_EMPTY_ITEMS = 1 << 20;

function unzigzag(u: bigint): bigint {
  return u & 1n ? -((u + 1n) >> 1n) : u >> 1n;
}

function zigzag(n: bigint): bigint {
  return n >= 0n ? n << 1n : ((-n - 1n) << 1n) | 1n;
}

/** Writes bincode values, in turn; `finish` gives the bytes. */
export class BincodeWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  private view(at: number, n: number): DataView {
    return new DataView(this.buf.buffer, at, n);
  }

  /** The bytes written (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** `bytes` as they are (no length). */
  raw(bytes: Uint8Array): this {
    this.buf.set(bytes, this.room(bytes.length));
    return this;
  }

  /** A u8: one raw byte. */
  u8(v: number): this {
    this.buf[this.room(1)] = checkedInt(v, 0, 0xff, "u8");
    return this;
  }

  /** An i8: one raw byte, two's complement. */
  i8(v: number): this {
    this.view(this.room(1), 1).setInt8(0, checkedInt(v, -0x80, 0x7f, "i8"));
    return this;
  }

  /** A bool: `00` or `01`. */
  bool(v: boolean): this {
    this.buf[this.room(1)] = v ? 1 : 0;
    return this;
  }

  /** A varint in its shortest form (3.1). */
  private varint(v: bigint): this {
    if (v < BigInt(U16_MARK)) {
      this.buf[this.room(1)] = Number(v);
    } else if (v <= 0xffffn) {
      this.buf[this.room(1)] = U16_MARK;
      this.view(this.room(2), 2).setUint16(0, Number(v), true);
    } else if (v < BigInt(TWO_32)) {
      this.buf[this.room(1)] = U32_MARK;
      this.view(this.room(4), 4).setUint32(0, Number(v), true);
    } else {
      this.buf[this.room(1)] = U64_MARK;
      this.view(this.room(8), 8).setBigUint64(0, v, true);
    }
    return this;
  }

  /** A u16 varint. */
  u16(v: number): this {
    return this.varint(BigInt(checkedInt(v, 0, 0xffff, "u16")));
  }

  /** A u32 varint. */
  u32(v: number): this {
    return this.varint(BigInt(checkedInt(v, 0, TWO_32 - 1, "u32")));
  }

  /** A u64 varint (a number must be below 2^53: a larger one may have been rounded). */
  u64(v: number | bigint): this {
    return this.varint(checkedBig(v, 0n, U64_MAX, "u64"));
  }

  /** An i16 zigzag varint. */
  i16(v: number): this {
    return this.varint(zigzag(BigInt(checkedInt(v, -0x8000, 0x7fff, "i16"))));
  }

  /** An i32 zigzag varint. */
  i32(v: number): this {
    return this.varint(zigzag(BigInt(checkedInt(v, -0x8000_0000, 0x7fff_ffff, "i32"))));
  }

  /** An i64 zigzag varint (a number must be within ±2^53). */
  i64(v: number | bigint): this {
    return this.varint(zigzag(checkedBig(v, I64_MIN, I64_MAX, "i64")));
  }

  /** An f32: 4 bytes LE (the number rounded to single precision). */
  f32(v: number): this {
    this.view(this.room(4), 4).setFloat32(0, checkedNumber(v, "f32"), true);
    return this;
  }

  /** An f64: 8 bytes LE. */
  f64(v: number): this {
    this.view(this.room(8), 8).setFloat64(0, checkedNumber(v, "f64"), true);
    return this;
  }

  /** A length (of a string, byte sequence or list). */
  length(n: number): this {
    return this.varint(BigInt(n));
  }

  /** A byte sequence: its length, then its bytes. */
  byteSeq(bytes: Uint8Array): this {
    return this.length(bytes.length).raw(bytes);
  }

  /** A string: its UTF-8 length, then its UTF-8. */
  string(s: string): this {
    if (typeof s !== "string") throw new BincodeError(`string: got ${describe(s)}`);
    return this.byteSeq(utf8Encoder.encode(s));
  }
}

function checkedInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new BincodeError(`${what}: got ${describe(v)}, not an integer in ${min}..=${max}`);
  }
  return v;
}

function checkedBig(v: unknown, min: bigint, max: bigint, what: string): bigint {
  // A number above 2^53 may be a rounded value (JSON.parse rounds silently): refused.
  const n = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : null;
  if (n === null || n < min || n > max) {
    throw new BincodeError(`${what}: got ${describe(v)}, not an exact integer in ${min}..=${max} (a number must be below 2^53)`);
  }
  return n;
}

function checkedNumber(v: unknown, what: string): number {
  if (typeof v !== "number") throw new BincodeError(`${what}: got ${describe(v)}, not a number`);
  return v;
}

/** A short description of a value for an error message. */
function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (typeof v === "bigint") return `${v}n`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Values by type: a JSON value (as serde_json writes the Rust type) to bincode and back

/**
 * A Rust type, for writing its JSON value (serde_json's form: a tuple or a list is an array, a
 * struct an object with its field names, `()` and `None` are `null`) as bincode, and reading
 * bincode back to that JSON value. Enums are not described: a game that replicates one declares
 * its bincode form (a `u32` variant index, then its fields) as a tuple, and sends that.
 */
export type BincodeType =
  | "u8"
  | "u16"
  | "u32"
  | "u64"
  | "i8"
  | "i16"
  | "i32"
  | "i64"
  | "bool"
  | "f32"
  | "f64"
  | "string"
  | "unit"
  | { readonly tuple: readonly BincodeType[] }
  | { readonly option: BincodeType }
  | { readonly list: BincodeType }
  | { readonly struct: readonly (readonly [name: string, type: BincodeType])[] };

/** `value` (its JSON form) written as bincode of `type`; throws a `BincodeError` if it is not one. */
export function encodeAs(type: BincodeType, value: unknown): Uint8Array {
  const w = new BincodeWriter();
  writeValue(w, type, value, "");
  return w.finish();
}

/** `bytes`, the bincode of one `type` (every byte of it), read back as its JSON form; throws a `BincodeError`. */
export function decodeAs(type: BincodeType, bytes: Uint8Array): unknown {
  const r = new BincodeReader(bytes);
  const value = readValue(r, type);
  r.end();
  return value;
}

function writeValue(w: BincodeWriter, type: BincodeType, v: unknown, path: string): void {
  try {
    writeTyped(w, type, v, path);
  } catch (e) {
    // Said once, where it happened: the innermost path is the useful one.
    if (e instanceof BincodeError && !e.message.startsWith("at ") && path !== "") throw new BincodeError(`at ${path}: ${e.message}`);
    throw e;
  }
}

function writeTyped(w: BincodeWriter, type: BincodeType, v: unknown, path: string): void {
  switch (type) {
    case "u8":
      w.u8(v as number);
      return;
    case "u16":
      w.u16(v as number);
      return;
    case "u32":
      w.u32(v as number);
      return;
    case "u64":
      w.u64(v as number);
      return;
    case "i8":
      w.i8(v as number);
      return;
    case "i16":
      w.i16(v as number);
      return;
    case "i32":
      w.i32(v as number);
      return;
    case "i64":
      w.i64(v as number);
      return;
    case "f32":
      w.f32(v as number);
      return;
    case "f64":
      w.f64(v as number);
      return;
    case "bool":
      if (typeof v !== "boolean") throw new BincodeError(`bool: got ${describe(v)}`);
      w.bool(v);
      return;
    case "string":
      w.string(v as string);
      return;
    case "unit":
      if (v !== null) throw new BincodeError(`(): got ${describe(v)}, not null`);
      return;
  }
  if ("tuple" in type) {
    if (!Array.isArray(v) || v.length !== type.tuple.length) throw new BincodeError(`tuple of ${type.tuple.length}: got ${describe(v)}`);
    type.tuple.forEach((t, i) => writeValue(w, t, v[i], `${path}[${i}]`));
  } else if ("option" in type) {
    w.bool(v !== null);
    if (v !== null) writeValue(w, type.option, v, `${path}?`);
  } else if ("list" in type) {
    if (!Array.isArray(v)) throw new BincodeError(`list: got ${describe(v)}`);
    w.length(v.length);
    v.forEach((item, i) => writeValue(w, type.list, item, `${path}[${i}]`));
  } else {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new BincodeError(`struct: got ${describe(v)}`);
    for (const [name, t] of type.struct) {
      if (!(name in v)) throw new BincodeError(`struct: no field ${JSON.stringify(name)}`);
      writeValue(w, t, (v as Record<string, unknown>)[name], `${path}.${name}`);
    }
  }
}

function readValue(r: BincodeReader, type: BincodeType): unknown {
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
  if ("tuple" in type) return type.tuple.map((t) => readValue(r, t));
  if ("option" in type) return r.bool() ? readValue(r, type.option) : null;
  if ("list" in type) {
    const n = r.length("list", minBytes(type.list));
    const items = [];
    for (let i = 0; i < n; i++) items.push(readValue(r, type.list));
    return items;
  }
  const out: Record<string, unknown> = {};
  for (const [name, t] of type.struct) out[name] = readValue(r, t);
  return out;
}

/** The fewest bytes a value of `type` takes (a list's items must fit in what is left). */
function minBytes(type: BincodeType): number {
  if (type === "unit") return 0;
  if (typeof type === "string") return type === "f32" ? 4 : type === "f64" ? 8 : 1;
  if ("tuple" in type) return type.tuple.reduce((sum, t) => sum + minBytes(t), 0);
  if ("struct" in type) return type.struct.reduce((sum, [, t]) => sum + minBytes(t), 0);
  return 1; // an option's tag, a list's length
}
