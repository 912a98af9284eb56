"""What the plain-WebSocket load scripts share (echo_idle.py, echo_backlog.py): a hand-made
upgrade with no subprotocol, binary frame headers, exact reads, and a process's memory from
/proc. Standard library only, so the scripts run on any machine with Python 3."""
import base64
import os
import socket


def status_kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def frame_header(length: int, masked: bool) -> bytes:
    """A final binary frame's header for a payload of `length` bytes (RFC 6455, 5.2)."""
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes([0x82, bit | length])
    if length < 1 << 16:
        return bytes([0x82, bit | 126]) + length.to_bytes(2, "big")
    return bytes([0x82, bit | 127]) + length.to_bytes(8, "big")


def recv_exactly(s: socket.socket, n: int, got: bytes = b"") -> bytes:
    """Reads until `got` holds `n` bytes; the server closing first is an error."""
    got = bytearray(got)
    while len(got) < n:
        chunk = s.recv(min(max(n - len(got), 4096), 1 << 20))
        if not chunk:
            raise RuntimeError("the server closed the connection (over its outbound cap?)")
        got += chunk
    return bytes(got)


def upgrade(port: int) -> socket.socket:
    """A WebSocket to 127.0.0.1:PORT, upgraded without a subprotocol (echo mode)."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    status = head.split(b"\r\n")[0]
    if b" 101 " not in status:
        raise RuntimeError(f"upgrade refused: {status!r}")
    return s
