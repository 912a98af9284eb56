// A TCP proxy for the end-to-end tests: it forwards every connection it accepts to one server
// (plain HTTP and WebSocket alike), reads the WebSocket messages that cross it in both
// directions, and can do to one connection what a network does: hold back what the server
// sends (`hold`), and lose the connection without a close frame (`kill`: a reset on both sides).
//
// Only loopback addresses are used. `stop` closes everything it opened.
import { EventEmitter } from "node:events";
import { createServer, connect } from "node:net";
import { within } from "./support.mjs";

/** The end of an HTTP head. */
const HEAD_END = Buffer.from("\r\n\r\n");
/** The most bytes of an HTTP head kept to tell an upgrade from a plain request. */
const MAX_HEAD = 16 * 1024;

/**
 * One direction of one connection: the HTTP head, then (once both heads say the connection was
 * upgraded) WebSocket frames, read into whole messages.
 */
class DirectionReader {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buf = Buffer.alloc(0);
    this.head = null; // the HTTP head, once complete
    this.frames = false; // true once the connection is a WebSocket: read frames
    this.fragments = null; // the parts of a fragmented message so far
    this.error = null; // why the stream could not be read, if it could not
  }

  /** Takes the next bytes; `held` says they were not delivered. */
  push(chunk, held) {
    if (this.error) return;
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.head === null) {
      const end = this.buf.indexOf(HEAD_END);
      if (end < 0) {
        if (this.buf.length > MAX_HEAD) this.buf = Buffer.alloc(0); // not HTTP: nothing to read
        return;
      }
      this.head = this.buf.subarray(0, end).toString("latin1");
      this.buf = this.buf.subarray(end + HEAD_END.length);
    }
    if (this.frames) this.readFrames(held);
  }

  /** Starts reading frames (the upgrade is done), from what is buffered already. */
  startFrames(held) {
    this.frames = true;
    this.readFrames(held);
  }

  readFrames(held) {
    try {
      for (;;) {
        const frame = readFrame(this.buf);
        if (!frame) return;
        this.buf = this.buf.subarray(frame.size);
        this.take(frame, held);
      }
    } catch (e) {
      this.error = e;
    }
  }

  take({ fin, opcode, payload }, held) {
    if (opcode >= 8) {
      // Control frames (close, ping, pong) may come between the fragments of a message.
      this.onMessage({ opcode, text: null, json: null, held });
      return;
    }
    if (opcode !== 0) this.fragments = { opcode, parts: [] };
    if (!this.fragments) throw new Error("a continuation frame without a message to continue");
    this.fragments.parts.push(payload);
    if (!fin) return;
    const { opcode: first, parts } = this.fragments;
    this.fragments = null;
    const data = Buffer.concat(parts);
    if (first !== 1) {
      this.onMessage({ opcode: first, text: null, json: null, held });
      return;
    }
    const text = data.toString("utf8");
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Not JSON: kept as text; the test sees `json: null`.
    }
    this.onMessage({ opcode: first, text, json, held });
  }
}

/** Reads one WebSocket frame (RFC 6455 section 5.2) at the start of `buf`, or null if it is not all there. */
function readFrame(buf) {
  if (buf.length < 2) return null;
  const b0 = buf[0];
  const b1 = buf[1];
  if (b0 & 0x70) throw new Error(`a frame with RSV bits ${(b0 >> 4) & 7}: an extension this reader does not know`);
  let len = b1 & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + len) return null;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
  return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload, size: at + len };
}

/**
 * One proxied TCP connection.
 *
 * - `toServer`, `toClient`: the WebSocket messages that crossed it, in order, each
 *   `{ opcode, text, json, held }` (`json` is the parsed text message, null for other frames;
 *   `held` says the proxy held it back and the client never got it).
 * - `upgraded`: true once the server answered the client's WebSocket upgrade with 101.
 */
class Link {
  constructor(n, client, server, changed) {
    this.n = n;
    this.client = client;
    this.server = server;
    this.upgraded = false;
    this.holding = false;
    this.killed = false;
    this.toServer = [];
    this.toClient = [];
    this.fromClient = new DirectionReader((m) => {
      this.toServer.push(m);
      changed();
    });
    this.fromServer = new DirectionReader((m) => {
      this.toClient.push(m);
      changed();
    });
  }

