"""`docker ps --filter` through berthd beside Debian's dockerd: the same containers made on
both, the same filters asked of both, the same names listed (before, since, publish, expose,
exited, status, is-task, isolation, limit), and dockerd's refusals (unknown key, bad values,
a before/since container that does not exist). A stopped container lists no ports, as on
dockerd, so `expose`/`publish` match running containers only."""

from __future__ import annotations

import secrets

import pytest

from support import free_port

pytestmark = [pytest.mark.root]

QUERIES = [
    [], ["-a"], ["-n", "2"],
    ["-a", "--filter", "before={b}"], ["-a", "--filter", "since={b}"], ["--filter", "before={c}"],
    ["-a", "--filter", "publish={p}"], ["-a", "--filter", "publish={p}-{p2}/tcp"], ["-a", "--filter", "publish={p}/udp"],
    ["-a", "--filter", "publish=80"], ["-a", "--filter", "expose=80"], ["-a", "--filter", "expose=53/udp"],
    ["-a", "--filter", "expose=80/udp"],
    ["-a", "--filter", "exited=3"], ["-a", "--filter", "exited=0"], ["--filter", "status=exited"],
    ["-a", "--filter", "is-task=false"], ["-a", "--filter", "is-task=true"],
    ["-a", "--filter", "isolation=default"],
]
REFUSED = [
    (["--filter", "colour=red"], "invalid filter 'colour'"),
    (["--filter", "status=sleeping"], "invalid filter 'status=sleeping'"),
    (["--filter", "health=sick"], "Unrecognised filter value for health: sick"),
    (["--filter", "publish=1:80"], "filter for 'publish' should not contain ':': 1:80"),
    (["--filter", "before=no-such-container-{tag}"], "such container"),
]


def _names(engine, args: list[str]) -> list[str]:  # noqa: ANN001 - a daemon or dockerd handle
    r = engine.docker("ps", "--format", "{{.Names}}", *args)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout.split()


def _make(engine, tag: str, port: int) -> dict[str, str]:  # noqa: ANN001
    """Four containers, oldest first: a (exited 3), b (exited 0, exposes 53/udp), c (running,
    -p PORT:80), d (created, never started)."""
    names = {k: f"psf-{k}-{tag}" for k in "abcd"}
    runs = [["run", "--name", names["a"], "busybox", "sh", "-c", "exit 3"],
            ["run", "--name", names["b"], "--expose", "53/udp", "busybox", "true"],
            ["run", "-d", "--name", names["c"], "-p", f"{port}:80", "busybox", "sleep", "300"],
            ["create", "--name", names["d"], "busybox", "true"]]
    for args in runs:
        r = engine.docker(*args)
        assert r.returncode in (0, 3), (args, r.stderr)
    return names


def test_ps_filters_list_what_dockerd_lists(daemon, dockerd, busybox_image) -> None:  # noqa: ANN001
    tag = secrets.token_hex(3)
    made: dict[str, dict[str, str]] = {}
    ports = {"berth": free_port(), "dockerd": free_port()}
    try:
        for label, engine in (("berth", daemon), ("dockerd", dockerd)):
            made[label] = _make(engine, tag, ports[label])
        for query in QUERIES:
            got = {}
            for label, engine in (("berth", daemon), ("dockerd", dockerd)):
                names = made[label]
                args = [a.format(b=names["b"], c=names["c"], p=ports[label], p2=ports[label] + 5) for a in query]
                # each engine's own containers only (the session's dockerd and berthd have others)
                got[label] = [n for n in _names(engine, args) if n in names.values()]
            assert got["berth"] == got["dockerd"], (query, got)
        for args, says in REFUSED:
            for engine in (daemon, dockerd):
                r = engine.docker("ps", *[a.format(tag=tag) for a in args])
                # dockerd 20.10 says "Invalid filter", moby 23+ (which berth follows) "invalid filter"
                assert r.returncode != 0 and says.format(tag=tag).lower() in r.stderr.lower(), (args, r.stderr)
    finally:
        for label, engine in (("berth", daemon), ("dockerd", dockerd)):
            if label in made:
                engine.docker("rm", "-f", *made[label].values())


def test_limit_counts_listed_containers_only(daemon, busybox_image) -> None:  # noqa: ANN001
    tag = secrets.token_hex(3)
    names = _make(daemon, tag, free_port())
    try:
        listed = [n for n in _names(daemon, ["-a"]) if n in names.values()]
        assert listed == [names[k] for k in "dcba"]   # newest first
        two = _names(daemon, ["-a", "--filter", f"name=psf-.-{tag}", "-n", "2"])
        assert two == [names["d"], names["c"]]
    finally:
        daemon.docker("rm", "-f", *names.values())
