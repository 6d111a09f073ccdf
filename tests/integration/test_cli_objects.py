"""`berth` network, volume, build and system commands against the session daemon."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from berth import API_VERSION
from support import venv_exe

pytestmark = pytest.mark.root


def berth(daemon, *args: str, cwd: Path | None = None, input: str | None = None,  # type: ignore[no-untyped-def]
          timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([venv_exe("berth"), *args], env=daemon.env, cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=timeout)


def test_version_and_info(daemon) -> None:  # type: ignore[no-untyped-def]
    v = berth(daemon, "version")
    assert v.returncode == 0 and "Client:" in v.stdout and "Server: " in v.stdout
    assert berth(daemon, "version", "--format", "{{.Server.ApiVersion}}").stdout.strip() == API_VERSION
    info = berth(daemon, "info", "--format", "{{json .DockerRootDir}}")
    assert json.loads(info.stdout) == str(daemon.names.data_root)


def test_network_and_volume_commands(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    net = f"clinet{secrets.token_hex(3)}"
    vol = f"clivol{secrets.token_hex(3)}"
    a, b = f"a-{secrets.token_hex(3)}", f"b-{secrets.token_hex(3)}"
    assert berth(daemon, "network", "create", net).returncode == 0
    try:
        assert net in berth(daemon, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert berth(daemon, "network", "inspect", "-f", "{{.Name}} {{.Driver}}", net).stdout == f"{net} bridge\n"
        assert berth(daemon, "volume", "create", vol).stdout == f"{vol}\n"
        assert vol in berth(daemon, "volume", "ls", "-q").stdout.split()
        w = berth(daemon, "run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/f")
        assert w.returncode == 0, w.stderr
        assert berth(daemon, "run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat", "/data/f").stdout == "kept\n"
        assert berth(daemon, "run", "-d", "--name", a, "--network", net, "--network-alias", "server",
                     "busybox", "sleep", "60").returncode == 0
        r = berth(daemon, "run", "--rm", "--name", b, "--network", net, "busybox", "ping", "-c", "1", "-W", "5", "server")
        assert r.returncode == 0, (r.stdout, r.stderr)
        busy = berth(daemon, "network", "rm", net)
        assert busy.returncode == 1 and "berth: Error response from daemon:" in busy.stderr
    finally:
        berth(daemon, "rm", "-f", a)
        rm_net = berth(daemon, "network", "rm", net)
        rm_vol = berth(daemon, "volume", "rm", vol)
    assert rm_net.returncode == 0 and rm_net.stdout == f"{net}\n"
    assert rm_vol.returncode == 0 and rm_vol.stdout == f"{vol}\n"
    assert vol not in berth(daemon, "volume", "ls", "-q").stdout.split()


def test_port_mapping_is_listed(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    from support import free_port

    name = f"port-{secrets.token_hex(3)}"
    hp = free_port()
    assert berth(daemon, "run", "-d", "--name", name, "-p", f"127.0.0.1:{hp}:80", "busybox", "sleep", "60").returncode == 0
    try:
        assert berth(daemon, "port", name).stdout == f"80/tcp -> 127.0.0.1:{hp}\n"
        assert berth(daemon, "port", name, "80").stdout == f"127.0.0.1:{hp}\n"
        assert f"127.0.0.1:{hp}->80/tcp" in berth(daemon, "ps", "--format", "{{.Ports}}", "-f", f"name={name}").stdout
    finally:
        berth(daemon, "rm", "-f", name)


def test_build_with_dockerignore_outside_dockerfile_tags_and_iidfile(daemon, busybox_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("copied\n")
    (ctx / "secret.txt").write_text("do not send\n")
    (ctx / ".dockerignore").write_text("secret.txt\n")
    dockerfile = tmp_path / "Dockerfile.outside"
    dockerfile.write_text('FROM busybox\nCOPY . /ctx/\nRUN ls /ctx > /listing\nCMD ["cat", "/listing", "/ctx/f"]\n')
    tag = f"clibuild{secrets.token_hex(3)}"
    iid = tmp_path / "iid"
    r = berth(daemon, "build", "-t", f"{tag}:1", "-t", f"{tag}:2", "-f", str(dockerfile), "--iidfile", str(iid), ".",
              cwd=ctx)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Step 1/4 : FROM busybox" in r.stdout
        image_id = iid.read_text()
        assert image_id.startswith("sha256:")
        run = berth(daemon, "run", "--rm", f"{tag}:2")
        assert run.stdout == "f\ncopied\n"     # secret.txt stayed out of the context
        q = berth(daemon, "build", "-q", "-t", f"{tag}:1", "-f", str(dockerfile), str(ctx))
        assert q.returncode == 0 and q.stdout.strip() == image_id
        bad = berth(daemon, "build", "-f", str(dockerfile), str(tmp_path / "missing"))
        assert bad.returncode == 1 and "unable to prepare context" in bad.stderr
    finally:
        berth(daemon, "rmi", "-f", f"{tag}:1", f"{tag}:2")


def test_build_failure_exits_1_with_the_step_output(daemon, busybox_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail && exit 7\n")
    r = berth(daemon, "build", "-t", "clifail:1", str(tmp_path))
    assert r.returncode == 1
    assert "about to fail" in r.stdout
    assert r.stderr.startswith("berth: ") and "7" in r.stderr
    assert berth(daemon, "images", "-q", "clifail").stdout == ""


def test_container_prune_and_df(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    name = f"prune-{secrets.token_hex(3)}"
    assert berth(daemon, "run", "--name", name, "busybox", "true").returncode == 0
    refused = berth(daemon, "container", "prune", input="n\n")
    assert refused.returncode == 0 and name in berth(daemon, "ps", "-a", "--format", "{{.Names}}").stdout
    r = berth(daemon, "container", "prune", "-f")
    assert r.returncode == 0 and "Total reclaimed space:" in r.stdout
    assert name not in berth(daemon, "ps", "-a", "--format", "{{.Names}}").stdout
    df = berth(daemon, "system", "df")
    assert df.returncode == 0 and df.stdout.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def test_build_args_target_labels_no_cache(daemon, busybox_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS base\n"
        "ARG GREETING=unset\n"
        "RUN echo \"$GREETING\" > /greeting\n"
        "FROM base AS final\n"
        "RUN echo final > /stage\n"
        "FROM base AS other\n"
        "RUN echo other > /stage\n")
    tag = f"cliargs{secrets.token_hex(3)}"
    r = berth(daemon, "build", "--build-arg", "GREETING=hello there", "--target", "final",
              "--label", "team=cli", "--label", "tier=test", "-t", tag, str(tmp_path))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        run = berth(daemon, "run", "--rm", tag, "cat", "/greeting", "/stage")
        assert run.stdout == "hello there\nfinal\n"
        labels = json.loads(berth(daemon, "image", "inspect", "-f", "{{json .Config.Labels}}", tag).stdout)
        assert labels["team"] == "cli" and labels["tier"] == "test"
        cached = berth(daemon, "build", "--build-arg", "GREETING=hello there", "--target", "final", "-t", tag,
                       "--label", "team=cli", "--label", "tier=test", str(tmp_path))
        assert cached.returncode == 0 and "Running in" not in cached.stdout       # all from cache
        fresh = berth(daemon, "build", "--no-cache", "--build-arg", "GREETING=hello there", "--target", "final",
                      "--label", "team=cli", "--label", "tier=test", "-t", tag, str(tmp_path))
        assert fresh.returncode == 0 and fresh.stdout.count("Running in") == 2
    finally:
        berth(daemon, "rmi", "-f", tag)


def test_build_context_from_stdin_dockerfile(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    tag = f"clistdin{secrets.token_hex(3)}"
    r = berth(daemon, "build", "-t", tag, "-", input="FROM busybox\nCMD [\"echo\", \"from stdin\"]\n")
    try:
        assert r.returncode == 0, r.stderr
        assert berth(daemon, "run", "--rm", tag).stdout == "from stdin\n"
    finally:
        berth(daemon, "rmi", "-f", tag)
