"""Pure parts of the runtime: the spec structures, option parsing, path resolution,
capabilities, rlimit clamping, signals, cgroup paths, seccomp profile data."""

from __future__ import annotations

import json
import os
import resource

import pytest

from berth.runtime import capabilities, mounts, process, rlimits, spec
from berth.runtime.cgroups import normalize_path
from berth.runtime.cgroups.v2 import shares_to_weight
from berth.runtime.errors import ExecNotFound, ExecNotPermitted, RuntimeFailure
from berth.runtime.runtime import parse_signal

RUNC_SPEC = {
    "ociVersion": "1.0.2-dev",
    "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                                 for k in ("bounding", "effective", "permitted", "ambient")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": True},
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def test_default_spec_equals_runc_spec():
    assert json.loads(spec.dumps(spec.default_spec())) == RUNC_SPEC


def test_round_trip_and_unknown_fields_ignored():
    data = json.loads(json.dumps(RUNC_SPEC))
    data["someFutureField"] = {"x": 1}
    data["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_RT"}
    data["linux"]["resources"]["memory"] = {"limit": 1 << 25, "swap": 1 << 26, "disableOOMKiller": False}
    data["linux"]["cgroupsPath"] = "/berth/x"
    data["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                              "args": [{"index": 0, "value": 1, "valueTwo": 0,
                                                        "op": "SCMP_CMP_EQ"}]}]}
    sp = spec.loads(json.dumps(data))
    assert sp.linux.resources.memory.limit == 1 << 25
    assert sp.linux.resources.memory.disable_oom_killer is False
    assert sp.linux.cgroups_path == "/berth/x"
    assert sp.linux.seccomp.syscalls[0].args[0].value_two == 0
    assert sp.process.no_new_privileges is True
    back = sp.to_dict()
    assert "someFutureField" not in back
    assert back["linux"]["resources"]["memory"]["disableOOMKiller"] is False
    assert back["linux"]["seccomp"]["defaultErrnoRet"] == 1
    assert back["mounts"] == RUNC_SPEC["mounts"]


def test_invalid_json_is_a_clear_error():
    with pytest.raises(ValueError, match="not valid JSON"):
        spec.loads("{nope")
    with pytest.raises(ValueError, match="expected an object"):
        spec.loads('{"process": []}')


def test_namespace_lookup():
    sp = spec.default_spec()
    assert sp.namespace("pid").type == "pid"
    assert sp.namespace("cgroup") is None


def test_mount_options():
    flags, prop, data = mounts.parse_options(["nosuid", "noexec", "ro", "rslave", "mode=755", "size=65536k"])
    from berth import kernel
    assert flags == kernel.MS_NOSUID | kernel.MS_NOEXEC | kernel.MS_RDONLY
    assert prop == [kernel.MS_SLAVE | kernel.MS_REC]
    assert data == "mode=755,size=65536k"
    flags, _, _ = mounts.parse_options(["rbind", "ro", "rw"])
    assert flags == kernel.MS_BIND | kernel.MS_REC


