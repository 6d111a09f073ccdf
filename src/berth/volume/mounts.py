"""Mount specs (pure): `-v`/Binds strings, `--mount`/HostConfig.Mounts, `--tmpfs`, image
VOLUMEs, all turned into one `MountSpec` shape, plus the OCI mount and Docker `Mounts`
entry each becomes."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from berth.errors import InvalidParameter

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
# moby's validTmpfsOptions: the only TmpfsOptions.Options (API 1.46) a Mounts tmpfs takes
TMPFS_OPTIONS = ("exec", "noexec")
TMPFS_INVALID = 'invalid mount config for type "tmpfs": '


@dataclass
class MountSpec:
    type: str                  # volume | bind | tmpfs
    target: str
    source: str = ""           # volume name ("" = anonymous) or host path
    readonly: bool = False
    mode: str = ""             # the -v option string as given (z, Z, ro, nocopy...)
    propagation: str = ""
    nocopy: bool = False
    volume_options: dict[str, str] = field(default_factory=dict)
    volume_labels: dict[str, str] = field(default_factory=dict)
    tmpfs_options: list[str] = field(default_factory=list)
    create_host_path: bool = False   # -v /missing:/x creates it; --mount type=bind refuses
    from_image: bool = False


def check_volume_name(name: str) -> None:
    if not VOLUME_NAME.match(name):
        raise InvalidParameter(f"create {name}: {name!r} includes invalid characters for a local volume "
                               "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to "
                               "pass a host directory, use absolute path")


def _target(path: str, spec: str) -> str:
    if not path.startswith("/"):
        raise InvalidParameter(f"invalid mount config: mount path must be absolute: {path!r} (in {spec!r})")
    clean = posixpath.normpath(path)
    if clean == "/":
        raise InvalidParameter(f"invalid specification: destination can't be '/' in {spec!r}")
    return clean


def parse_bind(spec: str) -> MountSpec:
    """`-v NAME:/path[:opts]`, `-v /host:/path[:opts]`, `-v /path` (anonymous volume)."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise InvalidParameter(f"invalid volume specification: {spec!r}")
    if len(parts) == 1:
        return MountSpec("volume", _target(parts[0], spec))
    if len(parts) == 2 and not parts[1].startswith("/"):
        # "/path:ro" style: an anonymous volume with options is not valid in Docker either
        raise InvalidParameter(f"invalid volume specification: {spec!r}")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    m = MountSpec("bind" if src.startswith("/") else "volume", _target(dst, spec), mode=",".join(opts))
    if m.type == "bind":
        m.source = posixpath.normpath(src)
        m.create_host_path = True
    else:
        check_volume_name(src)
        m.source = src
    seen_rw = 0
    for o in opts:
        if o in ("ro", "rw"):
            m.readonly = o == "ro"
            seen_rw += 1
        elif o in ("z", "Z"):
            pass  # SELinux relabel: nothing to do on a host without SELinux
        elif o in PROPAGATIONS:
            if m.type != "bind":
                raise InvalidParameter(f"invalid volume specification: {spec!r}: propagation applies to binds only")
            m.propagation = o
        elif o == "nocopy":
            if m.type != "volume":
                raise InvalidParameter(f"invalid volume specification: {spec!r}: nocopy applies to volumes only")
            m.nocopy = True
        elif o in ("consistent", "cached", "delegated"):
            pass
        else:
            raise InvalidParameter(f"invalid mode: {o} (in {spec!r})")
    if seen_rw > 1:
        raise InvalidParameter(f"invalid mode: {parts[2]} (in {spec!r})")
    return m


def _truthy(v: str) -> bool:
    if v.lower() in ("", "1", "true"):
        return True
    if v.lower() in ("0", "false"):
        return False
    raise InvalidParameter(f"invalid boolean value {v!r}")


