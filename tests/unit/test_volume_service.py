import os

import pytest

from berth.config import DaemonConfig
from berth.engine.db import Database
from berth.engine.volumes import VolumeService
from berth.errors import Conflict, InvalidParameter, NotFound


@pytest.fixture
def svc(tmp_path):
    cfg = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "run")
    cfg.volumes_dir.mkdir(parents=True)
    db = Database(tmp_path / "berth.db")
    try:
        yield VolumeService(cfg, db)
    finally:
        db.close()


@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "srv" / "app").mkdir(parents=True)
    (r / "srv" / "app" / "index.html").write_text("from the image\n")
    (r / "empty").mkdir()
    return str(r)


def test_create_get_list_remove(svc):
    v = svc.create("data", labels={"a": "b"})
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Mountpoint"].endswith("volumes/data/_data")
    assert os.path.isdir(v["Mountpoint"])
    assert svc.create("data")["Name"] == "data"            # idempotent, as Docker
    assert [x["Name"] for x in svc.list({"label": ["a=b"]})] == ["data"]
    assert svc.list({"label": ["a=c"]}) == []
    anon = svc.create()
    assert len(anon["Name"]) == 64
    svc.remove("data")
    with pytest.raises(NotFound, match="no such volume"):
        svc.get("data")
    assert not os.path.exists(v["Mountpoint"])
    svc.remove("data", force=True)
    with pytest.raises(InvalidParameter):
        svc.create("bad/name")
    with pytest.raises(InvalidParameter):
        svc.create("x1", options={"bogus": "1"})


def test_named_volume_filled_from_image_and_kept(svc, rootfs):
    mps = svc.prepare_mounts("c1", ["web:/srv/app"], [], {}, {}, rootfs)
    assert len(mps) == 1
    mp = mps[0]
    assert mp.oci["type"] == "bind" and mp.oci["destination"] == "/srv/app"
    assert mp.inspect["Type"] == "volume" and mp.inspect["Name"] == "web" and mp.inspect["RW"]
    assert open(os.path.join(mp.oci["source"], "index.html")).read() == "from the image\n"
    with open(os.path.join(mp.oci["source"], "new.txt"), "w") as f:
        f.write("written by c1")
    with pytest.raises(Conflict, match="in use"):
        svc.remove("web")
    assert svc.release("c1", remove_anonymous=True) == []
    # the data outlives the container; a second container sees it, no copy-up over it
    mp2 = svc.prepare_mounts("c2", ["web:/srv/app"], [], {}, {}, rootfs)[0]
    assert open(os.path.join(mp2.oci["source"], "new.txt")).read() == "written by c1"
    svc.release("c2", False)
    svc.remove("web")


def test_anonymous_volumes_reused_per_container_and_removed_with_rm_v(svc, rootfs):
    first = svc.prepare_mounts("c1", ["/cache"], [], {}, {"/srv/app": {}}, rootfs)
    names = sorted(m.inspect["Name"] for m in first)
    assert len(names) == 2 and all(len(n) == 64 for n in names)
    img_vol = next(m for m in first if m.inspect["Destination"] == "/srv/app")
    assert os.path.exists(os.path.join(img_vol.oci["source"], "index.html"))
    again = svc.prepare_mounts("c1", ["/cache"], [], {}, {"/srv/app": {}}, rootfs)
    assert sorted(m.inspect["Name"] for m in again) == names     # a restart keeps them
    assert sorted(svc.release("c1", remove_anonymous=True)) == names
    assert svc.list() == []


def test_prune_removes_unused_anonymous_only_by_default(svc):
    svc.create("keep")
    anon = svc.create()["Name"]
    svc.prepare_mounts("c1", ["/x"], [], {}, {}, None)
    res = svc.prune()
    assert res["VolumesDeleted"] == [anon]
    assert {v["Name"] for v in svc.list()} >= {"keep"}
    res = svc.prune({"all": ["true"]})
    assert res["VolumesDeleted"] == ["keep"]
    assert len(svc.list()) == 1                                   # c1's volume is in use


def test_bind_tmpfs_and_errors_leave_nothing(svc, tmp_path, rootfs):
    host = tmp_path / "hostdir"
    mps = svc.prepare_mounts("c1", [f"{host}:/h:ro"], [{"Type": "tmpfs", "Target": "/t"}], {"/run": "size=1m"},
                             {}, rootfs)
    assert host.is_dir()
    kinds = {m.inspect["Destination"]: m.inspect["Type"] for m in mps}
    assert kinds == {"/h": "bind", "/t": "tmpfs", "/run": "tmpfs"}
    assert mps[0].oci["options"] == ["rbind", "ro", "rprivate"]
    with pytest.raises(InvalidParameter, match="bind source path does not exist"):
        svc.prepare_mounts("c2", ["newvol:/a"], [{"Type": "bind", "Source": str(tmp_path / "nope"), "Target": "/b"}],
                           {}, {}, rootfs)
    assert [v["Name"] for v in svc.list()] == []                  # the volume made first was undone
    with pytest.raises(InvalidParameter, match="Duplicate mount point"):
        svc.prepare_mounts("c3", ["aa:/x", "bb:/x"], [], {}, {}, rootfs)


def test_usage_data(svc, rootfs):
    svc.prepare_mounts("c1", ["web:/srv/app"], [], {}, {}, rootfs)
    plain = svc.list()[0]
    assert plain["UsageData"] == {"Size": -1, "RefCount": 1}
    sized = svc.list(usage=True)[0]
    assert sized["UsageData"]["Size"] > 0 and sized["UsageData"]["RefCount"] == 1
