"""Seccomp, no_new_privs, capabilities changes, the v2 cgroup manager, and `runc spec`
parity, on a real kernel."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from test_runtime_container import box, go, rt  # noqa: F401 - shared fixtures

from berth.runtime import capabilities, seccomp, spec
from berth.runtime.cgroups.v2 import V2Manager

pytestmark = [pytest.mark.root]


def test_docker_default_seccomp_profile(rt, box):  # noqa: F811
    def edit(sp):
        sp.linux.seccomp = seccomp.docker_default(capabilities.DOCKER_DEFAULT)
        sp.process.no_new_privileges = False  # Docker's default: the filter is loaded before caps drop
    _, res = go(rt, box, ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; unshare -U true"
                          " || echo DENIED; echo ok > /tmp/f && cat /tmp/f; sleep 0 & wait"], edit)
    lines = res.out.split("\n")
    assert lines[:2] == ["NoNewPrivs:\t0", "Seccomp:\t2"], res
    assert "DENIED" in lines and "ok" in lines, res


def test_seccomp_program_cached_and_the_cached_one_filters_alike(rt, box):  # noqa: F811
    """The first container builds Docker's profile with libseccomp and caches the program;
    the next ones load the cached program, with the same effect; a corrupt entry is rebuilt."""
    script = ("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; unshare -U true || echo DENIED;"
              " mkdir /tmp/d && echo MKDIR")

    def edit(sp):
        sp.linux.seccomp = seccomp.docker_default(capabilities.DOCKER_DEFAULT)
        sp.process.no_new_privileges = False

    cache = Path(rt.root) / ".seccomp"
    shutil.rmtree(cache, ignore_errors=True)
    _, built = go(rt, box, ["sh", "-c", script], edit)
    [entry] = list(cache.iterdir())
    assert (cache.stat().st_mode & 0o777, entry.stat().st_mode & 0o777) == (0o700, 0o600)
    _, cached = go(rt, box, ["sh", "-c", script], edit)
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # one bit of one instruction: the digest no longer matches
    entry.write_bytes(bytes(data))
    _, rebuilt = go(rt, box, ["sh", "-c", script], edit)
    expected = ["NoNewPrivs:\t0", "Seccomp:\t2", "DENIED", "MKDIR"]
    assert [r.out.split("\n")[:4] for r in (built, cached, rebuilt)] == [expected] * 3, (built, cached, rebuilt)
    assert entry.read_bytes() != bytes(data)  # replaced by a good program
    assert [p.name for p in cache.iterdir()] == [entry.name]


def test_seccomp_program_cache_entries(tmp_path, monkeypatch):
    """A hit is libseccomp's program for the profile without building it; torn, corrupt
    and group-writable entries are not used."""
    profile = seccomp.docker_default(capabilities.DOCKER_DEFAULT)
    cache = tmp_path / "cache"
    fresh = seccomp.export(seccomp.build(profile, no_new_privs=True))
    assert seccomp.program(profile, True, str(cache)) == fresh
    [entry] = list(cache.iterdir())
    good = entry.read_bytes()
    builds = []
    real_build = seccomp.build
    monkeypatch.setattr(seccomp, "build", lambda *a, **kw: builds.append(1) or real_build(*a, **kw))
    assert seccomp.program(profile, True, str(cache)) == fresh and builds == []
    assert seccomp.cache_key(profile, True) != seccomp.cache_key(profile, False)
    for bad in (good[:-4], good[:-8] + b"\0" * 8, b"junk", b""):
        entry.write_bytes(bad)
        assert seccomp.program(profile, True, str(cache)) == fresh
        assert entry.read_bytes() == good
    entry.chmod(0o620)
    assert seccomp.program(profile, True, str(cache)) == fresh
    assert len(builds) == 5


def test_without_seccomp_unshare_works(rt, box):  # noqa: F811
    _, res = go(rt, box, ["sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true && echo ALLOWED"])
    assert res.out.split("\n")[:2] == ["Seccomp:\t0", "ALLOWED"], res


def test_custom_profile_errno_and_nnp(rt, box):  # noqa: F811
    def edit(sp):
        sp.linux.seccomp = spec.Seccomp(
            default_action="SCMP_ACT_ALLOW",
            syscalls=[spec.Syscall(names=["mkdir", "mkdirat"], action="SCMP_ACT_ERRNO", errno_ret=13),
                      spec.Syscall(names=["no_such_syscall_anywhere"], action="SCMP_ACT_ERRNO")])
        sp.process.no_new_privileges = True
    _, res = go(rt, box, ["sh", "-c", "grep '^NoNewPrivs:' /proc/self/status; mkdir /tmp/x || echo REFUSED"], edit)
    assert res.out.split("\n")[:2] == ["NoNewPrivs:\t1", "REFUSED"], res
    assert "Permission denied" in res.err  # errno 13, as the profile asked


def test_cap_add_and_drop(rt, box):  # noqa: F811
    def edit(sp):
        caps = capabilities.docker_set(cap_add=["NET_ADMIN", "SYS_ADMIN"], cap_drop=["CHOWN"])
        sp.process.capabilities = spec.Capabilities(bounding=caps, effective=caps, permitted=caps)
    _, res = go(rt, box, ["sh", "-c", "grep '^CapEff:' /proc/self/status; ip link set lo down && echo NETADMIN;"
                          " chown 65534 /tmp || echo NOCHOWN"], edit)
    capeff = int(res.out.split()[1], 16)
    assert capeff == capabilities.mask(capabilities.docker_set(cap_add=["NET_ADMIN", "SYS_ADMIN"],
                                                               cap_drop=["CHOWN"]))
    assert "NETADMIN" in res.out and "NOCHOWN" in res.out, res


def test_non_root_user_loses_effective_caps_at_exec(rt, box):  # noqa: F811
    def edit(sp):
        sp.process.user = spec.User(uid=1000, gid=1000)
        caps = capabilities.DOCKER_DEFAULT
        sp.process.capabilities = spec.Capabilities(bounding=list(caps), permitted=list(caps),
                                                    effective=list(caps))
    _, res = go(rt, box, ["sh", "-c", "id -u; grep -E '^Cap(Eff|Bnd):' /proc/self/status"], edit)
    uid, _, capeff, _, capbnd = res.out.split()
    # as with runc and Docker (`-u 1000`): without ambient caps, execve as a non-root user
    # clears the permitted/effective sets; the bounding set is the spec's
    assert (uid, capeff, capbnd) == ("1000", "0000000000000000", "00000000a80425fb")


def test_v2_manager_on_the_unified_hierarchy(run_names):
    """The v2 manager on this hybrid host's (controller-less) cgroup2 mount: create, join,
    freeze, thaw, procs, destroy."""
    mount = "/sys/fs/cgroup/unified"
    if not os.path.exists(f"{mount}/cgroup.procs"):
        pytest.skip("no cgroup2 mount on this host")
    mgr = V2Manager.for_path(f"/{run_names.cgroup_parent}-v2/c{secrets.token_hex(3)}", mount=mount)
    mgr.create()
    proc = subprocess.Popen(["sleep", "30"])
    try:
        mgr.add(proc.pid)
        assert mgr.procs() == [proc.pid]
        mgr.freeze()
        assert mgr.frozen()
        assert Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] in "DS"
        mgr.thaw()
        assert not mgr.frozen()
        assert mgr.oom_killed() is False
    finally:
        proc.kill()
        proc.wait()
        mgr.destroy()
        os.rmdir(os.path.dirname(mgr.path))
    assert not os.path.exists(mgr.path)


def test_default_spec_matches_runc_spec(tmp_path):
    if subprocess.run(["which", "runc"], capture_output=True).returncode != 0:
        pytest.skip("runc is not installed")
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True)
    assert json.loads((tmp_path / "config.json").read_text()) == spec.default_spec().to_dict()


def test_v2_only_host_simulated(box, run_names):  # noqa: F811
    """A cgroup2-only host, simulated: in a private mount namespace the hybrid's cgroup2
    hierarchy is bind-mounted over /sys/fs/cgroup, so berth-runtime picks its v2 manager:
    run, the container's cgroup namespace and cgroup2 mount, pause/resume via cgroup.freeze,
    and clean removal."""
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"):
        pytest.skip("no cgroup2 mount on this host")
    cid, bundle, sp = box(["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.type 2>&1"])
    sp.linux.namespaces.append(spec.Namespace("cgroup"))
    from test_runtime_support import write
    write(bundle, sp)
    cid2, bundle2, sp2 = box(["sleep", "60"])
    write(bundle2, sp2)
    cg2 = sp2.linux.cgroups_path
    root = str(run_names.root / "v2-state")
    exe = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", ".venv", "bin", "berth-runtime")
    script = f"""
