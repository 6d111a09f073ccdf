"""POST /build query parameters -> BuildOptions (Docker's names and encodings)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import make_mocked_request

from berth.api.build import options_from_request
from berth.errors import InvalidParameter


def req(params: list[tuple[str, str]]):  # noqa: ANN201 - test helper
    return make_mocked_request("POST", "/build?" + urlencode(params))


def test_docker_cli_parameters() -> None:
    o = options_from_request(req([
        ("t", "a:1"), ("t", "b:2"), ("dockerfile", "sub/Dockerfile.dev"), ("q", "1"), ("nocache", "true"),
        ("target", "builder"), ("pull", "1"), ("networkmode", "host"),
        ("buildargs", json.dumps({"A": "1", "FROM_ENV": None})), ("labels", json.dumps({"l": "v"})),
        ("extrahosts", "h1:10.0.0.1"), ("extrahosts", "h2:10.0.0.2,h3:10.0.0.3"),
        ("memory", "67108864"), ("shmsize", "0"), ("cpusetcpus", "0"), ("rm", "1"), ("version", "1")]))
    assert o.tags == ["a:1", "b:2"] and o.dockerfile == "sub/Dockerfile.dev"
    assert o.quiet and o.no_cache and o.pull and o.target == "builder" and o.network_mode == "host"
    assert o.build_args == {"A": "1", "FROM_ENV": None} and o.labels == {"l": "v"}
    assert o.run_host_config == {"ExtraHosts": ["h1:10.0.0.1", "h2:10.0.0.2", "h3:10.0.0.3"],
                                 "Memory": 67108864, "CpusetCpus": "0"}


def test_defaults() -> None:
    o = options_from_request(req([]))
    assert (o.tags, o.dockerfile, o.no_cache, o.quiet, o.target) == ([], "Dockerfile", False, False, None)


@pytest.mark.parametrize("params,message", [
    ([("buildargs", "{not json")], "invalid buildargs"),
    ([("labels", "[1]")], "a JSON object is required"),
    ([("t", "Bad:Tag")], "must be lowercase"),
    ([("t", "x@sha256:" + "a" * 64)], "cannot have a digest"),
    ([("version", "2")], "DOCKER_BUILDKIT=0"),
    ([("remote", "https://example.com/repo.git")], "remote context"),
    ([("memory", "lots")], "invalid memory"),
])
def test_refused(params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        options_from_request(req(params))
