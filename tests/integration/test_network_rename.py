"""`docker rename` of a running container on user networks, through berthd with the docker CLI.

As dockerd does (observed with the isolated dockerd fixture, 20.10): the embedded DNS of every
network the container is on answers the new name at once and the old one no longer, unless
the old name is also one of its network aliases (aliases are kept as given); its short id and
aliases keep resolving, a reverse lookup gives NEW.NETWORK, `network inspect` shows the new
name, and (API 1.44's `DNSNames`, as dockerd 25+) inspect lists the new name."""

from __future__ import annotations

import json

import pytest

from support import ok

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]

# one query per line of output: NAME=ADDRESS[ ADDRESS...], or NAME= when it does not resolve
# (one try of at most 2 s: an unknown name is forwarded upstream, which need not answer here)
LOOKUP = ("for n in {names}; do a=$(nslookup -retry=1 -timeout=2 $n 127.0.0.11 2>/dev/null "
          "| sed -n 's/^Address: //p' | tr '\\n' ' '); echo \"$n=$a\"; done")



def _lookup(d, peer: str, *names: str) -> dict[str, list[str]]:  # noqa: ANN001 - a DaemonHandle
    """The addresses `peer`'s embedded DNS gives for each name (empty: unknown)."""
    out = ok(d.docker("exec", peer, "sh", "-c", LOOKUP.format(names=" ".join(names))))
    found = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
    return {n: found.get(n, "").split() for n in names}


def _reverse(d, peer: str, ip: str) -> str:  # noqa: ANN001
    out = ok(d.docker("exec", peer, "nslookup", ip, "127.0.0.11"))
    return out.rpartition("name = ")[2].strip()


def test_running_container_answers_to_its_new_name(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:rn-one", "net:rn-two", "rn-new", "rn-old", "rn-kept", "rn-kept2", "rn-peer", "rn-peer2"]
    ok(d.docker("network", "create", "rn-one"))
    ok(d.docker("network", "create", "rn-two"))
    cid = ok(d.docker("run", "-d", "--name", "rn-old", "--network", "rn-one", "--network-alias", "rn-alias",
                       busybox_image, "sleep", "300")).strip()
    ok(d.docker("network", "connect", "rn-two", "rn-old"))
    ok(d.docker("run", "-d", "--name", "rn-kept", "--network", "rn-one", "--network-alias", "rn-kept",
                 busybox_image, "sleep", "300"))
    ok(d.docker("run", "-d", "--name", "rn-peer", "--network", "rn-one", busybox_image, "sleep", "300"))
    ok(d.docker("run", "-d", "--name", "rn-peer2", "--network", "rn-two", busybox_image, "sleep", "300"))
    nets = json.loads(ok(d.docker("inspect", "rn-old")))[0]["NetworkSettings"]["Networks"]
    ip1, ip2 = nets["rn-one"]["IPAddress"], nets["rn-two"]["IPAddress"]
    kept_ip = json.loads(ok(d.docker("inspect", "rn-kept")))[0]["NetworkSettings"]["Networks"]["rn-one"]["IPAddress"]
    assert _lookup(d, "rn-peer", "rn-old", "rn-new") == {"rn-old": [ip1], "rn-new": []}

    ok(d.docker("rename", "rn-old", "rn-new"))
    ok(d.docker("rename", "rn-kept", "rn-kept2"))
    assert _lookup(d, "rn-peer", "rn-new", "rn-old", "rn-alias", cid[:12], "rn-kept", "rn-kept2") == {
        "rn-new": [ip1], "rn-old": [], "rn-alias": [ip1], cid[:12]: [ip1],
        "rn-kept": [kept_ip], "rn-kept2": [kept_ip]}   # rn-kept is an alias too: it stays
    assert _lookup(d, "rn-peer2", "rn-new", "rn-old") == {"rn-new": [ip2], "rn-old": []}
    assert _reverse(d, "rn-peer", ip1) == "rn-new.rn-one"
    info = json.loads(ok(d.docker("network", "inspect", "rn-one")))[0]
    assert info["Containers"][cid]["Name"] == "rn-new"
    settings = d.api("GET", "/containers/rn-new/json").json()["NetworkSettings"]["Networks"]
    assert settings["rn-one"]["DNSNames"] == ["rn-new", "rn-alias", cid[:12]]
    assert settings["rn-two"]["DNSNames"] == ["rn-new", cid[:12]]
    assert settings["rn-one"]["Aliases"] == ["rn-alias"]   # as given

    # back to the old name: the one it had in between is gone
    ok(d.docker("rename", "rn-new", "rn-old"))
    assert _lookup(d, "rn-peer", "rn-old", "rn-new") == {"rn-old": [ip1], "rn-new": []}
    # a restart makes the sandbox afresh, under the name it has now
    ok(d.docker("restart", "-t", "0", "rn-old"))
    ip1 = json.loads(ok(d.docker("inspect", "rn-old")))[0]["NetworkSettings"]["Networks"]["rn-one"]["IPAddress"]
    assert _lookup(d, "rn-peer", "rn-old", "rn-new") == {"rn-old": [ip1], "rn-new": []}
