"""POST /build parameters of the classic builder that berthd used to drop, through the real
docker CLI (DOCKER_BUILDKIT=0) or the API: ulimits on RUN steps, isolation / security
options / squash refused with dockerd's words, rm / forcerm deciding which step containers
stay, and /build/prune's filters, all and keep-storage."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_build_api import build, error_of, image_id

pytestmark = [pytest.mark.root]


def docker_build(daemon: Any, ctx: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    return subprocess.run(["/usr/bin/docker", "build", *args, str(ctx)], capture_output=True, text=True,
                          env=env, timeout=120)


def step_containers(text: str) -> list[str]:
    return re.findall(r"Running in ([0-9a-f]{12})", text)


def visible(daemon: Any) -> dict[str, str]:
    """`ps -a`: short id -> status."""
    out = daemon.api("GET", "/containers/json", params={"all": True}).json()
    return {c["Id"][:12]: c["State"] for c in out}


def remove(daemon: Any, ids: list[str]) -> None:
    for cid in ids:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": True})


def test_ulimit_reaches_run_steps(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo nofile=$(ulimit -n) hard=$(ulimit -Hn)\n")
    p = docker_build(daemon, tmp_path, "--no-cache", "--ulimit", "nofile=1234:2345")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nofile=1234 hard=2345" in p.stdout


@pytest.mark.parametrize("params,message", [
    ({"isolation": "hyperv"}, 'Unsupported isolation: "hyperv"'),
    ({"securityopt": "seccomp=unconfined"},
     "The daemon on this platform does not support setting security options on build"),
    ({"squash": "1"}, "squash is only supported with experimental mode"),
])
def test_refused_as_dockerd_does(daemon: Any, busybox_image: str, params: dict[str, str], message: str) -> None:
    before = visible(daemon)
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN true\n"}, **params)
    assert msgs[0].get("http_status") == 400 and msgs[0]["message"] == message, msgs
    assert visible(daemon) == before


def test_isolation_default_is_taken(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    p = docker_build(daemon, tmp_path, "--isolation", "default")
    assert p.returncode == 0, p.stdout + p.stderr
    p = docker_build(daemon, tmp_path, "--isolation", "hyperv")
    assert p.returncode != 0 and 'Unsupported isolation: "hyperv"' in p.stderr


def test_rm_false_keeps_every_step_container(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN echo {secrets.token_hex(4)} > /a\nRUN cat /a\n")
    p = docker_build(daemon, tmp_path, "--rm=false")
    ids = step_containers(p.stdout)
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert len(ids) == 2 and "Removing intermediate container" not in p.stdout
        shown = visible(daemon)
        assert all(shown.get(cid) == "exited" for cid in ids), shown
    finally:
        remove(daemon, ids)


def test_a_failed_step_stays_with_rm_false_and_goes_with_forcerm(daemon: Any, busybox_image: str,
                                                                tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN echo {secrets.token_hex(4)}\nRUN exit 3\n")
    p = docker_build(daemon, tmp_path, "--rm=false")
    ids = step_containers(p.stdout)
    try:
        assert p.returncode != 0 and "returned a non-zero code: 3" in p.stderr
        assert len(ids) == 2
        shown = visible(daemon)
        assert all(shown.get(cid) == "exited" for cid in ids), shown
        inspect = daemon.api("GET", f"/containers/{ids[1]}/json").json()
        assert inspect["State"]["ExitCode"] == 3
        assert "berth.build.step" not in (inspect["Config"]["Labels"] or {})
    finally:
        remove(daemon, ids)
    p = docker_build(daemon, tmp_path, "--force-rm")
    ids = step_containers(p.stdout)
    assert p.returncode != 0 and ids
    assert f"Removing intermediate container {ids[-1]}" in p.stdout
    shown = visible(daemon)
    assert not [cid for cid in ids if cid in shown], shown


def prune(daemon: Any, **params: Any) -> Any:
    return daemon.api("POST", "/build/prune", params=params)


def test_prune_filters_all_and_keep_storage(daemon: Any, busybox_image: str) -> None:
    tag = secrets.token_hex(4)
    files = {"Dockerfile": f"FROM busybox\nRUN --mount=type=cache,id={tag},target=/c "
                           f"echo {tag} > /c/f && cp /c/f /f\n"}
    msgs, _ = build(daemon, files)
    assert error_of(msgs) is None, msgs
    mine = {"description": [f"cached mount {tag}"]}
    # recently used, or within what may be kept: nothing goes
    r = prune(daemon, filters={**mine, "until": ["1h"]})
    assert r.status == 200 and r.json() == {"CachesDeleted": None, "SpaceReclaimed": 0}, r.text
    r = prune(daemon, filters=mine, **{"keep-storage": 10**15})
    assert r.json()["CachesDeleted"] is None, r.text
    # cache mounts only: the step record stays (the rebuild hits)
    r = prune(daemon, filters={**mine, "type": ["exec.cachemount"]}, all=True)
    deleted = r.json()["CachesDeleted"]
    assert len(deleted) == 1 and r.json()["SpaceReclaimed"] > 0, r.text
    _, text = build(daemon, files)
    assert "Using cache" in text
    # records only, with all
    r = prune(daemon, filters={"type": ["regular"]}, all=True)
    assert r.status == 200 and r.json()["CachesDeleted"], r.text
    assert all(k.startswith("sha256:") for k in r.json()["CachesDeleted"])
    _, text = build(daemon, files)
    assert "Using cache" not in text
    prune(daemon, filters={**mine, "type": ["exec.cachemount"]})


@pytest.mark.parametrize("params,message", [
    ({"filters": {"colour": ["red"]}}, "invalid filter 'colour'"),
    ({"filters": {"until": ["soon"]}}, "\"until\" filter expects a duration (e.g., '24h'): "
                                       "time: invalid duration \"soon\""),
    ({"filters": {"until": ["1h"], "unused-for": ["2h"]}}, 'conflicting filters: "until" and "unused-for"'),
    ({"keep-storage": "lots"}, 'keep-storage is in bytes and expects an integer, got lots: '
                               'strconv.Atoi: parsing "lots": invalid syntax'),
])
def test_prune_refusals(daemon: Any, params: dict[str, Any], message: str) -> None:
    r = prune(daemon, **params)
    assert r.status == 400 and r.json()["message"] == message, r.text


def test_docker_cli_builder_prune_filter(daemon: Any, busybox_image: str) -> None:
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    p = subprocess.run(["/usr/bin/docker", "builder", "prune", "-f", "--filter", "until=24h",
                        "--keep-storage", "1gb"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["/usr/bin/docker", "builder", "prune", "-f", "--filter", "colour=red"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and "invalid filter 'colour'" in p.stderr


def test_cachefrom_images_are_cache_sources(daemon: Any, busybox_image: str) -> None:
    tag = f"cachefrom-{secrets.token_hex(4)}:1"
    files = {"Dockerfile": f"FROM busybox\nENV N={tag}\nRUN echo $N > /n\nCMD [\"cat\", \"/n\"]\n"}
    msgs, _ = build(daemon, files, t=tag)
    first = image_id(msgs)
    try:
        # the build cache forgets its records: only cachefrom can find the steps now
        assert prune(daemon, filters={"type": ["regular"]}, all=True).status == 200
        msgs, text = build(daemon, files, cachefrom=json.dumps([tag, "not-here:1"]))
        assert error_of(msgs) is None, msgs
        assert text.count("Using cache") == 3 and "Running in" not in text, text
        assert image_id(msgs) == first
        assert prune(daemon, filters={"type": ["regular"]}, all=True).status == 200
        msgs, text = build(daemon, files)
        assert "Using cache" not in text and image_id(msgs) != first
        daemon.api("DELETE", f"/images/{image_id(msgs)}", params={"force": True})
    finally:
        daemon.api("DELETE", f"/images/{tag}", params={"force": True})
