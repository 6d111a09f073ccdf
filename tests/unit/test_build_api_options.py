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


def test_ulimits_rm_forcerm_and_cachefrom() -> None:
    ulimits = [{"Name": "nofile", "Hard": 2048, "Soft": 1024}]
    o = options_from_request(req([("ulimits", json.dumps(ulimits)), ("rm", "0"),
                                  ("cachefrom", json.dumps(["base:1", "base:2"]))]))
    assert o.run_host_config == {"Ulimits": ulimits}
    assert (o.remove, o.force_remove, o.cache_from) == (False, False, ["base:1", "base:2"])
    # dockerd: rm defaults to true, forcerm implies it
    assert (options_from_request(req([])).remove, options_from_request(req([])).force_remove) == (True, False)
    o = options_from_request(req([("rm", "0"), ("forcerm", "1")]))
    assert (o.remove, o.force_remove) == (True, True)
    assert options_from_request(req([("isolation", "default")])).run_host_config == {}


@pytest.mark.parametrize("params,message", [
    ([("isolation", "hyperv")], 'Unsupported isolation: "hyperv"'),
    ([("isolation", "process")], 'Unsupported isolation: "process"'),
    ([("securityopt", "seccomp=unconfined")],
     "The daemon on this platform does not support setting security options on build"),
    ([("squash", "1")], "squash is only supported with experimental mode"),
    ([("ulimits", "{bad")], "error reading ulimit settings: "),
    ([("ulimits", '["nofile"]')], "error reading ulimit settings"),
    ([("cachefrom", "x")], "error reading cache-from images"),
])
def test_refused_as_dockerd_does(params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        options_from_request(req(params))
