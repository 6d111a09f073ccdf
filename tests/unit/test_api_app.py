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
