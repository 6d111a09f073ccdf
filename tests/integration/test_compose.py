"""docker-compose 1.29 (PyPI) against berthd: a two-service app (a web server and a
client reaching it by service name, sharing a named volume) comes up and goes away cleanly.

docker-compose 1.29.2 does not work with docker-py 7 (our test extra), so it gets its own
virtualenv under the run's root with compatible pins (docker 6.1, requests < 2.32, urllib3
< 2; PyYAML 5.4.1 built with Cython < 3 as its release predates Python 3.11 wheels)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from support import RunNames

pytestmark = [pytest.mark.root, pytest.mark.slow]

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: {image}
    command: ["httpd", "-f", "-p", "80", "-h", "/data"]
    volumes:
      - site:/data
  client:
    image: {image}
    depends_on: [web]
    command:
      - sh
      - -c
      - >-
        echo compose-ok > /data/index.html;
        for i in $$(seq 1 30); do wget -q -O- http://web/ && exit 0; sleep 0.3; done; exit 1
    volumes:
      - site:/data
volumes:
  site: {{}}
"""


def _compose_venv(root: Path) -> Path:
    venv = root / "compose-venv"
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([*pip, "cython<3", "wheel", "setuptools"], check=True, capture_output=True)
    subprocess.run([*pip, "--no-build-isolation", "pyyaml==5.4.1"], check=True, capture_output=True)
    subprocess.run([*pip, "docker-compose==1.29.2", "docker==6.1.3", "requests<2.32", "urllib3<2"],
                   check=True, capture_output=True)
    return venv / "bin" / "docker-compose"


def test_compose_two_services_by_name_with_a_named_volume(daemon, busybox_image,  # noqa: ANN001
                                                          run_names: RunNames) -> None:
    compose = _compose_venv(run_names.root)
    app = run_names.root / "compose-app"
    app.mkdir(exist_ok=True)
    (app / "docker-compose.yml").write_text(COMPOSE_FILE.format(image=busybox_image))
    project = f"nt{run_names.run_id}"
    env = dict(daemon.env)

    def dc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(compose), "-p", project, *args], cwd=app, env=env, capture_output=True,
                              text=True, timeout=timeout)

    try:
        up = dc("up", "-d")
        assert up.returncode == 0, up.stderr
        client = f"{project}_client_1"
        deadline = time.monotonic() + 30
        state: dict = {}
        while time.monotonic() < deadline:
            state = json.loads(daemon.docker("inspect", client, check=True).stdout)[0]["State"]
            if not state["Running"] and state["Status"] == "exited":
                break
            time.sleep(0.2)
        logs = dc("logs", "--no-color", "client").stdout
        assert state.get("ExitCode") == 0, (state, logs)
        assert "compose-ok" in logs
        net = json.loads(daemon.docker("network", "inspect", f"{project}_default", check=True).stdout)[0]
        assert net["Labels"].get("com.docker.compose.project") == project
        vol = json.loads(daemon.docker("volume", "inspect", f"{project}_site", check=True).stdout)[0]
        assert Path(vol["Mountpoint"], "index.html").read_text() == "compose-ok\n"
        ps = dc("ps")
        assert f"{project}_web_1" in ps.stdout and "Up" in ps.stdout
    finally:
        down = dc("down", "-v", "--timeout", "2")
    assert down.returncode == 0, down.stderr
    assert daemon.docker("ps", "-aq", "--filter", f"name={project}").stdout.split() == []
    assert f"{project}_default" not in daemon.docker("network", "ls").stdout
    assert f"{project}_site" not in daemon.docker("volume", "ls", "-q").stdout.split()
    stem = daemon.names.firewall_prefix.lower()[:8]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"{stem}-" not in links
