"""Checks of version 2 (PROTOCOL.md section 11: sessions, sequence numbers, acks, resume,
retry-safe requests) against the real server, with ticksock_v2.V2Client.

check.py merges ``vector_table`` into its test-vector check and calls ``run`` after
spec_checks. The expected outcomes are those the document states; where it leaves a case open,
the check says so and prints what the server did as an INFO line instead of asserting it. A
second server, started here with ``--session-grace-ms 500 --ack-interval-ms 300
--session-replay-bytes 8192``, serves the checks that need a timer to pass or a bound to be
crossed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import traceback
from typing import Optional

import servers
import spec_checks
import ticksock_client as tc
import ticksock_v2 as v2
from ticksock_client import Error, Reply
from ticksock_v2 import (
    ClientAck, Request, Resume, Resumed, ResumeFailed, ServerAck, V2Client, Welcome,
)

HOST = "127.0.0.1"
WAIT = 5.0
EPOCH = 11400714819323198485                                  # the examples of 11.3
SECRET = bytes.fromhex("00112233445566778899aabbccddeeff")
SECRET2 = bytes.fromhex("ffeeddccbbaa99887766554433221100")
ONE = b"\x01"                                                 # `once` answering 1 (a varint u32)
GRACE_MS, ACK_MS, REPLAY_BYTES = 500, 300, 8192               # the second server's settings


# --------------------------------------------------------------------------------------------
# The document's v2 test vectors and JSON examples
# --------------------------------------------------------------------------------------------


def vector_table() -> dict:
    """The `v2_` vector names of PROTOCOL.md -> (value, encode, decode), as check.py expects."""
    client = (v2.encode_client_frame, v2.decode_client_frame)
    server = (v2.encode_server_frame, v2.decode_server_frame)
    values = {
        "v2_request_echo": (Request(1, 0, 1, "echo", b"\xde\xad"), client),
        "v2_request_login": (Request(300, 5, 2, "login", tc.encode_login("ann")), client),
        "v2_client_ack": (ClientAck(300), client),
        "v2_resume": (Resume(4294967296, EPOCH, SECRET, 5), client),
        "v2_welcome": (Welcome(2, 30, 4294967296, EPOCH, SECRET), server),
        "v2_resumed": (Resumed(3, SECRET2), server),
        "v2_resume_failed": (ResumeFailed(2, "session ended"), server),
        "v2_server_ack": (ServerAck(7), server),
        "v2_error_stale_request": (Error(4, v2.STALE_REQUEST, ""), server),
    }
    return {name: (value, enc, dec) for name, (value, (enc, dec)) in values.items()}


def json_examples(doc: str) -> tuple:
    """The two ```json blocks of section 11.8: (client lines, server lines)."""
    start = doc.index("### 11.8")
    section = doc[start:doc.index("\n### ", start + 1)]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    lines = [[line for line in b.splitlines() if line.strip()] for b in blocks]
    return (lines[0], lines[1]) if len(lines) == 2 else ([], [])


def check_json_examples(ck, doc: str) -> None:
    client, server = json_examples(doc)
    bad = []
    for lines, dec, enc in ((client, v2.json_decode_client_frame, v2.json_client_frame),
                            (server, v2.json_decode_server_frame, v2.json_server_frame)):
        for line in lines:
            try:
                o = v2.json_load(line)
                if enc(dec(o)) != o:
                    bad.append(f"{line}: re-encodes to {enc(dec(o))}")
            except (tc.DecodeError, TypeError) as e:
                bad.append(f"{line}: {e}")
    ck.check("v2 JSON examples of 11.8: each client and server line decodes, and encodes back to the same value",
             len(client) == 3 and len(server) == 4 and not bad,
             f"{len(client)} client, {len(server)} server lines; {bad}")
    # The examples name the same values as the binary vectors where they share them.
    table = vector_table()
    same = {"v2_resume": client[2:3], "v2_welcome": server[0:1], "v2_resumed": server[1:2],
            "v2_resume_failed": server[2:3], "v2_server_ack": server[3:4]}
    differ = []
    for name, line in same.items():
        dec = v2.json_decode_client_frame if name == "v2_resume" else v2.json_decode_server_frame
        if not line or dec(v2.json_load(line[0])) != table[name][0]:
            differ.append(name)
    ck.check("v2 JSON examples of 11.8 are the frames of the binary vectors of the same name",
             not differ, f"differ: {differ}")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def once_value(frame) -> Optional[int]:
    """The count a `once` Reply carries (8.2: a varint u32), None for anything else."""
    if not isinstance(frame, Reply):
        return None
    r = tc.Reader(frame.body)
    v = r.u32()
    r.end()
    return v


def ticks_of_v2(c: V2Client, after: int = 0) -> list:
    return [e.body.tick for e in c.pushes("state") if e.n > after]


def ticks_of_v1(c: tc.Client) -> list:
    return [p.body.tick for p in c.pushes_matching(lambda p: p.topic == "state")]


def stranger(port: int, name: str) -> tuple:
    """A client holding a fresh link on which it has sent nothing: (client, link)."""
    x = V2Client(HOST, port, name=name, ack_delay=60)
    return x, x.open_link()


def refused(port: int, name: str, frame: Resume) -> tuple:
    """A stranger's Resume as its link's first frame: (answer, the stranger afterwards)."""
    x, link = stranger(port, name)
    return x.attempt_resume(link, frame), x


def fresh_session_works(x: V2Client, link_number: int) -> bool:
    """After a failed resume the link carries on as its Welcome's session, counts from 0 (11.4)."""
    w = x.links[link_number - 1].welcome
    c = x.start("once")
    ok = (x.creds is not None and x.creds.conn_id == w.conn_id and c.seq == 1
          and once_value(c.wait(WAIT)) == 1 and x.received == 1 and not x.links[link_number - 1].ended)
    return ok


def reason_of(a) -> str:
    if isinstance(a, ResumeFailed):
        return f"ResumeFailed {a.reason} ({v2.REASON_NAMES.get(a.reason, '?')}) {a.message!r}"
    return repr(a)


def close_all(*clients) -> None:
    for c in clients:
        try:
            if isinstance(c, V2Client):
                if c.state == "up":
                    c.close(1000)
                else:
                    c.stop()
            else:
                c.close(1000)
        except Exception:  # noqa: BLE001 - cleaning up after a failed check
            pass


# --------------------------------------------------------------------------------------------
# 11.1: negotiation
# --------------------------------------------------------------------------------------------


def check_negotiation(ck, port: int) -> None:
    cases = [(["ticksock.v1.json", "ticksock.v1", "ticksock.v2.json", "ticksock.v2"], "ticksock.v2"),
             (["ticksock.v2.json", "ticksock.v1"], "ticksock.v1"),
             (["ticksock.v1.json", "ticksock.v2.json"], "ticksock.v2.json"),
             (["ticksock.v1.json"], "ticksock.v1.json")]
    got = []
    for offer, _ in cases:
        with socket.create_connection((HOST, port), timeout=WAIT) as s:
            chosen, _ = tc.ws_handshake(s, HOST, port, offer)
            got.append(chosen)
    ck.check("v2 negotiation: the server picks ticksock.v2, then v1, then v2.json, then v1.json (11.1)",
             got == [w for _, w in cases], f"chose {got}")
    c = V2Client(HOST, port, name="neg")
    link = c.open_link()
    w = link.welcome
    ck.check("v2 Welcome: version 2, tick_hz 30, a 16-byte secret, first on the link (11.3)",
             w.version == 2 and w.tick_hz == 30 and len(w.secret) == 16, f"{w}")
    link2 = c.open_link()
    ck.check("v2 Welcome: each link offers a new session with its own conn_id and secret, one epoch",
             link2.welcome.conn_id != w.conn_id and link2.welcome.secret != w.secret
             and link2.welcome.epoch == w.epoch, f"{w.conn_id} / {link2.welcome.conn_id}")
    c.stop()


# --------------------------------------------------------------------------------------------
# 11.4, 11.6: a resume with a call in flight and pushes missed
# --------------------------------------------------------------------------------------------


def check_resume(ck, port: int) -> None:
    W = tc.Client.connect(HOST, port, name="W")             # a witness that never drops
    A = V2Client.connect(HOST, port, name="A2", ack_delay=60)  # acks only in its requests here
    try:
        W.login("v2-wit")
        W.join("v2-red")
        pid = tc.decode_logged_in(A.call("login", tc.encode_login("v2-ann")))
        j = tc.decode_joined(A.call("join", tc.encode_join("v2-red")))
        A.wait_for(lambda: len(A.pushes("state")) >= 5)
        before_cut = A.received
        a_tick = ticks_of_v2(A)[-1]
        old = A.creds
        w_presence0 = len(W.pushes_matching(lambda p: p.topic == "presence"))

        # One `once` whole and one cut in half, then the link drops: the first is taken, the
        # second cannot be; the answer to the first is lost with the link.
        inflight, half = A.cut(in_flight=[("once", b"")], partial=("once", b""))
        orig_ack = A.acked
        W.wait_push(lambda p: p.topic == "state" and p.body.tick >= a_tick + 6, timeout=WAIT)
        queued = A.start("once")                            # made while no link: kept for the resume
        answer = A.resume()
        ok = isinstance(answer, Resumed)
        ck.check("v2 resume after a cut: Resumed", ok, reason_of(answer))
        if not ok:
            return
        ck.check("v2 resume: Resumed.received counts the whole request, not the half one (11.3, 11.6)",
                 answer.received == inflight.seq,
                 f"received {answer.received}; whole seq {inflight.seq}, half seq {half.seq}")
        ck.check("v2 resume: a new secret, adopted", answer.secret != old.secret and A.creds.secret == answer.secret)
        ck.check("v2 client: resends only the requests above Resumed.received, once each, in order (11.4)",
                 inflight.sent_on == [1] and half.sent_on == [1, 2] and queued.sent_on == [2],
                 f"sent on links: whole {inflight.sent_on}, half {half.sent_on}, queued {queued.sent_on}")
        calls = (inflight, half, queued)
        results = [c.wait(WAIT) for c in calls]

        # A barrier that acknowledges nothing new, so that the answers stay unacknowledged.
        A.acking = False
        t_resume = ticks_of_v1(W)[-1]
        A.wait_for(lambda: ticks_of_v2(A) and ticks_of_v2(A)[-1] >= t_resume + 5)
        A.call("echo", b"barrier")
        counts = [len(A.answers_to(c.id, before_cut)) for c in calls]
        ck.check("v2 resume: the call in flight, the half-sent one and the one made while down are each answered exactly once",
                 counts == [1, 1, 1] and not A.stats.unexpected_answers,
                 f"answers {counts}, unexpected {A.stats.unexpected_answers[:3]}")
        ck.check("v2 resume: `once` answers 1 for each of them (none ran twice)",
                 all(once_value(a) == 1 for a in results), f"{results}")
        at = [e.n for e in A.log if isinstance(e.frame, Reply) and e.frame.id == inflight.id]
        ck.check("v2 resume: the in-flight answer came in the replay, on the new link, numbered after the cut",
                 len(at) == 1 and at[0] > before_cut and A.log[before_cut].link == 2, f"numbered {at}, cut after {before_cut}")

        a_ticks = ticks_of_v2(A)
        w_ticks = [t for t in ticks_of_v1(W) if a_ticks[0] <= t <= a_ticks[-1]]
        missed = [t for t in a_ticks if a_tick < t <= t_resume]
        ck.check("v2 resume: state pushes strictly increase across the cut, no duplicate",
                 all(b > a for a, b in zip(a_ticks, a_ticks[1:])), f"ticks {a_ticks[0]}..{a_ticks[-1]}")
        ck.check("v2 resume: the missed state pushes were replayed, every tick the witness got, no gap",
                 a_ticks == w_ticks and len(missed) >= 6,
                 f"{len(missed)} missed ticks replayed; A {len(a_ticks)} ticks, witness {len(w_ticks)}; "
                 f"only A {sorted(set(a_ticks) - set(w_ticks))[:5]}, only witness {sorted(set(w_ticks) - set(a_ticks))[:5]}")
        gaps = [(a, b) for a, b in zip(a_ticks, a_ticks[1:]) if b != a + 1]
        ck.info("v2 resume: tick gaps seen by A and the witness alike (skipped slots, 8.6)", f"{gaps[:5]}")

        # 11.6: a request resent at or below the server's received count is never run again: it
        # gets its kept answer while that answer is unacknowledged, else stale_request. A knows
        # what it acknowledged (A.acked: its requests' acks; its Ack timer is 60 s).
        def resend(call: v2.Call, ack: int):
            n0 = len(A.answers_to(call.id))
            A.send_frame(Request(call.seq, ack, call.id, "once", b""))
            A.wait_for(lambda: len(A.answers_to(call.id)) > n0)
            return A.answers_to(call.id)[-1].frame

        def expect(call: v2.Call, ack: int) -> str:
            return "kept" if max(A.acked, ack) < A.answers_to(call.id)[0].n else "stale"

        def outcome(frame, kept) -> str:
            if frame == kept and once_value(frame) == 1:
                return "kept"
            return "stale" if isinstance(frame, Error) and frame.code == v2.STALE_REQUEST else f"{frame}"

        want_in, want_half = expect(inflight, orig_ack), expect(half, A.acked)
        got_in = outcome(resend(inflight, orig_ack), results[0])
        got_half = outcome(resend(half, A.acked), results[1])
        ck.check("v2 resend at or below Resumed.received, with the ack it first had: kept answer if unacknowledged, else stale_request (11.6)",
                 got_in == want_in, f"expected {want_in}, got {got_in} (acked {A.acked}, first ack {orig_ack})")
        ck.check("v2 resend of the request the resume resent, its answer unacknowledged: the kept answer, same bytes (11.6)",
                 want_half == "kept" and got_half == "kept", f"expected {want_half}, got {got_half}")
        A.send_ack()
        got_half = outcome(resend(half, 0), results[1])
        ck.check("v2 resend after an Ack frame acknowledged the answer: stale_request (7), not run (11.6)",
                 got_half == "stale", got_half)
        A.acking = True
        again = [once_value(A.start("once", id=c.id).wait(WAIT)) for c in (inflight, half)]
        ck.check("v2 resend: new requests with those callback ids run, and `once` counts 2: no resend ran",
                 again == [2, 2], f"{again}")

        mv = A.start("move", tc.encode_move(1 if j.players[0].x < 500 else -1, 0))
        m = mv.wait(WAIT)
        since = A.received
        moved = isinstance(m, Reply) and A.wait_for(
            lambda: any(e.n > since and e.body.player(pid) is not None and e.body.player(pid).x != j.players[0].x
                        for e in A.pushes("state")))
        ck.check("v2 resume: player and arena kept: `move` answers Moved without login or join, and A moves",
                 moved, f"{m}")
        w_presence = [p.body for p in W.pushes_matching(lambda p: p.topic == "presence")][w_presence0:]
        listed = [pid in [q.id for q in p.body.players] for p in W.pushes_matching(lambda p: p.topic == "state")
                  if a_tick < p.body.tick <= t_resume]
        ck.info("v2 resume: what the witness saw of A while A had no link (section 8.7 does not say for version 2)",
                f"presence pushes {w_presence}; A listed in {sum(listed)} of the {len(listed)} states of the gap")
    finally:
        close_all(A, W)


def check_duplicates_live(ck, port: int) -> None:
    """11.6 on a link that never dropped: kept answer, stale_request, gaps, a too-large ack."""
    B = V2Client.connect(HOST, port, name="B2", acking=False)
    try:
        first = B.start("once", id=900)
        ack0 = 0
        r1 = first.wait(WAIT)
        B.send_frame(Request(first.seq, ack0, 900, "once", b""))
        B.wait_for(lambda: len(B.answers_to(900)) >= 2)
        kept = B.answers_to(900)[1]
        ck.check("v2 duplicate with the ack of its first sending: the kept answer again, a new sequenced frame (11.6)",
                 kept.frame == r1 and once_value(r1) == 1 and kept.n == B.received, f"{kept}")
        B.send_frame(Request(first.seq, B.received, 900, "once", b""))
        B.wait_for(lambda: len(B.answers_to(900)) >= 3)
        stale = B.answers_to(900)[2].frame
        ck.check("v2 duplicate whose own ack covers the answer: stale_request (7), the ack applied first (11.6)",
                 isinstance(stale, Error) and stale.code == v2.STALE_REQUEST and stale.id == 900, f"{stale}")
        seq = B.next_seq
        B.send_frame(Request(seq + 5, B.received, 901, "once", b""))
        B.wait_for(lambda: len(B.answers_to(901)) >= 1)
        gap = B.answers_to(901)[0].frame
        B.send_frame(Request(seq, B.received + 100, 902, "once", b""))
        B.wait_for(lambda: len(B.answers_to(902)) >= 1)
        over = B.answers_to(902)[0].frame
        ck.check("v2 a seq past received + 1, and an ack past what was sent: each bad_frame (4) (11.6)",
                 isinstance(gap, Error) and gap.code == tc.BAD_FRAME and isinstance(over, Error)
                 and over.code == tc.BAD_FRAME, f"gap {gap}; ack too large {over}")
        B.acking = True
        nxt = B.start("once", id=903)
        ck.check("v2 neither was taken: the next seq is still a new request and runs",
                 nxt.seq == seq and once_value(nxt.wait(WAIT)) == 1, f"seq {nxt.seq}: {nxt.answer}")
        again = B.start("once", id=900)
        ck.check("v2 `once` with callback id 900 again counts 2: neither duplicate ran",
                 once_value(again.wait(WAIT)) == 2, f"{again.answer}")
        unknown = B.start("no_such_route_v2")
        unknown.wait(WAIT)
        after = B.start("once", id=904)
        ck.check("v2 an unknown route's request is taken and its Error is sequenced (11.6)",
                 isinstance(unknown.answer, Error) and unknown.answer.code == tc.UNKNOWN_ROUTE
                 and after.seq == unknown.seq + 1 and once_value(after.wait(WAIT)) == 1)
        # The counts of both sides agree: a resume with this count gets no replay and no refusal.
        n, unexpected = B.received, len(B.stats.unexpected_answers)
        B.cut()
        a = B.resume()
        B.call("echo", b"x")
        ck.check("v2 counts agree after duplicates, errors and refusals: a resume at this count replays nothing",
                 isinstance(a, Resumed) and a.received == after.seq and B.received == n + 1
                 and len(B.stats.unexpected_answers) == unexpected, f"{reason_of(a)}; count {n} -> {B.received}")
    finally:
        close_all(B)


def check_client_ack(ck, port: int) -> None:
    """11.2: a client holding unacknowledged frames sends an Ack frame after its delay, and the
    server honours it: a duplicate of an answered request then gets stale_request."""
    Q = V2Client.connect(HOST, port, name="Q2", ack_delay=0.3)
    try:
        first = Q.start("once")
        first.wait(WAIT)
        n = Q.answers_to(first.id)[0]
        Q.wait_for(lambda: any(a >= n.n for _, a in Q.stats.acks_sent))
        at = next((t for t, a in Q.stats.acks_sent if a >= n.n), None)
        Q.send_frame(Request(first.seq, 0, first.id, "once", b""))
        Q.wait_for(lambda: len(Q.answers_to(first.id)) >= 2)
        dup = Q.answers_to(first.id)[1].frame
        ck.check("v2 client Ack: sent 0.3 s after an unacknowledged answer; a duplicate then gets stale_request (7)",
                 at is not None and at - n.at >= 0.3 and isinstance(dup, Error) and dup.code == v2.STALE_REQUEST,
                 f"Ack {at and round((at - n.at) * 1000)} ms after the answer; duplicate {dup}")
    finally:
        close_all(Q)


def probe_resume_ack(ck, port: int) -> None:
    """Does a Resume's `received` acknowledge? 11.2 names only a Request's `ack` and the Ack frame."""
    C = V2Client.connect(HOST, port, name="C2", acking=False)
    try:
        first = C.start("once")
        kept = first.wait(WAIT)
        C.cut()
        a = C.resume()                          # received 1: the answer above
        C.send_frame(Request(first.seq, 0, first.id, "once", b""))
        C.wait_for(lambda: len(C.answers_to(first.id)) >= 2)
        dup = C.answers_to(first.id)[1].frame
        what = "the kept answer: it does not" if dup == kept else f"{dup}"
        ck.info("v2 a Resume with received 1, then a duplicate of request 1 with ack 0 (does the Resume acknowledge?)",
                f"{reason_of(a)}; {what}")
    finally:
        close_all(C)


def check_half_open(ck, port: int) -> None:
    """11.4 step 4: a resume while the old link is still up ends that link, without a close frame."""
    W = tc.Client.connect(HOST, port, name="W3")
    H = V2Client.connect(HOST, port, name="H2")
    try:
        W.login("v2-wit3")
        W.join("v2-half")
        hid = tc.decode_logged_in(H.call("login", tc.encode_login("v2-hal")))
        H.call("join", tc.encode_join("v2-half"))
        H.wait_for(lambda: len(H.pushes("state")) >= 3)
        w0 = len(W.pushes_matching(lambda p: p.topic == "presence"))
        old = H.link
        a = H.resume()
        ended = H.wait_for(lambda: old.ended)
        ck.check("v2 resume while the old link is up: Resumed, and the server ends the old link without a close frame",
                 isinstance(a, Resumed) and ended and old.close_code is None,
                 f"{reason_of(a)}; old link ended {ended}, close code {old.close_code}")
        last = ticks_of_v2(H)[-1]
        H.wait_for(lambda: ticks_of_v2(H)[-1] >= last + 3)
        t = ticks_of_v2(H)
        W.echo(b"barrier")
        dropped = [p.body for p in W.pushes_matching(lambda p: p.topic == "presence")][w0:]
        ck.check("v2 resume while the old link is up: states continue with no duplicate, the arena is not told (no presence)",
                 all(b > a for a, b in zip(t, t[1:])) and not any(p.player_id == hid for p in dropped),
                 f"presence {dropped}")
    finally:
        close_all(H, W)


# --------------------------------------------------------------------------------------------
# 11.5: each refusal, and the session unharmed after it
# --------------------------------------------------------------------------------------------


def check_refusals(ck, port: int) -> None:
    T = V2Client.connect(HOST, port, name="T2", ack_delay=60)
    others = []
    try:
        T.call("login", tc.encode_login("v2-tess"))
        (lost,) = T.cut(in_flight=[("once", b"")])
        c = T.creds
        wrong = bytes(b ^ 0xFF for b in c.secret)

        a, x = refused(port, "x-secret", Resume(c.conn_id, c.epoch, wrong, T.received))
        others.append(x)
        ck.check("v2 refusal: a wrong secret -> bad_secret (5), and the link carries on as its Welcome's session, from 0",
                 isinstance(a, ResumeFailed) and a.reason == v2.BAD_SECRET and fresh_session_works(x, 1), reason_of(a))
        a, x = refused(port, "x-count", Resume(c.conn_id, c.epoch, c.secret, T.received + 1000))
        others.append(x)
        ck.check("v2 refusal: received more than the server sent -> bad_count (7)",
                 isinstance(a, ResumeFailed) and a.reason == v2.BAD_COUNT and fresh_session_works(x, 1), reason_of(a))
        a, x = refused(port, "x-unknown", Resume((0xFFFFFFF0 << 32) | 0xFFFFF, c.epoch, c.secret, 0))
        others.append(x)
        ck.check("v2 refusal: a conn_id never given -> unknown_session (1)",
                 isinstance(a, ResumeFailed) and a.reason == v2.UNKNOWN_SESSION and fresh_session_works(x, 1), reason_of(a))
        a, x = refused(port, "x-epoch", Resume(c.conn_id, c.epoch ^ 1, c.secret, T.received))
        others.append(x)
        ck.check("v2 refusal: another epoch -> restarted (4)",
                 isinstance(a, ResumeFailed) and a.reason == v2.RESTARTED and fresh_session_works(x, 1), reason_of(a))

        first_resume = Resume(c.conn_id, c.epoch, c.secret, T.received)
        a = T.resume()
        ok = isinstance(a, Resumed)
        ck.check("v2 refusals 5, 7, 1, 4 left the dropped session unharmed: its owner resumes, the lost answer comes once",
                 ok and once_value(lost.wait(WAIT)) == 1 and len(T.answers_to(lost.id)) == 1, reason_of(a))
        if not ok:
            return
        ck.check("v2 after the resume the player is still logged in (join answers Joined, not 1001)",
                 isinstance(T.start("join", tc.encode_join("v2-tess")).wait(WAIT), Reply))

        a, x = refused(port, "x-replay", first_resume)
        others.append(x)
        alive = once_value(T.start("once").wait(WAIT)) == 1 and not T.link.ended
        ck.check("v2 refusal: the resume replayed (its secret since retired) -> superseded (6), the live session unharmed",
                 isinstance(a, ResumeFailed) and a.reason == v2.SUPERSEDED and alive and fresh_session_works(x, 1),
                 reason_of(a))
        a, x = refused(port, "x-secret2", Resume(c.conn_id, c.epoch, wrong, T.received))
        others.append(x)
        alive = once_value(T.start("once").wait(WAIT)) == 1 and not T.link.ended
        ck.check("v2 refusal: a wrong secret while the session has a link -> bad_secret (5), the link unharmed",
                 isinstance(a, ResumeFailed) and a.reason == v2.BAD_SECRET and alive, reason_of(a))

        y = V2Client.connect(HOST, port, name="y-notfirst", ack_delay=60)
        others.append(y)
        one = y.start("once")
        one.wait(WAIT)
        a = y.attempt_resume(y.link, Resume(T.creds.conn_id, T.creds.epoch, T.creds.secret, T.received))
        two = y.start("once")
        ck.check("v2 refusal: a Resume that is not the link's first frame -> not_first (8), ignored: the link's session goes on",
                 isinstance(a, ResumeFailed) and a.reason == v2.NOT_FIRST and two.seq == 2
                 and once_value(two.wait(WAIT)) == 1 and y.received == 2, reason_of(a))
        alive = once_value(T.start("once").wait(WAIT)) == 1 and not T.link.ended
        ck.check("v2 after not_first the session named in that Resume is unharmed", alive)

        # `ended`: a session closed with a close frame, and a version 1 connection's conn_id.
        Z = V2Client.connect(HOST, port, name="Z2")
        zc = Z.creds
        Z.call("once")
        code = Z.close(1000)
        a, x = refused(port, "x-closed", Resume(zc.conn_id, zc.epoch, zc.secret, Z.received))
        others.append(x)
        ck.check("v2 refusal: a session ended by a close frame (1000 echoed) -> ended (2)",
                 code == 1000 and isinstance(a, ResumeFailed) and a.reason == v2.ENDED and fresh_session_works(x, 1),
                 f"close {code}; {reason_of(a)}")
        one = tc.Client.connect(HOST, port, name="v1")
        others.append(one)
        a, x = refused(port, "x-v1", Resume(one.welcome.conn_id, c.epoch, SECRET, 0))
        others.append(x)
        ck.check("v2 refusal: a version 1 connection's conn_id -> ended (2), the v1 connection unharmed",
                 isinstance(a, ResumeFailed) and a.reason == v2.ENDED and one.echo(b"ok") == b"ok", reason_of(a))
    finally:
        close_all(T, *others)


# --------------------------------------------------------------------------------------------
# 11.3: malformed version 2 frames
# --------------------------------------------------------------------------------------------


def check_malformed(ck, port: int, reasons: set) -> None:
    cases = [("an Ack cut short", b"\x01", None, (1007, "undecodable frame")),
             ("a Resume with a 10-byte secret", b"\x02\x01\x01" + b"\x00" * 10, None, (1007, "undecodable frame")),
             ("a Request with no `ack`", b"\x00\x01", None, (1007, "undecodable frame")),
             ("a text message", b"{}", tc.OP_TEXT, (1003, "text messages are not part of ticksock.v2"))]
    for name, payload, opcode, want in cases:
        # Each as the link's first frame, so that a Resume is a Resume and nothing else decides.
        c, link = stranger(port, "bad")
        c.send_message(payload, opcode, link)
        c.wait_for(lambda: link.ended)
        got = (link.close_code, link.close_reason)
        ck.check(f"v2 malformed: {name} -> close {want[0]} `{want[1]}` (11.3, 7.5)",
                 got == want and want in reasons, f"got {got}")
        c.stop()
    c = V2Client.connect(HOST, port, name="badjson", json_mode=True)
    c.send_message(b"\x00\x01", tc.OP_BINARY)
    c.wait_for(lambda: c.link.ended)
    want = (1003, "binary messages are not part of ticksock.v2.json")
    got = (c.link.close_code, c.link.close_reason)
    ck.check(f"v2 malformed: binary on ticksock.v2.json -> close 1003 `{want[1]}`", got == want and want in reasons,
             f"got {got}")
    c.stop()


# --------------------------------------------------------------------------------------------
# 11.8: the same resume over ticksock.v2.json
# --------------------------------------------------------------------------------------------


def check_json_resume(ck, port: int) -> None:
    J = V2Client.connect(HOST, port, name="J2", json_mode=True, ack_delay=60)
    try:
        login = J.call("login", {"name": "v2-json"})
        inflight, half = J.cut(in_flight=[("once", None)], partial=("once", None))
        queued = J.start("once", None)
        a = J.resume()
        answers = [c.wait(WAIT) for c in (inflight, half, queued)]
        counts = [len(J.answers_to(c.id)) for c in (inflight, half, queued)]
        ck.check("v2 JSON: login, a cut with a whole and a half `once` in flight, resume: each answered once with 1",
                 isinstance(login, dict) and isinstance(a, Resumed) and a.received == inflight.seq
                 and all(isinstance(x, Reply) and x.body == 1 for x in answers) and counts == [1, 1, 1],
                 f"{login}; {reason_of(a)}; {answers}; {counts}")
    finally:
        close_all(J)


def check_auto_resume(ck, port: int) -> None:
    """11.7: the client resumes on its own when its link ends without a close frame."""
    R = V2Client.connect(HOST, port, name="R2", auto_resume=True)
    try:
        R.call("login", tc.encode_login("v2-rae"))
        old = R.link
        old.sock.shutdown(socket.SHUT_RDWR)  # the network fails under the client, which is not told
        call = R.start("join", tc.encode_join("v2-rae"))
        a = call.wait(WAIT)
        ck.check("v2 client resumes on its own after its link ends without a close frame; a call made meanwhile is answered once",
                 isinstance(a, Reply) and R.link is not old and len(R.answers_to(call.id)) == 1
                 and any(e.startswith("resumed") for e in R.events), f"{a}; events {R.events}")
    finally:
        close_all(R)


# --------------------------------------------------------------------------------------------
# The second server: grace, the server's Ack, the replay bound
# --------------------------------------------------------------------------------------------


def start_short(path: str, log) -> tuple:
    return servers.start(path, log, "--session-grace-ms", str(GRACE_MS), "--ack-interval-ms", str(ACK_MS),
                         "--session-replay-bytes", str(REPLAY_BYTES), host=HOST)


def check_grace(ck, port: int) -> None:
    G = V2Client.connect(HOST, port, name="G2")
    try:
        G.call("login", tc.encode_login("v2-gus"))
        (lost,) = G.cut(in_flight=[("once", b"")])
        old = G.creds
        time.sleep(3 * GRACE_MS / 1000)      # the server's grace is real time: let it pass
        a = G.resume()
        failed = isinstance(lost.failure, v2.SessionEnded)
        fresh = G.creds.conn_id == G.links[-1].welcome.conn_id != old.conn_id
        relog = G.start("join", tc.encode_join("v2-gus")).wait(WAIT)
        ck.check(f"v2 grace ({GRACE_MS} ms) passed: resume -> ended (2); the call in flight fails, the client starts afresh",
                 isinstance(a, ResumeFailed) and a.reason == v2.ENDED and failed and fresh
                 and isinstance(relog, Error) and relog.code == tc.ERR_NOT_LOGGED_IN,
                 f"{reason_of(a)}; in-flight call {lost.failure!r}; join on the new session {relog}")
    finally:
        close_all(G)


def check_server_acks(ck, port: int) -> None:
    K = V2Client.connect(HOST, port, name="K2", ack_delay=60)
    try:
        iv = ACK_MS / 1000
        t0 = time.monotonic()
        r = K.start("once")
        r.wait(WAIT)
        K.wait_for(lambda: K.acks_received())
        acks = K.acks_received()
        dt = acks[0].at - t0 if acks else None
        reply_at = next(e.at for e in K.log if isinstance(e.frame, Reply) and e.frame.id == r.id)
        ck.check(f"v2 server Ack: received 1, no sooner than ack_interval ({ACK_MS} ms) after the request, after its answer",
                 acks and acks[0].frame.received == 1 and iv <= dt <= iv + 1.5 and reply_at < acks[0].at,
                 f"Ack {acks[0].frame if acks else None} after {dt and round(dt * 1000)} ms")
        t1 = time.monotonic()
        calls = [K.start("once") for _ in range(3)]
        for c in calls:
            c.wait(WAIT)
        K.wait_for(lambda: len(K.acks_received()) >= 2)
        acks = K.acks_received()
        dt = acks[1].at - t1 if len(acks) > 1 else None
        ck.check("v2 server Ack: after three more requests, one Ack with received 4, again after the interval",
                 len(acks) >= 2 and acks[1].frame.received == 4 and iv <= dt <= iv + 1.5,
                 f"{[a.frame for a in acks]}, {dt and round(dt * 1000)} ms")
        time.sleep(3 * iv)                   # quiet: nothing new taken, so nothing to acknowledge
        ck.check("v2 server Ack: none while no new request is taken (3 intervals of quiet)",
                 len(K.acks_received()) == 2, f"{[a.frame for a in K.acks_received()]}")
    finally:
        close_all(K)


def fill_replay(c: V2Client) -> None:
    """Replies of about 1 KB each, never acknowledged (c.acking is False), past the bound."""
    for _ in range(REPLAY_BYTES // 1000 + 4):
        c.call("echo", os.urandom(1000))


def check_replay_bound(ck, port: int) -> None:
    L = V2Client.connect(HOST, port, name="L2", acking=False)
    M = V2Client.connect(HOST, port, name="M2", acking=False)
    others = [L, M]
    try:
        L.call("login", tc.encode_login("v2-lou"))
        fill_replay(L)
        ck.check(f"v2 replay bound ({REPLAY_BYTES} bytes) passed while linked: the link itself is not affected (11.6)",
                 L.call("echo", b"still") == b"still" and L.state == "up")
        lc = L.creds
        L.cut()
        a = L.resume(received=0)
        x, link = stranger(port, "x-gap")
        others.append(x)
        b = x.attempt_resume(link, Resume(lc.conn_id, lc.epoch, lc.secret, 0))
        ck.check("v2 replay bound passed, resume from 0 -> gap_lost (3); a later resume -> ended (2) (11.5)",
                 isinstance(a, ResumeFailed) and a.reason == v2.GAP_LOST and isinstance(b, ResumeFailed)
                 and b.reason == v2.ENDED, f"{reason_of(a)}; then {reason_of(b)}")
        fill_replay(M)
        n = M.received
        M.cut()
        a = M.resume()
        ck.info("v2 replay bound passed, resume with the count of everything received "
                "(11.6 says gap_lost, 11.5's definition allows a Resumed)", f"count {n}: {reason_of(a)}")

        # No link and a full replay buffer: the session ends (11.6).
        N = V2Client.connect(HOST, port, name="N2")
        P = tc.Client.connect(HOST, port, name="P")
        others += [N, P]
        N.call("login", tc.encode_login("v2-ned"))
        N.call("join", tc.encode_join("v2-flood"))
        P.login("v2-pat")
        P.join("v2-flood")
        N.cut()
        for _ in range(REPLAY_BYTES // 250 + 4):
            P.chat("z" * 250)                # each a 250-byte ChatLine for N too, held for it
        a = N.resume()
        ck.check("v2 replay bound passed while the session has no link: it ends, resume -> ended (2) (11.6)",
                 isinstance(a, ResumeFailed) and a.reason == v2.ENDED, reason_of(a))
    finally:
        close_all(*others)


def check_second_server(ck, path: str, log) -> None:
    proc, port = start_short(path, log)
    try:
        for step in (check_grace, check_server_acks, check_replay_bound):
            try:
                step(ck, port)
            except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
                ck.check(f"v2 checks: {step.__name__} ran to the end", False, repr(e))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(ck, port: int, doc_path: str, server_path: str, log) -> None:
    """Every check above, against the server on `port` and a second one started here."""
    doc = open(doc_path, encoding="utf-8").read()
    reasons = spec_checks.close_reasons(doc)
    steps = [lambda: check_json_examples(ck, doc), lambda: check_negotiation(ck, port),
             lambda: check_resume(ck, port), lambda: check_duplicates_live(ck, port),
             lambda: check_client_ack(ck, port), lambda: probe_resume_ack(ck, port),
             lambda: check_half_open(ck, port), lambda: check_refusals(ck, port),
             lambda: check_malformed(ck, port, reasons), lambda: check_json_resume(ck, port),
             lambda: check_auto_resume(ck, port),
             lambda: check_second_server(ck, server_path, log)]
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
            traceback.print_exc()
            ck.check("v2 checks: a step ran to the end", False, repr(e))