set -e
mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup
B="{exe} --root {root}"
$B run -b {bundle} {cid}
$B create -b {bundle2} {cid2} </dev/null >/dev/null 2>&1
$B start {cid2}
echo PID $($B state {cid2} | grep '"pid"' | tr -dc 0-9)
$B pause {cid2}
$B state {cid2} | grep -q '"status": "paused"' && echo PAUSED
test "$(cat /sys/fs/cgroup{cg2}/cgroup.freeze)" = 1 && echo FROZEN
$B resume {cid2}
$B state {cid2} | grep -q '"status": "running"' && echo RUNNING
$B delete --force {cid2}
test ! -e /sys/fs/cgroup{cg2} && echo REMOVED
"""
    try:
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                             capture_output=True, text=True, timeout=60)
    finally:  # whatever the script left (its state points into the private mount namespace)
        for d in Path(root).glob("*/state.json"):
            pid = json.loads(d.read_text()).get("pid")
            if pid:
                subprocess.run(["kill", "-9", str(pid)], capture_output=True)
        for path in (sp.linux.cgroups_path, cg2):
            leaf = Path(f"/sys/fs/cgroup/unified{path}")
            for _ in range(100):
                try:
                    leaf.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    import time
                    time.sleep(0.02)
    lines = res.stdout.splitlines()
    for line in lines:  # reap the killed init: it was re-parented to us, the subreaper
        if line.startswith("PID "):
            try:
                os.waitpid(int(line.split()[1]), 0)
            except ChildProcessError:
                pass
    lines = [ln for ln in lines if not ln.startswith("PID ")]
    assert res.returncode == 0, res.stderr
    # the v2 line shows the cgroup namespace's root; /sys/fs/cgroup is a cgroup2 mount
    assert lines.index("0::/") + 1 == lines.index("domain"), res.stdout
    assert lines[-4:] == ["PAUSED", "FROZEN", "RUNNING", "REMOVED"], res.stdout
    assert not os.path.exists(f"/sys/fs/cgroup/unified{sp.linux.cgroups_path}")
    assert not os.path.exists(f"/sys/fs/cgroup/unified{cg2}")


def test_v2_device_filter_bpf(run_names):
    """linux.resources.devices on cgroup v2 is an eBPF program: checked on this host's
    cgroup2 hierarchy (device programs need no controller)."""
    mount = "/sys/fs/cgroup/unified"
    if not os.path.exists(f"{mount}/cgroup.procs"):
        pytest.skip("no cgroup2 mount on this host")
    mgr = V2Manager.for_path(f"/{run_names.cgroup_parent}-bpf/c{secrets.token_hex(3)}", mount=mount)
    mgr.create()
    try:
        mgr.apply(spec.Resources(devices=[spec.DeviceCgroup(allow=False, access="rwm"),
                                          spec.DeviceCgroup(allow=True, type="c", major=1, minor=11,
                                                            access="r")]))
        script = ("read -r go; head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo NULL-OK;"
                  " head -c 1 /dev/vda >/dev/null 2>&1 || echo BLOCK-DENIED;"
                  " exec 3</dev/kmsg && echo KMSG-READ; echo x 2>/dev/null > /dev/kmsg || echo KMSG-WRITE-DENIED")
        proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        mgr.add(proc.pid)
        out, _ = proc.communicate("go\n", timeout=20)
        assert out.split() == ["3", "NULL-OK", "BLOCK-DENIED", "KMSG-READ", "KMSG-WRITE-DENIED"], out
    finally:
        mgr.destroy()
        os.rmdir(os.path.dirname(mgr.path))


def test_user_namespace_with_mappings(rt, box):  # noqa: F811
    cid, bundle, sp = box(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; hostname; touch /tmp/made;"
                           " grep CapEff /proc/self/status; sleep 2"])
    subprocess.run(["chown", "-R", "-h", "100000:100000", str(bundle / "rootfs")], check=True)
    sp.linux.namespaces.append(spec.Namespace("user"))
    sp.linux.uid_mappings = [spec.IDMapping(container_id=0, host_id=100000, size=65536)]
    sp.linux.gid_mappings = [spec.IDMapping(container_id=0, host_id=100000, size=65536)]
    from test_runtime_support import read_all, wait_pid, write
    write(bundle, sp)
    r, w = os.pipe()
    pid = rt.create(cid, str(bundle), stdio=(0, w, w))
    os.close(w)
    try:
        host_uid = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("Uid:")][0]
        rt.start(cid)
        r2, w2 = os.pipe()
        epid = rt.exec(cid, spec.Process(args=["sh", "-c", "id -u; cat /proc/self/uid_map"], env=["PATH=/bin"]),
                       stdio=(0, w2, w2))
        os.close(w2)
        (exec_out,) = read_all([r2])
        os.close(r2)
        assert wait_pid(epid) == 0 and exec_out.decode().split() == ["0", "0", "100000", "65536"], exec_out
        (out,) = read_all([r])
        assert wait_pid(pid) == 0, out
    finally:
        os.close(r)
        rt.delete(cid, force=True)
    lines = out.decode().splitlines()
    assert lines[0:2] == ["0", "0"] and lines[2].split() == ["0", "100000", "65536"], lines
    assert lines[3] == sp.hostname and lines[4].split()[1] == "00000000a80425fb", lines
    assert host_uid.split()[1] == "100000"  # container root is an unprivileged user outside
    assert (bundle / "rootfs" / "tmp" / "made").stat().st_uid == 100000


def test_user_namespace_needs_mappings(rt, box):  # noqa: F811
    from test_runtime_support import write

    from berth.runtime.errors import RuntimeFailure
    cid, bundle, sp = box(["true"])
    sp.linux.namespaces.append(spec.Namespace("user"))
    write(bundle, sp)
    with pytest.raises(RuntimeFailure, match="needs linux.uidMappings"):
        rt.create(cid, str(bundle), stdio=(0, 1, 2))
