import pytest

from berth.errors import InvalidParameter
from berth.volume import mounts
from berth.volume.local import resolve_in_root


def test_bind_specs():
    m = mounts.parse_bind("data:/var/lib/data:ro")
    assert (m.type, m.source, m.target, m.readonly) == ("volume", "data", "/var/lib/data", True)
    m = mounts.parse_bind("/srv/www/:/usr/share/html:ro,z")
    assert (m.type, m.source, m.target, m.readonly, m.create_host_path) == ("bind", "/srv/www", "/usr/share/html", True, True)
    m = mounts.parse_bind("/cache")
    assert (m.type, m.source, m.target) == ("volume", "", "/cache")
    m = mounts.parse_bind("/a:/b:rshared")
    assert m.propagation == "rshared"
    assert mounts.parse_bind("vv:/x:nocopy").nocopy


@pytest.mark.parametrize("bad", ["", "relative", "vv:relative", "v:/x", "bad name:/x", "vv:/x:xyz", "/a:/b:ro,rw",
                                 "vv:/x:rshared", "/a:/b:nocopy", "a:b:c:d", "vv:/"])
def test_bind_specs_rejected(bad):
    with pytest.raises(InvalidParameter):
        mounts.parse_bind(bad)


def test_mount_flag_to_api_and_back():
    api = mounts.parse_mount_flag("type=volume,source=data,target=/data,readonly,volume-opt=type=tmpfs,"
                                  "volume-opt=device=tmpfs,volume-label=a=b")
    assert api == {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True,
                   "VolumeOptions": {"DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}},
                                     "Labels": {"a": "b"}}}
    spec = mounts.from_api_mount(api)
    assert spec.volume_options == {"type": "tmpfs", "device": "tmpfs"} and spec.readonly
    t = mounts.from_api_mount(mounts.parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1700"))
    assert t.tmpfs_options == [f"size={64 * 1024 * 1024}", "mode=1700"]
    b = mounts.from_api_mount({"Type": "bind", "Source": "/srv", "Target": "/x",
                               "BindOptions": {"Propagation": "rslave"}})
    assert mounts.oci_options(b) == ["rbind", "rw", "rslave"]
    with pytest.raises(InvalidParameter):
        mounts.from_api_mount({"Type": "bind", "Source": "rel", "Target": "/x"})
    with pytest.raises(InvalidParameter):
        mounts.from_api_mount({"Type": "nfs", "Target": "/x"})
    with pytest.raises(InvalidParameter):
        mounts.from_api_mount({"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "x"}}})


def test_tmpfs_options():
    m = mounts.parse_tmpfs("/run", "size=10m,exec")
    opts = mounts.oci_options(m)
    assert "noexec" not in opts and "size=10m" in opts and "nosuid" in opts and "mode=1777" in opts
    assert mounts.oci_options(mounts.parse_tmpfs("/run", "ro"))[-1] == "ro"


def test_resolve_in_root_keeps_symlinks_inside(tmp_path):
    root = tmp_path / "root"
    (root / "real" / "data").mkdir(parents=True)
    (root / "link").symlink_to("/real")
    (root / "escape").symlink_to("../../../../etc")
    assert resolve_in_root(str(root), "/link/data") == str(root / "real" / "data")
    assert resolve_in_root(str(root), "/escape/passwd") == str(root) + "/etc/passwd"
    assert resolve_in_root(str(root), "/") == str(root) + "/"


@pytest.mark.parametrize("mount, says", [
    ({"Type": "bind", "Source": "/tmp", "Target": "/x", "VolumeOptions": {"NoCopy": True}},
     'invalid mount config for type "bind": field VolumeOptions must not be specified'),
    ({"Type": "bind", "Source": "/tmp", "Target": "/x", "TmpfsOptions": {}},
     'invalid mount config for type "bind": field TmpfsOptions must not be specified'),
    ({"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "rshared"}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "tmpfs", "Target": "/x", "VolumeOptions": {}},
     'invalid mount config for type "tmpfs": field VolumeOptions must not be specified'),
    ({"Type": "tmpfs", "Source": "/src", "Target": "/x"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
])
def test_options_of_another_mount_type_are_refused_as_moby(mount: dict, says: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        mounts.from_api_mount(mount)
    assert str(exc.value) == says


def test_a_mount_types_own_options_are_taken() -> None:
    assert mounts.from_api_mount({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": 1024}}) \
        .tmpfs_options == ["size=1024"]
    assert mounts.from_api_mount({"Type": "bind", "Source": "/tmp", "Target": "/x",
                                  "BindOptions": {"Propagation": "rslave"}}).propagation == "rslave"
