"""`berth` against the session daemon: run, exit codes, the container life cycle, -it, errors."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest

from support import Terminal, venv_exe

pytestmark = pytest.mark.root


def uniq(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def all_names(daemon) -> set[str]:  # type: ignore[no-untyped-def]
    r = daemon.cli("ps", "-a", "--format", "{{.Names}}", check=True)
    return set(r.stdout.split())


def test_run_rm_echo_prints_hi_and_leaves_nothing(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("hi")
    r = daemon.cli("run", "--rm", "--name", name, "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    assert name not in all_names(daemon)


def test_exit_status_is_the_containers(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == "out\n" and r.stderr == "err\n"


def test_missing_command_exits_127_and_rm_cleans_up(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("missing")
    r = daemon.cli("run", "--rm", "--name", name, "busybox", "no-such-command")
    assert r.returncode == 127, (r.stdout, r.stderr)
    assert r.stderr.startswith("berth: Error response from daemon:") and "no-such-command" in r.stderr
    assert name not in all_names(daemon)


def test_stdin_is_piped_with_i(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    r = daemon.cli("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z; echo done", input="piped data\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "PIPED DATA\ndone\n"


def test_detached_lifecycle_ps_logs_exec_stop_rm(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("life")
    r = daemon.cli("run", "-d", "--name", name, "-e", "GREETING=hello", "busybox", "sh", "-c",
                   "trap 'echo got TERM; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
    try:
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        assert len(cid) == 64
        ps = daemon.cli("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}")
        line = next(ln for ln in ps.stdout.splitlines() if name in ln)
        assert line.startswith(cid) and " Up " in line
        assert daemon.cli("ps", "-q").stdout.split().count(cid[:12]) == 1
        shown = daemon.cli("inspect", "-f", "{{.State.Status}} {{json .Config.Env}}", name).stdout
        assert shown.startswith("running [") and '"GREETING=hello"' in shown

        ex = daemon.cli("exec", name, "sh", "-c", 'echo "$GREETING from exec"; exit 7')
        assert ex.returncode == 7 and ex.stdout == "hello from exec\n"
        ex = daemon.cli("exec", "-e", "X=1", "-w", "/tmp", name, "sh", "-c", "echo $X $(pwd)")
        assert ex.stdout == "1 /tmp\n"

        # logs -f follows until the container stops
        follow = subprocess.Popen([venv_exe("berth"), "logs", "-f", name], env=daemon.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        t0 = time.monotonic()
        st = daemon.cli("stop", "-t", "5", name)
        assert st.returncode == 0 and st.stdout == f"{name}\n"
        assert time.monotonic() - t0 < 5          # the TERM trap ended it, no SIGKILL wait
        out, _ = follow.communicate(timeout=20)
        assert follow.returncode == 0
        assert "tick 0\n" in out and out.rstrip().endswith("got TERM")

        tail = daemon.cli("logs", "--tail", "1", name)
        assert tail.stdout == "got TERM\n"
        assert daemon.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout == "0\n"
        assert daemon.cli("wait", name).stdout == "0\n"
    finally:
        rm = daemon.cli("rm", "-f", name)
    assert rm.returncode == 0 and rm.stdout == f"{name}\n"
    assert name not in all_names(daemon)


def test_stop_kills_after_timeout(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("stubborn")
    assert daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done").returncode == 0
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        assert daemon.cli("stop", "-t", "1", name).returncode == 0
        took = time.monotonic() - t0
        assert 0.9 <= took < 10
        assert daemon.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout == "137\n"
    finally:
        daemon.cli("rm", "-f", name)


def test_run_it_through_a_real_pty(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    with Terminal([venv_exe("berth"), "run", "-it", "--rm", "busybox", "sh"], daemon.env) as term:
        assert b"# " in term.read_until(b"# "), term.out
        term.write(b"echo $((6*7)); tty; stty size\r")
        out = term.read_until(b"/dev/pts/")
        assert b"42" in out and b"/dev/pts/" in out, out
        term.write(b"exit 4\r")
        assert term.wait() == 4


def test_detach_keys_leave_the_container_running(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("detach")
    try:
        with Terminal([venv_exe("berth"), "run", "-it", "--name", name, "busybox", "sh"], daemon.env) as term:
            term.read_until(b"# ")
            term.write(b"\x10\x11")   # ctrl-p ctrl-q
            assert term.wait() == 0
        assert daemon.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
    finally:
        daemon.cli("rm", "-f", name)


@pytest.mark.parametrize("argv, message", [
    (["run", "--no-such-flag", "busybox"], "unknown flag: --no-such-flag"),
    (["run", "-m", "lots", "busybox", "true"], "invalid size: 'lots'"),
    (["run", "--restart", "sometimes", "busybox"], "invalid restart policy"),
    (["run", "\u2013it", "busybox", "sh"], 'starts with an en dash (\u2013), not a hyphen; did you mean "-it"?'),
    (["run", "-name", "x", "busybox"], 'did you mean "--name"?'),
])
def test_bad_flags_exit_125_and_create_nothing(daemon, busybox_image, argv, message) -> None:  # type: ignore[no-untyped-def]
    before = daemon.cli("ps", "-aq", "--no-trunc").stdout.split()
    r = daemon.cli(*argv)
    assert r.returncode == 125
    assert message in r.stderr
    assert r.stdout == ""
    assert daemon.cli("ps", "-aq", "--no-trunc").stdout.split() == before


def test_copied_command_with_dashes_shows_the_fixed_line(daemon) -> None:  # type: ignore[no-untyped-def]
    r = daemon.cli("run", "\u2013it", "\u2013d", "\u2013p", "8001:80", "--name", "nginxserver", "nginx:latest")
    assert r.returncode == 125
    assert "berth run -it -d -p 8001:80 --name nginxserver nginx:latest" in r.stderr


def test_command_slips(daemon) -> None:  # type: ignore[no-untyped-def]
    r = daemon.cli("images", "ls")
    assert r.returncode == 125 and 'did you mean "berth image ls"?' in r.stderr
    r = daemon.cli("container", "list", "-a")
    assert r.returncode == 0 and r.stdout.startswith("CONTAINER ID")


def test_duplicate_name_is_refused(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("dup")
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        r = daemon.cli("run", "--name", name, "busybox", "true")
        assert r.returncode == 125
        assert "berth: Error response from daemon:" in r.stderr and name in r.stderr
    finally:
        daemon.cli("rm", name)


def test_unknown_image_is_pulled_then_fails_clearly(daemon) -> None:  # type: ignore[no-untyped-def]
    r = daemon.cli("run", "--rm", "127.0.0.1:1/nothing/here:v1", "true")
    assert r.returncode == 125
    assert "Unable to find image '127.0.0.1:1/nothing/here:v1' locally" in r.stderr
    assert "berth: " in r.stderr


def test_no_daemon_on_a_named_socket(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sock = tmp_path / "none.sock"
    r = subprocess.run([venv_exe("berth"), "-H", f"unix://{sock}", "ps"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert f"Cannot connect to the berth daemon at unix://{sock}" in r.stderr
    assert not sock.exists()          # nothing was started for a non-default socket
    r = subprocess.run([venv_exe("berth"), "-H", f"unix://{sock}", "run", "busybox"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 125


def test_terminal_size_follows_the_local_terminal(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    with Terminal([venv_exe("berth"), "run", "-it", "--rm", "busybox", "sh"], daemon.env, size=(40, 100)) as term:
        assert b"# " in term.read_until(b"# ")
        term.write(b"stty size\r")
        assert b"40 100" in term.read_until(b"40 100"), term.out
        # the local terminal changes size: SIGWINCH -> resize the container's pty
        term.resize(30, 90)
        for _ in range(20):     # the resize travels berth -> daemon -> shim: ask until it shows
            term.write(b"stty size\r")
            if b"30 90" in term.read_until(b"30 90", timeout=1):
                break
        assert b"30 90" in term.out, term.out
        term.write(b"exit\r")
        assert term.wait() == 0


def test_signals_are_proxied_to_the_container(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    import signal

    proc = subprocess.Popen([venv_exe("berth"), "run", "--rm", "busybox", "sh", "-c",
                             "trap 'echo got TERM; exit 9' TERM; echo ready; while true; do sleep 0.1; done"],
                            env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 9, err
        assert out == "got TERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_create_then_start_attached_returns_the_status(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = uniq("starta")
    r = daemon.cli("create", "--name", name, "busybox", "sh", "-c", "echo started; exit 4")
    try:
        assert r.returncode == 0 and len(r.stdout.strip()) == 64
        assert daemon.cli("inspect", "-f", "{{.State.Status}}", name).stdout == "created\n"
        for _ in range(2):   # a second start runs it again
            s = daemon.cli("start", "-a", name)
            assert s.returncode == 4 and s.stdout == "started\n"
    finally:
        daemon.cli("rm", name)


def test_options_after_the_image_are_refused_when_no_entrypoint_takes_them(daemon, busybox_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = daemon.cli("ps", "-aq", "--no-trunc").stdout.split()
    r = daemon.cli("run", "busybox", "-p", "8001:80", "--name", "misplaced")
    assert r.returncode == 125
    assert "options go before the image: berth run -p 8001:80 --name misplaced busybox" in r.stderr
    assert daemon.cli("ps", "-aq", "--no-trunc").stdout.split() == before
    # an image with an ENTRYPOINT gets its flags, as docker passes them
    (tmp_path / "Dockerfile").write_text('FROM busybox\nENTRYPOINT ["echo"]\n')
    tag = uniq("entry")
    assert daemon.cli("build", "-q", "-t", tag, str(tmp_path)).returncode == 0
    try:
        r = daemon.cli("run", "--rm", tag, "-e", "hello")
        assert r.returncode == 0 and r.stdout == "hello\n"
    finally:
        daemon.cli("rmi", tag)


def test_container_verbs_top_stats_rename_pause_kill_restart(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name, new = uniq("verbs"), uniq("renamed")
    r = daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c",
                   "trap 'echo USR1' USR1; while true; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    try:
        top = daemon.cli("top", name).stdout.splitlines()
        assert top[0].split()[:3] == ["UID", "PID", "PPID"] and any("sh -c" in ln for ln in top[1:])
        stats = daemon.cli("stats", "--no-stream", name).stdout.splitlines()
        assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
        assert stats[1].split()[1] == name and stats[1].endswith(("1", "2", "3"))
        fmt = daemon.cli("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name).stdout
        assert fmt.split()[0] == name
        assert daemon.cli("rename", name, new).returncode == 0
        name = new
        assert daemon.cli("pause", name).stdout == f"{name}\n"
        assert daemon.cli("inspect", "-f", "{{.State.Paused}}", name).stdout == "true\n"
        assert daemon.cli("unpause", name).stdout == f"{name}\n"
        assert daemon.cli("kill", "-s", "USR1", name).stdout == f"{name}\n"
        for _ in range(50):
            if "USR1" in daemon.cli("logs", name).stdout:
                break
            time.sleep(0.1)
        assert daemon.cli("logs", name).stdout == "USR1\n"
        pid = daemon.cli("inspect", "-f", "{{.State.Pid}}", name).stdout
        assert daemon.cli("restart", "-t", "1", name).stdout == f"{name}\n"
        assert daemon.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
        assert daemon.cli("inspect", "-f", "{{.State.Pid}}", name).stdout != pid
        assert daemon.cli("kill", name).returncode == 0
        assert daemon.cli("wait", name).stdout == "137\n"
    finally:
        daemon.cli("rm", "-f", name)
