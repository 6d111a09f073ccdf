"""`berth-runtime`: runc's command line over `berth.runtime.runtime.Runtime`.

Global options come before the command (`--root --log --log-format --debug
--systemd-cgroup`), as containerd passes them. Errors go to stderr and, with `--log`, to the
log file (JSON lines `{"level","msg","time"}` with `--log-format json`), exit status 1.

The program runs once per container operation, so its start-up is on every container's
critical path: the parser is a small table (`_GLOBAL`, `_COMMANDS`) instead of argparse (whose
import, with re, gettext, locale and shutil, cost more than the rest of `run`), and modules are
imported only by the commands that need them. `create`/`run` start the kernel's cgroup-attach
wait (`cgroups.prime_attach`) before importing anything heavy, so the wait overlaps the imports.
"""

from __future__ import annotations

import os
import sys

DEFAULT_ROOT = "/run/berth-runtime"
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class _Log:
    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def write(self, level: str, msg: str) -> None:
        if not self.path:
            return
        import json
        import time
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


# --- the command line -------------------------------------------------------------------
FLAG, VALUE, INT, APPEND, REST = "flag", "value", "int", "append", "rest"


class Opt:
    """One option: its spellings (`-b`, `--bundle`), kind (FLAG, VALUE, INT, APPEND) and default."""

    def __init__(self, *names: str, kind: str = VALUE, default: object = None, help: str = "",
                 choices: tuple[str, ...] = ()) -> None:
        self.names, self.kind, self.help, self.choices = names, kind, help, choices
        self.dest = names[-1].lstrip("-").replace("-", "_")
        self.default = ([] if kind == APPEND else False if kind == FLAG else None) if default is None else default


class Command:
    """A command's options and positionals; a positional of kind REST takes every later word."""

    def __init__(self, help: str, opts: Iterable[Opt] = (), args: Iterable[tuple[str, str, object]] = ()) -> None:
        self.help, self.opts = help, list(opts)
        self.args = list(args)  # (dest, "one" | "optional" | REST, default)


class Args:
    """The parsed command line: one attribute per option and positional, plus `command`."""

    command: str | None = None


class UsageError(ValueError):
    pass


_ID = ("id", "one", None)
_CREATE_OPTS = (Opt("-b", "--bundle", default=".", help="path to the bundle"),
                Opt("--pid-file", help="write the init's pid here"),
                Opt("--console-socket", help="unix socket that receives the pty master"),
                Opt("--no-pivot", kind=FLAG, help="move the root instead of pivot_root"),
                Opt("--no-new-keyring", kind=FLAG, help="keep the caller's session keyring"),
                Opt("--preserve-fds", kind=INT, default=0, help="pass N more fds (from 3)"))
_FORMAT = Opt("-f", "--format", default="table", choices=("table", "json"), help="output format")
_GLOBAL = [Opt("--root", default=DEFAULT_ROOT, help="state directory"),
           Opt("--log", help="log file (errors, and debug lines with --debug)"),
           Opt("--log-format", default="text", choices=("text", "json"), help="log line format"),
           Opt("--debug", kind=FLAG, help="log debug lines"),
           Opt("--systemd-cgroup", kind=FLAG, help="cgroupsPath is systemd's slice:prefix:name"),
           Opt("--criu"), Opt("--rootless"),  # accepted as containerd may pass them, unused
           Opt("-v", "--version", kind=FLAG, help="print the version")]