def parse_mount_flag(spec: str) -> dict:
    """`--mount type=...,source=...,target=...,...` (CLI) into an Engine API Mount object."""
    out: dict = {"Type": "volume"}
    vol: dict = {}
    tmpfs: dict = {}
    for item in spec.split(","):
        if not item:
            continue
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if key == "type":
            out["Type"] = val
        elif key in ("source", "src"):
            out["Source"] = val
        elif key in ("target", "destination", "dst"):
            out["Target"] = val
        elif key in ("readonly", "ro"):
            out["ReadOnly"] = _truthy(val if eq else "")
        elif key == "volume-nocopy":
            vol["NoCopy"] = _truthy(val if eq else "")
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            vol.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "volume-label":
            k, _, v = val.partition("=")
            vol.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            vol.setdefault("DriverConfig", {})["Name"] = val
        elif key == "bind-propagation":
            out.setdefault("BindOptions", {})["Propagation"] = val
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = _size(val)
        elif key == "tmpfs-mode":
            tmpfs["Mode"] = int(val, 8)
        elif key == "consistency":
            out["Consistency"] = val
        else:
            raise InvalidParameter(f"unexpected key {key!r} in {spec!r}")
    if vol:
        out["VolumeOptions"] = vol
    if tmpfs:
        out["TmpfsOptions"] = tmpfs
    return out


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([kmgKMG]?)[bB]?", text.strip())
    if not m:
        raise InvalidParameter(f"invalid size {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def from_api_mount(m: dict) -> MountSpec:
    """One HostConfig.Mounts entry."""
    kind = (m.get("Type") or "volume").lower()
    target = m.get("Target") or m.get("Destination") or ""
    if not target:
        raise InvalidParameter("invalid mount config: Target must not be empty")
    spec = MountSpec(kind, _target(target, target), source=m.get("Source") or "",
                     readonly=bool(m.get("ReadOnly")))
    # moby's validateExclusiveOptions: each type's options only on that type
    for field_, owner in (("BindOptions", "bind"), ("VolumeOptions", "volume"), ("TmpfsOptions", "tmpfs")):
        if kind != owner and m.get(field_) is not None and kind in ("bind", "volume", "tmpfs"):
            raise InvalidParameter(f"invalid mount config for type \"{kind}\": field {field_} must not be specified")
    if kind == "bind":
        if not spec.source:
            raise InvalidParameter("invalid mount config for type \"bind\": field Source must not be empty")
        if not spec.source.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: "
                                   f"{spec.source!r} mount path must be absolute")
        prop = (m.get("BindOptions") or {}).get("Propagation") or ""
        if prop and prop not in PROPAGATIONS:
            raise InvalidParameter(f"invalid propagation mode: {prop}")
        spec.propagation = prop
    elif kind == "volume":
        if spec.source:
            check_volume_name(spec.source)
        vo = m.get("VolumeOptions") or {}
        spec.nocopy = bool(vo.get("NoCopy"))
        spec.volume_labels = dict(vo.get("Labels") or {})
        dc = vo.get("DriverConfig") or {}
        if dc.get("Name") not in (None, "", "local"):
            raise InvalidParameter(f"volume driver {dc['Name']!r} is not available (only \"local\")")
        spec.volume_options = dict(dc.get("Options") or {})
    elif kind == "tmpfs":
        if spec.source:
            raise InvalidParameter(TMPFS_INVALID + "field Source must not be specified")
        to = m.get("TmpfsOptions") or {}
        if to.get("SizeBytes"):
            spec.tmpfs_options.append(f"size={int(to['SizeBytes'])}")
        if to.get("Mode"):
            spec.tmpfs_options.append(f"mode={int(to['Mode']):o}")
        spec.tmpfs_options += [tmpfs_option(o) for o in to.get("Options") or []]
    else:
        raise InvalidParameter(f"invalid mount config: mount type unknown: {kind!r}")
    return spec


def tmpfs_option(option: object) -> str:
    """One TmpfsOptions.Options entry (`["exec"]`, or a [name, value] pair) as the mount
    option it adds, checked as moby's validateTmpfsOptions checks it (only exec and noexec:
    they override the default noexec, as dockerd merges them after its defaults)."""
    if not isinstance(option, list) or not 1 <= len(option) <= 2:
        raise InvalidParameter(TMPFS_INVALID + "invalid option array length")
    if option[0] not in TMPFS_OPTIONS:
        raise InvalidParameter(f"{TMPFS_INVALID}invalid option: {option[0]}")
    return "=".join(str(o) for o in option)


def parse_tmpfs(target: str, options: str) -> MountSpec:
    """`--tmpfs /path[:opts]` (HostConfig.Tmpfs is {path: opts})."""
    if ":" in target and not options:
        target, _, options = target.partition(":")
    opts = [o for o in options.split(",") if o]
    ro = "ro" in opts
    opts = [o for o in opts if o not in ("ro", "rw")]
    return MountSpec("tmpfs", _target(target, target), readonly=ro, tmpfs_options=opts)


def oci_options(m: MountSpec) -> list[str]:
    if m.type == "tmpfs":
        opts = ["nosuid", "nodev", "noexec"]
        user = list(m.tmpfs_options)
        for u in user:
            if u in ("exec", "suid", "dev"):
                opts = [o for o in opts if o != "no" + u]
            elif u not in opts:
                opts.append(u)
        if not any(o.startswith("mode=") for o in opts):
            opts.append("mode=1777")
        return opts + (["ro"] if m.readonly else [])
    opts = ["rbind", "ro" if m.readonly else "rw"]
    opts.append(m.propagation or "rprivate")
    return opts


@dataclass
class MountPoint:
    """One prepared mount: `oci` is the OCI runtime-spec mount, `inspect` Docker's `Mounts`
    entry for container inspect."""

    oci: dict
    inspect: dict
