"""Deterministic layer tars and the docker-save archive writer (pure: temp dirs only)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from berth.bootstrap.archive import canonical_json, image_config, write_docker_archive
from berth.bootstrap.layertar import walk, write_layer, write_layer_file

EPOCH = 1700000000


def make_tree(root: Path) -> Path:
    """`root` made, with a small tree of each kind of entry; `root` again."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "usr/bin/tool").write_bytes(b"\x7fELF" + bytes(5000))
    os.chmod(root / "usr/bin/tool", 0o755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-alias")
    os.symlink("usr/bin", root / "bin")
    (root / "etc/naïve.conf").write_text("unicode name\n")
    (root / ("d" * 120)).mkdir()
    (root / ("d" * 120) / "long").write_text("long path\n")
    return root


def digest_of(root: Path, epoch: int = EPOCH) -> str:
    return write_layer(root, io.BytesIO(), epoch).diff_id


def test_same_tree_same_digest(tmp_path: Path) -> None:
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    assert digest_of(a) == digest_of(a)
    assert digest_of(a) == digest_of(b)


def test_different_mtimes_same_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    before = digest_of(root)
    for rel in walk(root):
        os.utime(root / rel, (123456, 654321), follow_symlinks=False)
    assert digest_of(root) == before
    assert digest_of(root, EPOCH + 1) != before


def test_content_and_mode_change_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    before = digest_of(root)
    os.chmod(root / "etc/passwd", 0o600)
    after_mode = digest_of(root)
    assert after_mode != before
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert digest_of(root) != after_mode


def test_tar_entries(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    dest = tmp_path / "layer.tar"
    info = write_layer_file(root, dest, EPOCH)
    data = dest.read_bytes()
    assert info.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    with tarfile.open(dest) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names, key=lambda n: os.fsencode(n).split(b"/")) or names == walk(root)
        by = {m.name: m for m in members}
        assert all(m.mtime == EPOCH and m.uname == "" and m.gname == "" for m in members)
        assert by["bin"].issym() and by["bin"].linkname == "usr/bin"
        assert by["tmp"].isdir() and by["tmp"].mode == 0o1777
        assert by["usr/bin/tool"].isfile() and by["usr/bin/tool"].mode == 0o755
        assert by["usr/bin/tool-alias"].islnk() and by["usr/bin/tool-alias"].linkname == "usr/bin/tool"
        assert "etc/naïve.conf" in by
        assert ("d" * 120) + "/long" in by
        for m in members:
            assert "atime" not in m.pax_headers and "ctime" not in m.pax_headers
        assert tar.extractfile("usr/bin/tool").read() == b"\x7fELF" + bytes(5000)


def test_parents_before_children(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a/b").mkdir(parents=True)
    (root / "a-b").mkdir()
    (root / "a/b/c").write_text("x")
    order = walk(root)
    assert order.index("a") < order.index("a/b") < order.index("a/b/c")
    assert order == ["a", "a/b", "a/b/c", "a-b"]


def test_docker_archive(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    layer = tmp_path / "layer.tar"
    info = write_layer_file(root, layer, EPOCH)
    cfg = image_config(diff_id=info.diff_id, epoch=EPOCH, env=["PATH=/usr/bin"], cmd=["sh"],
                       entrypoint=[], workdir="", exposed_ports=["80"], stop_signal="SIGQUIT",
                       labels={"a": "b"}, created_by="test", comment="", architecture=("amd64", ""))
    raw = canonical_json(cfg)
    out1, out2 = tmp_path / "one.tar", tmp_path / "two.tar"
    image_id = write_docker_archive(out1, config=raw, layer_path=layer, diff_id=info.diff_id,
                                    repo_tags=["x:1"], epoch=EPOCH)
    write_docker_archive(out2, config=raw, layer_path=layer, diff_id=info.diff_id,
                         repo_tags=["x:1"], epoch=EPOCH)
    assert out1.read_bytes() == out2.read_bytes()
    assert image_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(out1) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["x:1"]
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        assert config["rootfs"]["diff_ids"] == [info.diff_id]
        assert config["config"]["ExposedPorts"] == {"80/tcp": {}}
        assert config["config"]["StopSignal"] == "SIGQUIT"
        assert config["created"] == "2023-11-14T22:13:20Z"
        layer_bytes = tar.extractfile(manifest[0]["Layers"][0]).read()
        assert "sha256:" + hashlib.sha256(layer_bytes).hexdigest() == info.diff_id
        assert json.load(tar.extractfile("repositories")) == {"x": {"1": info.diff_id.split(":")[1]}}
