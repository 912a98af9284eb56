"""A ``ticksock.v1.json`` client (PROTOCOL.md section 9), from the document alone.

The same ``Client`` as ``ticksock_client`` (one reader thread, callback ids, answers matched by
id, pushes recorded in order), with each frame one WebSocket text message holding one JSON
object. Request bodies and Reply and Push bodies are JSON values, not bytes:

    c = JsonClient.connect("127.0.0.1", 7777)
    c.call("login", {"name": "ann"})          # -> {"player_id": 1}
"""

from __future__ import annotations

import json
from typing import Any, Optional

import ticksock_client as tc
from ticksock_client import DecodeError, Error, ProtocolError, PushFrame, Reply, Welcome

SUBPROTOCOL = "ticksock.v1.json"


def _int(o: dict, key: str, top: int) -> int:
    v = o.get(key)
    if type(v) is not int or not 0 <= v <= top:
        raise DecodeError(f"`{key}` must be an integer in 0..={top}, not {v!r}")
    return v


def _str(o: dict, key: str) -> str:
    v = o.get(key)
    if not isinstance(v, str):
        raise DecodeError(f"`{key}` must be a string, not {v!r}")
    return v


def decode_server_frame(text: str):
    """One server message of section 9 as a Welcome / Reply / Error / PushFrame (bodies JSON)."""
    try:
        o = json.loads(text)
    except ValueError as e:
        raise DecodeError(f"not JSON: {e}") from None
    if not isinstance(o, dict):
        raise DecodeError("a frame is a JSON object")
    t = o.get("type")
    if t == "welcome":
        conn_id = _str(o, "conn_id")       # a decimal string (section 9)
        if not conn_id.isdigit():
            raise DecodeError(f"conn_id {conn_id!r} is not a decimal string")
        return Welcome(_int(o, "version", 0xFFFF), _int(o, "tick_hz", 0xFFFF), int(conn_id))
    if t == "reply":
        if "body" not in o:
            raise DecodeError("a reply without `body`")
        # `tick`: a stamped reply, to a connection that asked (section 4.3).
        tick = _int(o, "tick", 2**64 - 1) if "tick" in o else None
        return Reply(_int(o, "id", 0xFFFFFFFF), o["body"], tick)
    if t == "error":
        return Error(_int(o, "id", 0xFFFFFFFF), _int(o, "code", 0xFFFF), _str(o, "message"))
    if t == "push":
        return PushFrame(_str(o, "topic"), o.get("body"))
    raise DecodeError(f"unknown server frame type {t!r}")


class JsonClient(tc.Client):
    """``tc.Client`` over ``ticksock.v1.json``: `body` arguments and answers are JSON values."""

    subprotocol = SUBPROTOCOL
    data_opcode = tc.OP_TEXT

    def encode_request(self, id: int, route: str, body: Any) -> bytes:
        return json.dumps({"id": id, "route": route, "body": body}, separators=(",", ":")).encode()

    def decode_message(self, opcode: int, msg: bytes):
        if opcode != tc.OP_TEXT:
            raise ProtocolError("binary message on ticksock.v1.json (section 9: text only)")
        return decode_server_frame(msg.decode("utf-8"))

    def decode_push(self, frame: PushFrame) -> Any:
        return frame.body

    def start(self, route: str, body: Any = None, id: Optional[int] = None,
              raw_frame: Optional[bytes] = None) -> tc.Call:
        return super().start(route, body, id=id, raw_frame=raw_frame)

    def call(self, route: str, body: Any = None, timeout: float = 5.0) -> Any:
        return self.start(route, body).result(timeout)

    # ---- the arena routes (section 8.2), in their JSON form ----

    def login(self, name: str, timeout: float = 5.0) -> int:
        return self.call("login", {"name": name}, timeout)["player_id"]

    def join(self, room: str, timeout: float = 5.0) -> dict:
        return self.call("join", {"room": room}, timeout)

    def move(self, dx: int, dy: int, timeout: float = 5.0) -> int:
        return self.call("move", {"dx": dx, "dy": dy}, timeout)["tick"]

    def replica_ack(self, tick: int, timeout: float = 5.0) -> tuple:
        """(AckOutcome's name as the server wrote it, pushes that came before the answer)."""
        call = self.start("replica_ack", tick)
        outcome = call.result(timeout)
        if outcome not in tc.ACK_OUTCOMES:
            raise DecodeError(f"AckOutcome in JSON is one of {tc.ACK_OUTCOMES}, not {outcome!r}")
        return outcome, call.after_pushes

    def replica_digest(self, timeout: float = 5.0) -> Optional[tuple]:
        v = self.call("replica_digest", None, timeout)
        if v is None:
            return None
        if not (isinstance(v, list) and len(v) == 2 and all(type(x) is int and x >= 0 for x in v)):
            raise DecodeError(f"replica_digest in JSON: null or [tick, digest], not {v!r}")
        return tuple(v)
