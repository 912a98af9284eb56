"""Starting and stopping the server binary the checks run against: one way, for the main server
and for the second servers the checks start with other flags. Standard library only."""
import signal
import socket
import subprocess
import time


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answered(host: str, port: int) -> bool:
    """Whether the server answers a plain HTTP request to the end. A whole exchange, not a
    bare connect: once its answer has ended the server has let the connection go, so it does
    not count against a --max-connections of 1."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            while s.recv(4096):
                pass
        return True
    except OSError:
        return False


def start(path: str, log, *flags: str, host: str = "127.0.0.1", attempts: int = 3) -> tuple:
    """Starts the server on a free port with `flags`; returns (process, port) once it answers.
    Tries another port when the first is taken in between, up to `attempts` times."""
    last = ""
    for _ in range(attempts):
        port = free_port(host)
        proc = subprocess.Popen([path, "--listen", f"{host}:{port}", *flags], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last = f"server {' '.join(flags)} exited with {proc.returncode} before listening"
                break
            if answered(host, port):
                return proc, port
            time.sleep(0.05)                 # polling for the port to open, not synchronisation
        else:
            stop(proc)
            last = f"server {' '.join(flags)} did not listen within 15 s"
    raise RuntimeError(last)


def stop(proc: subprocess.Popen) -> None:
    """SIGINT, then SIGKILL if it has not gone within 15 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
