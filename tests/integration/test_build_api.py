"""Builds through the Engine API (POST /build with a context tar) against a real berthd:
RUN in real containers, COPY into snapshots, cache hits and miss reasons, failures that
leave nothing behind, the real docker CLI (legacy builder) and docker-py."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.root]


def make_context(files: dict[str, str | bytes | tuple[str, int]],
                 symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            mode = 0o644
            if isinstance(content, tuple):
                content, mode = content
            data = content.encode() if isinstance(content, str) else content
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = int(time.time())
            tar.addfile(ti, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tar.addfile(ti)
    return buf.getvalue()


def build(daemon: Any, files: dict[str, Any], timeout: float = 120, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """POST /build; returns (messages, all stream text)."""
    ctx = make_context(files, params.pop("symlinks", None))
    q: dict[str, Any] = {}
    for k, v in params.items():
        q[k] = v
    r = daemon.api("POST", "/build", params=q, body=ctx,
                   headers={"Content-Type": "application/x-tar"}, timeout=timeout)
    if r.status != 200:
        return [{"http_status": r.status, "message": r.json().get("message", r.text)}], r.text
    msgs = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    text = "".join(m.get("stream", "") for m in msgs)
    return msgs, text


def build_under_way(socket_path: str, dockerfile: str, token: bytes, query: str = "") -> tuple[Any, bytes]:
    """POST /build<query> over a connection of our own, read until the build prints `token`
    (a RUN step is under way): the open socket (closing it is the client going away) and
    what came so far."""
    import socket

    ctx = make_context({"Dockerfile": dockerfile})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(30)
        s.connect(socket_path)
        s.sendall(f"POST /build{query} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                  f"Content-Length: {len(ctx)}\r\n\r\n".encode() + ctx)
        seen = b""
        while token not in seen:
            chunk = s.recv(65536)
            assert chunk, seen
            seen += chunk
    except BaseException:
        s.close()
        raise
    return s, seen


def image_id(msgs: list[dict[str, Any]]) -> str:
    ids = [m["aux"]["ID"] for m in msgs if "aux" in m]
    assert ids, f"no image id in {msgs}"
    return ids[-1]


def error_of(msgs: list[dict[str, Any]]) -> str | None:
    for m in msgs:
        if "error" in m:
            return m["error"]
        if "http_status" in m:
            return m["message"]
    return None


def run_output(daemon: Any, image: str, *cmd: str) -> str:
    p = daemon.docker("run", "--rm", image, *cmd, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def build_containers(daemon: Any) -> list[str]:
    """Containers of the run's data root (hidden ones included) still on disk."""
    d = Path(daemon.names.data_root) / "containers"
    return [p.name for p in d.iterdir()] if d.exists() else []


HELLO_DOCKERFILE = """FROM busybox
WORKDIR /app
COPY hello.py /app
CMD ["cat", "/app/hello.py"]
"""


def test_hello_world_builds_and_runs(daemon: Any, busybox_image: str) -> None:
    msgs, text = build(daemon, {"Dockerfile": HELLO_DOCKERFILE, "hello.py": "print('hello')\n"},
                       t="hello-build:1")
    assert error_of(msgs) is None, msgs
    assert "Step 1/4 : FROM busybox" in text
    assert "Step 4/4 : CMD [\"cat\", \"/app/hello.py\"]" in text
    assert "Successfully tagged hello-build:1" in text
    assert run_output(daemon, "hello-build:1") == "print('hello')\n"
    info = daemon.api("GET", "/images/hello-build:1/json").json()
    assert info["Config"]["WorkingDir"] == "/app"
    assert info["Config"]["Cmd"] == ["cat", "/app/hello.py"]
    hist = daemon.api("GET", "/images/hello-build:1/history").json()
    created_by = [h["CreatedBy"] for h in hist]
    assert created_by[0] == '/bin/sh -c #(nop)  CMD ["cat" "/app/hello.py"]'
    assert created_by[1].startswith("/bin/sh -c #(nop) COPY file:") and created_by[1].endswith(" in /app ")
    assert created_by[2] == "/bin/sh -c #(nop) WORKDIR /app"


