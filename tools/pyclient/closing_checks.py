"""Checks of how the server ends a connection and of its rate limit, from docs/PROTOCOL.md alone.

The rules (sections 7.2 and 7.5, with 1.4 and 7.4 for what provokes a close):

- "Closing for what the client sent": the answers to every request read before the offending
  message go out before the close frame, nothing sent after it is answered, and then either TCP
  ends right after the close frame (WebSocket-level errors: 1002, 1009, 1007 for text that is not
  UTF-8) or the server waits for the client's Close and ends TCP as soon as it arrives
  (protocol-level errors: 1003, 1007 for an undecodable frame, 1008 for the rate), or when
  `close_timeout` has passed, between 1 and 1.25 times it after its close frame.
- "How the server closes TCP": it shuts down its sending side, so the client reads a clean end
  of stream after the last frame, never a reset that could eat the last frames.
- "Rate limit": a burst of `rate_burst_messages` passes, the next message is Error 5, tokens
  come back at `rate_messages_per_sec`; after more than `rate_strikes` refusals in a row the
  connection is closed with 1008, every admitted request answered first and the refusal that
  made it close answered Error 5 too.
- "When the client closes": the server echoes the client's Close (code and reason, or an empty
  Close for an empty one) and ends TCP right after, without waiting for the client.

Everything here is a raw socket with hand-made WebSocket frames (spec_checks.Raw), so what is
timed and what ends the stream (b"" or a reset) is seen as it comes. check.py runs ``run``
after spec_checks; a second server, started here with `--close-timeout-ms 300
--rate-messages-per-sec 2 --rate-burst-messages 40 --rate-strikes 3`, serves the checks that
need a short close timeout or a small rate.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import time
from typing import Optional

import servers
import spec_checks
import ticksock_client as tc
from spec_checks import Raw

WAIT = 5.0
PROMPT_END = 1.0          # s: "at once", "within milliseconds" (7.5), with room for a busy host
CLOSE_TIMEOUT_MS = 300    # the second server's close_timeout
RATE = 2                  # the second server's rate_messages_per_sec
BURST = 40                # the second server's rate_burst_messages
STRIKES = 3               # the second server's rate_strikes
ANY = "(any)"             # an answer whose value a check does not predict (the room list)
LIMITED_FLAGS = ["--close-timeout-ms", str(CLOSE_TIMEOUT_MS), "--rate-messages-per-sec", str(RATE),
                 "--rate-burst-messages", str(BURST), "--rate-strikes", str(STRIKES)]


# --------------------------------------------------------------------------------------------
# Reading a connection to its end
# --------------------------------------------------------------------------------------------


def binary_request(id: int, route: str, body: bytes = b"") -> bytes:
    return tc.ws_frame(tc.OP_BINARY, tc.encode_request(id, route, body))


def json_request(obj: dict) -> bytes:
    return tc.ws_frame(tc.OP_TEXT, json.dumps(obj).encode())


def read_to_close(conn: Raw, json_mode: bool = False) -> dict:
    """Reads until the server's close frame. Returns {"answers": [(id, kind, value)] in arrival
    order (kind "reply" with the body, or "error" with the code), "close": raw close payload or
    None, "closed_at": time.monotonic() when it was read, "why": what ended the read otherwise}."""
    out: dict = {"answers": [], "close": None, "closed_at": None, "why": ""}
    try:
        while True:
            opcode, payload = conn.frame()
            if opcode == tc.OP_PING:
                conn.send(tc.OP_PONG, payload)
            elif opcode == tc.OP_CLOSE:
                out["close"], out["closed_at"] = payload, time.monotonic()
                return out
            elif opcode == tc.OP_PONG:
                continue
            elif json_mode:
                f = json.loads(payload)
                if f.get("type") == "reply":
                    out["answers"].append((f.get("id"), "reply", f.get("body")))
                elif f.get("type") == "error":
                    out["answers"].append((f.get("id"), "error", f.get("code")))
            else:
                f = tc.decode_server_frame(payload)
                if isinstance(f, tc.Reply):
                    out["answers"].append((f.id, "reply", f.body))
                elif isinstance(f, tc.Error):
                    out["answers"].append((f.id, "error", f.code))
    except tc.ConnectionClosed:
        out["why"] = "end of stream before any close frame"
    except OSError as e:
        out["why"] = f"{e!r} before any close frame"
    return out


def close_of(payload: Optional[bytes]) -> tuple:
    """(code, reason) of a close frame's payload; (None, "") for an empty one."""
    if not payload:
        return None, ""
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


