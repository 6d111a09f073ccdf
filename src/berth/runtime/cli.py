"""`berth-runtime`: runc's command line over `berth.runtime.runtime.Runtime`.

Global options come before the command (`--root --log --log-format --debug
--systemd-cgroup`), as containerd passes them. Errors go to stderr and, with `--log`, to the
log file (JSON lines `{"level","msg","time"}` with `--log-format json`), exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

DEFAULT_ROOT = "/run/berth-runtime"


class _Log:
    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def write(self, level: str, msg: str) -> None:
        if not self.path:
            return
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps({"level": level, "msg": msg, "time": t}) if self.fmt == "json" \
            else f'time="{t}" level={level} msg="{msg}"'
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self.write("debug", msg)


_GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}
_NAMES = ("create", "run", "start", "state", "pause", "resume", "kill", "delete", "exec", "ps", "list", "spec",
          "features", "update")


def _command_of(argv: list[str]) -> str | None:
    """The command word in argv (after the global options), without parsing everything."""
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok in _GLOBAL_WITH_VALUE:
            skip = True
            continue
        if tok.startswith("-"):
            continue
        return tok if tok in _NAMES else None
    return None


def _add_command(sub, name: str) -> None:
    if name in ("create", "run"):
        c = sub.add_parser(name, help="create a container" if name == "create" else "create, start and wait")
        c.add_argument("-b", "--bundle", default=".")
        c.add_argument("--pid-file")
        c.add_argument("--console-socket")
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true")
        c.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            c.add_argument("-d", "--detach", action="store_true")
            c.add_argument("--keep", action="store_true")
        c.add_argument("id")
    elif name in ("start", "state", "pause", "resume"):
        sub.add_parser(name, help=f"{name} a container").add_argument("id")
    elif name == "kill":
        c = sub.add_parser(name, help="send a signal to the container's init (or all its processes)")
        c.add_argument("-a", "--all", action="store_true")
        c.add_argument("id")
        c.add_argument("signal", nargs="?", default="SIGTERM")
    elif name == "delete":
        c = sub.add_parser(name, help="delete a container")
        c.add_argument("-f", "--force", action="store_true")
        c.add_argument("id")
    elif name == "exec":
        c = sub.add_parser(name, help="run a process in a running container")
        c.add_argument("-p", "--process")
        c.add_argument("-d", "--detach", action="store_true")
        c.add_argument("--pid-file")
        c.add_argument("--console-socket")
        c.add_argument("-t", "--tty", action="store_true")
        c.add_argument("--cwd")
        c.add_argument("-e", "--env", action="append", default=[])
        c.add_argument("-u", "--user")
        c.add_argument("-g", "--additional-gids", action="append", default=[])
        c.add_argument("-c", "--cap", action="append", default=[])
        c.add_argument("--no-new-privs", action="store_true")
        c.add_argument("--preserve-fds", type=int, default=0)
        c.add_argument("id")
        c.add_argument("args", nargs=argparse.REMAINDER)
    elif name == "ps":
        c = sub.add_parser(name, help="list the container's processes")
        c.add_argument("-f", "--format", default="table", choices=["table", "json"])
        c.add_argument("id")
        c.add_argument("ps_args", nargs=argparse.REMAINDER)
    elif name == "list":
        c = sub.add_parser(name, help="list containers")
        c.add_argument("-f", "--format", default="table", choices=["table", "json"])
        c.add_argument("-q", "--quiet", action="store_true")
    elif name == "spec":
        c = sub.add_parser(name, help="write a default config.json")
        c.add_argument("-b", "--bundle", default=".")
        c.add_argument("--rootless", action="store_true")
    elif name == "features":
        sub.add_parser(name, help="print the runtime's features as JSON")
    elif name == "update":
        c = sub.add_parser(name, help="update a container's cgroup limits")
        c.add_argument("-r", "--resources", help="LinuxResources JSON file, '-' for stdin")
        c.add_argument("-m", "--memory")
        c.add_argument("--memory-swap")
        c.add_argument("--memory-reservation")
        c.add_argument("--cpu-shares", type=int)
        c.add_argument("--cpu-quota", type=int)
        c.add_argument("--cpu-period", type=int)
        c.add_argument("--cpuset-cpus")
        c.add_argument("--cpuset-mems")
        c.add_argument("--pids-limit", type=int)
        c.add_argument("id")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (for speed on the create/start path) one with only `only`."""
    p = argparse.ArgumentParser(prog="berth-runtime", description="OCI runtime (runc-compatible)")
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory")
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rootless", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="command")
    for name in ([only] if only else _NAMES):
        _add_command(sub, name)
    return p