def test_run_output_and_rebuild_fully_cached(daemon: Any, busybox_image: str) -> None:
    files = {"Dockerfile": "FROM busybox\nRUN echo built-$((6*7)) > /x && cat /x\nCOPY f /f\nCMD [\"cat\",\"/x\"]\n",
             "f": "one\n"}
    msgs, text = build(daemon, files, t="cache-test:1")
    assert error_of(msgs) is None, msgs
    assert "built-42" in text  # the RUN's output is streamed
    assert "Running in" in text
    first = image_id(msgs)
    assert run_output(daemon, "cache-test:1") == "built-42\n"
    msgs2, text2 = build(daemon, files, t="cache-test:1")
    assert error_of(msgs2) is None, msgs2
    assert image_id(msgs2) == first
    assert text2.count("Using cache") == 3
    assert "Running in" not in text2 and "Cache miss" not in text2


def test_changed_file_invalidates_from_its_step_and_names_it(daemon: Any, busybox_image: str) -> None:
    df = ("FROM busybox\nRUN echo a > /a\nCOPY app/ /app/\nRUN cat /app/main.txt > /copy\n"
          "CMD [\"cat\",\"/copy\"]\n")
    files = {"Dockerfile": df, "app/main.txt": "v1\n", "app/other.txt": "same\n"}
    msgs, _ = build(daemon, files)
    assert error_of(msgs) is None, msgs
    # same content, new mtime: still cached
    time.sleep(1.1)
    msgs, text = build(daemon, files)
    assert text.count("Using cache") == 4, text
    files["app/main.txt"] = "v2\n"
    msgs, text = build(daemon, files, t="changed:1")
    assert error_of(msgs) is None, msgs
    steps = text.split("Step ")
    assert "Using cache" in steps[2]           # RUN echo a: still cached
    assert "Using cache" not in steps[3]       # COPY: rebuilt
    assert "Cache miss: file changed: app/main.txt" in steps[3]
    assert "other.txt" not in steps[3]
    assert "Using cache" not in steps[4]
    assert run_output(daemon, "changed:1") == "v2\n"


def test_build_arg_change_is_named(daemon: Any, busybox_image: str) -> None:
    files = {"Dockerfile": "FROM busybox\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\n"}
    msgs, _ = build(daemon, files, buildargs={"FLAVOUR": "mint"})
    assert error_of(msgs) is None, msgs
    msgs, text = build(daemon, files, buildargs={"FLAVOUR": "lemon"}, t="flavour:1")
    assert error_of(msgs) is None, msgs
    assert "build arg FLAVOUR changed from 'mint' to 'lemon'" in text
    assert run_output(daemon, "flavour:1", "cat", "/flavour") == "lemon\n"
    hist = daemon.api("GET", "/images/flavour:1/history").json()
    assert hist[0]["CreatedBy"] == "|1 FLAVOUR=lemon /bin/sh -c echo $FLAVOUR > /flavour"


def test_failing_run_reports_output_and_code_and_leaves_nothing(daemon: Any, busybox_image: str) -> None:
    before = set(build_containers(daemon))
    msgs, text = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo about-to-fail && exit 3\n"},
                       t="never-tagged:1")
    assert "about-to-fail" in text
    err = error_of(msgs)
    assert err == "The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero code: 3"
    detail = [m for m in msgs if "errorDetail" in m][0]["errorDetail"]
    assert detail["code"] == 3
    assert daemon.api("GET", "/images/never-tagged:1/json").status == 404
    assert set(build_containers(daemon)) == before
    mounts = Path("/proc/mounts").read_text()
    assert "build-" not in "".join(ln for ln in mounts.splitlines() if str(daemon.names.root) in ln)


def test_syntax_error_reports_line(daemon: Any, busybox_image: str) -> None:
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN true\nFORM x\n"})
    assert error_of(msgs) == "Dockerfile:3: unknown instruction: FORM"
    assert msgs[0]["http_status"] == 400