def end_of_stream(conn: Raw, since: float, bound: float) -> tuple:
    """Waits up to `bound` s for TCP to end after the close frame; closes the socket. Returns
    (outcome, seconds from `since`): "end of stream" (recv returned b""), "reset", "no end
    within ... s", or the bytes that came instead (nothing may follow the close frame)."""
    try:
        if conn.buf:
            return f"{len(conn.buf)} bytes after the close frame: {bytes(conn.buf[:20])!r}", 0.0
        conn.sock.settimeout(bound)
        try:
            data = conn.sock.recv(65536)
        except ConnectionResetError:
            return "reset", time.monotonic() - since
        except TimeoutError:
            return f"no end within {bound} s", time.monotonic() - since
        except OSError as e:
            return repr(e), time.monotonic() - since
        if data:
            return f"{len(data)} bytes after the close frame: {data[:20]!r}", time.monotonic() - since
        return "end of stream", time.monotonic() - since
    finally:
        conn.sock.close()


def short(v) -> object:
    return f"{len(v)} bytes" if isinstance(v, bytes) and len(v) > 20 else v


def answered_once(answers: list, want: dict) -> list:
    """What is wrong with `answers` given `want` (id -> (kind, value), value ANY for any): each
    id answered exactly once, as wanted, and no other id answered."""
    wrong = []
    for id, (kind, value) in want.items():
        got = [(k, v) for i, k, v in answers if i == id]
        if len(got) != 1 or got[0][0] != kind or (value is not ANY and got[0][1] != value):
            wrong.append(f"id {id}: got {[(k, short(v)) for k, v in got]}, want {kind} {short(value)}")
    extra = sorted({i for i, _, _ in answers if i not in want}, key=str)
    if extra:
        wrong.append(f"answers to ids not read by the server: {extra}")
    return wrong


# --------------------------------------------------------------------------------------------
# 1. Protocol-level closes: answers first, close frame, then TCP ends when the client closes
# --------------------------------------------------------------------------------------------


def protocol_level_cases() -> list:
    """(name, subprotocol, bytes sent in one write, wanted answers, wanted close). Requests
    before the offending message get answers (logic-thread replies and reactor-made Errors 1 and
    4 alike), the request after it (id 9) gets none."""
    truncated = tc.Writer().u32(0).u32(4).varint(10).raw(b"ec").done()   # route says 10 bytes, has 2
    before_binary = (binary_request(1, "echo", b"one") + binary_request(2, "echo", b"t" * 1000)
                     + binary_request(3, "no_such_route") + tc.ws_frame(tc.OP_BINARY, truncated)
                     + binary_request(5, "rooms"))
    want_binary = {1: ("reply", b"one"), 2: ("reply", b"t" * 1000), 3: ("error", tc.UNKNOWN_ROUTE),
                   4: ("error", tc.BAD_FRAME), 5: ("reply", ANY)}
    after_binary = binary_request(9, "echo", b"after")
    before_json = (json_request({"id": 1, "route": "echo", "body": "one"})
                   + json_request({"id": 2, "route": "echo", "body": [1, 2, 3]})
                   + json_request({"id": 3, "route": "no_such_route"})
                   + json_request({"id": 4, "route": "echo", "type": None, "body": 1}))
    want_json = {1: ("reply", "one"), 2: ("reply", [1, 2, 3]), 3: ("error", tc.UNKNOWN_ROUTE),
                 4: ("error", tc.BAD_FRAME)}
    return [
        ("a valid-UTF-8 text message on ticksock.v1", tc.SUBPROTOCOL,
         before_binary + tc.ws_frame(tc.OP_TEXT, b"hello") + after_binary,
         want_binary, (1003, "text messages are not part of ticksock.v1")),
        ("an empty binary message on ticksock.v1", tc.SUBPROTOCOL,
         before_binary + tc.ws_frame(tc.OP_BINARY, b"") + after_binary,
         want_binary, (1007, "undecodable frame")),
        ("text that is not JSON on ticksock.v1.json", spec_checks.JSON_SUBPROTOCOL,
         before_json + tc.ws_frame(tc.OP_TEXT, b'{"id": 5, "route": "echo"')
         + json_request({"id": 9, "route": "echo", "body": "after"}),
         want_json, (1007, "undecodable frame")),
    ]


