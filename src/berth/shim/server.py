"""The per-container shim: parent and subreaper of one container.

It creates the container through the runtime library (single-threaded, so forking is
safe), holds its stdio (pipes, or the pty master received on a console socket), writes the
json-file log, serves JSON-line requests on shims/<id>/shim.sock (see protocol.py), reaps
the init and exec processes, records exit.json and exits once the container is gone.
It runs in its own session, so it survives the daemon (live restore).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable
from typing import Any

from berth.shim.protocol import STDERR, STDOUT, ShimConfig, decode, encode, frame, rfc3339_nano

DRAIN_GRACE = 2.0      # seconds to keep reading output after a process died
SEND_TIMEOUT = 10.0
LINE_MAX = 16 * 1024


class LogWriter:
    """Docker's json-file format: one {"log","stream","time"} object per line of output."""

    def __init__(self, path: str, max_size: int = 0, max_files: int = 1) -> None:
        self.path = path
        self.fd = self._open()
        self.partial = {STDOUT: b"", STDERR: b""}
        self.max_size = max_size
        self.max_files = max(1, max_files)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def write(self, stream: int, data: bytes) -> None:
        buf = self.partial[stream] + data
        *lines, rest = buf.split(b"\n")
        records = [self._record(stream, ln + b"\n") for ln in lines]
        if len(rest) >= LINE_MAX:
            records.append(self._record(stream, rest))
            rest = b""
        self.partial[stream] = rest
        if records:
            self._emit(records)

    def flush(self) -> None:
        out = [self._record(s, d) for s, d in self.partial.items() if d]
        self.partial = {STDOUT: b"", STDERR: b""}
        if out:
            self._emit(out)

    def _record(self, stream: int, data: bytes) -> bytes:
        return json.dumps({"log": data.decode("utf-8", "replace"),
                           "stream": "stdout" if stream == STDOUT else "stderr",
                           "time": rfc3339_nano()}).encode() + b"\n"

    def _emit(self, records: list[bytes]) -> None:
        if not self.max_size:
            os.write(self.fd, b"".join(records))
            return
        # record by record against max-size, as Docker's json-file (a record is never split)
        size = os.fstat(self.fd).st_size
        batch: list[bytes] = []
        for rec in records:
            if size + len(rec) > self.max_size and (size or batch):
                if batch:
                    os.write(self.fd, b"".join(batch))
                    batch = []
                if self.max_files > 1:
                    self._rotate()
                else:
                    self._start_over()
                size = 0
            batch.append(rec)
            size += len(rec)
        os.write(self.fd, b"".join(batch))

    def _start_over(self) -> None:
        """max-file 1: a fresh, empty LOG takes the full one's place. A new file rather than a
        truncation in place: a follower still reading the old one finishes it, sees that the
        path names another file, and goes on with that one, as after a rotation."""
        fresh = f"{self.path}.new"
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            os.replace(fresh, self.path)
        except OSError:
            os.close(fd)
            os.unlink(fresh)
            raise
        os.close(self.fd)
        self.fd = fd

    def _rotate(self) -> None:
        """As Docker's json-file: LOG -> LOG.1 -> ... -> LOG.<max_files - 1>, the oldest dropped."""
        os.close(self.fd)
        for i in range(self.max_files - 1, 1, -1):
            try:
                os.replace(f"{self.path}.{i - 1}", f"{self.path}.{i}")
            except FileNotFoundError:
                pass
        os.replace(self.path, f"{self.path}.1")
        self.fd = self._open()


class Proc:
    """The container's init (key "") or one exec."""

    def __init__(self, key: str, tty: bool, stdin_once: bool) -> None:
        self.key = key
        self.tty = tty
        self.stdin_once = stdin_once
        self.pid: int | None = None
        self.stdin_w: int | None = None
        self.master: int | None = None
        self.outputs: dict[int, int] = {}    # fd -> stream
        self.clients: list[Client] = []
        self.exit_code: int | None = None
        self.exited_at: float | None = None
        self.done = False
        self.log: LogWriter | None = None


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.mode = "req"            # req | stream | wait
        self.proc: Proc | None = None
        self.stdin = False
        self.stdout = True
        self.stderr = True
        self.reading = True


