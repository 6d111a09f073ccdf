"""The CLI starts berthd in the background when nobody answers on the default socket."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from berth.cli import autostart
from berth.cli.client import Client
from fixtures.daemon import _cleanup_host
from support import new_run_names, venv_exe

pytestmark = pytest.mark.root


def test_autostart_starts_berthd_once_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    names = new_run_names()
    names.root.mkdir(parents=True)
    # Stand-in for the venv's berthd: the real one, on this run's own names.
    script = tmp_path / "berthd"
    script.write_text(
        "#!/bin/sh\n"
        f"exec {venv_exe('berthd')} --data-root {names.data_root} --exec-root {names.exec_root} "
        f"-H unix://{names.socket} --bridge {names.bridge} --bridge-subnet {names.subnet} "
        f"--firewall-prefix {names.firewall_prefix} --cgroup-parent {names.cgroup_parent}\n")
    script.chmod(0o755)
    monkeypatch.setattr(autostart, "berthd_path", lambda: str(script))
    log = tmp_path / "berthd.log"
    monkeypatch.setattr(autostart, "LOG_PATH", str(log))
    pid = None
    try:
        autostart.ensure_daemon(names.socket)
        err = capsys.readouterr().err
        m = re.search(r"^berth: started the berth daemon \(pid (\d+)\), logging to (.+)$", err.strip())
        assert m, err
        pid = int(m.group(1))
        assert m.group(2) == str(log) and log.exists()
        assert Client(f"unix://{names.socket}").ping()
        # already answering: nothing more is started, nothing said
        autostart.ensure_daemon(names.socket)
        assert capsys.readouterr().err == ""
        r = subprocess.run([venv_exe("berth"), "-H", f"unix://{names.socket}", "version", "-f",
                            "{{.Server.Version}}"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip()
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        _cleanup_host(names)
        from berth.network.firewall import current_rules, remove_all

        remove_all(names.firewall_prefix)     # berthd keeps its rules on exit (live restore)
        assert current_rules(names.firewall_prefix) == []
        shutil.rmtree(names.root, ignore_errors=True)


def test_no_autostart_for_non_root_or_a_live_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr(autostart.subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.setattr(autostart.os, "geteuid", lambda: 1000)
    autostart.ensure_daemon(str(tmp_path / "nobody.sock"))
    assert started == []
