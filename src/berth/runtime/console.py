"""Pseudo-terminals and runc's console-socket protocol.

With `terminal: true` the init opens a pty in the container's own devpts, makes the slave
its controlling terminal and stdio, and sends the master fd (SCM_RIGHTS, with the pty name
as the message) over the unix socket the caller named with `--console-socket`.
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
import termios

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, str]:
    """(master fd, slave path) of a new pty from the devpts behind `ptmx`."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    buf = array.array("i", [0])
    fcntl.ioctl(master, TIOCGPTN, buf, True)
    pts_dir = os.path.join(os.path.dirname(os.path.realpath(ptmx)), "")
    if not pts_dir.endswith("/pts/"):
        pts_dir = "/dev/pts/"
    return master, f"{pts_dir}{buf[0]}"


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def make_controlling(slave_fd: int) -> None:
    """Make `slave_fd` the controlling terminal (the caller has called setsid) and stdio."""
    fcntl.ioctl(slave_fd, termios.TIOCSCTTY, 0)
    for n in (0, 1, 2):
        os.dup2(slave_fd, n)


def send_fd(sock_fd: int, fd: int, name: str) -> None:
    sock = socket.socket(fileno=os.dup(sock_fd))
    try:
        socket.send_fds(sock, [name.encode()], [fd])
    finally:
        sock.close()


def connect(path: str) -> int:
    """Connect to a console socket; returns the (inheritable) fd."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock.detach()


def recv_fd(sock: socket.socket) -> tuple[int, str]:
    """Receive (master fd, pty name) sent by `send_fd`."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no file descriptor received on the console socket")
    return fds[0], msg.decode(errors="replace")
