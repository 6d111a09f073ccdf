"""Seccomp: a spec's `linux.seccomp` becomes a BPF program (built with libseccomp through
Debian's python3-seccomp), and Docker's default profile (kept as data in
`seccomp_default.json`) becomes a spec.

`program()` runs in the runtime before the init is forked and returns the raw BPF program;
the init loads it with seccomp(2) through `berth.kernel` just before exec (or before dropping
capabilities when no_new_privileges is off, because then loading needs CAP_SYS_ADMIN).
Building Docker's profile costs ~10 ms (libseccomp's rule database plus its compile), on every
container start: programs are cached in a root-only directory, one file per cache key (a
hash of everything that determines the program: the profile, no_new_privs, the libseccomp
version, the architecture and this module), each written atomically and holding a digest of
the program, so a torn or corrupt entry is never loaded: it is rebuilt and replaced.
"""

from __future__ import annotations

import errno as _errno
import json
import os

from berth.runtime.spec import Seccomp, Syscall

try:  # CPython's built-in SHA-256: hashlib would load OpenSSL first (~7 ms on every start)
    from _sha2 import sha256  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # 3.11
    except ImportError:
        from hashlib import sha256

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any

_ARCHES = {"SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
           "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_PPC64LE": "PPC64LE",
           "SCMP_ARCH_S390X": "S390X", "SCMP_ARCH_RISCV64": "RISCV64"}
# Docker's profile names architectures as Go does
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}


def _action(name: str, errno_ret: int | None, default_errno: int | None) -> Any:
    import seccomp as _s
    if name == "SCMP_ACT_ALLOW":
        return _s.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return _s.ERRNO(errno_ret if errno_ret is not None else (default_errno or _errno.EPERM))
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return _s.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return _s.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return _s.TRAP
    if name == "SCMP_ACT_LOG":
        return _s.LOG
    if name == "SCMP_ACT_TRACE":
        return _s.TRACE(errno_ret or 0)
    raise ValueError(f"unsupported seccomp action {name}")


_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


def build(profile: Seccomp, no_new_privs: bool = True) -> Any:
    """A `seccomp.SyscallFilter` for the spec; syscalls this libseccomp does not know are
    skipped (as runc does)."""
    import seccomp as _s
    default = _action(profile.default_action, None, profile.default_errno_ret)
    filt = _s.SyscallFilter(default)
    if not no_new_privs:
        filt.set_attr(_s.Attr.CTL_NNP, 0)
    for arch in profile.architectures or []:
        name = _ARCHES.get(arch)
        if name is None:
            continue
        try:
            filt.add_arch(getattr(_s.Arch, name))
        except (RuntimeError, ValueError, OSError):
            pass  # already the native arch, or not supported here
    for rule in profile.syscalls or []:
        action = _action(rule.action, rule.errno_ret, profile.default_errno_ret)
        if action == default:
            continue  # libseccomp refuses rules equal to the default action
        args = [_s.Arg(a.index, getattr(_s, _OPS[a.op]), a.value, a.value_two or 0) for a in rule.args or []]
        for name in rule.names:
            try:
                filt.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError):
                continue
    return filt


def docker_default(capabilities: list[str] | None = None, arch: str | None = None) -> Seccomp:
    """Docker's default profile for a container with `capabilities` (its CapEff set)."""
    with open(os.path.join(os.path.dirname(__file__), "seccomp_default.json")) as f:
        return from_docker(json.load(f), capabilities, arch)


