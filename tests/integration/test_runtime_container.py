"""The OCI runtime on a real kernel: a busybox bundle run through `Runtime` and the
`berth-runtime` command line, checking isolation, limits and clean-up."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_runtime_support import make_bundle, read_all, rm_bundle, run, wait_pid, write

from berth import kernel
from berth.runtime import console, spec
from berth.runtime.errors import ExecNotFound, ExecNotPermitted, InvalidState
from berth.runtime.runtime import Runtime
from support import RunNames, Terminal, host_state, remove_cgroup_tree, venv_exe

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def rt(run_names: RunNames) -> Iterator[Runtime]:
    # we reap the containers' inits; only while this module runs, so other areas' detached
    # processes (shims, daemons) are not re-parented to pytest
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    root = run_names.root / "runtime-state"
    runtime = Runtime(str(root))
    try:
        yield runtime
    finally:
        for st in runtime.list():
            try:
                runtime.delete(st.id, force=True)
            except Exception:  # noqa: BLE001 - best effort in teardown
                pass
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 0)
        remove_cgroup_tree(run_names.cgroup_parent + "-rt")  # ours alone


@pytest.fixture
def box(run_names: RunNames, busybox_tar: str, rt: Runtime):
    """Factory: box(args, **changes) -> (id, bundle, spec); removes bundles afterwards."""
    made: list[tuple[str, Path]] = []

    def factory(args: list[str]) -> tuple[str, Path, spec.Spec]:
        cid = "rt" + secrets.token_hex(5)
        bundle, sp = make_bundle(run_names.root / "bundles", cid, busybox_tar, args)
        sp.linux.cgroups_path = f"/{run_names.cgroup_parent}-rt/{cid}"
        made.append((cid, bundle))
        return cid, bundle, sp

    yield factory
    cli_rt = Runtime(str(run_names.root / "cli-state"))
    for cid, bundle in made:
        for r in (rt, cli_rt):
            try:
                r.delete(cid, force=True)
            except Exception:  # noqa: BLE001 - most are already gone
                pass
        rm_bundle(bundle)


def go(rt: Runtime, box, args: list[str], edit=None):
    cid, bundle, sp = box(args)
    if edit:
        edit(sp)
    write(bundle, sp)
    return cid, run(rt, cid, bundle)


@contextlib.contextmanager
def sleeper(rt: Runtime, box, edit=None, start: bool = True):
    """A `sleep 60` container (its spec changed by `edit` first), created and started unless
    `start` is off; force-deleted afterwards. Yields (id, init pid, spec)."""
    cid, bundle, sp = box(["sleep", "60"])
    if edit:
        edit(sp)
    write(bundle, sp)
    pid = rt.create(cid, str(bundle), stdio=(0, 1, 2))
    try:
        if start:
            rt.start(cid)
        yield cid, pid, sp
    finally:
        rt.delete(cid, force=True)


def assert_clean(rt: Runtime, cid: str) -> None:
    left = host_state(cid)
    assert left.mounts == [] and left.cgroups == [] and left.processes == [], left
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_echo_output_and_clean_delete(rt, box):
    cid, res = go(rt, box, ["echo", "hello from berth"])
    assert (res.code, res.out) == (0, "hello from berth\n")
    assert_clean(rt, cid)


def test_process_starts_with_no_signal_ignored_or_blocked(rt, box):
    # the runtime runs in Python, which ignores SIGPIPE; a shim may ignore SIGINT/SIGHUP
    cid, res = go(rt, box, ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    assert res.code == 0, res.out
    assert res.out.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"], res.out
    assert_clean(rt, cid)


def test_exit_code_propagated(rt, box):
    _, res = go(rt, box, ["sh", "-c", "exit 3"])
    assert res.code == 3


@pytest.mark.parametrize("command, error, says", [
    ("no-such-command", ExecNotFound, "executable file not found"),
    ("/etc", ExecNotPermitted, "permission denied"),   # a directory
])
def test_a_command_that_cannot_run_is_refused_and_leaves_nothing(rt, box, command, error, says):
    cid, bundle, sp = box([command])
    write(bundle, sp)
    with pytest.raises(error, match=says):
        rt.create(cid, str(bundle), stdio=(0, 1, 2))
    assert_clean(rt, cid)


def test_pid1_and_host_processes_invisible(rt, box):
    _, res = go(rt, box, ["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    pid1, count = res.out.split()
    assert pid1 == "1"
    assert int(count) <= 3  # sh, ls, grep: nothing of the host's hundreds of processes


def test_hostname_env_cwd_user(rt, box):
    def edit(sp):
        sp.hostname = "berthbox"
        sp.process.env = ["PATH=/bin:/usr/bin", "GREETING=hi there"]
        sp.process.cwd = "/tmp/work"
        sp.process.user = spec.User(uid=65534, gid=65534, additional_gids=[10])
    _, res = go(rt, box, ["sh", "-c", 'hostname; echo "$GREETING"; pwd; id -u; id -g; id -G'], edit)
    assert res.out.splitlines() == ["berthbox", "hi there", "/tmp/work", "65534", "65534", "65534 10"], res


def test_capeff_is_dockers_default(rt, box):
    _, res = go(rt, box, ["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"])
    lines = dict(line.split(":\t") for line in res.out.splitlines())
    assert lines["CapEff"] == "00000000a80425fb"
    assert lines["CapBnd"] == "00000000a80425fb"


def test_masked_and_readonly_paths(rt, box):
    # this kernel has no /proc/kcore: check every masked path the host really has
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware")
              if os.path.exists(p)]
    assert masked, "no maskable path exists on this host"
    script = "; ".join(f"echo {p} $(cat {p} 2>/dev/null | wc -c) $(ls {p} 2>/dev/null | wc -l)"
                       for p in masked)
    _, res = go(rt, box, ["sh", "-c", script + "; echo 1 > /proc/sys/kernel/domainname && echo WROTE-PROC"])
    for line in res.out.splitlines():
        path, size, entries = line.split()
        assert (size, entries) in (("0", "0"), ("0", "1")), (path, res)  # empty file or empty dir
    assert len(res.out.splitlines()) == len(masked)
    assert "Read-only file system" in res.err and "WROTE-PROC" not in res.out


def test_writing_under_sys_fails(rt, box):
    _, res = go(rt, box, ["sh", "-c", "mkdir /sys/berth-x || touch /sys/berth-x || echo FAILED"])
    assert "FAILED" in res.out
    assert not os.path.exists("/sys/berth-x")


def test_readonly_root(rt, box):
    def edit(sp):
        sp.root.readonly = True
    _, res = go(rt, box, ["sh", "-c", "touch /newfile || echo RO; touch /dev/shm/ok && echo SHM"], edit)
    assert res.out.split() == ["RO", "SHM"]


def test_memory_limit_oom_killed(rt, box):
    def edit(sp):
        sp.linux.resources = spec.Resources(memory=spec.Memory(limit=32 * 1024 * 1024,
                                                               swap=32 * 1024 * 1024))
    _, res = go(rt, box, ["sh", "-c", "echo started; tail /dev/zero"], edit)
    assert res.out == "started\n"
    assert res.code == 137
    assert res.oom is True


def test_no_oom_without_hog(rt, box):
    def edit(sp):
        sp.linux.resources = spec.Resources(memory=spec.Memory(limit=32 * 1024 * 1024))
    _, res = go(rt, box, ["true"], edit)
    assert (res.code, res.oom) == (0, False)


def test_pids_limit_stops_fork_bomb(rt, box):
    def edit(sp):
        sp.linux.resources = spec.Resources(pids=spec.Pids(limit=20))
    # a fork bomb; the shell counts its successful forks with built-ins only and dies when
    # a fork fails (busybox sh exits 2 on "can't fork")
    script = "i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); echo $i; done"
    _, res = go(rt, box, ["sh", "-c", script], edit)
    assert res.code == 2 and "can't fork" in res.err, res
    assert 10 <= int(res.out.split()[-1]) <= 19, res
    # the host is unaffected: we can still fork
    assert subprocess.run(["true"]).returncode == 0


def test_rlimit_clamped_to_host_hard_limit(rt, box):
    import resource
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def edit(sp):
        sp.process.rlimits = [spec.Rlimit("RLIMIT_NOFILE", hard=host_hard * 4, soft=host_hard * 4)]
    _, res = go(rt, box, ["sh", "-c", "ulimit -n; ulimit -Hn"], edit)
    assert res.out.split() == [str(host_hard), str(host_hard)]


def test_lifecycle_states_pause_resume_kill(rt, box):
    cid, bundle, sp = box(["sleep", "60"])
    write(bundle, sp)
    pid = rt.create(cid, str(bundle), stdio=(0, 1, 2))
    try:
        assert rt.state(cid).status == "created"
        with pytest.raises(InvalidState):
            rt.resume(cid)
        rt.start(cid)
        assert rt.state(cid).status == "running"
        assert rt.ps(cid) == [pid]
        with pytest.raises(InvalidState):
            rt.start(cid)
        rt.pause(cid)
        assert rt.state(cid).status == "paused"
        assert open(f"/proc/{pid}/stat").read().split(") ")[1][0] in "DS"  # frozen tasks sleep
        rt.resume(cid)
        assert rt.state(cid).status == "running"
        with pytest.raises(InvalidState):
            rt.delete(cid)
        rt.kill(cid, "TERM")  # PID 1 without a handler ignores TERM, as in any pid namespace
        time.sleep(0.1)
        assert rt.state(cid).status == "running"
        rt.kill(cid, "SIGKILL")
        assert wait_pid(pid, 10) == 128 + 9
        assert rt.state(cid).status == "stopped"
        assert rt.stats(cid)["pids"]["current"] == 0
    finally:
        rt.delete(cid, force=True)
    assert_clean(rt, cid)


def test_delete_force_running_container_leaves_nothing(rt, box):
    cid, bundle, sp = box(["sh", "-c", "sleep 60 & sleep 60"])
    write(bundle, sp)
    pid = rt.create(cid, str(bundle), stdio=(0, 1, 2))
    rt.start(cid)
    deadline = time.monotonic() + 10
    while len(rt.ps(cid)) < 2 and time.monotonic() < deadline:  # the shell forks its first sleep
        time.sleep(0.02)
    assert len(rt.ps(cid)) == 2
    rt.delete(cid, force=True)
    assert wait_pid(pid, 10) == 128 + 9
    assert_clean(rt, cid)


def test_exec_into_running_container(rt, box):
    with sleeper(rt, box) as (cid, pid, sp):
        r, w = os.pipe()
        proc = spec.Process(args=["sh", "-c", "echo $$ $(hostname); cat /proc/1/cmdline; echo; exit 5"],
                            env=["PATH=/bin"], cwd="/tmp")
        epid = rt.exec(cid, proc, stdio=(0, w, w))
        os.close(w)
        (out,) = read_all([r])
        os.close(r)
        assert wait_pid(epid, 10) == 5
        first, cmdline = out.decode().splitlines()[:2]
        assert first.split()[1] == sp.hostname and first.split()[0] != "1"
        assert cmdline == "sleep\x0060\x00"
        with pytest.raises(ExecNotFound):
            rt.exec(cid, spec.Process(args=["nope"], env=["PATH=/bin"]), stdio=(0, 1, 2))
        assert rt.ps(cid) == [pid]
    assert_clean(rt, cid)


def test_join_network_namespace_by_path(rt, box):
    with sleeper(rt, box) as (_, pid, _):
        netns = f"/proc/{pid}/ns/net"

        def edit(sp2):
            for ns in sp2.linux.namespaces:
                if ns.type == "network":
                    ns.path = netns
        _, res = go(rt, box, ["readlink", "/proc/self/ns/net"], edit)
        assert res.out.strip() == os.readlink(netns)
        assert os.readlink(netns) != os.readlink("/proc/self/ns/net")


def test_pty_through_console_socket(rt, box, run_names):
    cid, bundle, sp = box(["sh"])
    sp.process.terminal = True
    sp.process.env = ["PATH=/bin", "PS1=# "]
    write(bundle, sp)
    sock_path = str(run_names.root / f"console-{cid}.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    master = None
    try:
        pid = rt.create(cid, str(bundle), stdio=None, console_socket=sock_path)
        conn, _ = srv.accept()
        master, name = console.recv_fd(conn)
        conn.close()
        assert name.startswith("/dev/pts/")
        rt.start(cid)
        os.write(master, b"tty; echo $((6*7)); exit 4\n")
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the slave side is closed
                break
            if not chunk:
                break
            out += chunk
        assert b"/dev/pts/0" in out and b"42" in out
        assert wait_pid(pid, 10) == 4
    finally:
        if master is not None:
            os.close(master)
        srv.close()
        os.unlink(sock_path)
        rt.delete(cid, force=True)
    assert_clean(rt, cid)


def test_cli_run_echo_and_exit_code(box, run_names):
    cid, bundle, sp = box(["echo", "hi"])
    write(bundle, sp)
    root = str(run_names.root / "cli-state")
    exe = venv_exe("berth-runtime")
    res = subprocess.run([exe, "--root", root, "run", "--bundle", str(bundle), cid],
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    sp.process.args = ["sh", "-c", "exit 3"]
    write(bundle, sp)
    res = subprocess.run([exe, "--root", root, "run", "-b", str(bundle), cid], capture_output=True, timeout=60)
    assert res.returncode == 3
    assert not os.path.exists(os.path.join(root, cid))
    assert host_state(cid).cgroups == []


def test_cli_create_start_state_kill_delete(box, run_names):
    cid, bundle, sp = box(["sleep", "60"])
    write(bundle, sp)
    root = str(run_names.root / "cli-state")
    exe = venv_exe("berth-runtime")
    log = run_names.root / f"{cid}.log"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, "--root", root, "--log", str(log), "--log-format", "json", *args],
                              capture_output=True, text=True, timeout=60)

    pid_file = run_names.root / f"{cid}.pid"
    # the container inherits create's stdio (as with runc): give it no pipe we wait on
    created = subprocess.run([exe, "--root", root, "create", "--bundle", str(bundle), "--pid-file",
                              str(pid_file), cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, timeout=60)
    assert created.returncode == 0
    try:
        state = json.loads(cli("state", cid).stdout)
        assert state["status"] == "created" and state["pid"] == int(pid_file.read_text())
        assert cli("start", cid).returncode == 0
        assert json.loads(cli("state", cid).stdout)["status"] == "running"
        assert json.loads(cli("ps", "--format", "json", cid).stdout) == [state["pid"]]
        assert [c["id"] for c in json.loads(cli("list", "--format", "json").stdout)] == [cid]
        res = cli("exec", cid, "sh", "-c", "echo in-exec; exit 2")
        assert (res.returncode, res.stdout) == (2, "in-exec\n")
        assert cli("exec", cid, "nope").returncode == 127
        bad = cli("delete", cid)
        assert bad.returncode == 1 and "running" in bad.stderr
        assert '"level": "error"' in log.read_text()
        assert cli("kill", cid, "KILL").returncode == 0
        assert wait_pid(state["pid"], 10) == 128 + 9  # we are the subreaper the init went to
        for _ in range(200):
            if json.loads(cli("state", cid).stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        assert json.loads(cli("state", cid).stdout)["status"] == "stopped"
        assert cli("delete", cid).returncode == 0
        assert cli("state", cid).returncode == 1
    finally:
        cli("delete", "--force", cid)
    assert_clean(Runtime(root), cid)


def test_update_limits_of_running_container(rt, box, run_names):
    def limits(sp):
        sp.linux.resources = spec.Resources(memory=spec.Memory(limit=64 << 20), pids=spec.Pids(limit=50))
    with sleeper(rt, box, limits) as (cid, _, _):
        exe = venv_exe("berth-runtime")
        res = subprocess.run([exe, "--root", rt.root, "update", "--memory", "48m", "--pids-limit", "30", cid],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        res = subprocess.run([exe, "--root", rt.root, "update", "-r", "-", cid], capture_output=True, text=True,
                             input='{"cpu": {"shares": 512}}', timeout=30)
        assert res.returncode == 0, res.stderr
        stats = rt.stats(cid)
        assert stats["memory"]["limit"] == 48 << 20 and stats["pids"]["limit"] == 30
        cpu_dir = rt._cgroup(rt.state(cid))._dir("cpu")
        assert open(f"{cpu_dir}/cpu.shares").read().strip() == "512"
        assert rt.state(cid).config["linux"]["resources"]["memory"]["limit"] == 48 << 20
    assert_clean(rt, cid)


def test_session_keyring_per_container(rt, box):
    with sleeper(rt, box, start=False) as (cid, _, _):
        assert f"_ses.{cid}" in open("/proc/keys").read()


def test_cli_run_with_terminal_relays_a_pty(box, run_names):
    cid, bundle, sp = box(["sh"])
    sp.process.terminal = True
    sp.process.env = ["PATH=/bin", "PS1=$ "]
    write(bundle, sp)
    with Terminal([venv_exe("berth-runtime"), "--root", str(run_names.root / "cli-state"), "run",
                   "-b", str(bundle), cid]) as term:
        term.read_until(b"$ ")  # the shell's prompt: it is ready for input
        term.write(b"tty; echo $((6*7)); exit 5\n")
        assert term.wait() == 5
        out = term.out
        assert b"42" in out and b"/dev/pts/0" in out, out


def test_cgroup_namespace_and_cgroup_mount(rt, box):
    def edit(sp):
        sp.linux.namespaces.append(spec.Namespace("cgroup"))
        sp.linux.resources = spec.Resources(pids=spec.Pids(limit=33))
    _, res = go(rt, box, ["sh", "-c", "grep -E ':(pids|memory):' /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max;"
                          " touch /sys/fs/cgroup/pids/x || echo RO"], edit)
    lines = res.out.splitlines()
    assert len(lines) == 4 and all(ln.endswith(":/") for ln in lines[:2]), res  # the namespace's root
    assert lines[2:] == ["33", "RO"], res


def test_host_cgroup_namespace_shows_own_cgroup_mounted(rt, box, run_names):
    cid, res = go(rt, box, ["sh", "-c", "grep ':pids:' /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max"],
                  lambda sp: setattr(sp.linux, "resources", spec.Resources(pids=spec.Pids(limit=44))))
    path, limit = res.out.splitlines()
    assert path.endswith(f":pids:/{run_names.cgroup_parent}-rt/{cid}") and limit == "44", res


def test_bind_mounts_ro_rw_and_propagation(rt, box, run_names):
    shared = run_names.root / f"bind-{secrets.token_hex(3)}"
    (shared / "ro").mkdir(parents=True)
    (shared / "rw").mkdir()
    (shared / "ro" / "hello").write_text("from host\n")
    (shared / "file.txt").write_text("single file\n")

    def edit(sp):
        sp.mounts += [
            spec.Mount("/data/ro", "bind", str(shared / "ro"), ["rbind", "ro", "rprivate"]),
            spec.Mount("/data/rw", "bind", str(shared / "rw"), ["rbind", "rw", "rshared"]),
            spec.Mount("/etc/extra.txt", "bind", str(shared / "file.txt"), ["bind", "ro"]),
        ]
        sp.process.user.umask = 0o027
    try:
        _, res = go(rt, box, ["sh", "-c", "cat /data/ro/hello; touch /data/ro/x || echo RO-REFUSED;"
                              " echo written > /data/rw/out; cat /etc/extra.txt; umask;"
                              " grep ' /data/rw ' /proc/self/mountinfo"], edit)
        lines = res.out.splitlines()
        assert lines[:4] == ["from host", "RO-REFUSED", "single file", "0027"], res
        assert "shared:" in lines[4]  # rshared: the bind is a peer group of its own
        assert (shared / "rw" / "out").read_text() == "written\n"
        assert not (shared / "ro" / "x").exists()
        assert (shared / "rw" / "out").stat().st_mode & 0o777 == 0o640  # umask 027 applied
    finally:
        import shutil
        shutil.rmtree(shared, ignore_errors=True)


def test_devices_default_and_extra(rt, box):
    def edit(sp):
        sp.linux.devices = [spec.Device(path="/dev/fuse", type="c", major=10, minor=229, file_mode=0o600)]
        sp.linux.resources = spec.Resources(devices=[spec.DeviceCgroup(allow=False, access="rwm"),
                                                     spec.DeviceCgroup(allow=True, type="c", major=10, minor=229,
                                                                       access="rwm")])
    _, res = go(rt, box, ["sh", "-c", "ls -l /dev/null /dev/zero /dev/fuse /dev/ptmx | cut -c1-11;"
                          " head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo NULL-OK;"
                          " readlink /dev/fd; readlink /dev/stdin"], edit)
    lines = res.out.splitlines()
    assert sorted(ln.strip() for ln in lines[:4]) == sorted(["crw-------", "crw-rw-rw-", "crw-rw-rw-", "lrwxrwxrwx"]), res
    assert lines[4:] == ["4", "NULL-OK", "/proc/self/fd", "/proc/self/fd/0"], res


def test_cpu_and_cpuset_limits_written(rt, box):
    def limits(sp):
        sp.linux.resources = spec.Resources(cpu=spec.CPU(shares=512, quota=50000, period=100000, cpus="0", mems="0"))
    with sleeper(rt, box, limits, start=False) as (cid, _, _):
        mgr = rt._cgroup(rt.state(cid))
        read = lambda ctrl, name: open(f"{mgr._dir(ctrl)}/{name}").read().strip()  # noqa: E731
        assert (read("cpu", "cpu.shares"), read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.cfs_period_us")) == \
            ("512", "50000", "100000")
        assert (read("cpuset", "cpuset.cpus"), read("cpuset", "cpuset.mems")) == ("0", "0")
        assert open(f"/proc/{rt.state(cid).pid}/status").read().split("Cpus_allowed_list:")[1].split()[0] == "0"
    assert_clean(rt, cid)


def test_cli_version_features_spec(run_names):
    exe = venv_exe("berth-runtime")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    assert out.startswith("berth-runtime version ") and "spec: 1.0.2-dev" in out
    feats = json.loads(subprocess.run([exe, "features"], capture_output=True, text=True).stdout)
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"] and "rbind" in feats["mountOptions"]
    d = run_names.root / f"spec-{secrets.token_hex(3)}"
    d.mkdir()
    assert subprocess.run([exe, "spec", "--bundle", str(d)]).returncode == 0
    assert json.loads((d / "config.json").read_text()) == spec.default_spec().to_dict()
    again = subprocess.run([exe, "spec", "--bundle", str(d)], capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr


def test_bad_input_is_refused_and_leaves_nothing(rt, box, run_names):
    from berth.runtime.errors import ContainerExists, RuntimeFailure
    cid, bundle, sp = box(["true"])
    sp.mounts.append(spec.Mount("/data", "bind", "/nonexistent/berth-source", ["rbind"]))
    write(bundle, sp)
    with pytest.raises(RuntimeFailure, match="bind mount source /nonexistent/berth-source for /data does not exist"):
        rt.create(cid, str(bundle), stdio=(0, 1, 2))
    assert_clean(rt, cid)
    with pytest.raises(RuntimeFailure, match="invalid container id"):
        rt.create("../escape", str(bundle), stdio=(0, 1, 2))
    with pytest.raises(RuntimeFailure, match="has no config.json"):
        rt.create(cid, str(run_names.root), stdio=(0, 1, 2))
    assert_clean(rt, cid)
    sp.mounts.pop()
    sp.process.cwd = "relative/dir"
    write(bundle, sp)
    rt.create(cid, str(bundle), stdio=(0, 1, 2))  # relative cwd is joined to / as runc does
    try:
        with pytest.raises(ContainerExists, match="already exists"):
            rt.create(cid, str(bundle), stdio=(0, 1, 2))
    finally:
        rt.delete(cid, force=True)
    assert_clean(rt, cid)
    (bundle / "config.json").write_text("{not json")
    with pytest.raises(RuntimeFailure, match="invalid config.json"):
        rt.create(cid, str(bundle), stdio=(0, 1, 2))
    assert_clean(rt, cid)


def test_join_pid_and_ipc_namespaces_by_path(rt, box):
    with sleeper(rt, box) as (_, pid, _):
        def edit(sp2):
            for ns in sp2.linux.namespaces:
                if ns.type in ("pid", "ipc"):
                    ns.path = f"/proc/{pid}/ns/{ns.type}"
        _, res = go(rt, box, ["sh", "-c", "echo $$; cat /proc/1/cmdline; echo; readlink /proc/self/ns/ipc"], edit)
        mypid, cmdline, ipc = res.out.splitlines()
        assert mypid != "1" and cmdline == "sleep\x0060\x00"  # the first container's PID 1
        assert ipc == os.readlink(f"/proc/{pid}/ns/ipc")


def test_delete_force_cleans_a_create_killed_half_way(rt, box):
    """A create killed after its state was written (simulated: an init that never reports)
    can still be removed with delete --force."""
    cid, bundle, sp = box(["sleep", "60"])
    write(bundle, sp)
    rt.create(cid, str(bundle), stdio=(0, 1, 2))
    # forget the pid, as if the runtime died before recording it
    from berth.runtime import state as _state
    d = os.path.join(rt.root, cid)
    st = _state.load(d)
    pid = st.pid
    st.pid, st.status = 0, "creating"
    _state.save(d, st)
    assert rt.state(cid).status == "creating"
    rt.delete(cid, force=True)  # kills what is in the cgroup, removes cgroups and state
    assert wait_pid(pid, 10) == 128 + 9
    assert_clean(rt, cid)


def test_cli_preserve_fds_and_exec_options(box, run_names):
    cid, bundle, sp = box(["sh", "-c", "cat <&3"])
    write(bundle, sp)
    root = str(run_names.root / "cli-state")
    exe = venv_exe("berth-runtime")
    r, w = os.pipe()
    os.write(w, b"through fd 3\n")
    os.close(w)
    try:
        # the pipe arrives as fd 3 of berth-runtime, which hands it on to the container
        res = subprocess.run(["sh", "-c", f'exec 3<&0 0</dev/null; exec {exe} --root {root} run'
                              f' --preserve-fds 1 -b {bundle} {cid}'], stdin=r, capture_output=True,
                             text=True, timeout=60)
    finally:
        os.close(r)
    assert (res.returncode, res.stdout) == (0, "through fd 3\n"), res.stderr
    r, w = os.pipe()
    os.close(w)
    try:  # without --preserve-fds nothing beyond stdio leaks into the container
        res = subprocess.run(["sh", "-c", f"exec 3<&0 0</dev/null; exec {exe} --root {root} run -b {bundle} {cid}"],
                             stdin=r, capture_output=True, text=True, timeout=60)
    finally:
        os.close(r)
    assert res.returncode != 0 and "Bad file descriptor" in res.stderr, res

    cid2, bundle2, sp2 = box(["sleep", "60"])
    write(bundle2, sp2)
    subprocess.run([exe, "--root", root, "run", "-d", "-b", str(bundle2), cid2], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)
    try:
        res = subprocess.run([exe, "--root", root, "exec", "--user", "65534:65534", "--env", "FOO=bar",
                              "--cwd", "/tmp", cid2, "sh", "-c", 'id -u; id -g; echo "$FOO"; pwd'],
                             capture_output=True, text=True, timeout=60)
        assert res.stdout.split() == ["65534", "65534", "bar", "/tmp"], res.stderr
        pid = json.loads(subprocess.run([exe, "--root", root, "state", cid2], capture_output=True,
                                        text=True).stdout)["pid"]
    finally:
        subprocess.run([exe, "--root", root, "delete", "--force", cid2], capture_output=True, timeout=60)
    for _ in range(100):  # run -d left the init to our subreaper (this pytest process): reap it
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        time.sleep(0.02)


def test_loopback_is_up_in_a_new_network_namespace(rt, box):
    # the runtime brings lo up from a thread of its own that joins the init's namespace
    cid, res = go(rt, box, ["sh", "-c", "cat /sys/class/net/lo/flags; ls /sys/class/net"])
    assert (res.code, res.out.split()) == (0, ["0x9", "lo"]), res  # IFF_UP | IFF_LOOPBACK
    assert_clean(rt, cid)


def test_host_pid_and_network_namespaces(rt, box):
    def edit(sp):
        sp.linux.namespaces = [ns for ns in sp.linux.namespaces if ns.type not in ("pid", "network")]
    _, res = go(rt, box, ["sh", "-c", "echo $$; readlink /proc/self/ns/net; readlink /proc/self/ns/pid"], edit)
    pid, net, pidns = res.out.split()
    assert pid != "1"
    assert net == os.readlink("/proc/self/ns/net") and pidns == os.readlink("/proc/self/ns/pid")


def test_concurrent_creates_under_a_new_parent(box, run_names):
    """Several berth-runtime processes creating containers below a cgroup parent that does
    not exist yet (cpuset values are copied down at every level)."""
    parent = f"{run_names.cgroup_parent}-rt/par{secrets.token_hex(2)}"
    root = str(run_names.root / "cli-state")
    exe = venv_exe("berth-runtime")
    procs = []
    for _ in range(4):
        cid, bundle, sp = box(["true"])
        sp.linux.cgroups_path = f"/{parent}/{cid}"
        write(bundle, sp)
        procs.append(subprocess.Popen([exe, "--root", root, "run", "-b", str(bundle), cid],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = [(p.wait(60), p.stderr.read().decode()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(code == 0 for code, _ in results), results
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        if (ctrl / parent).is_dir():
            assert [p.name for p in (ctrl / parent).iterdir() if p.is_dir()] == []
            (ctrl / parent).rmdir()


def test_prime_attach_is_a_no_op_move_of_the_caller():
    """prime_attach re-attaches this process to the cgroup it is in (to take the kernel's
    attach wait early): membership must be unchanged once its thread is done."""
    from berth.runtime import cgroups

    before = Path("/proc/self/cgroup").read_text()
    done = cgroups.prime_attach()
    assert done.acquire(timeout=10), "the re-attach thread did not finish"
    assert Path("/proc/self/cgroup").read_text() == before


def test_prime_attach_hold_runs_a_holder_until_end_prime():
    """prime_attach(hold=...) keeps the attach window open from a forked holder process that
    moves itself (a no-op) until end_prime, which stops and reaps it; a child forked
    meanwhile (holding the holder's pipe, as the bridge does) does not keep it alive."""
    from berth.runtime import cgroups

    before = Path("/proc/self/cgroup").read_text()
    assert cgroups.prime_attach(hold=30.0) is None
    holder = cgroups._holder
    assert holder is not None
    pid = holder[0]
    try:
        assert Path(f"/proc/{pid}/cgroup").read_text() == before  # same cgroups as the caller
        other = os.fork()
        if other == 0:  # holds a copy of the holder's pipe, as the runtime's bridge does
            time.sleep(5)
            os._exit(0)
    finally:
        cgroups.end_prime()
    try:
        assert cgroups._holder is None
        assert not Path(f"/proc/{pid}").exists(), "end_prime left the holder running"
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped
    finally:
        os.kill(other, signal.SIGKILL)
        os.waitpid(other, 0)
    assert Path("/proc/self/cgroup").read_text() == before
    cgroups.end_prime()  # a second call is harmless
