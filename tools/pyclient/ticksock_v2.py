"""A ticksock version 2 client (``ticksock.v2``, ``ticksock.v2.json``), from docs/PROTOCOL.md alone.

Section 11 of PROTOCOL.md: a *session* outlives its *link* (one WebSocket connection); both
sides count what they send, the client resumes on a new link with the count of what it
received, each side replays what the other missed, and a resent request runs at most once.
Python 3.11 standard library only. Layers, bottom up:

* the frames of 11.3 in binary (``encode_*`` / ``decode_*``, over ``ticksock_client``'s
  ``Reader`` and ``Writer``) and in JSON (11.8, ``json_*``), both directions, so that the
  document's test vectors and JSON examples can be checked in both;
* ``V2Client``: a session across links. It offers one subprotocol, keeps the session's
  (conn_id, epoch, secret), counts the sequenced frames it receives (Reply, Error, Push),
  numbers its requests (``seq``), acknowledges (``ack`` in every request, an Ack frame when it
  has held unacknowledged frames for ``ack_delay`` seconds), and resumes on a new link: Resume
  first and nothing else until Resumed or ResumeFailed, then only the requests whose ``seq`` is
  above Resumed's ``received``, in order, with their original ``seq`` and ``id``; it adopts the
  new secret. On ResumeFailed it starts afresh as 11.4 and 11.5 say: it fails every call
  without an answer, takes the new link's Welcome as its session and counts from 0.

One reader thread per link (frames are read as they come, 7.5) and one acknowledging thread per
client; callers wait on conditions with timeouts. For the checks, ``V2Client.cut`` drops a link
without a close frame, optionally with requests and half a request in flight, and
``V2Client.log`` keeps every sequenced frame with its number.

    c = V2Client.connect("127.0.0.1", 7777)
    c.call("login", tc.encode_login("ann"))
    c.cut()                  # the network goes away
    c.resume()               # same session, nothing lost
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import ticksock_client as tc
from ticksock_client import (
    CallTimeout, ConnectionClosed, DecodeError, Error, ProtocolError, PushFrame, Reader, Reply,
    Writer,
)

SUBPROTOCOL = "ticksock.v2"
JSON_SUBPROTOCOL = "ticksock.v2.json"
SECRET_LEN = 16
U64_MAX = 2**64 - 1
STALE_REQUEST = 7                     # section 6

# ResumeFailed reasons (11.5)
UNKNOWN_SESSION, ENDED, GAP_LOST, RESTARTED = 1, 2, 3, 4
BAD_SECRET, SUPERSEDED, BAD_COUNT, NOT_FIRST = 5, 6, 7, 8
REASON_NAMES = {1: "unknown_session", 2: "ended", 3: "gap_lost", 4: "restarted", 5: "bad_secret",
                6: "superseded", 7: "bad_count", 8: "not_first"}

# --------------------------------------------------------------------------------------------
# Section 11.3: frames
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Client Request (tag 0): version 1's with `seq` and `ack` before `id`. `body` is bytes in
    binary, a JSON value in JSON."""
    seq: int
    ack: int
    id: int
    route: str
    body: Any = b""


@dataclass(frozen=True)
class ClientAck:
    """Client Ack (tag 1): the client's received count."""
    ack: int


@dataclass(frozen=True)
class Resume:
    """Client Resume (tag 2): continue session `session` of run `epoch` on this link."""
    session: int
    epoch: int
    secret: bytes
    received: int


@dataclass(frozen=True)
class Welcome:
    """Server Welcome (tag 0) of version 2: a new session, its secret and the server's run."""
    version: int
    tick_hz: int
    conn_id: int
    epoch: int
    secret: bytes


@dataclass(frozen=True)
class Resumed:
    """Server Resumed (tag 4): the server's received count and the session's new secret."""
    received: int
    secret: bytes


@dataclass(frozen=True)
class ResumeFailed:
    """Server ResumeFailed (tag 5): why (11.5) and a text for logs."""
    reason: int
    message: str


@dataclass(frozen=True)
class ServerAck:
    """Server Ack (tag 6): the server's received count."""
    received: int


SEQUENCED = (Reply, Error, PushFrame)   # 11.2: the frames both sides count


def _secret(b: bytes) -> bytes:
    if len(b) != SECRET_LEN:
        raise ValueError(f"a secret is {SECRET_LEN} bytes, not {len(b)}")
    return b


