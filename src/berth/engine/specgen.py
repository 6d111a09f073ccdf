"""Container configuration (Engine API create body) + image config -> OCI runtime config.

Pure functions except for reading the container rootfs' /etc/passwd and /etc/group.
Docker's defaults: capabilities, masked and read-only paths, /dev, /dev/pts, /dev/shm,
mqueue, sysfs, cgroup mounts, device cgroup rules, resource limits, cgroup path
`/<cgroup_parent>/<id>`, and the /etc/hosts, /etc/hostname, /etc/resolv.conf bind mounts.
The HostConfig it is given has been checked by `berth.engine.hostconfig`.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from berth.engine.hostconfig import (
    INIT_IN_CONTAINER,
    MASKED_PATHS,
    READONLY_PATHS,
    block_io,
    host_devices,
    init_binary,
    parse_security_opts,
)
from berth.errors import InvalidParameter

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# Docker's default device cgroup rules
DEFAULT_DEVICES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]

@dataclass
class User:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/root"


def merge_env(image_env: list[str] | None, env: list[str] | None) -> list[str]:
    """Image env overridden by the container's (same key), order kept; PATH defaulted."""
    out: dict[str, str] = {}
    for item in (image_env or []) + (env or []):
        k, sep, _ = item.partition("=")
        if not sep:
            # "-e FOO" without a value and not set: Docker drops it
            continue
        out[k] = item
    if "PATH" not in out:
        out = {"PATH": DEFAULT_PATH, **out}
    return list(out.values())