@pytest.mark.parametrize("df,symlinks", [
    ("FROM busybox\nCOPY ../secret /s\n", None),
    ("FROM busybox\nCOPY link /s\n", {"link": "/etc/passwd"}),
    ("FROM busybox\nCOPY dir/up /s\n", {"dir/up": "../../.."}),
])
def test_copy_outside_context_is_refused(daemon: Any, busybox_image: str, df: str,
                                         symlinks: dict[str, str] | None) -> None:
    before = set(build_containers(daemon))
    msgs, _ = build(daemon, {"Dockerfile": df, "dir/x": "x"}, symlinks=symlinks, t="outside:1")
    err = error_of(msgs)
    assert err is not None and "outside the build context" in err, msgs
    assert daemon.api("GET", "/images/outside:1/json").status == 404
    assert set(build_containers(daemon)) == before


def test_multistage_target_and_copy_from(daemon: Any, busybox_image: str) -> None:
    df = """ARG BASE=busybox
FROM ${BASE} AS builder
RUN mkdir -p /out && echo compiled > /out/artifact
FROM busybox AS unused
RUN exit 1
FROM busybox
COPY --from=builder /out/artifact /artifact
ENV GREETING="hi there"
CMD echo "$GREETING" && cat /artifact
"""
    msgs, text = build(daemon, {"Dockerfile": df}, t="multi:1")
    assert error_of(msgs) is None, msgs
    assert "exit 1" not in text  # the unused stage is not built
    assert run_output(daemon, "multi:1") == "hi there\ncompiled\n"
    msgs, text = build(daemon, {"Dockerfile": df}, t="multi:builder", target="builder")
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "multi:builder", "cat", "/out/artifact") == "compiled\n"
    msgs, _ = build(daemon, {"Dockerfile": df}, target="nope")
    assert "nope" in (error_of(msgs) or "")


def test_run_steps_use_the_default_bridge_unless_told_otherwise(daemon: Any, busybox_image: str) -> None:
    df = "FROM busybox\nRUN ip -4 route > /routes; ip -4 addr > /addrs\nCMD [\"cat\", \"/routes\"]\n"
    msgs, _ = build(daemon, {"Dockerfile": df}, t="netcheck:bridge", nocache=True)
    assert error_of(msgs) is None, msgs
    gateway = daemon.names.subnet.rsplit(".", 1)[0] + ".1"
    assert f"default via {gateway}" in run_output(daemon, "netcheck:bridge")
    msgs, _ = build(daemon, {"Dockerfile": df}, t="netcheck:none", networkmode="none", nocache=True)
    assert error_of(msgs) is None, msgs
    assert "default via" not in run_output(daemon, "netcheck:none")


