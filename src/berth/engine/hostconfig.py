"""Docker's daemon-side checks of a ContainerCreate HostConfig.

What dockerd does with each setting, berth does: it is applied (the values are checked and
normalized here, as Docker stores them), refused with Docker's message (`InvalidParameter`,
before anything is made, so a refused create leaves no record), or dropped with Docker's
warning (returned to the client in the create response's `Warnings`). `specgen` turns the
checked HostConfig into the OCI spec; this module also holds the host facts it needs
(devices, block devices, the init binary, blkio support).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidParameter

# Docker's defaults for HostConfig.MaskedPaths / ReadonlyPaths (a privileged container has none)
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

MIN_MEMORY = 6 * 1024 * 1024

# The runtimes /info lists; "runc" is an alias so compose files and scripts naming Docker's
# default keep working (both are berth-runtime).
RUNTIMES = {"berth": {"path": "berth-runtime"}, "runc": {"path": "berth-runtime"}}
DEFAULT_RUNTIME = "berth"
# --init: Docker's init is tini installed as docker-init, bind-mounted here in the container
INIT_BINARY = "docker-init"
INIT_IN_CONTAINER = "/sbin/docker-init"
INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")

DEVICE_CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
# HostConfig field -> (OCI blockIO key, v1 cgroup file, Docker's warning when it is missing)
BLKIO_THROTTLES = {
    "BlkioDeviceReadBps": ("throttleReadBpsDevice", "blkio.throttle.read_bps_device",
                           "Your kernel does not support BPS Block I/O read limit or the cgroup is not "
                           "mounted. Block I/O BPS read limit discarded."),
    "BlkioDeviceWriteBps": ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device",
                            "Your kernel does not support BPS Block I/O write limit or the cgroup is not "
                            "mounted. Block I/O BPS write limit discarded."),
    "BlkioDeviceReadIOps": ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device",
                            "Your kernel does not support IOPS Block read limit or the cgroup is not "
                            "mounted. Block I/O IOPS read limit discarded."),
    "BlkioDeviceWriteIOps": ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device",
                             "Your kernel does not support IOPS Block write limit or the cgroup is not "
                             "mounted. Block I/O IOPS write limit discarded."),
}
BLKIO_WEIGHT_WARNING = ("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                        "Weight discarded.")
BLKIO_WEIGHT_DEVICE_WARNING = ("Your kernel does not support Block I/O weight_device or the cgroup is not "
                               "mounted. Weight-device discarded.")

# Docker's built-in log drivers berth does not implement (an unknown name is a missing plugin)
DOCKER_LOG_DRIVERS = ("local", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs",
                      "gcplogs", "logentries")
LOG_DRIVERS = ("json-file", "none")
# json-file options berth applies, and those Docker knows that berth's writer does not record
JSON_FILE_OPTS = ("max-size", "max-file")
JSON_FILE_UNRECORDED = ("compress", "labels", "labels-regex", "env", "env-regex", "tag")
IPC_MODES = ("", "private", "shareable", "host", "none")
# HostConfig field -> what berth-runtime does not apply (dropped with a warning; dockerd on a
# cgroup v1 host applied them, recent dockerd drops KernelMemory too)
KERNEL_MEMORY = {"KernelMemory": "kernel memory limits", "KernelMemoryTCP": "kernel memory TCP limits"}
CGROUP_WARNING = ("joining another container's cgroup (HostConfig.Cgroup) is not supported by berth. "
                  "Setting discarded.")


def validate_host_config(hc: dict[str, Any], ncpu: int | None = None) -> list[str]:
    """Docker's daemon-side checks on resources and policies, with its messages; returns
    its warnings (settings this kernel cannot apply are dropped from `hc`)."""
    mem = hc.get("Memory") or 0
    if mem < 0:
        raise InvalidParameter(f"invalid memory value {mem}")
    if 0 < mem < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = hc.get("MemorySwap") or 0
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if mem == 0 and swap > 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    res = hc.get("MemoryReservation") or 0
    if res and mem and mem < res:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    nano = hc.get("NanoCpus") or 0
    ncpu = ncpu or os.cpu_count() or 1
    if nano < 0 or nano > ncpu * 10**9:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    shares = hc.get("CpuShares") or 0
    if shares < 0:
        raise InvalidParameter(f"invalid CPU shares {shares}")
    cpus = hc.get("CpusetCpus") or ""
    if cpus:
        _check_cpuset(cpus, ncpu)
    pids = hc.get("PidsLimit")
    if pids is not None and pids < -1:
        raise InvalidParameter(f"invalid pids limit {pids}")
    rp = hc.get("RestartPolicy") or {}
    name = rp.get("Name") or "no"
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    mrc = rp.get("MaximumRetryCount") or 0
    if mrc < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if mrc and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    from berth.runtime import capabilities
    try:
        capabilities.docker_set(hc.get("CapAdd"), hc.get("CapDrop"), False)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    return check_blkio(hc) + check_cpu_realtime(hc)


def _check_cpuset(spec: str, ncpu: int) -> None:
    for part in spec.split(","):
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise InvalidParameter(f"Invalid value {spec} for cpuset cpus") from None
        if lo > hi or hi >= ncpu:
            raise InvalidParameter(f"Requested CPUs are not available - requested {spec}, available: 0-{ncpu - 1}")


def validate_create(hc: dict[str, Any], init_path: str = "", ncpu: int | None = None) -> list[str]:
    """Every daemon-side check of a ContainerCreate HostConfig; returns Docker's warnings.
    Normalizes `hc` in place as Docker stores it: settings the kernel cannot apply are
    dropped (with a warning), Runtime, MaskedPaths and ReadonlyPaths get their defaults."""
    warnings = validate_host_config(hc, ncpu)
    runtime = hc.get("Runtime") or DEFAULT_RUNTIME
    if runtime not in RUNTIMES:
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    hc["Runtime"] = runtime
    userns = hc.get("UsernsMode") or ""
    if userns not in ("", "host"):
        raise InvalidParameter(f"invalid UsernsMode {userns!r}: berth has no user namespace remapping, "
                               "containers share the host's user namespace (\"host\", the default)")
    if hc.get("StorageOpt"):
        # Docker's overlay2 accepts a size only on xfs with project quota; berth has no quota
        raise InvalidParameter("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    for key, value in (hc.get("Annotations") or {}).items():
        if not key:
            raise InvalidParameter("invalid Annotations: the empty string is not permitted as an annotation key")
        if not isinstance(value, str):
            raise InvalidParameter(f"invalid Annotations: the value of {key!r} must be a string")
    for key in ("MaskedPaths", "ReadonlyPaths"):
        paths = hc.get(key)
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
            raise InvalidParameter(f"invalid {key}: a list of paths is expected")
    sec = parse_security_opts(hc.get("SecurityOpt"))
    if sec.unconfined_paths:   # as the docker CLI turns it into empty path lists
        hc["MaskedPaths"], hc["ReadonlyPaths"] = [], []
    custom_seccomp(sec, [])    # a malformed profile fails the create
    if not hc.get("Privileged"):
        if hc.get("MaskedPaths") is None:
            hc["MaskedPaths"] = list(MASKED_PATHS)
        if hc.get("ReadonlyPaths") is None:
            hc["ReadonlyPaths"] = list(READONLY_PATHS)
    host_devices(hc)           # a missing device fails the create, not the start
    warnings += check_windows_only(hc)
    for req in hc.get("DeviceRequests") or []:
        # no device driver (GPUs) is registered, as on a dockerd without nvidia's
        caps = "[" + " ".join("[" + " ".join(c) + "]" for c in req.get("Capabilities") or []) + "]"
        raise InvalidParameter(f'could not select device driver "{req.get("Driver") or ""}" with '
                               f"capabilities: {caps}")
    if hc.get("Init"):
        init_binary(init_path)
    warnings += check_log_config(hc)
    check_namespace_modes(hc)
    warnings += check_dropped(hc)
    return warnings


@dataclass
class SecurityOpts:
    no_new_privileges: bool = False
    seccomp: str = ""              # "" or "builtin": Docker's default; "unconfined"; a profile's JSON
    unconfined_paths: bool = False  # systempaths=unconfined: no masked or read-only paths


_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _lsm_enabled(name: str) -> bool:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return name in f.read().split(",")
    except OSError:
        return False


def parse_security_opts(opts: list[str] | None) -> SecurityOpts:
    """HostConfig.SecurityOpt as dockerd reads it (`key=value`, or the old `key:value`),
    with its errors. label= and apparmor= are accepted and ignored, as dockerd does on a
    host without SELinux or AppArmor; on a host with one, a profile berth cannot apply is
    refused."""
    out = SecurityOpts()
    for opt in opts or []:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "disable":   # label=disable's short form
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(opt)}")
        key, _, value = opt.partition(sep)
        if key == "seccomp":
            out.seccomp = value
        elif key == "no-new-privileges" and value in _BOOLS:
            out.no_new_privileges = _BOOLS[value]
        elif key == "systempaths" and value == "unconfined":
            out.unconfined_paths = True
        elif key in ("label", "apparmor"):
            lsm, inert = ("selinux", "disable") if key == "label" else ("apparmor", "unconfined")
            if value != inert and _lsm_enabled(lsm):
                raise InvalidParameter(f"invalid --security-opt {json.dumps(opt)}: berth cannot apply "
                                       f"{lsm} settings (only {key}={inert})")
        else:
            raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")
    return out


def custom_seccomp(sec: SecurityOpts, caps: list[str]) -> dict[str, Any] | None:
    """The profile `seccomp=<JSON>` gives (the docker CLI sends a file's content), as a
    spec's linux.seccomp for a container with `caps`; None for the default or unconfined."""
    if sec.seccomp in ("", "builtin", "unconfined"):
        return None
    from berth.runtime import seccomp
    try:
        data = json.loads(sec.seccomp)
    except ValueError as exc:
        raise InvalidParameter(f"Decoding seccomp profile failed: {exc}") from None
    try:
        profile = seccomp.from_docker(data, caps)
        seccomp.check(profile)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidParameter(f"invalid seccomp profile: {exc}") from None
    return profile.to_dict()


def check_log_config(hc: dict[str, Any]) -> list[str]:
    """LogConfig: json-file (berth's writer) and none; other drivers and unknown options
    refused as dockerd refuses them; json-file options the writer does not record warned."""
    lc = hc.get("LogConfig") or {}
    driver = lc.get("Type") or "json-file"
    opts = lc.get("Config") or {}
    if driver in DOCKER_LOG_DRIVERS:
        raise InvalidParameter(f'logging driver "{driver}" is not supported by berth: use '
                               + " or ".join(LOG_DRIVERS))
    if driver not in LOG_DRIVERS:
        raise InvalidParameter(f'error looking up logging plugin {driver}: plugin "{driver}" not found')
    hc["LogConfig"] = {"Type": driver, "Config": dict(opts)}
    if driver == "none":   # dockerd validates no options for it
        return []
    warnings = []
    for key in opts:
        if key in JSON_FILE_UNRECORDED:
            warnings.append(f"berth's json-file log driver does not apply log opt '{key}'. Option discarded.")
        elif key not in JSON_FILE_OPTS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    for key in JSON_FILE_UNRECORDED:
        hc["LogConfig"]["Config"].pop(key, None)
    return warnings


def joined_container(mode: str | None) -> str:
    """`container:NAME` -> NAME ("" for any other mode)."""
    kind, sep, ref = (mode or "").partition(":")
    return ref if kind == "container" and sep else ""


def check_namespace_modes(hc: dict[str, Any]) -> None:
    """PidMode, IpcMode and UTSMode values, with dockerd's messages; IpcMode defaults to
    private (dockerd's default-ipc-mode)."""
    ipc = hc.get("IpcMode") or ""
    if ipc == "container:" or (ipc not in IPC_MODES and not joined_container(ipc)):
        raise InvalidParameter(f"invalid IPC mode: {ipc}")
    hc["IpcMode"] = ipc or "private"
    pid = hc.get("PidMode") or ""
    if pid not in ("", "host") and not joined_container(pid):
        raise InvalidParameter(f"invalid PID mode: {pid}")
    uts = hc.get("UTSMode") or ""
    if uts not in ("", "host"):
        raise InvalidParameter(f"invalid UTS mode: {uts}")


def check_dropped(hc: dict[str, Any]) -> list[str]:
    """Settings berth cannot apply, dropped with a warning as dockerd drops what its host
    cannot do."""
    warnings = []
    for key, what in KERNEL_MEMORY.items():
        if hc.get(key):
            warnings.append(f"berth-runtime does not apply {what} ({key}). Limitation discarded.")
            hc[key] = 0
    if hc.get("Cgroup"):
        warnings.append(CGROUP_WARNING)
        hc["Cgroup"] = ""
    return warnings


def check_volume_driver(hc: dict[str, Any], anonymous: list[str]) -> None:
    """VolumeDriver makes the container's new volumes: only `local` exists here, so another
    one is refused (as dockerd without that plugin) when a volume would be made."""
    driver = hc.get("VolumeDriver") or "local"
    if driver == "local":
        return
    new = [b.split(":", 1)[0] for b in hc.get("Binds") or [] if not b.startswith("/")] + list(anonymous)
    if new:
        name = new[0]
        raise InvalidParameter(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')


def check_windows_only(hc: dict[str, Any]) -> list[str]:
    """Windows' resource fields, answered as dockerd on Linux does: CPU count and percent
    dropped with a warning, I/O maximums and isolations other than default refused."""
    warnings = []
    for key, word in (("CpuCount", "count"), ("CpuPercent", "percent")):
        if (hc.get(key) or 0) > 0:
            warnings.append(f"linux does not support CPU {word}. {word.capitalize()} discarded.")
            hc[key] = 0
    if hc.get("IOMaximumBandwidth") or hc.get("IOMaximumIOps"):
        raise InvalidParameter("Invalid QoS settings: linux does not support Maximum IO Bandwidth or "
                               "Maximum IO IOps")
    if (hc.get("Isolation") or "default") != "default":
        raise InvalidParameter(f'invalid isolation: "{hc["Isolation"]}" - linux only supports \'default\'')
    return warnings


def check_blkio(hc: dict[str, Any]) -> list[str]:
    """Docker's block I/O checks: what the kernel cannot apply is dropped with Docker's
    warning (so an out-of-range weight on a kernel without weights is dropped, not refused,
    as dockerd does), then ranges and devices are checked."""
    if not (hc.get("BlkioWeight") or hc.get("BlkioWeightDevice") or any(hc.get(k) for k in BLKIO_THROTTLES)):
        return []
    support = blkio_support()
    warnings = []
    if hc.get("BlkioWeight") and not support.get("weight"):
        warnings.append(BLKIO_WEIGHT_WARNING)
        hc["BlkioWeight"] = 0
    weight = hc.get("BlkioWeight") or 0
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if hc.get("BlkioWeightDevice") and not support.get("weight_device"):
        warnings.append(BLKIO_WEIGHT_DEVICE_WARNING)
        hc["BlkioWeightDevice"] = []
    for key, (_, _, warning) in BLKIO_THROTTLES.items():
        if hc.get(key) and not support.get(key):
            warnings.append(warning)
            hc[key] = []
    for d in hc.get("BlkioWeightDevice") or []:
        if not 10 <= (d.get("Weight") or 0) <= 1000:
            raise InvalidParameter(f"invalid weight for device {d.get('Path')}: Range of blkio weight is "
                                   "from 10 to 1000")
    block_io(hc)               # every device path is a block device
    return warnings


def blkio_support() -> dict[str, bool]:
    """What the host's block I/O controller offers, as Docker's sysinfo sees it: keys
    "weight", "weight_device" and the BLKIO_THROTTLES fields."""
    from berth.runtime.cgroups import cgroup_mounts

    v2 = ""
    for fstype, mnt, _root, opts in cgroup_mounts():
        if fstype == "cgroup" and "blkio" in opts.split(","):
            out = {"weight": _any_file(mnt, "blkio.weight", "blkio.bfq.weight"),
                   "weight_device": _any_file(mnt, "blkio.weight_device", "blkio.bfq.weight_device")}
            out.update({key: _any_file(mnt, fname) for key, (_, fname, _) in BLKIO_THROTTLES.items()})
            return out
        if fstype == "cgroup2" and not v2:
            v2 = mnt
    try:
        with open(os.path.join(v2, "cgroup.controllers")) as f:
            io = "io" in f.read().split()
    except OSError:
        io = False
    return dict.fromkeys(("weight", "weight_device", *BLKIO_THROTTLES), io)


def _any_file(directory: str, *names: str) -> bool:
    return any(os.path.exists(os.path.join(directory, n)) for n in names)


def _errno_text(exc: OSError) -> str:
    """An errno as Go words it (lower case), as Docker's messages show it."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def _block_device(key: str, path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidParameter(f'invalid {key}: "{path}": {_errno_text(exc)}') from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidParameter(f'invalid {key}: "{path}" is not a block device')
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def block_io(hc: dict[str, Any]) -> dict[str, Any] | None:
    """The OCI linux.resources.blockIO for the HostConfig's Blkio* fields (None: none set)."""
    bio: dict[str, Any] = {}
    if hc.get("BlkioWeight"):
        bio["weight"] = int(hc["BlkioWeight"])
    fields = {"BlkioWeightDevice": ("weightDevice", "Weight", "weight")}
    fields.update({key: (oci, "Rate", "rate") for key, (oci, _, _) in BLKIO_THROTTLES.items()})
    for key, (oci, api_value, oci_value) in fields.items():
        devs = []
        for d in hc.get(key) or []:
            major, minor = _block_device(key, d.get("Path") or "")
            devs.append({"major": major, "minor": minor, oci_value: int(d.get(api_value) or 0)})
        if devs:
            bio[oci] = devs
    return bio or None


def check_cpu_realtime(hc: dict[str, Any]) -> list[str]:
    """Docker's real-time scheduler checks (cgroup v1 cpu.rt_*): unsupported -> dropped."""
    if not (hc.get("CpuRealtimePeriod") or hc.get("CpuRealtimeRuntime")):
        return []
    from berth.runtime.cgroups import cgroup_mounts

    warnings = []
    supported = any(fstype == "cgroup" and "cpu" in opts.split(",") and
                    os.path.exists(os.path.join(mnt, "cpu.rt_period_us"))
                    for fstype, mnt, _root, opts in cgroup_mounts())
    for key, word in (("CpuRealtimePeriod", "Period"), ("CpuRealtimeRuntime", "Runtime")):
        if (hc.get(key) or 0) > 0 and not supported:
            warnings.append(f"Your kernel does not support cgroup cpu real-time {word.lower()}. {word} discarded.")
            hc[key] = 0
    period, runtime = hc.get("CpuRealtimePeriod") or 0, hc.get("CpuRealtimeRuntime") or 0
    if period and runtime and runtime > period:
        raise InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")
    return warnings


def _device_node(path: str) -> dict[str, Any] | None:
    """The OCI device for the node at `path` (a symlink is not followed); None if `path`
    is not a device. Type, numbers, mode and owner are the host's, as Docker copies them."""
    st = os.lstat(path)
    kind = {stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFIFO: "p"}.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return {"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def check_device_mode(perms: str) -> None:
    if not 0 < len(perms) <= 3 or set(perms) - set("rwm") or len(set(perms)) != len(perms):
        raise InvalidParameter(f"invalid device mode: {perms}")


def devices_from_path(on_host: str, in_container: str, perms: str) -> tuple[list[dict], list[dict]]:
    """Docker's DevicesFromPath: the nodes and cgroup rules of one --device. A symlink is
    resolved first; a directory adds every device node below it, at the same place below
    `in_container`."""
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    nodes: list[dict[str, Any]] = []
    try:
        node = _device_node(resolved)
        reason = "not a device node"
    except OSError as exc:
        node, reason = None, _errno_text(exc)
    if node is not None:
        node["path"] = in_container
        nodes.append(node)
    elif os.path.isdir(resolved):
        for dirpath, dirnames, filenames in os.walk(resolved):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    child = _device_node(path)
                except OSError:
                    continue
                if child is not None:
                    child["path"] = path.replace(resolved, in_container, 1)
                    nodes.append(child)
    if not nodes:
        raise InvalidParameter(f'error gathering device information while adding custom device "{on_host}": '
                               f'{reason}')
    # a fifo needs no cgroup permission (the device controller knows only c and b)
    rules = [{"allow": True, "type": n["type"], "major": n["major"], "minor": n["minor"], "access": perms}
             for n in nodes if n["type"] in ("c", "b")]
    return nodes, rules


def parse_device_cgroup_rule(rule: str) -> dict[str, Any]:
    """`c 10:229 rwm` (Docker's --device-cgroup-rule grammar) -> an OCI allow rule."""
    m = DEVICE_CGROUP_RULE.match(rule)
    if m is None:
        raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
    kind, major, minor, access = m.groups()
    return {"allow": True, "type": kind, "major": -1 if major == "*" else int(major),
            "minor": -1 if minor == "*" else int(minor), "access": access}


def host_devices(hc: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(linux.devices, extra device cgroup rules) for HostConfig.Devices and
    DeviceCgroupRules; raises InvalidParameter with Docker's wording."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for d in hc.get("Devices") or []:
        on_host = d.get("PathOnHost") or ""
        in_container = d.get("PathInContainer") or on_host
        perms = d.get("CgroupPermissions") or "rwm"
        check_device_mode(perms)
        if not in_container.startswith("/"):
            raise InvalidParameter(f"bad format for path: {in_container}")
        more_nodes, more_rules = devices_from_path(on_host, in_container, perms)
        nodes += more_nodes
        rules += more_rules
    for rule in hc.get("DeviceCgroupRules") or []:
        rules.append(parse_device_cgroup_rule(rule))
    return nodes, rules


def init_binary(configured: str = "") -> str:
    """The host's init for --init: berthd's --init-path, else tini's static build (a
    dynamic one would not run in an image without its libc) or a docker-init on PATH."""
    for path in (configured,) if configured else INIT_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    if configured:
        raise InvalidParameter(f"--init: the daemon's init-path {configured!r} is not an executable file")
    found = shutil.which(INIT_BINARY)
    if found is None:
        raise InvalidParameter(f'--init: exec: "{INIT_BINARY}": executable file not found in $PATH '
                               "(install Debian's tini for /usr/bin/tini-static, or start berthd with --init-path)")
    return found
