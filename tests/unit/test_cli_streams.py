"""Multiplexed frames, detach keys, progress rendering (pure)."""

from __future__ import annotations

import io
import struct

import pytest

from berth.cli.progress import JSONMessageError, display, progress_bar
from berth.cli.streams import Demuxer, parse_detach_keys


def frame(kind: int, data: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def test_demux_splits_frames_across_reads() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    dm = Demuxer(out, err)
    data = frame(1, b"hello ") + frame(2, b"oops\n") + frame(1, b"world\n")
    for i in range(0, len(data), 3):   # deliver in awkward pieces
        dm.feed(data[i:i + 3])
    assert out.getvalue() == b"hello world\n"
    assert err.getvalue() == b"oops\n"


def test_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("a,ctrl-@") == b"a\x00"
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-pq")


def test_progress_plain_lines_skip_bars() -> None:
    out = io.StringIO()
    display([{"status": "Pulling from library/busybox", "id": "latest"},
             {"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10}},
             {"status": "Pull complete", "id": "abc", "progressDetail": {}},
             {"status": "Digest: sha256:1"}], out, terminal=False)
    assert out.getvalue() == ("latest: Pulling from library/busybox\nabc: Pull complete\n"
                              "Digest: sha256:1\n")


def test_progress_terminal_updates_lines_in_place() -> None:
    out = io.StringIO()
    display([{"status": "Downloading", "id": "l1", "progressDetail": {"current": 1, "total": 4}},
             {"status": "Waiting", "id": "l2"},
             {"status": "Downloading", "id": "l1", "progressDetail": {"current": 4, "total": 4}}],
            out, terminal=True)
    text = out.getvalue()
    assert "\x1b[2A" in text            # moved up two lines to redraw l1
    assert "[=" in text and "4B/4B" in text


def test_progress_error_raises() -> None:
    with pytest.raises(JSONMessageError, match="manifest unknown"):
        display([{"status": "x"}, {"error": "manifest unknown", "errorDetail": {"message": "manifest unknown"}}],
                io.StringIO(), terminal=False)


def test_stream_and_aux_messages() -> None:
    out = io.StringIO()
    seen = []
    display([{"stream": "Step 1/2 : FROM busybox\n"}, {"aux": {"ID": "sha256:1"}}], out, terminal=False,
            on_aux=seen.append)
    assert out.getvalue() == "Step 1/2 : FROM busybox\n" and seen == [{"ID": "sha256:1"}]


def test_progress_bar() -> None:
    bar = progress_bar({"current": 50, "total": 100})
    assert bar.startswith("[" + "=" * 25 + ">") and bar.endswith("50B/100B")


def test_json_stream_keeps_characters_split_across_chunks() -> None:
    import json as _json

    from berth.cli.client import Response

    payload = (_json.dumps({"stream": "Step 1 \u2501\u2501 caf\u00e9\n"}, ensure_ascii=False) + "\r\n").encode()

    class Conn:   # delivers the body one byte at a time
        def __init__(self, data: bytes) -> None:
            self.buf = b""
            self.data = data
            self.eof = False

        def fill(self) -> bool:
            if not self.data:
                return False
            self.buf += self.data[:1]
            self.data = self.data[1:]
            return True

        def take(self, n: int) -> bytes:
            out, self.buf = self.buf[:n], self.buf[n:]
            return out

        def close(self) -> None:
            pass

    resp = Response(Conn(payload), 200, {"content-length": str(len(payload))})  # type: ignore[arg-type]
    assert list(resp.json_stream()) == [{"stream": "Step 1 \u2501\u2501 caf\u00e9\n"}]


def test_progress_lines_fit_a_narrow_terminal() -> None:
    import fcntl
    import os
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    try:
        with open(slave, "w", closefd=False) as out:
            display([{"status": "Downloading", "id": "0123456789ab",
                      "progressDetail": {"current": 5_000_000, "total": 10_000_000}}], out, terminal=True)
        data = os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    line = data.replace("\x1b[2K", "").splitlines()[0]
    assert line.startswith("0123456789ab: Downloading [")
    assert len(line) < 60 and "5MB/10MB" in line