  /** True when the client asked for a WebSocket upgrade (known once its head is complete). */
  get isWebSocket() {
    return /^upgrade:\s*websocket\s*$/im.test(this.fromClient.head ?? "");
  }

  /** The JSON messages the server sent on this link, in order (`held` ones included). */
  serverJson() {
    return this.toClient.filter((m) => m.json !== null);
  }

  /** The JSON messages the client sent on this link, in order. */
  clientJson() {
    return this.toServer.filter((m) => m.json !== null);
  }
}

/** A TCP proxy to `target` ("host:port") that can hold and kill the connections it carries. */
export class LinkProxy extends EventEmitter {
  constructor(target) {
    super();
    const at = target.lastIndexOf(":");
    this.targetHost = target.slice(0, at);
    this.targetPort = Number(target.slice(at + 1));
    this.links = [];
    this.listener = null;
  }

  /** Listens on a free loopback port; resolves with its "host:port". */
  async start() {
    this.listener = createServer((client) => this.accept(client));
    await within(
      5_000,
      "the proxy listening",
      new Promise((resolve, reject) => {
        this.listener.once("error", reject);
        this.listener.listen(0, "127.0.0.1", resolve);
      }),
    );
    return `127.0.0.1:${this.listener.address().port}`;
  }

  accept(client) {
    const server = connect(this.targetPort, this.targetHost);
    const link = new Link(this.links.length, client, server, () => this.emit("change"));
    this.links.push(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on("data", (chunk) => {
      link.fromClient.push(chunk, false);
      server.write(chunk); // queued by node until the connection to the server is up
    });
    server.on("data", (chunk) => {
      const held = link.holding;
      const reader = link.fromServer;
      const wasHead = reader.head === null;
      reader.push(chunk, held);
      // The server's answer to an upgrade is complete: frames follow, both ways.
      if (wasHead && reader.head !== null && link.isWebSocket && /^HTTP\/1\.1 101 /.test(reader.head)) {
        link.upgraded = true;
        reader.startFrames(held);
        link.fromClient.startFrames(false);
      }
      if (!held) client.write(chunk);
      this.emit("change");
    });
    // An end of stream goes across; an error or a close on one side ends the other.
    for (const [a, b] of [
      [client, server],
      [server, client],
    ]) {
      a.on("end", () => {
        // What the server sends, its end of stream included, is what a hold keeps back.
        if (!(a === server && link.holding)) b.end();
      });
      a.on("error", () => b.destroy());
      a.on("close", () => {
        if (!b.writableEnded) b.destroy();
        this.emit("change");
      });
    }
  }

  /** The links that asked for a WebSocket upgrade, in the order they were accepted. */
  webSockets() {
    return this.links.filter((l) => l.isWebSocket);
  }

  /**
   * From now on, what the server sends on `link` goes no further: the proxy reads it (marked
   * `held` in `link.toClient`) and keeps it from the client, as a network that stalled would.
   */
  hold(link) {
    link.holding = true;
  }

  /**
   * Loses `link` as a network would: both sockets are reset (TCP RST), no close frame either
   * way, and whatever was held is gone.
   */
  kill(link) {
    link.killed = true;
    link.client.resetAndDestroy();
    link.server.resetAndDestroy();
    this.emit("change");
  }

  /**
   * Resolves with `check()`'s value once it is truthy, checking now and after every change the
   * proxy sees (a connection, bytes, a close); rejects after `ms` with `what`.
   */
  waitFor(what, ms, check) {
    let onChange;
    return within(
      ms,
      what,
      new Promise((resolve, reject) => {
        onChange = () => {
          try {
            const value = check();
            if (value) resolve(value);
          } catch (e) {
            reject(e);
          }
        };
        this.on("change", onChange);
        onChange();
      }),
    ).finally(() => this.off("change", onChange));
  }

  /** Stops listening and ends every connection it carries. */
  async stop() {
    for (const link of this.links) {
      link.client.destroy();
      link.server.destroy();
    }
    const listener = this.listener;
    this.listener = null;
    if (listener) await within(5_000, "the proxy closing", new Promise((resolve) => listener.close(() => resolve())));
  }
}
