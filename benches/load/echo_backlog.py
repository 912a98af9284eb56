#!/usr/bin/env python3
"""Server memory while a peer holds a backlog of echoes constant (issue 19, defect 1).

    benches/load/echo_backlog.py PORT SERVER_PID [BACKLOG_MB [ROUND_TRIPS [MESSAGE_BYTES [SECONDS]]]]

Against `server --echo` on 127.0.0.1:PORT: one plain WebSocket connection sends BACKLOG_MB
(default 26) of binary messages of MESSAGE_BYTES (default 60000) without reading, so their
echoes queue up in the server (and in the kernel's socket buffers); then it makes ROUND_TRIPS
(default 2000) round trips one at a time, each sending one more message and reading one
message's worth of echo from the front, so the backlog stays as it is and the server always
has some of it left to write. It prints the server's resident memory (VmRSS of SERVER_PID)
before, once the backlog is built, every 250 round trips and at the end, and its peak
(VmHWM). A server whose outbound memory is bounded by what is queued stays flat during the
round trips; one that keeps what it has written grows by a message per round trip.

The backlog must stay under the server's `--max-outbound-bytes` (64 MiB in echo mode), or the
server closes the connection. Stops after SECONDS (default 120) whatever the count. Standard
library only; the echoes are checked only for their length (they are the messages, in order,
framed the same way).
"""
import os
import sys
import time

from wsraw import frame_header, recv_exactly, status_kib, upgrade


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    backlog_mb = float(sys.argv[3]) if len(sys.argv) > 3 else 26
    round_trips = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 60000
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 120
    deadline = time.monotonic() + seconds

    s = upgrade(port)
    # A zero mask leaves the payload as it is: no masking cost here.
    message = frame_header(size, True) + bytes(4) + os.urandom(size)
    echo_len = len(frame_header(size, False)) + size
    rss = [("before", status_kib(pid, "VmRSS"))]

    backlog = int(backlog_mb * 1e6) // size
    for _ in range(backlog):
        s.sendall(message)
    # Until the server has read them all: its memory stops growing (its reads take the
    # messages, its writes stall on the full socket). At most 10 s.
    last, still = -1, 0
    for _ in range(100):
        time.sleep(0.1)
        now = status_kib(pid, "VmRSS")
        still = still + 1 if now == last else 0
        last = now
        if still >= 5:
            break
    rss.append((f"backlog of {backlog} messages ({backlog * size / 1e6:.1f} MB)", last))

    done = 0
    while done < round_trips and time.monotonic() < deadline:
        s.sendall(message)
        recv_exactly(s, echo_len)
        done += 1
        if done % 250 == 0:
            rss.append((f"after {done} round trips", status_kib(pid, "VmRSS")))
    if done % 250:
        rss.append((f"after {done} round trips", status_kib(pid, "VmRSS")))
    peak = status_kib(pid, "VmHWM")
    s.close()

    for label, kib in rss:
        print(f"server RSS {label}: {kib / 1024:.1f} MiB")
    built = rss[1][1]
    print(f"{done} round trips of {size} bytes holding a {backlog * size / 1e6:.1f} MB backlog: "
          f"RSS {rss[0][1] / 1024:.1f} -> {built / 1024:.1f} (backlog built) -> "
          f"{rss[-1][1] / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB; "
          f"{(rss[-1][1] - built) / 1024:+.1f} MiB over the round trips")
    return 0 if done == round_trips else 1


if __name__ == "__main__":
    sys.exit(main())