def merge_config(config: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """Docker fills the container Config from the image's where the request left it empty."""
    img = image_config.get("config") or image_config.get("Config") or {}
    c = dict(config)
    c["Env"] = merge_env(img.get("Env"), config.get("Env"))
    entry = config.get("Entrypoint")
    if isinstance(entry, str):
        entry = shlex.split(entry)
    cmd = config.get("Cmd")
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    if entry is None or entry == []:
        if entry is None:
            entry = img.get("Entrypoint")
        else:  # --entrypoint "" resets the image's entrypoint and its Cmd
            entry = None
        if not cmd and config.get("Entrypoint") is None:
            cmd = img.get("Cmd")
    elif not cmd and config.get("Entrypoint") is None:
        cmd = img.get("Cmd")
    c["Entrypoint"] = entry or None
    c["Cmd"] = cmd or None
    c["WorkingDir"] = config.get("WorkingDir") or img.get("WorkingDir") or ""
    c["User"] = config.get("User") or img.get("User") or ""
    labels = dict(img.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    c["Labels"] = labels
    ports = dict(img.get("ExposedPorts") or {})
    ports.update(config.get("ExposedPorts") or {})
    c["ExposedPorts"] = ports or None
    vols = dict(img.get("Volumes") or {})
    vols.update(config.get("Volumes") or {})
    c["Volumes"] = vols or None
    c["StopSignal"] = config.get("StopSignal") or img.get("StopSignal") or None
    if config.get("Healthcheck") is None and img.get("Healthcheck"):
        c["Healthcheck"] = img["Healthcheck"]
    if not c.get("Shell") and img.get("Shell"):
        c["Shell"] = img["Shell"]
    return c


def _read(path: str) -> list[list[str]]:
    try:
        with open(path, errors="replace") as f:
            return [ln.rstrip("\n").split(":") for ln in f if ln.strip() and not ln.startswith("#")]
    except OSError:
        return []


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> User:
    """Docker's user spec (name|uid[:group|gid]) looked up in the rootfs' passwd/group."""
    passwd = _read(os.path.join(rootfs, "etc/passwd"))
    groups = _read(os.path.join(rootfs, "etc/group"))
    name, _, grp = (user or "").partition(":")
    uid, gid, home, uname = 0, 0, "/root", "root"
    if name:
        entry = next((p for p in passwd if len(p) >= 6 and (p[0] == name or p[2] == name)), None)
        if entry is not None:
            uname, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5]
        elif name.isdigit():
            uid, gid, uname, home = int(name), 0, "", "/"
        else:
            raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd file")
    elif passwd:
        entry = next((p for p in passwd if len(p) >= 6 and p[2] == "0"), None)
        if entry is not None:
            home = entry[5]
    if grp:
        g = next((x for x in groups if len(x) >= 3 and (x[0] == grp or x[2] == grp)), None)
        if g is not None:
            gid = int(g[2])
        elif grp.isdigit():
            gid = int(grp)
        else:
            raise InvalidParameter(f"unable to find group {grp}: no matching entries in group file")
    extra: list[int] = []
    if uname and not grp:
        for g in groups:
            if len(g) >= 4 and uname in g[3].split(",") and int(g[2]) != gid:
                extra.append(int(g[2]))
    for ga in group_add or []:
        g = next((x for x in groups if len(x) >= 3 and (x[0] == ga or x[2] == ga)), None)
        if g is not None:
            extra.append(int(g[2]))
        elif ga.isdigit():
            extra.append(int(ga))
        else:
            raise InvalidParameter(f"Unable to find group {ga}: no matching entries in group file")
    return User(uid, gid, sorted(set(extra)), home)


def process_args(config: dict[str, Any]) -> list[str]:
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("No command specified")
    return args


@dataclass
class SpecInputs:
    id: str
    rootfs: str
    config: dict[str, Any]          # merged container Config
    host_config: dict[str, Any]
    cgroup_parent: str
    hostname: str
    netns: str | None = None        # path of a network namespace to join
    share_host_network: bool = False
    files: dict[str, str] = field(default_factory=dict)   # container path -> host file to bind
    extra_mounts: list[dict[str, Any]] = field(default_factory=list)
    seccomp: dict[str, Any] | None = None
    init_path: str = ""             # berthd's --init-path ("" = find tini)
    joined: dict[str, str] = field(default_factory=dict)   # namespace type -> path (pid/ipc container:X)
    shm_source: str = ""            # /dev/shm bound from here (IpcMode host or container:X)


def resources(hc: dict[str, Any]) -> dict[str, Any]:
    if hc.get("Privileged"):
        r: dict[str, Any] = {"devices": [{"allow": True, "access": "rwm"}]}
    else:
        r = {"devices": [dict(d) for d in DEFAULT_DEVICES] + host_devices(hc)[1]}
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = hc.get("MemorySwap") or 0
        if swap == 0:
            swap = 2 * int(hc["Memory"])
        mem["swap"] = int(swap)
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("MemorySwappiness") is not None and hc.get("MemorySwappiness", -1) >= 0:
        mem["swappiness"] = int(hc["MemorySwappiness"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        r["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 10**9
    else:
        if hc.get("CpuPeriod"):
            cpu["period"] = int(hc["CpuPeriod"])
        if hc.get("CpuQuota"):
            cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = int(hc["CpuRealtimePeriod"])
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = int(hc["CpuRealtimeRuntime"])
    if cpu:
        r["cpu"] = cpu
    pids = hc.get("PidsLimit")
    if pids and pids > 0:
        r["pids"] = {"limit": int(pids)}
    bio = block_io(hc)
    if bio:
        r["blockIO"] = bio
    return r


def host_bounding_caps() -> int:
    """The daemon's own capability bounding set: --privileged gives what the host has."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return (1 << 64) - 1


def container_caps(hc: dict[str, Any]) -> list[str]:
    from berth.runtime import capabilities

    caps = capabilities.docker_set(hc.get("CapAdd"), hc.get("CapDrop"), bool(hc.get("Privileged")))
    bnd = host_bounding_caps()
    return [c for c in caps if bnd & (1 << capabilities.CAP_NUMBERS[c])]


def generate(inp: SpecInputs) -> dict[str, Any]:
    """The OCI config.json for a container, as a JSON-ready dict."""

    c, hc = inp.config, inp.host_config
    privileged = bool(hc.get("Privileged"))
    sec = parse_security_opts(hc.get("SecurityOpt"))
    user = resolve_user(inp.rootfs, c.get("User") or "", hc.get("GroupAdd"))
    env = list(c.get("Env") or [])
    keys = {e.partition("=")[0] for e in env}
    if "HOSTNAME" not in keys:
        env.insert(1 if env and env[0].startswith("PATH=") else 0, f"HOSTNAME={inp.hostname}")
    if c.get("Tty") and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={user.home or '/'}")
    caps = container_caps(hc)
    process: dict[str, Any] = {
        "terminal": bool(c.get("Tty")),
        "user": {"uid": user.uid, "gid": user.gid},
        "args": ([INIT_IN_CONTAINER, "--"] if hc.get("Init") else []) + process_args(c),
        "env": env,
        "cwd": c.get("WorkingDir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": sec.no_new_privileges,
        "oomScoreAdj": int(hc.get("OomScoreAdj") or 0),
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if c.get("Tty"):
        h, w = (hc.get("ConsoleSize") or [0, 0])[:2] if hc.get("ConsoleSize") else (0, 0)
        if h and w:
            process["consoleSize"] = {"height": int(h), "width": int(w)}
    rl = []
    for u in hc.get("Ulimits") or []:
        rl.append({"type": "RLIMIT_" + u["Name"].upper(), "soft": int(u["Soft"]), "hard": int(u["Hard"])})
    if rl:
        process["rlimits"] = rl
    shm = int(hc.get("ShmSize") or 64 * 1024 * 1024)
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]
    ipc_mode = hc.get("IpcMode") or ""
    if ipc_mode == "none":   # Docker: an IPC namespace of its own and no /dev/shm
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]
    elif inp.shm_source:
        shared = {"destination": "/dev/shm", "type": "bind", "source": inp.shm_source,
                  "options": ["rbind", "rprivate"]}
        mounts = [shared if m["destination"] == "/dev/shm" else m for m in mounts]
    dests = {m.get("destination") for m in inp.extra_mounts}
    for dest, src in inp.files.items():
        if dest in dests:
            continue
        opts = ["rbind", "rprivate"]
        if hc.get("ReadonlyRootfs") and dest != "/etc/resolv.conf":
            pass
        mounts.append({"destination": dest, "type": "bind", "source": src, "options": opts})
    for tmp_dest, tmp_opts in (hc.get("Tmpfs") or {}).items():
        if tmp_dest in dests:
            continue
        opts = ["nosuid", "nodev", "noexec"] + [o for o in tmp_opts.split(",") if o]
        mounts.append({"destination": tmp_dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
    mounts.extend(inp.extra_mounts)
    if hc.get("Init"):
        mounts.append({"destination": INIT_IN_CONTAINER, "type": "bind", "source": init_binary(inp.init_path),
                       "options": ["rbind", "ro"]})
    namespaces: list[dict[str, Any]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if inp.netns:
        namespaces.append({"type": "network", "path": inp.netns})
    elif not inp.share_host_network:
        namespaces.append({"type": "network"})
    if inp.share_host_network:
        namespaces = [n for n in namespaces if n["type"] != "uts"] if not c.get("Hostname") else namespaces
    if hc.get("PidMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "pid"]
    if hc.get("IpcMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "ipc"]
    if hc.get("UTSMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "uts"]
    for ns in namespaces:
        if ns["type"] in inp.joined:
            ns["path"] = inp.joined[ns["type"]]
    if hc.get("CgroupnsMode") == "private":
        namespaces.append({"type": "cgroup"})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources(hc),
        "cgroupsPath": f"/{inp.cgroup_parent.strip('/')}/{inp.id}",
        "maskedPaths": [] if privileged else list(_or_default(hc.get("MaskedPaths"), MASKED_PATHS)),
        "readonlyPaths": [] if privileged else list(_or_default(hc.get("ReadonlyPaths"), READONLY_PATHS)),
    }
    nodes = host_devices({"Devices": hc.get("Devices")})[0]
    if nodes:
        linux["devices"] = nodes
    sysctls = hc.get("Sysctls") or {}
    if sysctls:
        linux["sysctl"] = dict(sysctls)
    if inp.seccomp is not None and not privileged and sec.seccomp != "unconfined":
        linux["seccomp"] = inp.seccomp
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": inp.hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if c.get("Domainname"):
        spec["domainname"] = c["Domainname"]
    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])
    return spec


def _or_default(paths: list[str] | None, default: list[str]) -> list[str]:
    """A HostConfig path list: None means Docker's default set, [] means none."""
    return default if paths is None else paths


def exec_process(config: dict[str, Any], exec_cfg: dict[str, Any], rootfs: str, base_env: list[str],
                 caps: list[str]) -> dict[str, Any]:
    """OCI process for `docker exec` (ExecConfig), inheriting the container's env and caps."""
    user = resolve_user(rootfs, exec_cfg.get("User") or config.get("User") or "")
    env = merge_env(base_env, exec_cfg.get("Env"))
    if exec_cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    cmd = exec_cfg.get("Cmd") or []
    if not cmd:
        raise InvalidParameter("No exec command specified")
    if exec_cfg.get("Privileged"):
        caps = container_caps({"Privileged": True})
    p: dict[str, Any] = {
        "terminal": bool(exec_cfg.get("Tty")),
        "user": {"uid": user.uid, "gid": user.gid},
        "args": list(cmd), "env": env,
        "cwd": exec_cfg.get("WorkingDir") or config.get("WorkingDir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
    }
    if user.additional_gids:
        p["user"]["additionalGids"] = user.additional_gids
    cs = exec_cfg.get("ConsoleSize")
    if exec_cfg.get("Tty") and cs and cs[0] and cs[1]:
        p["consoleSize"] = {"height": int(cs[0]), "width": int(cs[1])}
    return p
