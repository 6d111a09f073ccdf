"""HostConfig parsing and validation (pure): devices, cgroup rules, runtimes, init, user
namespaces, storage options, block I/O, real-time, volumes-from, and what reaches the spec."""

from __future__ import annotations

import json
import os

import pytest

from berth.engine import hostconfig, specgen
from berth.engine.volumes import inherited_specs, parse_volumes_from
from berth.errors import InvalidParameter


@pytest.mark.parametrize("rule,want", [
    ("c 10:229 rwm", {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ("b *:* r", {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "r"}),
    ("a 1:* mw", {"allow": True, "type": "a", "major": 1, "minor": -1, "access": "mw"}),
])
def test_device_cgroup_rule(rule, want):
    assert hostconfig.parse_device_cgroup_rule(rule) == want


@pytest.mark.parametrize("rule", ["c 10:229", "x 1:2 r", "c 1:2 rwx", "c a:2 r", "c 1:2 rwmr", " c 1:2 r"])
def test_bad_device_cgroup_rule(rule):
    with pytest.raises(InvalidParameter, match=f"invalid device cgroup rule format: '{rule}'"):
        hostconfig.parse_device_cgroup_rule(rule)


@pytest.mark.parametrize("perms,ok", [("rwm", True), ("r", True), ("mw", True), ("", False), ("rr", False),
                                      ("rwx", False), ("rwmr", False)])
def test_device_mode(perms, ok):
    if ok:
        hostconfig.check_device_mode(perms)
    else:
        with pytest.raises(InvalidParameter, match="invalid device mode"):
            hostconfig.check_device_mode(perms)


def test_devices_from_path_copies_the_host_node():
    st = os.stat("/dev/null")
    nodes, rules = hostconfig.devices_from_path("/dev/null", "/dev/mynull", "rw")
    assert nodes == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": st.st_mode & 0o7777,
                      "uid": st.st_uid, "gid": st.st_gid}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]


def test_devices_from_path_errors(tmp_path):
    with pytest.raises(InvalidParameter) as e:
        hostconfig.devices_from_path("/dev/nope", "/dev/nope", "rwm")
    assert str(e.value) == ('error gathering device information while adding custom device "/dev/nope": '
                            "no such file or directory")
    (tmp_path / "file").write_text("x")
    for path in (tmp_path, tmp_path / "file"):   # a directory without devices, a plain file
        with pytest.raises(InvalidParameter, match=f'custom device "{path}": not a device node'):
            hostconfig.devices_from_path(str(path), "/dev/x", "rwm")


def test_host_devices_defaults_and_rules():
    nodes, rules = hostconfig.host_devices({"Devices": [{"PathOnHost": "/dev/null"}],
                                         "DeviceCgroupRules": ["c 10:229 rwm"]})
    assert nodes[0]["path"] == "/dev/null"
    assert [r["access"] for r in rules] == ["rwm", "rwm"] and rules[1]["major"] == 10
    with pytest.raises(InvalidParameter, match="bad format for path: dev/x"):
        hostconfig.host_devices({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "dev/x"}]})