def check_protocol_level(ck, port: int, reasons: set) -> None:
    for name, sub, data, want, want_close in protocol_level_cases():
        conn = Raw(port, sub)
        conn.send_raw(data)
        got = read_to_close(conn, json_mode=sub != tc.SUBPROTOCOL)
        wrong = answered_once(got["answers"], want)
        code_reason = close_of(got["close"])
        ck.check(f"close for {name}: every request before it answered once, then the close frame, "
                 f"nothing after it answered (7.2, 7.5)", got["close"] is not None and not wrong,
                 "; ".join([got["why"]] * bool(got["why"]) + wrong))
        ck.check(f"close for {name}: {want_close[0]} `{want_close[1]}` (7.4, 7.5's table)",
                 code_reason == want_close and want_close in reasons, f"got {code_reason}")
        if got["close"] is None:
            continue
        sent = time.monotonic()
        conn.send(tc.OP_CLOSE, struct.pack(">H", 1000))
        outcome, dt = end_of_stream(conn, sent, WAIT)
        ck.check(f"close for {name}: after the client's Close, a clean end of stream (no reset) "
                 f"within {PROMPT_END:g} s (7.5: \"within milliseconds\")",
                 outcome == "end of stream" and dt <= PROMPT_END, f"{outcome} after {dt * 1000:.0f} ms")


# --------------------------------------------------------------------------------------------
# 3. WebSocket-level closes: answers first, close frame, TCP ends at once, no reset
# --------------------------------------------------------------------------------------------


def check_websocket_level(ck, port: int, reasons: set) -> None:
    """The client does not send its Close: the server must end TCP right after its close frame
    without waiting for one, well before its close_timeout (2 s by default) would end it."""
    before = binary_request(1, "echo", b"one") + binary_request(2, "echo", b"t" * 1000)
    want = {1: ("reply", b"one"), 2: ("reply", b"t" * 1000)}
    after = binary_request(9, "echo", b"after")
    cases = [
        # 1.4: over 65 536 bytes. The server need not read the 100 000 bytes to refuse them, so
        # they may sit unread in its socket: exactly the case "How the server closes TCP" covers.
        ("a 100 000-byte message after two requests (1.4)",
         before + binary_request(3, "echo", b"\x00" * 100_000) + after, (1009, "message too big")),
        ("an unmasked frame after two requests", before + b"\x82\x03\x00\x01\x00" + after,
         (1002, "protocol error")),
        ("a text message that is not UTF-8 after two requests",
         before + tc.ws_frame(tc.OP_TEXT, b"\xff\xfe") + after, (1007, "invalid UTF-8")),
    ]
    for name, data, want_close in cases:
        conn = Raw(port)
        try:
            conn.send_raw(data)
        except OSError as e:
            ck.check(f"close for {name}: the client's bytes are taken", False, repr(e))
            conn.sock.close()
            continue
        got = read_to_close(conn)
        wrong = answered_once(got["answers"], want)
        code_reason = close_of(got["close"])
        ck.check(f"close for {name}: both replies, then {want_close[0]} `{want_close[1]}`, "
                 f"nothing after it answered (7.2, 7.5)",
                 got["close"] is not None and not wrong and code_reason == want_close
                 and want_close in reasons, "; ".join([got["why"] or f"close {code_reason}"] + wrong))
        if got["close"] is None:
            continue
        outcome, dt = end_of_stream(conn, got["closed_at"], WAIT)
        ck.check(f"close for {name}: a clean end of stream right after the close frame, without "
                 f"the client's Close, no reset (7.5, \"How the server closes TCP\")",
                 outcome == "end of stream" and dt <= PROMPT_END, f"{outcome} after {dt * 1000:.0f} ms")