def test_secure_join_never_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")            # absolute link: resolved inside root
    os.symlink("../../../../..", root / "up")   # climbing link: stops at root
    assert mounts.secure_join(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert mounts.secure_join(str(root), "/up/etc") == str(root / "etc")
    assert mounts.secure_join(str(root), "/../../x") == str(root / "x")
    assert mounts.secure_join(str(root), "a/./b") == str(root / "a" / "b")


def test_docker_default_caps_mask():
    assert capabilities.mask(capabilities.DOCKER_DEFAULT) == 0xA80425FB


def test_docker_cap_add_drop_rules():
    caps = capabilities.docker_set(cap_add=["NET_ADMIN"], cap_drop=["chown"])
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps
    assert capabilities.docker_set(cap_drop=["ALL"], cap_add=["KILL"]) == ["CAP_KILL"]
    assert len(capabilities.docker_set(privileged=True)) == capabilities.last_cap() + 1
    with pytest.raises(ValueError, match="unknown capability"):
        capabilities.docker_set(cap_add=["CAP_FLY"])


def test_rlimit_clamp():
    inf = resource.RLIM_INFINITY
    assert rlimits.clamp(1 << 30, 1 << 30, 20000) == (20000, 20000)
    assert rlimits.clamp(100, 200, 20000) == (100, 200)
    assert rlimits.clamp(2**64 - 1, 2**64 - 1, inf) == (inf, inf)
    assert rlimits.clamp(2**64 - 1, 2**64 - 1, 4096) == (4096, 4096)


def test_signal_names():
    assert parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("9") == 9
    assert parse_signal(15) == 15
    with pytest.raises(RuntimeFailure, match="unknown signal"):
        parse_signal("SIGNOPE")


def test_cgroup_paths():
    assert normalize_path("/docker/abc", "abc") == "/docker/abc"
    assert normalize_path(None, "abc") == "/berth/abc"
    assert normalize_path("system.slice:docker:abc", "abc") == "/system.slice/docker-abc.scope"
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000


def test_exec_lookup(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    noexec = bindir / "data"
    noexec.write_text("x")
    noexec.chmod(0o644)
    env = {"PATH": f"/nonexistent:{bindir}"}
    assert process.lookup("tool", env) == str(exe)
    with pytest.raises(ExecNotFound, match="executable file not found in \\$PATH"):
        process.lookup("missing", env)
    with pytest.raises(ExecNotFound, match="no such file"):
        process.lookup(str(bindir / "missing"), env)
    with pytest.raises(ExecNotPermitted, match="permission denied"):
        process.lookup(str(bindir), env)
    if os.geteuid() != 0:  # root may read anything but still needs an x bit: access() says so
        with pytest.raises(ExecNotPermitted):
            process.lookup(str(noexec), env)


def test_final_env_adds_path_home_term():
    env = process.final_env(["FOO=1"], 0, True)
    assert env[0] == "FOO=1"
    assert any(e.startswith("PATH=") for e in env) and "TERM=xterm" in env
    assert any(e.startswith("HOME=") for e in env)
    assert process.final_env(["PATH=/x", "HOME=/h"], 0, False) == ["PATH=/x", "HOME=/h"]


def test_docker_seccomp_profile_depends_on_caps():
    from berth.runtime import seccomp
    base = seccomp.docker_default(capabilities.DOCKER_DEFAULT, arch="amd64")
    names = {n for r in base.syscalls for n in r.names if r.action == "SCMP_ACT_ALLOW"}
    assert {"read", "write", "execve", "clone", "chroot", "arch_prctl"} <= names
    assert not {"mount", "unshare", "setns", "reboot"} & names
    assert base.default_action == "SCMP_ACT_ERRNO" and base.default_errno_ret == 1
    admin = seccomp.docker_default(capabilities.DOCKER_DEFAULT + ["CAP_SYS_ADMIN"], arch="amd64")
    admin_names = {n for r in admin.syscalls for n in r.names if r.action == "SCMP_ACT_ALLOW"}
    assert {"mount", "unshare", "setns"} <= admin_names
    # clone is only allowed without namespace flags unless CAP_SYS_ADMIN
    clone_rules = [r for r in base.syscalls if "clone" in r.names]
    assert clone_rules and all(r.args for r in clone_rules if r.action == "SCMP_ACT_ALLOW")
    json.dumps(base.to_dict())  # serialisable into config.json


def test_container_ids_are_checked(tmp_path):
    from berth.runtime.runtime import Runtime
    rt = Runtime(str(tmp_path))
    for bad in ("", ".", "..", "a/b", "x y", "../etc"):
        with pytest.raises(RuntimeFailure, match="invalid container id"):
            rt.state(bad)
    with pytest.raises(RuntimeFailure, match="does not exist"):
        rt.state("fine-id_1.2+3")


def test_device_bpf_program_shape():
    from berth.runtime.cgroups import devices_bpf
    from berth.runtime.spec import DeviceCgroup as D
    deny_all = D(allow=False, access="rwm")
    prog = devices_bpf.program([deny_all])
    assert len(prog) % 8 == 0
    # prologue (6) + the unconditional deny (2); nothing after it (unreachable code is refused)
    assert len(prog) // 8 == 8 and prog[-8] == 0x95
    prog = devices_bpf.program([deny_all, D(allow=True, type="c", major=1, minor=3, access="rwm"),
                                D(allow=True, type="c", major=1, minor=11, access="r")])
    insns = [prog[i:i + 8] for i in range(0, len(prog), 8)]
    # last rule first: type, access (2 + jump), major, minor checks, then mov/exit
    assert insns[6][0] == 0xBC and insns[7][0] == 0x54 and insns[7][4:] == (2).to_bytes(4, "little")
    jumps = [i for i in insns[6:13] if i[0] in (0x55, 0x5D)]
    assert len(jumps) == 4
    assert insns[-2][0] == 0xB4 and insns[-1][0] == 0x95  # ends with the unconditional deny
