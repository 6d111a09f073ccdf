"""Legacy `--link` across `docker rename`, through berthd with the docker CLI. A link holds its
target by ID: renaming the target or the linker keeps it working, inspect shows the names as
they are now, and a removed target stays in the link under its last name (the linker no
longer starts, even when another container takes that name). The expected behaviour and
wording are dockerd's, as observed with the isolated dockerd fixture."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fixtures.daemon import private_daemon
from support import RunNames, private_names

pytestmark = pytest.mark.root

SHOW = "grep -v localhost /etc/hosts; env"


def _ok(d, *args: str) -> str:  # noqa: ANN001 - a DaemonHandle
    res = d.docker(*args)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res.stdout


def _inspect(d, name: str) -> dict:  # noqa: ANN001
    return json.loads(_ok(d, "inspect", name))[0]


def _hosts(output: str) -> dict[str, str]:
    """/etc/hosts lines of `output`: name -> address."""
    return {name: line.split()[0] for line in output.splitlines() if "\t" in line for name in line.split()[1:]}


def _check_linked(output: str, ip: str, names: tuple[str, ...], link_name: str) -> None:
    hosts = _hosts(output)
    assert all(hosts.get(n) == ip for n in names), output
    assert {f"AL_NAME={link_name}", "AL_ENV_FOO=bar", f"AL_PORT=tcp://{ip}:80"} <= set(output.splitlines()), output


@pytest.fixture
def own_daemon(run_names: RunNames, busybox_tar: str) -> Iterator:
    """A berthd of this module's own: one test restarts it."""
    with private_daemon(private_names(run_names, "lk"), busybox_tar) as d:
        yield d


def test_link_follows_renames_of_target_and_linker(own_daemon) -> None:  # noqa: ANN001
    d = own_daemon
    _ok(d, "run", "-d", "--name", "lk-target", "-h", "lk-host", "-e", "FOO=bar", "--expose", "80",
        "busybox", "sleep", "300")
    ip = _inspect(d, "lk-target")["NetworkSettings"]["IPAddress"]
    _ok(d, "create", "--name", "lk-linker", "--link", "lk-target:al", "busybox", "sh", "-c", SHOW)
    assert _inspect(d, "lk-linker")["HostConfig"]["Links"] == ["/lk-target:/lk-linker/al"]

    _ok(d, "rename", "lk-target", "lk-target2")
    assert _inspect(d, "lk-linker")["HostConfig"]["Links"] == ["/lk-target2:/lk-linker/al"]
    # the alias, the target's hostname and its name now, as dockerd writes them
    out = _ok(d, "start", "-a", "lk-linker")
    _check_linked(out, ip, ("al", "lk-host", "lk-target2"), "/lk-linker/al")
    assert "lk-target" not in _hosts(out)
    assert f"{ip}\tal lk-host lk-target2" in out.splitlines()   # one line per link

    _ok(d, "rename", "lk-linker", "lk-linker2")
    assert _inspect(d, "lk-linker2")["HostConfig"]["Links"] == ["/lk-target2:/lk-linker2/al"]
    _check_linked(_ok(d, "start", "-a", "lk-linker2"), ip, ("al", "lk-target2"), "/lk-linker2/al")

    # the old name names nothing any more
    res = d.docker("run", "--rm", "--link", "lk-target:x", "busybox", "true")
    assert res.returncode == 125 and "could not get container for lk-target: No such container: lk-target" \
        in res.stderr, res.stderr

    # kept by ID across a daemon restart (the target keeps running: live restore)
    d.restart()
    assert _inspect(d, "lk-linker2")["HostConfig"]["Links"] == ["/lk-target2:/lk-linker2/al"]
    _ok(d, "rename", "lk-target2", "lk-target3")
    _check_linked(_ok(d, "start", "-a", "lk-linker2"), ip, ("al", "lk-target3"), "/lk-linker2/al")


def test_a_removed_target_stays_in_the_link(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    cleanup += ["lk-gone", "lk-gone-linker"]
    _ok(daemon, "run", "-d", "--name", "lk-gone", "busybox", "sleep", "300")
    _ok(daemon, "create", "--name", "lk-gone-linker", "--link", "lk-gone:al", "busybox", "true")
    _ok(daemon, "rm", "-f", "lk-gone")

    def refused() -> None:
        assert _inspect(daemon, "lk-gone-linker")["HostConfig"]["Links"] == ["/lk-gone:/lk-gone-linker/al"]
        r = daemon.api("POST", "/containers/lk-gone-linker/start")
        assert (r.status, r.json()["message"]) == (
            409, "Cannot link to a non running container: /lk-gone AS /lk-gone-linker/al")

    refused()
    _ok(daemon, "run", "-d", "--name", "lk-gone", "busybox", "sleep", "300")   # another, by that name
    refused()


def test_link_alias_on_a_user_network_follows_a_rename(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    cleanup += ["net:lk-net", "lk-utarget", "lk-utarget2", "lk-ulinker"]   # removed last first
    _ok(daemon, "network", "create", "lk-net")
    _ok(daemon, "run", "-d", "--name", "lk-utarget", "--network", "lk-net", "busybox", "sleep", "300")
    _ok(daemon, "create", "--name", "lk-ulinker", "--network", "lk-net", "--link", "lk-utarget:ual",
        "busybox", "nslookup", "ual", "127.0.0.11")
    _ok(daemon, "rename", "lk-utarget", "lk-utarget2")
    _ok(daemon, "restart", "-t", "0", "lk-utarget2")   # its sandbox now has the new name only
    ip = _inspect(daemon, "lk-utarget2")["NetworkSettings"]["Networks"]["lk-net"]["IPAddress"]
    assert _inspect(daemon, "lk-ulinker")["HostConfig"]["Links"] == ["/lk-utarget2:/lk-ulinker/ual"]
    out = _ok(daemon, "start", "-a", "lk-ulinker")
    assert "Name:\tual" in out and f"Address: {ip}" in out, out


def test_one_hosts_line_per_link(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    """dockerd's line: IP, the alias, the target's hostname, its name unless it is the alias
    (a hostname equal to the alias written twice); --add-host entries come first."""
    cleanup += ["lk-one", "lk-two"]
    _ok(daemon, "run", "-d", "--name", "lk-one", "-h", "lk-one-host", "busybox", "sleep", "300")
    two = _ok(daemon, "run", "-d", "--name", "lk-two", "busybox", "sleep", "300").strip()
    ip1, ip2 = (_inspect(daemon, n)["NetworkSettings"]["IPAddress"] for n in ("lk-one", "lk-two"))
    out = _ok(daemon, "run", "--rm", "-h", "lk-me", "--add-host", "lk-extra:10.1.2.3", "--link", "lk-one:al",
              "--link", "lk-two", "--link", "lk-one:lk-one-host", "busybox", "grep", "-v", "localhost", "/etc/hosts")
    lines = [line for line in out.splitlines() if line and not line.startswith(("fe00:", "ff0"))]
    assert lines[0] == "10.1.2.3\tlk-extra", out
    assert set(lines[1:4]) == {f"{ip1}\tal lk-one-host lk-one", f"{ip2}\tlk-two {two[:12]}",
                               f"{ip1}\tlk-one-host lk-one-host lk-one"}, out
    assert lines[4].endswith("\tlk-me") and len(lines) == 5, out