_COMMANDS = {
    "create": Command("create a container", _CREATE_OPTS, [_ID]),
    "run": Command("create, start and wait", [*_CREATE_OPTS, Opt("-d", "--detach", kind=FLAG),
                                              Opt("--keep", kind=FLAG, help="do not delete at exit")], [_ID]),
    "start": Command("start a created container", args=[_ID]),
    "state": Command("print a container's state", args=[_ID]),
    "pause": Command("pause a container", args=[_ID]),
    "resume": Command("resume a paused container", args=[_ID]),
    "kill": Command("send a signal to the container's init (or all its processes)",
                    [Opt("-a", "--all", kind=FLAG)], [_ID, ("signal", "optional", "SIGTERM")]),
    "delete": Command("delete a container", [Opt("-f", "--force", kind=FLAG)], [_ID]),
    "exec": Command("run a process in a running container",
                    [Opt("-p", "--process", help="process.json"), Opt("-d", "--detach", kind=FLAG),
                     Opt("--pid-file"), Opt("--console-socket"), Opt("-t", "--tty", kind=FLAG), Opt("--cwd"),
                     Opt("-e", "--env", kind=APPEND), Opt("-u", "--user", help="UID[:GID]"),
                     Opt("-g", "--additional-gids", kind=APPEND), Opt("-c", "--cap", kind=APPEND),
                     Opt("--no-new-privs", kind=FLAG), Opt("--preserve-fds", kind=INT, default=0)],
                    [_ID, ("args", REST, None)]),
    "ps": Command("list the container's processes", [_FORMAT], [_ID, ("ps_args", REST, None)]),
    "list": Command("list containers", [_FORMAT, Opt("-q", "--quiet", kind=FLAG)]),
    "spec": Command("write a default config.json", [Opt("-b", "--bundle", default="."),
                                                    Opt("--rootless", kind=FLAG)]),
    "features": Command("print the runtime's features as JSON"),
    "update": Command("update a container's cgroup limits",
                      [Opt("-r", "--resources", help="LinuxResources JSON file, '-' for stdin"),
                       Opt("-m", "--memory"), Opt("--memory-swap"), Opt("--memory-reservation"),
                       Opt("--cpu-shares", kind=INT), Opt("--cpu-quota", kind=INT), Opt("--cpu-period", kind=INT),
                       Opt("--cpuset-cpus"), Opt("--cpuset-mems"), Opt("--pids-limit", kind=INT)], [_ID]),
}


def _find(opts: list[Opt], word: str) -> Opt | None:
    for opt in opts:
        if word in opt.names:
            return opt
    return None


def _take_option(opts: list[Opt], argv: list[str], i: int, args: Args) -> int:
    """Parse the option at argv[i] into `args`; returns the index after it. Spellings as runc
    (Go's flag package) accepts them: `-b X`, `-bX`, `--bundle X`, `--bundle=X`, `-bundle X`."""
    word, _, attached = argv[i].partition("=")
    value = attached if word != argv[i] else None
    opt = _find(opts, word) or (_find(opts, "-" + word) if not word.startswith("--") else None)
    if opt is None and not word.startswith("--") and len(argv[i]) > 2:
        word, value = argv[i][:2], argv[i][2:]  # -bVALUE
        opt = _find(opts, word)
    if opt is None:
        raise UsageError(f"unrecognized argument: {argv[i]}")
    if opt.kind == FLAG:
        if value is not None:
            raise UsageError(f"argument {opt.names[-1]}: takes no value")
        setattr(args, opt.dest, True)
        return i + 1
    if value is None:
        if i + 1 >= len(argv):
            raise UsageError(f"argument {opt.names[-1]}: expected a value")
        i, value = i + 1, argv[i + 1]
    if opt.choices and value not in opt.choices:
        raise UsageError(f"argument {opt.names[-1]}: invalid choice {value!r} (choose from {', '.join(opt.choices)})")
    if opt.kind == INT:
        try:
            value = int(value)
        except ValueError:
            raise UsageError(f"argument {opt.names[-1]}: invalid int value: {value!r}") from None
    if opt.kind == APPEND:
        getattr(args, opt.dest).append(value)
    else:
        setattr(args, opt.dest, value)
    return i + 1


def _defaults(args: Args, opts: list[Opt]) -> None:
    for opt in opts:
        setattr(args, opt.dest, list(opt.default) if opt.kind == APPEND else opt.default)


