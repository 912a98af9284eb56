"""Checks of state replication (PROTOCOL.md sections 14 and 8.9) against the real server.

check.py merges ``vector_table`` into its test-vector check and calls ``run`` after the other
groups. ``run`` starts its own server, ``--replication --replica-digests --state-every 2`` with a
temporary ``--db``, and puts seven clients in ``lobby``:

* ``ann`` (``ticksock.v1``) and its twin ``ann~`` (``ticksock.v1.json``, logged in with the same
  name, so the same avatar: 8.7): the two must see the same thing at every tick;
* ``bob``, ``cyd`` (``ticksock.v1``), ``eve`` (``ticksock.v1.json``);
* ``dan`` (``ticksock.v2``), whose link is cut and resumed while updates flow;
* ``nat`` (``ticksock.v1``), which acknowledges nothing until, near the end, it acknowledges
  an update older than its latest full snapshot; then it closes.

Each client has a thread that applies every ``replica`` update as 14.2 says (``replica.Mirror``),
checks that the update's baseline is the latest tick the server had answered ``accepted`` for
before it (pushes and replies come in the order the logic thread made them, 7.3 point 2),
checks every entity it sees against the interest rule of 8.9 around its own position, and
acknowledges by a seeded random policy: at once after a full snapshot; otherwise now, never, or
a few updates late (an older tick). After applying what has arrived it asks ``replica_digest``
and compares when the answer is for the tick it just applied; an answer for a later tick (the
server sent another update meanwhile) is counted, not compared. The players move toward the
centre, then apart, so that they enter and leave each other's neighbourhoods. Then the threads
stop, and ``bob`` and ``eve`` make the acknowledgements no policy makes by accident: a tick
never sent and one between two updates (``unknown``), a new one twice (``accepted``, then
``stale``), one before the baseline (``stale``). Last, the views of all the clients are
compared with each other, tick by tick.

Waiting is on the server's clock as the clients see it (the ticks of the updates they apply),
never on a sleep: a live server has no simulated time.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import threading
import time
import traceback
from typing import Any, Optional

import replica
import servers
import ticksock_client as tc
import ticksock_json as tj
import ticksock_v2 as v2
from replica import Mirror
from ticksock_client import EntityUpdate, PushFrame, ReplicaUpdate

HOST = "127.0.0.1"
WAIT = 5.0
STATE_EVERY = 2          # the server's --state-every: an update at most every 2 ticks
PHASE_TICKS = 48         # ticks a phase of movement lasts (at 30 Hz: 1.6 s)
LATE_MAX = 4             # a late acknowledgement comes 1 to 4 updates after its update
MIN_COMPARED = 10        # digests each client must have compared for the check to mean anything
FAR_FUTURE = 10**9       # ticks ahead: a tick no update has had


# --------------------------------------------------------------------------------------------
# Test vectors (section "Replication") and the JSON example of 14.3
# --------------------------------------------------------------------------------------------


def _player(id: int, fields: list) -> EntityUpdate:
    return EntityUpdate(id, replica.PLAYER_KIND,
                        tuple((i, replica.encode_field(replica.PLAYER_KIND, i, v)) for i, v in fields))


FULL = ReplicaUpdate(5, None, (_player(1, [(0, (10, -3)), (1, 7), (2, "ann")]),), (), ())
DELTA = ReplicaUpdate(7, 5, (), (_player(1, [(0, (11, -3))]),), (2,))


def _push_replica(v: ReplicaUpdate) -> bytes:
    return tc.encode_server_frame(PushFrame("replica", tc.encode_replica_update(v)))


def _pushed_replica(b: bytes) -> ReplicaUpdate:
    f = tc.decode_server_frame(b)
    if not isinstance(f, PushFrame) or f.topic != "replica":
        raise tc.DecodeError(f"not a replica push: {f!r}")
    return tc.decode_replica_update(f.body)


def _request(b: bytes) -> tuple:
    r = tc.Reader(b)
    if r.u32() != 0:
        raise tc.DecodeError("not a request")
    id, route, body = r.u32(), r.str(), tc.Reader(r.rest())
    tick = body.u64()
    body.end()
    return id, route, tick


def _reply_outcome(b: bytes) -> tuple:
    f = tc.decode_server_frame(b)
    if not isinstance(f, tc.Reply):
        raise tc.DecodeError(f"not a reply: {f!r}")
    return f.id, tc.decode_ack_outcome(f.body)


def _reply_digest(v: tuple) -> bytes:
    body = tc.Writer().option(v[1], lambda w, t: w.u64(t[0]).u64(t[1])).done()
    return tc.encode_server_frame(tc.Reply(v[0], body))


def _replied_digest(b: bytes) -> tuple:
    f = tc.decode_server_frame(b)
    if not isinstance(f, tc.Reply):
        raise tc.DecodeError(f"not a reply: {f!r}")
    return f.id, tc.decode_replica_digest(f.body)


def vector_table() -> dict:
    """The replication vector names of PROTOCOL.md -> (value, encode, decode), as check.py expects."""
    outcome = (lambda v: tc.encode_ack_outcome(v), tc.decode_ack_outcome)
    return {
        "body_replica_full": (FULL, tc.encode_replica_update, tc.decode_replica_update),
        "push_replica_delta": (DELTA, _push_replica, _pushed_replica),
        "request_replica_ack": ((9, "replica_ack", 7),
                                lambda v: tc.encode_request(v[0], v[1], tc.Writer().u64(v[2]).done()), _request),
        "reply_replica_ack": ((9, "accepted"),
                              lambda v: tc.encode_server_frame(tc.Reply(v[0], tc.encode_ack_outcome(v[1]))),
                              _reply_outcome),
        "body_ack_outcome_stale": ("stale", *outcome),
        "body_ack_outcome_unknown": ("unknown", *outcome),
        # The digest of the view FULL makes, computed here by 14.5 (not copied from the doc).
        "reply_replica_digest": ((9, (5, replica.digest(Mirror().apply(FULL)))), _reply_digest, _replied_digest),
    }


def check_json_example(ck, doc: str) -> None:
    start = doc.index("### 14.3")
    section = doc[start:doc.index("\n### ", start + 1)]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    try:
        o = json.loads(blocks[0])
        u = replica.update_from_json(o)
        ok = u == DELTA and replica.update_to_json(u) == o
        detail = f"{blocks[0].strip()} -> {u}"
    except (IndexError, ValueError) as e:
        ok, detail = False, repr(e)
    ck.check("replica JSON example of 14.3 is the update of the vector push_replica_delta, and back",
             ok, detail)


# --------------------------------------------------------------------------------------------
# One client of the live check
# --------------------------------------------------------------------------------------------


class Peer:
    """A client in lobby that mirrors its view: see the module's documentation."""

    def __init__(self, label: str, conn: Any, encoding: str, rng: random.Random, acks: bool,
                 cond: threading.Condition) -> None:
        self.label, self.conn, self.encoding, self.rng, self.acks = label, conn, encoding, rng, acks
        self.auto_ack = acks                    # the policy below acknowledges (off for the special acks)
        self.acking_client = acks               # False: the client that acknowledges nothing (nat)
        self.pid = 0
        self.start_pos: Optional[tuple] = None
        self.digest_before_join: Optional[tuple] = None   # replica_digest after login, before join
        self.mirror = Mirror()
        self.cond = cond                        # shared by the clients: notified at each update applied
        self.next_pos = 0                       # the next push (v1) or log index (v2) to take
        self.updates: list = []                 # (position, ReplicaUpdate, applied)
        self.accepted: list = []                # (position of the reply, tick), in order
        self.last_accepted: Optional[int] = None
        self.late: list = []                    # (updates left to wait, tick)
        self.ack_log: list = []                 # (tick, outcome, expected)
        self.baseline_errors: list = []
        self.interest_errors: list = []
        self.history: dict = {}                 # tick -> replica.players(view)
        self.digests: dict = {}                 # tick -> our digest
        self.compared = 0
        self.moved_on = 0                       # the server's answer was for a later tick
        self.mismatches: list = []
        self.other_errors: list = []
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # ---- what differs per client kind ----

    def fetch(self) -> list:
        """[(position, ReplicaUpdate)] of the replica pushes not taken yet."""
        c = self.conn
        if isinstance(c, v2.V2Client):
            with c._cond:                       # the log only grows: take what is new, by index
                new, self.next_pos = c.log[self.next_pos:], len(c.log)
            return [(e.n, replica.binary_update(e.body)) for e in new
                    if isinstance(e.frame, PushFrame) and e.frame.topic == "replica"]
        new = c.pushes_matching(lambda p: p.topic == "replica", self.next_pos)
        if new:
            self.next_pos = new[-1].seq + 1
        if isinstance(c, tj.JsonClient):
            return [(p.seq, replica.update_from_json(p.body)) for p in new]
        return [(p.seq, replica.binary_update(p.body)) for p in new]

    def wait_more(self, timeout: float) -> None:
        c = self.conn
        if isinstance(c, v2.V2Client):
            c.wait_for(lambda: len(c.log) > self.next_pos, timeout)
        else:
            try:
                c.wait_push(lambda p: p.topic == "replica", self.next_pos, timeout)
            except (tc.CallTimeout, tc.ConnectionClosed):
                pass

    def ack(self, tick: int) -> tuple:
        """(outcome, position from which pushes came after the answer)."""
        c = self.conn
        if isinstance(c, v2.V2Client):
            call = c.start("replica_ack", tc.Writer().u64(tick).done())
            outcome = tc.decode_ack_outcome(call.result(WAIT))
            return outcome, max(e.n for e in c.answers_to(call.id)) + 1
        return c.replica_ack(tick, WAIT)

    def digest(self) -> Optional[tuple]:
        c = self.conn
        if isinstance(c, v2.V2Client):
            return tc.decode_replica_digest(c.call("replica_digest", b"", WAIT))
        return c.replica_digest(WAIT)

    def move(self, dx: int, dy: int) -> int:
        c = self.conn
        if isinstance(c, v2.V2Client):
            return tc.decode_moved(c.call("move", tc.encode_move(dx, dy), WAIT))
        return c.move(dx, dy, WAIT)

    def enter(self, name: str) -> None:
        """Logs in, checks that there is no digest yet, joins lobby and notes its position."""
        c = self.conn
        if isinstance(c, v2.V2Client):
            self.pid = tc.decode_logged_in(c.call("login", tc.encode_login(name), WAIT))
            self.digest_before_join = self.digest()
            j = tc.decode_joined(c.call("join", tc.encode_join("lobby"), WAIT))
            players = [(p.id, p.x, p.y) for p in j.players]
        elif isinstance(c, tj.JsonClient):
            self.pid = c.login(name)
            self.digest_before_join = self.digest()
            players = [(p["id"], p["x"], p["y"]) for p in c.join("lobby")["players"]]
        else:
            self.pid = c.login(name)
            self.digest_before_join = self.digest()
            players = [(p.id, p.x, p.y) for p in c.join("lobby").players]
        self.start_pos = next((x, y) for id, x, y in players if id == self.pid)

    # ---- applying ----

    def expected_baseline(self, pos: int) -> Optional[int]:
        """The latest tick answered `accepted` before the push at `pos` (14.4: the server's next
        update is a delta from it)."""
        ticks = [t for q, t in self.accepted if q <= pos]
        return ticks[-1] if ticks else None

    def take(self, pos: int, u: ReplicaUpdate) -> None:
        want = self.expected_baseline(pos) if self.acks else None
        if u.baseline != want:
            self.baseline_errors.append((u.tick, u.baseline, want))
        view = self.mirror.apply(u)
        self.updates.append((pos, u, view is not None))
        if view is None:
            return
        seen = replica.players(view)
        self.history[u.tick] = seen
        self.digests[u.tick] = replica.digest(view)
        me = seen.get(self.pid)
        if me is None:
            self.interest_errors.append((u.tick, "its own player is not in its view"))
        else:
            far = {pid: p for pid, (_, p, _) in seen.items() if not replica.sees(me[1], p)}
            if far:
                self.interest_errors.append((u.tick, f"at {me[1]} sees {far}"))
        if not self.auto_ack:
            return
        if u.baseline is None:
            self.acknowledge(u.tick)        # at once after a full snapshot (14.4)
        else:
            roll = self.rng.random()
            if roll < 0.35:
                self.acknowledge(u.tick)
            elif roll < 0.7:
                self.late.append([self.rng.randint(1, LATE_MAX), u.tick])
            # else: never acknowledged
        for entry in self.late:
            entry[0] -= 1
        for entry in [e for e in self.late if e[0] < 0]:
            self.late.remove(entry)
            self.acknowledge(entry[1])

    def acknowledge(self, tick: int, expected: Optional[str] = None) -> str:
        if expected is None:
            expected = "stale" if self.last_accepted is not None and tick <= self.last_accepted else "accepted"
        outcome, q = self.ack(tick)
        self.ack_log.append((tick, outcome, expected))
        if outcome == "accepted":
            self.accepted.append((q, tick))
            self.last_accepted = tick
        return outcome

    def compare_digest(self) -> None:
        applied = self.mirror.applied[-1] if self.mirror.applied else None
        if applied is None or self.updates[-1][1].tick != applied:
            return                              # the latest update was not applied
        answer = self.digest()
        if answer is None:
            self.other_errors.append(f"replica_digest answered none after update {applied}")
        elif answer[0] == applied:
            self.compared += 1
            if answer[1] != self.digests[applied]:
                self.mismatches.append((applied, answer[1], self.digests[applied]))
        elif answer[0] > applied:
            self.moved_on += 1
        else:
            self.other_errors.append(f"replica_digest is of tick {answer[0]}, before update {applied}")

    def process(self) -> int:
        """Applies every update that has arrived, then compares digests; returns how many."""
        batch = self.fetch()
        for pos, u in batch:
            self.take(pos, u)
        if batch:
            self.compare_digest()
            with self.cond:
                self.cond.notify_all()
        return len(batch)

    # ---- the thread ----

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.process():
                    self.wait_more(0.2)
        except Exception as e:  # noqa: BLE001 - reported by the checks
            traceback.print_exc()
            self.other_errors.append(f"thread: {e!r}")
            with self.cond:
                self.cond.notify_all()

    def begin(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"replica-{self.label}", daemon=True)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(WAIT * 2)