class Shim:
    def __init__(self, cfg: ShimConfig) -> None:
        from berth.runtime.runtime import Runtime

        self.cfg = cfg
        self.rt = Runtime(root=cfg.runtime_root)
        self.sel = selectors.DefaultSelector()
        self.init = Proc("", cfg.tty, cfg.stdin_once)
        self.procs: dict[int, Proc] = {}
        self.execs: dict[str, Proc] = {}
        self.waiters: list[Client] = []
        self.started_at: str | None = None
        self.listener: socket.socket | None = None
        self.sig_r, self.sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.console_n = 0

    # --- stdio -------------------------------------------------------------------------
    def _console_socket(self) -> tuple[socket.socket, str]:
        self.console_n += 1
        path = f"console-{self.console_n}.sock"  # relative to our cwd: sun_path is short
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(path)
        s.listen(1)
        return s, path

    def _receive_master(self, s: socket.socket, path: str) -> int:
        try:
            s.settimeout(10)
            conn, _ = s.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            if not fds:
                raise RuntimeError("the runtime sent no terminal on the console socket")
            os.set_inheritable(fds[0], False)
            return fds[0]
        finally:
            s.close()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _make_stdio(self, proc: Proc, want_stdin: bool) -> tuple[tuple[int, int, int], list[int],
                                                                 tuple[socket.socket, str] | None]:
        """(stdio fds for the child, fds to close after creation, console socket)."""
        if proc.tty:
            cons = self._console_socket()
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            return (null, null, null), [null], cons
        close: list[int] = []
        if want_stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            proc.stdin_w = w
            close.append(r)
            stdin = r
        else:
            stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            close.append(stdin)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        close += [out_w, err_w]
        proc.outputs = {out_r: STDOUT, err_r: STDERR}
        return (stdin, out_w, err_w), close, None

    def _watch_outputs(self, proc: Proc) -> None:
        for fd in proc.outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("out", proc))

    # --- creation ----------------------------------------------------------------------
    def _launch(self, proc: Proc, open_stdin: bool,
                start: Callable[[tuple[int, int, int], str | None], int]) -> int:
        """Give `proc` its stdio (pipes, or a pty whose master arrives on a console socket),
        run `start(stdio, console_socket)` (the runtime's create or exec) and keep our ends;
        on failure close every descriptor made for it."""
        stdio, close, cons = self._make_stdio(proc, open_stdin)
        try:
            pid = start(stdio, cons[1] if cons else None)
        except BaseException:
            for fd in close + list(proc.outputs) + ([proc.stdin_w] if proc.stdin_w is not None else []):
                os.close(fd)
            if cons:
                cons[0].close()
            raise
        for fd in close:
            os.close(fd)
        if cons:
            proc.master = self._receive_master(*cons)
            proc.outputs = {proc.master: STDOUT}
            if open_stdin:
                proc.stdin_w = proc.master
        proc.pid = pid
        return pid

    def create(self) -> int:
        proc = self.init
        pid = self._launch(proc, self.cfg.open_stdin, lambda stdio, console: self.rt.create(
            self.cfg.id, self.cfg.bundle, stdio=stdio, console_socket=console))
        self.procs[pid] = proc
        proc.log = LogWriter(self.cfg.log_path, self.cfg.log_max_size, self.cfg.log_max_files)
        self._watch_outputs(proc)
        return pid

    def listen(self) -> None:
        # bind relative to the shim dir: absolute paths can exceed sun_path's 108 bytes
        os.chdir(os.path.dirname(self.cfg.socket))
        name = os.path.basename(self.cfg.socket)
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(name)
        s.listen(64)
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, ("listen", None))
        signal.set_wakeup_fd(self.sig_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(self.sig_r, selectors.EVENT_READ, ("signal", None))

    # --- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        while True:
            timeout = self._next_timeout()
            for key, _ in self.sel.select(timeout):
                kind, obj = key.data
                if kind == "listen":
                    self._accept()
                elif kind == "signal":
                    try:
                        while os.read(self.sig_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif kind == "out":
                    self._read_output(key.fd, obj)
                elif kind == "client":
                    self._client_readable(obj)
            self._reap()
            self._check_done()
            if self.init.done:
                self._finish()
                return

    def _next_timeout(self) -> float | None:
        pending = [p.exited_at for p in [self.init, *self.execs.values()]
                   if p.exited_at is not None and not p.done]
        if not pending:
            return None
        return max(0.0, min(pending) + DRAIN_GRACE - time.monotonic())

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.pop(pid, None)
            if proc is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            proc.exit_code = 128 - code if code < 0 else code
            proc.exited_at = time.monotonic()

    def _check_done(self) -> None:
        for proc in [*self.execs.values(), self.init]:
            if proc.done or proc.exited_at is None:
                continue
            if proc.outputs and time.monotonic() < proc.exited_at + DRAIN_GRACE:
                continue
            for fd in list(proc.outputs):
                self._close_output(fd, proc)
            proc.done = True
            if proc.log is not None:
                proc.log.flush()
            if proc.stdin_w is not None and proc.stdin_w != proc.master:
                os.close(proc.stdin_w)
            proc.stdin_w = None
            if proc.master is not None:
                os.close(proc.master)
                proc.master = None
            if proc is not self.init:
                for c in list(proc.clients):
                    self._drop(c)

    # --- output --------------------------------------------------------------------------
    def _read_output(self, fd: int, proc: Proc) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the pty's other side is gone
                raise
            data = b""
        if not data:
            self._close_output(fd, proc)
            return
        stream = proc.outputs.get(fd, STDOUT)
        if proc.log is not None:
            proc.log.write(stream, data)
        for c in list(proc.clients):
            if (stream == STDOUT and not c.stdout) or (stream == STDERR and not c.stderr):
                continue
            self._send(c, data if proc.tty else frame(stream, data))

    def _close_output(self, fd: int, proc: Proc) -> None:
        if fd in proc.outputs:
            del proc.outputs[fd]
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
            if fd != proc.master:
                os.close(fd)

    def _send(self, c: Client, data: bytes) -> bool:
        try:
            c.sock.sendall(data)
            return True
        except OSError:
            self._drop(c)
            return False

    # --- clients -------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.settimeout(SEND_TIMEOUT)
        c = Client(sock)
        self.sel.register(sock, selectors.EVENT_READ, ("client", c))

    def _drop(self, c: Client) -> None:
        if c.reading:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.reading = False
        if c.proc is not None and c in c.proc.clients:
            c.proc.clients.remove(c)
        if c in self.waiters:
            self.waiters.remove(c)
        try:
            c.sock.close()
        except OSError:
            pass

    def _client_readable(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            self._drop(c)
            return
        if c.mode == "stream":
            self._stdin_data(c, data)
            return
        if not data:
            self._drop(c)
            return
        c.buf += data
        while c.mode == "req" and b"\n" in c.buf:
            line, c.buf = c.buf.split(b"\n", 1)
            try:
                reply = self._dispatch(c, decode(line))
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
                reply = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
            if reply is not None:
                self._send(c, encode(reply))
        if c.mode == "stream" and c.buf:
            rest, c.buf = c.buf, b""
            self._stdin_data(c, rest)

    def _stdin_data(self, c: Client, data: bytes) -> None:
        proc = c.proc
        if not data:
            # client half-closed: stdin ends (for a pipe) but output keeps flowing to it
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.reading = False
            if c.stdin and proc is not None and proc.stdin_w is not None and not proc.tty \
                    and (proc.stdin_once or proc is not self.init):
                os.close(proc.stdin_w)
                proc.stdin_w = None
            if proc is None or proc.done:
                self._drop(c)
            return
        if c.stdin and proc is not None and proc.stdin_w is not None:
            try:
                os.write(proc.stdin_w, data)
            except OSError:
                pass

    # --- requests ----------------------------------------------------------------------
    def _dispatch(self, c: Client, msg: dict[str, Any]) -> dict[str, Any] | None:
        op = msg.get("op")
        if op == "start":
            self.rt.start(self.cfg.id)
            self.started_at = rfc3339_nano()
            return {"ok": True, "pid": self.init.pid}
        if op == "state":
            return {"ok": True, "pid": self.init.pid, "running": self.init.exit_code is None,
                    "exit_code": self.init.exit_code, "started_at": self.started_at,
                    "execs": {k: {"pid": p.pid, "running": not p.done, "exit_code": p.exit_code}
                              for k, p in self.execs.items()}}
        if op == "kill":
            key = msg.get("exec_id")
            proc = self.execs[key] if key else self.init
            if proc.exit_code is not None or proc.pid is None:
                return {"ok": False, "error": "process is not running", "kind": "NotRunning"}
            sig = int(msg.get("signal", signal.SIGKILL))
            if key:
                os.kill(proc.pid, sig)
            else:
                try:
                    self.rt.kill(self.cfg.id, sig, all=bool(msg.get("all")))
                except Exception:  # noqa: BLE001 - fall back to signalling the init directly
                    os.kill(proc.pid, sig)
            return {"ok": True}
        if op == "wait":
            key = msg.get("exec_id")
            if key:
                proc = self.execs[key]
                if proc.done:
                    return {"ok": True, "exit_code": proc.exit_code}
                c.mode = "wait"
                c.proc = proc
                proc.clients.append(c)
                c.stdout = c.stderr = False
                return None
            c.mode = "wait"
            self.waiters.append(c)
            return None
        if op == "attach":
            key = msg.get("exec_id")
            proc = self.execs[key] if key else self.init
            return self._attach(c, proc, msg)
        if op == "exec":
            return self._exec(c, msg)
        if op == "exec_state":
            p = self.execs[msg["exec_id"]]
            return {"ok": True, "pid": p.pid, "running": not p.done, "exit_code": p.exit_code}
        if op == "resize":
            key = msg.get("exec_id")
            proc = self.execs[key] if key else self.init
            if proc.master is not None:
                fcntl.ioctl(proc.master, termios.TIOCSWINSZ,
                            struct.pack("HHHH", int(msg["height"]), int(msg["width"]), 0, 0))
            return {"ok": True}
        if op == "pause":
            self.rt.pause(self.cfg.id)
            return {"ok": True}
        if op == "resume":
            self.rt.resume(self.cfg.id)
            return {"ok": True}
        if op == "shutdown":
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}", "kind": "InvalidParameter"}

    def _attach(self, c: Client, proc: Proc, msg: dict[str, Any]) -> dict[str, Any] | None:
        c.stdin = bool(msg.get("stdin"))
        c.stdout = bool(msg.get("stdout", True))
        c.stderr = bool(msg.get("stderr", True))
        c.proc = proc
        if not self._send(c, encode({"ok": True, "tty": proc.tty})):
            return None
        c.mode = "stream"
        if proc.done:
            self._drop(c)
            return None
        proc.clients.append(c)
        return None

    def _exec(self, c: Client, msg: dict[str, Any]) -> dict[str, Any] | None:
        from berth.runtime import spec

        key = msg["exec_id"]
        if self.init.exit_code is not None:
            return {"ok": False, "error": f"container {self.cfg.id} is not running", "kind": "Conflict"}
        tty = bool(msg.get("tty"))
        proc = Proc(key, tty, True)
        process = spec.Process.from_dict(msg["process"])
        pid = self._launch(proc, bool(msg.get("stdin")), lambda stdio, console: self.rt.exec(
            self.cfg.id, process, stdio=stdio, console_socket=console, detach=True))
        self.procs[pid] = proc
        self.execs[key] = proc
        if len(self.execs) > 64:  # health checks exec forever: forget old finished ones
            for old in [k for k, p in self.execs.items() if p.done][: len(self.execs) - 64]:
                del self.execs[old]
        self._watch_outputs(proc)
        self._reap()  # the exec may already be gone (and re-parented to us)
        if msg.get("attach"):
            return self._attach(c, proc, {"stdout": True, "stderr": True,
                                          "stdin": bool(msg.get("stdin"))})
        return {"ok": True, "pid": pid}

    # --- the end -----------------------------------------------------------------------
    def _finish(self) -> None:
        t0 = time.monotonic()
        oom = False
        try:
            oom = bool(self.rt.oom_killed(self.cfg.id))
        except Exception:  # noqa: BLE001
            pass
        try:
            self.rt.delete(self.cfg.id, force=True)
        except Exception as exc:  # noqa: BLE001
            print(f"shim: runtime delete failed: {exc}", file=sys.stderr)
        code = self.init.exit_code if self.init.exit_code is not None else 255
        info = {"exit_code": code, "oom_killed": oom, "finished_at": rfc3339_nano(),
                "started_at": self.started_at}
        if os.environ.get("BERTH_SHIM_DEBUG"):
            with open(os.environ["BERTH_SHIM_DEBUG"], "a") as dbg:
                print(f"shim {self.cfg.id[:12]}: exit handled {1000 * (t0 - (self.init.exited_at or t0)):.1f} ms "
                      f"after reap, oom+delete {1000 * (time.monotonic() - t0):.1f} ms", file=dbg)
        tmp = self.cfg.exit_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.cfg.exit_path)
        for c in list(self.init.clients):
            self._drop(c)
        for c in list(self.waiters):
            self._send(c, encode({"ok": True, **info}))
            self._drop(c)
        try:
            os.unlink(self.cfg.socket)
        except FileNotFoundError:
            pass


def run_shim(cfg: ShimConfig, ready_fd: int) -> int:
    """Create the container, report on ready_fd (one JSON line, then closed), serve, exit."""
    from berth import kernel

    os.umask(0o022)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    try:  # the init loads its seccomp filter after pivot_root: have the binding imported
        import seccomp  # noqa: F401
    except ImportError:
        pass
    t0 = time.monotonic()
    shim = Shim(cfg)
    try:
        shim.listen()
        t1 = time.monotonic()
        pid = shim.create()
        if os.environ.get("BERTH_SHIM_DEBUG"):
            with open(os.environ["BERTH_SHIM_DEBUG"], "a") as dbg:
                print(f"shim {cfg.id[:12]}: set-up {1000 * (t1 - t0):.1f} ms, runtime create "
                      f"{1000 * (time.monotonic() - t1):.1f} ms", file=dbg)
    except BaseException as exc:  # noqa: BLE001 - reported to the daemon
        try:
            shim.rt.delete(cfg.id, force=True)
        except Exception:  # noqa: BLE001
            pass
        try:
            os.unlink(cfg.socket)
        except FileNotFoundError:
            pass
        os.write(ready_fd, encode({"ok": False, "error": str(exc), "kind": type(exc).__name__}))
        os.close(ready_fd)
        return 1
    os.write(ready_fd, encode({"ok": True, "pid": pid, "shim_pid": os.getpid()}))
    os.close(ready_fd)
    shim.run()
    return 0


def _detach_stdio(log_path: str | None) -> None:
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if log_path else null
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        if fd > 2:
            os.close(fd)


def main(argv: list[str] | None = None) -> None:
    """`python -m berth.shim CONFIG_JSON`: daemonize (the parent exits at once), then run.
    The ready line goes to the original stdout, which the daemon reads until EOF."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--template":
        from berth.shim.template import serve_template
        serve_template(argv[1])
        return
    cfg = ShimConfig.from_json(argv[0])
    ready = os.dup(1)
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    _detach_stdio(os.path.join(os.path.dirname(cfg.socket), "shim.log"))
    code = run_shim(cfg, ready)
    sys.stdout.flush()
    os._exit(code)
