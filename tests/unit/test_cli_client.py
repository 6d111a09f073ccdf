"""The CLI's HTTP client without a daemon: URL encoding, reading answers, start-up imports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from urllib.parse import quote, urlencode

import pytest

from berth.cli import wirejson
from berth.cli.client import HijackedStream, Response, _Conn, path_part, query

TRICKY = ["plain", "with space", "a/b", "a+b=c&d", "50%", "~._-", "caf\u00e9", "\u2603 snow",
          "tab\tnew\nline", "", "quote\"'", "sha256:abc", "emoji \U0001f600"]


@pytest.mark.parametrize("s", TRICKY)
def test_encoding_matches_urllib(s: str) -> None:
    assert path_part(s) == quote(s, safe="")
    assert query({"k": s, s or "empty": "v"}) == "?" + urlencode([("k", s), (s or "empty", "v")])


def test_query_values_as_the_docker_cli_sends_them() -> None:
    assert query({"stream": True, "stdin": False, "name": None, "t": 10}) == "?stream=1&stdin=0&t=10"
    assert query({"changes": ["CMD x", "ENV a=b"]}) == "?changes=CMD+x&changes=ENV+a%3Db"
    assert query({"filters": {"label": {"a=b": True}}}) == \
        "?filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"
    assert query({}) == "" and query({"x": None}) == ""


def test_first_json_does_not_wait_for_the_end_of_the_body() -> None:
    ours, theirs = socket.socketpair()
    try:
        # a wait answer whose last chunk has not come (yet): the value is all we need
        theirs.sendall(b'21\r\n{"StatusCode": 3, "Error": null}\n\r\n')
        resp = Response(_Conn(ours), 200, {"transfer-encoding": "chunked"}, "POST")
        assert resp.first_json() == {"StatusCode": 3, "Error": None}
    finally:
        ours.close()
        theirs.close()


def test_first_json_of_an_empty_body_is_none() -> None:
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"0\r\n\r\n")
        resp = Response(_Conn(ours), 200, {"transfer-encoding": "chunked"}, "POST")
        assert resp.first_json() is None
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("chunked", [False, True])
def test_hijacked_stream_hands_out_what_came_with_the_head_first(chunked: bool) -> None:
    ours, theirs = socket.socketpair()
    try:
        body = b"hello, world"
        wire = b"5\r\nhello\r\n7; ext=1\r\n, world\r\n0\r\n\r\n" if chunked else body
        stream = HijackedStream(ours, wire[:9], chunked=chunked)   # the rest still on the socket
        assert stream.buffered() is not chunked
        theirs.sendall(wire[9:])
        theirs.shutdown(socket.SHUT_WR)
        got = b""
        while more := stream.recv(4):
            assert len(more) <= 4
            got += more
        assert got == body
        assert not stream.buffered() and stream.recv() == b""
    finally:
        ours.close()
        theirs.close()


def test_run_path_imports_stay_cheap() -> None:
    """`berth run` pays for every module it imports on each start; these cost milliseconds
    and the command does not need them."""
    code = ("import sys, berth.cli.main, berth.cli.commands.run\n"
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    heavy = {"typing", "re", "json", "urllib.parse", "socket", "selectors", "datetime", "signal",
             "importlib",
             "subprocess", "pathlib", "dataclasses", "http.client"}
    assert heavy.isdisjoint(out), sorted(heavy.intersection(out))


VALUES = [None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e300, float("inf"), "", "caf\u00e9 \u2603",
          "quote\" back\\ slash\n\t\x00", [], {}, [1, [2, [3]]],
          {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"AutoRemove": True, "Binds": None},
           "Labels": {"a=b": "\U0001f600"}, "Env": []}]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_wirejson_matches_json(value: object) -> None:
    assert wirejson.dumps(value) == json.dumps(value)
    assert wirejson.dumps(value, compact=True) == json.dumps(value, separators=(",", ":"))
    text = json.dumps(value)
    assert wirejson.loads(text) == json.loads(text)
    assert wirejson.loads(f" \n{text}\r\n".encode()) == json.loads(f" \n{text}\r\n".encode())
    assert wirejson.raw_decode(text + " {}") == json.JSONDecoder().raw_decode(text + " {}")


def test_wirejson_refuses_what_json_refuses() -> None:
    for bad in ("", "  ", "{", '{"a": }', "[1, 2", "1 2", "nul", b"\xff"):
        with pytest.raises(ValueError):
            json.loads(bad)
        with pytest.raises(ValueError):
            wirejson.loads(bad)
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        wirejson.dumps({"x": {1}})
    assert wirejson.loads("NaN") != wirejson.loads("NaN")
