"""Rootfs preparation steps that need no root: command line, strip list, extra files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.bootstrap import hostca
from berth.bootstrap.errors import BootstrapError
from berth.bootstrap.packages import newest_package_mtime
from berth.bootstrap.recipes import ExtraFile, Recipe, lookup
from berth.bootstrap.rootfs import add_files, inside, mmdebstrap_command, neutral_host_files, strip


def test_mmdebstrap_command_for_slim_and_full() -> None:
    slim = mmdebstrap_command(lookup("python:3.11-slim")[0], Path("/w/rootfs"), Path("/w/debian.sources"))
    assert slim[:3] == ["mmdebstrap", "--mode=root", "--format=directory"]
    assert "--variant=minbase" in slim
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in slim
    assert "--include=python3,python3-pip,python3-venv,ca-certificates,netbase,tzdata" in slim
    assert slim[-3:] == ["bookworm", "/w/rootfs", "/w/debian.sources"]
    full = mmdebstrap_command(lookup("debian:bookworm")[0], Path("/r"), Path("/s"))
    assert not [a for a in full if "path-exclude" in a]
    assert not [a for a in full if a.startswith("--include")]


def test_strip_removes_matches_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for d in ("var/lib/apt/lists/partial", "usr/lib/python3.11/__pycache__",
              "usr/lib/python3.11/json/__pycache__", "dev", "etc"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/apt/lists/deb.debian.org_Packages").write_text("x")
    (root / "usr/lib/python3.11/json/__pycache__/a.pyc").write_text("x")
    (root / "usr/lib/python3.11/json/__init__.py").write_text("x")
    (root / "dev/.hidden").write_text("x")
    (root / "etc/keep").write_text("x")
    globs = ("var/lib/apt/lists/*", "usr/lib/python3*/**/__pycache__", "dev/*")
    assert strip(root, globs) == 5
    assert list((root / "var/lib/apt/lists").iterdir()) == []
    assert not (root / "usr/lib/python3.11/json/__pycache__").exists()
    assert (root / "usr/lib/python3.11/json/__init__.py").exists()
    assert list((root / "dev").iterdir()) == []
    assert (root / "etc/keep").exists()


def test_strip_never_leaves_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    (outside / "lists").mkdir(parents=True)
    (outside / "lists/precious").write_text("x")
    root = tmp_path / "root"
    (root / "var/lib").mkdir(parents=True)
    os.symlink(str(outside), root / "var/lib/apt")        # absolute link out of the rootfs
    strip(root, ("var/lib/apt/lists/*",))
    assert (outside / "lists/precious").exists()


def test_files_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    (root / "etc/hostname").write_text("buildhost\n")
    recipe = Recipe(name="t", tags=("1",), summary="t",
                    files=(ExtraFile("/etc/app/conf", "a=1\n", 0o600),),
                    symlinks=(("/usr/local/bin/python", "/usr/bin/python3"),))
    add_files(root, recipe)
    neutral_host_files(root)
    assert (root / "etc/app/conf").read_text() == "a=1\n"
    assert (root / "etc/app/conf").stat().st_mode & 0o777 == 0o600
    assert os.readlink(root / "usr/local/bin/python") == "/usr/bin/python3"
    assert (root / "etc/resolv.conf").read_text() == "" and (root / "etc/hostname").read_text() == ""


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/tmp", root / "escape")
    assert inside(root, "/etc/passwd") == Path(os.path.realpath(root)) / "etc/passwd"
    with pytest.raises(BootstrapError, match="outside the image root"):
        inside(root, "/escape/x")


def test_newest_package_mtime(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    for name, mtime in (("a", 1000), ("b", 3000), ("new", 9000)):
        (root / "usr/bin" / name).write_text(name)
        os.utime(root / "usr/bin" / name, (mtime, mtime))
    (root / "var/lib/dpkg/info/pa.list").write_text("/.\n/usr\n/usr/bin\n/usr/bin/a\n")
    (root / "var/lib/dpkg/info/pb:amd64.list").write_text("/usr/bin/b\n/usr/bin/new\n/usr/bin/gone\n")
    assert newest_package_mtime(root, before=5000) == 3000      # /usr/bin/new: rewritten by the build
    assert newest_package_mtime(root, before=5000, packages=["pa"]) == 1000
    assert newest_package_mtime(root, before=5000, packages=["pb"]) == 3000


PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def test_host_cas_found_staged_and_labelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "cas"
    (src / "corp").mkdir(parents=True)
    (src / "b.crt").write_bytes(PEM)
    (src / "corp/a.crt").write_bytes(PEM.replace(b"fake", b"other"))
    (src / "notes.txt").write_bytes(PEM)                      # not *.crt: update-ca-certificates ignores it
    (src / "junk.crt").write_bytes(b"not a certificate")
    (src / "key.crt").write_bytes(PEM + b"-----BEGIN PRIVATE KEY-----\nx\n")
    cas = hostca.host_cas(src)
    assert [c.name for c in cas] == ["b.crt", "corp/a.crt"]
    staged = hostca.stage(cas, tmp_path / "stage")
    assert (staged / "corp/a.crt").read_bytes() == cas[1].data
    assert (staged / "b.crt").stat().st_mode & 0o777 == 0o644
    assert hostca.label(cas) == f"b.crt=sha256:{cas[0].sha256[:16]} corp/a.crt=sha256:{cas[1].sha256[:16]}"
    assert hostca.host_cas(tmp_path / "missing") == []
    monkeypatch.setenv(hostca.HOST_CA_ENV, "0")
    assert not hostca.wanted(None) and hostca.wanted(True)
    monkeypatch.delenv(hostca.HOST_CA_ENV)
    assert hostca.wanted(None) and not hostca.wanted(False)


def test_ca_hooks_only_for_images_with_ca_certificates() -> None:
    py = lookup("python:3.11-slim")[0]
    assert py.trusts_host_ca and lookup("nginx:latest")[0].trusts_host_ca
    assert not lookup("debian:bookworm-slim")[0].trusts_host_ca
    cmd = mmdebstrap_command(py, Path("/r"), Path("/s"), Path("/w/host-ca"))
    assert "--customize-hook=sync-in /w/host-ca /usr/local/share/ca-certificates" in cmd
    assert '--customize-hook=chroot "$1" update-ca-certificates' in cmd
    assert not [a for a in mmdebstrap_command(py, Path("/r"), Path("/s")) if "customize-hook" in a]
