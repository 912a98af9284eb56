"""Checks of the envelope, refusal and close rules of docs/PROTOCOL.md against the real server.

The rules an outside client once had to guess (issue 13): a JSON ``type`` of ``null``, keys the
server does not know and keys given twice (section 9); the 64-byte route limit in both
subprotocols (4.1, 7.4); a JSON ``move`` with directions beyond ``i8`` (8.3); each HTTP
refusal's exact bytes (10, "Refusals"); and the reason text of each close a client can provoke
(7.5, "Close reasons"). Expected texts are read from the document's tables, not written here,
so the check is of the server against the document.

check.py runs ``run`` after its scenario. A second server, started here with small limits
(``--max-connections 1 --max-handshake-bytes 1024 --rate-messages-per-sec 20
--rate-strikes 3``), serves the checks that need a limit crossed.
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
import ticksock_client as tc

WAIT = 5.0
ROUTE_LIMIT = 64          # section 4.1
JSON_SUBPROTOCOL = "ticksock.v1.json"


# --------------------------------------------------------------------------------------------
# The document's tables
# --------------------------------------------------------------------------------------------


def table_after(doc: str, marker: str) -> list:
    """The body rows of the first Markdown table after the line starting with `marker`."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    rows, seen = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen = True
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif seen:
            break
    return rows[2:]   # the header row and the |---| row


def code_span(cell: str) -> str:
    """The text of a Markdown code span: `a`, or `` a `b` `` (one space each side stripped)."""
    if cell.startswith("``") and cell.endswith("``"):
        inner = cell[2:-2]
        return inner[1:-1] if inner.startswith(" ") and inner.endswith(" ") else inner
    if cell.startswith("`") and cell.endswith("`"):
        return cell[1:-1]
    raise ValueError(f"not a code span: {cell!r}")


def close_reasons(doc: str) -> set:
    """{(code, reason)} of section 7.5's close-reason table."""
    return {(int(r[0]), code_span(r[1])) for r in table_after(doc, "**Close reasons.**")}


def refusals(doc: str) -> dict:
    """Body text (without its LF) -> (status line, extra header or None) from section 10."""
    out = {}
    for r in table_after(doc, "### Refusals"):
        out[code_span(r[2])] = (code_span(r[0]), code_span(r[1]) if r[1] else None)
    return out


def refusal_bytes(table: dict, body: str, head: bool = False) -> bytes:
    """The exact answer section 10 gives for the refusal whose body is `body`."""
    status, extra = table[body]
    data = (body + "\n").encode()
    h = f"{status}\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
    h += "Content-Type: text/plain; charset=utf-8\r\n"
    if extra:
        h += extra + "\r\n"
    return (h + "\r\n").encode() + (b"" if head else data)


# --------------------------------------------------------------------------------------------
# A synchronous WebSocket connection (no reader thread: these checks read what they expect)
# --------------------------------------------------------------------------------------------


