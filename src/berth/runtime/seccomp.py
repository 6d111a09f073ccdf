"""Seccomp: a spec's `linux.seccomp` becomes a libseccomp filter (Debian's python3-seccomp),
and Docker's default profile (kept as data in `seccomp_default.json`) becomes a spec.

`build()` runs in the container init before its root changes; the filter is loaded just
before exec (or before dropping capabilities when no_new_privileges is off, because then
loading needs CAP_SYS_ADMIN).
"""

from __future__ import annotations

import errno as _errno
import json
import os
import platform

from berth.runtime.spec import Seccomp, Syscall

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
        data = json.load(f)
    caps = set(capabilities or [])
    goarch = arch or _GOARCH.get(platform.machine(), platform.machine())
    rules = []
    for r in data["syscalls"]:
        inc = r.get("includes", {})
        exc = r.get("excludes", {})
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        rules.append(Syscall.from_dict({k: v for k, v in r.items() if k not in ("includes", "excludes", "comment")}))
    return Seccomp(default_action=data["defaultAction"], default_errno_ret=data.get("defaultErrnoRet"),
                   architectures=list(data["architectures"]), syscalls=rules)
