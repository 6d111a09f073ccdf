"""`berth bootstrap`: real builds with busybox-static and mmdebstrap, loaded and run.

The python and nginx archives are cached in $BERTH_BOOTSTRAP_CACHE (default
/var/cache/berth-bootstrap) keyed by recipe, sources and day, so later tests and later
runs the same day reuse them; the reproducibility tests always build from scratch.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from berth.bootstrap import BootstrapError, build_image, hostca
from berth.bootstrap import builder as builder_mod
from berth.bootstrap.sources import SourceEntry, for_suite, mirror_uris, read_sources
from support import free_port, http_get

pytestmark = [pytest.mark.root]

CACHE = os.environ.get("BERTH_BOOTSTRAP_CACHE", "/var/cache/berth-bootstrap")


def _archive_config(tar_path: Path, files_only: bool = False) -> tuple[dict, list[str]]:
    """The image config and the layer's member names (only regular files if files_only)."""
    with tarfile.open(tar_path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        with tar.extractfile(manifest[0]["Layers"][0]) as lf, tarfile.open(fileobj=lf, mode="r|") as layer:
            names = [m.name for m in layer if m.isfile() or not files_only]
    return config, names


def _mounts_with(token: str) -> list[str]:
    return [ln for ln in Path("/proc/mounts").read_text().splitlines() if token in ln]


def test_busybox_twice_gives_the_same_image(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    lines: list[str] = []
    one = build_image("busybox:latest", tmp_path / "one.tar", log=lines.append, work_dir=work)
    two = build_image("busybox", tmp_path / "two.tar", log=lambda s: None, work_dir=work)
    assert one.image_id == two.image_id
    assert one.tar_path.read_bytes() == two.tar_path.read_bytes()
    assert list(work.iterdir()) == []            # temp rootfs removed
    assert one.reference == "busybox:latest"
    assert "busybox-static" in one.description and one.packages["busybox-static"]
    assert any("built busybox:latest" in ln for ln in lines)
    config, names = _archive_config(one.tar_path)
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Labels"]["io.berth.bootstrap.packages"].startswith("busybox-static=")
    assert config["created"] == one.created
    assert {"bin/busybox", "bin/sh", "etc/passwd", "etc/group"} <= set(names)


def test_cache_reuses_todays_archive_and_drops_stale_ones(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / "busybox_latest-0123456789abcdef-20000101.tar"
    stale.write_text("old")
    other = cache / "busybox_latest-extra-0123456789abcdef-20000101.tar"   # another reference
    other.write_text("keep")
    first = build_image("busybox", tmp_path / "a.tar", log=lambda s: None, cache_dir=cache)
    assert not first.cached and not stale.exists() and other.exists()
    assert len(list(cache.glob("busybox_latest-*.tar"))) == 2
    lines: list[str] = []
    second = build_image("busybox:latest", tmp_path / "b.tar", log=lines.append, cache_dir=cache)
    assert second.cached and second.image_id == first.image_id
    assert second.tar_path == tmp_path / "b.tar"
    assert second.tar_path.read_bytes() == first.tar_path.read_bytes()
    assert second.description == first.description
    assert any("built earlier today" in ln for ln in lines)


def test_failed_archive_write_leaves_no_file_or_new_dirs(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(tmp: Path, **kw: object) -> str:
        Path(tmp).write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(builder_mod, "write_docker_archive", boom)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(OSError, match="No space left"):
        build_image("busybox", tmp_path / "new" / "dirs" / "bb.tar", log=lambda s: None, work_dir=work)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert list(work.iterdir()) == []


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror that does not answer: a clear error, no archive, no temp dir, no mounts."""
    dead = [SourceEntry(("deb",), ("http://127.0.0.1:9/debian",), ("bookworm",), ("main",),
                        (("Signed-By", "/usr/share/keyrings/debian-archive-keyring.gpg"),))]
    monkeypatch.setattr(builder_mod, "read_sources", lambda: dead)
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out" / "debian.tar"
    with pytest.raises(BootstrapError, match="mmdebstrap failed for debian:bookworm-slim"):
        build_image("debian:bookworm-slim", out, log=lambda s: None, work_dir=work)
    assert list(work.iterdir()) == []
    assert not out.exists()
    if out.parent.exists():
        assert list(out.parent.iterdir()) == []    # no half-written archive either
    assert _mounts_with(str(work)) == []


class _Stop(Exception):
    pass


def test_interrupted_build_leaves_nothing(tmp_path: Path) -> None:
    """Interrupted while mmdebstrap has /proc, /sys and /dev mounted in the rootfs: every
    process of the build is stopped, every mount undone, the temp dir and archive gone."""
    work = tmp_path / "work"
    work.mkdir()
    seen: list[str] = []

    def log(line: str) -> None:
        seen.append(line)
        if "installing essential packages" in line or "installing remaining packages" in line:
            assert _mounts_with(str(work)), "expected mmdebstrap's mounts at this point"
            raise _Stop()

    with pytest.raises(_Stop):
        build_image("debian:bookworm-slim", tmp_path / "x.tar", log=log, work_dir=work)
    assert list(work.iterdir()) == []
    assert _mounts_with(str(work)) == []
    assert not (tmp_path / "x.tar").exists()
    procs = subprocess.run(["pgrep", "-af", str(work)], capture_output=True, text=True).stdout
    assert procs == "", procs


@pytest.mark.slow
def test_debian_slim_is_reproducible(tmp_path: Path) -> None:
    """Two full mmdebstrap builds (the second through the 12-slim alias, both at once in
    separate temp dirs, which also shows concurrent builds do not interfere): one image id."""
    with ThreadPoolExecutor(2) as pool:
        f1 = pool.submit(build_image, "debian:bookworm-slim", tmp_path / "one.tar", log=lambda s: None,
                         work_dir=tmp_path)
        f2 = pool.submit(build_image, "debian:12-slim", tmp_path / "two.tar", log=lambda s: None,
                         work_dir=tmp_path)
        one, two = f1.result(), f2.result()
    assert one.image_id == two.image_id, "same recipe and packages must give the same image"
    assert (one.reference, two.reference) == ("debian:bookworm-slim", "debian:12-slim")
    config, names = _archive_config(one.tar_path)
    config2, _ = _archive_config(two.tar_path)
    assert config == config2
    with tarfile.open(two.tar_path) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["debian:12-slim"]
    labels = config["config"]["Labels"]
    assert labels["io.berth.bootstrap.packages"].startswith("base-files=12.")
    assert labels["org.opencontainers.image.version"].startswith("12.")
    mirrors = mirror_uris(for_suite(read_sources(), "bookworm"))
    assert labels["org.opencontainers.image.source"] == " ".join(mirrors)
    assert all(m in one.description for m in mirrors)
    assert "mmdebstrap --variant=minbase" in one.description and "bookworm" in one.description
    names_set = set(names)
    assert "usr/bin/bash" in names_set and "usr/bin/apt-get" in names_set
    assert not [n for n in names if n.startswith(("var/lib/apt/lists/", "dev/")) or n.endswith(".deb")]
    _, files = _archive_config(one.tar_path, files_only=True)
    assert not [n for n in files if n.startswith(("usr/share/man/", "usr/share/info/"))]
    assert not [n for n in files if n.startswith("usr/share/locale/") and not n.endswith("/locale.alias")]
    docs = [n for n in files if n.startswith("usr/share/doc/")]
    assert docs and all(n.endswith("/copyright") for n in docs), docs   # licences kept, docs not
    assert "etc/resolv.conf" in files and "etc/hostname" in files      # emptied, not the host's
    assert one.layer_size < 120 << 20


# --- images built once (cached), loaded and run ---------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """python:3.11-slim, nginx:latest and debian:bookworm, from today's cache or built
    side by side."""
    out = tmp_path_factory.mktemp("bootstrap")
    with ThreadPoolExecutor(2) as pool:
        futures = {ref: pool.submit(build_image, ref, out / f"{ref.replace(':', '_')}.tar",
                                    log=lambda s: None, cache_dir=CACHE)
                   for ref in ("python:3.11-slim", "nginx:latest", "debian:bookworm")}
        return {ref: f.result().tar_path for ref, f in futures.items()}


@pytest.fixture(scope="module")
def python_tar(built: dict[str, Path]) -> Path:
    return built["python:3.11-slim"]


@pytest.fixture(scope="module")
def nginx_tar(built: dict[str, Path]) -> Path:
    return built["nginx:latest"]


def test_python_archive_contents(python_tar: Path) -> None:
    config, names = _archive_config(python_tar)
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["LANG"] == "C.UTF-8" and env["PYTHON_VERSION"].startswith("3.11.")
    assert "/usr/local/bin" in env["PATH"]
    assert config["config"]["Cmd"] == ["python3"]
    assert "python3.11=3.11" in config["config"]["Labels"]["io.berth.bootstrap.packages"]
    assert "usr/lib/python3.11/EXTERNALLY-MANAGED" not in names
    assert {"usr/local/bin/python", "usr/local/bin/pip", "usr/bin/python3.11"} <= set(names)
    assert not [n for n in names if "__pycache__" in n]


def test_full_debian_keeps_docs(built: dict[str, Path]) -> None:
    """debian:bookworm is the non-slim variant: docs and man pages stay, no extra CAs."""
    config, files = _archive_config(built["debian:bookworm"], files_only=True)
    assert [n for n in files if n.startswith("usr/share/man/")]
    assert [n for n in files if n.startswith("usr/share/doc/") and "changelog" in n]
    assert not [n for n in files if n.startswith("var/lib/apt/lists/")]
    assert config["config"]["Cmd"] == ["bash"]
    assert "io.berth.bootstrap.host-ca" not in config["config"]["Labels"]


def test_python_trusts_the_hosts_local_cas(python_tar: Path) -> None:
    """The host's /usr/local/share/ca-certificates are in the image's CA bundle."""
    cas = hostca.host_cas()
    config, _ = _archive_config(python_tar)
    labels = config["config"]["Labels"]
    with tarfile.open(python_tar) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        with tar.extractfile(manifest[0]["Layers"][0]) as lf, tarfile.open(fileobj=lf, mode="r|") as layer:
            bundle = b""
            for m in layer:
                if m.name == "etc/ssl/certs/ca-certificates.crt":
                    bundle = layer.extractfile(m).read()
                    break
    assert bundle.count(b"BEGIN CERTIFICATE") > 100          # Debian's list is there
    if not cas:
        assert "io.berth.bootstrap.host-ca" not in labels
        return
    assert labels["io.berth.bootstrap.host-ca"] == hostca.label(cas)
    for ca in cas:
        body = b"".join(ca.data.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split()[:3])
        assert body in b"".join(bundle.split()), ca.name


def _load(daemon, tar_path: Path) -> None:  # noqa: ANN001 - DaemonHandle from fixtures
    r = daemon.api("POST", "/images/load", body=tar_path.read_bytes(),
                   headers={"Content-Type": "application/x-tar"}, timeout=300)
    assert r.status == 200, r.text
    assert "error" not in r.text.lower(), r.text


def _demux(raw: bytes) -> str:
    out, i = [], 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1:i + 4] == b"\0\0\0":
        (n,) = struct.unpack(">I", raw[i + 4:i + 8])
        out.append(raw[i + 8:i + 8 + n])
        i += 8 + n
    if i == 0:
        return raw.decode("utf-8", "replace")
    return b"".join(out).decode("utf-8", "replace")


def _run(daemon, image: str, cmd: list[str]) -> tuple[int, str]:  # noqa: ANN001
    r = daemon.api("POST", "/containers/create", json={"Image": image, "Cmd": cmd})
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    try:
        r = daemon.api("POST", f"/containers/{cid}/start")
        assert r.status == 204, r.text
        r = daemon.api("POST", f"/containers/{cid}/wait", timeout=120)
        assert r.status == 200, r.text
        code = r.json()["StatusCode"]
        logs = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": True, "stderr": True})
        return code, _demux(logs.body)
    finally:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": True})


@pytest.fixture(scope="module")
def berth_with_python(daemon, python_tar: Path) -> Iterator[object]:  # noqa: ANN001
    _load(daemon, python_tar)
    yield daemon
    daemon.api("DELETE", "/images/python:3.11-slim", params={"force": True})


def test_python_runs_in_berth(berth_with_python) -> None:  # noqa: ANN001
    code, out = _run(berth_with_python, "python:3.11-slim", ["python", "-c", "print(1)"])
    assert (code, out.strip()) == (0, "1")
    code, out = _run(berth_with_python, "python:3.11-slim", ["pip", "--version"])
    assert code == 0 and out.startswith("pip 23.") and "python 3.11" in out, out


def test_pip_installs_into_the_system(berth_with_python) -> None:  # noqa: ANN001
    """No "externally-managed-environment" refusal: root's `pip install` lands in /usr/local."""
    script = ("mkdir /tmp/p && cd /tmp/p && "
              "printf 'from setuptools import setup\\nsetup(name=\"hello-berth\", version=\"1.0\", "
              "py_modules=[\"hello_berth\"])\\n' > setup.py && echo X=41 > hello_berth.py && "
              "pip install --no-index --no-build-isolation . && cd / && "
              "python -c 'import hello_berth; print(hello_berth.X + 1, hello_berth.__file__)'")
    code, out = _run(berth_with_python, "python:3.11-slim", ["sh", "-c", script])
    assert "externally-managed" not in out, out
    assert code == 0, out
    assert "Successfully installed hello-berth-1.0" in out
    assert "42 /usr/local/lib/python3.11/dist-packages/hello_berth.py" in out


def test_pip_reaches_pypi_from_a_container(berth_with_python) -> None:  # noqa: ANN001
    """What `RUN pip install` in the journeys needs: TLS to PyPI works from the image
    (through the host's egress CA where there is one) over berth's default network."""
    code, out = _run(berth_with_python, "python:3.11-slim",
                     ["pip", "download", "--no-deps", "--no-cache-dir", "-d", "/tmp/dl", "six"])
    assert code == 0, out
    assert "Saved /tmp/dl/six-" in out, out


def test_nginx_serves_welcome_page(daemon, nginx_tar: Path) -> None:  # noqa: ANN001
    _load(daemon, nginx_tar)
    r = daemon.api("POST", "/containers/create", json={"Image": "nginx:latest"})
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    try:
        r = daemon.api("POST", f"/containers/{cid}/start")
        assert r.status == 204, r.text
        info = daemon.api("GET", f"/containers/{cid}/json").json()
        assert info["Config"]["StopSignal"] == "SIGQUIT"
        assert "80/tcp" in info["Config"]["ExposedPorts"]
        pid = info["State"]["Pid"]
        assert pid > 0 and info["State"]["Running"], info["State"]
        page = ""
        for _ in range(50):
            res = subprocess.run(["nsenter", "-t", str(pid), "-n", "curl", "-s", "-m", "2",
                                  "http://127.0.0.1:80/"], capture_output=True, text=True)
            page = res.stdout
            if "Welcome to nginx!" in page:
                break
            time.sleep(0.2)
        assert "<title>Welcome to nginx!</title>" in page, page
        logs = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": True, "stderr": True})
        assert '"GET / HTTP/1.1" 200' in _demux(logs.body)     # access log on stdout
        r = daemon.api("POST", f"/containers/{cid}/stop", params={"t": 10}, timeout=60)
        assert r.status in (204, 304), r.text
        assert daemon.api("GET", f"/containers/{cid}/json").json()["State"]["Running"] is False
        _published_port_serves_page(daemon)
    finally:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": True})
        daemon.api("DELETE", "/images/nginx:latest", params={"force": True})


def _published_port_serves_page(daemon) -> None:  # noqa: ANN001
    """`-p 127.0.0.1:PORT:80`: the page is served on the host's loopback too."""
    port = free_port()
    r = daemon.api("POST", "/containers/create", json={
        "Image": "nginx:latest",
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}})
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    try:
        r = daemon.api("POST", f"/containers/{cid}/start")
        assert r.status == 204, r.text
        page = http_get(f"http://127.0.0.1:{port}/")
        assert "<title>Welcome to nginx!</title>" in page, page
    finally:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": True})


# --- the same archive in Debian's dockerd: proof it is a proper image ----------------------

def _docker(dockerd, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    """The docker CLI against the fixture's isolated dockerd (tests/fixtures/dockerd.py)."""
    return dockerd.docker(*args, timeout=300)


@pytest.mark.peer
def test_python_runs_in_dockerd(dockerd, python_tar: Path) -> None:  # noqa: ANN001
    r = _docker(dockerd, "load", "-i", str(python_tar))
    assert r.returncode == 0 and "Loaded image: python:3.11-slim" in r.stdout, r.stdout + r.stderr
    try:
        r = _docker(dockerd, "run", "--rm", "--network", "none", "python:3.11-slim",
                    "python", "-c", "print(1)")
        assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
        r = _docker(dockerd, "run", "--rm", "--network", "none", "python:3.11-slim", "pip", "--version")
        assert r.returncode == 0 and r.stdout.startswith("pip 23."), r.stdout + r.stderr
        r = _docker(dockerd, "image", "inspect", "-f", "{{json .Config.Labels}}", "python:3.11-slim")
        labels = json.loads(r.stdout)
        assert labels["io.berth.bootstrap.recipe"] == "python:3.11-slim"
    finally:
        _docker(dockerd, "rmi", "-f", "python:3.11-slim")


# --- `berth bootstrap` through the CLI (the archive comes from today's cache) ----------------

def test_cli_bootstrap_loads_and_states_its_origin(daemon, python_tar: Path,  # noqa: ANN001
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_BOOTSTRAP_CACHE", CACHE)      # python_tar put it there
    r = daemon.cli("bootstrap", "python:3.11-slim", timeout=600)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "python3.11 3.11" in out and "bookworm" in out, out
        assert "EXTERNALLY-MANAGED" in out                   # the deliberate difference is stated
        inspect = daemon.api("GET", "/images/python:3.11-slim/json")
        assert inspect.status == 200, inspect.text
        labels = inspect.json()["Config"]["Labels"]
        assert labels["io.berth.bootstrap.recipe"] == "python:3.11-slim"
    finally:
        daemon.api("DELETE", "/images/python:3.11-slim", params={"force": True})
    r = daemon.cli("bootstrap", "python:3.8-slim")
    assert r.returncode != 0
    assert "bookworm ships Python 3.11" in r.stderr and "nothing is substituted" in r.stderr, r.stderr
