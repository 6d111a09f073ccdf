"""berthd serves API 1.47, as dockerd 27 does: what the docker CLIs negotiate with it, and the
changes of API 1.46 and 1.47 (and fields that belong to other versions) against the real
daemon, each in the shape of the version a client asks at."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from berth import API_VERSION
from berth.registry.auth_config import encode_registry_auth
from fixtures.daemon import DOCKER_CLI

pytestmark = pytest.mark.root

DOCKER28 = "/usr/local/bin/docker"


def _cli(daemon, binary: str, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no {binary}")
    return subprocess.run([binary, *args], env=daemon.env, capture_output=True, text=True, timeout=120)


def _run_sleeper(daemon, cleanup, **host_config) -> str:  # type: ignore[no-untyped-def]
    r = daemon.api("POST", f"/v{API_VERSION}/containers/create",
                   json={"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": host_config})
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    cleanup.append(cid)
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    return cid


def _events(daemon, since: float, **filters: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = daemon.api("GET", "/events", params={"since": f"{since:.3f}", "until": f"{time.time() + 0.5:.3f}",
                                             "filters": {k: [v] for k, v in filters.items()}})
    assert r.status == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.mark.parametrize("binary, negotiated", [(DOCKER_CLI, "1.41"), (DOCKER28, API_VERSION)])
def test_docker_clis_negotiate(daemon, binary: str, negotiated: str) -> None:  # type: ignore[no-untyped-def]
    """Debian's 20.10 CLI stays at its own 1.41; docker 28 (1.50) comes down to 1.47."""
    r = _cli(daemon, binary, "version", "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["Server"]["ApiVersion"] == API_VERSION == "1.47" and v["Server"]["MinAPIVersion"] == "1.24"
    assert v["Client"]["ApiVersion"] == negotiated
    assert _cli(daemon, binary, "ps").returncode == 0


def test_annotations_in_container_list_from_146(daemon, busybox_image, cleanup) -> None:  # type: ignore[no-untyped-def]
    cid = _run_sleeper(daemon, cleanup, Annotations={"org.example.team": "infra"})
    plain = _run_sleeper(daemon, cleanup)

    def listed(version: str) -> dict[str, dict]:
        r = daemon.api("GET", f"/v{version}/containers/json", params={"filters": {"id": [cid, plain]}})
        assert r.status == 200, r.text
        return {c["Id"]: c["HostConfig"] for c in r.json()}

    assert list(listed("1.45")[cid]) == ["NetworkMode"]
    new = listed("1.46")
    assert new[cid]["Annotations"] == {"org.example.team": "infra"}
    assert list(new[plain]) == ["NetworkMode"]        # none set: left out (omitempty)
    assert listed("1.47") == new


def test_image_shapes_per_version(daemon, busybox_image) -> None:  # type: ignore[no-untyped-def]
    """Fields berth sent at every version: image inspect's VirtualSize (before 1.44) and
    Container/ContainerConfig (before 1.45); the image list's container count (-1, not
    counted, before 1.51)."""
    def inspect(version: str) -> dict:
        r = daemon.api("GET", f"/v{version}/images/{busybox_image}/json")
        assert r.status == 200, r.text
        return r.json()

    old, mid, new = inspect("1.43"), inspect("1.44"), inspect(API_VERSION)
    assert old["VirtualSize"] == old["Size"] and "Container" in old and "ContainerConfig" in old
    assert "VirtualSize" not in mid and "ContainerConfig" in mid
    assert not {"VirtualSize", "Container", "ContainerConfig"} & set(new)
    assert new["Config"]["Hostname"] == "" and new["Created"]
    r = daemon.api("GET", f"/v{API_VERSION}/images/json", params={"manifests": "1"})
    assert r.status == 200
    assert {i["Containers"] for i in r.json()} == {-1} and not any("Manifests" in i for i in r.json())


def test_no_gateway_priority_in_endpoints(daemon, busybox_image, cleanup) -> None:  # type: ignore[no-untyped-def]
    """GwPriority is API 1.48 (docker 28), and dockerd 28 leaves a 0 out."""
    cid = _run_sleeper(daemon, cleanup)
    for version in ("1.44", API_VERSION):
        nets = daemon.api("GET", f"/v{version}/containers/{cid}/json").json()["NetworkSettings"]["Networks"]
        assert "GwPriority" not in nets["bridge"] and nets["bridge"]["IPAddress"]


def test_image_create_events(daemon, busybox_image, cleanup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """API 1.46: an image built or committed is announced (`image create`), tagged or not."""
    since = time.time()
    cid = _run_sleeper(daemon, cleanup)
    r = daemon.api("POST", "/commit", params={"container": cid})
    assert r.status == 201, r.text
    committed = r.json()["Id"]
    (tmp_path / "Dockerfile").write_text("FROM busybox\nENV STAGE=one\n")
    b = _cli(daemon, DOCKER28, "build", "-q", str(tmp_path))
    built = b.stdout.strip()
    assert b.returncode == 0 and built.startswith("sha256:"), b.stderr
    try:
        created = [(e["id"], e["Actor"]["Attributes"]["name"])
                   for e in _events(daemon, since, type="image", event="create")]
        assert (committed, committed) in created and (built, built) in created
    finally:
        for image in (built, committed):
            daemon.api("DELETE", f"/images/{image}")


def test_push_platform_from_146(daemon, busybox_image, berth_registry) -> None:  # type: ignore[no-untyped-def]
    """`docker push --platform` (docker 28, API 1.46): berth keeps one platform per image and,
    as dockerd's graphdriver store, pushes it only when it is the one asked for."""
    repo = f"{berth_registry.host}/versions/bb"
    assert daemon.api("POST", f"/images/{busybox_image}/tag", params={"repo": repo, "tag": "v1"}).status == 201
    try:
        r = _cli(daemon, DOCKER28, "push", "--platform", "linux/arm64", f"{repo}:v1")
        assert r.returncode != 0
        assert (f"image with reference {repo}:v1 was found but does not match the specified platform: "
                "wanted linux/arm64, actual: linux/amd64") in r.stderr
        auth = {"username": berth_registry.user, "password": berth_registry.password,
                "serveraddress": berth_registry.host}
        headers = {"X-Registry-Auth": encode_registry_auth(auth)}
        arm = json.dumps({"os": "linux", "architecture": "arm64"})
        # API 1.45 ignores the parameter, as dockerd does
        for version, platform in (("1.45", arm), (API_VERSION, json.dumps({"os": "linux", "architecture": "amd64"}))):
            r = daemon.api("POST", f"/v{version}/images/{repo}/push", params={"tag": "v1", "platform": platform},
                           headers=headers, timeout=120)
            assert r.status == 200 and '"error"' not in r.text, (version, r.text)
        r = daemon.api("POST", f"/v{API_VERSION}/images/{repo}/push", params={"tag": "v1", "platform": "arm64"},
                       headers=headers)
        assert r.status == 400 and r.json()["message"].startswith("failed to parse platform: ")
    finally:
        daemon.api("DELETE", f"/images/{repo}:v1")