class Raw:
    def __init__(self, port: int, subprotocol: Optional[str] = tc.SUBPROTOCOL, welcome: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        _, rest = tc.ws_handshake(self.sock, "127.0.0.1", port, [subprotocol] if subprotocol else [])
        self.sock.settimeout(WAIT)
        self.buf = bytearray(rest)
        if welcome:
            self.recv()

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(tc.ws_frame(opcode, payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise tc.ConnectionClosed(None, "EOF")
            self.buf += chunk

    def frame(self) -> tuple:
        """The next WebSocket frame: (opcode, payload). Server frames here are never fragmented."""
        self._fill(2)
        n, off = self.buf[1] & 0x7F, 2
        if n == 126:
            self._fill(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._fill(off + n)
        opcode, payload = self.buf[0] & 0x0F, bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return opcode, payload

    def recv(self) -> tuple:
        """The next data message, answering pings; a close frame raises ConnectionClosed."""
        while True:
            opcode, payload = self.frame()
            if opcode == tc.OP_PING:
                self.send(tc.OP_PONG, payload)
            elif opcode == tc.OP_CLOSE:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise tc.ConnectionClosed(code, payload[2:].decode("utf-8", "replace"))
            elif opcode != tc.OP_PONG:
                return opcode, payload

    def close_frame(self) -> tuple:
        """Reads until the server's close frame: (code, reason); (None, why) if none came."""
        try:
            while True:
                self.recv()
        except tc.ConnectionClosed as e:
            return e.code, e.reason
        except OSError as e:
            return None, repr(e)
        finally:
            self.sock.close()

    def json_exchange(self, text: str) -> dict:
        """Sends one text message and returns the next frame that is not a push."""
        self.send(tc.OP_TEXT, text.encode())
        while True:
            frame = json.loads(self.recv()[1])
            if frame.get("type") != "push":
                return frame

    def binary_answer(self, msg: bytes):
        """Sends one binary message and returns the next Reply or Error."""
        self.send(tc.OP_BINARY, msg)
        while True:
            frame = tc.decode_server_frame(self.recv()[1])
            if isinstance(frame, (tc.Reply, tc.Error)):
                return frame

    def close(self) -> None:
        try:
            self.send(tc.OP_CLOSE, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()


def http_exchange(port: int, request: bytes) -> bytes:
    """Sends `request` on a new connection and returns everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def upgrade_request(lines: list, request_line: str = "GET / HTTP/1.1") -> bytes:
    return ("\r\n".join([request_line, "Host: x", *lines]) + "\r\n\r\n").encode()


UPGRADE = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: ticksock.v1"]


def without(prefix: str, lines: list = UPGRADE) -> list:
    return [line for line in lines if not line.startswith(prefix)]


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def check_json_envelope(ck, port: int, reasons: set) -> None:
    c = Raw(port, JSON_SUBPROTOCOL)
    a = c.json_exchange('{"id":33,"route":"echo","type":null,"body":1}')
    ck.check("JSON: \"type\": null is not absent: error 4 bad_frame with the id (9)",
             a.get("type") == "error" and a.get("id") == 33 and a.get("code") == tc.BAD_FRAME, f"{a}")
    a = c.json_exchange('{"id":34,"type":"request","route":"echo","body":1}')
    ck.check("JSON: \"type\": \"request\" is an ordinary request", a == {"type": "reply", "id": 34, "body": 1}, f"{a}")
    a = c.json_exchange('{"trace":"t-1","id":35,"route":"echo","body":[2],"sent_at":1700000000123,"ID":9}')
    ck.check("JSON: unknown keys are ignored and not echoed (9)",
             a == {"type": "reply", "id": 35, "body": [2]}, f"{a}")
    for key, text in [("route", '{"id":36,"route":"echo","route":"echo","body":1}'),
                      ("body", '{"id":36,"route":"echo","body":1,"body":1}'),
                      ("type", '{"id":36,"type":"request","route":"echo","type":"request","body":1}')]:
        a = c.json_exchange(text)
        ck.check(f"JSON: a repeated `{key}` is error 4 bad_frame with the id (9)",
                 a.get("type") == "error" and a.get("id") == 36 and a.get("code") == tc.BAD_FRAME, f"{a}")
    c.send(tc.OP_TEXT, b'{"id":37,"id":37,"route":"echo","body":1}')
    code, reason = c.close_frame()
    ck.check("JSON: a repeated `id` leaves no readable id: close 1007 with its documented reason",
             code == 1007 and (code, reason) in reasons, f"close {code} {reason!r}")


def check_route_limit(ck, port: int) -> None:
    at, over = "u" * ROUTE_LIMIT, "v" * (ROUTE_LIMIT + 1)
    b = Raw(port)
    a = b.binary_answer(tc.encode_request(1, at))
    ck.check("binary: an unknown 64-byte route is error 1, quoting it (4.1)",
             isinstance(a, tc.Error) and a.code == tc.UNKNOWN_ROUTE and a.message == f"no route `{at}`", f"{a}")
    for n in (ROUTE_LIMIT + 1, 65000):
        route = "v" * n
        a = b.binary_answer(tc.encode_request(2, route))
        ck.check(f"binary: a {n}-byte route is error 4 bad_frame with the id, not quoting it (4.1, 7.4)",
                 isinstance(a, tc.Error) and a.id == 2 and a.code == tc.BAD_FRAME
                 and over not in a.message and len(a.message) < 100, repr(a)[:200])
    b.close()
    j = Raw(port, JSON_SUBPROTOCOL)
    a = j.json_exchange(json.dumps({"id": 3, "route": at}))
    ck.check("JSON: an unknown 64-byte route is error 1, quoting it (9)",
             a.get("code") == tc.UNKNOWN_ROUTE and a.get("message") == f"no route `{at}`", f"{a}")
    for n in (ROUTE_LIMIT + 1, 65000):
        a = j.json_exchange(json.dumps({"id": 4, "route": "v" * n}))
        msg = a.get("message", "")
        ck.check(f"JSON: a {n}-byte route is error 4 bad_frame with the id, not quoting it (9)",
                 a.get("id") == 4 and a.get("code") == tc.BAD_FRAME and over not in msg and len(msg) < 100,
                 f"{a.get('code')} {msg[:120]!r}")
    j.close()


def check_json_move(ck, port: int) -> None:
    j = Raw(port, JSON_SUBPROTOCOL)
    j.json_exchange(json.dumps({"id": 1, "route": "login", "body": {"name": "clamp-check"}}))
    joined = j.json_exchange(json.dumps({"id": 2, "route": "join", "body": {"room": "clamp-check"}}))
    x0 = joined["body"]["players"][0]["x"]
    dx, step = (-1000, -1) if x0 > tc.ARENA_SIZE // 2 else (300, 1)
    answers = [j.json_exchange(json.dumps({"id": 3, "route": "move", "body": {"dx": big, "dy": 0}}))
               for big in (2**63 - 1, -2**63, 2**64 - 1, 128)]
    answers.append(j.json_exchange(json.dumps({"id": 4, "route": "move", "body": {"dx": dx, "dy": 0}})))
    ck.check("JSON move: integers beyond i8 (128, 300, -1000, the ends of i64 and u64) are answered Moved (8.3)",
             all(a.get("type") == "reply" and "tick" in a.get("body", {}) for a in answers), f"{answers}")
    here = j.json_exchange(json.dumps({"id": 5, "route": "join", "body": {"room": "clamp-check"}}))
    x1 = here["body"]["players"][0]["x"]
    deadline = time.monotonic() + WAIT
    moved = None
    while moved is None and time.monotonic() < deadline:
        f = json.loads(j.recv()[1])
        if f.get("type") == "push" and f.get("topic") == "state" and f["body"]["players"][0]["x"] != x1:
            moved = f["body"]["players"][0]["x"]
    ck.check(f"JSON move: dx {dx} moves one SPEED step per tick, as dx {step} (clamped to -1..=1)",
             moved == x1 + step * tc.SPEED, f"x {x1} -> {moved}")
    for bad in ("1.5", "1.0", "1e2", '"1"', "null", "18446744073709551616"):
        a = j.json_exchange('{"id":6,"route":"move","body":{"dx":%s,"dy":0}}' % bad)
        ck.check(f"JSON move: dx {bad} is not an integer direction: error 2 bad_body (8.3)",
                 a.get("code") == tc.BAD_BODY, f"{a}")
    j.close()


def check_refusals(ck, port: int, table: dict) -> None:
    cases = [
        ("malformed HTTP request", b"\x00\x01garbage\r\n\r\n"),
        ("too many headers", upgrade_request([f"X-{i}: y" for i in range(40)])),
        ("a WebSocket upgrade must be an HTTP/1.1 GET", upgrade_request(UPGRADE, "POST / HTTP/1.1")),
        ("missing `Connection: upgrade`", upgrade_request(without("Connection") + ["Connection: keep-alive"])),
        ("only WebSocket version 13 is supported",
         upgrade_request(without("Sec-WebSocket-Version") + ["Sec-WebSocket-Version: 8"])),
        ("missing Sec-WebSocket-Key", upgrade_request(without("Sec-WebSocket-Key"))),
        ("this server speaks the WebSocket subprotocols ticksock.v2, ticksock.v1, ticksock.v2.json, ticksock.v1.json; offer one in Sec-WebSocket-Protocol",
         upgrade_request(without("Sec-WebSocket-Protocol") + ["Sec-WebSocket-Protocol: chat"])),
        ("not found", b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("method not allowed", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for body, request in cases:
        if body not in table:
            ck.check(f"HTTP refusal `{body}` is in section 10's table", False)
            continue
        got = http_exchange(port, request)
        want = refusal_bytes(table, body)
        ck.check(f"HTTP {table[body][0][9:]}: exact bytes of section 10 (`{body[:40]}`)", got == want,
                 f"got {got!r}" if got != want else "")
    got = http_exchange(port, b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    ck.check("HTTP HEAD of an unknown path: the 404's head, Content-Length included, no body",
             got == refusal_bytes(table, "not found", head=True), f"{got!r}")


def check_closes(ck, port: int, reasons: set) -> None:
    def expect(name: str, conn: Raw, want: tuple) -> None:
        got = conn.close_frame()
        ck.check(f"close reason: {name} -> {want[0]} `{want[1]}`, as section 7.5's table says",
                 got == want and want in reasons, f"got {got}")

    c = Raw(port)
    c.send(tc.OP_TEXT, b"hello")
    expect("text on ticksock.v1", c, (1003, "text messages are not part of ticksock.v1"))
    c = Raw(port, JSON_SUBPROTOCOL)
    c.send(tc.OP_BINARY, b"\x00\x01\x00")
    expect("binary on ticksock.v1.json", c, (1003, "binary messages are not part of ticksock.v1.json"))
    c = Raw(port)
    c.send(tc.OP_BINARY, b"\x07")
    expect("a frame with an unknown tag", c, (1007, "undecodable frame"))
    c = Raw(port)
    c.send(tc.OP_TEXT, b"\xff\xfe")
    expect("text that is not UTF-8", c, (1007, "invalid UTF-8"))
    c = Raw(port)
    c.send(tc.OP_BINARY, tc.encode_request(1, "echo", b"\x00" * 70000))
    expect("a 70 000-byte message", c, (1009, "message too big"))
    c = Raw(port)
    c.send_raw(b"\x82\x03\x00\x01\x00")           # not masked
    expect("an unmasked client frame", c, (1002, "protocol error"))
    c = Raw(port)
    c.send(tc.OP_CLOSE, struct.pack(">H", 1005))
    expect("a client Close with 1005", c, (1002, "Protocol violation"))


def start_limited(path: str, log) -> tuple:
    return servers.start(path, log, "--max-connections", "1", "--max-handshake-bytes", "1024",
                         "--rate-messages-per-sec", "20", "--rate-strikes", "3")


def check_limits(ck, path: str, log, table: dict, reasons: set) -> None:
    proc, port = start_limited(path, log)
    try:
        # One read's worth (under 2 KiB) but over the 1024-byte limit.
        got = http_exchange(port, upgrade_request(UPGRADE + ["X-Padding: " + "a" * 1200]))
        ck.check("HTTP 431: exact bytes of section 10 (`request too large`)",
                 got == refusal_bytes(table, "request too large"), f"{got!r}")
        occupant = Raw(port)
        got = http_exchange(port, upgrade_request(UPGRADE))
        ck.check("HTTP 503 at the connection limit: exact bytes of section 10, Retry-After: 5",
                 got == refusal_bytes(table, "server is at its connection limit"), f"{got!r}")
        for i in range(60):
            occupant.send(tc.OP_BINARY, tc.encode_request(i, "echo", b"x"))
        got = occupant.close_frame()
        want = (1008, "rate limit exceeded")
        ck.check("close reason: over the inbound rate -> 1008 `rate limit exceeded`, as section 7.5's table says",
                 got == want and want in reasons, f"got {got}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(ck, port: int, doc_path: str, server_path: str, log) -> set:
    """Runs every check above; returns the document's close reasons, for the shutdown check."""
    doc = open(doc_path, encoding="utf-8").read()
    reasons, table = close_reasons(doc), refusals(doc)
    ck.check("PROTOCOL.md has a close-reason table and a refusal table",
             len(reasons) >= 10 and len(table) >= 11, f"{len(reasons)} reasons, {len(table)} refusals")
    for step in (lambda: check_json_envelope(ck, port, reasons), lambda: check_route_limit(ck, port),
                 lambda: check_json_move(ck, port), lambda: check_refusals(ck, port, table),
                 lambda: check_closes(ck, port, reasons),
                 lambda: check_limits(ck, server_path, log, table, reasons)):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
            ck.check("spec checks: a step ran to the end", False, repr(e))
    return reasons
