"""Layer store against the real filesystem: whiteouts both ways (char devices and trusted
xattrs need root), compression detection, deterministic diff_ids, refused escapes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from berth.errors import InvalidParameter
from berth.image.content import ContentStore
from berth.image.layers import LayerStore, chain_id, chain_ids, write_diff_tar

pytestmark = pytest.mark.root


def _tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """entries: (name, kind, data-or-linkname); kind in f d l h."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
                t.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data)
                t.addfile(ti)
            else:
                raw = data if isinstance(data, bytes) else data.encode()
                ti.size, ti.mode = len(raw), 0o644
                t.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


@pytest.fixture
def layers(tmp_path: Path) -> LayerStore:
    content = ContentStore(tmp_path / "blobs", tmp_path / "tmp")
    return LayerStore(tmp_path / "layers", content, tmp_path / "tmp")


def test_aufs_whiteouts_become_overlay_whiteouts(layers: LayerStore) -> None:
    data = _tar([("etc/", "d", ""), ("etc/.wh.passwd", "f", ""), ("var/", "d", ""),
                 ("var/cache/", "d", ""), ("var/cache/.wh..wh..opq", "f", ""),
                 ("var/cache/new", "f", "n")])
    layer = layers.apply(io.BytesIO(data))
    root = Path(layer.path)
    st = os.lstat(root / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (root / "etc/.wh.passwd").exists()
    assert os.getxattr(root / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not (root / "var/cache/.wh..wh..opq").exists()
    assert (root / "var/cache/new").read_text() == "n"
    assert layer.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer.chain_id == layer.diff_id  # a base layer's chain id is its diff id


def test_overlay_whiteouts_become_aufs_whiteouts(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc/passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "opq").mkdir()
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/keep").write_text("k")
    buf = io.BytesIO()
    write_diff_tar(str(upper), buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        names = {m.name: m for m in t.getmembers()}
    assert "etc/.wh.passwd" in names and names["etc/.wh.passwd"].isreg()
    assert "etc/passwd" not in names
    assert "opq/.wh..wh..opq" in names
    assert names["opq/keep"].isreg()
    assert not any("trusted.overlay" in k for m in names.values() for k in m.pax_headers)


def test_whiteouts_round_trip_through_store(layers: LayerStore, tmp_path: Path) -> None:
    src = _tar([("a/", "d", ""), ("a/.wh.gone", "f", ""), ("b/", "d", ""), ("b/.wh..wh..opq", "f", ""),
                ("b/x", "f", "x")])
    layer = layers.apply(io.BytesIO(src))
    path, diff_id = layers.diff(layer.path)
    try:
        with tarfile.open(path) as t:
            got = sorted(m.name for m in t.getmembers())
        assert got == ["a", "a/.wh.gone", "b", "b/.wh..wh..opq", "b/x"]
        assert diff_id == "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    finally:
        os.unlink(path)


def test_diff_id_is_deterministic(layers: LayerStore, tmp_path: Path) -> None:
    def tree(root: Path) -> None:
        (root / "d/e").mkdir(parents=True)
        (root / "d/e/f").write_text("content")
        (root / "z").write_bytes(b"\0" * 10000)
        os.symlink("d/e/f", root / "link")
        os.link(root / "z", root / "hard")
        for p in (root / "d/e/f", root / "z", root / "d/e", root / "d", root):
            os.utime(p, (1_600_000_000, 1_600_000_000))
        os.utime(root / "link", (1_600_000_000, 1_600_000_000), follow_symlinks=False)

    ids = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        tree(root)
        os.utime(root, (1_600_000_000, 1_600_000_000))
        path, diff_id = layers.diff(root)
        ids.append(diff_id)
        os.unlink(path)
    assert ids[0] == ids[1]
    # and unpacking that tar gives the same diff id back
    path, diff_id = layers.diff(tmp_path / "one")
    try:
        layer = layers.apply_file(path)
    finally:
        os.unlink(path)
    assert layer.diff_id == diff_id
    assert os.stat(Path(layer.path) / "hard").st_ino == os.stat(Path(layer.path) / "z").st_ino
    assert os.readlink(Path(layer.path) / "link") == "d/e/f"


@pytest.mark.parametrize("compress", ["plain", "gzip", "zstd"])
def test_compression_detected_by_magic(layers: LayerStore, compress: str) -> None:
    data = _tar([("bin/", "d", ""), ("bin/tool", "f", "#!/bin/sh\n")])
    blob = {"plain": data, "gzip": gzip.compress(data),
            "zstd": zstandard.ZstdCompressor().compress(data)}[compress]
    layer = layers.apply(io.BytesIO(blob))
    assert layer.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (Path(layer.path) / "bin/tool").read_text() == "#!/bin/sh\n"
    with layers.open_tar(layer.chain_id) as f:  # the uncompressed tar is kept for save/push
        assert f.read() == data


def test_chain_ids_and_short_links(layers: LayerStore) -> None:
    base = layers.apply(io.BytesIO(_tar([("a", "f", "1")])))
    top = layers.apply(io.BytesIO(_tar([("b", "f", "2")])), base.chain_id)
    assert top.chain_id == "sha256:" + hashlib.sha256(f"{base.chain_id} {top.diff_id}".encode()).hexdigest()
    assert chain_ids([base.diff_id, top.diff_id]) == [base.chain_id, top.chain_id]
    assert chain_id(None, base.diff_id) == base.diff_id
    lowers = layers.lower_dirs([base.chain_id, top.chain_id])
    assert [os.path.realpath(p) for p in lowers] == [os.path.realpath(top.path), os.path.realpath(base.path)]
    assert all(len(os.path.basename(p)) == 26 for p in lowers)


@pytest.mark.parametrize("entries", [
    [("../escape", "f", "x")],
    [("a/../../escape", "f", "x")],
    [("evil", "l", "/tmp"), ("evil/file", "f", "x")],
    [("evil", "l", "../../../"), ("evil/file", "f", "x")],
    [("h", "h", "../../etc/passwd")],
])
def test_escaping_paths_are_refused(layers: LayerStore, entries: list, tmp_path: Path) -> None:
    before = set(os.listdir(layers.root))
    with pytest.raises(InvalidParameter):
        layers.apply(io.BytesIO(_tar(entries)))
    assert set(os.listdir(layers.root)) == before  # no half-unpacked layer left
    assert os.listdir(layers.content.tmp) == []
    assert not Path("/tmp/file").exists() or Path("/tmp/file").stat().st_mtime < 1_700_000_000


def test_garbage_is_refused(layers: LayerStore) -> None:
    before = set(os.listdir(layers.root))
    with pytest.raises(InvalidParameter):
        layers.apply(io.BytesIO(gzip.compress(b"not a tar" * 100)))
    assert set(os.listdir(layers.root)) == before


def test_many_layers_mount_under_a_page(tmp_path: Path) -> None:
    """120 layers: the absolute lowerdir list would pass a page; the snapshot still mounts."""
    from berth.image.snapshots import Snapshots, is_mounted
    content = ContentStore(tmp_path / "blobs", tmp_path / "tmp")
    layers = LayerStore(tmp_path / ("long-name-" * 4) / "layers", content, tmp_path / "tmp")
    snaps = Snapshots(tmp_path / "containers", layers)
    parent = None
    chains = []
    for i in range(120):
        layer = layers.apply(io.BytesIO(_tar([(f"f{i:03d}", "f", str(i))])), parent)
        parent = layer.chain_id
        chains.append(parent)
    lowers = layers.lower_dirs(chains)
    assert len("lowerdir=" + ":".join(lowers)) > 4096
    merged = snaps.prepare("many", lowers)
    try:
        assert is_mounted(merged)
        assert Path(merged, "f000").read_text() == "0" and Path(merged, "f119").read_text() == "119"
        snaps.unmount("many")
        assert not is_mounted(merged)
        snaps.mount("many")
        assert Path(merged, "f042").read_text() == "42"
    finally:
        snaps.remove("many")
    assert not is_mounted(merged)