def test_gzip_context_and_prune(daemon: Any, busybox_image: str) -> None:
    import gzip
    body = gzip.compress(make_context({"Dockerfile": "FROM busybox\nCOPY x /x\n", "x": "zipped\n"}))
    r = daemon.api("POST", "/build", params={"t": "gz:1"}, body=body,
                   headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert r.status == 200 and "Successfully tagged gz:1" in r.text, r.text
    assert run_output(daemon, "gz:1", "cat", "/x") == "zipped\n"
    r = daemon.api("POST", "/build/prune", params={"all": True})
    assert r.status == 200 and r.json()["CachesDeleted"], r.text
    msgs, text = build(daemon, {"Dockerfile": "FROM busybox\nCOPY x /x\n", "x": "zipped\n"})
    assert "Using cache" not in text


def test_docker_cli_legacy_build(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(HELLO_DOCKERFILE)
    (tmp_path / "hello.py").write_text("print('from docker cli')\n")
    (tmp_path / "ignored.txt").write_text("x")
    (tmp_path / ".dockerignore").write_text("ignored.txt\n")
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    p = subprocess.run(["/usr/bin/docker", "build", "-t", "docker-cli-built:1", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Successfully tagged docker-cli-built:1" in p.stdout
    assert run_output(daemon, "docker-cli-built:1") == "print('from docker cli')\n"
    p = subprocess.run(["/usr/bin/docker", "build", "-q", "-f", str(tmp_path / "Dockerfile"), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith("sha256:")
    # a Dockerfile outside the context, build args, labels, several tags and --iidfile
    other = tmp_path.parent / (tmp_path.name + "-df")
    other.mkdir()
    (other / "Dockerfile").write_text("FROM busybox\nARG WHO=nobody\nRUN echo hello $WHO > /greeting\n"
                                      "CMD [\"cat\", \"/greeting\"]\n")
    p = subprocess.run(["/usr/bin/docker", "build", "-f", str(other / "Dockerfile"), "--build-arg", "WHO=cli",
                        "--label", "via=cli", "-t", "cli-a:1", "-t", "cli-b:2", "--iidfile", str(other / "iid"),
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    iid = (other / "iid").read_text().strip()
    assert iid.startswith("sha256:")
    assert run_output(daemon, "cli-b:2") == "hello cli\n"
    info = daemon.api("GET", "/images/cli-a:1/json").json()
    assert info["Id"] == iid and info["Config"]["Labels"] == {"via": "cli"}
    # a syntax error is reported with its line by the CLI
    (other / "Dockerfile").write_text("FROM busybox\nRUN true\nFORM x\n")
    p = subprocess.run(["/usr/bin/docker", "build", "-f", str(other / "Dockerfile"), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode != 0 and "Dockerfile:3: unknown instruction: FORM" in p.stderr


def test_docker_py_build(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    docker = pytest.importorskip("docker")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL made.by=docker-py\nRUN echo py > /py\n")
    client = docker.DockerClient(base_url=daemon.host, version="1.43")
    try:
        image, logs = client.images.build(path=str(tmp_path), tag="docker-py-built:1", rm=True)
        assert "docker-py-built:1" in image.tags
        assert image.labels.get("made.by") == "docker-py"
        assert any("Step 3/3" in (entry.get("stream") or "") for entry in logs)
        with pytest.raises(docker.errors.BuildError) as ei:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 7\n"), rm=True)
        assert "returned a non-zero code: 7" in str(ei.value)
    finally:
        client.close()


def test_missing_base_is_pulled_with_x_registry_config(daemon: Any, busybox_image: str,
                                                       berth_registry: Any) -> None:
    import base64
    import secrets
    repo = f"{berth_registry.host}/build/base-{secrets.token_hex(3)}"
    auth = {"username": berth_registry.user, "password": berth_registry.password,
            "serveraddress": berth_registry.host}
    from berth.registry.auth_config import encode_registry_auth
    r = daemon.api("POST", f"/images/{busybox_image}/tag", params={"repo": repo, "tag": "v1"})
    assert r.status == 201, r.text
    r = daemon.api("POST", f"/images/{repo}/push", params={"tag": "v1"},
                   headers={"X-Registry-Auth": encode_registry_auth(auth)}, timeout=120)
    assert r.status == 200 and '"error"' not in r.text, r.text
    assert daemon.api("DELETE", f"/images/{repo}:v1").status == 200
    config = base64.urlsafe_b64encode(json.dumps({berth_registry.host: auth}).encode()).decode()
    ctx = make_context({"Dockerfile": f"FROM {repo}:v1\nRUN echo pulled > /p\n"})
    r = daemon.api("POST", "/build", params={"t": "pulled-base:1"}, body=ctx,
                   headers={"Content-Type": "application/x-tar", "X-Registry-Config": config}, timeout=120)
    assert r.status == 200, r.text
    msgs = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    assert error_of(msgs) is None, msgs
    assert any("status" in m for m in msgs)  # pull progress is streamed
    assert daemon.api("GET", f"/images/{repo}:v1/json").status == 200
    assert run_output(daemon, "pulled-base:1", "cat", "/p") == "pulled\n"
    # without credentials the pull fails and the error is reported
    daemon.api("DELETE", f"/images/{repo}:v1", params={"force": True})
    msgs, _ = build(daemon, {"Dockerfile": f"FROM {repo}:v1\n"}, t="never-pulled:1")
    assert error_of(msgs) is not None
    assert daemon.api("GET", "/images/never-pulled:1/json").status == 404


def test_client_disconnect_cancels_the_build_and_cleans_up(daemon: Any, busybox_image: str) -> None:
    before = set(build_containers(daemon))
    s, seen = build_under_way(daemon.socket, "FROM busybox\nRUN echo $((40+2))-go; sleep 37; echo never\n",
                              b"42-go", "?t=cancelled:1&nocache=1")
    assert b"Running in" in seen
    s.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if set(build_containers(daemon)) == before:
            break
        time.sleep(0.2)
    assert set(build_containers(daemon)) == before
    procs = subprocess.run(["pgrep", "-f", "sleep 37"], capture_output=True, text=True).stdout.split()
    assert procs == []
    assert daemon.api("GET", "/images/cancelled:1/json").status == 404


def _examples_context(name: str, base: str) -> dict[str, Any]:
    """The files of examples/<name>/ with FROM pointed at a stand-in base."""
    from support import REPO
    root = REPO / "examples" / name
    files: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            files[str(p.relative_to(root))] = p.read_bytes()
    df = files["Dockerfile"].decode()
    assert df.startswith("FROM python:3.11-slim\n")
    files["Dockerfile"] = df.replace("FROM python:3.11-slim\n", f"FROM {base}\n", 1)
    return files


@pytest.fixture(scope="module")
def python_standin(daemon: Any, busybox_image: str) -> str:
    """A tiny stand-in for python:3.11-slim: `python` prints a script's print("...") lines,
    `pip` records how it was called."""
    tag = "berth-test-python-standin:3.11-slim"
    files = {
        "Dockerfile": "FROM busybox\nCOPY --chmod=755 python pip /usr/local/bin/\n",
        "python": "#!/bin/sh\nsed -n 's/^print(\"\\(.*\\)\")$/\\1/p' \"$1\"\n",
        "pip": "#!/bin/sh\necho \"pip $*\" >> /pip.log\n",
    }
    msgs, _ = build(daemon, files, t=tag)
    assert error_of(msgs) is None, msgs
    return tag


def test_hello_world_journey_dockerfile(daemon: Any, python_standin: str) -> None:
    files = _examples_context("hello-world-python", python_standin)
    msgs, text = build(daemon, files, t="hello-world-python:latest")
    assert error_of(msgs) is None, msgs
    out = run_output(daemon, "hello-world-python")
    assert out == "Hello, World! This greeting comes from a Python container built and run by berth.\n"
    msgs, text = build(daemon, files, t="hello-world-python:latest")
    assert text.count("Using cache") == 3


def test_scikit_learn_journey_dockerfile(daemon: Any, python_standin: str) -> None:
    files = _examples_context("scikit-learn", python_standin)
    msgs, text = build(daemon, files, t="sklearn-journey:1")
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "sklearn-journey:1", "cat", "/pip.log") == \
        "pip install --no-cache-dir -r requirements.txt\n"
    listing = run_output(daemon, "sklearn-journey:1", "ls", "/app")
    assert listing.split() == ["iris.csv", "model_learn.py", "requirements.txt"]


def test_daemon_crash_mid_build_is_cleaned_up_at_restart(busybox_tar: str) -> None:
    """berthd killed during a RUN step: the step's container (kept alive by its shim) and
    its snapshot are removed when the daemon comes back."""
    from fixtures.daemon import private_daemon
    from support import new_run_names

    names = new_run_names()
    with private_daemon(names, busybox_tar) as h:
        s, _ = build_under_way(h.socket, "FROM busybox\nRUN echo $((40+2))-go; sleep 61\n", b"42-go")
        h.kill9()
        s.close()
        assert subprocess.run(["pgrep", "-f", "sleep 61"], capture_output=True).returncode == 0
        # and a COPY step's snapshot, as a crash in the middle of one would leave it
        from berth.image.snapshots import Snapshots
        merged = Snapshots(names.data_root / "containers").prepare("build-leftover0", [])
        assert merged in Path("/proc/mounts").read_text()
        h.start()
        containers = names.data_root / "containers"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(containers.iterdir()):
            time.sleep(0.2)
        assert list(containers.iterdir()) == []
        assert subprocess.run(["pgrep", "-f", "sleep 61"], capture_output=True).returncode == 1
        assert str(containers) not in Path("/proc/mounts").read_text()


def test_docker_cli_add_host_and_memory_reach_run_steps(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN cat /etc/hosts > /hosts\n")
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    p = subprocess.run(["/usr/bin/docker", "build", "--no-cache", "--add-host", "build-peer.example:10.9.8.7",
                        "-m", "256m", "-t", "addhost:1", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    hosts = run_output(daemon, "addhost:1", "cat", "/hosts")
    assert any(line.split()[:2] == ["10.9.8.7", "build-peer.example"] for line in hosts.splitlines()), hosts


def test_run_layers_hold_only_what_the_command_changed(daemon: Any, busybox_image: str) -> None:
    """The container's /etc/hosts, /etc/hostname and /etc/resolv.conf mount targets stay
    out of the committed layer, as Docker's init layer does."""
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN echo hi > /x\nRUN true\n"}, t="layers:1",
                    nocache=True)
    assert error_of(msgs) is None, msgs
    r = daemon.api("GET", "/images/layers:1/get", timeout=60)
    assert r.status == 200
    outer = tarfile.open(fileobj=io.BytesIO(r.body))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    layers = manifest["Layers"]
    assert len(layers) == 2  # busybox + the first RUN; `RUN true` changed nothing
    names = tarfile.open(fileobj=outer.extractfile(layers[-1])).getnames()
    assert names == ["x"], names
    hist = daemon.api("GET", "/images/layers:1/history").json()
    assert hist[0]["CreatedBy"] == "/bin/sh -c true" and hist[0]["Size"] == 0


def test_run_after_volume_leaves_no_anonymous_volume(daemon: Any, busybox_image: str) -> None:
    before = {v["Name"] for v in (daemon.api("GET", "/volumes").json().get("Volumes") or [])}
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nVOLUME /data\nRUN echo x > /data/x && ls /data\n"},
                    nocache=True)
    assert error_of(msgs) is None, msgs
    after = {v["Name"] for v in (daemon.api("GET", "/volumes").json().get("Volumes") or [])}
    assert after == before


def test_dockerignore_in_the_context_is_applied_by_the_daemon(daemon: Any, busybox_image: str) -> None:
    files = {"Dockerfile": "FROM busybox\nCOPY . /ctx/\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n",
             ".dockerignore": "# build junk\n**/*.log\nsecrets/\n!secrets/public.txt\nDockerfile\n",
             "app/main.txt": "m", "app/debug.log": "x", "top.log": "x",
             "secrets/key": "k", "secrets/public.txt": "p"}
    msgs, _ = build(daemon, files, t="ignored:1")
    assert error_of(msgs) is None, msgs
    listed = sorted(run_output(daemon, "ignored:1").split())
    assert listed == ["/ctx/.dockerignore", "/ctx/app/main.txt", "/ctx/secrets/public.txt"]


def test_from_scratch_with_a_static_binary(daemon: Any) -> None:
    files = {"Dockerfile": "FROM scratch\nWORKDIR /data\nCOPY busybox /bin/busybox\n"
                           "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo from-scratch in $(/bin/busybox pwd)\"]\n",
             "busybox": (Path("/bin/busybox").read_bytes(), 0o755)}
    msgs, _ = build(daemon, files, t="scratch-built:1")
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "scratch-built:1") == "from-scratch in /data\n"
    info = daemon.api("GET", "/images/scratch-built:1/json").json()
    assert len(info["RootFS"]["Layers"]) == 2  # WORKDIR's directory, then the binary


def _saved_config(daemon: Any, name: str) -> dict[str, Any]:
    r = daemon.api("GET", f"/images/{name}/get", timeout=60)
    assert r.status == 200, r.text
    outer = tarfile.open(fileobj=io.BytesIO(r.body))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    return json.load(outer.extractfile(manifest["Config"]))


def test_history_lines_up_with_layers_in_a_multi_step_build(daemon: Any, busybox_image: str) -> None:
    """Every settings-only step (ENV, LABEL, ARG, CMD, ...) is an `empty_layer` history
    entry, so the non-empty entries are exactly the layers, as Docker writes them."""
    df = ("FROM busybox\nMAINTAINER someone\nARG V=1\nENV A=$V\nLABEL l=1\nRUN echo a > /a\n"
          "EXPOSE 80\nCOPY f /f\nUSER 1000\nWORKDIR /w\nRUN true\nSTOPSIGNAL SIGTERM\n"
          "CMD [\"sh\"]\n")
    msgs, _ = build(daemon, {"Dockerfile": df, "f": "x"}, t="hist-lines:1", nocache=True)
    assert error_of(msgs) is None, msgs
    try:
        cfg = _saved_config(daemon, "hist-lines:1")
        history, diff_ids = cfg["history"], cfg["rootfs"]["diff_ids"]
        assert len([h for h in history if not h.get("empty_layer")]) == len(diff_ids)
        # busybox, RUN echo, COPY, WORKDIR mkdir: four layers; the rest are settings only
        assert len(diff_ids) == 4
        by_step = {h["created_by"].split("#(nop) ")[-1].split()[0]: h for h in history[1:]}
        for kw in ("ENV", "LABEL", "EXPOSE", "USER", "STOPSIGNAL", "CMD", "ARG", "MAINTAINER"):
            assert by_step[kw].get("empty_layer") is True, (kw, by_step[kw])
        assert cfg["author"] == "someone"  # the stage's MAINTAINER authors every later step
        assert [h.get("author") for h in history[1:]] == ["someone"] * (len(history) - 1)
        hist = daemon.api("GET", "/images/hist-lines:1/history").json()
        sizes = {h["CreatedBy"]: h["Size"] for h in hist}
        assert sizes["|1 V=1 /bin/sh -c echo a > /a"] == 2  # the ARG shows as docker shows it
    finally:
        daemon.api("DELETE", "/images/hist-lines:1")


def test_intermediate_images_show_only_with_all(daemon: Any, busybox_image: str) -> None:
    """Each step's image records its parent; `docker images` hides the untagged ones that
    have a child, `docker images -a` shows them, `rmi` of the tag deletes the chain."""
    df = "FROM busybox\nRUN echo a > /a\nENV X=1\nRUN echo b > /b\nCMD [\"sh\"]\n"
    msgs, text = build(daemon, {"Dockerfile": df}, t="steps-shown:1", nocache=True)
    assert error_of(msgs) is None, msgs
    top = image_id(msgs)
    steps = [line.split()[1] for line in text.splitlines() if line.startswith(" ---> ")
             and len(line.split()) == 2 and len(line.split()[1]) == 12]
    assert len(steps) == 5 and top[7:19] == steps[-1]  # busybox + four steps
    try:
        listed = {i["Id"][7:19]: i for i in daemon.api("GET", "/images/json").json()}
        assert top[7:19] in listed and not set(steps[1:-1]) & set(listed)
        every = {i["Id"][7:19]: i for i in daemon.api("GET", "/images/json", params={"all": "1"}).json()}
        assert set(steps) <= set(every)
        for parent, child in zip(steps[:-1], steps[1:], strict=True):
            assert every[child]["ParentId"][7:19] == parent
        assert daemon.api("GET", f"/images/{top}/json").json()["Parent"][7:19] == steps[-2]
        q = daemon.docker("images", "-q", "--no-trunc")
        assert q.returncode == 0 and not set(steps[1:-1]) & {i[7:19] for i in q.stdout.split()}
        qa = daemon.docker("images", "-a", "-q")
        assert qa.returncode == 0 and set(steps[1:]) <= set(qa.stdout.split())
    finally:
        r = daemon.api("DELETE", "/images/steps-shown:1")
    assert r.status == 200, r.text
    deleted = [x["Deleted"][7:19] for x in r.json() if "Deleted" in x]
    assert [d for d in deleted if d in steps] == list(reversed(steps[1:]))  # busybox stays
    every = {i["Id"][7:19] for i in daemon.api("GET", "/images/json", params={"all": "1"}).json()}
    assert not set(steps[1:]) & every and steps[0] in every