def parse_args(argv: list[str]) -> Args:
    """`[global options] COMMAND [options] ARGS`; `args.command` is None without a command
    (and "help" for -h/--help, with `args.help_for` the command or None)."""
    args = Args()
    _defaults(args, _GLOBAL)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        if argv[i] in ("-h", "--help"):
            args.command, args.help_for = "help", None
            return args
        i = _take_option(_GLOBAL, argv, i, args)
    if i == len(argv):
        return args
    name = argv[i]
    cmd = _COMMANDS.get(name)
    if cmd is None:
        raise UsageError(f"unknown command {name!r} (choose from {', '.join(_COMMANDS)})")
    args.command = name
    _defaults(args, cmd.opts)
    words: list[str] = []
    fixed = sum(1 for _, kind, _ in cmd.args if kind != REST)
    has_rest = any(kind == REST for _, kind, _ in cmd.args)
    i += 1
    while i < len(argv):
        word = argv[i]
        if has_rest and len(words) >= fixed:
            words.extend(argv[i:])  # the rest (a command line of its own) is kept verbatim
            break
        if word == "--":
            words.extend(argv[i + 1:])
            break
        if word in ("-h", "--help"):
            args.command, args.help_for = "help", name
            return args
        if word.startswith("-") and word != "-":
            i = _take_option(cmd.opts, argv, i, args)
            continue
        words.append(word)
        i += 1
    for dest, kind, default in cmd.args:
        if kind == REST:
            setattr(args, dest, words)
            words = []
        elif words:
            setattr(args, dest, words.pop(0))
        elif kind == "optional":
            setattr(args, dest, default)
        else:
            raise UsageError(f"{name}: the following arguments are required: {dest}")
    if words:
        raise UsageError(f"{name}: unrecognized arguments: {' '.join(words)}")
    return args


def _usage(command: str | None) -> str:
    def opt_lines(opts: list[Opt]) -> list[str]:
        out = []
        for opt in opts:
            spell = ", ".join(opt.names) + ("" if opt.kind == FLAG else " " + opt.dest.upper())
            extra = f" ({'|'.join(opt.choices)})" if opt.choices else ""
            out.append(f"  {spell:<30} {opt.help}{extra}".rstrip())
        return out

    if command is None:
        lines = ["usage: berth-runtime [global options] COMMAND [options] ARGS",
                 "OCI runtime (runc-compatible)", "", "global options:", *opt_lines(_GLOBAL), "", "commands:"]
        lines += [f"  {name:<10} {cmd.help}" for name, cmd in _COMMANDS.items()]
        return "\n".join(lines) + "\n"
    cmd = _COMMANDS[command]
    words = " ".join(dest.upper() + ("..." if kind == REST else "") if kind == "one" or kind == REST
                     else f"[{dest.upper()}]" for dest, kind, _ in cmd.args)
    lines = [f"usage: berth-runtime {command} [options] {words}".rstrip(), cmd.help]
    if cmd.opts:
        lines += ["", "options:", *opt_lines(cmd.opts)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # as a program: the runtime's dataclasses never need `inspect`
        from berth.deferred import defer
        defer("inspect")
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        # as a program: skip the interpreter's tear-down (it is most of a short run's exit)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"{_usage(None).splitlines()[0]}\nberth-runtime: error: {exc}\n")
        return 2
    if args.command in ("create", "run"):
        # first: the kernel's cgroup-attach wait then runs while the modules below load
        from berth.runtime.cgroups import prime_attach
        prime_attach(hold=5.0)  # ended by Runtime.create once the init is in its cgroups
    if args.command == "help":
        sys.stdout.write(_usage(args.help_for))
        return 0
    if args.version:
        from berth.runtime.version import OCI_VERSION, VERSION
        print(f"berth-runtime version {VERSION}\nspec: {OCI_VERSION}")
        return 0
    if not args.command:
        sys.stderr.write(_usage(None))
        return 1
    log = _Log(args.log, args.log_format, args.debug)
    from berth.errors import BerthError
    try:
        return _HANDLERS[args.command](args, log) or 0
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
    import json
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
        import json
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
    import json
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
    import json

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
    import signal

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
    import json

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
    import json

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


_HANDLERS = {"update": _update, "create": _create, "start": _start, "state": _state, "kill": _kill, "delete": _delete,
             "pause": _pause, "resume": _resume, "ps": _ps, "list": _list, "spec": _spec_cmd,
             "features": _features, "run": _run, "exec": _exec}

if __name__ == "__main__":
    sys.exit(main())