@pytest.mark.parametrize("hc,msg", [
    ({"Runtime": "nope"}, "unknown or invalid runtime name: nope"),
    ({"UsernsMode": "private"}, "berth has no user namespace remapping"),
    ({"StorageOpt": {"size": "1G"}}, "--storage-opt is supported only for overlay over xfs with 'pquota'"),
    ({"Annotations": {"": "x"}}, "the empty string is not permitted as an annotation key"),
    ({"MaskedPaths": "/proc"}, "invalid MaskedPaths"),
    ({"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 2000}, "cpu real-time runtime cannot be higher"),
])
def test_validate_create_refuses(hc, msg):
    with pytest.raises(InvalidParameter, match=msg):
        hostconfig.validate_create(hc, ncpu=2)


def test_validate_create_normalizes():
    hc: dict = {"UsernsMode": "host"}
    assert hostconfig.validate_create(hc, ncpu=2) == []
    assert hc["Runtime"] == hostconfig.DEFAULT_RUNTIME
    assert hc["MaskedPaths"] == hostconfig.MASKED_PATHS and hc["ReadonlyPaths"] == hostconfig.READONLY_PATHS
    hc = {"Runtime": "runc", "MaskedPaths": [], "ReadonlyPaths": []}
    hostconfig.validate_create(hc, ncpu=2)
    assert (hc["Runtime"], hc["MaskedPaths"], hc["ReadonlyPaths"]) == ("runc", [], [])
    hc = {"Privileged": True}
    hostconfig.validate_create(hc, ncpu=2)
    assert "MaskedPaths" not in hc


def test_init_binary(tmp_path):
    with pytest.raises(InvalidParameter, match="is not an executable file"):
        hostconfig.init_binary(str(tmp_path / "nope"))
    tool = tmp_path / "init"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert hostconfig.init_binary(str(tool)) == str(tool)


@pytest.fixture
def blkio(monkeypatch):
    """Pretend the kernel offers the block I/O features in the returned dict."""
    support: dict[str, bool] = {}
    monkeypatch.setattr(hostconfig, "blkio_support", lambda: support)
    return support


def test_blkio_weight_unsupported_is_dropped_with_dockers_warning(blkio):
    hc = {"BlkioWeight": 5, "BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]}
    warnings = hostconfig.check_blkio(hc)
    assert warnings == [hostconfig.BLKIO_WEIGHT_WARNING, hostconfig.BLKIO_THROTTLES["BlkioDeviceReadBps"][2]]
    assert hc["BlkioWeight"] == 0 and hc["BlkioDeviceReadBps"] == []


def test_blkio_checks_when_supported(blkio):
    blkio.update(dict.fromkeys(("weight", "weight_device", *hostconfig.BLKIO_THROTTLES), True))
    for weight in (5, 1001, -1):
        with pytest.raises(InvalidParameter, match="Range of blkio weight is from 10 to 1000"):
            hostconfig.check_blkio({"BlkioWeight": weight})
    assert hostconfig.check_blkio({"BlkioWeight": 10}) == []
    with pytest.raises(InvalidParameter, match='invalid BlkioDeviceReadBps: "/dev/nope": no such file'):
        hostconfig.check_blkio({"BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]})
    with pytest.raises(InvalidParameter, match='"/dev/null" is not a block device'):
        hostconfig.check_blkio({"BlkioDeviceWriteIOps": [{"Path": "/dev/null", "Rate": 1}]})
    with pytest.raises(InvalidParameter, match="invalid weight for device"):
        hostconfig.check_blkio({"BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 2000}]})


def test_block_io_spec(monkeypatch):
    monkeypatch.setattr(hostconfig, "_block_device", lambda key, path: (8, 0))
    bio = hostconfig.block_io({"BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 20}],
                            "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1024}],
                            "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 7}]})
    assert bio == {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 20}],
                   "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
                   "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]}
    assert hostconfig.block_io({}) is None


@pytest.mark.parametrize("spec,want", [("c1", ("c1", False)), ("c1:ro", ("c1", True)), ("c1:rw", ("c1", False)),
                                       ("c1:ro,z", ("c1", True))])
def test_parse_volumes_from(spec, want):
    assert parse_volumes_from(spec) == want


@pytest.mark.parametrize("spec,msg", [("", "cannot be an empty string"), ("c1:rshared", "invalid mode: rshared"),
                                      ("c1:nocopy", "invalid mode: nocopy"), ("c1:ro,rw", "invalid mode: ro,rw")])
def test_parse_volumes_from_errors(spec, msg):
    with pytest.raises(InvalidParameter, match=msg):
        parse_volumes_from(spec)


def test_inherited_specs_keep_mode_unless_ro():
    mounts = [{"Type": "volume", "Name": "v1", "Source": "/x/_data", "Destination": "/a", "RW": True, "Mode": "z"},
              {"Type": "bind", "Source": "/host", "Destination": "/b", "RW": False, "Propagation": "rslave"},
              {"Type": "tmpfs", "Source": "", "Destination": "/t", "RW": True}]
    a, b = inherited_specs(mounts, readonly=False)
    assert (a.type, a.source, a.target, a.readonly, a.nocopy) == ("volume", "v1", "/a", False, True)
    assert (b.type, b.source, b.readonly, b.propagation) == ("bind", "/host", True, "rslave")
    assert all(s.readonly for s in inherited_specs(mounts, readonly=True))


def test_spec_gets_init_devices_annotations_and_paths(tmp_path):
    init = tmp_path / "tini"
    init.write_text("")
    init.chmod(0o755)
    hc = {"Init": True, "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n2",
                                     "CgroupPermissions": "r"}],
          "DeviceCgroupRules": ["c 10:* rw"], "Annotations": {"a": "b"}, "MaskedPaths": ["/x"], "ReadonlyPaths": []}
    spec = specgen.generate(specgen.SpecInputs(id="c" * 64, rootfs=str(tmp_path), config={"Cmd": ["sleep", "1"]},
                                               host_config=hc, cgroup_parent="berth", hostname="h",
                                               init_path=str(init)))
    assert spec["process"]["args"] == [hostconfig.INIT_IN_CONTAINER, "--", "sleep", "1"]
    assert {"destination": hostconfig.INIT_IN_CONTAINER, "type": "bind", "source": str(init),
            "options": ["rbind", "ro"]} in spec["mounts"]
    assert [d["path"] for d in spec["linux"]["devices"]] == ["/dev/n2"]
    rules = spec["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert rules[-2:] == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
                          {"allow": True, "type": "c", "major": 10, "minor": -1, "access": "rw"}]
    assert spec["annotations"] == {"a": "b"}
    assert spec["linux"]["maskedPaths"] == ["/x"] and spec["linux"]["readonlyPaths"] == []
    # privileged: every device allowed, nothing masked, the node still made
    spec = specgen.generate(specgen.SpecInputs(id="c" * 64, rootfs=str(tmp_path), config={"Cmd": ["true"]},
                                               host_config={**hc, "Init": False, "Privileged": True},
                                               cgroup_parent="berth", hostname="h"))
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert spec["linux"]["maskedPaths"] == [] and len(spec["linux"]["devices"]) == 1
    assert spec["process"]["args"] == ["true"]


@pytest.mark.parametrize("hc,msg", [
    ({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]},
     'could not select device driver "" with capabilities: [[gpu]]'),
    ({"IOMaximumBandwidth": 10}, "Invalid QoS settings: linux does not support Maximum IO Bandwidth"),
    ({"Isolation": "hyperv"}, "invalid isolation: \"hyperv\" - linux only supports 'default'"),
])
def test_windows_and_device_request_fields_are_refused(hc, msg):
    with pytest.raises(InvalidParameter) as e:
        hostconfig.validate_create(hc, ncpu=2)
    assert str(e.value) == msg or msg in str(e.value)


def test_windows_cpu_fields_are_dropped_with_a_warning():
    hc = {"CpuCount": 2, "CpuPercent": 50, "Isolation": "default"}
    assert hostconfig.validate_create(hc, ncpu=2) == ["linux does not support CPU count. Count discarded.",
                                                   "linux does not support CPU percent. Percent discarded."]
    assert hc["CpuCount"] == 0 and hc["CpuPercent"] == 0


# --- second round: security options, log drivers, namespace modes, dropped settings, links


@pytest.mark.parametrize("opts,nnp,seccomp,paths", [
    (["no-new-privileges"], True, "", False),
    (["no-new-privileges:false"], False, "", False),
    (["no-new-privileges=true", "seccomp=unconfined"], True, "unconfined", False),
    (["label=disable", "label:type:x", "disable", "apparmor=unconfined"], False, "", False),
    (["systempaths=unconfined"], False, "", True),
])
def test_parse_security_opts(opts, nnp, seccomp, paths):
    sec = hostconfig.parse_security_opts(opts)
    assert (sec.no_new_privileges, sec.seccomp, sec.unconfined_paths) == (nnp, seccomp, paths)


@pytest.mark.parametrize("opt,msg", [
    ("bogus", 'invalid --security-opt 1: "bogus"'),
    ("bogus=1", 'invalid --security-opt 2: "bogus=1"'),
    ("no-new-privileges:maybe", 'invalid --security-opt 2: "no-new-privileges:maybe"'),
    ("systempaths=confined", 'invalid --security-opt 2: "systempaths=confined"'),
])
def test_bad_security_opts(opt, msg):
    with pytest.raises(InvalidParameter) as e:
        hostconfig.parse_security_opts([opt])
    assert str(e.value) == msg


def test_apparmor_profile_refused_where_apparmor_is_on(monkeypatch):
    monkeypatch.setattr(hostconfig, "_lsm_enabled", lambda name: name == "apparmor")
    hostconfig.parse_security_opts(["apparmor=unconfined", "label=type:x"])
    with pytest.raises(InvalidParameter, match="cannot apply apparmor"):
        hostconfig.parse_security_opts(["apparmor=docker-default"])


def test_custom_seccomp_profile():
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                                           "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"},
                         {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}}]}
    sec = hostconfig.SecurityOpts(seccomp=json.dumps(prof))
    out = hostconfig.custom_seccomp(sec, ["CAP_CHOWN"])
    assert out["defaultAction"] == "SCMP_ACT_ALLOW"
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [r["names"] for r in out["syscalls"]] == [["mkdir"]]
    assert hostconfig.custom_seccomp(hostconfig.SecurityOpts(seccomp="unconfined"), []) is None
    with pytest.raises(InvalidParameter, match="^Decoding seccomp profile failed: "):
        hostconfig.custom_seccomp(hostconfig.SecurityOpts(seccomp="/etc/profile.json"), [])
    with pytest.raises(InvalidParameter, match="unsupported seccomp action SCMP_ACT_NOPE"):
        hostconfig.custom_seccomp(hostconfig.SecurityOpts(seccomp='{"defaultAction": "SCMP_ACT_NOPE"}'), [])


def test_validate_create_systempaths_and_seccomp():
    hc = {"SecurityOpt": ["systempaths=unconfined"]}
    hostconfig.validate_create(hc, ncpu=2)
    assert hc["MaskedPaths"] == [] and hc["ReadonlyPaths"] == []
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        hostconfig.validate_create({"SecurityOpt": ["seccomp={"]}, ncpu=2)


@pytest.mark.parametrize("lc,stored,warnings", [
    (None, {"Type": "json-file", "Config": {}}, 0),
    ({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
     {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}, 0),
    ({"Type": "json-file", "Config": {"tag": "x", "labels": "a"}}, {"Type": "json-file", "Config": {}}, 2),
    ({"Type": "none", "Config": {"max-size": "1m"}}, {"Type": "none", "Config": {"max-size": "1m"}}, 0),
])
def test_log_config(lc, stored, warnings):
    hc = {"LogConfig": lc}
    assert len(hostconfig.check_log_config(hc)) == warnings
    assert hc["LogConfig"] == stored


@pytest.mark.parametrize("lc,msg", [
    ({"Type": "bogus"}, 'error looking up logging plugin bogus: plugin "bogus" not found'),
    ({"Type": "syslog"}, 'logging driver "syslog" is not supported by berth: use json-file or none'),
    ({"Type": "json-file", "Config": {"x": "1"}}, "unknown log opt 'x' for json-file log driver"),
])
def test_log_config_refused(lc, msg):
    with pytest.raises(InvalidParameter) as e:
        hostconfig.check_log_config({"LogConfig": lc})
    assert str(e.value) == msg


@pytest.mark.parametrize("hc,msg", [
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"IpcMode": "container:"}, "invalid IPC mode: container:"),
    ({"PidMode": "private"}, "invalid PID mode: private"),
    ({"UTSMode": "private"}, "invalid UTS mode: private"),
])
def test_namespace_modes_refused(hc, msg):
    with pytest.raises(InvalidParameter) as e:
        hostconfig.check_namespace_modes(hc)
    assert str(e.value) == msg


