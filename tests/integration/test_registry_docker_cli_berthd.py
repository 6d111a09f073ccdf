"""The real docker CLIs (each on the machine) driving berthd (DOCKER_HOST=berth's socket):
login, push, pull and search go through berth's /auth, /images/{name}/push, /images/create
and /images/search."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures.registry import RunningRegistry

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]


def docker(daemon: Any, cfg: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**daemon.env, "DOCKER_CONFIG": str(cfg)}
    return subprocess.run([daemon.docker_cli, *args], input=input, capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.mark.parametrize("which", ["berth_registry", "berth_token_registry"])
def test_docker_cli_against_berthd(request: pytest.FixtureRequest, daemon: Any, busybox_image: str,
                                   tmp_path: Path, which: str) -> None:
    reg: RunningRegistry = request.getfixturevalue(which)
    cfg = tmp_path / "docker-config"
    ref = f"{reg.host}/viadocker/busybox:v1"
    bad = docker(daemon, cfg, "login", "-u", reg.user, "--password-stdin", reg.host, input="nope\n")
    assert bad.returncode != 0 and "incorrect username or password" in bad.stderr, bad.stderr
    assert not (cfg / "config.json").exists() or reg.host not in (cfg / "config.json").read_text()
    ok = docker(daemon, cfg, "login", "-u", reg.user, "--password-stdin", reg.host, input=reg.password + "\n")
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    assert docker(daemon, cfg, "tag", busybox_image, ref).returncode == 0
    try:
        pushed = docker(daemon, cfg, "push", ref)
        assert pushed.returncode == 0, pushed.stderr + pushed.stdout
        assert "v1: digest: sha256:" in pushed.stdout
        assert docker(daemon, cfg, "rmi", ref).returncode == 0
        pulled = docker(daemon, cfg, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr + pulled.stdout
        assert "Status: Downloaded newer image for" in pulled.stdout
        found = docker(daemon, cfg, "search", f"{reg.host}/viadocker")
        assert found.returncode == 0, found.stderr
        assert "viadocker/busybox" in found.stdout
    finally:
        docker(daemon, cfg, "rmi", "-f", ref)
        docker(daemon, cfg, "logout", reg.host)


def test_docker_py_against_berthd(daemon: Any, busybox_image: str, berth_token_registry: RunningRegistry,
                                  tmp_path: Path) -> None:
    import docker as dockerpy
    reg = berth_token_registry
    client = dockerpy.DockerClient(base_url=daemon.host, version="auto")
    repo = f"{reg.host}/dockerpy/busybox"
    try:
        with pytest.raises(dockerpy.errors.APIError) as e:
            client.login(username=reg.user, password="wrong", registry=reg.host, dockercfg_path=str(tmp_path / "x"))
        assert e.value.status_code == 401
        assert client.login(username=reg.user, password=reg.password, registry=reg.host,
                            dockercfg_path=str(tmp_path / "x"))["Status"] == "Login Succeeded"
        client.images.get(busybox_image).tag(repo, "v1")
        creds = {"username": reg.user, "password": reg.password}
        lines = list(client.images.push(repo, tag="v1", auth_config=creds, stream=True, decode=True))
        assert not [ln for ln in lines if "error" in ln], lines
        assert any("aux" in ln and ln["aux"]["Tag"] == "v1" for ln in lines)
        client.images.remove(f"{repo}:v1")
        img = client.images.pull(repo, tag="v1", auth_config=creds)
        assert f"{repo}:v1" in img.tags
        # docker-py searches without credentials: this registry wants them, and says so
        with pytest.raises(dockerpy.errors.APIError) as e:
            client.images.search(f"{reg.host}/dockerpy")
        assert e.value.status_code == 401 and "authentication required" in str(e.value)
    finally:
        try:
            client.images.remove(f"{repo}:v1", force=True)
        except dockerpy.errors.APIError:
            pass
        client.close()
