#!/usr/bin/env python3
"""End-to-end check of the ticksock server against docs/PROTOCOL.md, with ticksock_client.py.

Starts the server on a free loopback port, runs a scenario with three clients (plus a fourth
that watches the shutdown), prints one line per check and exits 1 if any check failed.

    python3 tools/pyclient/check.py [--server target/release/ticksock-arena] [--doc docs/PROTOCOL.md]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ticksock_client as tc  # noqa: E402
import closing_checks  # noqa: E402
import replica_checks  # noqa: E402
import servers  # noqa: E402
import spec_checks  # noqa: E402
import tick_checks  # noqa: E402
import v2_checks  # noqa: E402
from ticksock_client import (  # noqa: E402
    ChatLine, Client, Error, Joined, PlayerState, Presence, PushFrame, Reader, Reply, RoomInfo,
    RosterEntry, State, Welcome, Writer,
)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WAIT = 5.0          # seconds: the longest any single wait-for-condition may take
BARRIER_TICKS = 3   # state pushes a client must see after an event before "it got nothing" counts


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        line = f"{'PASS' if ok else 'FAIL'}  {name}"
        if detail:
            line += f"  [{detail}]"
        print(line, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok

    def info(self, name: str, detail: str) -> None:
        print(f"INFO  {name}  [{detail}]", flush=True)


# --------------------------------------------------------------------------------------------
# Test vectors of PROTOCOL.md, checked against this client's codec
# --------------------------------------------------------------------------------------------


def _one(get):
    def dec(b: bytes):
        r = Reader(b)
        v = get(r)
        r.end()
        return v
    return dec


def decode_request(msg: bytes):
    r = Reader(msg)
    if r.u32() != 0:
        raise tc.DecodeError("not a request")
    return (r.u32(), r.str(), r.rest())


def vector_table() -> dict:
    """name -> (value, encode(value) -> bytes, decode(bytes) -> value)."""
    P = {}

    def prim(name, value, put, get):
        P[name] = (value, lambda v, put=put: put(Writer(), v).done(), _one(get))

    for n in (0, 250, 251, 300, 65535, 65536, 70000):
        prim(f"u32_{n}", n, Writer.u32, Reader.u32)
    prim("u32_max", 0xFFFFFFFF, Writer.u32, Reader.u32)
    prim("u64_4294967296", 2**32, Writer.u64, Reader.u64)
    prim("u16_1000", 1000, Writer.u16, Reader.u16)
    for name, n in [("i32_0", 0), ("i32_minus_1", -1), ("i32_1", 1), ("i32_minus_3", -3),
                    ("i32_10", 10), ("i32_minus_126", -126), ("i32_126", 126),
                    ("i32_min", -2**31)]:
        prim(name, n, Writer.i32, Reader.i32)
    prim("i64_minus_200", -200, Writer.i64, Reader.i64)
    prim("i8_minus_1", -1, Writer.i8, Reader.i8)
    prim("i8_minus_128", -128, Writer.i8, Reader.i8)
    prim("u8_255", 255, Writer.u8, Reader.u8)
    prim("bool_true", True, Writer.bool, Reader.bool)
    prim("option_none", None, lambda w, v: w.option(v, Writer.u32), lambda r: r.option(Reader.u32))
    prim("option_some_300", 300, lambda w, v: w.option(v, Writer.u32), lambda r: r.option(Reader.u32))
    prim("string_ann", "ann", Writer.str, Reader.str)
    prim("string_empty", "", Writer.str, Reader.str)
    prim("string_utf8", "é", Writer.str, Reader.str)
    prim("vec_u8", b"\xde\xad", Writer.bytes, Reader.bytes)
    prim("f32_1_5", 1.5, Writer.f32, Reader.f32)

    body = {
        "body_login": ("ann", tc.encode_login, tc.decode_login),
        "body_logged_in": (1, tc.encode_logged_in, tc.decode_logged_in),
        "body_rooms": ([RoomInfo("a1", 3, 64), RoomInfo("b2", 0, 300)], tc.encode_rooms, tc.decode_rooms),
        "body_join": ("a1", tc.encode_join, _one(Reader.str)),
        "body_joined": (Joined("a1", [PlayerState(1, 500, 500)], [RosterEntry(1, "ann")]),
                        tc.encode_joined, tc.decode_joined),
        "body_move": ((-1, 1), lambda v: tc.encode_move(*v), _one(lambda r: (r.i8(), r.i8()))),
        "body_moved": (300, tc.encode_moved, tc.decode_moved),
        "body_chat": ("hi", tc.encode_chat, _one(Reader.str)),
        "body_chat_line": (ChatLine(1, "ann", "hi"), tc.encode_chat_line, tc.decode_chat_line),
        "body_presence": (Presence(2, "bob", True), tc.encode_presence, tc.decode_presence),
        "body_state": (State(5, [PlayerState(1, 10, -3)]), tc.encode_state, tc.decode_state),
    }
    P.update(body)

    # The account bodies (section 8.3, 8.8), as tuples of their fields in wire order.
    def fields(*kinds):
        """An (encode, decode) pair for a struct of these primitive fields."""
        def enc(v):
            w = Writer()
            for kind, x in zip(kinds, v):
                getattr(Writer, kind)(w, x)
            return w.done()
        return enc, _one(lambda r: tuple(getattr(Reader, kind)(r) for kind in kinds))
    names_pw = fields("str", "str")
    opt_str = (lambda v: Writer().option(v, Writer.str).done(), _one(lambda r: r.option(Reader.str)))
    entries = (lambda v: b"".join([Writer().u32(len(v)).done()] + [Writer().str(n).u64(x).done() for n, x in v]),
               _one(lambda r: [(r.str(), r.u64()) for _ in range(r.u32())]))
    for name, (value, (enc, dec)) in {
        "body_register": (("ann", "pw"), names_pw),
        "body_signin": (("ann", "pw"), names_pw),
        "body_session": (("t.k",), fields("str")),
        "body_guest_new": (None, opt_str),
        "body_guest_again": ("d", opt_str),
        "body_guest_session": (("t.k", "d"), names_pw),
        "body_leaderboard": ((1, 10), fields("u32", "u32")),  # by: variant 1 = messages
        "body_leaderboard_entries": ([("ann", 300), ("bob", 7)], entries),
        "body_player_stats": ((500, 3, 1), fields("u64", "u64", "u64")),
    }.items():
        P[name] = (value, enc, dec)

    req = lambda v: tc.encode_request(*v)  # noqa: E731
    for name, v in {
        "request_echo": (1, "echo", b"\xde\xad"),
        "request_id_300": (300, "rooms", b""),
        "request_id_70000": (70000, "leave", b""),
        "request_login": (2, "login", tc.encode_login("ann")),
        "request_join": (3, "join", tc.encode_join("a1")),
        "request_move": (4, "move", tc.encode_move(-1, 1)),
        "request_chat": (5, "chat", tc.encode_chat("hi")),
    }.items():
        P[name] = (v, req, decode_request)

    for name, v in {
        "welcome": Welcome(1, 30, 4294967296),
        "reply_echo": Reply(1, b"\xde\xad"),
        "reply_empty": Reply(70000, b""),
        "reply_login": Reply(2, tc.encode_logged_in(1)),
        "reply_move": Reply(4, tc.encode_moved(300)),
        "error_unknown_route": Error(7, 1, "unknown route"),
        "error_not_logged_in": Error(3, 1001, ""),
        "push_state": PushFrame("state", tc.encode_state(State(5, [PlayerState(1, 10, -3)]))),
        "push_chat": PushFrame("chat", tc.encode_chat_line(ChatLine(1, "ann", "hi"))),
        "push_presence": PushFrame("presence", tc.encode_presence(Presence(2, "bob", False))),
        "push_dropped": PushFrame(tc.TOPIC_DROPPED, tc.encode_dropped(300)),
    }.items():
        P[name] = (v, tc.encode_server_frame, tc.decode_server_frame)
    return P


def check_vectors(ck: Checks, doc: str) -> None:
    text = open(doc, encoding="utf-8").read()
    found = re.findall(r"^vector: (\S+) = ([0-9a-f]{2}(?: [0-9a-f]{2})*)$", text, re.M)
    table = {**vector_table(), **v2_checks.vector_table(), **replica_checks.vector_table(),
             **tick_checks.vector_table()}
    bad, unknown = [], []
    for name, hexs in found:
        want = bytes.fromhex(hexs)
        if name not in table:
            unknown.append(name)
            continue
        value, enc, dec = table[name]
        try:
            got = enc(value)
            back = dec(want)
        except Exception as e:  # noqa: BLE001
            bad.append(f"{name}: {e!r}")
            continue
        if got != want:
            bad.append(f"{name}: encodes to {got.hex(' ')}, doc says {hexs}")
        if back != value:
            bad.append(f"{name}: doc bytes decode to {back!r}, expected {value!r}")
    missing = sorted(set(table) - {n for n, _ in found})
    ck.check("doc test vectors: codec encodes and decodes every one",
             not bad and not unknown and not missing and len(found) > 0,
             f"{len(found)} vectors; mismatches {bad}; not understood {unknown}; missing {missing}")


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: str, log) -> tuple[subprocess.Popen, int]:
    return servers.start(path, log)


# --------------------------------------------------------------------------------------------
# Scenario helpers
# --------------------------------------------------------------------------------------------


def topic(t: str):
    return lambda p: p.topic == t


def error_of(call: tc.Call):
    a = call.wait(WAIT)
    return a.code if isinstance(a, Error) else None


def barrier(*clients: Client) -> None:
    """The doc orders nothing across connections (7.3), so "X received no push about E" is
    checked only once X has seen later traffic: an echo round trip of its own and
    BARRIER_TICKS more state pushes (X must be in an arena)."""
    for c in clients:
        since = c.push_count()
        c.echo(b"barrier", WAIT)
        c.wait_pushes(topic("state"), BARRIER_TICKS, since=since, timeout=WAIT)


def last_state(c: Client) -> State:
    return c.pushes_matching(topic("state"))[-1].body


def roster_lines_up(j: Joined, names: dict) -> bool:
    """Joined.roster names exactly `names` (id -> name), one entry per entry of Joined.players,
    in the same order (8.3)."""
    return ([e.id for e in j.roster] == [p.id for p in j.players]
            and {e.id: e.name for e in j.roster} == names and len(j.roster) == len(names))


def scenario(ck: Checks, port: int, clients: list) -> None:
    host = "127.0.0.1"
    # A's callback ids start just below 2^32 so that its echo burst wraps to 0 (section 7.1).
    A = Client.connect(host, port, name="A", first_id=2**32 - 30)
    B = Client.connect(host, port, name="B")
    C = Client.connect(host, port, name="C")
    clients += [A, B, C]
    ws = [A.welcome, B.welcome, C.welcome]
    ck.check("welcome is the first frame, version 1, tick_hz 30 (the default)",
             all(w.version == 1 and w.tick_hz == 30 for w in ws), f"{ws}")
    ck.check("welcome conn_ids are distinct", len({w.conn_id for w in ws}) == 3,
             ", ".join(f"slot {w.slot} gen {w.generation}" for w in ws))
    hz = A.welcome.tick_hz

    # ---- before login ----
    ck.check("join before login -> 1001 ERR_NOT_LOGGED_IN",
             error_of(C.start("join", tc.encode_join("lobby"))) == tc.ERR_NOT_LOGGED_IN)

    # ---- login ----
    names = {A: "ann", B: "bob", C: "cyd"}
    ids = {c: c.login(n) for c, n in names.items()}
    ck.check("login: three players, distinct player_ids", len(set(ids.values())) == 3,
             f"ann={ids[A]} bob={ids[B]} cyd={ids[C]}")

    # ---- rooms ----
    lists = [c.rooms() for c in (A, B, C)]
    lobby = [r for r in lists[0] if r.name == "lobby"]
    ck.check("rooms: all three get the same list, lobby there with capacity 64, 0 players",
             lists[0] == lists[1] == lists[2] and lobby == [RoomInfo("lobby", 0, 64)], f"{lists[0]}")

    # ---- join: A and B in red, C in blue ----
    jA = A.join("red")
    ck.check("A joins red: Joined lists A only",
             jA.room == "red" and [p.id for p in jA.players] == [ids[A]], f"{jA}")
    ck.check("A joins red: Joined.roster names A", jA.roster == [RosterEntry(ids[A], "ann")], f"{jA.roster}")
    pos0 = jA.players[0]
    ck.check("A's position is inside the arena",
             0 <= pos0.x < tc.ARENA_SIZE and 0 <= pos0.y < tc.ARENA_SIZE, f"{pos0}")
    a0 = A.push_count()
    jB = B.join("red")
    ck.check("B joins red: Joined lists A and B",
             jB.room == "red" and sorted(p.id for p in jB.players) == sorted([ids[A], ids[B]]), f"{jB}")
    ck.check("B joins red: Joined.roster names A and B, in the order of Joined.players",
             roster_lines_up(jB, {ids[A]: "ann", ids[B]: "bob"}), f"{jB.roster}")
    p = A.wait_push(lambda p: p.topic == "presence" and p.body == Presence(ids[B], "bob", True),
                    since=a0, timeout=WAIT)
    ck.check("presence: A sees B join red", True, f"{p.body}")
    snap = {c: c.push_count() for c in (A, B, C)}
    jC = C.join("blue")
    ck.check("C joins blue: Joined lists C only",
             jC.room == "blue" and [p.id for p in jC.players] == [ids[C]], f"{jC}")
    barrier(A, B, C)
    aboutC = [p for c in (A, B) for p in c.pushes_matching(topic("presence"), snap[c])]
    ck.check("presence: A and B get nothing when C joins blue", not aboutC, f"{aboutC}")
    ck.check("presence: C (alone in blue) gets no presence push",
             not C.pushes_matching(topic("presence")))
    ck.check("presence: B gets no presence push about its own join",
             not B.pushes_matching(lambda p: p.topic == "presence" and p.body.player_id == ids[B]))

    rl = {r.name: r for r in A.rooms()}
    ck.check("rooms: red has 2 players, blue 1, lobby 0",
             rl.get("red") == RoomInfo("red", 2, 64) and rl.get("blue") == RoomInfo("blue", 1, 64)
             and rl["lobby"].players == 0, f"{sorted(rl.values(), key=lambda r: r.name)}")

    # ---- state pushes: rate and contents ----
    n = 2 * hz
    since = B.push_count()
    st = B.wait_pushes(topic("state"), n + 1, since=since, timeout=2 * n / hz + WAIT)
    rate = n / (st[-1].at - st[0].at)
    ticks = [p.body.tick for p in st]
    gaps = sum(1 for a, b in zip(ticks, ticks[1:]) if b != a + 1)
    ck.check(f"state pushes arrive at ~tick_hz ({hz}/s, +-25%) on B", 0.75 * hz <= rate <= 1.25 * hz,
             f"{rate:.1f}/s over {n} intervals")
    ck.check("state ticks strictly increase", all(b > a for a, b in zip(ticks, ticks[1:])),
             f"ticks {ticks[0]}..{ticks[-1]}, {gaps} gaps")
    ck.check("state on B lists exactly A and B",
             all(sorted(q.id for q in p.body.players) == sorted([ids[A], ids[B]]) for p in st))
    cst = C.wait_pushes(topic("state"), 3, since=snap[C], timeout=WAIT)
    ck.check("state on C (blue) lists exactly C",
             all([q.id for q in p.body.players] == [ids[C]] for p in cst))

    # ---- chat ----
    text = f"hello {random.getrandbits(32):08x}"
    snap = {c: c.push_count() for c in (A, B, C)}
    A.chat(text)
    want = ChatLine(ids[A], "ann", text)
    p = B.wait_push(lambda p: p.topic == "chat" and p.body == want, since=snap[B], timeout=WAIT)
    ck.check("chat: B (same arena) gets A's line", True, f"{p.body}")
    # PROTOCOL.md section 8: "`chat` reaches every player in the arena, the sender included."
    p = A.wait_push(lambda p: p.topic == "chat" and p.body == want, since=snap[A], timeout=WAIT)
    ck.check("chat: A (the sender) gets its own line too, as section 8 says", True)
    barrier(C)
    ck.check("chat: C (other arena) gets no chat push",
             not C.pushes_matching(topic("chat"), snap[C]))
    ck.check("chat: exactly one chat push each to A and B",
             len(A.pushes_matching(topic("chat"), snap[A])) == 1
             and len(B.pushes_matching(topic("chat"), snap[B])) == 1)

    # ---- whisper ----
    text = f"psst {random.getrandbits(32):08x}"
    snap = {c: c.push_count() for c in (A, B, C)}
    A.whisper("cyd", text)
    p = C.wait_push(lambda p: p.topic == "whisper", since=snap[C], timeout=WAIT)
    ck.check("whisper: C gets A's whisper (ChatLine from ann)",
             p.body == ChatLine(ids[A], "ann", text), f"{p.body}")
    barrier(A, B)
    ck.check("whisper: B gets nothing", not B.pushes_matching(topic("whisper"), snap[B]))
    ck.check("whisper: A (sender, not the named player) gets nothing",
             not A.pushes_matching(topic("whisper"), snap[A]))
    ck.check("whisper to a name nobody logged in with -> 1006 ERR_NOT_ONLINE",
             error_of(A.start("whisper", tc.encode_whisper("nobody-here", "hi"))) == tc.ERR_NOT_ONLINE)

    # ---- move ----
    x0 = last_state(B).player(ids[A])
    dx = 1 if x0.x < tc.ARENA_SIZE // 2 else -1
    since = B.push_count()
    t1 = A.move(dx, 0)
    first = B.wait_push(lambda p: p.topic == "state" and p.body.player(ids[A]).x != x0.x,
                        since=since, timeout=WAIT).body
    pa = first.player(ids[A])
    ck.check("move: B sees A's new position in a state push",
             pa.y == x0.y and (pa.x - x0.x) * dx > 0, f"{x0} -> {pa} at tick {first.tick}, dx={dx}")
    ck.check("move: first moved state has tick == Moved.tick and one SPEED step",
             first.tick == t1 and pa.x - x0.x == dx * tc.SPEED,
             f"Moved.tick={t1}, first moved state tick={first.tick}, step={pa.x - x0.x}")
    # Let it run a few ticks, then stop.
    B.wait_pushes(lambda p: p.topic == "state" and p.body.tick >= t1 + 3, 1, since=since, timeout=WAIT)
    t2 = A.move(0, 0)
    B.wait_pushes(lambda p: p.topic == "state" and p.body.tick >= t2 + 3, 1, since=since, timeout=WAIT)
    seen = [(p.body.tick, p.body.player(ids[A])) for p in B.pushes_matching(topic("state"), since)]
    wrong = []
    for tick, q in seen:
        steps = max(0, min(tick, t2 - 1) - t1 + 1)
        want_x = x0.x + dx * tc.SPEED * steps
        if q.x != want_x or q.y != x0.y:
            wrong.append((tick, q.x, q.y, want_x))
    ck.check("move: every state from Moved.tick on shows x0 + SPEED*(ticks moved), stops at the 0,0 Moved.tick",
             not wrong, f"x0={x0.x}, moved at {t1}, stopped at {t2}; mismatches (tick,x,y,want_x) {wrong[:5]}")

    # ---- 50 echo calls in flight ----
    bodies = [os.urandom(random.randrange(0, 300)) for _ in range(50)]
    calls = [A.start("echo", b) for b in bodies]
    answers = [c.wait(WAIT) for c in calls]
    idset = {c.id for c in calls}
    bad = [(c.id, a) for c, a in zip(calls, answers)
           if not (isinstance(a, Reply) and a.id == c.id and a.body == c.body)]
    ck.check("echo: 50 calls in flight with distinct ids, each reply matches its id and body",
             len(idset) == 50 and not bad,
             f"ids {calls[0].id}..{calls[-1].id} (wrapped past 2^32-1: {0 in idset}), "
             f"out-of-order answers so far {A.stats.answered_out_of_order}, bad {bad[:3]}")
    big = os.urandom(60000)
    ck.check("echo: a 60 000-byte body comes back verbatim", A.echo(big) == big)

    # ---- error codes ----
    ck.check("unknown route -> error 1 unknown_route",
             error_of(A.start("no_such_route", b"")) == tc.UNKNOWN_ROUTE)
    ck.check("malformed body: login with a trailing byte -> error 2 bad_body",
             error_of(A.start("login", tc.encode_login("ann") + b"\x00")) == tc.BAD_BODY)
    ck.check("malformed body: move with one byte -> error 2 bad_body",
             error_of(A.start("move", b"\x01")) == tc.BAD_BODY)
    ck.check("malformed body: rooms (a () route) with a non-empty body -> error 2 bad_body",
             error_of(A.start("rooms", b"\x00")) == tc.BAD_BODY)
    ck.check("malformed body: chat text that is not UTF-8 -> error 2 bad_body",
             error_of(A.start("chat", b"\x02\xff\xfe")) == tc.BAD_BODY)
    bid = 4242
    raw = Writer().u32(0).u32(bid).varint(10).raw(b"ec").done()   # route claims 10 bytes, has 2
    ck.check("truncated route, readable id -> error 4 bad_frame with that id",
             error_of(A.start("(truncated)", id=bid, raw_frame=raw)) == tc.BAD_FRAME)
    ck.check("connection still usable after the errors", A.echo(b"\x01\x02") == b"\x01\x02")

    # ---- leave, and join moving between arenas ----
    snap = {c: c.push_count() for c in (A, B, C)}
    B.leave()
    p = A.wait_push(lambda p: p.topic == "presence" and p.body == Presence(ids[B], "bob", False),
                    since=snap[A], timeout=WAIT)
    ck.check("leave: A sees B leave red (presence joined=false)", True, f"{p.body}")
    b_after = B.push_count()
    barrier(A, C)
    ck.check("leave: C gets no presence push", not C.pushes_matching(topic("presence"), snap[C]))
    ck.check("leave: B gets no state push after its leave reply",
             not B.pushes_matching(topic("state"), b_after))
    ck.check("leave: the state on A lists A only", [q.id for q in last_state(A).players] == [ids[A]])
    ck.check("leave when in no arena -> 1002 ERR_NOT_IN_ROOM",
             error_of(B.start("leave", b"")) == tc.ERR_NOT_IN_ROOM)

    snap = {c: c.push_count() for c in (A, B, C)}
    B.join("red")
    A.wait_push(lambda p: p.topic == "presence" and p.body == Presence(ids[B], "bob", True),
                since=snap[A], timeout=WAIT)
    snap = {c: c.push_count() for c in (A, B, C)}
    jB = B.join("blue")
    ck.check("join blue while in red: Joined lists B and C",
             jB.room == "blue" and sorted(p.id for p in jB.players) == sorted([ids[B], ids[C]]), f"{jB}")
    ck.check("join blue while in red: Joined.roster names B and C, in the order of Joined.players",
             roster_lines_up(jB, {ids[B]: "bob", ids[C]: "cyd"}), f"{jB.roster}")
    pa = A.wait_push(topic("presence"), since=snap[A], timeout=WAIT).body
    pc = C.wait_push(topic("presence"), since=snap[C], timeout=WAIT).body
    ck.check("join elsewhere: A sees B leave red, C sees B join blue",
             pa == Presence(ids[B], "bob", False) and pc == Presence(ids[B], "bob", True), f"A: {pa}; C: {pc}")
    since = B.push_count()
    st = B.wait_push(topic("state"), since=since, timeout=WAIT).body
    ck.check("state on B now lists B and C", sorted(q.id for q in st.players) == sorted([ids[B], ids[C]]))

    for c in (A, B, C):
        ck.check(f"client {c.name}: no protocol errors and no answers to unknown ids",
                 not c.stats.protocol_errors and not c.stats.unexpected_answers,
                 f"{c.stats.protocol_errors} {c.stats.unexpected_answers}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.path.join(REPO, "target", "release", "ticksock-arena"))
    ap.add_argument("--doc", default=os.path.join(REPO, "docs", "PROTOCOL.md"))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    random.seed(seed)
    print(f"seed {seed}", flush=True)

    ck = Checks()
    check_vectors(ck, args.doc)

    log = tempfile.NamedTemporaryFile(prefix="ticksock-server-", suffix=".log", delete=False)
    try:
        proc, port = start_server(args.server, log)
    except (OSError, RuntimeError) as e:
        ck.check("server starts and listens", False, f"{args.server}: {e}")
        log.close()
        print(f"server log: {log.name}")
        return 1
    print(f"server pid {proc.pid} on 127.0.0.1:{port}, log {log.name}", flush=True)
    clients: list = []
    try:
        try:
            scenario(ck, port, clients)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            ck.check("scenario ran to the end", False, repr(e))
        reasons = spec_checks.run(ck, port, args.doc, args.server, log)
        v2_checks.run(ck, port, args.doc, args.server, log)
        closing_checks.run(ck, port, args.doc, args.server, log)
        replica_checks.run(ck, port, args.server, log, args.doc, seed)
        tick_checks.run(ck, port)

        # ---- closing ----
        D = Client.connect("127.0.0.1", port, name="D")
        D.login("dee")
        D.join("lobby")
        for c in clients:
            code = c.close(1000)
            ck.check(f"client {c.name}: clean close (server answers close 1000, TCP ends)",
                     c.closed and code == 1000, f"server close code {code}")
        proc.send_signal(signal.SIGINT)
        D.wait_closed(10)
        ck.check("SIGINT: a connected client gets close 1001 (going away)",
                 D.closed and D.close_code == 1001, f"code {D.close_code}")
        ck.check("SIGINT: the close reason is `server shutting down`, as section 7.5's table says",
                 D.close_reason == "server shutting down" and (1001, D.close_reason) in reasons,
                 f"reason {D.close_reason!r}")
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        ck.check("server exits with status 0 after SIGINT", rc == 0, f"status {rc}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    print(f"\n{ck.passed} passed, {len(ck.failed)} failed", flush=True)
    if ck.failed:
        print("failed: " + "; ".join(ck.failed))
        print(f"server log: {log.name}")
        return 1
    os.unlink(log.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