def from_docker(data: dict[str, Any], capabilities: list[str] | None = None, arch: str | None = None) -> Seccomp:
    """A Docker-format profile (`docker run --security-opt seccomp=FILE`: `archMap` or
    `architectures`, rules with `names` or `name` and `includes`/`excludes` conditions) as
    a spec, for a container with `capabilities`. Raises ValueError on a malformed one."""
    if not isinstance(data, dict):
        raise ValueError("a seccomp profile is a JSON object")
    caps = set(capabilities or [])
    machine = os.uname().machine
    goarch = arch or _GOARCH.get(machine, machine)
    arches = list(data.get("architectures") or [])
    for entry in data.get("archMap") or []:
        arches += [entry.get("architecture", "")] + list(entry.get("subArchitectures") or [])
    rules = []
    for r in data.get("syscalls") or []:
        if not isinstance(r, dict):
            raise ValueError("a seccomp profile's syscalls are JSON objects")
        inc = r.get("includes") or {}
        exc = r.get("excludes") or {}
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        rule = {k: v for k, v in r.items() if k not in ("includes", "excludes", "comment", "name")}
        if r.get("name") and not r.get("names"):
            rule["names"] = [r["name"]]
        rules.append(Syscall.from_dict(rule))
    return Seccomp(default_action=data.get("defaultAction") or "SCMP_ACT_ERRNO",
                   default_errno_ret=data.get("defaultErrnoRet"), architectures=arches, syscalls=rules)


def check(profile: Seccomp) -> None:
    """Raise ValueError when libseccomp could not build the profile (an unknown action or
    comparison), so a container is refused at create rather than at start."""
    for rule in profile.syscalls or []:
        for a in rule.args or []:
            if a.op not in _OPS:
                raise ValueError(f"unsupported seccomp comparison {a.op}")
    build(profile)


# --- compiled programs and their cache -----------------------------------------------------
_MAGIC = b"berth-seccomp-bpf-1\n"
_DIGEST = 32  # sha256 of the program, after the magic


def program(profile: Seccomp, no_new_privs: bool, cache_dir: str | None = None) -> bytes:
    """The profile's BPF program (an array of struct sock_filter), from `cache_dir` when a
    valid entry is there, else built with libseccomp (and then cached)."""
    path = os.path.join(cache_dir, cache_key(profile, no_new_privs) + ".bpf") if cache_dir else None
    if path is not None:
        prog = _read_entry(path)
        if prog is not None:
            return prog
    prog = export(build(profile, no_new_privs=no_new_privs))
    if path is not None:
        _write_entry(path, prog)
    return prog


def export(filt: Any) -> bytes:
    """The raw BPF program libseccomp would load for `filt`."""
    fd = os.memfd_create("berth-seccomp", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


def cache_key(profile: Seccomp, no_new_privs: bool) -> str:
    me = os.stat(__file__)  # this module's build logic is part of the program
    parts = {"profile": profile.to_dict(), "no_new_privs": bool(no_new_privs), "libseccomp": libseccomp_version(),
             "arch": os.uname().machine, "module": [me.st_size, me.st_mtime_ns]}
    return sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def libseccomp_version() -> str:
    """The version of the libseccomp the binding uses (its rule compiler makes the program),
    without importing the binding: the cached path never needs it."""
    import ctypes

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return "none"
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _private(st: os.stat_result) -> bool:
    """Owned by us and writable by nobody else: a cache anyone could write could disable
    the filter of every container."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read_entry(path: str) -> bytes | None:
    """The program stored at `path`, or None if it is missing, not private or corrupt."""
    try:
        if not _private(os.stat(os.path.dirname(path))):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not _private(os.fstat(fd)):
            return None
        data = f.read()
    head, digest, prog = data[:len(_MAGIC)], data[len(_MAGIC):len(_MAGIC) + _DIGEST], data[len(_MAGIC) + _DIGEST:]
    if head != _MAGIC or not prog or len(prog) % 8 or sha256(prog).digest() != digest:
        return None
    return prog


def _write_entry(path: str, prog: bytes) -> None:
    """Store `prog` at `path` atomically (a temporary file renamed over it); a cache that
    cannot be written is only a slower start, never an error."""
    d = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        if not _private(os.stat(d)):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + sha256(prog).digest() + prog)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
