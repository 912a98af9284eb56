#!/usr/bin/env python3
"""Idle memory of `server --echo` as a generic WebSocket client sees it (no ticksock protocol).

    benches/load/echo_idle.py PORT CONNECTIONS SERVER_PID [MESSAGE_BYTES]

Opens CONNECTIONS plain WebSocket connections (no subprotocol) to 127.0.0.1:PORT, sends one
binary message of MESSAGE_BYTES (default 32) on each and checks its echo, keeps them all open
and idle, and prints how much the server's resident memory (VmRSS of SERVER_PID) grew per
connection. A large message shows what a connection keeps of it once idle (issue 19: 60 KB
against 100 B). Standard library only; it raises its own descriptor limit.
"""
import base64
import os
import resource
import socket
import sys
import time


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def recv_exactly(s: socket.socket, n: int, got: bytes = b"") -> bytes:
    while len(got) < n:
        chunk = s.recv(max(n - len(got), 4096))
        if not chunk:
            raise RuntimeError("the server closed the connection")
        got += chunk
    return got


def frame_header(length: int, masked: bool) -> bytes:
    """A final binary frame's header for a payload of `length` bytes (RFC 6455, 5.2)."""
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes([0x82, bit | length])
    if length < 1 << 16:
        return bytes([0x82, bit | 126]) + length.to_bytes(2, "big")
    return bytes([0x82, bit | 127]) + length.to_bytes(8, "big")


def open_echoed(port: int, size: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    status = head.split(b"\r\n")[0]
    if b" 101 " not in status:
        raise RuntimeError(f"upgrade refused: {status!r}")
    # A zero mask leaves the payload as it is, so large messages cost no masking here.
    payload = os.urandom(size)
    s.sendall(frame_header(size, True) + bytes(4) + payload)
    header = frame_header(size, False)
    echoed = recv_exactly(s, len(header) + size, head.split(b"\r\n\r\n", 1)[1])
    if echoed != header + payload:
        raise RuntimeError("the echo differs from the message")
    return s


def main() -> int:
    port, count, pid = (int(a) for a in sys.argv[1:4])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1024, count + 1024))
    before = rss_kib(pid)
    held = [open_echoed(port, size) for _ in range(count)]
    time.sleep(1)
    after = rss_kib(pid)
    print(f"{len(held)} idle echo connections after one {size}-byte message each: server RSS "
          f"{before} -> {after} KiB, {(after - before) / count:.2f} KiB per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
