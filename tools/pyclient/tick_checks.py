"""Tick-stamped replies (PROTOCOL.md section 4.3), checked from the document alone.

* The vectors ``tick_reply_*``, encoded and decoded by this client's codec (``vector_table``),
  and read the same by the version 2 decoder (tag 7 in both versions).
* Live, in ``ticksock.v1`` and ``ticksock.v1.json``: a client that asks (``?ticks=1``) gets each
  reply stamped, and a ``move`` stamped T shows first in the ``state`` of tick T (every earlier
  state shows the player where it stood), with ``Moved.tick`` equal to the stamp; errors carry
  no tick; a client that does not ask gets plain replies, as before.
* Live, in ``ticksock.v2``: a session that asked keeps its stamps across a resume.
"""

from __future__ import annotations

import traceback

import ticksock_client as tc
import ticksock_v2 as v2
from ticksock_client import Client, Error, Reply
from ticksock_json import JsonClient

WAIT = 5.0


def vector_table() -> dict:
    """name -> (value, encode(value) -> bytes, decode(bytes) -> value), as check.py expects."""
    return {
        "tick_reply_echo": (Reply(1, b"\xde\xad", 300), tc.encode_server_frame, tc.decode_server_frame),
        "tick_reply_move": (Reply(4, tc.encode_moved(300), 300), tc.encode_server_frame,
                            tc.decode_server_frame),
    }


def check_v2_decodes_the_vectors(ck) -> None:
    for name, (value, encode, _) in vector_table().items():
        back = v2.decode_server_frame(encode(value))
        ck.check(f"4.3: vector {name} reads the same in version 2 (tag 7 in both)", back == value,
                 f"{back!r}")


def _state_x(body, pid: int, json_mode: bool):
    """(tick, x of player pid) of a state push's body."""
    if json_mode:
        return body["tick"], next(p["x"] for p in body["players"] if p["id"] == pid)
    return body.tick, body.player(pid).x


def check_move_stamp(ck, port: int, json_mode: bool) -> None:
    kind = "ticksock.v1.json" if json_mode else "ticksock.v1"
    cls = JsonClient if json_mode else Client
    c = cls.connect("127.0.0.1", port, name=f"ticks-{kind}", ticks=True)
    try:
        if json_mode:
            pid = c.login("tick-json")
            joined = c.join("ticks-json")
            x0 = next(p["x"] for p in joined["players"] if p["id"] == pid)
        else:
            pid = c.login("tick-bin")
            joined = c.join("ticks-bin")
            x0 = next(p.x for p in joined.players if p.id == pid)
        dx = -1 if x0 > tc.ARENA_SIZE // 2 else 1
        # Two states before the move, so that some tick below the stamp is seen standing still.
        c.wait_pushes(lambda p: p.topic == "state", 2, timeout=WAIT)
        since = c.push_count()
        call = c.start("move", {"dx": dx, "dy": 0} if json_mode else tc.encode_move(dx, 0))
        stamp, body = call.stamped(WAIT)
        moved = body["tick"] if json_mode else tc.decode_moved(body)
        ck.check(f"4.3 ({kind}): a client that asked gets its reply stamped, and the stamp of `move` "
                 "is Moved.tick", stamp is not None and stamp == moved, f"stamp {stamp}, Moved.tick {moved}")
        if stamp is None:
            return
        c.wait_push(lambda p: p.topic == "state" and _state_x(p.body, pid, json_mode)[0] >= stamp,
                    since=since, timeout=WAIT)
        seen = [_state_x(p.body, pid, json_mode) for p in c.pushes_matching(lambda p: p.topic == "state")]
        before = [(t, x) for t, x in seen if t < stamp]
        first_after = next((t, x) for t, x in seen if t >= stamp)
        ck.check(f"4.3 ({kind}): no state of a tick below the stamp shows the move; the first state "
                 "of a tick at or above it shows one step",
                 len(before) >= 2 and all(x == x0 for _, x in before) and first_after[1] == x0 + tc.SPEED * dx,
                 f"stamp {stamp}, start x {x0}, states (tick, x) {seen[:8]}")
        error = c.start("no_such_route", None if json_mode else b"").wait(WAIT)
        ck.check(f"4.3 ({kind}): an error carries no tick", isinstance(error, Error), f"{error!r}")
        c.close()
    finally:
        c._shutdown()
    plain = cls.connect("127.0.0.1", port, name=f"plain-{kind}")
    try:
        answer = plain.start("echo", [1] if json_mode else b"\x01").wait(WAIT)
        ck.check(f"4.3 ({kind}): a client that did not ask gets a plain reply",
                 isinstance(answer, Reply) and answer.tick is None, f"{answer!r}")
        plain.close()
    finally:
        plain._shutdown()


def check_v2_resume_keeps_stamps(ck, port: int) -> None:
    c = v2.V2Client.connect("127.0.0.1", port, name="ticks-v2", ticks=True)
    try:
        first = c.start("echo", b"\x02").wait(WAIT)
        c.cut()
        c.resume()
        again = c.start("echo", b"\x03").wait(WAIT)
        ck.check("4.3 (ticksock.v2): a session that asked gets stamped replies, before and after a resume",
                 isinstance(first, Reply) and first.tick is not None
                 and isinstance(again, Reply) and again.tick is not None and again.tick >= first.tick,
                 f"{first!r}, then {again!r}")
        c.close()
    finally:
        c.stop()


def run(ck, port: int) -> None:
    steps = [lambda: check_v2_decodes_the_vectors(ck), lambda: check_move_stamp(ck, port, False),
             lambda: check_move_stamp(ck, port, True), lambda: check_v2_resume_keeps_stamps(ck, port)]
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
            traceback.print_exc()
            ck.check("tick checks: a step ran to the end", False, repr(e))
