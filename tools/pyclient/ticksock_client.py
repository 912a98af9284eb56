"""A ticksock client for the binary subprotocol ``ticksock.v1``, written from docs/PROTOCOL.md alone.

Python 3.11 standard library only. Layers, bottom up:

* the bincode-2 "standard" codec of PROTOCOL.md section 3 (``Writer`` / ``Reader``);
* frames of section 4 (``encode_request``, ``decode_server_frame``);
* the arena bodies of section 8.3 (``encode_login`` ... ``decode_state``), and those of state
  replication, section 14 (``ReplicaUpdate``, ``AckOutcome``; the JSON form is in replica.py);
* an RFC 6455 WebSocket client (handshake offering ``ticksock.v1``, masked client frames,
  reassembly of fragmented messages, Pong for every Ping, the close handshake);
* ``Client``: waits for the Welcome frame, sends Requests tagged with callback ids, matches
  Replies and Errors by id (in any order), and records Pushes by topic.

A background thread per ``Client`` reads the socket continuously (section 7.5 asks clients to
read even when idle). The calling thread waits on conditions with timeouts: ``Call.wait``,
``Client.wait_push``.

    c = Client.connect("127.0.0.1", 7777)
    pid = c.login("ann")
    joined = c.join("lobby")
    st = c.wait_push(lambda p: p.topic == "state", timeout=2).body
    c.close()
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

SUBPROTOCOL = "ticksock.v1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# --------------------------------------------------------------------------------------------
# Section 3: primitive encodings (bincode 2, standard configuration)
# --------------------------------------------------------------------------------------------

MARK16, MARK32, MARK64, MARK128 = 0xFB, 0xFC, 0xFD, 0xFE
_MAX_MARK = {16: MARK16, 32: MARK32, 64: MARK64, 128: MARK128}
_MARK_SIZE = {MARK16: 2, MARK32: 4, MARK64: 8, MARK128: 16}
_UMAX = {16: 0xFFFF, 32: 0xFFFFFFFF, 64: 0xFFFFFFFFFFFFFFFF}


class DecodeError(ValueError):
    """Bytes that do not decode under the rules of PROTOCOL.md section 3."""


def zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, v: int, bits: int = 64) -> "Writer":
        if v < 0 or v > _UMAX[bits]:
            raise ValueError(f"{v} does not fit u{bits}")
        if v <= 250:
            self.out.append(v)
        elif v <= 0xFFFF:
            self.out.append(MARK16)
            self.out += struct.pack("<H", v)
        elif v <= 0xFFFFFFFF:
            self.out.append(MARK32)
            self.out += struct.pack("<I", v)
        else:
            self.out.append(MARK64)
            self.out += struct.pack("<Q", v)
        return self

    def u16(self, v: int) -> "Writer":
        return self.varint(v, 16)

    def u32(self, v: int) -> "Writer":
        return self.varint(v, 32)

    def u64(self, v: int) -> "Writer":
        return self.varint(v, 64)

    def signed(self, n: int, bits: int) -> "Writer":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if not lo <= n <= hi:
            raise ValueError(f"{n} does not fit i{bits}")
        return self.varint(zigzag(n), bits)

    def i32(self, n: int) -> "Writer":
        return self.signed(n, 32)

    def i64(self, n: int) -> "Writer":
        return self.signed(n, 64)

    def u8(self, v: int) -> "Writer":
        self.out += struct.pack("<B", v)
        return self

    def i8(self, v: int) -> "Writer":
        self.out += struct.pack("<b", v)
        return self

    def bool(self, b: bool) -> "Writer":
        self.out.append(1 if b else 0)
        return self

    def str(self, s: str) -> "Writer":
        b = s.encode("utf-8")
        self.varint(len(b))
        self.out += b
        return self

    def bytes(self, b: bytes) -> "Writer":
        self.varint(len(b))
        self.out += b
        return self

    def option(self, v: Any, put: Callable[["Writer", Any], Any]) -> "Writer":
        if v is None:
            self.out.append(0)
        else:
            self.out.append(1)
            put(self, v)
        return self

    def f32(self, v: float) -> "Writer":
        self.out += struct.pack("<f", v)
        return self

    def raw(self, b: bytes) -> "Writer":
        self.out += b
        return self

    def done(self) -> bytes:
        return bytes(self.out)


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = bytes(data), 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def varint(self, bits: int = 64) -> int:
        b = self.take(1)[0]
        if b <= 250:
            return b
        if b > _MAX_MARK[bits]:
            raise DecodeError(f"varint marker {b:#x} too wide for u{bits}")
        return int.from_bytes(self.take(_MARK_SIZE[b]), "little")

    def u16(self) -> int:
        return self.varint(16)

    def u32(self) -> int:
        return self.varint(32)

    def u64(self) -> int:
        return self.varint(64)

    def i32(self) -> int:
        return unzigzag(self.varint(32))

    def i64(self) -> int:
        return unzigzag(self.varint(64))

    def u8(self) -> int:
        return self.take(1)[0]

    def i8(self) -> int:
        return struct.unpack("<b", self.take(1))[0]

    def bool(self) -> bool:
        b = self.u8()
        if b > 1:
            raise DecodeError(f"bad bool byte {b:#x}")
        return b == 1

    def str(self) -> str:
        try:
            return self.take(self.varint(64)).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid UTF-8: {e}") from None

    def bytes(self) -> bytes:
        return self.take(self.varint(64))

    def option(self, get: Callable[["Reader"], Any]) -> Any:
        b = self.u8()
        if b == 0:
            return None
        if b == 1:
            return get(self)
        raise DecodeError(f"bad option byte {b:#x}")

    def f32(self) -> float:
        return struct.unpack("<f", self.take(4))[0]

    def rest(self) -> bytes:
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return b

    def end(self) -> None:
        """A body is exactly one value (section 5): no bytes may be left over."""
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes")


# --------------------------------------------------------------------------------------------
# Section 4: frames
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Welcome:
    version: int
    tick_hz: int
    conn_id: int

    @property
    def slot(self) -> int:
        return self.conn_id & 0xFFFFFFFF

    @property
    def generation(self) -> int:
        return self.conn_id >> 32


@dataclass(frozen=True)
class Reply:
    id: int
    body: bytes
    # The stamp of a TickReply (tag 7, section 4.3): the first tick whose state includes the
    # request's effects. None for a plain Reply (tag 1), the only kind a connection that did not
    # ask with ``?ticks=1`` gets.
    tick: Optional[int] = None


@dataclass(frozen=True)
class Error:
    id: int
    code: int
    message: str


@dataclass(frozen=True)
class PushFrame:
    topic: str
    body: bytes


def encode_request(id: int, route: str, body: bytes = b"") -> bytes:
    """Request (client tag 0): tag, id (varint u32), route (string), body = rest of message."""
    return Writer().u32(0).u32(id).str(route).raw(body).done()


def decode_server_frame(msg: bytes):
    """Decode one server message into Welcome / Reply / Error / PushFrame (section 4.2)."""
    r = Reader(msg)
    tag = r.u32()
    if tag == 0:
        return Welcome(r.u16(), r.u16(), r.u64())
    if tag == 1:
        return Reply(r.u32(), r.rest())
    if tag == 2:
        return Error(r.u32(), r.u16(), r.str())
    if tag == 3:
        return PushFrame(r.str(), r.rest())
    if tag == 7:  # TickReply, only to a connection that asked (section 4.3)
        id = r.u32()
        tick = r.u64()
        return Reply(id, r.rest(), tick)
    raise DecodeError(f"unknown server frame tag {tag}")


def encode_server_frame(f) -> bytes:
    """The server's side of section 4.2, used to check the codec against the test vectors."""
    if isinstance(f, Welcome):
        return Writer().u32(0).u16(f.version).u16(f.tick_hz).u64(f.conn_id).done()
    if isinstance(f, Reply) and f.tick is not None:
        return Writer().u32(7).u32(f.id).u64(f.tick).raw(f.body).done()
    if isinstance(f, Reply):
        return Writer().u32(1).u32(f.id).raw(f.body).done()
    if isinstance(f, Error):
        return Writer().u32(2).u32(f.id).u16(f.code).str(f.message).done()
    if isinstance(f, PushFrame):
        return Writer().u32(3).str(f.topic).raw(f.body).done()
    raise TypeError(f)