# --------------------------------------------------------------------------------------------
# 6. The client closes: the server echoes its Close and ends TCP
# --------------------------------------------------------------------------------------------


def check_client_close(ck, port: int) -> None:
    """check.py's closing step covers Close 1000 with no reason; these are the other cases of
    "When the client closes": any allowed code, a reason (up to the 123 bytes a close frame
    leaves for it), and an empty Close."""
    cases = [
        ("4000 with a UTF-8 reason", struct.pack(">H", 4000) + "bye, ünïcode".encode()),
        ("1001 with a reason", struct.pack(">H", 1001) + b"tab closed"),
        ("3000 with a 123-byte reason", struct.pack(">H", 3000) + b"r" * 123),
        ("with no payload", b""),
    ]
    for name, payload in cases:
        conn = Raw(port)
        sent = time.monotonic()
        conn.send(tc.OP_CLOSE, payload)
        got = read_to_close(conn)
        seen = close_of(got["close"]) if got["close"] is not None else got["why"]
        ck.check(f"client Close {name}: the server's Close echoes it byte for byte (7.5)",
                 got["close"] == payload and not got["answers"], f"sent {close_of(payload)}, got {seen}")
        if got["close"] is None:
            continue
        outcome, dt = end_of_stream(conn, sent, WAIT)
        ck.check(f"client Close {name}: then a clean end of stream at once (7.5)",
                 outcome == "end of stream" and dt <= PROMPT_END, f"{outcome} after {dt * 1000:.0f} ms")


# --------------------------------------------------------------------------------------------
# The second server: a short close timeout, a small rate
# --------------------------------------------------------------------------------------------


def start_limited(path: str, log) -> tuple:
    return servers.start(path, log, *LIMITED_FLAGS)


def check_close_timeout(ck, port: int) -> None:
    """2. A client that never answers the server's close frame: TCP ends between 1 and 1.25
    times close_timeout after the close frame (7.5), checked with 10 % below and 150 ms above."""
    t = CLOSE_TIMEOUT_MS / 1000
    low, high = 0.9 * t, 1.25 * t + 0.15
    for name, sub, msg in [("text on ticksock.v1 (1003)", tc.SUBPROTOCOL, tc.ws_frame(tc.OP_TEXT, b"hi")),
                           ("binary on ticksock.v1.json (1003)", spec_checks.JSON_SUBPROTOCOL,
                            tc.ws_frame(tc.OP_BINARY, b"\x00\x01\x00"))]:
        conn = Raw(port, sub)
        conn.send_raw(msg)
        got = read_to_close(conn, json_mode=sub != tc.SUBPROTOCOL)
        if got["close"] is None:
            ck.check(f"close timeout, {name}: the server sends a close frame", False, got["why"])
            conn.sock.close()
            continue
        outcome, dt = end_of_stream(conn, got["closed_at"], 5 * t + WAIT)
        ck.check(f"close timeout, {name}: the client never sends its Close; a clean end of stream "
                 f"{low * 1000:.0f}..{high * 1000:.0f} ms after the close frame "
                 f"(7.5: 1 to 1.25 x close_timeout = {CLOSE_TIMEOUT_MS} ms)",
                 outcome == "end of stream" and low <= dt <= high, f"{outcome} after {dt * 1000:.0f} ms")