def main(argv: list[str] | None = None) -> int:
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        # as a program: skip the interpreter's tear-down (it is most of a short run's exit)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str]) -> int:
    args = build_parser(_command_of(argv)).parse_args(argv)
    if args.version:
        from berth.runtime.version import OCI_VERSION, VERSION
        print(f"berth-runtime version {VERSION}\nspec: {OCI_VERSION}")
        return 0
    if not args.command:
        build_parser().print_help(sys.stderr)
        return 1
    log = _Log(args.log, args.log_format, args.debug)
    from berth.errors import BerthError
    try:
        return _COMMANDS[args.command](args, log) or 0
    except (BerthError, OSError, ValueError) as exc:
        msg = str(exc) or type(exc).__name__
        log.write("error", msg)
        sys.stderr.write(f"berth-runtime: {msg}\n")
        return 1


def _rt(args):
    from berth.runtime.runtime import Runtime
    return Runtime(args.root)


def _create(args, log: _Log) -> int:
    _rt(args).create(args.id, args.bundle, stdio=None, console_socket=args.console_socket,
                     pid_file=args.pid_file, no_pivot=args.no_pivot, preserve_fds=args.preserve_fds,
                     new_keyring=not args.no_new_keyring)
    return 0


def _start(args, log: _Log) -> int:
    _rt(args).start(args.id)
    return 0


def _state(args, log: _Log) -> int:
    print(json.dumps(_rt(args).state(args.id).public(), indent=2))
    return 0


def _kill(args, log: _Log) -> int:
    _rt(args).kill(args.id, args.signal, all=args.all)
    return 0


def _delete(args, log: _Log) -> int:
    from berth.runtime.errors import ContainerNotFound
    try:
        _rt(args).delete(args.id, force=args.force)
    except ContainerNotFound:
        if not args.force:
            raise
    return 0


def _pause(args, log: _Log) -> int:
    _rt(args).pause(args.id)
    return 0


def _resume(args, log: _Log) -> int:
    _rt(args).resume(args.id)
    return 0


def _ps(args, log: _Log) -> int:
    pids = _rt(args).ps(args.id)
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess
    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    col = header.index("PID") if "PID" in header else 1
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            print(line)
    return 0


def _list(args, log: _Log) -> int:
    states = _rt(args).list()
    if args.quiet:
        for st in states:
            print(st.id)
    elif args.format == "json":
        print(json.dumps([st.public() for st in states]))
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for st in states:
            print(f"{st.id:<20}{st.pid:<10}{st.status:<10}{st.bundle:<40}{st.created:<32}root")
    return 0


def _spec_cmd(args, log: _Log) -> int:
    from berth.runtime import spec
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise ValueError("File config.json exists. Remove it first")
    spec.dump(spec.default_spec(), args.bundle)
    return 0


def _features(args, log: _Log) -> int:
    from berth.runtime import capabilities, mounts
    from berth.runtime.version import OCI_VERSION
    feats = {
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(list(mounts._FLAGS) + list(mounts.PROPAGATION)),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities.CAPS,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True,
                        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                                      "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                        "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime-spec.version": OCI_VERSION},
    }
    print(json.dumps(feats, indent=4))
    return 0


def _forward_signals(pid: int) -> None:
    def handler(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, handler)


