"""login/logout/push/pull/search through the berth CLI: credentials in BERTH_CONFIG's
config.json (0600), nothing stored on a failed login, clear errors without credentials."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures.registry import RunningRegistry
from support import venv_exe

pytestmark = [pytest.mark.root]


def berth(daemon: Any, cfg: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**daemon.env, "BERTH_CONFIG": str(cfg)}
    return subprocess.run([venv_exe("berth"), *args], input=input, capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.mark.parametrize("which", ["berth_registry", "berth_token_registry"])
def test_login_push_logout(request: pytest.FixtureRequest, daemon: Any, busybox_image: str, tmp_path: Path,
                           which: str) -> None:
    reg: RunningRegistry = request.getfixturevalue(which)
    cfg = tmp_path / "cfg"
    conf = cfg / "config.json"
    bad = berth(daemon, cfg, "login", "-u", reg.user, "--password-stdin", reg.host, input="wrong\n")
    assert bad.returncode != 0
    assert "incorrect username or password" in bad.stderr, bad.stderr
    assert not conf.exists() or reg.host not in json.loads(conf.read_text()).get("auths", {})
    ref = f"{reg.host}/cli/busybox:v1"
    assert berth(daemon, cfg, "tag", busybox_image, ref).returncode == 0
    try:
        denied = berth(daemon, cfg, "push", ref)
        assert denied.returncode != 0
        assert "unauthorized" in denied.stderr.lower() or "authentication required" in denied.stderr.lower(), \
            denied.stderr
        ok = berth(daemon, cfg, "login", "-u", reg.user, "--password-stdin", reg.host, input=reg.password + "\n")
        assert ok.returncode == 0, ok.stderr
        assert "Login Succeeded" in ok.stdout
        assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
        assert reg.host in json.loads(conf.read_text())["auths"]
        pushed = berth(daemon, cfg, "push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert "digest: sha256:" in pushed.stdout
        assert berth(daemon, cfg, "rmi", ref).returncode == 0
        pulled = berth(daemon, cfg, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        found = berth(daemon, cfg, "search", f"{reg.host}/cli")
        assert found.returncode == 0, found.stderr
        assert "cli/busybox" in found.stdout
        out = berth(daemon, cfg, "logout", reg.host)
        assert out.returncode == 0 and f"Removing login credentials for {reg.host}" in out.stdout
        assert reg.host not in json.loads(conf.read_text()).get("auths", {})
        again = berth(daemon, cfg, "push", ref)
        assert again.returncode != 0
    finally:
        berth(daemon, cfg, "rmi", "-f", ref)
