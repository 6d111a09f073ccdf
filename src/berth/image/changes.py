"""Dockerfile-style `--change` instructions applied to an image config, as `docker import`
and `docker commit` accept them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
USER, VOLUME, WORKDIR (and SHELL)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from berth.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR", "SHELL")


def _json_or_shell(rest: str, shell: list[str]) -> list[str]:
    s = rest.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return [*shell, s]


def _pairs(rest: str, what: str) -> dict[str, str]:
    words = shlex.split(rest)
    out: dict[str, str] = {}
    if words and "=" not in words[0]:
        if len(words) < 2 and what == "ENV":
            raise InvalidParameter(f"{what} needs a name and a value")
        key, _, value = rest.strip().partition(" ")
        out[key] = value.strip()
        return out
    for w in words:
        if "=" not in w:
            raise InvalidParameter(f"{what}: {w!r} is not of the form key=value")
        k, _, v = w.partition("=")
        out[k] = v
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply each change line to the container config (`Env`, `Cmd`...); returns it."""
    cfg = dict(config)
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr not in ALLOWED:
            raise InvalidParameter(f"{instr} is not a valid change command")
        shell = cfg.get("Shell") or ["/bin/sh", "-c"]
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest, shell)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest, shell)
        elif instr == "SHELL":
            v = _json_or_shell(rest, [])
            if not rest.strip().startswith("["):
                raise InvalidParameter("SHELL requires the JSON form")
            cfg["Shell"] = v
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(rest, "ENV").items():
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(rest, "LABEL"))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(rest, []) if rest.strip().startswith("[") else rest.split():
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = rest.strip()
        elif instr == "USER":
            cfg["User"] = rest.strip()
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = rest.strip()
        elif instr == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), rest.strip()]
    return cfg