# --------------------------------------------------------------------------------------------
# Section 6 and 8.5: error codes
# --------------------------------------------------------------------------------------------

UNKNOWN_ROUTE, BAD_BODY, INTERNAL, BAD_FRAME, RATE_LIMITED, SHUTTING_DOWN = 1, 2, 3, 4, 5, 6
ERR_NOT_LOGGED_IN, ERR_NOT_IN_ROOM, ERR_NO_SUCH_ROOM = 1001, 1002, 1003
ERR_ROOM_FULL, ERR_INVALID, ERR_NOT_ONLINE = 1004, 1005, 1006

ERROR_NAMES = {
    1: "unknown_route", 2: "bad_body", 3: "internal", 4: "bad_frame", 5: "rate_limited",
    6: "shutting_down", 1001: "ERR_NOT_LOGGED_IN", 1002: "ERR_NOT_IN_ROOM",
    1003: "ERR_NO_SUCH_ROOM", 1004: "ERR_ROOM_FULL", 1005: "ERR_INVALID", 1006: "ERR_NOT_ONLINE",
}

# --------------------------------------------------------------------------------------------
# Section 8: the arena game
# --------------------------------------------------------------------------------------------

ARENA_SIZE, SPEED, MAX_NAME_LEN, MAX_CHAT_LEN = 1000, 5, 32, 256


