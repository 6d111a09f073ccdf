"""Typed Dockerfile instructions and their validation (pure).

`parse_stages(dockerfile)` turns parser nodes into the global ARGs before the first FROM
and a list of `Stage`s, each with typed instructions. Values stay unexpanded here; the
builder expands them with the stage's environment at dispatch time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from berth.build.parser import Dockerfile, DockerfileSyntaxError, Heredoc, Node
from berth.build.runmount import parse_mount
from berth.errors import InvalidParameter

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                        "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})

_ALLOWED_FLAGS: dict[str, set[str]] = {
    "from": {"platform"},
    "run": {"network", "mount"},
    "copy": {"from", "chown", "chmod", "link"},
    "add": {"chown", "chmod", "link", "checksum", "keep-git-dir"},
    "healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_BOOL_FLAGS = frozenset({"link", "keep-git-dir"})
_REPEATABLE = frozenset({"mount"})   # RUN --mount=... --mount=...
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


def _err(node: Node, msg: str, filename: str = "Dockerfile") -> DockerfileSyntaxError:
    return DockerfileSyntaxError(msg, node.start_line, filename)


def _unquote(val: str) -> str:
    if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
        return val[1:-1]
    return val


def parse_flags(node: Node, filename: str = "Dockerfile") -> dict[str, str | None]:
    """The node's flags, checked; a repeatable flag keeps its last value here (all of
    them: `repeated_flag`)."""
    allowed = _ALLOWED_FLAGS.get(node.instruction, set())
    out: dict[str, str | None] = {}
    for f in node.flags:
        name, eq, val = f[2:].partition("=")
        if name not in allowed:
            raise _err(node, f"Unknown flag: {name}", filename)
        if name in out and name not in _REPEATABLE:
            raise _err(node, f"Duplicate flag specified: {name}", filename)
        if not eq and name not in _BOOL_FLAGS:
            raise _err(node, f"missing a value on flag: {name}", filename)
        out[name] = _unquote(val) if eq else None
    return out


def repeated_flag(node: Node, name: str) -> list[str]:
    """Every value of a repeatable flag, in order."""
    prefix = f"--{name}="
    return [_unquote(f[len(prefix):]) for f in node.flags if f.startswith(prefix)]


@dataclass
class Instruction:
    node: Node

    @property
    def line(self) -> int:
        return self.node.start_line

    @property
    def keyword(self) -> str:
        return self.node.instruction.upper()

    def text(self) -> str:
        """`KEYWORD rest` as shown in `Step N/M : ...`."""
        return self.node.original


@dataclass
class From(Instruction):
    base: str = ""
    stage_name: str | None = None
    platform: str | None = None


@dataclass
class Run(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = True           # shell form
    heredocs: list[Heredoc] = field(default_factory=list)
    network: str | None = None
    mounts: list[str] = field(default_factory=list)   # --mount values, unexpanded (runmount)


@dataclass
class Cmd(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = True


@dataclass
class Entrypoint(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = True


@dataclass
class Env(Instruction):
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Label(Instruction):
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Maintainer(Instruction):
    name: str = ""


@dataclass
class Arg(Instruction):
    args: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class Workdir(Instruction):
    path: str = ""


@dataclass
class Copy(Instruction):
    sources: list[str] = field(default_factory=list)
    dest: str = ""
    is_add: bool = False
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    heredocs: list[Heredoc] = field(default_factory=list)
    checksum: str | None = None      # ADD --checksum=sha256:<hex> (URL sources)


@dataclass
class Expose(Instruction):
    ports: list[str] = field(default_factory=list)


@dataclass
class User(Instruction):
    user: str = ""


@dataclass
class Volume(Instruction):
    paths: list[str] = field(default_factory=list)


@dataclass
class StopSignal(Instruction):
    signal: str = ""


@dataclass
class Healthcheck(Instruction):
    test: list[str] = field(default_factory=list)   # ["NONE"] | ["CMD", ...] | ["CMD-SHELL", cmd]
    interval: int = 0       # nanoseconds, 0 = inherit
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass
class OnBuild(Instruction):
    expression: str = ""


@dataclass
class Shell(Instruction):
    shell: list[str] = field(default_factory=list)


@dataclass
class Stage:
    index: int
    name: str | None
    from_: From
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.from_.base


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(s: str) -> int:
    """Go's time.ParseDuration (as used by HEALTHCHECK flags) -> nanoseconds."""
    if s == "0":
        return 0
    pos = 0
    total = 0.0
    for m in _DUR.finditer(s):
        if m.start() != pos:
            raise ValueError(f"time: invalid duration \"{s}\"")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"time: invalid duration \"{s}\"")
    return int(total)


