"""berthd's settings: flags, daemon.json, and which wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.engine.daemon import parse_args


def _write(tmp_path: Path, data: object) -> str:
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps(data))
    return str(p)


def test_config_file_fills_unset_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, {"hub-endpoint": "http://127.0.0.1:5000", "registry-mirrors": ["http://m"],
                             "data-root": "/srv/berth", "debug": True})
    cfg = parse_args(["--config-file", path])
    assert cfg.hub_endpoint == "http://127.0.0.1:5000"
    assert cfg.registry_mirrors == ["http://m"]
    assert str(cfg.data_root) == "/srv/berth"
    assert cfg.debug is True


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"hub-endpoint": "http://a", "data-root": "/srv/a"})
    cfg = parse_args(["--config-file", path, "--hub-endpoint", "http://b", "--data-root", "/srv/b"])
    assert cfg.hub_endpoint == "http://b"
    assert str(cfg.data_root) == "/srv/b"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, {"hub-endpiont": "http://a"})
    with pytest.raises(SystemExit, match="unknown setting.*hub-endpiont"):
        parse_args(["--config-file", path])


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, {"registry-mirrors": "http://m"})
    with pytest.raises(SystemExit, match="registry-mirrors must be a list"):
        parse_args(["--config-file", path])


def test_explicit_missing_file_is_an_error_and_empty_means_none(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="does not exist"):
        parse_args(["--config-file", str(tmp_path / "nope.json")])
    cfg = parse_args(["--config-file", "", "--data-root", str(tmp_path)])
    assert cfg.hub_endpoint == ""


def test_pidfile_defaults_under_the_exec_root(tmp_path: Path) -> None:
    cfg = parse_args(["--config-file", "", "--exec-root", str(tmp_path)])
    assert cfg._pidfile == str(tmp_path / "berthd.pid")  # type: ignore[attr-defined]
