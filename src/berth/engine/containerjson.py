"""Docker's JSON views of a container: `GET /containers/{id}/json` (inspect), the summary
`GET /containers/json` (ps) lists, and the filters of ps and `container prune`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.engine.container import Container
from berth.engine.humanize import parse_time, status_string

_NETWORK_DEFAULTS = {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
                     "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "IPAddress": "",
                     "IPv6Gateway": "", "MacAddress": "", "IPPrefixLen": 0, "GlobalIPv6PrefixLen": 0}


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


def listed(c: Container, stopped_too: bool, filters: dict[str, list[str]],
           image_id: Callable[[str], str | None]) -> bool:
    """Whether ps shows the container (`stopped_too`: ps -a); `image_id(ref)` resolves an
    `ancestor` filter (None if unknown)."""
    st = c.state.get("Status", "created")
    if not stopped_too and not filters.get("status") and st not in ("running", "paused", "restarting"):
        return False
    checks: dict[str, Callable[[list[str]], bool]] = {
        "status": lambda want: st in want,
        "id": lambda want: any(c.id.startswith(x) for x in want),
        "name": lambda want: any(_name_match(x, c.name) for x in want),
        "label": lambda want: match_labels(c, want),
        "exited": lambda want: st == "exited" and str(c.state.get("ExitCode")) in want,
        "ancestor": lambda want: any(_is_ancestor(c, a, image_id) for a in want),
        "health": lambda want: (c.state.get("Health") or {}).get("Status", "none") in want,
        "network": lambda want: bool(set((c.network_settings.get("Networks") or {}).keys()) & set(want)),
        "volume": lambda want: bool(({m.get("Name") for m in c.mounts} | {m.get("Destination") for m in c.mounts})
                                    & set(want)),
    }
    return all(check(filters[key]) for key, check in checks.items() if filters.get(key))


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