def check_rate_burst(ck, port: int) -> None:
    """4. A full bucket of BURST passes at once, the next is Error 5; after 0.6 s at RATE = 2 a
    second, 1.2 tokens are back: one more passes, the one sent with it does not."""
    conn = Raw(port)
    t0 = time.monotonic()
    conn.send_raw(b"".join(binary_request(i, "echo", b"b%d" % i) for i in range(BURST + 1)))
    answers = {}
    while len(answers) < BURST + 1:
        f = tc.decode_server_frame(conn.recv()[1])
        if isinstance(f, (tc.Reply, tc.Error)):
            answers[f.id] = f
    bad = [i for i in range(BURST) if answers.get(i) != tc.Reply(i, b"b%d" % i)]
    ck.check(f"rate: a burst of {BURST} requests sent at once (--rate-burst-messages {BURST}) is "
             f"answered normally (7.5, \"Rate limit\")", not bad, f"not replied: {bad}")
    last = answers.get(BURST)
    ck.check(f"rate: request {BURST + 1} of the burst is Error 5 rate_limited",
             isinstance(last, tc.Error) and last.code == tc.RATE_LIMITED, f"{last}")
    time.sleep(max(0.0, t0 + 0.6 - time.monotonic()))   # tokens come back with time: no other way
    conn.send_raw(binary_request(100, "echo", b"later") + binary_request(101, "echo", b"too soon"))
    later = {}
    while len(later) < 2:
        f = tc.decode_server_frame(conn.recv()[1])
        if isinstance(f, (tc.Reply, tc.Error)):
            later[f.id] = f
    ck.check(f"rate: 0.6 s later ({RATE}/s: 1.2 tokens back) one request passes and the one sent "
             f"with it is Error 5", later.get(100) == tc.Reply(100, b"later")
             and isinstance(later.get(101), tc.Error) and later[101].code == tc.RATE_LIMITED,
             f"{later}")
    conn.close()


def check_rate_close(ck, port: int, reasons: set) -> None:
    """5. BURST admitted requests, then STRIKES + 1 over the rate in one write, then 4 more: each
    admitted one is answered, each refused one is Error 5 (the last, which makes the server
    close, too), the 4 after it get nothing, and all of it arrives before the 1008 (7.2, 7.5)."""
    refused = range(BURST, BURST + STRIKES + 1)
    unread = range(BURST + STRIKES + 1, BURST + STRIKES + 5)
    conn = Raw(port)
    conn.send_raw(b"".join(binary_request(i, "echo", b"r%d" % i) for i in range(unread.stop)))
    got = read_to_close(conn)
    want = {i: ("reply", b"r%d" % i) for i in range(BURST)}
    want.update({i: ("error", tc.RATE_LIMITED) for i in refused})
    wrong = answered_once(got["answers"], want)
    ck.check(f"rate close (--rate-strikes {STRIKES}): {BURST} admitted requests answered, "
             f"{STRIKES + 1} refused ones Error 5 (the one that closes too), none after, all before "
             f"the close frame (7.2)", got["close"] is not None and not wrong,
             "; ".join([got["why"] or f"{len(got['answers'])} answers"] + wrong[:4]))
    code_reason = close_of(got["close"])
    ck.check("rate close: 1008 `rate limit exceeded` (7.5's table)",
             code_reason == (1008, "rate limit exceeded") and code_reason in reasons, f"got {code_reason}")
    if got["close"] is None:
        conn.sock.close()
        return
    sent = time.monotonic()
    conn.send(tc.OP_CLOSE, struct.pack(">H", 1000))
    outcome, dt = end_of_stream(conn, sent, WAIT)
    ck.check(f"rate close: after the client's Close, a clean end of stream within {PROMPT_END:g} s "
             f"(a protocol-level close, 7.5)",
             outcome == "end of stream" and dt <= PROMPT_END, f"{outcome} after {dt * 1000:.0f} ms")


def check_limited(ck, path: str, log, reasons: set) -> None:
    proc, port = start_limited(path, log)
    try:
        for step in (lambda: check_close_timeout(ck, port), lambda: check_rate_burst(ck, port),
                     lambda: check_rate_close(ck, port, reasons)):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
                ck.check("closing checks (second server): a step ran to the end", False, repr(e))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(ck, port: int, doc_path: str, server_path: str, log) -> None:
    """Runs every check above: on the main server (`port`, default close timeout and rate), then
    on a second one with LIMITED_FLAGS."""
    reasons = spec_checks.close_reasons(open(doc_path, encoding="utf-8").read())
    for step in (lambda: check_protocol_level(ck, port, reasons),
                 lambda: check_websocket_level(ck, port, reasons),
                 lambda: check_client_close(ck, port),
                 lambda: check_limited(ck, server_path, log, reasons)):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
            ck.check("closing checks: a step ran to the end", False, repr(e))
