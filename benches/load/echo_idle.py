#!/usr/bin/env python3
"""Idle memory of `server --echo` as a generic WebSocket client sees it (no ticksock protocol).

    benches/load/echo_idle.py PORT CONNECTIONS SERVER_PID [MESSAGE_BYTES]

Opens CONNECTIONS plain WebSocket connections (no subprotocol) to 127.0.0.1:PORT, sends one
binary message of MESSAGE_BYTES (default 32) on each and checks its echo, keeps them all open
and idle, and prints how much the server's resident memory (VmRSS of SERVER_PID) grew per
connection. A large message shows what a connection keeps of it once idle (issue 19: 60 KB
against 100 B). Standard library only; it raises its own descriptor limit.
"""
import os
import resource
import socket
import sys
import time

from wsraw import frame_header, recv_exactly, status_kib, upgrade


def open_echoed(port: int, size: int) -> socket.socket:
    s = upgrade(port)
    # A zero mask leaves the payload as it is, so large messages cost no masking here.
    payload = os.urandom(size)
    s.sendall(frame_header(size, True) + bytes(4) + payload)
    header = frame_header(size, False)
    echoed = recv_exactly(s, len(header) + size)
    if echoed != header + payload:
        raise RuntimeError("the echo differs from the message")
    return s


def main() -> int:
    port, count, pid = (int(a) for a in sys.argv[1:4])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1024, count + 1024))
    before = status_kib(pid, "VmRSS")
    held = [open_echoed(port, size) for _ in range(count)]
    time.sleep(1)
    after = status_kib(pid, "VmRSS")
    print(f"{len(held)} idle echo connections after one {size}-byte message each: server RSS "
          f"{before} -> {after} KiB, {(after - before) / count:.2f} KiB per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
