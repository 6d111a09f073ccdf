"""The real docker CLIs on this machine (Debian's 20.10 at /usr/bin/docker and the 28 first on
PATH, /usr/local/bin/docker) driving berthd: version, run, ps, logs, exec, stop, rm, inspect,
images, `run -it` through a real pty. Every test runs once per CLI."""

from __future__ import annotations

import json
import os
import time

import pytest

from berth import API_VERSION
from fixtures.daemon import DOCKER_CLI, run_cgroups, shim_processes
from support import Terminal, host_state

pytestmark = [pytest.mark.root, pytest.mark.skipif(not os.path.exists(DOCKER_CLI), reason="docker CLI missing"),
              pytest.mark.usefixtures("each_docker_cli")]


def test_version(daemon):
    r = daemon.docker("version", "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["Server"]["ApiVersion"] == API_VERSION


def test_run_rm_echo(daemon, busybox_image):
    r = daemon.docker("run", "--rm", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    assert daemon.docker("ps", "-aq", "--no-trunc").stdout.strip() == ""


def test_run_exit_codes(daemon, busybox_image):
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    r = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert r.stdout == "out\n" and r.stderr == "err\n"
    r = daemon.docker("run", "--rm", "busybox", "nosuchcommand")
    assert r.returncode == 127
    assert "executable file not found" in r.stderr
    r = daemon.docker("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126


def test_stdin_pipe(daemon, busybox_image):
    r = daemon.docker("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "HELLO\n"


def test_detached_lifecycle(daemon, busybox_image):
    name = f"cli-{daemon.names.run_id}"
    r = daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                      'echo started; trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done')
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    try:
        ps = daemon.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
        assert f"{cid[:12]} {name} Up" in ps
        for _ in range(50):
            logs = daemon.docker("logs", name)
            if "started" in logs.stdout:
                break
            time.sleep(0.1)
        assert logs.stdout == "started\n"
        r = daemon.docker("exec", name, "sh", "-c", "echo $HOSTNAME; cat /etc/hostname")
        assert r.returncode == 0 and r.stdout == f"{cid[:12]}\n{cid[:12]}\n"
        assert daemon.docker("exec", name, "sh", "-c", "exit 7").returncode == 7
        r = daemon.docker("exec", name, "nosuchcmd")
        assert r.returncode == 127 and "executable file not found" in r.stdout + r.stderr
        info = json.loads(daemon.docker("inspect", name).stdout)[0]
        assert info["Id"] == cid and info["State"]["Running"] and info["Name"] == f"/{name}"
        assert info["State"]["Pid"] > 0
        t0 = time.monotonic()
        r = daemon.docker("stop", name)
        assert r.returncode == 0 and r.stdout.strip() == name
        assert time.monotonic() - t0 < 5
        assert "got-term" in daemon.docker("logs", name).stdout
        st = json.loads(daemon.docker("inspect", name).stdout)[0]["State"]
        assert st["Status"] == "exited" and st["ExitCode"] == 0
        assert "Exited (0)" in daemon.docker("ps", "-a", "--format", "{{.Status}}", "-f", f"name={name}").stdout
    finally:
        r = daemon.docker("rm", "-f", name)
    assert r.returncode == 0
    assert daemon.docker("ps", "-aq", "-f", f"name={name}").stdout.strip() == ""
    hs = host_state(cid[:32])
    assert not hs.mounts and not hs.processes and not hs.cgroups


def test_images(daemon, busybox_image):
    r = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert r.returncode == 0, r.stderr
    assert "busybox:latest" in r.stdout.split()


def test_run_it_pty(daemon, busybox_image):
    """`docker run -it` with a real terminal: a working interactive shell."""
    with Terminal([daemon.docker_cli, "run", "-it", "--rm", "busybox", "sh"], daemon.env) as term:
        term.read_until(b"# ")
        term.write(b"tty; echo $((6*7))\r")
        out = term.read_until(b"42")
        assert b"42" in out
        assert b"/dev/pts/" in out
        term.write(b"exit 3\r")
        assert term.wait() == 3


def test_bad_input_leaves_nothing(daemon, busybox_image):
    before = set(daemon.docker("ps", "-aq", "--no-trunc").stdout.split())
    r = daemon.docker("run", "--rm", "no-such-image-zz:latest", "true")
    assert r.returncode == 125 and "No such image" in r.stderr or "Unable to find image" in r.stderr
    r = daemon.docker("run", "--rm", "-m", "1k", "busybox", "true")
    assert r.returncode == 125 and "Minimum memory limit allowed is 6MB" in r.stderr
    r = daemon.docker("run", "--rm", "-m", "lots", "busybox", "true")
    assert r.returncode == 125
    r = daemon.docker("run", "--rm", "--bogus-flag", "busybox", "true")
    assert r.returncode == 125
    r = daemon.docker("run", "--rm", "busybox", "nosuchcommand")
    assert r.returncode == 127
    name = f"dup-{daemon.names.run_id}"
    r = daemon.docker("create", "--name", name, "busybox", "true")
    assert r.returncode == 0
    try:
        r = daemon.docker("create", "--name", name, "busybox", "true")
        assert r.returncode != 0 and "is already in use" in r.stderr
        assert len(daemon.docker("ps", "-aq", "-f", f"name=^{name}$").stdout.split()) == 1
    finally:
        daemon.docker("rm", "-f", name)
    after = set(daemon.docker("ps", "-aq", "--no-trunc").stdout.split())
    assert after == before
    # nothing of a failed container: no mounts under containers/, no shim, no cgroup
    cdir = daemon.names.data_root / "containers"
    leftovers = [d.name for d in cdir.iterdir()] if cdir.exists() else []
    assert not set(leftovers) - before
    mounts = [ln for ln in open("/proc/mounts").read().splitlines() if str(cdir) in ln]
    assert all(any(b in m for b in before) for m in mounts)
    cgroups = [p for p in run_cgroups(daemon.names) if not any(b in p for b in before)]
    assert cgroups == []
    assert not set(shim_processes(daemon.names).values()) - before


def test_exec_it_pty(daemon, busybox_image):
    name = f"execit-{daemon.names.run_id}"
    assert daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60").returncode == 0
    try:
        with Terminal([daemon.docker_cli, "exec", "-it", name, "sh"], daemon.env) as term:
            term.read_until(b"# ")
            term.write(b"tty && echo tty-$((1+1))ok | tr -d 2\r")
            out = term.read_until(b"tty-ok")
            assert b"tty-ok" in out and b"/dev/pts/" in out
            term.write(b"exit 5\r")
            assert term.wait() == 5
    finally:
        daemon.docker("rm", "-f", name)


def test_cp_and_export(daemon, busybox_image, tmp_path):
    import tarfile
    name = f"cp-{daemon.names.run_id}"
    assert daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                         "mkdir -p /data/sub && echo inside > /data/sub/f.txt && sleep 60").returncode == 0
    try:
        for _ in range(50):
            if daemon.docker("exec", name, "test", "-f", "/data/sub/f.txt").returncode == 0:
                break
            time.sleep(0.1)
        r = daemon.docker("cp", f"{name}:/data/sub/f.txt", str(tmp_path / "out.txt"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "out.txt").read_text() == "inside\n"
        r = daemon.docker("cp", f"{name}:/data", str(tmp_path / "datadir"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "datadir/sub/f.txt").read_text() == "inside\n"
        (tmp_path / "up.txt").write_text("from host\n")
        r = daemon.docker("cp", str(tmp_path / "up.txt"), f"{name}:/data/")
        assert r.returncode == 0, r.stderr
        assert daemon.docker("exec", name, "cat", "/data/up.txt").stdout == "from host\n"
        r = daemon.docker("cp", f"{name}:/nonexistent", str(tmp_path / "x"))
        # the 20.10 CLI words a 404 itself; newer ones print dockerd's message
        says = ("No such container:path" if daemon.docker_cli == DOCKER_CLI
                else f"Could not find the file /nonexistent in container {name}")
        assert r.returncode != 0 and says in r.stderr, r.stderr
        r = daemon.docker("export", "-o", str(tmp_path / "fs.tar"), name)
        assert r.returncode == 0, r.stderr
        with tarfile.open(tmp_path / "fs.tar") as tar:
            names = tar.getnames()
        assert "bin/busybox" in names and "data/sub/f.txt" in names
    finally:
        daemon.docker("rm", "-f", name)


def test_run_it_detach_keys(daemon, busybox_image):
    """ctrl-p ctrl-q leaves `docker run -it` while the container keeps running."""
    name = f"detach-{daemon.names.run_id}"
    try:
        with Terminal([daemon.docker_cli, "run", "-it", "--name", name, "busybox", "sh"], daemon.env) as term:
            term.read_until(b"# ")
            term.write(b"\x10\x11")   # ctrl-p ctrl-q
            assert term.wait() == 0
        st = json.loads(daemon.docker("inspect", name).stdout)[0]["State"]
        assert st["Running"] is True
    finally:
        daemon.docker("rm", "-f", name)


def test_diff_of_an_unchanged_container_is_empty(daemon, busybox_image):
    name = f"diff0-{daemon.names.run_id}"
    r = daemon.docker("run", "--name", name, "busybox", "true")
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.docker("diff", name)
        assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    finally:
        daemon.docker("rm", "-f", name)


def test_diff_and_size(daemon, busybox_image):
    name = f"diff-{daemon.names.run_id}"
    r = daemon.docker("run", "--name", name, "busybox", "sh", "-c",
                      "echo x > /newfile; rm /etc/group; echo more >> /etc/passwd")
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.docker("diff", name)
        assert r.returncode == 0, r.stderr
        lines = set(r.stdout.splitlines())
        assert {"A /newfile", "D /etc/group", "C /etc", "C /etc/passwd"} <= lines
        # the bind-mount targets busybox lacks are made by the runtime, not the command:
        # Docker keeps them in its init layer, out of the diff
        assert not {"A /etc/hosts", "A /etc/hostname", "A /etc/resolv.conf"} & lines, lines
        r = daemon.docker("ps", "-a", "-s", "--format", "{{.Size}}", "-f", f"name={name}")
        assert r.returncode == 0 and not r.stdout.startswith("0B")
        # SizeRootFs is the writable layer plus the image's layers (docker ps -s: "(virtual N)")
        listed = daemon.api("GET", "/containers/json", params={"all": 1, "size": 1,
                                                               "filters": json.dumps({"name": [name]})}).json()
        image_size = daemon.api("GET", f"/images/{listed[0]['ImageID']}/json").json()["Size"]
        assert listed[0]["SizeRw"] > 0 and listed[0]["SizeRootFs"] == listed[0]["SizeRw"] + image_size
        inspected = daemon.api("GET", f"/containers/{name}/json", params={"size": 1}).json()
        assert (inspected["SizeRw"], inspected["SizeRootFs"]) == (listed[0]["SizeRw"], listed[0]["SizeRootFs"])
    finally:
        daemon.docker("rm", "-f", name)
