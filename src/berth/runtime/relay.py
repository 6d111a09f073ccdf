"""Copy between our stdio and a pty master until a process exits (run/exec with a terminal
and no console socket of the caller's own)."""

from __future__ import annotations

import os
import select
import signal
import termios
import tty


def relay(master: int, pid: int) -> int:
    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None
    if stdin_tty:
        tty.setraw(0)
        try:
            from berth.runtime import console
            rows, cols = console.get_winsize(0)
            console.set_winsize(master, rows, cols)
        except OSError:
            pass
    code = None
    rfds = [master, 0]
    r_pipe, w_pipe = os.pipe()
    os.set_blocking(w_pipe, False)
    signal.set_wakeup_fd(w_pipe)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        while True:
            while code is None:
                try:
                    got, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    code = 255
                    break
                if got == 0:
                    break
                if got == pid:
                    code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
                        else 128 + os.WTERMSIG(status)
            try:
                ready, _, _ = select.select(rfds + [r_pipe], [], [], 0.05 if code is not None else 1.0)
            except InterruptedError:
                continue
            if r_pipe in ready:
                os.read(r_pipe, 512)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    rfds.remove(master)
                else:
                    os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    rfds.remove(0)
                else:
                    os.write(master, data)
            if code is not None and (master not in rfds or master not in ready):
                return code
    finally:
        signal.set_wakeup_fd(-1)
        os.close(r_pipe)
        os.close(w_pipe)
        os.close(master)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
