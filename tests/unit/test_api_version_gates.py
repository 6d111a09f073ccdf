"""Version gates of the Engine API: each route answers in the shape of the API version the
client asked at, as dockerd's router does (an old client keeps the old shapes), for the
changes of API 1.46 and 1.47 and the fields berth already sent. The real application with a
fake daemon behind it: no root, no services."""

from __future__ import annotations

import asyncio
import copy
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from berth import API_VERSION
from berth.api.app import build_app, decode_platform
from berth.errors import InvalidParameter, NotFound

IMAGE_ID = "sha256:" + "ab" * 32
SUMMARY = {"Containers": 2, "Created": 1700000000, "Id": IMAGE_ID, "Labels": {}, "ParentId": "",
           "RepoDigests": [], "RepoTags": ["app:1"], "SharedSize": -1, "Size": 4096, "VirtualSize": 4096}
INSPECT = {"Id": IMAGE_ID, "RepoTags": ["app:1"], "RepoDigests": [], "Parent": "", "Comment": "",
           "Created": "", "Container": "", "ContainerConfig": {"Hostname": ""}, "DockerVersion": "",
           "Author": "", "Config": {"Hostname": "", "Cmd": ["sh"]}, "Architecture": "amd64", "Os": "linux",
           "Size": 4096, "VirtualSize": 4096}
CONTAINER = {"Id": "c" * 64, "Names": ["/one"], "HostConfig": {"NetworkMode": "bridge",
                                                               "Annotations": {"org.example": "x"}}}


class _Images:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def filter_list(self, all_: bool, filters: dict, shared: bool) -> list[dict]:
        return [copy.deepcopy(SUMMARY)]

    def inspect(self, name: str) -> dict:
        return copy.deepcopy(INSPECT)

    def resolve(self, name: str) -> Any:
        if not name.startswith("docker.io/library/app"):
            raise NotFound(f"No such image: {name}")
        return SimpleNamespace(id=IMAGE_ID, config=self.config)


class _Registry:
    def __init__(self) -> None:
        self.pushed: list[str] = []

    async def push(self, ref: str, auth: Any, progress: Any) -> list[dict]:
        self.pushed.append(ref)
        progress({"status": f"pushed {ref}"})
        return []


def _daemon(image_config: dict[str, Any] | None = None) -> Any:
    containers = SimpleNamespace(list=lambda all_, filters, limit: [copy.deepcopy(CONTAINER)])
    return SimpleNamespace(images=_Images(image_config or {"os": "linux", "architecture": "amd64"}),
                           containers=containers, registry=_Registry(), networks=None, volumes=None)


def _ask(daemon: Any, method: str, path: str, **params: str) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with TestClient(TestServer(build_app(daemon))) as client:
            resp = await client.request(method, path, params=params)
            text = await resp.text()
            return resp.status, json.loads(text.splitlines()[0]) if text else None
    return asyncio.run(go())


def test_berthd_serves_147() -> None:
    assert API_VERSION == "1.47"
    status, body = _ask(_daemon(), "GET", "/v1.48/images/json")
    assert status == 400 and body["message"].endswith("Maximum supported API version is 1.47")


@pytest.mark.parametrize("version, present", [("1.45", False), ("1.46", True), ("1.47", True)])
def test_container_list_annotations_from_146(version: str, present: bool) -> None:
    status, listed = _ask(_daemon(), "GET", f"/v{version}/containers/json")
    assert status == 200
    assert ("Annotations" in listed[0]["HostConfig"]) is present
    assert listed[0]["HostConfig"]["NetworkMode"] == "bridge"


@pytest.mark.parametrize("version", ["1.41", "1.43", "1.44", "1.47"])
def test_image_list_shapes(version: str) -> None:
    status, listed = _ask(_daemon(), "GET", f"/v{version}/images/json", manifests="1")
    img = listed[0]
    assert status == 200
    assert ("VirtualSize" in img) is (version < "1.44")
    # dockerd counts an image's containers in this list only from API 1.51
    assert img["Containers"] == -1
    # manifests=1 (1.47) fills Manifests only on a multi-platform store; berth's is not one
    assert "Manifests" not in img


@pytest.mark.parametrize("version, virtual, container, created", [
    ("1.43", True, True, "0001-01-01T00:00:00Z"), ("1.44", False, True, None),
    ("1.45", False, False, None), ("1.47", False, False, None)])
def test_image_inspect_shapes(version: str, virtual: bool, container: bool, created: str | None) -> None:
    status, img = _ask(_daemon(), "GET", f"/v{version}/images/app:1/json")
    assert status == 200
    assert ("VirtualSize" in img) is virtual
    assert ("Container" in img, "ContainerConfig" in img) == (container, container)
    assert img.get("Created") == created
    # the image Config keeps the container-only fields (deprecated in 1.46, left out in 1.50)
    assert img["Config"]["Hostname"] == ""


def test_push_platform_from_146() -> None:
    d = _daemon({"os": "linux", "architecture": "amd64"})
    arm = json.dumps({"os": "linux", "architecture": "arm64"})
    # before 1.46 the parameter is ignored, as dockerd does (old clients sent it unused)
    assert _ask(d, "POST", "/v1.45/images/app/push", tag="1", platform=arm)[0] == 200
    status, body = _ask(d, "POST", "/v1.47/images/app/push", tag="1", platform=arm)
    assert status == 404 and body["message"] == (
        "image with reference docker.io/library/app:1 was found but does not match the specified "
        "platform: wanted linux/arm64, actual: linux/amd64")
    amd = json.dumps({"os": "linux", "architecture": "amd64"})
    assert _ask(d, "POST", "/v1.47/images/app/push", tag="1", platform=amd)[0] == 200
    status, body = _ask(d, "POST", "/v1.47/images/app/push", tag="1", platform="linux/amd64")
    assert status == 400 and body["message"].startswith("failed to parse platform: ")
    assert d.registry.pushed == ["app:1", "app:1"]   # nothing pushed after a refusal


@pytest.mark.parametrize("raw, message", [
    ('{"os":"linux"}', "both OS and Architecture must be provided"),
    ('{"variant":"v7"}', "optional platform fields provided, but OS and Architecture are missing"),
    ('["linux"]', "failed to parse platform: json: cannot unmarshal list into Go value of type v1.Platform"),
])
def test_decode_platform_refusals(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=rf"^{message}$"):
        decode_platform(raw)


def test_decode_platform() -> None:
    p = decode_platform('{"os":"linux","architecture":"arm","variant":"v7"}')
    assert (p.os, p.architecture, p.variant, str(p)) == ("linux", "arm", "v7", "linux/arm/v7")
