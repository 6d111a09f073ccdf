"""The `Runtime` class: the library API behind `berth-runtime` and the shim.

`Runtime(root)` keeps one directory per container under `root` (state.json, exec.fifo).
The caller of `create`/`exec` should be a child subreaper (PR_SET_CHILD_SUBREAPER): the
container's init and exec'd processes are re-parented to it, and it reaps them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import signal as _signal
import time

from berth.runtime import state as _state
from berth.runtime.errors import (
    ContainerExists,
    ContainerNotFound,
    ExecNotFound,
    ExecNotPermitted,
    InvalidState,
    RuntimeFailure,
)
from berth.runtime.state import EXEC_FIFO, State

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any

    from berth.runtime import spec as _spec

_ID_RE = re.compile(r"^[\w+\-.]+$")
SECCOMP_CACHE = ".seccomp"  # under the root: compiled seccomp programs (not a container id)
def parse_signal(sig: int | str) -> int:
    """9, '9', 'KILL', 'SIGKILL' -> 9."""
    if isinstance(sig, int):
        return sig
    s = sig.strip().upper()
    if s.isdigit():
        return int(s)
    s = s if s.startswith("SIG") else "SIG" + s
    num = getattr(_signal, s, None) if not s.startswith("SIG_") else None
    if not isinstance(num, int):
        raise RuntimeFailure(f"unknown signal {sig!r}")
    return int(num)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


class Runtime:
    def __init__(self, root: str = "/run/berth/runtime") -> None:
        self.root = root

    # --- helpers -------------------------------------------------------------------------
    def _dir(self, cid: str) -> str:
        if not cid or not _ID_RE.match(cid) or cid in (".", "..", SECCOMP_CACHE):
            raise RuntimeFailure(f"invalid container id {cid!r}: use letters, digits, '_', '+', '-', '.'")
        return os.path.join(self.root, cid)

    def _load(self, cid: str) -> State:
        d = self._dir(cid)
        try:
            return _state.load(d)
        except FileNotFoundError:
            raise ContainerNotFound(f"container {cid} does not exist") from None

    def _status(self, st: State) -> str:
        if st.pid <= 0:
            return st.status if st.status == "creating" else "stopped"
        start = _state.proc_start_time(st.pid)
        if start <= 0 or (st.init_start and start != st.init_start):
            return "stopped"
        if os.path.exists(os.path.join(self._dir(st.id), EXEC_FIFO)):
            return "created"
        if st.cgroup and self._cgroup(st).frozen():
            return "paused"
        return "running"

    @staticmethod
    def _cgroup(st: State):
        from berth.runtime import cgroups
        return cgroups.from_state(st.cgroup)

    def list(self) -> list[State]:
        out = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        for name in names:
            try:
                st = _state.load(os.path.join(self.root, name))
            except (OSError, ValueError):
                continue
            st.status = self._status(st)
            out.append(st)
        return out

    def state(self, cid: str) -> State:
        st = self._load(cid)
        st.status = self._status(st)
        return st

    # --- create --------------------------------------------------------------------------
    def create(self, cid: str, bundle: str, stdio: tuple[int, int, int] | None = (0, 1, 2),
               console_socket: str | None = None, pid_file: str | None = None,
               no_pivot: bool = False, preserve_fds: int = 0, config: _spec.Spec | None = None,
               new_keyring: bool = True) -> int:
        """Create container `cid` from `bundle` (its config.json, or `config` if given, already
        loaded from that bundle). Returns the init's pid; the init waits for `start`."""
        from berth.runtime import cgroups
        # the init's move into its cgroups comes in a few ms: take the kernel's wait now;
        # the holder process stops once the init is moved, or whenever create ends
        cgroups.prime_attach(hold=5.0)
        try:
            return self._create(cid, bundle, stdio, console_socket, pid_file, no_pivot, preserve_fds,
                                config, new_keyring)
        finally:
            cgroups.end_prime()

    def _create(self, cid: str, bundle: str, stdio: tuple[int, int, int] | None, console_socket: str | None,
                pid_file: str | None, no_pivot: bool, preserve_fds: int, config: _spec.Spec | None,
                new_keyring: bool) -> int:
        from berth.runtime import cgroups
        from berth.runtime import spec as _spec
        d = self._dir(cid)
        bundle = os.path.abspath(bundle)
        if config is None:
            config = load_bundle(bundle)
        if config.process is None or not config.process.args:
            raise RuntimeFailure("config.json: process.args must name the command to run")
        if config.root is None:
            raise RuntimeFailure("config.json: root.path is missing")
        rootfs = config.root.path if config.root.path.startswith("/") else os.path.join(bundle, config.root.path)
        if not os.path.isdir(rootfs):
            raise RuntimeFailure(f"rootfs {rootfs} is not a directory")
        linux = config.linux or _spec.Linux()
        userns = config.namespace("user")
        if userns is not None and userns.path is None and not (linux.uid_mappings and linux.gid_mappings):
            raise RuntimeFailure("config.json: a new user namespace needs linux.uidMappings and gidMappings")
        from berth.runtime import namespaces
        flags, join = namespaces.plan(linux.namespaces)

        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(d, 0o711)
        except FileExistsError:
            raise ContainerExists(f"container with id {cid} already exists") from None
        cg = None
        console_fd = None
        pipes: list[int] = []
        init_pid = 0
        try:
            fifo = os.path.join(d, EXEC_FIFO)
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)  # not masked by umask: a user-namespaced init opens it too
            st = State(id=cid, bundle=bundle, rootfs=rootfs, created=_now(),
                       annotations=config.annotations or {},
                       config=config.__dict__.get("_source") or config.to_dict())
            cg = cgroups.manager_for(linux.cgroups_path, cid)
            st.cgroup = cg.to_state()
            # on disk before anything is made, so `delete --force` can clean up after a
            # create that was killed half-way
            _state.save(d, st)
            if config.process.terminal:
                if not console_socket:
                    raise RuntimeFailure("config.json asks for a terminal: pass --console-socket")
                from berth.runtime import console
                try:
                    console_fd = console.connect(console_socket)
                except OSError as exc:
                    raise RuntimeFailure(f"cannot connect to console socket {console_socket}: "
                                         f"{exc.strerror}") from None
            pipes = [*os.pipe(), *os.pipe()]  # runtime->init, init->runtime
            hooks = config.hooks
            has_hooks = bool(hooks and (hooks.prestart or hooks.create_runtime or hooks.create_container))
            from berth.runtime.init import InitConfig
            cfg = InitConfig(spec=config, rootfs=rootfs, sync_r=pipes[0], sync_w=pipes[3], stdio=stdio,
                             fifo_path=fifo, console_fd=console_fd, cgroup=cg, join=join,
                             unshare_flags=flags, no_pivot=no_pivot, preserve_fds=preserve_fds,
                             has_hooks=has_hooks, container_id=cid, bundle=bundle, new_keyring=new_keyring,
                             seccomp=self._seccomp(linux, config.process))
            init_pid = self._spawn(cfg, pipes, on_fork=lambda: _make_cgroup(cg, linux.resources),
                                   on_pid=lambda pid: _join_cgroup(cg, pid),
                                   on_hooks=lambda pid: self._hooks_create(st, pid, config))
            st.pid = init_pid
            st.init_start = _state.proc_start_time(init_pid)
            st.status = "created"
            st.namespaces = self._ns_paths(init_pid, linux)
            _state.save(d, st)
            if pid_file:
                _write_pid_file(pid_file, init_pid)
            return init_pid
        except BaseException:
            if init_pid:
                _kill_wait(init_pid)
            if cg is not None:
                try:
                    for p in cg.procs():  # whatever got into the cgroup (init, hook leftovers)
                        _kill_wait(p)
                    cg.destroy()
                except (RuntimeFailure, OSError):
                    pass
            _rmtree(d)
            raise
        finally:
            _close_all(pipes)
            if console_fd is not None:
                os.close(console_fd)

    def _spawn(self, cfg, pipes: list[int], on_fork=None, on_pid=None, on_hooks=None) -> int:
        """Fork the bridge child, follow the sync protocol, return the init's host pid.
        `pipes` is [runtime->init read, write, init->runtime read, write]; all are closed.
        `on_fork()` runs right after the fork and `on_pid(pid)` once the init's pid is known
        (create: making its cgroups and applying the limits, then joining them), both while
        the bridge and the init work; the init waits for their outcome ("cgroup" or "error")
        before it needs it."""
        from berth.runtime import init
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(pipes[1])
                os.close(pipes[2])
                init.bridge(cfg)
            finally:
                os._exit(1)
        os.close(pipes[0])
        os.close(pipes[3])
        sync = init.Sync(pipes[2], pipes[1])
        pipes.clear()
        init_pid = 0
        ready = False  # an exec's process may say "ready" before the bridge reports its pid
        fork_error: Exception | None = None
        try:
            if on_fork is not None:
                try:
                    on_fork()
                except (RuntimeFailure, OSError) as exc:
                    fork_error = exc  # told to the init with its pid, as on_pid's errors
            while True:
                try:
                    msg = sync.recv()
                except EOFError:
                    raise RuntimeFailure("container init exited during set-up without a message") from None
                kind = msg.get("type")
                if kind == "pid":
                    init_pid = msg["pid"]
                    os.waitpid(pid, 0)
                    pid = 0
                    if on_pid is not None:
                        # the init may already have failed and gone: its message follows in
                        # the pipe, so sending never raises here and the loop reads on
                        try:
                            if fork_error is not None:
                                raise fork_error
                            on_pid(init_pid)
                        except (RuntimeFailure, OSError) as exc:
                            _send_quiet(sync, type="error", message=str(exc))
                        else:
                            _send_quiet(sync, type="cgroup")
                    if ready:
                        return init_pid
                elif kind == "userns":
                    try:
                        _write_id_maps(pid, cfg.spec.linux)
                    except OSError as exc:
                        _send_quiet(sync, type="error", message=f"cannot map the user namespace: {exc}")
                    else:
                        _send_quiet(sync, type="userns-ok")
                elif kind == "hooks":
                    try:
                        if on_hooks is not None:
                            on_hooks(init_pid)
                    except RuntimeFailure as exc:
                        _send_quiet(sync, type="error", message=str(exc))
                        raise
                    _send_quiet(sync, type="ok")
                elif kind == "ready":
                    if init_pid:
                        return init_pid
                    ready = True
                elif kind == "error":
                    message = msg.get("message", "unknown error")
                    if msg.get("kind") == "notfound":
                        raise ExecNotFound(message)
                    if msg.get("kind") == "notpermitted":
                        raise ExecNotPermitted(message)
                    raise RuntimeFailure(message)
        except BaseException:
            if init_pid:
                _kill_wait(init_pid)
            raise
        finally:
            sync.close()
            if pid:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def _seccomp(self, linux, process) -> bytes | None:
        """The BPF program of the spec's seccomp profile for `process` (None: no filter)."""
        if linux is None or linux.seccomp is None:
            return None
        from berth.runtime import seccomp
        try:
            return seccomp.program(linux.seccomp, bool(process.no_new_privileges),
                                   os.path.join(self.root, SECCOMP_CACHE))
        except (ValueError, RuntimeError, OSError) as exc:
            raise RuntimeFailure(f"seccomp: {exc}") from None

    @staticmethod
    def _ns_paths(pid: int, linux) -> dict[str, str]:
        from berth import kernel
        out = {}
        for ns in linux.namespaces or []:
            out[ns.type] = ns.path or f"/proc/{pid}/ns/{kernel.NAMESPACE_PROC_NAMES[ns.type]}"
        return out

    def _hooks_create(self, st: State, pid: int, config) -> None:
        hooks = config.hooks
        if hooks is None:
            return
        st.pid = pid
        st.status = "creating"
        from berth.runtime import hooks as _hooks
        for h in (hooks.prestart or []) + (hooks.create_runtime or []):
            _hooks.run(h, st.hook_state())
        # createContainer hooks belong in the container's mount namespace; run them there
        for h in hooks.create_container or []:
            _hooks.run(h, st.hook_state(), mount_ns=f"/proc/{pid}/ns/mnt")

    # --- start ---------------------------------------------------------------------------
    def start(self, cid: str) -> None:
        st = self.state(cid)
        if st.status != "created":
            raise InvalidState(f"cannot start a container that is {st.status}")
        fifo = os.path.join(self._dir(cid), EXEC_FIFO)
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidState("cannot start an already running container") from None
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            deadline = time.monotonic() + 10
            data = b""
            while time.monotonic() < deadline:
                if poller.poll(50):
                    data = os.read(fd, 1)
                    if data:
                        break
                if _state.proc_start_time(st.pid) <= 0:
                    raise RuntimeFailure("container init exited before start")
            if not data:
                raise RuntimeFailure("container init did not answer on exec.fifo")
        finally:
            os.close(fd)
        os.unlink(fifo)
        if (st.config.get("hooks") or {}).get("poststart"):  # cheap check, no re-parse
            from berth.runtime import hooks as _hooks
            from berth.runtime import spec as _spec
            config = _spec.Spec.from_dict(st.config)
            st.status = "running"
            for h in config.hooks.poststart:
                try:
                    _hooks.run(h, st.hook_state())
                except RuntimeFailure:
                    pass  # poststart failures are logged by runc, not fatal

    # --- signals, pause ------------------------------------------------------------------
    def kill(self, cid: str, sig: int | str = _signal.SIGTERM, all: bool = False) -> None:
        st = self.state(cid)
        signum = parse_signal(sig)
        if all:
            for pid in self._cgroup(st).procs():
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            return
        if st.status == "stopped":
            raise InvalidState("container not running")
        try:
            os.kill(st.pid, signum)
        except ProcessLookupError:
            raise InvalidState("container not running") from None

    def pause(self, cid: str) -> None:
        st = self.state(cid)
        if st.status != "running":
            raise InvalidState(f"cannot pause a container that is {st.status}")
        self._cgroup(st).freeze()

    def resume(self, cid: str) -> None:
        st = self.state(cid)
        if st.status != "paused":
            raise InvalidState(f"cannot resume a container that is {st.status}")
        self._cgroup(st).thaw()

    def update(self, cid: str, resources: _spec.Resources) -> None:
        """Apply new cgroup limits to a created/running/paused container (`runc update`)."""
        from berth.runtime import spec as _spec
        st = self.state(cid)
        if st.status == "stopped":
            raise InvalidState(f"cannot update container {cid}: it is stopped")
        self._cgroup(st).apply(resources)
        config = _spec.Spec.from_dict(st.config)
        linux = config.linux or _spec.Linux()
        cur = linux.resources or _spec.Resources()
        for name in ("memory", "cpu", "pids"):
            new = getattr(resources, name)
            if new is None:
                continue
            old = getattr(cur, name)
            if old is None:
                setattr(cur, name, new)
                continue
            for key, value in vars(new).items():
                if value is not None:
                    setattr(old, key, value)
        linux.resources = cur
        config.linux = linux
        st.config = config.to_dict()
        _state.save(self._dir(cid), st)

    def ps(self, cid: str) -> list[int]:
        return self._cgroup(self._load(cid)).procs()

    def oom_killed(self, cid: str) -> bool:
        return self._cgroup(self._load(cid)).oom_killed()

    def stats(self, cid: str) -> dict[str, Any]:
        return self._cgroup(self._load(cid)).stats()

    # --- delete --------------------------------------------------------------------------
    def delete(self, cid: str, force: bool = False) -> None:
        d = self._dir(cid)
        st = self._load(cid)
        status = self._status(st)
        if status in ("running", "paused") and not force:
            raise InvalidState(f"cannot delete container {cid} that is {status}: stop it first or use force")
        cg = self._cgroup(st) if st.cgroup else None
        if cg is not None:
            if status == "paused":
                cg.thaw()
            for pid in cg.procs():
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while cg.procs() and time.monotonic() < deadline:
                time.sleep(0.002)
        elif status != "stopped":
            try:
                os.kill(st.pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if cg is not None:
            cg.destroy()
        _rmtree(d)
        if (st.config.get("hooks") or {}).get("poststop"):
            from berth.runtime import hooks as _hooks
            from berth.runtime import spec as _spec
            config = _spec.Spec.from_dict(st.config)
            st.status = "stopped"
            for h in config.hooks.poststop:
                try:
                    _hooks.run(h, st.hook_state())
                except RuntimeFailure:
                    pass

    # --- exec ----------------------------------------------------------------------------
    def exec(self, cid: str, process: _spec.Process, stdio: tuple[int, int, int] | None = (0, 1, 2),
             console_socket: str | None = None, detach: bool = True, pid_file: str | None = None,
             preserve_fds: int = 0) -> int:
        """Start `process` inside a running container; returns its host pid (the caller, a
        subreaper, reaps it; with `detach=False` the CLI waits for it)."""
        from berth.runtime import spec as _spec
        st = self.state(cid)
        if st.status not in ("running", "created"):
            raise InvalidState(f"cannot exec in a container that is {st.status}")
        config = _spec.Spec.from_dict(st.config)
        join = []
        from berth import kernel
        for kind in ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"):
            if kind in st.namespaces:
                name = kernel.NAMESPACE_PROC_NAMES[kind]
                join.append((kind, f"/proc/{st.pid}/ns/{name}"))
        cg = self._cgroup(st) if st.cgroup else None
        procs_files = []
        if cg is not None:
            paths = cg.paths.values() if hasattr(cg, "paths") else [cg.path]
            procs_files = [os.path.join(p, "cgroup.procs") for p in paths]
        if process.capabilities is None:
            process.capabilities = config.process.capabilities if config.process else None
        seccomp = self._seccomp(config.linux, process)
        console_fd = None
        if process.terminal:
            if not console_socket:
                raise RuntimeFailure("exec with a terminal needs a console socket")
            from berth.runtime import console
            console_fd = console.connect(console_socket)
        pipes = [*os.pipe(), *os.pipe()]
        from berth.runtime.init import InitConfig
        cfg = InitConfig(spec=config, rootfs="/", sync_r=pipes[0], sync_w=pipes[3], stdio=stdio,
                         console_fd=console_fd, cgroup_procs=procs_files, join=join, is_exec=True,
                         process=process, preserve_fds=preserve_fds, seccomp=seccomp)
        try:
            pid = self._spawn(cfg, pipes)
        finally:
            _close_all(pipes)
            if console_fd is not None:
                os.close(console_fd)
        if pid_file:
            _write_pid_file(pid_file, pid)
        return pid


def preload() -> None:
    """Import every module create/exec may need (for fork servers: the children then pay
    no import cost). The CLI does not call this; it imports lazily."""
    import importlib
    for mod in ("berth.kernel", "berth.runtime.init", "berth.runtime.cgroups", "berth.runtime.cgroups.v1",
                "berth.runtime.cgroups.v2", "berth.runtime.mounts", "berth.runtime.namespaces",
                "berth.runtime.devices", "berth.runtime.capabilities", "berth.runtime.process",
                "berth.runtime.rlimits", "berth.runtime.console", "berth.runtime.hooks",
                "berth.runtime.seccomp", "seccomp", "_socket"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


def load_bundle(bundle: str) -> _spec.Spec:
    """The bundle's spec; the parsed JSON is kept as `_source` so `create` can store it in
    the state without serialising the spec again (do not modify a spec you pass on)."""
    from berth.runtime import spec as _spec
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            raw = json.loads(f.read())
        config = _spec.Spec.from_dict(raw)
        config._source = raw  # type: ignore[attr-defined]
        return config
    except FileNotFoundError:
        raise RuntimeFailure(f"bundle {bundle} has no config.json") from None
    except (ValueError, TypeError) as exc:
        raise RuntimeFailure(f"bundle {bundle}: invalid config.json: {exc}") from None


def _make_cgroup(cg, resources) -> None:
    """Make the container's cgroups and apply its limits. Runs right after the fork, while
    the bridge unshares and forks the init: the runtime would otherwise sit idle until the
    init's pid comes, and the init waits for its cgroups only once they are joined."""
    cg.create()
    cg.apply(resources)


def _join_cgroup(cg, pid: int) -> None:
    """Move the init into its (ready) cgroups, while the init mounts its filesystems."""
    from berth.runtime import cgroups
    try:
        cg.add(pid)
    finally:
        cgroups.end_prime()


def _write_id_maps(pid: int, linux) -> None:
    """uid_map / gid_map of a process that has just unshared its user namespace."""
    for name, maps in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
        text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps or [])
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)


def _send_quiet(sync, **msg) -> None:
    try:
        sync.send(**msg)
    except BrokenPipeError:
        pass


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


def _write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def _kill_wait(pid: int) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        # not our child (re-parented to a subreaper elsewhere): wait for it to vanish
        for _ in range(500):
            if _state.proc_start_time(pid) <= 0:
                return
            time.sleep(0.002)


def _rmtree(d: str) -> None:
    try:
        for name in os.listdir(d):
            try:
                os.unlink(os.path.join(d, name))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        os.rmdir(d)
    except FileNotFoundError:
        pass