def test_namespace_modes_in_the_spec(tmp_path):
    hc = {"IpcMode": "private", "PidMode": "host"}
    hostconfig.check_namespace_modes({"IpcMode": ""})
    assert hostconfig.joined_container("container:abc") == "abc" and hostconfig.joined_container("host") == ""

    def spec(hc: dict, **kw) -> dict:
        return specgen.generate(specgen.SpecInputs(id="c" * 64, rootfs=str(tmp_path), config={"Cmd": ["true"]},
                                                   host_config=hc, cgroup_parent="berth", hostname="h", **kw))
    s = spec(hc)
    assert "pid" not in [n["type"] for n in s["linux"]["namespaces"]]
    s = spec({"IpcMode": "container:x", "PidMode": "container:x"},
             joined={"pid": "/proc/7/ns/pid", "ipc": "/proc/7/ns/ipc"}, shm_source="/d/shm")
    assert {"type": "pid", "path": "/proc/7/ns/pid"} in s["linux"]["namespaces"]
    assert {"type": "ipc", "path": "/proc/7/ns/ipc"} in s["linux"]["namespaces"]
    assert [m for m in s["mounts"] if m["destination"] == "/dev/shm"] == [
        {"destination": "/dev/shm", "type": "bind", "source": "/d/shm", "options": ["rbind", "rprivate"]}]
    s = spec({"IpcMode": "none"})
    assert not [m for m in s["mounts"] if m["destination"] == "/dev/shm"]
    assert {"type": "ipc"} in s["linux"]["namespaces"]
    s = spec({"SecurityOpt": ["no-new-privileges:false", "seccomp=unconfined"]}, seccomp={"defaultAction": "x"})
    assert s["process"]["noNewPrivileges"] is False and "seccomp" not in s["linux"]


def test_dropped_settings_and_volume_driver():
    hc = {"KernelMemory": 1 << 20, "KernelMemoryTCP": 1 << 20, "Cgroup": "container:x"}
    assert len(hostconfig.check_dropped(hc)) == 3
    assert hc == {"KernelMemory": 0, "KernelMemoryTCP": 0, "Cgroup": ""}
    hostconfig.check_volume_driver({"VolumeDriver": "foo", "Binds": ["/host:/x"]}, [])
    hostconfig.check_volume_driver({"VolumeDriver": "local", "Binds": ["v:/x"]}, ["/data"])
    with pytest.raises(InvalidParameter, match='^create v: error looking up volume plugin foo: plugin "foo"'):
        hostconfig.check_volume_driver({"VolumeDriver": "foo", "Binds": ["v:/x"]}, [])
    with pytest.raises(InvalidParameter, match="^create /data: "):
        hostconfig.check_volume_driver({"VolumeDriver": "foo"}, ["/data"])