def latest_tick(peers: list) -> int:
    return max((p.mirror.applied[-1] for p in peers if p.mirror.applied), default=0)


def wait_ticks(peers: list, cond: threading.Condition, n: int) -> int:
    """Waits until some client has applied an update `n` ticks past the latest any has now: the
    server's clock, as the clients see it (a live server has no simulated time). Returns the
    latest tick then."""
    target = latest_tick(peers) + n
    with cond:
        cond.wait_for(lambda: latest_tick(peers) >= target, n / 30 * 3 + WAIT)
    return latest_tick(peers)


# --------------------------------------------------------------------------------------------
# The live check
# --------------------------------------------------------------------------------------------


def toward(a: int, b: int) -> int:
    return (b > a) - (b < a)


def check_live(ck, port: int, rng: random.Random) -> None:
    specs = [("ann", "rep-ann", "binary", True), ("ann~", "rep-ann", "json", True),
             ("bob", "rep-bob", "binary", True), ("cyd", "rep-cyd", "binary", True),
             ("eve", "rep-eve", "json", True), ("dan", "rep-dan", "v2", True),
             ("nat", "rep-nat", "binary", False)]
    peers: dict = {}
    everyone: list = []                     # for closing, whatever happens
    cond = threading.Condition()
    try:
        for label, name, encoding, acks in specs:
            if encoding == "binary":
                conn = tc.Client.connect(HOST, port, name=label)
            elif encoding == "json":
                conn = tj.JsonClient.connect(HOST, port, name=label)
            else:
                conn = v2.V2Client.connect(HOST, port, name=label, ack_delay=0.2)
            p = Peer(label, conn, encoding, random.Random(rng.random()), acks, cond)
            peers[label] = p
            everyone.append(p)
            p.enter(name)
        ck.check("replica_digest before any update answers none (8.9)",
                 all(p.digest_before_join is None for p in peers.values()),
                 f"{[(p.label, p.digest_before_join) for p in peers.values()]}")
        ck.check("replica: the twin (JSON, same name) is the same player as ann (8.7)",
                 peers["ann"].pid == peers["ann~"].pid, f"{peers['ann'].pid} {peers['ann~'].pid}")
        for p in peers.values():
            p.begin()
        movers = [p for p in peers.values() if p.label != "ann~"]
        ck.info("replica: players", ", ".join(f"{p.label} id {p.pid} at {p.start_pos}" for p in movers))

        # Phase 1: every mover toward the centre, so that neighbourhoods meet.
        every = list(peers.values())
        for p in movers:
            p.move(toward(p.start_pos[0], 500), toward(p.start_pos[1], 500))
        wait_ticks(every, cond, PHASE_TICKS)

        # Phase 2: apart, each its own way; dan's link is cut and resumed on the way.
        ways = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1)]
        for p, (dx, dy) in zip(movers, ways):
            p.move(dx, dy)
        wait_ticks(every, cond, PHASE_TICKS // 3)
        dan = peers["dan"]
        cut_at = dan.conn.received
        dan.conn.cut()
        wait_ticks(every, cond, 4 * STATE_EVERY)   # updates flow while dan's link is down
        resumed = dan.conn.resume()
        wait_ticks(every, cond, PHASE_TICKS // 2)

        # nat acknowledges an update older than its latest snapshot, then closes: its avatar is
        # away, and nobody sees it any more (8.7, 8.9).
        nat = peers.pop("nat")
        nat.end()
        late_ack = check_ack_before_snapshot(ck, nat)
        nat_closed = nat.conn.close(1000)
        closed_tick = latest_tick(every)
        wait_ticks(every, cond, PHASE_TICKS // 3)

        # The threads stop; what has arrived by then is applied, the rest is not looked at.
        for p in peers.values():
            p.end()
            p.process()

        check_special_acks(ck, peers["bob"])
        check_special_acks(ck, peers["eve"])
        check_peers(ck, peers, nat, closed_tick, late_ack)
        check_resume(ck, dan, cut_at, resumed)
        ck.check("replica: nat closed with 1000", nat_closed == 1000, f"{nat_closed}")
        bad = {p.label: (p.conn.stats.protocol_errors, p.conn.stats.unexpected_answers)
               for p in [*peers.values(), nat]
               if p.conn.stats.protocol_errors or p.conn.stats.unexpected_answers}
        ck.check("replica: no protocol errors and no answers to unknown ids on any client", not bad, f"{bad}")
        states = {p.label: len(p.conn.pushes_matching(lambda f: f.topic == "state"))
                  for p in [*peers.values(), nat] if not isinstance(p.conn, v2.V2Client)}
        states["dan"] = len(dan.conn.pushes("state"))
        ck.check("replica: no `state` push with --replication (8.9)", not any(states.values()), f"{states}")
    finally:
        for p in everyone:
            p.stop.set()
            try:
                p.conn.close(1000)
            except Exception:  # noqa: BLE001 - closing what may be gone already
                pass


def check_peers(ck, peers: dict, nat: Peer, closed_tick: int, late_ack: int) -> None:
    everyone = [*peers.values(), nat]
    for p in everyone:
        first = p.updates[0][1] if p.updates else None
        ck.check(f"replica {p.label} ({p.encoding}): the first update is a full snapshot (14.4)",
                 first is not None and first.baseline is None,
                 f"tick {first.tick}, baseline {first.baseline}, entered {[e.id for e in first.entered]}"
                 if first else "no update")
        ck.check(f"replica {p.label}: every update applied (its baseline view held), as 14.2 says, without contradiction",
                 p.updates and not p.mirror.dropped and not p.mirror.errors,
                 f"{len(p.updates)} updates, dropped {[u.tick for u in p.mirror.dropped][:5]}, "
                 f"errors {p.mirror.errors[:3]}")
        gaps = sorted({b - a for a, b in zip(p.mirror.applied, p.mirror.applied[1:])})
        ck.check(f"replica {p.label}: update ticks at least --state-every ({STATE_EVERY}) apart (8.9)",
                 gaps and gaps[0] >= STATE_EVERY, f"tick gaps seen {gaps}")
        if p.acking_client:
            deltas = sum(1 for _, u, _ in p.updates if u.baseline is not None)
            ck.check(f"replica {p.label}: each update's baseline is the latest tick answered `accepted` before it (14.4)",
                     not p.baseline_errors and deltas > 0,
                     f"{deltas} deltas; (tick, baseline, expected) wrong: {p.baseline_errors[:4]}")
            wrong = [a for a in p.ack_log if a[1] != a[2]]
            kinds = {o: sum(1 for a in p.ack_log if a[1] == o) for o in tc.ACK_OUTCOMES}
            ck.check(f"replica {p.label}: acknowledgements (at once, late, skipped) answer accepted, or stale at or before the baseline (14.4)",
                     not wrong and kinds["accepted"] > 0 and kinds["stale"] > 0,
                     f"{len(p.ack_log)} acks {kinds}; (tick, got, expected) wrong {wrong[:4]}")
        else:
            fulls = sum(1 for _, u, _ in p.updates[:late_ack] if u.baseline is None)
            ck.check(f"replica {p.label}: a client that never acknowledges gets only full snapshots (14.4)",
                     late_ack > PHASE_TICKS // STATE_EVERY and fulls == late_ack and not p.baseline_errors,
                     f"{fulls} of {late_ack} before its one acknowledgement; (tick, baseline, expected) "
                     f"wrong: {p.baseline_errors[:4]}")
        ck.check(f"replica {p.label}: its digest (14.5) equals the server's replica_digest for the tick it applied",
                 p.compared >= MIN_COMPARED and not p.mismatches and not p.other_errors,
                 f"compared {p.compared}, answer for a later tick {p.moved_on}, "
                 f"mismatches (tick, server, ours) {p.mismatches[:3]}, {p.other_errors[:3]}")
        ck.check(f"replica {p.label}: sees itself, and every entity it sees is within 1 cell of its own (8.9)",
                 not p.interest_errors and p.history, f"{p.interest_errors[:3]}")

    ticks = sorted({t for p in everyone for t in p.mirror.applied})
    ck.info(f"replica: which ticks carry updates with --state-every {STATE_EVERY} (8.9 says every "
            f"{STATE_EVERY} ticks, not which)",
            f"{sum(1 for t in ticks if t % STATE_EVERY == 0)} of {len(ticks)} update ticks are multiples of "
            f"{STATE_EVERY}; first {ticks[:3]}")

    # Between clients: the same entity at the same tick is the same; whoever is in a client's
    # neighbourhood (by the other's own position) is in its view; the twin sees what ann sees.
    ids, differ, missed, pairs = {}, [], [], 0
    for a in everyone:
        for tick, seen in a.history.items():
            for pid, (eid, _, name) in seen.items():
                if ids.setdefault(eid, (pid, name)) != (pid, name):
                    differ.append((a.label, tick, eid, ids[eid], (pid, name)))
    for a in everyone:
        for b in everyone:
            if a is b or a.pid == b.pid:
                continue
            for tick in a.history.keys() & b.history.keys():
                pairs += 1
                va, vb = a.history[tick], b.history[tick]
                for pid in va.keys() & vb.keys():
                    if va[pid] != vb[pid]:
                        differ.append((a.label, b.label, tick, va[pid], vb[pid]))
                if b.pid in vb and a.pid in va and replica.sees(va[a.pid][1], vb[b.pid][1]) \
                        and b.pid not in va:
                    missed.append((a.label, b.label, tick, va[a.pid][1], vb[b.pid][1]))
    ck.check("replica: every client sees the same entity (id, player id, name, position) at the same tick, "
             "binary and JSON alike", not differ and pairs > 0, f"{pairs} (client, client, tick) views; {differ[:3]}")
    ck.check("replica: a player within 1 cell of a client (by both clients' own views of that tick) is in its view (8.9)",
             not missed, f"{missed[:3]}")
    ann, twin = peers["ann"], peers["ann~"]
    common = ann.history.keys() & twin.history.keys()
    same = [t for t in common if ann.history[t] == twin.history[t] and ann.digests[t] == twin.digests[t]]
    ck.check("replica: ann (binary) and its twin (JSON, the same avatar) hold the same view and digest at every tick both applied",
             len(common) >= MIN_COMPARED and len(same) == len(common),
             f"{len(same)} of {len(common)} ticks; differ at {sorted(common - set(same))[:5]}")
    entered = sum(len(u.entered) for p in everyone for _, u, _ in p.updates if u.baseline is not None)
    left = sum(len(u.left) for p in everyone for _, u, _ in p.updates)
    ck.check("replica: the run moved players across neighbourhoods (deltas with entered and left entities)",
             entered > 0 and left > 0, f"entered in deltas {entered}, left {left}")
    saw_nat = [p.label for p in peers.values() if any(nat.pid in s for s in p.history.values())]
    later = {p.label: [t for t in p.history if t > closed_tick + 2 * STATE_EVERY] for p in peers.values()}
    after = {label: [t for t in ticks if nat.pid in peers[label].history[t]] for label, ticks in later.items()}
    ck.check("replica: after nat closed, no client sees it any more (away players are not seen, 8.9)",
             not any(after.values()) and sum(map(len, later.values())) > 0,
             f"seen before by {saw_nat}; {sum(map(len, later.values()))} views after tick {closed_tick}, "
             f"with nat: {after}")
    if not saw_nat:
        ck.info("replica: nobody saw nat before it closed", "the check above proves little this run")


def check_resume(ck, dan: Peer, cut_at: int, resumed: Any) -> None:
    after = [(pos, u, applied) for pos, u, applied in dan.updates if pos > cut_at]
    ck.check("replica dan (v2): the cut link resumes (Resumed), and its updates go on as deltas, none dropped (14.4)",
             isinstance(resumed, v2.Resumed) and after and all(u.baseline is not None and applied
                                                              for _, u, applied in after),
             f"{resumed}; {len(after)} updates after the cut, "
             f"full snapshots {sum(1 for _, u, _ in after if u.baseline is None)}")


def check_ack_before_snapshot(ck, p: Peer) -> int:
    """A client that has acknowledged nothing (so gets full snapshots) acknowledges the update
    two before its latest: the server still holds it (the 32 latest updates), so it is accepted,
    and the next update is a delta from it, which the client applies from the view it kept
    (14.2: "its views older than a full snapshot too"). Returns how many updates came before."""
    p.process()
    before = len(p.updates)
    old = p.mirror.applied[-3]
    p.acks = True                           # from here on, baselines follow its acknowledgements
    got = p.acknowledge(old, "accepted")
    p.move(toward(p.start_pos[0], 500) or 1, toward(p.start_pos[1], 500) or 1)   # so that updates come
    q = p.accepted[-1][0] if p.accepted else 0
    deadline = time.monotonic() + WAIT
    while not any(pos >= q for pos, _, _ in p.updates[before:]) and time.monotonic() < deadline:
        p.wait_more(WAIT)
        p.process()
    nxt = next((u for pos, u, _ in p.updates[before:] if pos >= q), None)
    applied = nxt is not None and nxt.tick in p.mirror.views
    ck.check(f"replica {p.label}: acknowledging an update older than its latest full snapshot is accepted, and "
             "the next update is a delta from it, applied from the view kept (14.2, 14.4)",
             got == "accepted" and nxt is not None and nxt.baseline == old and applied,
             f"ack {old} (latest {p.mirror.applied[before - 1]}): {got}; next update "
             f"{nxt and (nxt.tick, nxt.baseline)}, applied {applied}")
    return before


def check_special_acks(ck, p: Peer) -> None:
    """Acknowledgements a client never makes by accident. The client's thread has stopped; it
    moves, so that updates come, and applies two or more without acknowledging them."""
    p.auto_ack = False
    p.move(toward(p.start_pos[0], 500) or 1, toward(p.start_pos[1], 500) or 1)
    count = len(p.mirror.applied)
    deadline = time.monotonic() + WAIT
    while len(p.mirror.applied) < count + 2 and time.monotonic() < deadline:
        p.wait_more(WAIT)
        p.process()
    p.move(0, 0)
    prev, latest = p.mirror.applied[-2:]
    base = p.last_accepted
    got = p.acknowledge(latest + FAR_FUTURE, "unknown")
    ck.check(f"replica {p.label} ({p.encoding}): acknowledging a tick never sent answers unknown (14.4)",
             got == "unknown", f"tick {latest + FAR_FUTURE}: {got}")
    got = p.acknowledge(prev + 1, "unknown")
    ck.check(f"replica {p.label}: acknowledging a tick between two updates, after the baseline, answers unknown (14.4)",
             latest - prev >= 2 and base < prev and got == "unknown",
             f"tick {prev + 1} between updates {prev} and {latest}, baseline {base}: {got}")
    first = p.acknowledge(latest, "accepted")
    again = p.acknowledge(latest, "stale")
    ck.check(f"replica {p.label}: acknowledging a new update is accepted, and again is stale (14.4)",
             (first, again) == ("accepted", "stale"), f"tick {latest}: {first}, then {again}")
    older = p.acknowledge(prev, "stale")
    ck.check(f"replica {p.label}: acknowledging an update before the baseline is stale (14.4)",
             older == "stale", f"tick {prev} (baseline {latest}): {older}")
    zero = p.ack(0)[0]
    ck.info(f"replica {p.label}: acknowledging tick 0 (never sent, and before the baseline: "
            "14.4 makes it both stale and unknown)", f"{zero}")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def check_without_replication(ck, port: int) -> None:
    """The main server runs without --replication (8.9): `replica_ack` answers unknown, and
    `replica_digest` none (no --replica-digests either)."""
    c = tc.Client.connect(HOST, port, name="R0")
    j = tj.JsonClient.connect(HOST, port, name="R0j")
    try:
        c.login("rep-plain")
        c.join("lobby")
        outcome, _ = c.replica_ack(5)
        j.login("rep-plain-j")
        j.join("lobby")
        joutcome, _ = j.replica_ack(5)
        ck.check("replica_ack without --replication answers unknown, in binary and JSON (8.9)",
                 (outcome, joutcome) == ("unknown", "unknown"), f"{outcome}, {joutcome}")
        ck.check("replica_digest without --replica-digests answers none, in binary and JSON (8.9)",
                 c.replica_digest() is None and j.replica_digest() is None)
    finally:
        c.close(1000)
        j.close(1000)


def run(ck, port: int, server_path: str, log, doc_path: str, seed: int) -> None:
    """The JSON example check, the main server's answers (on `port`, without --replication),
    then the live check against a server started here."""
    check_json_example(ck, open(doc_path, encoding="utf-8").read())
    try:
        check_without_replication(ck, port)
    except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
        traceback.print_exc()
        ck.check("replica checks without --replication ran to the end", False, repr(e))
    tmp = tempfile.mkdtemp(prefix="ticksock-replica-")
    try:
        proc, port = servers.start(server_path, log, "--replication", "--replica-digests",
                                   "--state-every", str(STATE_EVERY), "--db", os.path.join(tmp, "arena.db"),
                                   host=HOST)
    except (OSError, RuntimeError) as e:
        ck.check("replica: the server with --replication starts", False, repr(e))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        check_live(ck, port, random.Random(seed))
    except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
        traceback.print_exc()
        ck.check("replica checks ran to the end", False, repr(e))
    finally:
        servers.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
