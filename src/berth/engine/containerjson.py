"""Docker's JSON views of a container: `GET /containers/{id}/json` (inspect), the summary
`GET /containers/json` (ps) lists, and the filters of ps and `container prune`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.engine.container import Container
from berth.engine.humanize import ZERO_TIME, parse_time, status_string
from berth.errors import InvalidParameter

_NETWORK_DEFAULTS = {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
                     "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "IPAddress": "",
                     "IPv6Gateway": "", "MacAddress": "", "IPPrefixLen": 0, "GlobalIPv6PrefixLen": 0}


# what dockerd's releaseNetwork clears when a container stops (cleanOperationalData)
_OPERATIONAL = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ""}


def released_network_settings(ns: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings of a container whose network was torn down, as dockerd leaves them:
    no ports, and the operational data of each endpoint (and of the legacy top level)
    cleared; the sandbox's id and key, the network ids and aliases stay, and so does a MAC
    address the user asked for on that network."""
    wanted = ns.get("_aliases") or {}
    out = dict(ns, Ports={})
    out.update({k: v for k, v in _OPERATIONAL.items() if k in ns})
    networks = {}
    for name, ep in (ns.get("Networks") or {}).items():
        ep = dict(ep or {})
        ep.update({k: v for k, v in _OPERATIONAL.items() if k in ep})
        if "MacAddress" in ep:
            ep["MacAddress"] = str((wanted.get(name) or {}).get("MacAddress") or "")
        networks[name] = ep
    out["Networks"] = networks
    return out


def _args(c: Container) -> list[str]:
    return (c.config.get("Entrypoint") or []) + (c.config.get("Cmd") or [])


def inspect(c: Container, directory: Path, log_path: str, exec_ids: list[str]) -> dict[str, Any]:
    """`directory` is the container's (its hosts, hostname, resolv.conf)."""
    cfg = dict(c.config)
    cfg.setdefault("OnBuild", None)
    args = _args(c)
    ns = {k: v for k, v in c.network_settings.items() if not k.startswith("_")}
    ns.setdefault("Networks", {})
    ns.setdefault("Ports", {})
    ns.setdefault("SandboxKey", c.netns or "")
    for k, v in _NETWORK_DEFAULTS.items():
        ns.setdefault(k, v)
    state = dict(c.state)
    state["Running"] = state.get("Status") in ("running", "paused")
    return {
        "Id": c.id, "Created": c.created, "Path": args[0] if args else "", "Args": args[1:],
        "State": state, "Image": c.image_id,
        "ResolvConfPath": str(directory / "resolv.conf"), "HostnamePath": str(directory / "hostname"),
        "HostsPath": str(directory / "hosts"), "LogPath": log_path, "Name": "/" + c.name,
        "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux", "MountLabel": "",
        "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": exec_ids or None,
        "HostConfig": {**c.host_config, "Links": [link.shown(c.name) for link in c.links] or None},
        "GraphDriver": {"Name": "overlay2", "Data": {
            "MergedDir": c.rootfs, "UpperDir": str(Path(c.rootfs).parent / "upper") if c.rootfs else "",
            "WorkDir": str(Path(c.rootfs).parent / "work") if c.rootfs else "",
            "LowerDir": ":".join(c.lower_dirs)}},
        "Mounts": c.mounts, "Config": cfg, "NetworkSettings": ns,
    }


def summary(c: Container) -> dict[str, Any]:
    ports = []
    for cport, binds in (c.network_settings.get("Ports") or {}).items():
        num, _, proto = cport.partition("/")
        if binds:
            for b in binds:
                ports.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(num),
                              "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
        else:
            ports.append({"PrivatePort": int(num), "Type": proto or "tcp"})
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.config.get("Image", ""), "ImageID": c.image_id,
        "Command": " ".join(_args(c)), "Created": int(parse_time(c.created) or 0), "Ports": ports,
        "Labels": c.config.get("Labels") or {}, "State": c.state.get("Status", "created"),
        "Status": status_string(c.state), "HostConfig": _summary_host_config(c.host_config),
        "NetworkSettings": {"Networks": c.network_settings.get("Networks") or {}},
        "Mounts": c.mounts,
    }


def _summary_host_config(hc: dict[str, Any]) -> dict[str, Any]:
    """The summary's HostConfig: NetworkMode, and Annotations when set (dockerd's
    `omitempty`; the API leaves them out before 1.46)."""
    out: dict[str, Any] = {"NetworkMode": hc.get("NetworkMode", "default")}
    if hc.get("Annotations"):
        out["Annotations"] = dict(hc["Annotations"])
    return out


# `docker ps` filters dockerd accepts (daemon/list.go), and the values some of them take
PS_FILTERS = frozenset({"ancestor", "before", "exited", "id", "isolation", "label", "name", "status", "health",
                        "since", "volume", "network", "is-task", "publish", "expose"})
_STATES = frozenset({"created", "running", "paused", "restarting", "removing", "exited", "dead"})
_HEALTH = frozenset({"starting", "healthy", "unhealthy", "none"})


@dataclass
class PsFilter:
    """A ps request's filters, checked and folded as dockerd's foldFilter does."""

    filters: dict[str, list[str]]
    exited: set[int] = field(default_factory=set)
    publish: set[str] = field(default_factory=set)    # "8080/tcp": published (host) ports
    expose: set[str] = field(default_factory=set)     # "80/tcp": container ports
    before: str = ""                                  # container ids: list only older ones
    since: str = ""                                   # ... only newer ones
    all: bool = False                                 # a status filter lists stopped ones too


