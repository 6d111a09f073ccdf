"""`run`/`create` flags -> the Engine API ContainerCreate body, as the docker CLI builds it (pure)."""

from __future__ import annotations

import os

from berth.cli.flags import (
    BOOL,
    FLOAT,
    INT,
    LIST,
    STR,
    UINT,
    UINT16,
    Flag,
    Parsed,
    UsageError,
    go_quote,
    invalid_argument,
)

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

CONTAINER_FLAGS: list[Flag] = [
    Flag("add-host", LIST, help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("annotation", LIST, shows="map", help="Add an annotation to the container"),
    Flag("attach", LIST, "a", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("blkio-weight", UINT16, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    Flag("blkio-weight-device", LIST, help="Block IO weight (relative device weight)"),
    Flag("cap-add", LIST, help="Add Linux capabilities"),
    Flag("cap-drop", LIST, help="Drop Linux capabilities"),
    Flag("cgroup-parent", STR, help="Optional parent cgroup for the container"),
    Flag("cgroupns", STR, help="Cgroup namespace to use (host|private)"),
    Flag("cidfile", STR, help="Write the container ID to the file"),
    Flag("cpu-count", INT, help="CPU count (Windows only)"),
    Flag("cpu-percent", INT, help="CPU percent (Windows only)"),
    Flag("cpu-period", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", INT, help="Limit CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", INT, help="Limit CPU real-time runtime in microseconds"),
    Flag("cpu-shares", INT, "c", help="CPU shares (relative weight)"),
    Flag("cpus", FLOAT, help="Number of CPUs"),
    Flag("cpuset-cpus", STR, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", STR, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("device", LIST, help="Add a host device to the container"),
    Flag("device-cgroup-rule", LIST, help="Add a rule to the cgroup allowed devices list"),
    Flag("device-read-bps", LIST, help="Limit read rate (bytes per second) from a device"),
    Flag("device-read-iops", LIST, help="Limit read rate (IO per second) from a device"),
    Flag("device-write-bps", LIST, help="Limit write rate (bytes per second) to a device"),
    Flag("device-write-iops", LIST, help="Limit write rate (IO per second) to a device"),
    # content trust (notary) is not implemented by berth; docker's own default is true
    Flag("disable-content-trust", BOOL, default=True, help="Skip image verification"),
    Flag("dns", LIST, help="Set custom DNS servers"),
    Flag("dns-option", LIST, help="Set DNS options"),
    Flag("dns-search", LIST, help="Set custom DNS search domains"),
    Flag("domainname", STR, help="Container NIS domain name"),
    Flag("entrypoint", STR, help="Overwrite the default ENTRYPOINT of the image"),
    Flag("env", LIST, "e", help="Set environment variables"),
    Flag("env-file", LIST, help="Read in a file of environment variables"),
    Flag("expose", LIST, help="Expose a port or a range of ports"),
    Flag("gpus", LIST, shows="gpu-request", help="GPU devices to add to the container ('all' to pass all GPUs)"),
    Flag("group-add", LIST, help="Add additional groups to join"),
    Flag("health-cmd", STR, help="Command to run to check health"),
    Flag("health-interval", STR, shows="duration", help="Time between running the check (ms|s|m|h)"),
    Flag("health-retries", INT, help="Consecutive failures needed to report unhealthy"),
    Flag("health-start-interval", STR, shows="duration", help="Time between running the check during the start period (ms|s|m|h)"),
    Flag("health-start-period", STR, shows="duration", help="Start period for the container to initialize"),
    Flag("health-timeout", STR, shows="duration", help="Maximum time to allow one check to run (ms|s|m|h)"),
    Flag("hostname", STR, "h", help="Container host name"),
    Flag("init", BOOL, help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", BOOL, "i", help="Keep STDIN open even if not attached"),
    Flag("io-maxbandwidth", STR, shows="bytes", help="Maximum IO bandwidth limit for the system drive (Windows only)"),
    Flag("io-maxiops", UINT, help="Maximum IOps limit for the system drive (Windows only)"),
    Flag("ip", STR, help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", STR, help="IPv6 address"),
    Flag("ipc", STR, help="IPC mode to use"),
    Flag("isolation", STR, help="Container isolation technology"),
    # validated as docker does, then not sent: API 1.42 and later have no kernel memory limit
    Flag("kernel-memory", STR, shows="bytes", help="Kernel memory limit"),
    Flag("label", LIST, "l", help="Set meta data on a container"),
    Flag("label-file", LIST, help="Read in a line delimited file of labels"),
    Flag("link", LIST, help="Add link to another container"),
    Flag("link-local-ip", LIST, help="Container IPv4/IPv6 link-local addresses"),
    Flag("log-driver", STR, help="Logging driver for the container"),
    Flag("log-opt", LIST, help="Log driver options"),
    Flag("mac-address", STR, help="Container MAC address"),
    Flag("memory", STR, "m", shows="bytes", help="Memory limit"),
    Flag("memory-reservation", STR, shows="bytes", help="Memory soft limit"),
    Flag("memory-swap", STR, shows="bytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    Flag("memory-swappiness", INT, default=-1, help="Tune container memory swappiness (0 to 100)"),
    Flag("mount", LIST, shows="mount", help="Attach a filesystem mount to the container"),
    Flag("name", STR, help="Assign a name to the container"),
    Flag("network", LIST, shows="network", help="Connect a container to a network"),
    Flag("net", LIST, hidden=True),
    Flag("network-alias", LIST, help="Add network-scoped alias for the container"),
    Flag("net-alias", LIST, hidden=True),
    Flag("no-healthcheck", BOOL, help="Disable any container-specified HEALTHCHECK"),
    Flag("oom-kill-disable", BOOL, help="Disable OOM Killer"),
    Flag("oom-score-adj", INT, help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("pid", STR, help="PID namespace to use"),
    Flag("pids-limit", INT, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("platform", STR, help="Set platform if server is multi-platform capable"),
    Flag("privileged", BOOL, help="Give extended privileges to this container"),
    Flag("publish", LIST, "p", help="Publish a container's port(s) to the host"),
    Flag("publish-all", BOOL, "P", help="Publish all exposed ports to random ports"),
    Flag("pull", STR, default="missing", help='Pull image before running ("always", "missing", "never")'),
    Flag("quiet", BOOL, "q", help="Suppress the pull output"),
    Flag("read-only", BOOL, help="Mount the container's root filesystem as read only"),
    Flag("restart", STR, default="no", help="Restart policy to apply when a container exits"),
    Flag("rm", BOOL, help="Automatically remove the container and its associated anonymous volumes when it exits"),
    Flag("runtime", STR, help="Runtime to use for this container"),
    Flag("security-opt", LIST, help="Security Options"),
    Flag("shm-size", STR, shows="bytes", help="Size of /dev/shm"),
    Flag("stop-signal", STR, help="Signal to stop the container"),
    Flag("stop-timeout", INT, help="Timeout (in seconds) to stop a container"),
    Flag("storage-opt", LIST, help="Storage driver options for the container"),
    Flag("sysctl", LIST, shows="map", help="Sysctl options"),
    Flag("tmpfs", LIST, help="Mount a tmpfs directory"),
    Flag("tty", BOOL, "t", help="Allocate a pseudo-TTY"),
    Flag("ulimit", LIST, shows="ulimit", help="Ulimit options"),
    Flag("use-api-socket", BOOL, help="Bind mount Docker API socket and required auth"),
    Flag("user", STR, "u", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("userns", STR, help="User namespace to use"),
    Flag("uts", STR, help="UTS namespace to use"),
    Flag("volume", LIST, "v", help="Bind mount a volume"),
    Flag("volume-driver", STR, help="Optional volume driver for the container"),
    Flag("volumes-from", LIST, help="Mount volumes from the specified container(s)"),
    Flag("workdir", STR, "w", help="Working directory inside the container"),
]

RUN_ONLY_FLAGS: list[Flag] = [
    Flag("detach", BOOL, "d", help="Run container in background and print container ID"),
    Flag("detach-keys", STR, help="Override the key sequence for detaching a container"),
    Flag("sig-proxy", BOOL, default=True, help="Proxy received signals to the process"),
]


_err = invalid_argument


# patterns compiled on first use (re's own cache): `import re` costs ~5 ms, paid only by
# the flags that need it
def ram_in_bytes(value: str, flag: str = "-m, --memory") -> int:
    """Docker's units.RAMInBytes: `32m`, `1g`, `512k`, `1.5GB`, `100` (bytes)."""
    from berth.humanize import ram_in_bytes as parse

    n = parse(value)
    if n is None:
        raise _err(flag, value, f"invalid size: '{value}'")
    return n


def swap_in_bytes(value: str) -> int:
    """--memory-swap: a size, or -1 for unlimited swap (docker's MemSwapBytes)."""
    return -1 if value == "-1" else ram_in_bytes(value, "--memory-swap")


_DURATION = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"
_DUR_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def duration_ns(value: str, flag: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    import re

    v = value.strip()
    if v == "0":
        return 0
    pos = 0
    total = 0.0
    for m in re.finditer(_DURATION, v):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_NS[m.group(2)]
        pos = m.end()
    if pos != len(v) or not v:
        raise _err(flag, value, f'time: invalid duration "{value}"')
    return int(total)


def parse_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise UsageError(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise UsageError(f"open {path}: {exc.strerror}") from None
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or " " in key.rstrip() or key != key.strip() and not eq:
            raise UsageError(f"{path}:{n}: variable '{key.strip()}' contains whitespaces")
        if eq:
            out.append(f"{key}={value}")
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def env_list(values: list[str]) -> list[str]:
    out = []
    for v in values:
        key, eq, _ = v.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {v}")
        if eq:
            out.append(v)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def labels(values: list[str], files: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in files:
        for line in parse_env_file(path):
            k, _, v = line.partition("=")
            out[k] = v
    for v in values:
        k, _, val = v.partition("=")
        if not k:
            raise UsageError(f"invalid label '{v}': empty name")
        out[k] = val
    return out


class PortBinding:
    __slots__ = ("host_ip", "host_port", "container_port")

    def __init__(self, host_ip: str, host_port: str, container_port: str) -> None:
        self.host_ip = host_ip
        self.host_port = host_port
        self.container_port = container_port     # e.g. "80/tcp"


def _port_range(s: str, what: str, spec: str) -> tuple[int, int]:
    lo, sep, hi = s.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise UsageError(f"invalid {what} port '{s}' in \"{spec}\"") from None
    if not (0 <= a <= 65535 and 0 <= b <= 65535) or b < a:
        raise UsageError(f"invalid {what} port '{s}' in \"{spec}\"")
    return a, b


def parse_publish(spec: str) -> list[PortBinding]:
    """`[ip:][hostPort:]containerPort[/proto]`, ranges allowed (`8000-8001:80-81`)."""
    rest, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid proto '{proto}' in \"{spec}\"")
    ip = ""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise UsageError(f"invalid IP address in \"{spec}\"")
        ip = rest[1:end]
        rest = rest[end + 1:].lstrip(":")
        parts = rest.split(":")
        parts = [""] * (2 - len(parts)) + parts if len(parts) < 2 else parts
        host, container = parts[0], parts[1]
    else:
        parts = rest.split(":")
        if len(parts) == 1:
            host, container = "", parts[0]
        elif len(parts) == 2:
            host, container = parts
        elif len(parts) == 3:
            ip, host, container = parts
        else:
            raise UsageError(f"invalid port format for --publish: \"{spec}\"")
    if ip:
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f"invalid IP address '{ip}' in \"{spec}\"") from None
    if not container:
        raise UsageError(f"no port specified: {spec}<empty>")
    c_lo, c_hi = _port_range(container, "container", spec)
    if host:
        h_lo, h_hi = _port_range(host, "host", spec)
        if (h_hi - h_lo) != (c_hi - c_lo) and h_hi != h_lo:
            raise UsageError(f"invalid ranges specified for container and host Ports: {container} and {host}")
    else:
        h_lo = h_hi = -1
    out = []
    for i, cp in enumerate(range(c_lo, c_hi + 1)):
        if h_lo < 0:
            hp = ""
        elif h_lo == h_hi and c_hi != c_lo:
            hp = str(h_lo)
        else:
            hp = str(h_lo + i)
        out.append(PortBinding(ip, hp, f"{cp}/{proto}"))
    return out


def parse_expose(spec: str) -> list[str]:
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    lo, hi = _port_range(rest, "", spec)
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def parse_restart(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name in ("", "no"):
        if count:
            raise UsageError(f"invalid restart policy '{value}': maximum retry count cannot be used with restart policy '{name or 'no'}'")
        return {"Name": "no", "MaximumRetryCount": 0}
    if name in ("always", "unless-stopped"):
        if count:
            raise UsageError(f"invalid restart policy '{value}': maximum retry count cannot be used with restart policy '{name}'")
        return {"Name": name, "MaximumRetryCount": 0}
    if name == "on-failure":
        n = 0
        if count:
            try:
                n = int(count)
            except ValueError:
                raise UsageError(f"invalid restart policy '{value}': maximum retry count must be an integer") from None
            if n < 0:
                raise UsageError(f"invalid restart policy '{value}': maximum retry count cannot be negative")
        return {"Name": "on-failure", "MaximumRetryCount": n}
    raise UsageError(f"invalid restart policy '{value}': use no, always, unless-stopped or on-failure[:max-retries]")


def parse_volume(spec: str) -> tuple[str | None, str]:
    """-v: returns (bind string for HostConfig.Binds or None, anonymous volume path or "")."""
    import re

    if not spec:
        raise UsageError("invalid empty volume spec")
    parts = spec.split(":")
    if len(parts) == 1:
        dest = parts[0]
        if not dest.startswith("/"):
            raise UsageError(f'invalid volume specification: \'{spec}\': invalid mount config for type "volume": '
                             "invalid mount path: '{dest}' mount path must be absolute".replace("{dest}", dest))
        return None, dest
    if len(parts) > 3:
        raise UsageError(f"invalid volume specification: '{spec}'")
    src, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not dest.startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': invalid mount config for type "
                         f"\"{'bind' if src.startswith(('/', '.')) else 'volume'}\": invalid mount path: "
                         f"'{dest}' mount path must be absolute")
    if not src:
        raise UsageError(f"invalid volume specification: '{spec}'")
    for m in filter(None, mode.split(",")):
        if m not in ("ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave",
                     "private", "rprivate", "consistent", "cached", "delegated"):
            raise UsageError(f"invalid volume specification: '{spec}': invalid mode: {m}")
    if src.startswith("."):
        src = os.path.abspath(src)
    elif not src.startswith("/") and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", src):
        raise UsageError(f'invalid volume specification: \'{spec}\': "{src}" includes invalid characters '
                         "for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. "
                         "If you intended to pass a host directory, use absolute path")
    return ":".join([src, dest] + ([mode] if mode else [])), ""


def parse_mount(spec: str) -> dict[str, Any]:
    """--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,...]"""
    import csv

    fields = next(csv.reader([spec]))
    m: dict[str, Any] = {"Type": "volume"}
    for f in fields:
        key, eq, value = f.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            if eq and value.lower() not in ("1", "true", "0", "false"):
                raise UsageError(f"invalid value for {key}: {value}")
            m["ReadOnly"] = not eq or value.lower() in ("1", "true")
            continue
        if key == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = not eq or value.lower() in ("1", "true")
            continue
        if not eq:
            raise UsageError(f"invalid field '{f}' must be a key=value pair")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs", "npipe", "cluster", "image"):
                raise UsageError(f"invalid mount type: '{value}'")
            m["Type"] = value
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "dst", "destination"):
            m["Target"] = value
        elif key == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "bind-recursive":
            pass
        elif key == "volume-driver":
            m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-label":
            k, _, v = value.partition("=")
            m.setdefault("VolumeOptions", {}).setdefault("Labels", {})[k] = v
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            dc = m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})
            dc.setdefault("Options", {})[k] = v
        elif key == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value, "--mount")
        elif key == "tmpfs-mode":
            try:
                m.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
            except ValueError:
                raise UsageError(f"invalid value for tmpfs-mode: {value}") from None
        elif key == "consistency":
            m["Consistency"] = value
        else:
            raise UsageError(f"unexpected key '{key}' in '{f}'")
    if not m.get("Target"):
        raise UsageError("target is required")
    if m["Type"] == "bind" and not m.get("Source"):
        raise UsageError("source is required when specifying bind mount")
    if m["Type"] == "bind" and m["Source"].startswith("."):
        m["Source"] = os.path.abspath(m["Source"])
    return m


_ULIMIT_TYPES = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                 "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}


def _parse_int64(text: str) -> int:
    """Go's strconv.ParseInt(text, 10, 64), its error as the message."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    n = int(text)
    if not -(1 << 63) <= n < 1 << 63:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return n


def _ulimit(value: str) -> dict[str, Any]:
    """go-units ParseUlimit: `name=soft[:hard]`, its errors."""
    name, eq, limits = value.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {value}")
    if name not in _ULIMIT_TYPES:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
    soft = _parse_int64(parts[0])
    hard = _parse_int64(parts[1]) if len(parts) == 2 else soft
    if soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_ulimit(value: str) -> dict[str, Any]:
    try:
        return _ulimit(value)
    except ValueError as exc:
        raise invalid_argument("--ulimit", value, str(exc)) from None


def parse_add_host(value: str) -> str:
    host, sep, ip = value.partition("=")
    if not sep:
        host, sep, ip = value.partition(":")
    if not sep or not host or not ip:
        raise UsageError(f'invalid argument "{value}" for "--add-host" flag: bad format for add-host: "{value}"')
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip != "host-gateway":
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(f'invalid argument "{value}" for "--add-host" flag: invalid IP address in add-host: "{ip}"') from None
    return f"{host}:{ip}"


def parse_device(value: str) -> dict[str, str]:
    parts = value.split(":")
    src = parts[0]
    dst = parts[1] if len(parts) > 1 and parts[1] else src
    perms = parts[2] if len(parts) > 2 else "rwm"
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


def _device_and_value(value: str, flag: str) -> tuple[str, str]:
    """`/dev/sda:VALUE` split as docker's blkio validators split it (at the first colon)."""
    path, sep, rest = value.partition(":")
    if not sep or not path:
        raise _err(flag, value, f"bad format: {value}")
    if not path.startswith("/dev/"):
        raise _err(flag, value, f"bad format for device path: {value}")
    return path, rest


def _uint(s: str, bits: int = 64) -> int | None:
    """Go's strconv.ParseUint(s, 10, bits); None where it fails."""
    if not s.isascii() or not s.isdigit() or int(s) >= 1 << bits:
        return None
    return int(s)


def parse_weight_device(value: str) -> dict[str, Any]:
    """--blkio-weight-device `/dev/sda:200`: 10 to 1000, or 0."""
    path, rest = _device_and_value(value, "--blkio-weight-device")
    weight = _uint(rest, 16)
    if weight is None or weight and not 10 <= weight <= 1000:
        raise _err("--blkio-weight-device", value, f"invalid weight for device: {value}")
    return {"Path": path, "Weight": weight}


def parse_bps_device(value: str, flag: str) -> dict[str, Any]:
    """--device-{read,write}-bps `/dev/sda:1mb`: a size (units.RAMInBytes)."""
    from berth.humanize import ram_in_bytes as parse

    path, rest = _device_and_value(value, flag)
    rate = parse(rest)
    if rate is None:
        raise _err(flag, value, f"invalid rate for device: {value}. The correct format is "
                   "<device-path>:<number>[<unit>]. Number must be a positive integer. "
                   "Unit is optional and can be kb, mb, or gb")
    return {"Path": path, "Rate": rate}


def parse_iops_device(value: str, flag: str) -> dict[str, Any]:
    """--device-{read,write}-iops `/dev/sda:1000`: a plain count."""
    path, rest = _device_and_value(value, flag)
    rate = _uint(rest)
    if rate is None:
        raise _err(flag, value, f"invalid rate for device: {value}. The correct format is "
                   "<device-path>:<number>. Number must be a positive integer")
    return {"Path": path, "Rate": rate}


def parse_device_cgroup_rule(value: str) -> str:
    """--device-cgroup-rule `c 1:3 mr` (type, major:minor or *, access)."""
    import re

    if not re.fullmatch(r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}", value):
        raise _err("--device-cgroup-rule", value, f"invalid device cgroup format '{value}'")
    return value


def go_csv_record(line: str) -> list[str]:
    """The first record of line as Go's encoding/csv reads it (strict quotes: `""` inside a
    quoted field, no bare quote elsewhere), failing with Go's words."""
    if not line:
        raise ValueError("EOF")
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            parts: list[str] = []
            j = i + 1
            while True:
                q = line.find('"', j)
                if q < 0:
                    raise ValueError(f'parse error on line 1, column {n + 1}: extraneous or missing " in quoted-field')
                parts.append(line[j:q])
                if line[q + 1:q + 2] == '"':      # an escaped quote
                    parts.append('"')
                    j = q + 2
                    continue
                if q + 1 < n and line[q + 1] != ",":
                    raise ValueError(f'parse error on line 1, column {q + 1}: extraneous or missing " in quoted-field')
                break
            fields.append("".join(parts))
            if q + 1 >= n:
                return fields
            i = q + 2
            continue
        end = line.find(",", i)
        end = n if end < 0 else end
        field = line[i:end]
        if '"' in field:
            raise ValueError(f'parse error on line 1, column {i + field.index(chr(34)) + 1}: bare " in non-quoted-field')
        fields.append(field)
        if end == n:
            return fields
        i = end + 1


def _gpu_count(s: str, value: str) -> int:
    if s == "all":
        return -1
    import re

    why = "invalid syntax"
    if re.fullmatch(r"[+-]?[0-9]+", s):
        if -(1 << 63) <= int(s) < 1 << 63:
            return int(s)
        why = "value out of range"
    raise _err("--gpus", value, f'invalid count ({s}): value must be either "all" or an integer: {why}')


def parse_gpus(value: str) -> dict[str, Any]:
    """--gpus `all`, `2`, `"device=0,2",capabilities=compute`, `driver=nvidia,options=k=v`:
    one HostConfig.DeviceRequests entry, as the docker CLI's GpuOpts builds it."""
    try:
        fields = go_csv_record(value)
    except ValueError as exc:
        raise _err("--gpus", value, str(exc)) from None
    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None, "Options": None}
    seen: set[str] = set()
    for field in fields:
        key, eq, val = field.partition("=")
        if key in seen:
            raise _err("--gpus", value, f"gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:   # a bare word is the count
            seen.add("count")
            req["Count"] = _gpu_count(key, value)
        elif key == "driver":
            req["Driver"] = val
        elif key == "count":
            req["Count"] = _gpu_count(val, value)
        elif key == "device":
            req["DeviceIDs"] = val.split(",")
        elif key == "capabilities":
            req["Capabilities"] = [[*val.split(","), "gpu"]]
        elif key == "options":
            try:
                opts = go_csv_record(val)
            except ValueError as exc:
                raise _err("--gpus", value, f"failed to read gpu options: {exc}") from None
            req["Options"] = {k: v for k, _, v in (o.partition("=") for o in opts)}
        else:
            raise _err("--gpus", value, f"unexpected key '{key}' in '{field}'")
    if "count" not in seen and req["DeviceIDs"] is None:
        req["Count"] = 1
    if req["Options"] is None:
        req["Options"] = {}
    if req["Capabilities"] is None:
        req["Capabilities"] = [["gpu"]]
    return req


def _seccomp_profile(path: str) -> str:
    """The docker CLI sends a seccomp profile file's JSON (compacted), not its path."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        why = "no such file or directory" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc)).lower()
        raise UsageError(f"opening seccomp profile ({path}) failed: open {path}: {why}") from None
    import json

    try:
        return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
    except ValueError as exc:
        raise UsageError(f"compacting json for seccomp profile ({path}) failed: {exc}") from None


def parse_security_opts(values: list[str]) -> tuple[list[str], list[str] | None]:
    """--security-opt as the docker CLI checks and sends them: (SecurityOpt, the value for
    MaskedPaths and ReadonlyPaths: [] under `systempaths=unconfined`, else None)."""
    out: list[str] = []
    unmasked: list[str] | None = None
    for opt in values:
        if opt == "systempaths=unconfined":    # handled client-side, never sent as an option
            unmasked = []
            continue
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise UsageError(f"Invalid --security-opt: {go_quote(opt)}")
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            opt = f"seccomp={_seccomp_profile(value)}"
        out.append(opt)
    return out, unmasked


def normalized_caps(values: list[str]) -> list[str] | None:
    """--cap-add/--cap-drop as the docker CLI sends them: upper case, `CAP_` prefixed (but
    `ALL`), each once, sorted."""
    caps = set()
    for v in values:
        c = v.upper()
        caps.add(c if c == "ALL" or c.startswith("CAP_") else f"CAP_{c}")
    return sorted(caps) or None


def refuse_windows_only(o: Parsed) -> None:
    """Windows-only resources, refused as the docker CLI refuses them on a Linux daemon
    (berth's always is one), with exit status 1 even under `run`."""
    from berth.cli.client import CLIError

    if o.io_maxbandwidth:   # a malformed size is refused first, as pflag does (exit 125)
        ram_in_bytes(o.io_maxbandwidth, "--io-maxbandwidth")
    for flag in ("cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops"):
        if flag.replace("-", "_") in o.given:
            raise CLIError(f'"--{flag}" is only supported on a Docker daemon running on windows, '
                           "but the Docker daemon is running on linux")


_NETWORK_KEYS = {"name": "Target", "alias": "Aliases", "ip": "IPv4Address", "ip6": "IPv6Address",
                 "mac-address": "MacAddress", "link-local-ip": "LinkLocalIPs", "driver-opt": "DriverOpts",
                 "gw-priority": "GwPriority"}


def parse_network(value: str) -> dict[str, Any]:
    """One --network value: a network, or docker's advanced form
    `name=NET,alias=A,ip=..,ip6=..,mac-address=..,link-local-ip=..,driver-opt=K=V` (fields
    read as the docker CLI reads them: CSV, lower-cased)."""
    if "=" not in value:
        return {"Target": value}
    import re  # here: `run` without an advanced --network never pays for it

    if not re.search(r"\w+=\w+(,\w+=\w+)*", value):
        return {"Target": value}
    try:
        fields = go_csv_record(value)
    except ValueError as exc:
        raise UsageError(f'invalid argument "{value}" for "--network" flag: {exc}') from None
    att: dict[str, Any] = {"Target": "", "Aliases": [], "LinkLocalIPs": [], "DriverOpts": {}}
    for f in fields:
        key, eq, val = f.lower().partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f'invalid argument "{value}" for "--network" flag: invalid field {f}')
        if key not in _NETWORK_KEYS:
            raise UsageError(f'invalid argument "{value}" for "--network" flag: invalid field key {key}')
        name = _NETWORK_KEYS[key]
        if name in ("Aliases", "LinkLocalIPs"):
            att[name].append(val)
        elif name == "DriverOpts":
            k, eq2, v = val.partition("=")
            if not eq2:
                raise UsageError(f'invalid argument "{value}" for "--network" flag: invalid key value pair '
                                 f'format in driver options')
            att[name][k.strip()] = v.strip()
        elif name == "GwPriority":
            try:
                att[name] = int(val)
            except ValueError:
                raise UsageError(f'invalid argument "{value}" for "--network" flag: invalid gw-priority: '
                                 f'{val}') from None
        else:
            att[name] = val
    if not att["Target"]:
        raise UsageError(f'invalid argument "{value}" for "--network" flag: network name/id is not specified')
    return att


def _user_defined(network: str) -> bool:
    return network not in ("", "default", "bridge", "host", "none") and not network.startswith("container:")


def network_endpoints(attachments: list[dict[str, Any]], o: Parsed) -> dict[str, Any]:
    """EndpointsConfig as the docker CLI makes it: one entry per --network (the first gets
    --network-alias, --ip, --ip6, --mac-address, --link-local-ip, and --link on a
    user-defined network), `default` when there is no --network and those flags are given;
    a single --network without settings gets none (the daemon makes its endpoint)."""
    aliases = o.network_alias + o.net_alias
    legacy = {"Aliases": aliases, "IPv4Address": o.ip or "", "IPv6Address": o.ip6 or "",
              "MacAddress": o.mac_address or "", "LinkLocalIPs": list(o.link_local_ip)}
    if not attachments:
        attachments = [{"Target": "default"}] if any(legacy.values()) else []
    conflicts = (("Aliases", "--network-alias and per-network alias"), ("IPv4Address", "--ip and per-network IPv4 address"),
                 ("IPv6Address", "--ip6 and per-network IPv6 address"),
                 ("MacAddress", "--mac-address and per-network MAC address"),
                 ("LinkLocalIPs", "--link-local-ip and per-network link-local IP addresses"))
    endpoints: dict[str, Any] = {}
    kinds = set()
    for i, att in enumerate(attachments):
        att = dict(att)
        target = att["Target"]
        kinds.add(_user_defined(target))
        if i == 0:
            for key, words in conflicts:
                if att.get(key) and legacy[key]:
                    raise UsageError(f"conflicting options: cannot specify both {words}")
                if legacy[key]:
                    att[key] = legacy[key]
            if o.link and _user_defined(target):
                att["Links"] = list(o.link)
        ep: dict[str, Any] = {}
        for key in ("Aliases", "Links", "DriverOpts", "MacAddress", "GwPriority"):
            if att.get(key):
                ep[key] = att[key]
        ipam = {k: att[k] for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs") if att.get(k)}
        if ipam:
            ep["IPAMConfig"] = ipam
        if target in endpoints:
            raise UsageError(f'network "{target}" is specified multiple times')
        if i == 0 and len(attachments) == 1 and not ep and target != "default":
            continue   # docker leaves a lone network without settings to the daemon
        endpoints[target] = ep
    if len(kinds) > 1:
        raise UsageError("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return endpoints


def create_body(o: Parsed, image: str, cmd: list[str], detach: bool = False) -> dict[str, Any]:
    """The ContainerCreate JSON for these parsed run/create flags."""
    if o.memory_swappiness is not None and o.memory_swappiness != -1 and not 0 <= o.memory_swappiness <= 100:
        raise UsageError(f"invalid value: {o.memory_swappiness}. Valid memory swappiness range is 0-100")
    env: list[str] = []
    for path in o.env_file:
        env += parse_env_file(path)
    env += env_list(o.env)

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in o.publish:
        for b in parse_publish(spec):
            exposed[b.container_port] = {}
            bindings.setdefault(b.container_port, []).append({"HostIp": b.host_ip, "HostPort": b.host_port})
    for spec in o.expose:
        for p in parse_expose(spec):
            exposed.setdefault(p, {})

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in o.volume:
        bind, anon = parse_volume(spec)
        if bind:
            binds.append(bind)
        else:
            volumes[anon] = {}
    tmpfs: dict[str, str] = {}
    for spec in o.tmpfs:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise UsageError(f"invalid tmpfs specification '{spec}': mount path must be absolute")
        tmpfs[path] = opts

    memory = ram_in_bytes(o.memory) if o.memory else 0
    swap = 0
    if o.memory_swap:
        swap = swap_in_bytes(o.memory_swap)
    if memory and memory < 6 * 1024 * 1024:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory and swap < memory:
        raise UsageError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if o.cpus is not None and o.cpus < 0:
        raise UsageError(f'invalid argument "{o.cpus}" for "--cpus" flag: must be a non-negative number')
    if o.cpus is not None and (o.cpu_period or o.cpu_quota):
        raise UsageError("Conflicting options: Nano CPUs and CPU Period cannot both be set")

    restart = parse_restart(o.restart or "no")
    # --rm: the daemon removes the container when it exits (AutoRemove); in the foreground
    # the CLI registers a `wait?condition=removed` before start to read the exit status.
    autoremove = bool(o.opts.get("rm"))
    if o.opts.get("rm") and restart["Name"] != "no":
        raise UsageError("conflicting options: cannot specify both --restart and --rm")

    attach = [a.lower() for a in o.attach]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise UsageError(f"invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
    if detach and attach:
        raise UsageError("conflicting options: cannot specify both --attach and --detach")
    if detach:
        a_in = a_out = a_err = False
    elif attach:
        # -i attaches stdin whatever -a says, as the docker CLI does
        a_in, a_out, a_err = "stdin" in attach or o.interactive, "stdout" in attach, "stderr" in attach
    else:
        a_in, a_out, a_err = o.interactive, True, True

    attachments = [parse_network(v) for v in o.network + o.net]
    network = attachments[0]["Target"] if attachments else ""
    aliases = o.network_alias + o.net_alias
    entrypoint: list[str] | None = None
    if o.entrypoint:
        entrypoint = [o.entrypoint]
    elif "entrypoint" in o.given:
        entrypoint = [""]

    healthcheck: dict[str, Any] | None = None
    health_set = (o.health_cmd or o.health_interval or o.health_timeout or o.health_retries
                  or o.health_start_period or o.health_start_interval)
    if o.no_healthcheck:
        if health_set:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        healthcheck = {"Test": ["NONE"]}
    elif health_set:
        healthcheck = {}
        if o.health_cmd:
            healthcheck["Test"] = ["CMD-SHELL", o.health_cmd]
        if o.health_interval:
            healthcheck["Interval"] = duration_ns(o.health_interval, "--health-interval")
        if o.health_timeout:
            healthcheck["Timeout"] = duration_ns(o.health_timeout, "--health-timeout")
        if o.health_start_period:
            healthcheck["StartPeriod"] = duration_ns(o.health_start_period, "--health-start-period")
        if o.health_retries:
            healthcheck["Retries"] = o.health_retries
        if o.health_start_interval:
            healthcheck["StartInterval"] = duration_ns(o.health_start_interval, "--health-start-interval")

    log_config: dict[str, Any] = {"Type": o.log_driver or "", "Config": {}}
    for opt in o.log_opt:
        k, _, v = opt.partition("=")
        log_config["Config"][k] = v
    sysctls = {}
    for s in o.sysctl:
        k, eq, v = s.partition("=")
        if not eq:
            raise UsageError(f'invalid argument "{s}" for "--sysctl" flag: sysctl \'{s}\' is not allowed')
        sysctls[k] = v
    storage_opt = {}
    for s in o.storage_opt:
        k, _, v = s.partition("=")
        storage_opt[k] = v

    security_opt, unmasked = parse_security_opts(o.security_opt)
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": o.cidfile or "",
        "LogConfig": log_config,
        "NetworkMode": network or "default",
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": autoremove,
        "VolumeDriver": o.volume_driver or "",
        "VolumesFrom": o.volumes_from or None,
        "CapAdd": normalized_caps(o.cap_add),
        "CapDrop": normalized_caps(o.cap_drop),
        "CgroupnsMode": o.cgroupns or "",
        "Dns": o.dns,
        "DnsOptions": o.dns_option,
        "DnsSearch": o.dns_search,
        "ExtraHosts": [parse_add_host(h) for h in o.add_host] or None,
        "GroupAdd": o.group_add or None,
        "IpcMode": o.ipc or "",
        "Links": o.link or None,
        "OomScoreAdj": o.oom_score_adj or 0,
        "PidMode": o.pid or "",
        "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": security_opt or None,
        "StorageOpt": storage_opt or None,
        "Tmpfs": tmpfs or None,
        "UTSMode": o.uts or "",
        "UsernsMode": o.userns or "",
        "ShmSize": ram_in_bytes(o.shm_size, "--shm-size") if o.shm_size else 0,
        "Sysctls": sysctls or None,
        "Runtime": o.runtime or "",
        "Isolation": o.isolation or "",
        "CpuShares": o.cpu_shares or 0,
        "Memory": memory,
        "NanoCpus": int(round(o.cpus * 1e9)) if o.cpus else 0,
        "CgroupParent": o.cgroup_parent or "",
        "CpuPeriod": o.cpu_period or 0,
        "CpuQuota": o.cpu_quota or 0,
        "CpuRealtimePeriod": o.cpu_rt_period or 0,
        "CpuRealtimeRuntime": o.cpu_rt_runtime or 0,
        "BlkioWeight": o.blkio_weight or 0,
        "BlkioWeightDevice": [parse_weight_device(d) for d in o.blkio_weight_device] or None,
        "BlkioDeviceReadBps": [parse_bps_device(d, "--device-read-bps") for d in o.device_read_bps] or None,
        "BlkioDeviceWriteBps": [parse_bps_device(d, "--device-write-bps") for d in o.device_write_bps] or None,
        "BlkioDeviceReadIOps": [parse_iops_device(d, "--device-read-iops") for d in o.device_read_iops] or None,
        "BlkioDeviceWriteIOps": [parse_iops_device(d, "--device-write-iops") for d in o.device_write_iops] or None,
        "DeviceCgroupRules": [parse_device_cgroup_rule(r) for r in o.device_cgroup_rule] or None,
        "DeviceRequests": [parse_gpus(g) for g in o.gpus] or None,
        "CpusetCpus": o.cpuset_cpus or "",
        "CpusetMems": o.cpuset_mems or "",
        "Devices": [parse_device(d) for d in o.device],
        "MemoryReservation": ram_in_bytes(o.memory_reservation, "--memory-reservation") if o.memory_reservation else 0,
        "MemorySwap": swap,
        "MemorySwappiness": None if o.memory_swappiness in (None, -1) else o.memory_swappiness,
        "OomKillDisable": o.oom_kill_disable,
        "PidsLimit": o.pids_limit,
        "Ulimits": [parse_ulimit(u) for u in o.ulimit] or None,
        "Mounts": [parse_mount(m) for m in o.mount] or None,
        "Init": True if o.init else None,
    }
    if unmasked is not None:
        host_config["MaskedPaths"] = host_config["ReadonlyPaths"] = unmasked
    if o.annotation:
        host_config["Annotations"] = dict(a.partition("=")[::2] for a in o.annotation)
    if o.kernel_memory:
        ram_in_bytes(o.kernel_memory, "--kernel-memory")   # refused as docker does, never sent
    if aliases and (network in ("", "default", "bridge", "host", "none") or network.startswith("container:")):
        raise UsageError("network-scoped aliases are only supported for user-defined networks")
    endpoints = network_endpoints(attachments, o)
    body: dict[str, Any] = {
        "Hostname": o.hostname or "",
        "Domainname": o.domainname or "",
        "User": o.user or "",
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "ExposedPorts": exposed or None,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive and a_in,
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": o.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": labels(o.label, o.label_file),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if o.stop_signal:
        body["StopSignal"] = o.stop_signal
    if "stop_timeout" in o.given:
        body["StopTimeout"] = o.stop_timeout
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if o.mac_address:
        body["MacAddress"] = o.mac_address
    if o.workdir and not o.workdir.startswith("/"):
        raise UsageError(f"the working directory '{o.workdir}' is invalid, it needs to be an absolute path")
    return body
