"""The `berth` entry point without a daemon: help, versions, refusals and their statuses."""

from __future__ import annotations

import pytest

from berth.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys)
    assert status == 0 and "Usage:  berth [OPTIONS] COMMAND" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("berth version ")
    status, out, _ = run(capsys, "run", "--help")
    assert status == 0 and "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]" in out
    status, out, _ = run(capsys, "help", "ps")
    assert status == 0 and "Usage:  berth ps [OPTIONS]" in out
    status, out, _ = run(capsys, "network")
    assert status == 0 and "Usage:  berth network COMMAND" in out and "  connect\n" in out
    status, out, _ = run(capsys, "container", "ls", "--help")
    assert status == 0 and "Usage:  berth container ls [OPTIONS]" in out


def test_refusals_exit_125(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "frobnicate")
    assert status == 125 and out == "" and "'frobnicate' is not a berth command" in err
    status, _, err = run(capsys, "ps", "--bogus")
    assert status == 125 and "berth: unknown flag: --bogus" in err and "Run 'berth ps --help'" in err
    status, _, err = run(capsys, "container", "ls", "extra")
    assert status == 125 and '"berth container ls" accepts no arguments.' in err
    status, _, err = run(capsys, "rm")
    assert status == 125 and '"berth rm" requires at least 1 argument.' in err
    status, _, err = run(capsys, "\u2013\u2013version")
    assert status == 125 and 'did you mean "--version"?' in err


def test_unreachable_or_unsupported_hosts(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    status, _, err = run(capsys, "-H", "tcp://127.0.0.1:2375", "ps")
    assert status == 1 and "unix socket" in err
    status, _, err = run(capsys, "-H", f"unix://{tmp_path}/none.sock", "images")
    assert status == 1 and "Cannot connect to the berth daemon" in err
    status, _, err = run(capsys, "-H", f"unix://{tmp_path}/none.sock", "run", "busybox")
    assert status == 125
    status, _, err = run(capsys, "-H", "unix:///a", "-H", "unix:///b", "ps")
    assert status == 125 and "only one -H" in err