def parse_instruction(node: Node, filename: str = "Dockerfile") -> Instruction:
    """Typed instruction for one node; validation errors carry the node's line."""
    kw = node.instruction
    flags = parse_flags(node, filename)
    args = node.args
    if kw == "from":
        if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
            raise _err(node, "FROM requires either one or three arguments", filename)
        name = None
        if len(args) == 3:
            name = args[2].lower()
            if not _STAGE_NAME.match(name):
                raise _err(node, f"invalid name for build stage: \"{args[2]}\", name can't start with a number or contain symbols", filename)
        return From(node, base=args[0], stage_name=name, platform=flags.get("platform"))
    if kw == "run":
        if not args or (not node.json and not args[0].strip()):
            raise _err(node, "RUN requires at least one argument", filename)
        net = flags.get("network")
        if net is not None and net not in ("default", "none", "host"):
            raise _err(node, f"unsupported network mode: {net}", filename)
        mounts = repeated_flag(node, "mount")
        try:
            for m in mounts:
                parse_mount(m)
        except InvalidParameter as exc:
            raise _err(node, f"--mount={m}: {exc}", filename) from None
        return Run(node, cmd=list(args), prepend_shell=not node.json, heredocs=list(node.heredocs),
                   network=net, mounts=mounts)
    if kw in ("cmd", "entrypoint"):
        cls = Cmd if kw == "cmd" else Entrypoint
        return cls(node, cmd=list(args), prepend_shell=not node.json)
    if kw in ("env", "label"):
        pairs = [(args[i], args[i + 1]) for i in range(0, len(args), 2)]
        return (Env if kw == "env" else Label)(node, pairs=pairs)
    if kw == "maintainer":
        if not args:
            raise _err(node, "MAINTAINER requires exactly one argument", filename)
        return Maintainer(node, name=args[0])
    if kw == "arg":
        out: list[tuple[str, str | None]] = []
        for a in args:
            name, eq, default = a.partition("=")
            if not name:
                raise _err(node, "ARG names can not be blank", filename)
            out.append((name, default if eq else None))
        return Arg(node, args=out)
    if kw == "workdir":
        if not args:
            raise _err(node, "WORKDIR requires exactly one argument", filename)
        return Workdir(node, path=args[0])
    if kw in ("copy", "add"):
        heredocs = list(node.heredocs)
        words = list(args)
        if heredocs:
            # `COPY <<EOF /dest`: the marker words name inline sources
            names = {h.name for h in heredocs}
            words = [(_heredoc_name(w) if _heredoc_name(w) in names else w) for w in words]
        if len(words) < 2:
            raise _err(node, f"{kw.upper()} requires at least two arguments, but only one was provided. Destination could not be determined.", filename)
        if kw == "copy" and flags.get("from") == "":
            raise _err(node, "--from requires a value", filename)
        return Copy(node, sources=words[:-1], dest=words[-1], is_add=(kw == "add"),
                    from_=flags.get("from") if kw == "copy" else None, chown=flags.get("chown"),
                    chmod=flags.get("chmod"), heredocs=heredocs, checksum=flags.get("checksum"))
    if kw == "expose":
        if not args:
            raise _err(node, "EXPOSE requires at least one argument", filename)
        return Expose(node, ports=list(args))
    if kw == "user":
        if not args or not args[0].strip():
            raise _err(node, "USER requires exactly one argument", filename)
        return User(node, user=args[0].strip())
    if kw == "volume":
        if not args or any(not a.strip() for a in args):
            raise _err(node, "VOLUME specified can not be an empty string", filename)
        return Volume(node, paths=list(args))
    if kw == "stopsignal":
        if not args:
            raise _err(node, "STOPSIGNAL requires exactly one argument", filename)
        return StopSignal(node, signal=args[0].strip())
    if kw == "healthcheck":
        return _healthcheck(node, flags, filename)
    if kw == "onbuild":
        return OnBuild(node, expression=node.value)
    if kw == "shell":
        if not args:
            raise _err(node, "SHELL requires at least one argument", filename)
        return Shell(node, shell=list(args))
    raise _err(node, f"unknown instruction: {kw.upper()}", filename)


