"""Container stdio over a hijacked connection: multiplexed frames, raw terminal, detach keys."""

from __future__ import annotations

import _signal  # the C module: signal.py's enum wrappers cost ~0.5 ms on every run
import os
import select
import sys

from berth import detachkeys

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO

    from berth.cli.client import HijackedStream, Response

def parse_detach_keys(spec: str) -> bytes:
    """Docker's --detach-keys -> the byte sequence; ValueError names the bad key."""
    try:
        return detachkeys.parse(spec)
    except ValueError as exc:
        raise ValueError(f"invalid detach key: {exc}") from None


class Demuxer:
    """Splits Docker's 8-byte-header frames (stream, 0, 0, 0, size BE32) into out/err."""

    def __init__(self, out: IO[bytes], err: IO[bytes]) -> None:
        self.out = out
        self.err = err
        self.buf = b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            kind = self.buf[0]
            size = int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                break
            payload = self.buf[8:8 + size]
            self.buf = self.buf[8 + size:]
            target = self.err if kind == 2 else self.out
            target.write(payload)
            target.flush()


def copy_logs(resp: Response, tty: bool, out: IO[bytes], err: IO[bytes]) -> None:
    """Stream a logs response to out/err (demultiplexed unless the container has a TTY)."""
    if tty:
        for chunk in resp.chunks():
            out.write(chunk)
            out.flush()
        return
    dm = Demuxer(out, err)
    for chunk in resp.chunks():
        dm.feed(chunk)


class RawTerminal:
    """Puts a terminal fd in raw mode for the life of the `with` block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list | None = None

    def __enter__(self) -> RawTerminal:
        import termios
        import tty

        try:
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        sz = os.get_terminal_size(fd)
        return sz.lines, sz.columns
    except OSError:
        return None


def pump(stream: HijackedStream, *, tty: bool, stdin: bool, detach_keys: bytes | None = None,
         on_resize: Callable[[], None] | None = None,
         on_signal: Callable[[int], None] | None = None,
         out: IO[bytes] | None = None, err: IO[bytes] | None = None) -> str:
    """Copy stdin -> stream and stream -> stdout/stderr until the output ends.

    Returns "eof" when the container's output ended, "detached" when the detach keys were
    typed. SIGWINCH calls on_resize; SIGINT/SIGTERM call on_signal (signal proxying).
    """
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    demux = None if tty else Demuxer(out, err)
    stdin_fd = sys.stdin.fileno() if stdin else -1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    pending_signals: list[int] = []
    old_handlers: dict[int, object] = {}

    def handler(signum: int, _frame: object) -> None:
        pending_signals.append(signum)
        try:
            os.write(wake_w, b"x")
        except OSError:
            pass

    watched = []
    if on_resize is not None:
        watched.append(_signal.SIGWINCH)
    if on_signal is not None:
        watched += [_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
                    _signal.SIGUSR2]
    for s in watched:
        try:
            old_handlers[s] = _signal.signal(s, handler)
        except (ValueError, OSError):
            pass
    matched = 0
    stdin_open = stdin
    try:
        while True:
            if stream.buffered():
                data = stream.recv()
                _emit(data, tty, demux, out)
                continue
            rlist = [stream.fileno(), wake_r]
            if stdin_open:
                rlist.append(stdin_fd)
            try:
                ready, _, _ = select.select(rlist, [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except OSError:
                    pass
                while pending_signals:
                    signum = pending_signals.pop(0)
                    if signum == _signal.SIGWINCH and on_resize:
                        on_resize()
                    elif on_signal:
                        on_signal(signum)
            if stream.fileno() in ready:
                data = stream.recv()
                if not data:
                    return "eof"
                _emit(data, tty, demux, out)
            if stdin_open and stdin_fd in ready:
                try:
                    data = os.read(stdin_fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    stdin_open = False
                    stream.close_write()
                    continue
                if detach_keys:
                    send = bytearray()
                    for b in data:
                        if b == detach_keys[matched]:
                            matched += 1
                            if matched == len(detach_keys):
                                return "detached"
                            continue
                        if matched:
                            send += detach_keys[:matched]
                            matched = 0
                            if b == detach_keys[0]:
                                matched = 1
                                continue
                        send.append(b)
                    data = bytes(send)
                if data:
                    try:
                        stream.send(data)
                    except OSError:
                        stdin_open = False
    finally:
        for s, h in old_handlers.items():
            try:
                _signal.signal(s, h)  # type: ignore[arg-type]
            except (ValueError, OSError):
                pass
        os.close(wake_r)
        os.close(wake_w)


def _emit(data: bytes, tty: bool, demux: Demuxer | None, out: IO[bytes]) -> None:
    if tty or demux is None:
        out.write(data)
        out.flush()
    else:
        demux.feed(data)
