"""The child side of `create` and `exec`: the ordered set-up between fork and execve.

Process model (as runc's): the runtime forks a *bridge* child which joins namespaces given
by path, unshares the new ones and forks again, so the grandchild is PID 1 of a new pid
namespace. The bridge reports the grandchild's pid and exits; the grandchild is
re-parented to the caller (a subreaper). The runtime moves the grandchild into the
container's cgroups (making their directories, applying the limits: v1 mkdirs cost ~0.5 ms
each) while the grandchild already sets up its mounts, then tells it {"type": "cgroup"};
the grandchild waits for that before it unshares its cgroup namespace (if asked), mounts
a cgroup filesystem, or else pivots its root. The grandchild (the container
init) sets up mounts, pivot_root, hostname, limits, user and capabilities, checks that
the executable exists, reports `ready` over the sync pipes, then blocks opening
`exec.fifo` until `start` opens the other end, and finally loads seccomp (the program
the runtime prepared, see `seccomp.program`) and execs.

Messages on the sync pipes are JSON lines: {"type": "pid"|"hooks"|"ready"|"error", ...};
the runtime answers "hooks" with {"type": "ok"} or {"type": "error"}.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
from dataclasses import dataclass, field

from berth import kernel
from berth.runtime import capabilities, mounts, namespaces, process
from berth.runtime.errors import ExecNotFound, ExecNotPermitted

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any


@dataclass
class InitConfig:
    """What the forked init needs: the spec, the rootfs, its sync pipes and the planned namespaces."""

    spec: Any                                  # spec.Spec
    rootfs: str
    sync_r: int                                # pipe from the runtime
    sync_w: int                                # pipe to the runtime
    stdio: tuple[int, int, int] | None = None
    fifo_path: str | None = None               # None for exec (no waiting for start)
    console_fd: int | None = None              # connected console socket
    cgroup: Any = None                         # the container's manager (create) or None
    cgroup_procs: list[str] = field(default_factory=list)  # exec: cgroup.procs files to join
    join: list[tuple[str, str]] = field(default_factory=list)
    unshare_flags: int = 0
    no_pivot: bool = False
    is_exec: bool = False
    process: Any = None                        # spec.Process for exec
    preserve_fds: int = 0
    has_hooks: bool = False
    new_keyring: bool = True
    seccomp: bytes | None = None               # the BPF program to load before exec
    container_id: str = ""
    bundle: str = ""


class Sync:
    """JSON lines over a pair of pipes (cheaper to set up than a socketpair)."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.buf = b""

    def send(self, **msg: Any) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data):]

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def recv(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = os.read(self.rfd, 4096)
            if not chunk:
                raise EOFError("sync socket closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, ExecNotFound):
        return "notfound"
    if isinstance(exc, ExecNotPermitted):
        return "notpermitted"
    return "failure"


def _setup_stdio(stdio: tuple[int, int, int] | None) -> None:
    if stdio is None:
        return
    # dup everything out of the way first so (1, 0, 2)-style permutations work
    tmp = [os.dup(fd) for fd in stdio]
    for n, fd in enumerate(tmp):
        os.dup2(fd, n)
        os.close(fd)


def _preload(cfg: InitConfig) -> None:
    """Import every module the init may need now: after pivot_root or setns(mnt) the
    Python installation is no longer visible."""
    spec = cfg.spec
    proc = cfg.process if cfg.is_exec else spec.process
    if proc.rlimits:
        from berth.runtime import rlimits  # noqa: F401
    if proc.terminal:
        from berth.runtime import console  # noqa: F401
    if not cfg.is_exec:
        from berth.runtime import devices  # noqa: F401


def bridge(cfg: InitConfig) -> None:
    """Runs in the first child; never returns."""
    sync = Sync(cfg.sync_r, cfg.sync_w)
    try:
        _preload(cfg)
        _setup_stdio(cfg.stdio)
        for procs in cfg.cgroup_procs:
            try:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass  # the container's cgroup in this hierarchy is gone; not fatal for exec
        fds = namespaces.open_paths(cfg.join)
        namespaces.join(fds)
        flags = cfg.unshare_flags
        if not cfg.is_exec:
            flags &= ~kernel.CLONE_NEWCGROUP  # the init unshares it once it is in its cgroup
        if flags & kernel.CLONE_NEWUSER:
            # the user namespace comes first so it owns the others; the runtime (outside)
            # writes its uid/gid maps, then we become its root
            try:
                kernel.unshare(kernel.CLONE_NEWUSER)
            except OSError as exc:
                raise OSError(exc.errno, f"unshare user namespace: {exc.strerror}") from None
            sync.send(type="userns")
            reply = sync.recv()
            if reply.get("type") != "userns-ok":
                raise OSError(reply.get("message") or "the runtime could not map the user namespace")
            try:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            except OSError as exc:
                raise OSError(exc.errno, "container root (uid/gid 0) is not mapped in the user namespace") from None
            flags &= ~kernel.CLONE_NEWUSER
        if flags:
            try:
                kernel.unshare(flags)
            except OSError as exc:
                raise OSError(exc.errno, f"unshare namespaces: {exc.strerror}") from None
        pid = os.fork()
        if pid == 0:
            if cfg.is_exec:
                _exec_init(cfg, sync)
            else:
                _container_init(cfg, sync)
            os._exit(1)  # not reached
        sync.send(type="pid", pid=pid)
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the runtime
        try:
            sync.send(type="error", kind=_error_kind(exc), message=_message(exc))
        finally:
            os._exit(1)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _container_init(cfg: InitConfig, sync: Sync) -> None:
    try:
        _container_setup(cfg, sync)
    except BaseException as exc:  # noqa: BLE001
        try:
            sync.send(type="error", kind=_error_kind(exc), message=_message(exc))
        except OSError:
            # after `ready` nobody reads the sync pipe: the container's stderr is all we have
            try:
                os.write(2, f"berth-runtime: container init: {_message(exc)}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(1)


def _container_setup(cfg: InitConfig, sync: Sync) -> None:
    spec = cfg.spec
    proc = spec.process
    linux = spec.linux
    os.setsid()
    flags = cfg.unshare_flags
    joined = {kind for kind, _ in cfg.join}
    if flags & kernel.CLONE_NEWNET:
        namespaces.loopback_up()
    has_netns = bool(flags & kernel.CLONE_NEWNET) or "network" in joined
    rootfs = cfg.rootfs
    if not flags & kernel.CLONE_NEWNS and "mount" not in joined:
        raise OSError("the spec has no mount namespace; berth-runtime needs one")
    fifo_fd = os.open(cfg.fifo_path, os.O_PATH | os.O_CLOEXEC) if cfg.fifo_path else None
    in_cgroup = False
    if flags & kernel.CLONE_NEWCGROUP:
        _wait_cgroup(sync)
        in_cgroup = True
        kernel.unshare(kernel.CLONE_NEWCGROUP)

    if cfg.new_keyring:
        try:  # a session keyring of its own, so keys never leak between containers (as runc)
            kernel.join_session_keyring(f"_ses.{cfg.container_id}"[:64])
        except OSError as exc:
            if exc.errno not in (38, 13, 1):  # ENOSYS, EACCES, EPERM: no keyrings here
                raise

    # --- filesystem ----------------------------------------------------------------------
    mounts.prepare_root(rootfs, linux.rootfs_propagation if linux else None)
    cg_paths = cfg.cgroup.paths if cfg.cgroup is not None and hasattr(cfg.cgroup, "paths") else {}
    if cfg.cgroup is not None and not cg_paths and hasattr(cfg.cgroup, "path"):
        cg_paths = {"unified": cfg.cgroup.path}
    bind_dev = False
    for m in spec.mounts or []:
        if m.destination.rstrip("/") == "/dev" and (m.type == "bind" or "bind" in (m.options or [])
                                                    or "rbind" in (m.options or [])):
            bind_dev = True
        if not in_cgroup and mounts.is_cgroup(m):
            _wait_cgroup(sync)  # the runtime makes the cgroup directories while we mount
            in_cgroup = True
        mounts.mount_one(rootfs, m, has_netns, cg_paths, bool(flags & kernel.CLONE_NEWCGROUP))
    from berth.runtime import devices
    devices.setup_dev(rootfs, linux.devices if linux else None, bind_dev)
    cwd = proc.cwd or "/"
    cwd_host = mounts.secure_join(rootfs, cwd)
    if not os.path.exists(cwd_host):
        os.makedirs(cwd_host, mode=0o755)
    if not in_cgroup:
        _wait_cgroup(sync)
    if cfg.has_hooks:
        sync.send(type="hooks")
        reply = sync.recv()
        if reply.get("type") != "ok":
            raise OSError(reply.get("message", "hook failed"))
    if cfg.no_pivot:
        mounts.move_root(rootfs)
    else:
        mounts.pivot(rootfs)

    master_fd = None
    if proc.terminal:
        from berth.runtime import console
        if cfg.console_fd is None:
            raise OSError("terminal is true in the spec but no console socket was given")
        ptmx = "/dev/pts/ptmx" if os.path.exists("/dev/pts/ptmx") else "/dev/ptmx"
        master_fd, slave = console.open_pty(ptmx)
        devices.bind_console("/", slave)
        if proc.console_size:
            console.set_winsize(master_fd, proc.console_size.height, proc.console_size.width)

    if linux is not None:
        for key, value in (linux.sysctl or {}).items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(str(value))
        for path in linux.readonly_paths or []:
            mounts.readonly_path(path)
        for path in linux.masked_paths or []:
            mounts.mask_path(path)
    if spec.root and spec.root.readonly:
        mounts.readonly_root()

    if flags & kernel.CLONE_NEWUTS:
        if spec.hostname:
            kernel.sethostname(spec.hostname)
        if spec.domainname:
            kernel.setdomainname(spec.domainname)

    if master_fd is not None:
        from berth.runtime import console
        slave_fd = os.open(slave, os.O_RDWR | os.O_CLOEXEC)
        console.send_fd(cfg.console_fd, master_fd, slave)
        os.close(master_fd)
        console.make_controlling(slave_fd)
        os.close(slave_fd)
    if cfg.console_fd is not None:
        os.close(cfg.console_fd)

    seccomp_left = _finish_process(proc, cfg.seccomp, cwd)
    sync.send(type="ready")
    sync.close()
    if fifo_fd is not None:
        # blocks until `start` opens the fifo for reading
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        os.close(fifo_fd)
    if spec.hooks is not None and spec.hooks.start_container:
        _start_container_hooks(spec, cfg)
    _exec(proc, seccomp_left, cfg.preserve_fds)


def _start_container_hooks(spec, cfg: InitConfig) -> None:
    """startContainer hooks run in the container, after start, before the user process."""
    state = json.dumps({"ociVersion": spec.oci_version, "id": cfg.container_id, "status": "running",
                        "pid": os.getpid(), "bundle": cfg.bundle}).encode()
    for h in spec.hooks.start_container:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.dup2(r, 0)
            try:
                env = {k: v for k, _, v in (e.partition("=") for e in h.env or [])}
                os.execve(h.path, h.args or [h.path], env)
            finally:
                os._exit(127)
        os.close(r)
        try:
            os.write(w, state)
        except OSError:
            pass
        os.close(w)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.stderr.write(f"berth-runtime: startContainer hook {h.path} failed\n")
            os._exit(1)


def _wait_cgroup(sync: Sync) -> None:
    msg = sync.recv()
    if msg.get("type") != "cgroup":
        raise OSError(msg.get("message") or f"unexpected message from the runtime: {msg}")


def _finish_process(proc, seccomp: bytes | None, cwd: str) -> bytes | None:
    """Everything after the filesystem: limits, user, capabilities, executable check.
    Returns the seccomp program still to load just before exec."""
    if proc.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(proc.oom_score_adj))
    if proc.rlimits:
        from berth.runtime import rlimits
        rlimits.apply(proc.rlimits)
    if seccomp is not None and not proc.no_new_privileges:
        # without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it now, before
        # capabilities are dropped (the rest of the set-up only uses allowed calls)
        kernel.seccomp_set_mode_filter(seccomp)
        seccomp = None
    caps = proc.capabilities
    user = proc.user
    if caps is not None:
        capabilities.drop_bounding(capabilities.mask(caps.bounding))
    process.set_user(user.uid, user.gid, user.additional_gids, keep_caps=caps is not None and user.uid != 0)
    if caps is not None:
        capabilities.apply(capabilities.mask(caps.effective), capabilities.mask(caps.permitted),
                           capabilities.mask(caps.inheritable), capabilities.mask(caps.ambient))
    if user.umask is not None:
        os.umask(user.umask)
    else:
        os.umask(0o022)
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise OSError(f"cannot chdir to {cwd}: {exc.strerror}") from None
    env = process.final_env(proc.env, user.uid, bool(proc.terminal))
    args = proc.args or []
    if not args:
        raise OSError("process.args is empty")
    path = process.lookup(args[0], process.env_dict(env))
    proc._resolved = (path, env)  # type: ignore[attr-defined]
    return seccomp


def _default_signals() -> None:
    """The container's process starts with every signal at its default action and none
    blocked, as runc gives it: Python ignores SIGPIPE and the shim ignores SIGINT/SIGHUP,
    and an ignored disposition would otherwise survive execve."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # signals the C library reserves for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exec(proc, seccomp: bytes | None, preserve_fds: int) -> None:
    path, env = proc._resolved
    _cloexec_from(3 + preserve_fds)
    _default_signals()
    if proc.no_new_privileges:
        kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None:
        kernel.seccomp_set_mode_filter(seccomp)
    try:
        os.execve(path, proc.args, {k: v for k, _, v in (e.partition("=") for e in env)})
    except OSError as exc:
        sys.stderr.write(f"berth-runtime: exec {path}: {exc.strerror}\n")
        os._exit(127 if exc.errno == 2 else 126)


def _cloexec_from(low: int) -> None:
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd >= low:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            except OSError:
                pass


def _exec_init(cfg: InitConfig, sync: Sync) -> None:
    """A process joining a running container (`exec`)."""
    try:
        os.setsid()
        proc = cfg.process
        if cfg.console_fd is not None and proc.terminal:
            from berth.runtime import console
            ptmx = "/dev/pts/ptmx" if os.path.exists("/dev/pts/ptmx") else "/dev/ptmx"
            master_fd, slave = console.open_pty(ptmx)
            if proc.console_size:
                console.set_winsize(master_fd, proc.console_size.height, proc.console_size.width)
            slave_fd = os.open(slave, os.O_RDWR | os.O_CLOEXEC)
            console.send_fd(cfg.console_fd, master_fd, slave)
            os.close(master_fd)
            console.make_controlling(slave_fd)
            os.close(slave_fd)
            os.close(cfg.console_fd)
        elif proc.terminal:
            raise OSError("terminal is true but no console socket was given")
        seccomp_left = _finish_process(proc, cfg.seccomp, proc.cwd or "/")
        sync.send(type="ready")
        sync.close()
        _exec(proc, seccomp_left, cfg.preserve_fds)
    except BaseException as exc:  # noqa: BLE001
        try:
            sync.send(type="error", kind=_error_kind(exc), message=_message(exc))
        finally:
            os._exit(1)
