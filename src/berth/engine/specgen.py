"""Container configuration (Engine API create body) + image config -> OCI runtime config.

Pure functions except for reading the container rootfs' /etc/passwd and /etc/group.
Docker's defaults: capabilities, masked and read-only paths, /dev, /dev/pts, /dev/shm,
mqueue, sysfs, cgroup mounts, device cgroup rules, resource limits, cgroup path
`/<cgroup_parent>/<id>`, and the /etc/hosts, /etc/hostname, /etc/resolv.conf bind mounts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidParameter

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

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
