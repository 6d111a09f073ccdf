"""The three journeys, typed exactly as README.md writes them, through the `berth` CLI and
through the real `docker` CLI (DOCKER_BUILDKIT=0), against a berthd whose docker.io is a
local berth-registry seeded with base images bootstrapped from Debian packages.

The commands come from README.md (scripts/journeys.py reads them); the only changes a
test makes are the ones a reader would: a free port where 8001 is taken, the registry
user's name for USER, and answers typed at `login`'s prompts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.daemon import DaemonHandle, _cleanup_host, run_cgroups, start_daemon
from fixtures.registry import RunningRegistry, start_berth_registry
from support import REPO, RunNames, Terminal, free_subnet, http_get, venv_exe

sys.path.insert(0, str(REPO / "scripts"))
from journeys import journeys  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.slow]

CACHE = os.environ.get("BERTH_BOOTSTRAP_CACHE", "/var/cache/berth-bootstrap")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BASE_IMAGES = ("busybox:latest", "python:3.11-slim", "nginx:latest")


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


@dataclass
class Hub:
    daemon: DaemonHandle
    registry: RunningRegistry


@pytest.fixture(scope="module")
def hub(run_names: RunNames) -> Iterator[Hub]:
    """A berthd of its own whose docker.io is a local berth-registry with the base images."""
    from berth.bootstrap import build_image

    base = run_names.root / "e2e"
    base.mkdir(parents=True, exist_ok=True)
    names = RunNames(run_id=run_names.run_id, root=base, bridge=f"be{run_names.run_id}",
                     subnet=free_subnet(), firewall_prefix=f"be{run_names.run_id}",
                     cgroup_parent=f"berth-e2e-{run_names.run_id}")
    with start_berth_registry(base, anonymous_pull=True) as reg:
        d = start_daemon(names, ["--hub-endpoint", reg.url])
        try:
            seed_env = {**d.env, "BERTH_CONFIG": str(base / "seed-config")}
            berth = venv_exe("berth")

            def run(*args: str, input: str | None = None) -> None:
                r = subprocess.run([berth, *args], env=seed_env, input=input, capture_output=True,
                                   text=True, timeout=600)
                assert r.returncode == 0, f"berth {' '.join(args)}: {r.stdout}\n{r.stderr}"

            run("login", "-u", reg.user, "--password-stdin", reg.host, input=reg.password)
            for ref in BASE_IMAGES:
                tar = build_image(ref, base / f"{ref.replace(':', '_')}.tar", log=lambda s: None,
                                  cache_dir=CACHE).tar_path
                run("load", "-i", str(tar))
                run("tag", ref, f"{reg.host}/library/{ref}")
                run("push", f"{reg.host}/library/{ref}")
                run("rmi", f"{reg.host}/library/{ref}", ref)
            run("logout", reg.host)
            yield Hub(d, reg)
        finally:
            try:
                d.remove_all_containers()
                d.stop()
                leftovers = run_cgroups(names)
            finally:
                _cleanup_host(names)
            assert not leftovers, f"container cgroups left after removing every container: {leftovers}"


class Typist:
    """Types a journey's lines the way a person does: `cd` changes the directory, the rest
    run in a shell with `client` (berth or docker) first on PATH."""

    def __init__(self, hub: Hub, client: str, config_dir: Path) -> None:
        self.hub = hub
        self.cwd = REPO
        self.env = dict(hub.daemon.env)
        self.env["PATH"] = f"{Path(venv_exe('berth')).parent}:{self.env['PATH']}"
        self.env["BERTH_CONFIG"] = str(config_dir)
        self.env["DOCKER_CONFIG"] = str(config_dir)
        self.env["DOCKER_BUILDKIT"] = "0"
        self.client = client
        self.typed: list[str] = []

    def line(self, text: str) -> str:
        """README text for this client: `berth` becomes `docker` for the docker CLI run."""
        if self.client == "docker":
            return re.sub(r"^berth\b", "docker", text)
        return text

    def run(self, text: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        text = self.line(text)
        self.typed.append(text)
        if text.startswith("cd "):
            self.cwd = (self.cwd / shlex.split(text)[1]).resolve()
            return subprocess.CompletedProcess(text, 0, "", "")
        return subprocess.run(["bash", "-c", text], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def login(self, text: str, user: str, password: str) -> tuple[int, str]:
        """Run an interactive `login` in a pseudo-terminal, answering its prompts."""
        text = self.line(text)
        self.typed.append(text)
        with Terminal(["bash", "-c", text], self.env, cwd=self.cwd) as term:
            seen = 0  # answers go only to a prompt that ends what was printed since the last one
            answered: set[str] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and term.read(0.5) is not None:
                since = _ANSI.sub("", term.out[seen:].decode(errors="replace")).lower()
                if "user" not in answered and re.search(r"username[^\n]*:\s*$", since):
                    term.write(user.encode() + b"\r")
                    answered.add("user")
                    seen = len(term.out)
                elif "user" in answered and "password" not in answered and re.search(r"password[^\n]*:\s*$", since):
                    term.write(password.encode() + b"\r")
                    answered.add("password")
                    seen = len(term.out)
            code = term.wait(60)
        return code, term.out.decode(errors="replace")


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"`{r.args[-1] if isinstance(r.args, list) else r.args}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(params=["berth", "docker"])
def typist(request: pytest.FixtureRequest, hub: Hub, tmp_path: Path) -> Iterator[Typist]:
    t = Typist(hub, request.param, tmp_path / "client-config")
    yield t


def test_hello_world(typist: Typist) -> None:
    lines = journeys()["hello"]
    assert lines[-1] == "berth run hello-world-python"
    out = ""
    for text in lines:
        out = _ok(typist.run(text))
    assert "Hello, World!" in out


def test_nginx(typist: Typist, hub: Hub) -> None:
    lines = journeys()["nginx"]
    port = _free_port(8001)
    reg = hub.registry
    name_seen = False
    try:
        for text in lines:
            text = text.replace("8001", str(port))
            if text in ("berth login",):
                code, out = typist.login(text, reg.user, reg.password + "-wrong")
                assert code != 0, f"login with a wrong password succeeded:\n{out}"
                assert "unauthorized" in out.lower() or "incorrect" in out.lower(), out
                cfg = Path(typist.env["BERTH_CONFIG"]) / "config.json"
                assert not cfg.exists() or reg.password not in cfg.read_text()
                code, out = typist.login(text, reg.user, reg.password)
                assert code == 0, out
                assert "Login Succeeded" in out
                continue
            if text.startswith("curl "):
                assert "Welcome to nginx!" in http_get(f"http://127.0.0.1:{port}/")
                out = _ok(typist.run(text))
                assert "Welcome to nginx!" in out
                continue
            out = _ok(typist.run(text))
            if text.endswith("search nginx"):
                assert re.search(r"^nginx\s", out, re.M), out
            if text.endswith(" images"):
                assert re.search(r"^nginx\s+latest\s", out, re.M), out
                name_seen = True
        assert name_seen
    finally:
        typist.run("berth rm -f nginxserver")


def test_scikit_learn(typist: Typist, hub: Hub) -> None:
    reg = hub.registry
    user = reg.user
    _ok(typist.run(f"echo {shlex.quote(reg.password)} | {typist.client} login -u {user} --password-stdin"))
    lines = journeys()["scikit-learn"]
    reports = 0
    try:
        for text in lines:
            text = text.replace("USER/", f"{user}/")
            out = _ok(typist.run(text))
            if " run " in f" {text} " and "scikitlearn_modellearn" in text:
                assert re.search(r"precision\s+recall\s+f1-score\s+support", out), out
                assert "setosa" in out and "accuracy" in out
                assert "sepal_length" in out  # the head() of the data
                reports += 1
            if text.startswith("berth rmi"):
                images = _ok(typist.run("berth images"))
                assert "scikitlearn_modellearn" not in images, images
        assert reports == 2
        # the pushed image is in the registry under the user's name
        req = urllib.request.Request(f"{reg.url}/v2/{user}/scikitlearn_modellearn/tags/list")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert "latest" in json.loads(resp.read())["tags"]
    finally:
        # the next client's journey starts as a new user's would: without this one's images
        typist.run("berth rm -f modellearn")
        typist.run(f"berth rmi -f {user}/scikitlearn_modellearn:latest scikitlearn_modellearn")
