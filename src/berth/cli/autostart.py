"""Start berthd in the background when nobody answers on the default socket (root only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

LOG_PATH = "/var/log/berthd.log"
WAIT_SECONDS = 30.0


def _answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ping(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = s.recv(64)
        return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    except OSError:
        return False
    finally:
        s.close()


def berthd_path() -> str:
    here = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else None
    for d in (here, Path(sys.executable).parent):
        if d is not None and (d / "berthd").exists():
            return str(d / "berthd")
    return "berthd"


def ensure_daemon(path: str) -> None:
    """If path does not answer and we are root, start berthd and wait for /_ping."""
    if _answers(path) or os.geteuid() != 0:
        return
    import fcntl

    run_dir = os.path.dirname(path) or "/run/berth"
    os.makedirs(run_dir, exist_ok=True)
    lock_fd = os.open(os.path.join(run_dir, ".autostart.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if _answers(path):
            return
        log_path = LOG_PATH
        try:
            log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        except OSError:
            log_path = os.path.join(run_dir, "berthd.log")
            log = open(log_path, "ab")  # noqa: SIM115
        with log:
            proc = subprocess.Popen([berthd_path()], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if _ping(path):
                print(f"berth: started the berth daemon (pid {proc.pid}), logging to {log_path}",
                      file=sys.stderr)
                return
            if proc.poll() is not None:
                from berth.cli.client import DaemonUnreachable

                raise DaemonUnreachable(
                    f"the berth daemon could not be started (exit status {proc.returncode}); "
                    f"see {log_path}")
            time.sleep(0.05)
        from berth.cli.client import DaemonUnreachable

        raise DaemonUnreachable(f"started the berth daemon (pid {proc.pid}) but it did not answer "
                                f"within {WAIT_SECONDS:.0f}s; see {log_path}")
    finally:
        os.close(lock_fd)