def encode_client_frame(f) -> bytes:
    """A client frame of 11.3 in binary."""
    if isinstance(f, Request):
        return Writer().u32(0).u64(f.seq).u64(f.ack).u32(f.id).str(f.route).raw(f.body).done()
    if isinstance(f, ClientAck):
        return Writer().u32(1).u64(f.ack).done()
    if isinstance(f, Resume):
        return Writer().u32(2).u64(f.session).u64(f.epoch).raw(_secret(f.secret)).u64(f.received).done()
    raise TypeError(f)


def decode_client_frame(msg: bytes):
    """The server's reading of a client frame (for the test vectors)."""
    r = Reader(msg)
    tag = r.u32()
    if tag == 0:
        return Request(r.u64(), r.u64(), r.u32(), r.str(), r.rest())
    if tag == 1:
        f = ClientAck(r.u64())
    elif tag == 2:
        f = Resume(r.u64(), r.u64(), r.take(SECRET_LEN), r.u64())
    else:
        raise DecodeError(f"unknown client frame tag {tag}")
    r.end()
    return f


def encode_server_frame(f) -> bytes:
    """A server frame of 11.3 in binary (for the test vectors)."""
    if isinstance(f, Welcome):
        return (Writer().u32(0).u16(f.version).u16(f.tick_hz).u64(f.conn_id).u64(f.epoch)
                .raw(_secret(f.secret)).done())
    if isinstance(f, (Reply, Error, PushFrame)):
        return tc.encode_server_frame(f)
    if isinstance(f, Resumed):
        return Writer().u32(4).u64(f.received).raw(_secret(f.secret)).done()
    if isinstance(f, ResumeFailed):
        return Writer().u32(5).u16(f.reason).str(f.message).done()
    if isinstance(f, ServerAck):
        return Writer().u32(6).u64(f.received).done()
    raise TypeError(f)


def decode_server_frame(msg: bytes):
    """A server frame of version 2. Strict: bytes after the last field of a frame without a body
    are an error here (11.3: a sender MUST NOT add any), though the reference decoder skips them."""
    r = Reader(msg)
    tag = r.u32()
    if tag == 1:
        return Reply(r.u32(), r.rest())
    if tag == 7:  # TickReply (4.3): the same tag as in version 1
        id = r.u32()
        tick = r.u64()
        return Reply(id, r.rest(), tick)
    if tag == 3:
        return PushFrame(r.str(), r.rest())
    if tag == 0:
        f = Welcome(r.u16(), r.u16(), r.u64(), r.u64(), r.take(SECRET_LEN))
    elif tag == 2:
        f = Error(r.u32(), r.u16(), r.str())
    elif tag == 4:
        f = Resumed(r.u64(), r.take(SECRET_LEN))
    elif tag == 5:
        f = ResumeFailed(r.u16(), r.str())
    elif tag == 6:
        f = ServerAck(r.u64())
    else:
        raise DecodeError(f"unknown server frame tag {tag}")
    r.end()
    return f


# --------------------------------------------------------------------------------------------
# Section 11.8: the same frames in JSON
# --------------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX32 = re.compile(r"[0-9a-f]{32}")