def fold_ps_filters(filters: dict[str, list[str]], container_id: Callable[[str], str]) -> PsFilter:
    """Check `filters` and fold them; `container_id(ref)` resolves before/since (raising
    NotFound as dockerd does). Bad keys and values are InvalidParameter in dockerd's words."""
    for key in filters:
        if key not in PS_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    pf = PsFilter(filters)
    for v in filters.get("exited", []):
        try:
            pf.exited.add(int(v))
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={v}'") from None
    for v in filters.get("status", []):
        if v not in _STATES:
            raise InvalidParameter(f"invalid filter 'status={v}'")
        pf.all = True
    for v in filters.get("health", []):
        if v not in _HEALTH:
            raise InvalidParameter(f"Unrecognised filter value for health: {v}")
    tasks = set(filters.get("is-task", []))
    if tasks and tasks not in ({"true"}, {"false"}):
        raise InvalidParameter(f"invalid filter 'is-task={sorted(tasks)[0]}'")
    for key, ports in (("publish", pf.publish), ("expose", pf.expose)):
        for v in filters.get(key, []):
            ports.update(_port_filter(key, v))
    for v in filters.get("before", []):
        pf.before = container_id(v)
    for v in filters.get("since", []):
        pf.since = container_id(v)
    return pf


def _port_filter(key: str, value: str) -> list[str]:
    """`80`, `80/udp`, `8000-8080/tcp` -> ["80/tcp", ...] (nat's default protocol is tcp)."""
    if ":" in value:
        raise InvalidParameter(f"filter for '{key}' should not contain ':': {value}")
    port, _, proto = value.partition("/")
    first, _, last = port.partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise InvalidParameter(f"error while looking up for {key} {value}: invalid port range") from None
    if not 0 <= start <= end <= 65535:
        raise InvalidParameter(f"error while looking up for {key} {value}: invalid port range")
    return [f"{n}/{(proto or 'tcp').lower()}" for n in range(start, end + 1)]


def listed(c: Container, stopped_too: bool, pf: PsFilter, image_id: Callable[[str], str | None]) -> bool:
    """Whether ps shows the container (`stopped_too`: ps -a, or a limit); `image_id(ref)`
    resolves an `ancestor` filter (None if unknown). before/since are the caller's: they
    depend on the listing's order."""
    filters = pf.filters
    st = c.state.get("Status", "created")
    nets = c.network_settings.get("Networks") or {}
    if not (stopped_too or pf.all) and st not in ("running", "paused", "restarting"):
        return False
    checks: dict[str, Callable[[list[str]], bool]] = {
        "status": lambda want: st in want,
        "id": lambda want: any(c.id.startswith(x) for x in want),
        "name": lambda want: any(_name_match(x, c.name) for x in want),
        "label": lambda want: match_labels(c, want),
        "exited": lambda want: st == "exited" and c.state.get("ExitCode") in pf.exited
                               and not str(c.state.get("StartedAt") or ZERO_TIME).startswith("0001-"),
        "ancestor": lambda want: any(_is_ancestor(c, a, image_id) for a in want),
        "health": lambda want: (c.state.get("Health") or {}).get("Status", "none") in want,
        "network": lambda want: any(w in nets or any(n.get("NetworkID", "").startswith(w) for n in nets.values())
                                    for w in want),
        "volume": lambda want: bool(({m.get("Name") or m.get("Source") for m in c.mounts}
                                     | {m.get("Destination") for m in c.mounts}) & set(want)),
        "is-task": lambda want: want[0] == "false",   # berth runs no swarm tasks
        "isolation": lambda want: (c.host_config.get("Isolation") or "default").lower() in want,
    }
    if not all(check(filters[key]) for key, check in checks.items() if filters.get(key)):
        return False
    if pf.publish or pf.expose:
        ports = summary(c)["Ports"]
        return any(f"{p.get('PublicPort', 0)}/{p['Type']}" in pf.publish
                   or f"{p['PrivatePort']}/{p['Type']}" in pf.expose for p in ports)
    return True


def prunable(c: Container, filters: dict[str, list[str]] | None) -> bool:
    """`container prune`: stopped containers matching the label and until filters."""
    if c.running or c.hidden or c.state.get("Status") == "restarting":
        return False
    if filters and not match_labels(c, filters.get("label", [])):
        return False
    until = (filters or {}).get("until")
    return not until or (parse_time(c.created) or 0) <= _parse_until(until[0])


def match_labels(c: Container, wanted: list[str]) -> bool:
    labels = c.config.get("Labels") or {}
    for lab in wanted:
        k, sep, v = lab.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _is_ancestor(c: Container, ref: str, image_id: Callable[[str], str | None]) -> bool:
    short = ref.removeprefix("sha256:")
    if ref in (c.image_id, c.config.get("Image")) or c.image_id.removeprefix("sha256:").startswith(short) \
            and len(short) >= 4:
        return True
    return image_id(ref) == c.image_id


def _name_match(pattern: str, name: str) -> bool:
    pattern = pattern.lstrip("/")
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


def _parse_until(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return parse_time(v) or time.time()
