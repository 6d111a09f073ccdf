"""ImageService on a real data root: import, resolve, overlay snapshots, commit, rmi rules,
save/load round trips (Docker archive and OCI layout, read by skopeo and umoci)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.engine.images import ImageService
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.image.snapshots import is_mounted
from fixtures.images import image_service, save_unpacked
from support import RunNames, unmount_under

pytestmark = pytest.mark.root


@pytest.fixture
def svc_root(run_names: RunNames, request: pytest.FixtureRequest) -> Iterator[Path]:
    root = run_names.root / f"img-{request.node.name[:40].replace('[', '_').replace(']', '_')}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def svc(svc_root: Path) -> ImageService:
    return image_service(svc_root)


def _import(svc: ImageService, busybox_tar: str, repo: str = "busybox", tag: str = "latest", **kw):  # type: ignore[no-untyped-def]
    with open(busybox_tar, "rb") as f:
        return svc.import_tar(f, repo, tag, **kw)


def test_import_resolve_snapshot_and_remove(svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar, changes=["CMD [\"sh\"]", "ENV A=1"], message="from test")
    assert img.repo_tags == ["busybox:latest"]
    assert img.config["config"]["Cmd"] == ["sh"] and img.config["config"]["Env"] == ["A=1"]
    assert img.config["history"][0]["comment"] == "from test"
    assert img.config["os"] == "linux" and img.config["architecture"] == "amd64"
    for name in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", img.id,
                 img.id[7:], img.id[7:19], img.id[:19]):
        assert svc.resolve(name).id == img.id, name
    with pytest.raises(NotFound, match="No such image: busybox:other"):
        svc.resolve("busybox:other")
    merged = svc.snapshots.prepare("ctr1", svc.lower_dirs(img))
    try:
        assert is_mounted(merged)
        assert os.path.isfile(os.path.join(merged, "bin/busybox"))
        assert os.readlink(os.path.join(merged, "bin/sh")) == "/bin/busybox"
        Path(merged, "hello").write_text("hi")
        assert Path(svc.snapshots.upper("ctr1"), "hello").read_text() == "hi"
        svc.snapshots.unmount("ctr1")
        assert not is_mounted(merged)
        svc.snapshots.mount("ctr1")
        assert Path(merged, "hello").read_text() == "hi"
    finally:
        svc.snapshots.remove("ctr1")
    assert not is_mounted(merged)
    assert not any("ctr1" in ln for ln in Path("/proc/mounts").read_text().splitlines())
    assert not (svc.config.containers_dir / "ctr1").exists()


def test_commit_makes_a_layer_with_whiteouts(svc: ImageService, busybox_tar: str) -> None:
    base = _import(svc, busybox_tar)
    merged = svc.snapshots.prepare("build1", svc.lower_dirs(base))
    try:
        Path(merged, "etc/motd").write_text("welcome\n")
        os.unlink(os.path.join(merged, "etc/passwd"))
        shutil.rmtree(os.path.join(merged, "var"))
        os.mkdir(os.path.join(merged, "var"))
        img = svc.commit("build1", base, {"Cmd": ["cat", "/etc/motd"]},
                         {"created_by": "RUN change things"}, tags=["built:1"])
    finally:
        svc.snapshots.remove("build1")
    assert img.repo_tags == ["built:1"]
    assert len(img.diff_ids) == 2 and img.diff_ids[0] == base.diff_ids[0]
    assert img.config["history"][-1]["created_by"] == "RUN change things"
    assert img.config["config"]["Cmd"] == ["cat", "/etc/motd"]
    with svc.layers.open_tar(img.layers[-1]) as f, tarfile.open(fileobj=io.BytesIO(f.read())) as t:
        names = set(t.getnames())
    assert {"etc/motd", "etc/.wh.passwd", "var/.wh..wh..opq"} <= names
    # the new image runs from the two layers: the whiteout hides passwd
    merged = svc.snapshots.prepare("check", svc.lower_dirs(img))
    try:
        assert Path(merged, "etc/motd").read_text() == "welcome\n"
        assert not os.path.exists(os.path.join(merged, "etc/passwd"))
        assert os.path.exists(os.path.join(merged, "etc/group"))
        assert os.listdir(os.path.join(merged, "var")) == []  # opaque: the lower var/www is hidden
        assert os.path.isdir(os.path.join(svc.lower_dirs(base)[0], "var/www"))
    finally:
        svc.snapshots.remove("check")
    # nothing changed -> no layer, an empty_layer history entry
    svc.snapshots.prepare("noop", svc.lower_dirs(img))
    try:
        same = svc.commit("noop", img, None, {"created_by": "ENV X=1"})
    finally:
        svc.snapshots.remove("noop")
    assert same.diff_ids == img.diff_ids
    assert same.config["history"][-1]["empty_layer"] is True
    assert svc.history(same.id)[0]["CreatedBy"] == "ENV X=1"


def test_rmi_untag_versus_delete(svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar)
    svc.tag("busybox", "localhost:5000/bb", "v1")
    assert svc.delete("busybox") == [{"Untagged": "busybox:latest"}]
    assert svc.resolve("localhost:5000/bb:v1").id == img.id
    users: list[str] = ["c" * 64]
    svc.in_use = lambda image_id: users if image_id == img.id else []
    with pytest.raises(Conflict) as exc:
        svc.delete("localhost:5000/bb:v1")
    assert str(exc.value) == ('conflict: unable to remove repository reference "localhost:5000/bb:v1" '
                              f"(must force) - container {'c' * 12} is using its referenced image "
                              f"{img.id[7:19]}")
    users.clear()
    records = svc.delete("localhost:5000/bb:v1")
    assert records[0] == {"Untagged": "localhost:5000/bb:v1"}
    assert {"Deleted": img.id} in records and {"Deleted": img.diff_ids[0]} in records
    with pytest.raises(NotFound):
        svc.resolve(img.id)
    assert os.listdir(svc.config.layers_dir) == ["l"] and os.listdir(svc.config.layers_dir / "l") == []
    assert svc.content.list() == []


def test_rmi_by_id_with_two_repositories_needs_force(svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar)
    svc.tag(img.id, "other", "x")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        svc.delete(img.id[7:19])
    records = svc.delete(img.id[7:19], force=True)
    assert {"Untagged": "busybox:latest"} in records and {"Untagged": "other:x"} in records
    assert {"Deleted": img.id} in records


def test_invalid_tag_refused(svc: ImageService, busybox_tar: str) -> None:
    _import(svc, busybox_tar)
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        svc.tag("busybox", "Upper", "x")
    with pytest.raises(InvalidParameter):
        svc.tag("busybox", "ok", "-bad")


def test_save_load_round_trip_and_oci_layout(svc_root: Path, svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar, changes=["CMD [\"sh\"]"])
    svc.tag("busybox", "localhost:5000/team/bb", "v2")
    layout = svc_root / "layout"
    manifest = save_unpacked(svc, ["busybox", "localhost:5000/team/bb:v2"], layout)
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= {p.name for p in layout.iterdir()}
    assert manifest[0]["RepoTags"] == ["busybox:latest", "localhost:5000/team/bb:v2"]
    # OCI layout readers: skopeo and umoci
    r = subprocess.run(["skopeo", "inspect", f"oci:{layout}:latest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["Layers"] == img.diff_ids and info["Architecture"] == "amd64"
    r = subprocess.run(["umoci", "stat", "--image", f"{layout}:v2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # skopeo copies the layout to another OCI layout (gzip layers): berth loads that too
    other = svc_root / "skopeo-layout"
    r = subprocess.run(["skopeo", "copy", "--dest-compress", f"oci:{layout}:latest",
                        f"oci:{other}:copied"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    svc2 = image_service(svc_root / "second")
    with open(f"{layout}.tar", "rb") as f:   # the archive save_unpacked wrote
        assert svc2.load(f) == ["busybox:latest", "localhost:5000/team/bb:v2"]
    assert svc2.resolve("localhost:5000/team/bb:v2").id == img.id
    oci_tar = svc_root / "oci.tar"
    subprocess.run(["tar", "cf", str(oci_tar), "-C", str(other), "."], check=True)
    svc3 = image_service(svc_root / "third")
    with open(oci_tar, "rb") as f:
        loaded = svc3.load(f)
    assert len(loaded) == 1 and loaded[0].startswith("sha256:")  # ref.name "copied" has no repository
    got = svc3.resolve(loaded[0])
    assert got.diff_ids == img.diff_ids
    merged = svc3.snapshots.prepare("x", svc3.lower_dirs(got))
    try:
        assert os.path.isfile(os.path.join(merged, "bin/busybox"))
    finally:
        svc3.snapshots.remove("x")


def test_load_of_corrupt_archive_leaves_nothing(svc_root: Path, svc: ImageService, busybox_tar: str) -> None:
    _import(svc, busybox_tar)
    work = svc_root / "x"
    manifest = save_unpacked(svc, ["busybox"], work)
    # corrupt the layer blob: its diff id no longer matches the config
    layer = work / manifest[0]["Layers"][0]
    data = bytearray(layer.read_bytes())
    data[600] ^= 0xFF
    layer.write_bytes(bytes(data))
    bad = svc_root / "bad.tar"
    subprocess.run(["tar", "cf", str(bad), "-C", str(work), "."], check=True)
    svc2 = image_service(svc_root / "second")
    with open(bad, "rb") as f, pytest.raises(InvalidParameter):
        svc2.load(f)
    assert svc2.list() == []
    assert os.listdir(svc2.config.layers_dir / "l") == []
    assert [p for p in os.listdir(svc2.config.layers_dir) if p != "l"] == []
    assert os.listdir(svc2.config.tmp_dir) == []
    with pytest.raises(InvalidParameter, match="neither manifest.json nor index.json"):
        svc2.load(io.BytesIO(_empty_tar()))


def _empty_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    return buf.getvalue()


def test_prune_removes_dangling_only(svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar)
    merged = svc.snapshots.prepare("p", svc.lower_dirs(img))
    Path(merged, "f").write_text("1")
    dangling = svc.commit("p", img, None, {"created_by": "x"})
    svc.snapshots.remove("p")
    assert dangling.repo_tags == []
    res = svc.prune()
    assert {"Deleted": dangling.id} in res["ImagesDeleted"]
    assert svc.resolve("busybox").id == img.id
    assert svc.filter_list(filters={"dangling": ["true"]}) == []
    assert [x["Id"] for x in svc.filter_list(filters={"reference": ["busy*"]})] == [img.id]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_load_compressed_archive(svc_root: Path, svc: ImageService, busybox_tar: str, compression: str) -> None:
    import gzip

    import zstandard
    img = _import(svc, busybox_tar)
    buf = io.BytesIO()
    svc.save(["busybox"], buf)
    data = gzip.compress(buf.getvalue()) if compression == "gzip" else \
        zstandard.ZstdCompressor().compress(buf.getvalue())
    svc2 = image_service(svc_root / "second")
    assert svc2.load(io.BytesIO(data)) == ["busybox:latest"]
    assert svc2.resolve("busybox").id == img.id


def test_load_oci_index_selects_platform(svc_root: Path, svc: ImageService, busybox_tar: str) -> None:
    """An OCI layout whose index.json points at a multi-platform index: linux/amd64 is chosen."""
    import hashlib
    img = _import(svc, busybox_tar)
    buf = io.BytesIO()
    svc.save(["busybox"], buf)
    work = svc_root / "layout"
    work.mkdir()
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        t.extractall(work)  # our own archive, written just above
    (work / "manifest.json").unlink()
    top = json.loads((work / "index.json").read_text())["manifests"][0]
    bogus = {"mediaType": top["mediaType"], "digest": "sha256:" + "0" * 64, "size": 10,
             "platform": {"os": "linux", "architecture": "arm64"}}
    real = {"mediaType": top["mediaType"], "digest": top["digest"], "size": top["size"],
            "platform": {"os": "linux", "architecture": "amd64"}}
    inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [bogus, real]}).encode()
    inner_digest = hashlib.sha256(inner).hexdigest()
    (work / "blobs/sha256" / inner_digest).write_bytes(inner)
    (work / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{inner_digest}",
        "size": len(inner), "annotations": {"io.containerd.image.name": "docker.io/library/multi:arch"}}]}))
    out = svc_root / "multi.tar"
    subprocess.run(["tar", "cf", str(out), "-C", str(work), "."], check=True)
    svc2 = image_service(svc_root / "second")
    with open(out, "rb") as f:
        assert svc2.load(f) == ["multi:arch"]
    assert svc2.resolve("multi:arch").id == img.id


def test_metadata_only_commit(svc: ImageService, busybox_tar: str) -> None:
    base = _import(svc, busybox_tar)
    img = svc.commit(None, base, {"Env": ["X=1"], "Cmd": ["sh"]}, {"created_by": "ENV X=1"}, tags=["meta:1"])
    assert img.diff_ids == base.diff_ids and img.id != base.id
    assert img.config["history"][-1] == {"created_by": "ENV X=1", "created": img.config["created"],
                                         "empty_layer": True}
    assert svc.resolve("meta:1").config["config"]["Env"] == ["X=1"]
    assert [h["Size"] for h in svc.history("meta:1")] == [0, base.size]


def test_gc_removes_orphan_layers_only(svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar)
    orphan = svc.layers.apply(io.BytesIO(_one_file_tar("orphan")), img.layers[-1])
    stacked = svc.layers.apply(io.BytesIO(_one_file_tar("stacked")), img.layers[-1])
    svc.snapshots.prepare("holder", svc.layers.lower_dirs([*img.layers, stacked.chain_id]), mount=False)
    try:
        assert svc.gc_layers() == [orphan.chain_id]
        assert not svc.layers.exists(orphan.chain_id) and not svc.content.exists(orphan.blob or "")
        assert svc.layers.exists(stacked.chain_id) and svc.layers.exists(img.layers[0])
    finally:
        svc.snapshots.remove("holder")
    assert svc.gc_layers() == [stacked.chain_id]
    assert svc.resolve("busybox").id == img.id


def _one_file_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo(name)
        ti.size = 1
        t.addfile(ti, io.BytesIO(b"x"))
    return buf.getvalue()


def test_save_repository_name_saves_every_tag(svc_root: Path, svc: ImageService, busybox_tar: str) -> None:
    img = _import(svc, busybox_tar, "repo", "a")
    svc.tag(img.id, "repo", "b")
    svc.tag(img.id, "repo-other", "c")
    buf = io.BytesIO()
    svc.save(["repo"], buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["repo:a", "repo:b"]
    with pytest.raises(NotFound):
        svc.save(["nothere"], io.BytesIO())


def _step(svc: ImageService, parent, name: str, tags: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """A build step that writes one file: a new layer whose parent image is `parent`."""
    key = "step-" + name
    merged = svc.snapshots.prepare(key, svc.lower_dirs(parent))
    try:
        Path(merged, name).write_text(name)
        return svc.commit(key, parent, None, {"created_by": f"RUN touch /{name}"}, tags=tags)
    finally:
        svc.snapshots.remove(key)


def _chain(svc: ImageService, base, tag: str = "chain:1"):  # type: ignore[no-untyped-def]
    s1 = _step(svc, base, "one")
    s2 = svc.commit(None, s1, {"Env": ["X=1"]}, {"created_by": "ENV X=1"})
    top = _step(svc, s2, "two", tags=(tag,))
    return s1, s2, top


def _ids(rows: list[dict]) -> set[str]:  # type: ignore[type-arg]
    return {r["Id"] for r in rows}


def test_build_steps_record_parents_and_hide_from_the_list(svc: ImageService, busybox_tar: str) -> None:
    base = _import(svc, busybox_tar)
    s1, s2, top = _chain(svc, base)
    assert (s1.parent, s2.parent, top.parent) == (base.id, s1.id, s2.id)
    assert svc.inspect("chain:1")["Parent"] == s2.id
    # history names each step's image, as docker history does once parents are known
    assert [(h["Id"], h["Tags"]) for h in svc.history("chain:1")] == [
        (top.id, ["chain:1"]), (s2.id, None), (s1.id, None), (base.id, ["busybox:latest"])]
    listed = {r["Id"]: r for r in svc.filter_list(all_=True)}
    assert set(listed) == {base.id, s1.id, s2.id, top.id}
    assert listed[top.id]["ParentId"] == s2.id and listed[base.id]["ParentId"] == ""
    # intermediates (untagged, with a child) show only with all; they are not dangling
    assert _ids(svc.filter_list()) == {base.id, top.id}
    assert svc.filter_list(filters={"dangling": ["true"]}) == []
    assert _ids(svc.filter_list(filters={"dangling": ["false"]})) == {base.id, top.id}
    assert _ids(svc.filter_list(all_=True, filters={"dangling": ["false"]})) == {base.id, top.id}
    with pytest.raises(InvalidParameter, match="dangling=maybe"):
        svc.filter_list(filters={"dangling": ["maybe"]})
    assert svc.prune()["ImagesDeleted"] is None
    # a parent with children cannot be deleted by id, even forced
    for force in (False, True):
        with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
            svc.delete(s1.id, force=force)
    with pytest.raises(Conflict, match="image has dependent child images"):
        svc.delete(base.id, force=True)


def test_rmi_deletes_untagged_parents_unless_noprune(svc: ImageService, busybox_tar: str) -> None:
    base = _import(svc, busybox_tar)
    s1, s2, top = _chain(svc, base)
    records = svc.delete("chain:1")
    assert records[0] == {"Untagged": "chain:1"}
    deleted = [r["Deleted"] for r in records[1:]]
    assert [d for d in deleted if d in (top.id, s2.id, s1.id)] == [top.id, s2.id, s1.id]
    assert top.layers[-1] in deleted and s1.layers[-1] in deleted  # their layers went too
    assert base.id not in deleted and svc.resolve("busybox").id == base.id
    assert _ids(svc.filter_list(all_=True)) == {base.id}
    # --no-prune: only the tagged image goes; its parent is left dangling for prune
    s1, s2, top = _chain(svc, base)
    assert svc.delete("chain:1", prune=False) == [{"Untagged": "chain:1"}, {"Deleted": top.id},
                                                  {"Deleted": top.layers[-1]}]
    assert _ids(svc.filter_list(filters={"dangling": ["true"]})) == {s2.id}
    res = svc.prune()
    assert [r["Deleted"] for r in res["ImagesDeleted"] if r.get("Deleted", "").startswith("sha256:")
            and r["Deleted"] in (s1.id, s2.id)] == [s2.id, s1.id]
    assert res["SpaceReclaimed"] == len("one")  # the layer of step one: one 3-byte file
    assert _ids(svc.filter_list(all_=True)) == {base.id}


def test_prune_all_removes_unused_images_only(svc: ImageService, busybox_tar: str) -> None:
    base = _import(svc, busybox_tar)
    s1, s2, top = _chain(svc, base)
    other = svc.commit(None, base, {"Cmd": ["true"]}, {"created_by": "CMD true"}, tags=["kept:1"])
    svc.in_use = lambda image_id: ["c" * 64] if image_id == other.id else []
    res = svc.prune(dangling_only=False)
    gone = {r["Deleted"] for r in res["ImagesDeleted"] if "Deleted" in r}
    assert {top.id, s2.id, s1.id} <= gone and {"Untagged": "chain:1"} in res["ImagesDeleted"]
    # kept:1 is used by a container, so it and its parent busybox stay
    assert other.id not in gone and base.id not in gone
    assert _ids(svc.filter_list(all_=True)) == {base.id, other.id}
    svc.in_use = lambda image_id: []
    res = svc.prune(dangling_only=False)
    assert {r.get("Deleted") for r in res["ImagesDeleted"]} >= {other.id, base.id}
    assert svc.filter_list(all_=True) == []


def test_rmi_running_versus_stopped_container(svc: ImageService, busybox_tar: str) -> None:
    """dockerd's rules: a running container's image cannot be deleted by id even with -f
    (by name -f only untags it); a stopped container's image is deleted with -f, its
    layers staying under the container until the container is removed."""
    base = _import(svc, busybox_tar)
    s1, s2, top = _chain(svc, base, tag="used:1")
    cid = "d" * 64
    running = {cid: True}
    svc.in_use = lambda image_id: [cid] if image_id == top.id else []
    svc.container_running = lambda c: running.get(c, False)
    for force in (False, True):
        with pytest.raises(Conflict) as exc:
            svc.delete(top.id, force=force)
        assert str(exc.value) == (f"conflict: unable to delete {top.short_id} (cannot be forced) - "
                                  f"image is being used by running container {'d' * 12}")
    with pytest.raises(Conflict, match="must force"):
        svc.delete("used:1")
    assert svc.delete("used:1", force=True) == [{"Untagged": "used:1"}]
    assert svc.resolve(top.id).repo_tags == [] and top.id in _ids(svc.filter_list())  # dangling now
    svc.tag(top.id, "used", "1")
    # the container stops: the soft conflict asks for force, and force deletes
    running[cid] = False
    with pytest.raises(Conflict) as exc:
        svc.delete(top.id)
    assert str(exc.value) == (f"conflict: unable to delete {top.short_id} (must be forced) - "
                              f"image is being used by stopped container {'d' * 12}")
    holder = svc.snapshots.prepare(cid, svc.lower_dirs(top))
    try:
        records = svc.delete("used:1", force=True)
        assert records[:2] == [{"Untagged": "used:1"}, {"Deleted": top.id}]
        assert {"Deleted": s2.id} in records and {"Deleted": s1.id} in records
        assert _ids(svc.filter_list(all_=True)) == {base.id}
        # the container's rootfs still has every layer of the deleted image
        assert Path(holder, "two").read_text() == "two" and Path(holder, "one").read_text() == "one"
        assert svc.layers.exists(top.layers[-1]) and svc.layers.exists(s1.layers[-1])
        assert svc.gc_layers() == []  # held by the snapshot
    finally:
        svc.snapshots.remove(cid)
    # the container is gone: its layers go with it
    assert not svc.layers.exists(top.layers[-1]) and not svc.layers.exists(s1.layers[-1])
    assert svc.layers.exists(base.layers[0])
    assert not svc.store.has_orphan_layers()