def _no_repeats(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise DecodeError(f"a key given twice in {keys}")
    return dict(pairs)


def json_load(text: str) -> dict:
    """One JSON frame: an object whose keys are each given once (11.8)."""
    try:
        v = json.loads(text, object_pairs_hook=_no_repeats)
    except ValueError as e:
        raise DecodeError(f"not JSON: {e}") from None
    if not isinstance(v, dict):
        raise DecodeError("a frame is a JSON object")
    return v


def _uint(o: dict, key: str, top: int = U64_MAX) -> int:
    v = o.get(key)
    if type(v) is not int or not 0 <= v <= top:
        raise DecodeError(f"`{key}` must be an integer in 0..={top}, not {v!r}")
    return v


def _decimal(o: dict, key: str) -> int:
    v = o.get(key)
    if not isinstance(v, str) or not _DECIMAL.fullmatch(v) or int(v) > U64_MAX:
        raise DecodeError(f"`{key}` must be a u64 as a decimal string, not {v!r}")
    return int(v)


def _hex_secret(o: dict, key: str = "secret") -> bytes:
    v = o.get(key)
    if not isinstance(v, str) or not _HEX32.fullmatch(v):
        raise DecodeError(f"`{key}` must be 32 lowercase hex digits, not {v!r}")
    return bytes.fromhex(v)


def _str(o: dict, key: str) -> str:
    v = o.get(key)
    if not isinstance(v, str):
        raise DecodeError(f"`{key}` must be a string, not {v!r}")
    return v


def json_client_frame(f) -> dict:
    """A client frame as the JSON object of 11.8."""
    if isinstance(f, Request):
        return {"type": "request", "seq": f.seq, "ack": f.ack, "id": f.id, "route": f.route, "body": f.body}
    if isinstance(f, ClientAck):
        return {"type": "ack", "ack": f.ack}
    if isinstance(f, Resume):
        return {"type": "resume", "session": str(f.session), "epoch": str(f.epoch),
                "secret": _secret(f.secret).hex(), "received": f.received}
    raise TypeError(f)


def json_decode_client_frame(o: dict):
    """The server's reading of a JSON client frame (for the document's examples)."""
    t = o.get("type")
    if t == "request":
        return Request(_uint(o, "seq"), _uint(o, "ack"), _uint(o, "id", 0xFFFFFFFF), _str(o, "route"), o.get("body"))
    if t == "ack":
        return ClientAck(_uint(o, "ack"))
    if t == "resume":
        return Resume(_decimal(o, "session"), _decimal(o, "epoch"), _hex_secret(o), _uint(o, "received"))
    raise DecodeError(f"unknown client frame type {t!r}")


def json_server_frame(f) -> dict:
    """A server frame as the JSON object of 11.8 (for the document's examples)."""
    if isinstance(f, Welcome):
        return {"type": "welcome", "version": f.version, "tick_hz": f.tick_hz, "conn_id": str(f.conn_id),
                "epoch": str(f.epoch), "secret": f.secret.hex()}
    if isinstance(f, Reply) and f.tick is not None:
        return {"type": "reply", "id": f.id, "tick": f.tick, "body": f.body}
    if isinstance(f, Reply):
        return {"type": "reply", "id": f.id, "body": f.body}
    if isinstance(f, Error):
        return {"type": "error", "id": f.id, "code": f.code, "message": f.message}
    if isinstance(f, PushFrame):
        return {"type": "push", "topic": f.topic, "body": f.body}
    if isinstance(f, Resumed):
        return {"type": "resumed", "received": f.received, "secret": f.secret.hex()}
    if isinstance(f, ResumeFailed):
        return {"type": "resume_failed", "reason": f.reason, "message": f.message}
    if isinstance(f, ServerAck):
        return {"type": "ack", "received": f.received}
    raise TypeError(f)


def json_decode_server_frame(o: dict):
    """A JSON server frame of version 2; `body` stays a JSON value."""
    t = o.get("type")
    if t == "welcome":
        return Welcome(_uint(o, "version", 0xFFFF), _uint(o, "tick_hz", 0xFFFF), _decimal(o, "conn_id"),
                       _decimal(o, "epoch"), _hex_secret(o))
    if t == "reply":
        if "body" not in o:
            raise DecodeError("a reply without `body`")
        tick = _uint(o, "tick") if "tick" in o else None  # a stamped reply (4.3)
        return Reply(_uint(o, "id", 0xFFFFFFFF), o["body"], tick)
    if t == "error":
        return Error(_uint(o, "id", 0xFFFFFFFF), _uint(o, "code", 0xFFFF), _str(o, "message"))
    if t == "push":
        return PushFrame(_str(o, "topic"), o.get("body"))
    if t == "resumed":
        return Resumed(_uint(o, "received"), _hex_secret(o))
    if t == "resume_failed":
        return ResumeFailed(_uint(o, "reason", 0xFFFF), _str(o, "message"))
    if t == "ack":
        return ServerAck(_uint(o, "received"))
    raise DecodeError(f"unknown server frame type {t!r}")


class BinaryCodec:
    """How a `ticksock.v2` link carries frames: one binary message each."""
    subprotocol = SUBPROTOCOL
    opcode = tc.OP_BINARY

    @staticmethod
    def encode(f) -> bytes:
        return encode_client_frame(f)

    @staticmethod
    def decode(opcode: int, payload: bytes):
        if opcode != tc.OP_BINARY:
            raise ProtocolError("a text message on ticksock.v2")
        return decode_server_frame(payload)

    @staticmethod
    def push_body(frame: PushFrame) -> Any:
        decoder = tc.PUSH_DECODERS.get(frame.topic)
        return decoder(frame.body) if decoder else None


class JsonCodec:
    """How a `ticksock.v2.json` link carries frames: one text message each."""
    subprotocol = JSON_SUBPROTOCOL
    opcode = tc.OP_TEXT

    @staticmethod
    def encode(f) -> bytes:
        return json.dumps(json_client_frame(f), separators=(",", ":")).encode()

    @staticmethod
    def decode(opcode: int, payload: bytes):
        if opcode != tc.OP_TEXT:
            raise ProtocolError("a binary message on ticksock.v2.json")
        return json_decode_server_frame(json_load(payload.decode("utf-8")))

    @staticmethod
    def push_body(frame: PushFrame) -> Any:
        return frame.body


# --------------------------------------------------------------------------------------------
# The session client
# --------------------------------------------------------------------------------------------


class SessionEnded(Exception):
    """The session this call belonged to ended: its fate is unknown (11.5, 11.7)."""

    def __init__(self, why: str):
        super().__init__(f"session ended: {why}")
        self.why = why


@dataclass(frozen=True)
class Creds:
    """What names a session in a Resume."""
    conn_id: int
    epoch: int
    secret: bytes


@dataclass
class Sequenced:
    """One sequenced frame as received: its number on the session, the link that brought it."""
    n: int
    link: int
    at: float
    frame: Any
    body: Any = None        # a push's decoded body


@dataclass
class Control:
    """One frame that is not sequenced (Welcome, Resumed, ResumeFailed, Ack)."""
    link: int
    at: float
    frame: Any


class Call:
    """One request of the session, waiting for its one answer, across links."""

    def __init__(self, client: "V2Client", seq: int, id: int, route: str, body: Any) -> None:
        self.client, self.seq, self.id, self.route, self.body = client, seq, id, route, body
        self.sent_on: list[int] = []           # the links it was sent on (more than one: resent)
        self.answer: Optional[Reply | Error] = None
        self.failure: Optional[Exception] = None

    @property
    def done(self) -> bool:
        return self.answer is not None or self.failure is not None

    def wait(self, timeout: float = 5.0) -> Reply | Error:
        c = self.client
        with c._cond:
            if not c._cond.wait_for(lambda: self.done, timeout):
                raise CallTimeout(f"{self.route} (seq {self.seq}, id {self.id}): no answer within {timeout} s")
        if self.failure is not None:
            raise self.failure
        assert self.answer is not None        # done and no failure
        return self.answer

    def result(self, timeout: float = 5.0) -> Any:
        a = self.wait(timeout)
        if isinstance(a, Error):
            raise tc.TicksockError(self.route, self.id, a.code, a.message)
        return a.body


class Link:
    """One WebSocket connection of a session."""

    def __init__(self, number: int, sock: socket.socket, leftover: bytes) -> None:
        self.number, self.sock, self.buf = number, sock, bytearray(leftover)
        self.welcome: Optional[Welcome] = None
        self.sent_frames = 0                   # client frames sent on this link
        self.resume_sent: Optional[Resume] = None
        self.resume_first = False              # the Resume was the link's first frame
        self.resume_answer = None              # Resumed or ResumeFailed
        self.abandoned = False                 # given up by the client: what it still brings is lost
        self.ended = False                     # end of stream or error
        self.ended_at: Optional[float] = None
        self.close_code: Optional[int] = None  # the server's close frame, if any
        self.close_reason = ""
        self.close_sent = False
        self.data_after_abandon = 0            # data messages read (and dropped) after abandoning
        self.reader: Optional[threading.Thread] = None


@dataclass
class Stats:
    unexpected_answers: list = field(default_factory=list)   # answers to no pending call
    protocol_errors: list = field(default_factory=list)
    acks_sent: list = field(default_factory=list)           # (time, ack) of each Ack frame


class V2Client:
    """A version 2 session: see the module's documentation."""

    def __init__(self, host: str, port: int, name: str = "", json_mode: bool = False,
                 ack_delay: float = 1.0, acking: bool = True, auto_resume: bool = False,
                 timeout: float = 5.0, ticks: bool = False) -> None:
        self.host, self.port, self.name, self.timeout = host, port, name, timeout
        # Ask for tick-stamped replies (4.3) at every link's upgrade; a resumed session keeps
        # what its first link asked for, so only that link's ask counts.
        self.path = "/?ticks=1" if ticks else "/"
        self.codec = JsonCodec if json_mode else BinaryCodec
        self.ack_delay = ack_delay
        self.acking = acking                   # False: never acknowledge (for the replay-bound checks)
        self.auto_resume = auto_resume
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()     # always taken before _cond, never after
        self.creds: Optional[Creds] = None
        self.tick_hz = 0
        self.state = "new"                     # new, up, down, resuming, flushing, ended, closed
        self.received = 0                      # sequenced frames received on the session
        self.acked = 0                         # the highest count acknowledged to the server
        self._unacked_since: Optional[float] = None
        self.next_seq = 1
        self.server_received = 0               # the server's received count, as last told
        self.unconfirmed: dict[int, Call] = {}  # seq -> requests not known to be taken
        self.pending: dict[int, Call] = {}     # id -> calls without an answer
        self._next_id = 1
        self.links: list[Link] = []
        self.link: Optional[Link] = None
        self.log: list[Sequenced] = []         # every sequenced frame, in order
        self.control: list[Control] = []
        self.events: list[str] = []            # sessions ended, resumes, for the application
        self.stats = Stats()
        self._stopped = False
        self._acker = threading.Thread(target=self._ack_loop, name=f"v2-ack-{name}", daemon=True)
        self._acker.start()

    # ---- links ----

    @classmethod
    def connect(cls, host: str, port: int, **kw) -> "V2Client":
        """A new session: a link, its Welcome, then an Ack 0 so that the game knows it (11.4)."""
        c = cls(host, port, **kw)
        c.open_link()
        c.start_fresh()
        return c

    def open_link(self) -> Link:
        """A new link whose Welcome has arrived and on which nothing has been sent."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            chosen, rest = tc.ws_handshake(sock, self.host, self.port, [self.codec.subprotocol],
                                           path=self.path, timeout=self.timeout)
            if chosen != self.codec.subprotocol:
                raise ProtocolError(f"offered {self.codec.subprotocol}, server chose {chosen!r}")
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        with self._cond:
            link = Link(len(self.links) + 1, sock, rest)
            self.links.append(link)
        link.reader = threading.Thread(target=self._read_loop, args=(link,),
                                       name=f"v2-{self.name}-{link.number}", daemon=True)
        link.reader.start()
        with self._cond:
            self._cond.wait_for(lambda: link.welcome is not None or link.ended, self.timeout)
            if link.welcome is None:
                raise ConnectionClosed(link.close_code, link.close_reason or "no Welcome")
        if link.welcome.version != 2:
            self._send_close(link, 1002)
            raise ProtocolError(f"server speaks wire version {link.welcome.version}, not 2")
        return link

    def _adopt(self, link: Link) -> None:
        """The link carries its Welcome's new session from now on (called with _cond held)."""
        w = link.welcome
        self.creds = Creds(w.conn_id, w.epoch, w.secret)
        self.tick_hz = w.tick_hz
        self.link = link
        self.received = self.acked = self.server_received = 0
        self._unacked_since = None
        self.next_seq = 1
        self.unconfirmed.clear()
        self.state = "up"

    def start_fresh(self, link: Optional[Link] = None) -> None:
        """Starts the newest link's session: an Ack with ack 0 as its first frame (11.4)."""
        with self._send_lock:
            with self._cond:
                link = link or self.links[-1]
                self._adopt(link)
            self._send_on(link, ClientAck(0))

    def _fail_all(self, why: str) -> None:
        """Fails every call without an answer (called with _cond held)."""
        for call in self.pending.values():
            call.failure = SessionEnded(why)
        self.pending.clear()
        self.unconfirmed.clear()
        self._cond.notify_all()

    # ---- resuming ----

    def resume(self, received: Optional[int] = None, creds: Optional[Creds] = None,
               timeout: Optional[float] = None):
        """Continues this client's session on a new link (11.4). The Resume is the link's first
        frame and nothing follows it until the answer. Resumed: the new secret is adopted and the
        requests the server has not taken are sent again, in order. ResumeFailed: every call
        without an answer fails and the link's Welcome is the session from now on. A link still
        up is abandoned first (its frames from then on are lost, as on a dropped link); the
        server ends it when the resume succeeds. `received` and `creds` override what is sent,
        for the refusal checks. Returns the answer frame."""
        timeout = timeout or self.timeout
        with self._cond:
            old = self.link
            if old is not None and not old.abandoned:
                old.abandoned = True
            if self.state in ("up", "down"):
                self.state = "resuming"
            own = self.creds
        link = self.open_link()
        c = creds or own
        frame = Resume(c.conn_id, c.epoch, c.secret, self.received if received is None else received)
        return self._resume_on(link, frame, timeout)

    def _resume_on(self, link: Link, frame: Resume, timeout: float):
        with self._send_lock:
            with self._cond:
                link.resume_sent = frame
                link.resume_first = link.sent_frames == 0
            self._send_on(link, frame)
        with self._cond:
            if not self._cond.wait_for(lambda: link.resume_answer is not None or link.ended, timeout):
                raise CallTimeout("no answer to the Resume")
            answer = link.resume_answer
        if answer is None:
            raise ConnectionClosed(link.close_code, link.close_reason or "link lost while resuming")
        if isinstance(answer, Resumed) and link.resume_first:
            self._flush(link, answer.received)
        return answer

    def attempt_resume(self, link: Link, frame: Resume, timeout: Optional[float] = None):
        """Sends `frame` on `link`, which this client holds but whose session it has not started,
        as a stranger would (the refusal checks). A failure makes the link's Welcome this client's
        session (11.4); a success makes the resumed session this client's."""
        return self._resume_on(link, frame, timeout or self.timeout)

    def _flush(self, link: Link, server_received: int) -> None:
        """After Resumed: sends again every request the server has not taken, in order, then
        lets new requests through (11.4 step 3)."""
        with self._send_lock:
            with self._cond:
                todo = [c for s, c in sorted(self.unconfirmed.items()) if s > server_received]
                ack = self.received if self.acking else self.acked
                if self.acking:
                    self._note_ack(ack)
                self.state = "up"
                self._cond.notify_all()
            for c in todo:
                self._send_on(link, Request(c.seq, ack, c.id, c.route, c.body))
                c.sent_on.append(link.number)

    def cut(self, in_flight: tuple = (), partial: Optional[tuple] = None) -> list:
        """Drops the link without a close frame (both directions shut, then the socket closed).
        First sends the requests `in_flight`, each (route, body), and the first half of the
        request `partial` (route, body), which the server can therefore never take. Whatever the
        link brings after this call starts is lost, as if the network dropped it: the answers to
        these requests cannot arrive on it. Returns their Calls."""
        calls = []
        with self._send_lock:
            with self._cond:
                link = self.link
                link.abandoned = True
                self.state = "down"
                specs = list(in_flight) + ([partial] if partial else [])
                ack = self.received
                for route, body in specs:
                    calls.append(self._new_call(route, body))
                if self.acking:
                    self._note_ack(ack)
            wire = b""
            for i, c in enumerate(calls):
                msg = tc.ws_frame(self.codec.opcode, self.codec.encode(
                    Request(c.seq, ack if self.acking else self.acked, c.id, c.route, c.body)))
                if partial and i == len(calls) - 1:
                    msg = msg[:len(msg) // 2]
                wire += msg
                c.sent_on.append(link.number)
            try:
                if wire:
                    link.sock.sendall(wire)
                link.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            link.sock.close()
        return calls

    # ---- requests ----

    def _new_id(self) -> int:
        while self._next_id in self.pending:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return id

    def _new_call(self, route: str, body: Any, id: Optional[int] = None) -> Call:
        """Numbers a new request (called with _cond held)."""
        if self.state in ("ended", "closed", "new"):
            raise SessionEnded(f"the client is {self.state}")
        id = self._new_id() if id is None else id
        if id in self.pending:
            raise ValueError(f"id {id} is still pending")
        call = Call(self, self.next_seq, id, route, body)
        self.next_seq += 1
        self.pending[id] = call
        self.unconfirmed[call.seq] = call
        return call

    def start(self, route: str, body: Any = b"", id: Optional[int] = None) -> Call:
        """Sends a request now if the link is up, else keeps it for the resume."""
        with self._send_lock:
            with self._cond:
                call = self._new_call(route, body, id)
                link, up = self.link, self.state == "up"
                ack = self.received if self.acking else self.acked
                if up and self.acking:
                    self._note_ack(ack)
            if up:
                self._send_on(link, Request(call.seq, ack, call.id, route, body))
                call.sent_on.append(link.number)
        return call

    def call(self, route: str, body: Any = b"", timeout: Optional[float] = None) -> Any:
        return self.start(route, body).result(timeout or self.timeout)

    def send_frame(self, frame, link: Optional[Link] = None) -> None:
        """Sends any client frame as is, counting nothing (for the duplicate and refusal checks)."""
        with self._send_lock:
            self._send_on(link or self.link, frame)

    def send_message(self, payload: bytes, opcode: Optional[int] = None, link: Optional[Link] = None) -> None:
        """Sends any bytes as one message (malformed frames)."""
        link = link or self.link
        with self._send_lock:
            with self._cond:
                link.sent_frames += 1
            self._raw_send(link, tc.ws_frame(self.codec.opcode if opcode is None else opcode, payload))

    def send_ack(self) -> int:
        """An Ack frame with the received count, now."""
        with self._send_lock:
            with self._cond:
                ack, link, up = self.received, self.link, self.state == "up"
                if up:
                    self._note_ack(ack)
            if up:
                self._send_on(link, ClientAck(ack))
                with self._cond:
                    self.stats.acks_sent.append((time.monotonic(), ack))
        return ack

    def _note_ack(self, ack: int) -> None:
        self.acked = max(self.acked, ack)
        if self.acked >= self.received:
            self._unacked_since = None

    def _raw_send(self, link: Link, data: bytes) -> None:
        try:
            link.sock.sendall(data)
        except OSError:
            pass                               # the link is gone; the reader sees it end

    def _send_on(self, link: Link, frame) -> None:
        """Sends one frame (with _send_lock held)."""
        with self._cond:
            link.sent_frames += 1
        self._raw_send(link, tc.ws_frame(self.codec.opcode, self.codec.encode(frame)))

    def _send_close(self, link: Link, code: int, reason: str = "") -> None:
        with self._send_lock:
            if not link.close_sent:
                link.close_sent = True
                self._raw_send(link, tc.ws_frame(tc.OP_CLOSE, struct.pack(">H", code) + reason.encode()))

    # ---- acknowledging (11.2) ----

    def _ack_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    due = None
                    if self.acking and self.state == "up" and self._unacked_since is not None:
                        due = self._unacked_since + self.ack_delay
                        if time.monotonic() >= due:
                            break
                    self._cond.wait(None if due is None else max(0.0, due - time.monotonic()))
            self.send_ack()

    # ---- pushes and the log ----

    def wait_for(self, pred, timeout: Optional[float] = None) -> bool:
        """Waits until pred() holds (evaluated with the client's lock held)."""
        with self._cond:
            return self._cond.wait_for(pred, timeout or self.timeout)

    def pushes(self, topic: Optional[str] = None) -> list:
        with self._cond:
            return [e for e in self.log if isinstance(e.frame, PushFrame)
                    and (topic is None or e.frame.topic == topic)]

    def answers_to(self, id: int, after: int = 0) -> list:
        """Every Reply and Error with callback id `id` numbered above `after`."""
        with self._cond:
            return [e for e in self.log if e.n > after and isinstance(e.frame, (Reply, Error))
                    and e.frame.id == id]

    def acks_received(self) -> list:
        with self._cond:
            return [c for c in self.control if isinstance(c.frame, ServerAck)]

    # ---- closing ----

    def close(self, code: int = 1000, timeout: float = 5.0) -> Optional[int]:
        """Close handshake on the current link; a close frame ends the session (11.4)."""
        link = self.link
        self._send_close(link, code)
        with self._cond:
            self._cond.wait_for(lambda: link.ended, timeout)
            self.state = "closed"
            self._fail_all("closed by the client")
        self.stop()
        return link.close_code

    def stop(self) -> None:
        """Releases every socket and thread, without a close frame."""
        with self._cond:
            self._stopped = True
            for link in self.links:
                link.abandoned = True
            self._cond.notify_all()
        for link in self.links:
            try:
                link.sock.close()
            except OSError:
                pass

    # ---- reading (one thread per link) ----

    def _read_loop(self, link: Link) -> None:
        frag_op: Optional[int] = None
        frag = bytearray()
        try:
            while True:
                frame = self._next_ws_frame(link)
                if frame is None:
                    return
                fin, opcode, payload = frame
                if opcode >= 0x8:
                    if opcode == tc.OP_PING:
                        with self._send_lock:
                            self._raw_send(link, tc.ws_frame(tc.OP_PONG, payload))
                    elif opcode == tc.OP_CLOSE:
                        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                        with self._cond:
                            link.close_code = code
                            link.close_reason = payload[2:].decode("utf-8", "replace")
                        self._send_close(link, code if code is not None else 1000)
                    continue
                if opcode == tc.OP_CONT:
                    if frag_op is None:
                        raise ProtocolError("continuation without a message")
                    frag += payload
                else:
                    frag_op, frag = opcode, bytearray(payload)
                if fin:
                    op, msg = frag_op, bytes(frag)
                    frag_op, frag = None, bytearray()
                    self._on_message(link, op, msg)
        except Exception as e:  # noqa: BLE001 - the reader must always end cleanly
            if not isinstance(e, OSError):
                with self._cond:
                    self.stats.protocol_errors.append(f"link {link.number}: {e!r}")
        finally:
            self._link_ended(link)

    def _next_ws_frame(self, link: Link):
        def fill(n: int) -> bool:
            while len(link.buf) < n:
                chunk = link.sock.recv(65536)
                if not chunk:
                    return False
                link.buf += chunk
            return True

        if not fill(2):
            return None
        b0, b1 = link.buf[0], link.buf[1]
        if b1 & 0x80:
            raise ProtocolError("server frames must not be masked")
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not fill(4):
                return None
            n, off = struct.unpack(">H", link.buf[2:4])[0], 4
        elif n == 127:
            if not fill(10):
                return None
            n, off = struct.unpack(">Q", link.buf[2:10])[0], 10
        if not fill(off + n):
            return None
        payload = bytes(link.buf[off:off + n])
        del link.buf[:off + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def _link_ended(self, link: Link) -> None:
        resume = False
        with self._cond:
            link.ended = True
            link.ended_at = time.monotonic()
            if link is self.link and not link.abandoned:
                if link.close_code is not None or link.close_sent:
                    # A close frame either way ends the session (11.4).
                    self.state = "ended"
                    self.events.append(f"session ended by a close {link.close_code} {link.close_reason!r}")
                    self._fail_all(f"close {link.close_code}")
                else:
                    self.state = "down"
                    self.events.append(f"link {link.number} dropped")
                    resume = self.auto_resume and not self._stopped
            self._cond.notify_all()
        try:
            link.sock.close()
        except OSError:
            pass
        if resume:
            threading.Thread(target=self._resume_with_backoff, daemon=True).start()

    def _resume_with_backoff(self) -> None:
        delay = 0.05
        for _ in range(6):
            try:
                self.resume()
                return
            except (OSError, ConnectionClosed, CallTimeout, ProtocolError, tc.HandshakeError) as e:
                with self._cond:
                    self.events.append(f"resume failed: {e!r}")
            time.sleep(delay * (1 + random.random()))   # backoff with jitter before the next try
            delay *= 2

    def _on_message(self, link: Link, opcode: int, msg: bytes) -> None:
        frame = self.codec.decode(opcode, msg)
        now = time.monotonic()
        with self._cond:
            try:
                self._take(link, frame, now)
            finally:
                self._cond.notify_all()

    def _take(self, link: Link, frame, now: float) -> None:
        """Handles one server frame (with _cond held)."""
        if link.welcome is None:
            if not isinstance(frame, Welcome):
                raise ProtocolError(f"first frame is not a Welcome: {frame!r}")
            link.welcome = frame
            self.control.append(Control(link.number, now, frame))
            return
        if link.abandoned:
            link.data_after_abandon += 1       # lost with the link, as on a real network
            return
        if isinstance(frame, Welcome):
            raise ProtocolError("a second Welcome")
        if isinstance(frame, (Resumed, ResumeFailed)):
            self.control.append(Control(link.number, now, frame))
            if link.resume_sent is None or link.resume_answer is not None:
                self.stats.protocol_errors.append(f"link {link.number}: unasked {frame!r}")
                return
            link.resume_answer = frame
            if not link.resume_first:
                return                         # not_first: the server ignored the Resume
            if isinstance(frame, Resumed):
                r = link.resume_sent
                if self.creds is None or r.session != self.creds.conn_id:
                    # A stranger's session taken over (attempt_resume): count from what the
                    # Resume said; the requests it had sent are not this client's to resend.
                    self.received = self.acked = r.received
                    self.next_seq = frame.received + 1
                    self.unconfirmed.clear()
                elif frame.received >= self.next_seq:
                    self.stats.protocol_errors.append(f"Resumed.received {frame.received} > last seq {self.next_seq - 1}")
                self.creds = Creds(r.session, r.epoch, frame.secret)
                self.server_received = max(self.server_received, frame.received)
                for s in [s for s in self.unconfirmed if s <= frame.received]:
                    del self.unconfirmed[s]
                self.link = link
                self.state = "flushing"
                self.events.append(f"resumed on link {link.number}, server received {frame.received}")
            else:
                had = self.creds is not None
                self._fail_all(f"resume failed: {REASON_NAMES.get(frame.reason, frame.reason)}")
                self._adopt(link)
                if had:
                    self.events.append(f"session ended: resume failed with {frame.reason}; new session {self.creds.conn_id}")
            return
        if link.resume_sent is not None and link.resume_first and link.resume_answer is None:
            raise ProtocolError(f"{frame!r} before the answer to the Resume")
        if isinstance(frame, ServerAck):
            self.control.append(Control(link.number, now, frame))
            if frame.received >= self.next_seq:
                self.stats.protocol_errors.append(f"server Ack {frame.received} > last seq {self.next_seq - 1}")
            self.server_received = max(self.server_received, frame.received)
            for s in [s for s in self.unconfirmed if s <= frame.received]:
                del self.unconfirmed[s]
            return
        if not isinstance(frame, SEQUENCED):
            raise ProtocolError(f"unexpected frame {frame!r}")
        self.received += 1
        if self._unacked_since is None:
            self._unacked_since = now
        entry = Sequenced(self.received, link.number, now, frame)
        if isinstance(frame, PushFrame):
            try:
                entry.body = self.codec.push_body(frame)
            except DecodeError as e:
                self.stats.protocol_errors.append(f"push {frame.topic}: {e}")
        else:
            call = self.pending.pop(frame.id, None)
            if call is None:
                self.stats.unexpected_answers.append(entry)
            else:
                call.answer = frame
                self.unconfirmed.pop(call.seq, None)
        self.log.append(entry)
