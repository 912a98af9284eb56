#!/usr/bin/env python3
"""Idle memory per connection of the arena server, version 1 against version 2 (issue 14).

    benches/load/session_idle.py PORT CONNECTIONS SERVER_PID v1|v2

Opens CONNECTIONS WebSocket connections to 127.0.0.1:PORT offering `ticksock.v1` or
`ticksock.v2`, reads each welcome, makes one `echo` call of 32 bytes on each and reads its reply
(on v2 the call starts the session, and its reply is the one frame the session holds until the
client acknowledges it: the client here acknowledges with an Ack frame, as a v2 client does
within a second), keeps them all open and idle, and prints how much the server's resident memory
(VmRSS of SERVER_PID) grew per connection. Run it against a fresh server for each version.
Standard library only; it raises its own descriptor limit.
"""
import base64
import os
import resource
import socket
import sys
import time

from wsraw import status_kib


def upgrade(port: int, subprotocol: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"upgrade refused: {head!r}")
    return s


def send_binary(s: socket.socket, payload: bytes) -> None:
    # A masked frame with a zero key (the payload unchanged); payloads here are under 126 bytes.
    s.sendall(bytes([0x82, 0x80 | len(payload)]) + bytes(4) + payload)


def read_exactly(s: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            raise RuntimeError("the server closed the connection")
        got += chunk
    return got


def read_frame(s: socket.socket) -> bytes:
    head = read_exactly(s, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(read_exactly(s, 2), "big")
    elif length == 127:
        length = int.from_bytes(read_exactly(s, 8), "big")
    return read_exactly(s, length)


def open_idle(port: int, version: str) -> socket.socket:
    s = upgrade(port, f"ticksock.{version}")
    welcome = read_frame(s)
    if welcome[:2] != bytes([0, 1 if version == "v1" else 2]):
        raise RuntimeError(f"unexpected welcome {welcome[:4].hex()}")
    body = os.urandom(32)
    if version == "v1":
        # Request: tag 0, id 1, route "echo", body.
        send_binary(s, bytes([0, 1, 4]) + b"echo" + body)
    else:
        # Request: tag 0, seq 1, ack 0, id 1, route "echo", body.
        send_binary(s, bytes([0, 1, 0, 1, 4]) + b"echo" + body)
    reply = read_frame(s)
    if reply != bytes([1, 1]) + body:
        raise RuntimeError(f"unexpected reply {reply[:4].hex()}")
    if version == "v2":
        # Ack: tag 1, one frame received.
        send_binary(s, bytes([1, 1]))
    return s


def main() -> int:
    port, count, pid = (int(a) for a in sys.argv[1:4])
    version = sys.argv[4]
    if version not in ("v1", "v2"):
        raise SystemExit("the version is v1 or v2")
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1024, count + 1024))
    before = status_kib(pid, "VmRSS")
    held = [open_idle(port, version) for _ in range(count)]
    time.sleep(2)
    after = status_kib(pid, "VmRSS")
    print(f"{len(held)} idle {version} connections after one echo call each: server RSS "
          f"{before} -> {after} KiB, {(after - before) / count:.2f} KiB per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
