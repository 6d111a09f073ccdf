"""OCI runtime-spec (config.json) structures, `default_spec()` and load/dump.

Fields are snake_case; JSON keys are the spec's camelCase (see `_KEYS` for the few that do
not follow the mechanical conversion). Parsing is tolerant: unknown keys are ignored, so a
config written for a newer spec still loads. `None` means "absent" and is not dumped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

from berth.runtime.version import OCI_VERSION  # re-exported: spec.OCI_VERSION

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any, ClassVar

# JSON key <-> field name where camel/snake conversion is not mechanical
_KEYS = {"uidMappings": "uid_mappings", "gidMappings": "gid_mappings", "oomScoreAdj": "oom_score_adj",
         "cgroupsPath": "cgroups_path", "realtimeRuntime": "realtime_runtime",
         "realtimePeriod": "realtime_period", "intelRdt": "intel_rdt",
         "defaultErrnoRet": "default_errno_ret", "errnoRet": "errno_ret",
         "listenerPath": "listener_path", "listenerMetadata": "listener_metadata",
         "noNewPrivileges": "no_new_privileges", "apparmorProfile": "apparmor_profile",
         "selinuxLabel": "selinux_label", "consoleSize": "console_size",
         "additionalGids": "additional_gids", "fileMode": "file_mode", "containerID": "container_id",
         "hostID": "host_id", "valueTwo": "value_two", "disableOOMKiller": "disable_oom_killer",
         "useHierarchy": "use_hierarchy", "checkBeforeUpdate": "check_before_update",
         "kernelTCP": "kernel_tcp", "rootfsPropagation": "rootfs_propagation",
         "maskedPaths": "masked_paths", "readonlyPaths": "readonly_paths", "mountLabel": "mount_label",
         "hugepageLimits": "hugepage_limits", "blockIO": "block_io", "createRuntime": "create_runtime",
         "createContainer": "create_container", "startContainer": "start_container",
         "ociVersion": "oci_version"}
_FIELDS_TO_KEYS = {v: k for k, v in _KEYS.items()}


def _to_field(key: str) -> str:
    if key in _KEYS:
        return _KEYS[key]
    out = []
    for ch in key:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def _to_key(name: str) -> str:
    if name in _FIELDS_TO_KEYS:
        return _FIELDS_TO_KEYS[name]
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


class _Struct:
    """Mixin: `from_dict` / `to_dict` with nested structures declared in `_nested`."""

    # field -> (class, is_list)
    _nested: ClassVar[dict[str, tuple[type, bool]]] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Any:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        for key, value in data.items():
            name = _to_field(key)
            if name not in names:
                continue  # tolerant: unknown fields are ignored
            sub = cls._nested.get(name)
            if sub is not None and value is not None:
                klass, is_list = sub
                value = [klass.from_dict(v) for v in value] if is_list else klass.from_dict(value)
            kw[name] = value
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, _Struct):
                value = value.to_dict()
            elif isinstance(value, list) and value and isinstance(value[0], _Struct):
                value = [v.to_dict() for v in value]
            out[_to_key(f.name)] = value
        return out


@dataclass(eq=False, repr=False)
class User(_Struct):
    """Process.user."""

    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] | None = None
    username: str | None = None


@dataclass(eq=False, repr=False)
class Capabilities(_Struct):
    """Process.capabilities."""

    bounding: list[str] | None = None
    effective: list[str] | None = None
    inheritable: list[str] | None = None
    permitted: list[str] | None = None
    ambient: list[str] | None = None


@dataclass(eq=False, repr=False)
class Rlimit(_Struct):
    """One process.rlimits entry."""

    type: str = ""
    hard: int = 0
    soft: int = 0


@dataclass(eq=False, repr=False)
class ConsoleSize(_Struct):
    """Process.consoleSize."""

    height: int = 0
    width: int = 0


@dataclass(eq=False, repr=False)
class Process(_Struct):
    """The container process."""

    terminal: bool | None = None
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    args: list[str] | None = None
    command_line: str | None = None
    env: list[str] | None = None
    cwd: str = "/"
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] | None = None
    no_new_privileges: bool | None = None
    apparmor_profile: str | None = None
    oom_score_adj: int | None = None
    selinux_label: str | None = None
    _nested = {"console_size": (ConsoleSize, False), "user": (User, False),
               "capabilities": (Capabilities, False), "rlimits": (Rlimit, True)}


@dataclass(eq=False, repr=False)
class Root(_Struct):
    """Root: the rootfs."""

    path: str = "rootfs"
    readonly: bool | None = None


@dataclass(eq=False, repr=False)
class Mount(_Struct):
    """One mounts entry."""

    destination: str = ""
    type: str | None = None
    source: str | None = None
    options: list[str] | None = None


@dataclass(eq=False, repr=False)
class Hook(_Struct):
    """One hook."""

    path: str = ""
    args: list[str] | None = None
    env: list[str] | None = None
    timeout: int | None = None


@dataclass(eq=False, repr=False)
class Hooks(_Struct):
    """Hooks by lifecycle point."""

    prestart: list[Hook] | None = None
    create_runtime: list[Hook] | None = None
    create_container: list[Hook] | None = None
    start_container: list[Hook] | None = None
    poststart: list[Hook] | None = None
    poststop: list[Hook] | None = None
    _nested = {k: (Hook, True) for k in ("prestart", "create_runtime", "create_container",
                                          "start_container", "poststart", "poststop")}


@dataclass(eq=False, repr=False)
class IDMapping(_Struct):
    """A uid/gid mapping."""

    container_id: int = 0
    host_id: int = 0
    size: int = 0


@dataclass(eq=False, repr=False)
class DeviceCgroup(_Struct):
    """Linux.resources.devices entry."""

    allow: bool = False
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


@dataclass(eq=False, repr=False)
class Memory(_Struct):
    """Linux.resources.memory."""

    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@dataclass(eq=False, repr=False)
class CPU(_Struct):
    """Linux.resources.cpu."""

    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


@dataclass(eq=False, repr=False)
class Pids(_Struct):
    """Linux.resources.pids."""

    limit: int = 0


@dataclass(eq=False, repr=False)
class Resources(_Struct):
    """Linux.resources."""

    devices: list[DeviceCgroup] | None = None
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: dict[str, Any] | None = None
    hugepage_limits: list[dict[str, Any]] | None = None
    network: dict[str, Any] | None = None
    rdma: dict[str, Any] | None = None
    unified: dict[str, str] | None = None
    _nested = {"devices": (DeviceCgroup, True), "memory": (Memory, False), "cpu": (CPU, False),
               "pids": (Pids, False)}


@dataclass(eq=False, repr=False)
class Namespace(_Struct):
    """Linux.namespaces entry."""

    type: str = ""
    path: str | None = None


@dataclass(eq=False, repr=False)
class Device(_Struct):
    """Linux.devices entry."""

    path: str = ""
    type: str = "c"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(eq=False, repr=False)
class SeccompArg(_Struct):
    """Seccomp syscall argument condition."""

    index: int = 0
    value: int = 0
    value_two: int | None = None
    op: str = "SCMP_CMP_EQ"


@dataclass(eq=False, repr=False)
class Syscall(_Struct):
    """Seccomp syscall rule."""

    names: list[str] = field(default_factory=list)
    action: str = "SCMP_ACT_ALLOW"
    errno_ret: int | None = None
    args: list[SeccompArg] | None = None
    _nested = {"args": (SeccompArg, True)}


@dataclass(eq=False, repr=False)
class Seccomp(_Struct):
    """Linux.seccomp."""

    default_action: str = "SCMP_ACT_ERRNO"
    default_errno_ret: int | None = None
    architectures: list[str] | None = None
    flags: list[str] | None = None
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[Syscall] | None = None
    _nested = {"syscalls": (Syscall, True)}


@dataclass(eq=False, repr=False)
class Linux(_Struct):
    """Linux: the Linux-specific part."""

    uid_mappings: list[IDMapping] | None = None
    gid_mappings: list[IDMapping] | None = None
    sysctl: dict[str, str] | None = None
    resources: Resources | None = None
    cgroups_path: str | None = None
    namespaces: list[Namespace] | None = None
    devices: list[Device] | None = None
    seccomp: Seccomp | None = None
    rootfs_propagation: str | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    mount_label: str | None = None
    intel_rdt: dict[str, Any] | None = None
    personality: dict[str, Any] | None = None
    time_offsets: dict[str, Any] | None = None
    _nested = {"uid_mappings": (IDMapping, True), "gid_mappings": (IDMapping, True),
               "resources": (Resources, False), "namespaces": (Namespace, True),
               "devices": (Device, True), "seccomp": (Seccomp, False)}


@dataclass(eq=False, repr=False)
class Spec(_Struct):
    """Config.json as a whole."""

    oci_version: str = OCI_VERSION
    process: Process | None = None
    root: Root | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: list[Mount] | None = None
    hooks: Hooks | None = None
    annotations: dict[str, str] | None = None
    linux: Linux | None = None
    _nested = {"process": (Process, False), "root": (Root, False), "mounts": (Mount, True),
               "hooks": (Hooks, False), "linux": (Linux, False)}

    def namespace(self, kind: str) -> Namespace | None:
        for ns in (self.linux.namespaces if self.linux and self.linux.namespaces else []):
            if ns.type == kind:
                return ns
        return None


def loads(text: str | bytes) -> Spec:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"config.json is not valid JSON: {exc}") from None
    return Spec.from_dict(data)


def load(bundle: str) -> Spec:
    """Read `<bundle>/config.json`."""
    with open(os.path.join(bundle, "config.json"), "rb") as f:
        return loads(f.read())


def dumps(spec: Spec, indent: int | None = 2) -> str:
    return json.dumps(spec.to_dict(), indent=indent)


def dump(spec: Spec, bundle: str) -> None:
    path = os.path.join(bundle, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(dumps(spec))
    os.replace(tmp, path)


def default_spec() -> Spec:
    """The same spec `runc spec` writes: a `sh` with a terminal in a read-only rootfs."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return Spec(
        oci_version=OCI_VERSION,
        process=Process(
            terminal=True, user=User(uid=0, gid=0), args=["sh"],
            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd="/",
            capabilities=Capabilities(bounding=list(caps), effective=list(caps), permitted=list(caps),
                                      ambient=list(caps)),
            rlimits=[Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)],
            no_new_privileges=True),
        root=Root(path="rootfs", readonly=True),
        hostname="runc",
        mounts=[
            Mount("/proc", "proc", "proc"),
            Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount("/dev/pts", "devpts", "devpts",
                  ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            Mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ],
        linux=Linux(
            resources=Resources(devices=[DeviceCgroup(allow=False, access="rwm")]),
            namespaces=[Namespace("pid"), Namespace("network"), Namespace("ipc"), Namespace("uts"),
                        Namespace("mount")],
            masked_paths=["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                          "/proc/scsi"],
            readonly_paths=["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
    )