@dataclass(frozen=True)
class RoomInfo:
    name: str
    players: int
    capacity: int


@dataclass(frozen=True)
class PlayerState:
    id: int
    x: int
    y: int


@dataclass(frozen=True)
class RosterEntry:
    id: int
    name: str


@dataclass(frozen=True)
class Joined:
    room: str
    players: list
    roster: list  # of RosterEntry: the name of each of `players`, in the same order


@dataclass(frozen=True)
class ChatLine:
    player_id: int
    name: str
    text: str


@dataclass(frozen=True)
class Presence:
    player_id: int
    name: str
    joined: bool


@dataclass(frozen=True)
class State:
    tick: int
    players: list

    def player(self, pid: int) -> Optional[PlayerState]:
        for p in self.players:
            if p.id == pid:
                return p
        return None


def encode_login(name: str) -> bytes:
    return Writer().str(name).done()


def decode_login(body: bytes) -> str:
    r = Reader(body)
    v = r.str()
    r.end()
    return v


def encode_logged_in(player_id: int) -> bytes:
    return Writer().u32(player_id).done()


def decode_logged_in(body: bytes) -> int:
    r = Reader(body)
    v = r.u32()
    r.end()
    return v


def _put_room_info(w: Writer, ri: RoomInfo) -> None:
    w.str(ri.name).u32(ri.players).u32(ri.capacity)


def encode_rooms(rooms: list) -> bytes:
    w = Writer().varint(len(rooms))
    for ri in rooms:
        _put_room_info(w, ri)
    return w.done()


def decode_rooms(body: bytes) -> list:
    r = Reader(body)
    out = [RoomInfo(r.str(), r.u32(), r.u32()) for _ in range(r.varint(64))]
    r.end()
    return out


def encode_join(room: str) -> bytes:
    return Writer().str(room).done()


def _put_player_state(w: Writer, p: PlayerState) -> None:
    w.u32(p.id).i32(p.x).i32(p.y)


def _get_player_state(r: Reader) -> PlayerState:
    return PlayerState(r.u32(), r.i32(), r.i32())


def encode_joined(j: Joined) -> bytes:
    w = Writer().str(j.room).varint(len(j.players))
    for p in j.players:
        _put_player_state(w, p)
    w.varint(len(j.roster))
    for e in j.roster:
        w.u32(e.id).str(e.name)
    return w.done()


def decode_joined(body: bytes) -> Joined:
    r = Reader(body)
    room = r.str()
    players = [_get_player_state(r) for _ in range(r.varint(64))]
    roster = [RosterEntry(r.u32(), r.str()) for _ in range(r.varint(64))]
    r.end()
    return Joined(room, players, roster)


def encode_move(dx: int, dy: int) -> bytes:
    """Move: dx, dy as raw i8 (one two's-complement byte each, not zigzag)."""
    return Writer().i8(dx).i8(dy).done()


def encode_moved(tick: int) -> bytes:
    return Writer().u64(tick).done()


def decode_moved(body: bytes) -> int:
    r = Reader(body)
    v = r.u64()
    r.end()
    return v


def encode_chat(text: str) -> bytes:
    return Writer().str(text).done()


def encode_whisper(to: str, text: str) -> bytes:
    return Writer().str(to).str(text).done()


def encode_chat_line(c: ChatLine) -> bytes:
    return Writer().u32(c.player_id).str(c.name).str(c.text).done()


def decode_chat_line(body: bytes) -> ChatLine:
    r = Reader(body)
    v = ChatLine(r.u32(), r.str(), r.str())
    r.end()
    return v


def encode_presence(p: Presence) -> bytes:
    return Writer().u32(p.player_id).str(p.name).bool(p.joined).done()


