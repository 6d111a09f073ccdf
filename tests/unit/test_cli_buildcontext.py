"""The build context tar made by the CLI (.dockerignore, Dockerfile outside the context)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from berth.cli.buildcontext import make_context
from berth.cli.client import CLIError


def names(tar_path: str) -> list[str]:
    with tarfile.open(tar_path) as t:
        return sorted(m.name for m in t.getmembers())


@pytest.fixture
def ctxdir(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    (d / "src").mkdir(parents=True)
    (d / "logs").mkdir()
    (d / "Dockerfile").write_text("FROM busybox\n")
    (d / "src" / "app.py").write_text("print(1)\n")
    (d / "src" / "app.pyc").write_text("x")
    (d / "logs" / "a.log").write_text("x")
    (d / "logs" / "keep.log").write_text("x")
    (d / ".dockerignore").write_text("# c\n**/*.pyc\nlogs\n!logs/keep.log\nDockerfile\n")
    return d


def test_dockerignore_is_honoured_and_build_files_kept(ctxdir: Path) -> None:
    bc = make_context(str(ctxdir), None)
    try:
        assert bc.dockerfile == "Dockerfile"
        assert names(bc.tar_path) == [".dockerignore", "Dockerfile", "logs", "logs/keep.log", "src", "src/app.py"]
        with tarfile.open(bc.tar_path) as t:
            assert all(m.uid == 0 and m.gid == 0 for m in t.getmembers())
    finally:
        os.unlink(bc.tar_path)


def test_dockerfile_outside_the_context_is_sent(ctxdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM scratch\n")
    bc = make_context(str(ctxdir), str(outside))
    try:
        assert bc.dockerfile.startswith(".dockerfile.")
        with tarfile.open(bc.tar_path) as t:
            f = t.extractfile(bc.dockerfile)
            assert f is not None and f.read() == b"FROM scratch\n"
            ignore = t.extractfile(".dockerignore")
            assert ignore is not None
            assert ignore.read().decode().splitlines()[-1] == bc.dockerfile   # docker lists it there too
            assert [m.name for m in t.getmembers()].count(".dockerignore") == 1
        again = make_context(str(ctxdir), str(outside))
        os.unlink(again.tar_path)
        assert again.dockerfile == bc.dockerfile      # same Dockerfile, same name: cache-friendly
    finally:
        os.unlink(bc.tar_path)


def test_dockerfile_inside_under_another_name(ctxdir: Path) -> None:
    (ctxdir / "src" / "Dockerfile.dev").write_text("FROM busybox\n")
    bc = make_context(str(ctxdir), str(ctxdir / "src" / "Dockerfile.dev"))
    try:
        assert bc.dockerfile == "src/Dockerfile.dev"
    finally:
        os.unlink(bc.tar_path)


def test_missing_context_or_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(CLIError, match="not found"):
        make_context(str(tmp_path / "nope"), None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CLIError, match="no such file or directory"):
        make_context(str(tmp_path / "empty"), None)
