#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into fuzz/seeds/<target>/ (run from anywhere; see docs/FUZZING.md).

The seeds are small valid (and a few hostile) inputs, so libFuzzer starts from the shapes the
server really sees instead of discovering the WebSocket masking bit and bincode varints alone.
"""
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def s(text):
    """A bincode string: varint length (under 251), then the bytes."""
    b = text.encode()
    assert len(b) < 251
    return bytes([len(b)]) + b


def masked(opcode, payload, fin=True, mask=b"\0\0\0\0"):
    """A masked client frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + body


def request(id_, route, body=b""):
    return bytes([0, id_]) + s(route) + body


UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
SUB = b"Sec-WebSocket-Protocol: ticksock.v1\r\n"
SUB_JSON = b"Sec-WebSocket-Protocol: ticksock.v1.json\r\n"

seeds = {
    "frame_decode": {
        "request": request(1, "echo", b"hi"),
        "request_login": request(2, "login", s("ann")),
        "welcome": bytes([0, 1, 30, 251, 0, 0, 0, 0]) + b"",
        "welcome_big": bytes([0, 1, 30, 253]) + (2**40 + 3).to_bytes(8, "little"),
        "reply": bytes([1, 5, 1, 2, 3]),
        "error": bytes([2, 7, 251, 0xE8, 0x03]) + s("no route `x`"),
        "push": bytes([3]) + s("state") + bytes([5, 0]),
        "hostile_route_len": bytes([0, 1, 253, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    },
    "body_decode": {
        "login": bytes([0]) + s("ann"),
        "join": bytes([1]) + s("main"),
        "move": bytes([2, 0xFF, 0x01]),
        "chat": bytes([3]) + s("hello"),
        "whisper": bytes([4]) + s("ann") + s("hi"),
        "state": bytes([5, 5, 2, 1, 20, 40, 2, 251, 0xD0, 0x07, 0]),
        "joined": bytes([6]) + s("main") + bytes([1, 1, 20, 40]),
        "rooms": bytes([7, 2]) + s("main") + bytes([0, 64]) + s("b") + bytes([3, 64]),
        "vec_u64": bytes([8, 3, 1, 2, 253]) + (2**60).to_bytes(8, "little"),
        "string": bytes([9]) + s("hi"),
        "hostile_vec": bytes([8, 253, 0, 0, 0, 0, 0, 0, 0, 0x40, 1, 2, 3]),
        "hostile_string": bytes([9, 252, 0xFF, 0xFF, 0xFF, 0x7F]),
        # Found by the fuzzer: a room list claiming ~4.3e9 entries. serde preallocates 1 MiB
        # (its cap) before the first entry fails; bincode's limit does not count it.
        "rooms_huge_len": bytes([7, 252, 0x25, 0xFF, 0x09, 0xFF]),
    },
    "handshake": {
        "upgrade": UPGRADE + SUB + b"\r\n",
        "upgrade_json": UPGRADE + SUB_JSON + b"\r\n",
        "upgrade_echo": UPGRADE + b"\r\n",
        "upgrade_with_frame": UPGRADE + SUB + b"\r\n" + masked(2, request(1, "echo")),
        "plain_get": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "metrics": b"GET /metrics HTTP/1.1\r\n\r\n",
        "head": b"HEAD /ticksock.js HTTP/1.1\r\n\r\n",
        "post": b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "version8": UPGRADE.replace(b"13", b"8") + SUB + b"\r\n",
        "partial": UPGRADE[:40],
    },
}

frames = (masked(2, request(1, "echo", b"x")) + masked(2, request(2, "nope"))
          + masked(2, bytes([0, 3, 2, 0xFF, 0xFE])) + masked(9, b"ping")
          + masked(2, request(4, "login"), fin=False, mask=b"\x12\x34\x56\x78")
          + masked(0, s("ann"), mask=b"\x01\x02\x03\x04")
          + masked(2, request(5, "echo", bytes(200))) + masked(8, b"\x03\xe8bye"))
json_frames = (masked(1, b'{"id":1,"route":"rooms"}') + masked(1, b'{"id":2,"route":"echo","body":[1]}')
               + masked(1, b'{"id":3}') + masked(1, b'{"type":"push","id":4,"route":"x"}')
               + masked(1, b"[1,2") + masked(2, b"\x00"))
echo_frames = masked(1, b"hello") + masked(2, bytes(300)) + masked(10, b"") + masked(8, b"")

seeds["read_path"] = {
    "binary": UPGRADE + SUB + b"\r\n" + frames,
    "json": UPGRADE + SUB_JSON + b"\r\n" + json_frames,
    "echo": UPGRADE + b"\r\n" + echo_frames,
    "unmasked": UPGRADE + SUB + b"\r\n" + bytes([0x82, 0x01, 0x00]),
    "huge": UPGRADE + SUB + b"\r\n" + bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]),
    "plain_get": b"GET /x HTTP/1.1\r\n\r\n",
}
seeds["read_path_upgraded"] = {
    "binary": b"\x00" + frames,
    "binary_text": b"\x00" + masked(1, b"text"),
    "json": b"\x01" + json_frames,
    "echo": b"\x02" + echo_frames,
    "huge": b"\x00" + bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]),
    "rsv_bits": b"\x00" + bytes([0xF2, 0x80, 0, 0, 0, 0]),
}

for target, files in seeds.items():
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(HERE, target, name), "wb") as f:
            f.write(data)
print("wrote", sum(len(f) for f in seeds.values()), "seeds")