def decode_presence(body: bytes) -> Presence:
    r = Reader(body)
    v = Presence(r.u32(), r.str(), r.bool())
    r.end()
    return v


def encode_state(s: State) -> bytes:
    w = Writer().u64(s.tick).varint(len(s.players))
    for p in s.players:
        _put_player_state(w, p)
    return w.done()


def decode_state(body: bytes) -> State:
    r = Reader(body)
    tick = r.u64()
    players = [_get_player_state(r) for _ in range(r.varint(64))]
    r.end()
    return State(tick, players)


def decode_empty(body: bytes) -> None:
    if body:
        raise DecodeError(f"expected an empty body for (), got {len(body)} bytes")


# --------------------------------------------------------------------------------------------
# Section 14: state replication (the binary forms; the JSON form of 14.3 is in replica.py)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityUpdate:
    """An entity of an update (14.2): `fields` is a tuple of (index, value bytes), the value
    being the field's body encoding, opaque at this layer."""
    id: int
    kind: int
    fields: tuple


@dataclass(frozen=True)
class ReplicaUpdate:
    """The body of a `replica` push (14.2)."""
    tick: int
    baseline: Optional[int]    # None: a full snapshot
    entered: tuple             # of EntityUpdate
    changed: tuple             # of EntityUpdate
    left: tuple                # of entity ids


ACK_OUTCOMES = ("accepted", "stale", "unknown")   # AckOutcome's variants, in index order (14.4)


def _put_entity(w: Writer, e: EntityUpdate) -> None:
    w.u32(e.id).u16(e.kind).varint(len(e.fields))
    for index, value in e.fields:
        w.u8(index).bytes(value)


def _get_entity(r: Reader) -> EntityUpdate:
    id, kind = r.u32(), r.u16()
    fields = tuple((r.u8(), r.bytes()) for _ in range(r.varint(64)))
    indexes = [i for i, _ in fields]
    # 14.2: "a list of FieldUpdate in increasing index order": strictly, so no index twice.
    if any(a >= b for a, b in zip(indexes, indexes[1:])):
        raise DecodeError(f"entity {id}: field indexes not increasing: {indexes}")
    return EntityUpdate(id, kind, fields)


def encode_replica_update(u: ReplicaUpdate) -> bytes:
    w = Writer().u64(u.tick).option(u.baseline, Writer.u64)
    for group in (u.entered, u.changed):
        w.varint(len(group))
        for e in group:
            _put_entity(w, e)
    w.varint(len(u.left))
    for id in u.left:
        w.u32(id)
    return w.done()


def decode_replica_update(body: bytes) -> ReplicaUpdate:
    r = Reader(body)
    tick, baseline = r.u64(), r.option(Reader.u64)
    entered = tuple(_get_entity(r) for _ in range(r.varint(64)))
    changed = tuple(_get_entity(r) for _ in range(r.varint(64)))
    left = tuple(r.u32() for _ in range(r.varint(64)))
    r.end()
    return ReplicaUpdate(tick, baseline, entered, changed, left)


def encode_ack_outcome(name: str) -> bytes:
    """AckOutcome, a unit enum: its variant index as a varint u32 (3.5)."""
    return Writer().u32(ACK_OUTCOMES.index(name)).done()


def decode_ack_outcome(body: bytes) -> str:
    r = Reader(body)
    i = r.u32()
    r.end()
    if i >= len(ACK_OUTCOMES):
        raise DecodeError(f"AckOutcome has no variant {i}")
    return ACK_OUTCOMES[i]


def decode_replica_digest(body: bytes) -> Optional[tuple]:
    """The reply of the arena's `replica_digest` (8.9): option of (u64 tick, u64 digest)."""
    r = Reader(body)
    v = r.option(lambda r: (r.u64(), r.u64()))
    r.end()
    return v


# The server's own push topic (PROTOCOL.md 7.3): how many events it dropped for this client
# because it read too slowly, since its last such push.
TOPIC_DROPPED = "ticksock.dropped"


def encode_dropped(count: int) -> bytes:
    return Writer().u64(count).done()


def decode_dropped(body: bytes) -> int:
    r = Reader(body)
    v = r.u64()
    r.end()
    return v


PUSH_DECODERS: dict = {
    TOPIC_DROPPED: decode_dropped,
    "replica": decode_replica_update,
    "state": decode_state,
    "chat": decode_chat_line,
    "whisper": decode_chat_line,
    "presence": decode_presence,
}

