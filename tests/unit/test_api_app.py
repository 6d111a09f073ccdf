"""The Engine API application without a daemon behind it: a route whose service the daemon
does not have (yet) answers 503 in Docker's error shape, naming the service."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from berth.api.app import build_app


async def _ask(method: str, path: str) -> tuple[int, object]:
    daemon = SimpleNamespace(images=None, networks=None, volumes=None)   # no builder, no registry
    async with TestClient(TestServer(build_app(daemon))) as client:
        resp = await client.request(method, path)
        return resp.status, await resp.json()


@pytest.mark.parametrize("method, path, what", [
    ("GET", "/images/json", "image"), ("GET", "/v1.44/networks", "network"), ("GET", "/volumes", "volume"),
    ("POST", "/build/prune", "build"), ("GET", "/images/search?term=x", "registry"),
    ("POST", "/images/create?fromImage=busybox", "registry"),
])
def test_a_missing_service_is_503(method: str, path: str, what: str) -> None:
    assert asyncio.run(_ask(method, path)) == (503, {"message": f"{what} service unavailable"})


class _Volumes:
    """Just enough of a volume service to see what the route got from the body."""

    def __init__(self) -> None:
        self.got: list[object] = []

    def create(self, name, driver, driver_opts, labels):  # noqa: ANN001, ANN201
        self.got.append((name, driver, driver_opts, labels))
        return {"Name": name or "anon"}


async def _post(body: bytes) -> tuple[int, object, list[object]]:
    vols = _Volumes()
    daemon = SimpleNamespace(images=None, networks=None, volumes=vols, events=None)
    async with TestClient(TestServer(build_app(daemon))) as client:
        resp = await client.post("/volumes/create", data=body, headers={"Content-Type": "application/json"})
        return resp.status, await resp.json(), vols.got


@pytest.mark.parametrize("body", [b"", b"  \n", b"null"])
def test_an_empty_or_null_body_is_no_fields(body: bytes) -> None:
    status, _, got = asyncio.run(_post(body))
    assert status < 300 and len(got) == 1


@pytest.mark.parametrize("body, says", [
    (b"{nope", "the request body is not valid JSON"),
    (b"[1, 2]", "the request body must be a JSON object, not list"),
    (b'"x"', "the request body must be a JSON object, not str"),
])
def test_a_body_that_is_not_a_json_object_is_400(body: bytes, says: str) -> None:
    status, answer, got = asyncio.run(_post(body))
    assert status == 400 and answer["message"].startswith(says) and got == []


@pytest.mark.parametrize("query, default, want", [
    ("", False, False), ("", True, True),                      # absent: the default
    ("?x=", True, False), ("?x=%20", True, False),              # present but blank: false
    ("?x=1", False, True), ("?x=True", False, True), ("?x=yes", False, True),
    ("?x=0", True, False), ("?x=No", True, False), ("?x=FALSE", True, False), ("?x=none", True, False),
])
def test_qbool_is_dockerds_bool_value_or_default(query: str, default: bool, want: bool) -> None:
    from aiohttp.test_utils import make_mocked_request

    from berth.api.app import qbool

    assert qbool(make_mocked_request("GET", "/p" + query), "x", default) is want
