"""The real docker CLI (Debian's isolated dockerd) pushes to and pulls from berth-registry
with basic and with token auth; berthd pulls what docker pushed."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from berth.registry.auth_config import encode_registry_auth
from fixtures.registry import RunningRegistry

# `daemon` first: its teardown checks the host for leftovers of the run, so it must be set up
# before (and torn down after) the session's dockerd, whose processes live under the run root.
pytestmark = [pytest.mark.root, pytest.mark.peer, pytest.mark.slow, pytest.mark.usefixtures("daemon")]


@pytest.mark.parametrize("which", ["berth_registry", "berth_token_registry"])
def test_docker_cli_push_pull(request: pytest.FixtureRequest, dockerd: Any, tmp_path: Path, which: str) -> None:
    reg: RunningRegistry = request.getfixturevalue(which)
    env = {**dockerd.env, "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def docker(*args: str, **kw: Any) -> Any:
        return dockerd.docker(*args, env=env, timeout=kw.pop("timeout", 180), **kw)

    ref = f"{reg.host}/docker/busybox-{secrets.token_hex(3)}:v1"
    assert docker("tag", "busybox:latest", ref).returncode == 0
    try:
        r = docker("push", ref)
        assert r.returncode != 0
        assert any(w in (r.stderr + r.stdout).lower() for w in ("no basic auth credentials", "unauthorized",
                                                                "authentication required", "requested access to the resource is denied")), r.stderr
        bad = docker("login", "-u", reg.user, "--password-stdin", reg.host, input="wrong\n")
        assert bad.returncode != 0 and "unauthorized" in bad.stderr.lower(), bad.stderr
        ok = docker("login", "-u", reg.user, "--password-stdin", reg.host, input=reg.password + "\n")
        assert ok.returncode == 0, ok.stderr
        assert "Login Succeeded" in ok.stdout
        r = docker("push", ref)
        assert r.returncode == 0, r.stderr + r.stdout
        assert "digest: sha256:" in r.stdout
        digest = r.stdout.split("digest: ")[1].split()[0]
        assert docker("rmi", ref).returncode == 0
        r = docker("pull", ref)
        assert r.returncode == 0, r.stderr + r.stdout
        assert f"Digest: {digest}" in r.stdout
        info = json.loads(docker("image", "inspect", ref).stdout)[0]
        assert f"{ref.rsplit(':', 1)[0]}@{digest}" in info["RepoDigests"]
        if which == "berth_token_registry":
            assert "GET /token?" in reg.log_text()
    finally:
        docker("rmi", "-f", ref)
        docker("logout", reg.host)


def test_berthd_pulls_what_docker_pushed(dockerd: Any, daemon: Any, berth_registry: RunningRegistry,
                                         tmp_path: Path) -> None:
    reg = berth_registry
    env = {**dockerd.env, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    ref = f"{reg.host}/docker/for-berth:v1"
    assert dockerd.docker("tag", "busybox:latest", ref, env=env).returncode == 0
    try:
        assert dockerd.docker("login", "-u", reg.user, "--password-stdin", reg.host, env=env,
                              input=reg.password + "\n").returncode == 0
        r = dockerd.docker("push", ref, env=env, timeout=180)
        assert r.returncode == 0, r.stderr
        auth = {"X-Registry-Auth": encode_registry_auth({"username": reg.user, "password": reg.password,
                                                         "serveraddress": reg.host})}
        p = daemon.api("POST", "/images/create", params={"fromImage": f"{reg.host}/docker/for-berth", "tag": "v1"},
                       headers=auth, timeout=300)
        assert p.status == 200 and '"error"' not in p.text, p.text
        theirs = json.loads(dockerd.docker("image", "inspect", ref, env=env).stdout)[0]["Id"]
        ours = daemon.api("GET", f"/images/{ref}/json").json()["Id"]
        assert ours == theirs
    finally:
        dockerd.docker("rmi", "-f", ref, env=env)
        daemon.api("DELETE", f"/images/{ref}", params={"force": True})