# --------------------------------------------------------------------------------------------
# WebSocket (RFC 6455) client
# --------------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status: int, reason: str, headers: dict, body: bytes, why: str = ""):
        super().__init__(f"WebSocket upgrade refused: HTTP {status} {reason} {why} {body[:200]!r}")
        self.status, self.reason, self.headers, self.body = status, reason, headers, body


class ProtocolError(Exception):
    """The server broke RFC 6455 or PROTOCOL.md."""


class ConnectionClosed(Exception):
    def __init__(self, code: Optional[int], reason: str = ""):
        super().__init__(f"connection closed (code {code}, reason {reason!r})")
        self.code, self.reason = code, reason


class CallTimeout(Exception):
    pass


class TicksockError(Exception):
    """An Error frame: the server's failed answer to one request."""

    def __init__(self, route: str, id: int, code: int, message: str):
        name = ERROR_NAMES.get(code, "?")
        super().__init__(f"{route} (id {id}) failed: code {code} {name} {message!r}")
        self.route, self.id, self.code, self.message = route, id, code, message


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    reps = key * (n // 4 + 1)
    return (int.from_bytes(payload, "little") ^ int.from_bytes(reps[:n], "little")).to_bytes(n, "little")


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client-to-server frame: always masked with a fresh random key (RFC 6455 5.3)."""
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n <= 0xFFFF:
        head.append(0x80 | 126)
        head += struct.pack(">H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack(">Q", n)
    key = os.urandom(4)
    return bytes(head) + key + _mask(payload, key)


def ws_handshake(sock: socket.socket, host: str, port: int, subprotocols, path: str = "/",
                 timeout: float = 5.0) -> tuple[str, bytes]:
    """Send the upgrade request, check the 101 answer. Returns (chosen subprotocol, leftover bytes)."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
    )
    if subprotocols:
        req += f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}\r\n"
    req += "\r\n"
    sock.sendall(req.encode())
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no upgrade answer")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, sep, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ProtocolError(f"not an HTTP answer: {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: dict = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if status != 101:
        # Read the (short) body of a refusal for the caller's benefit.
        body = rest
        want = int(headers.get("content-length", "0") or 0)
        try:
            while len(body) < want and time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                body += chunk
        except OSError:
            pass
        raise HandshakeError(status, reason, headers, body)
    if not sep:
        raise ProtocolError("connection closed during the upgrade")
    expect = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expect:
        raise HandshakeError(status, reason, headers, b"", "bad Sec-WebSocket-Accept")
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(status, reason, headers, b"", "no Upgrade: websocket")
    chosen = headers.get("sec-websocket-protocol", "")
    if subprotocols and chosen not in subprotocols:
        raise HandshakeError(status, reason, headers, b"", f"server chose subprotocol {chosen!r}")
    return chosen, rest


# --------------------------------------------------------------------------------------------
# The ticksock client
# --------------------------------------------------------------------------------------------


class Call:
    """One request waiting for its one answer (section 7.2)."""

    def __init__(self, client: "Client", id: int, route: str, body: bytes) -> None:
        self.client, self.id, self.route, self.body = client, id, route, body
        self.sent_at = time.monotonic()
        self.answer: Optional[Reply | Error] = None
        self.failure: Optional[Exception] = None
        self.after_pushes = 0     # how many pushes had arrived when the answer did (7.3, point 2)

    @property
    def done(self) -> bool:
        return self.answer is not None or self.failure is not None

    def wait(self, timeout: float = 5.0) -> Reply | Error:
        """The Reply or Error frame; raises ConnectionClosed / CallTimeout."""
        c = self.client
        with c._cond:
            if not c._cond.wait_for(lambda: self.done, timeout):
                raise CallTimeout(f"{self.route} (id {self.id}): no answer within {timeout} s")
        if self.failure is not None:
            raise self.failure
        assert self.answer is not None
        return self.answer

    def result(self, timeout: float = 5.0) -> bytes:
        """The reply body; an Error frame raises TicksockError."""
        a = self.wait(timeout)
        if isinstance(a, Error):
            raise TicksockError(self.route, self.id, a.code, a.message)
        return a.body

    def stamped(self, timeout: float = 5.0) -> tuple:
        """(tick, body) of the reply: tick is its stamp (section 4.3), None for a plain Reply;
        an Error frame raises TicksockError."""
        body = self.result(timeout)
        assert isinstance(self.answer, Reply)
        return self.answer.tick, body


@dataclass
class Push:
    seq: int          # 0, 1, 2, ... in arrival order on this connection
    at: float         # time.monotonic() when it was read
    topic: str
    raw: bytes
    body: Any         # decoded per section 8.4, or None for an unknown topic
    decode_error: Optional[str] = None


@dataclass
class Stats:
    unexpected_answers: list = field(default_factory=list)   # answers whose id was not pending
    protocol_errors: list = field(default_factory=list)      # broken frames from the server
    pings: int = 0
    answered_out_of_order: int = 0
    events_dropped: int = 0       # events the server dropped for reading too slowly (7.3)


class Client:
    """A ``ticksock.v1`` connection. Subclasses speak another encoding over the same machinery by
    overriding ``subprotocol``, ``data_opcode``, ``encode_request``, ``decode_message`` and
    ``decode_push`` (``ticksock_json.JsonClient``)."""

    subprotocol = SUBPROTOCOL
    data_opcode = OP_BINARY
    push_decoders: dict = PUSH_DECODERS   # topic -> decode(body)

    def __init__(self, sock: socket.socket, leftover: bytes, name: str = "",
                 first_id: int = 1) -> None:
        self.sock = sock
        self.name = name
        self._buf = bytearray(leftover)
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._next_id = first_id & 0xFFFFFFFF
        self.pending: dict[int, Call] = {}
        self.pushes: list[Push] = []
        self.welcome: Optional[Welcome] = None
        self.stats = Stats()
        self.closed = False                  # the TCP connection is gone
        self.close_code: Optional[int] = None  # code of the server's close frame, if any
        self.close_reason = ""
        self.close_sent = False
        self.close_error: Optional[Exception] = None
        self._last_answered_id_order: list[int] = []
        self._reader = threading.Thread(target=self._read_loop, name=f"ticksock-{name}", daemon=True)
        self._reader.start()

    # ---- connecting ----

    @classmethod
    def connect(cls, host: str, port: int, name: str = "", timeout: float = 5.0,
                first_id: int = 1, subprotocols=None, ticks: bool = False) -> "Client":
        """ticks: ask for tick-stamped replies (``?ticks=1``, section 4.3)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            offer = list(subprotocols) if subprotocols is not None else [cls.subprotocol]
            path = "/?ticks=1" if ticks else "/"
            chosen, rest = ws_handshake(sock, host, port, offer, path=path, timeout=timeout)
            if chosen != cls.subprotocol:
                raise ProtocolError(f"this client speaks {cls.subprotocol} only, server chose {chosen!r}")
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        c = cls(sock, rest, name=name, first_id=first_id)
        c.wait_welcome(timeout)
        return c

    def wait_welcome(self, timeout: float = 5.0) -> Welcome:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.welcome is not None or self.closed, timeout)
        if self.welcome is None:
            if not ok:
                raise CallTimeout("no Welcome frame")
            raise ConnectionClosed(self.close_code, self.close_reason)
        if self.welcome.version != 1:
            self.close(1002)
            raise ProtocolError(f"server speaks wire version {self.welcome.version}, not 1")
        return self.welcome

    # ---- sending ----

    def _send_ws(self, opcode: int, payload: bytes) -> None:
        frame = ws_frame(opcode, payload)
        with self._send_lock:
            if self.close_sent and opcode != OP_PONG:
                raise ConnectionClosed(self.close_code, "close already sent")
            self.sock.sendall(frame)

    def _new_id(self) -> int:
        # Section 7.1: any u32, never one still pending; wrap at 2^32.
        with self._cond:
            while self._next_id in self.pending:
                self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            id = self._next_id
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            return id

    def send_raw_message(self, msg: bytes, opcode: int = OP_BINARY) -> None:
        """Send any bytes as one message (for malformed-input tests)."""
        self._send_ws(opcode, msg)

    def start(self, route: str, body: bytes = b"", id: Optional[int] = None,
              raw_frame: Optional[bytes] = None) -> Call:
        """Send a Request and return its Call without waiting. raw_frame replaces the encoded
        request (the caller vouches that its callback id is `id`)."""
        if id is None:
            id = self._new_id()
        call = Call(self, id, route, body)
        with self._cond:
            if self.closed:
                raise ConnectionClosed(self.close_code, self.close_reason)
            if id in self.pending:
                raise ValueError(f"id {id} is still pending")
            self.pending[id] = call
        try:
            self._send_ws(self.data_opcode,
                          raw_frame if raw_frame is not None else self.encode_request(id, route, body))
        except BaseException:
            with self._cond:
                self.pending.pop(id, None)
            raise
        return call

    def call(self, route: str, body: bytes = b"", timeout: float = 5.0) -> bytes:
        return self.start(route, body).result(timeout)

    # ---- the encoding (overridden by other subprotocols) ----

    def encode_request(self, id: int, route: str, body: Any) -> bytes:
        return encode_request(id, route, body)

    def decode_message(self, opcode: int, msg: bytes):
        """One server message as a Welcome / Reply / Error / PushFrame."""
        if opcode != OP_BINARY:
            raise ProtocolError("text message on ticksock.v1 (section 1.3: binary only)")
        return decode_server_frame(msg)

    def decode_push(self, frame: PushFrame) -> Any:
        """A push's body decoded per its topic; None for a topic this client does not know."""
        decoder = self.push_decoders.get(frame.topic)
        return decoder(frame.body) if decoder is not None else None

    # ---- the arena routes (section 8.2) ----

    def login(self, name: str, timeout: float = 5.0) -> int:
        return decode_logged_in(self.call("login", encode_login(name), timeout))

    def rooms(self, timeout: float = 5.0) -> list:
        return decode_rooms(self.call("rooms", b"", timeout))

    def join(self, room: str, timeout: float = 5.0) -> Joined:
        return decode_joined(self.call("join", encode_join(room), timeout))

    def leave(self, timeout: float = 5.0) -> None:
        decode_empty(self.call("leave", b"", timeout))

    def move(self, dx: int, dy: int, timeout: float = 5.0) -> int:
        return decode_moved(self.call("move", encode_move(dx, dy), timeout))

    def chat(self, text: str, timeout: float = 5.0) -> None:
        decode_empty(self.call("chat", encode_chat(text), timeout))

    def whisper(self, to: str, text: str, timeout: float = 5.0) -> None:
        decode_empty(self.call("whisper", encode_whisper(to, text), timeout))

    def echo(self, data: bytes, timeout: float = 5.0) -> bytes:
        return self.call("echo", data, timeout)

    def replica_ack(self, tick: int, timeout: float = 5.0) -> tuple:
        """Acknowledges `tick` (14.4): (AckOutcome's name, pushes that came before the answer)."""
        call = self.start("replica_ack", Writer().u64(tick).done())
        return decode_ack_outcome(call.result(timeout)), call.after_pushes

    def replica_digest(self, timeout: float = 5.0) -> Optional[tuple]:
        """(tick, digest) of the view last sent to this connection, or None (8.9)."""
        return decode_replica_digest(self.call("replica_digest", b"", timeout))

    # ---- pushes ----

    def push_count(self) -> int:
        with self._cond:
            return len(self.pushes)

    def wait_push(self, pred: Callable[[Push], bool], since: int = 0, timeout: float = 5.0) -> Push:
        """The first push with seq >= since that satisfies pred; waits for it up to timeout."""
        found: list = []

        def look() -> bool:
            for p in self.pushes[since:]:
                if pred(p):
                    found.append(p)
                    return True
            return self.closed

        with self._cond:
            self._cond.wait_for(look, timeout)
        if found:
            return found[0]
        if self.closed:
            raise ConnectionClosed(self.close_code, self.close_reason)
        raise CallTimeout(f"{self.name}: no matching push within {timeout} s")

    def wait_pushes(self, pred: Callable[[Push], bool], count: int, since: int = 0,
                    timeout: float = 5.0) -> list:
        """Wait until `count` pushes with seq >= since satisfy pred; returns them."""
        got: list = []

        def look() -> bool:
            got[:] = [p for p in self.pushes[since:] if pred(p)]
            return len(got) >= count or self.closed

        with self._cond:
            self._cond.wait_for(look, timeout)
        if len(got) >= count:
            return got[:count]
        if self.closed:
            raise ConnectionClosed(self.close_code, self.close_reason)
        raise CallTimeout(f"{self.name}: {len(got)}/{count} matching pushes within {timeout} s")

    def pushes_matching(self, pred: Callable[[Push], bool], since: int = 0) -> list:
        with self._cond:
            return [p for p in self.pushes[since:] if pred(p)]

    # ---- closing ----

    def close(self, code: int = 1000, reason: str = "", timeout: float = 5.0) -> Optional[int]:
        """Close handshake (RFC 6455 7.1.2): send our Close, wait for the server's, then for EOF.
        Returns the code in the server's close frame."""
        payload = struct.pack(">H", code) + reason.encode()
        with self._send_lock:
            if not self.close_sent and not self.closed:
                try:
                    self.sock.sendall(ws_frame(OP_CLOSE, payload))
                except OSError:
                    pass
                self.close_sent = True
        with self._cond:
            self._cond.wait_for(lambda: self.closed, timeout)
        if not self.closed:
            self._shutdown()
        return self.close_code

    def wait_closed(self, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.closed, timeout)

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- reading (background thread) ----

    def _read_loop(self) -> None:
        frag_op: Optional[int] = None
        frag = bytearray()
        try:
            while True:
                frame = self._next_ws_frame()
                if frame is None:
                    return
                fin, opcode, payload = frame
                if opcode >= 0x8:                       # control frames
                    if not fin or len(payload) > 125:
                        raise ProtocolError("bad control frame")
                    if opcode == OP_PING:
                        with self._cond:
                            self.stats.pings += 1
                        try:
                            self._send_ws(OP_PONG, payload)
                        except OSError:
                            pass
                    elif opcode == OP_CLOSE:
                        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                        with self._cond:
                            self.close_code = code
                            self.close_reason = payload[2:].decode("utf-8", "replace")
                        with self._send_lock:
                            if not self.close_sent:
                                try:
                                    echo = payload[:2] if code is not None else b""
                                    self.sock.sendall(ws_frame(OP_CLOSE, echo))
                                except OSError:
                                    pass
                                self.close_sent = True
                        # The server closes TCP after the close handshake; keep reading to EOF.
                    elif opcode == OP_PONG:
                        pass
                    else:
                        raise ProtocolError(f"unknown control opcode {opcode:#x}")
                    continue
                if opcode == OP_CONT:
                    if frag_op is None:
                        raise ProtocolError("continuation without a message")
                    frag += payload
                else:
                    if frag_op is not None:
                        raise ProtocolError("new message inside a fragmented one")
                    if opcode not in (OP_TEXT, OP_BINARY):
                        raise ProtocolError(f"unknown opcode {opcode:#x}")
                    frag_op, frag = opcode, bytearray(payload)
                if fin:
                    op, msg = frag_op, bytes(frag)
                    frag_op, frag = None, bytearray()
                    self._on_message(op, msg)
        except Exception as e:  # noqa: BLE001 - the reader must always end cleanly
            with self._cond:
                self.close_error = e
                if not isinstance(e, OSError):
                    self.stats.protocol_errors.append(repr(e))
        finally:
            self._shutdown()
            with self._cond:
                self.closed = True
                for call in self.pending.values():
                    call.failure = ConnectionClosed(self.close_code, self.close_reason)
                self.pending.clear()
                self._cond.notify_all()

    def _fill(self, n: int) -> bool:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self._buf += chunk
        return True

    def _next_ws_frame(self):
        if not self._fill(2):
            return None
        b0, b1 = self._buf[0], self._buf[1]
        if b0 & 0x70:
            raise ProtocolError("RSV bits set without an extension")
        if b1 & 0x80:
            raise ProtocolError("server frames must not be masked")
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not self._fill(4):
                return None
            n, off = struct.unpack(">H", self._buf[2:4])[0], 4
        elif n == 127:
            if not self._fill(10):
                return None
            n, off = struct.unpack(">Q", self._buf[2:10])[0], 10
        if not self._fill(off + n):
            return None
        payload = bytes(self._buf[off:off + n])
        del self._buf[:off + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def _on_message(self, opcode: int, msg: bytes) -> None:
        frame = self.decode_message(opcode, msg)
        with self._cond:
            if self.welcome is None:
                if not isinstance(frame, Welcome):
                    raise ProtocolError(f"first message is not a Welcome: {frame!r}")
                self.welcome = frame
            elif isinstance(frame, Welcome):
                raise ProtocolError("second Welcome")
            elif isinstance(frame, (Reply, Error)):
                call = self.pending.pop(frame.id, None)
                if call is None:
                    self.stats.unexpected_answers.append(frame)
                else:
                    if any(other.sent_at < call.sent_at for other in self.pending.values()):
                        self.stats.answered_out_of_order += 1
                    call.answer = frame
                    call.after_pushes = len(self.pushes)
            else:
                body, err = None, None
                try:
                    body = self.decode_push(frame)
                except DecodeError as e:
                    err = str(e)
                    self.stats.protocol_errors.append(f"push {frame.topic}: {e}")
                if frame.topic == TOPIC_DROPPED and isinstance(body, int):
                    self.stats.events_dropped += body
                self.pushes.append(Push(len(self.pushes), time.monotonic(), frame.topic,
                                        frame.body, body, err))
            self._cond.notify_all()