def _wait_for(pid: int, relay_fd: int | None = None) -> int:
    """Reap children (we are a subreaper) until `pid` exits; return its shell-style status."""
    if relay_fd is not None:
        from berth.runtime.relay import relay
        return relay(relay_fd, pid)
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if got == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _tty_console(args_socket: str | None, terminal: bool):
    """For run/exec with a terminal and no --console-socket: listen on a private socket."""
    if args_socket or not terminal:
        return None, args_socket
    import socket
    import tempfile
    d = tempfile.mkdtemp(prefix="berth-console-")
    path = os.path.join(d, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    return (srv, d), path


def _take_master(listener) -> int:
    srv, d = listener
    from berth.runtime import console
    conn, _ = srv.accept()
    try:
        fd, _name = console.recv_fd(conn)
    finally:
        conn.close()
        _close_listener(listener)
    return fd


def _close_listener(listener) -> None:
    import shutil
    srv, d = listener
    srv.close()
    shutil.rmtree(d, ignore_errors=True)


def _run(args, log: _Log) -> int:
    from berth import kernel
    from berth.runtime.runtime import Runtime, load_bundle
    rt = Runtime(args.root)
    config = load_bundle(os.path.abspath(args.bundle))
    terminal = bool(config.process and config.process.terminal)
    if not args.detach:
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    listener, sock_path = _tty_console(args.console_socket, terminal and not args.detach)
    try:
        pid = rt.create(args.id, args.bundle, stdio=None, console_socket=sock_path, pid_file=args.pid_file,
                        no_pivot=args.no_pivot, preserve_fds=args.preserve_fds, config=config,
                        new_keyring=not args.no_new_keyring)
        master = _take_master(listener) if listener else None
        listener = None
    finally:
        if listener:
            _close_listener(listener)
    try:
        rt.start(args.id)
    except BaseException:
        rt.delete(args.id, force=True)
        raise
    if args.detach:
        return 0
    _forward_signals(pid)
    try:
        code = _wait_for(pid, master)
    finally:
        if not args.keep:
            rt.delete(args.id, force=True)
    return code


def _exec(args, log: _Log) -> int:
    from berth import kernel
    from berth.runtime import spec
    from berth.runtime.runtime import Runtime
    rt = Runtime(args.root)
    if args.process:
        with open(args.process) as f:
            proc = spec.Process.from_dict(json.load(f))
    else:
        cmdline = [a for a in args.args if a != "--"] if args.args[:1] == ["--"] else args.args
        if not cmdline:
            raise ValueError("exec: give a command or --process")
        st = rt.state(args.id)
        base = spec.Spec.from_dict(st.config).process or spec.Process()
        proc = spec.Process(args=cmdline, env=list(base.env or []) + args.env, cwd=args.cwd or base.cwd,
                            terminal=args.tty, capabilities=base.capabilities,
                            no_new_privileges=args.no_new_privs or base.no_new_privileges,
                            user=spec.User(uid=base.user.uid, gid=base.user.gid,
                                           additional_gids=base.user.additional_gids))
        if args.user:
            uid, _, gid = args.user.partition(":")
            proc.user = spec.User(uid=int(uid), gid=int(gid or 0))
        if args.additional_gids:
            proc.user.additional_gids = [int(g) for g in args.additional_gids]
        if args.cap and proc.capabilities is not None:
            from berth.runtime import capabilities
            for cap in (capabilities.normalize(c) for c in args.cap):
                for lst in ("bounding", "effective", "permitted"):
                    cur = getattr(proc.capabilities, lst) or []
                    if cap not in cur:
                        setattr(proc.capabilities, lst, cur + [cap])
    if not args.detach:
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    listener, sock_path = _tty_console(args.console_socket, bool(proc.terminal) and not args.detach)
    try:
        pid = rt.exec(args.id, proc, stdio=None, console_socket=sock_path, detach=args.detach,
                      pid_file=args.pid_file, preserve_fds=args.preserve_fds)
        master = _take_master(listener) if listener else None
        listener = None
    except BaseException as exc:
        from berth.runtime.errors import ExecNotFound, ExecNotPermitted
        if isinstance(exc, (ExecNotFound, ExecNotPermitted)) and not args.detach:
            sys.stderr.write(f"berth-runtime: {exc}\n")
            log.write("error", str(exc))
            return 127 if isinstance(exc, ExecNotFound) else 126
        raise
    finally:
        if listener:
            _close_listener(listener)
    if args.detach:
        return 0
    _forward_signals(pid)
    return _wait_for(pid, master)


def _bytes(v: str | None) -> int | None:
    if v is None:
        return None
    if v == "-1":
        return -1
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    s = v.strip().lower().rstrip("b")
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s)


def _update(args, log: _Log) -> int:
    from berth.runtime import spec
    if args.resources:
        raw = sys.stdin.read() if args.resources == "-" else open(args.resources).read()
        res = spec.Resources.from_dict(json.loads(raw))
    else:
        res = spec.Resources()
    mem = {k: v for k, v in (("limit", _bytes(args.memory)), ("swap", _bytes(args.memory_swap)),
                             ("reservation", _bytes(args.memory_reservation))) if v is not None}
    if mem:
        res.memory = spec.Memory(**mem)
    cpu = {k: v for k, v in (("shares", args.cpu_shares), ("quota", args.cpu_quota), ("period", args.cpu_period),
                             ("cpus", args.cpuset_cpus), ("mems", args.cpuset_mems)) if v is not None}
    if cpu:
        res.cpu = spec.CPU(**cpu)
    if args.pids_limit is not None:
        res.pids = spec.Pids(limit=args.pids_limit)
    _rt(args).update(args.id, res)
    return 0


_COMMANDS = {"update": _update, "create": _create, "start": _start, "state": _state, "kill": _kill, "delete": _delete,
             "pause": _pause, "resume": _resume, "ps": _ps, "list": _list, "spec": _spec_cmd,
             "features": _features, "run": _run, "exec": _exec}

if __name__ == "__main__":
    sys.exit(main())