def _heredoc_name(word: str) -> str:
    m = re.match(r"^\d*<<-?(.+)$", word)
    if not m:
        return word
    name = m.group(1)
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1]
    return name


def _healthcheck(node: Node, flags: dict[str, str | None], filename: str) -> Healthcheck:
    args = node.args
    if not args:
        raise _err(node, "HEALTHCHECK requires an argument", filename)
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) != 1:
            raise _err(node, "HEALTHCHECK NONE takes no arguments", filename)
        if flags:
            raise _err(node, "HEALTHCHECK NONE takes no flags", filename)
        return Healthcheck(node, test=["NONE"])
    if typ != "CMD":
        raise _err(node, f"Unknown type \"{args[0]}\" in HEALTHCHECK (try CMD)", filename)
    rest = node.value.strip()[len(args[0]):].strip()
    if not rest:
        raise _err(node, "Missing command after HEALTHCHECK CMD", filename)
    from berth.build.parser import _maybe_json
    js = _maybe_json(rest)
    test = ["CMD", *js] if js is not None else ["CMD-SHELL", rest]
    hc = Healthcheck(node, test=test)
    try:
        for name, attr in (("interval", "interval"), ("timeout", "timeout"),
                           ("start-period", "start_period"), ("start-interval", "start_interval")):
            v = flags.get(name)
            if v:
                d = parse_duration(v)
                if 0 < d < 1_000_000:
                    raise ValueError(f"{name.capitalize()} \"{name}\" cannot be less than 1ms")
                setattr(hc, attr, d)
        if flags.get("retries"):
            hc.retries = int(flags["retries"] or 0)
            if hc.retries < 0:
                raise ValueError("--retries cannot be negative")
    except ValueError as exc:
        raise _err(node, str(exc), filename) from None
    return hc


def parse_stages(df: Dockerfile, filename: str = "Dockerfile") -> tuple[list[Arg], list[Stage]]:
    """Global ARGs (before the first FROM) and the stages with typed instructions."""
    meta: list[Arg] = []
    stages: list[Stage] = []
    names: set[str] = set()
    if not df.nodes:
        raise DockerfileSyntaxError("the Dockerfile cannot be empty", 0, filename)
    for node in df.nodes:
        ins = parse_instruction(node, filename)
        if isinstance(ins, From):
            name = ins.stage_name
            if name:
                if name in names:
                    raise _err(node, f"duplicate stage name \"{name}\"", filename)
                names.add(name)
            stages.append(Stage(index=len(stages), name=name, from_=ins))
            continue
        if not stages:
            if isinstance(ins, Arg):
                meta.append(ins)
                continue
            raise _err(node, "no build stage in current context", filename)
        stages[-1].instructions.append(ins)
    if not stages:
        raise DockerfileSyntaxError("no build stage in current context", df.nodes[-1].start_line, filename)
    return meta, stages
