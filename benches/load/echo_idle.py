#!/usr/bin/env python3
"""Idle memory of `server --echo` as a generic WebSocket client sees it (no ticksock protocol).

    benches/load/echo_idle.py PORT CONNECTIONS SERVER_PID

Opens CONNECTIONS plain WebSocket connections (no subprotocol) to 127.0.0.1:PORT, sends one
32-byte binary message on each and checks its echo, keeps them all open and idle, and prints
how much the server's resident memory (VmRSS of SERVER_PID) grew per connection. Standard
library only; it raises its own descriptor limit.
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


def open_echoed(port: int) -> socket.socket:
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
    payload, mask = os.urandom(32), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + masked)
    echoed = head.split(b"\r\n\r\n", 1)[1]
    while len(echoed) < 2 + len(payload):
        echoed += s.recv(4096)
    if echoed[:2] != bytes([0x82, len(payload)]) or echoed[2:] != payload:
        raise RuntimeError("the echo differs from the message")
    return s


def main() -> int:
    port, count, pid = (int(a) for a in sys.argv[1:4])
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1024, count + 1024))
    before = rss_kib(pid)
    held = [open_echoed(port) for _ in range(count)]
    time.sleep(1)
    after = rss_kib(pid)
    print(f"{len(held)} idle echo connections: server RSS {before} -> {after} KiB, "
          f"{(after - before) / count:.2f} KiB per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
