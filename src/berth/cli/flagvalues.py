"""Values of the container and build flags, parsed as the docker CLI parses them (pure).

Sizes (`32m`), durations (`1m30s`), ports (`-p`), volumes and `--mount`, ulimits, devices and
their rates, GPUs, security options, `--network` in its advanced form...: each parser
returns what the Engine API request carries and refuses a bad value with the docker CLI's
words (`UsageError`, exit status 125). `runconfig` puts them together into a create body.
"""

from __future__ import annotations

import os

from berth.cli.flags import UsageError, go_quote, invalid_argument

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any


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
