"""`berth CMD --help` lists the flags `docker CMD --help` lists, with the same value types
(bytes, duration, map, ulimit, strings...), for every command both have. Flags docker has and
berth lacks are named below with the reason; help texts may differ.

Needs a docker CLI of version 25 or later (no daemon)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from support import venv_exe

DOCKER = next((b for b in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(b, os.X_OK)), None)
pytestmark = pytest.mark.skipif(DOCKER is None, reason="no docker CLI")

# `  -m, --memory bytes   Memory limit` -> ("memory", "m", "bytes")
_LINE = re.compile(r"^\s+(?:-(\w), )?--([\w-]+)(?: ([a-z0-9-]+))?(?:\s{2,}|$)")

# docker's flags berth does not have, and why (kept short: the report lists them too)
LACKING: dict[str, set[str]] = {
    "start": {"checkpoint", "checkpoint-dir"},                  # CRIU checkpoints: no daemon support
    "images": {"tree"}, "image ls": {"tree"},                    # multi-platform image index view
    "rmi": {"platform"}, "image rm": {"platform"},               # API 1.50 (berth speaks 1.45)
    "load": {"platform"}, "save": {"platform"}, "image inspect": {"platform"},  # API 1.48+
    "network connect": {"gw-priority"},                         # API 1.48
    "network create": {"config-from", "config-only", "ingress"},  # swarm / config-only networks
    "volume create": {"availability", "group", "limit-bytes", "required-bytes", "scope", "secret",
                      "sharing", "topology-preferred", "topology-required", "type"},  # swarm CSI volumes
    "volume ls": {"cluster"},                                   # swarm CSI volumes
    "builder prune": {"filter", "keep-storage"},                # BuildKit cache filters
}

COMMANDS = [
    "run", "create", "update", "exec", "build", "start", "attach", "stop", "restart", "kill", "rm",
    "ps", "logs", "wait", "top", "stats", "rename", "pause", "unpause", "port", "cp", "diff", "commit",
    "export", "images", "tag", "rmi", "history", "load", "save", "import", "pull", "push", "search",
    "login", "logout", "inspect", "version", "info", "events", "container inspect", "container prune",
    "container ls", "image inspect", "image prune", "image ls", "image rm", "network connect",
    "network create", "network disconnect", "network inspect", "network ls", "network prune",
    "network rm", "volume create", "volume inspect", "volume ls", "volume prune", "volume rm",
    "system df", "system info", "system prune", "system events", "builder prune",
]


def flags(argv: list[str]) -> dict[str, tuple[str, str]]:
    env = dict(os.environ, DOCKER_BUILDKIT="0", DOCKER_HOST="unix:///nonexistent", DOCKER_CLI_HINTS="false")
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    out: dict[str, tuple[str, str]] = {}
    in_options = False
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("Options:"):
            in_options = True
        elif line and not line.startswith(" "):
            in_options = False
        elif in_options and (m := _LINE.match(line)):
            out[m.group(2)] = (m.group(1) or "", m.group(3) or "")
    out.pop("help", None)
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_flags_and_value_types_match_docker(command: str) -> None:
    docker = flags([DOCKER, *command.split(), "--help"])
    berth = flags([venv_exe("berth"), *command.split(), "--help"])
    lacking = LACKING.get(command, set())
    assert not lacking - set(docker), f"docker no longer has {lacking - set(docker)}: update LACKING"
    missing = set(docker) - set(berth) - lacking
    assert not missing, f"berth {command} lacks {sorted(missing)}"
    differ = {f: (docker[f], berth[f]) for f in set(docker) & set(berth) if docker[f] != berth[f]}
    assert not differ, f"(docker, berth) shorthand and value type: {differ}"
    extra = set(berth) - set(docker)
    assert not extra, f"berth {command} shows flags docker does not: {sorted(extra)}"
