"""Reading Docker's json-file logs: one `{"log","stream","time"}` object per line, in
`<id>-json.log` and, with `max-file`, its rotated files `.1` (newest) .. `.N-1`.

The shim writes them (`berth.shim.server.LogWriter`); `read()` gives what `GET
/containers/{id}/logs` answers: the records of the chosen streams, within since/until, the
last `tail` lines across the rotated files, framed unless the container has a tty, and with
`follow` whatever is written next, across rotations and max-size start-overs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from berth.engine.humanize import parse_time
from berth.errors import InvalidParameter
from berth.shim.protocol import frame


async def read(path: str, *, tty: bool, stdout: bool = True, stderr: bool = True, follow: bool = False,
               tail: str = "all", timestamps: bool = False, since: float | None = None,
               until: float | None = None, still_writing: Callable[[], bool] = lambda: False,
               alive: Callable[[], bool] | None = None) -> AsyncIterator[bytes]:
    """The log at `path` as the Engine API sends it. Following ends when the file is drained
    and `still_writing()` says the container is gone, past `until`, or when `alive()` says
    the reader went away."""
    want = {"stdout": stdout, "stderr": stderr}

    def render(line: bytes) -> bytes | None:
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        stream = rec.get("stream", "stdout")
        if not want.get(stream, False):
            return None
        t = rec.get("time", "")
        if since is not None or until is not None:
            ts = parse_time(t) or 0
            if since is not None and ts < since:
                return None
            if until is not None and ts > until:
                return None
        data = rec.get("log", "").encode()
        if timestamps:
            data = t.encode() + b" " + data
        return data if tty else frame(1 if stream == "stdout" else 2, data)

    def rendered(lines: list[bytes]) -> bytes:
        return b"".join(r for r in map(render, lines) if r is not None)

    n = -1
    if tail not in ("all", "", None):
        try:
            n = int(tail)
        except ValueError:
            raise InvalidParameter(f"invalid value for tail: {tail!r}") from None
    # rotated files (max-file) first; with a tail, only as far back as it reaches
    files: list[tuple[Any, int]] = []
    f = None
    try:
        for p in reversed(_log_files(path)):
            try:
                fh = open(p, "rb")
            except FileNotFoundError:
                continue
            start = 0 if n < 0 else _tail_offset(fh, n)
            files.insert(0, (fh, start))
            if n >= 0:
                fh.seek(start)
                n -= sum(chunk.count(b"\n") for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""))
                if n <= 0:
                    break
        for fh, start in files:
            fh.seek(start)
            while True:   # in batches: a big log is never read whole into memory
                lines = fh.readlines(1 << 20)
                if not lines:
                    break
                if not lines[-1].endswith(b"\n"):
                    fh.seek(-len(lines[-1]), os.SEEK_CUR)
                    lines = lines[:-1]
                out = rendered(lines)
                if out:
                    yield out
                if not lines:
                    break
        if files and files[-1][0].name == path:
            f = files.pop()[0]
        if not follow:
            return
        partial = b""
        while True:
            if f is None:
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    f = None
            chunk = f.read() if f is not None else b""
            if chunk:
                partial += chunk
                *full, partial = partial.split(b"\n")
                out = rendered(full)
                if out:
                    yield out
                continue
            if f is not None and _rotated_away(f, path):
                # drained: the writer has moved on. Files rotated in between (more than
                # one rotation since the last look) are read whole, oldest first.
                for p in _rotated_after(f, path):
                    try:
                        with open(p, "rb") as fh:
                            data = fh.read()
                    except FileNotFoundError:
                        continue
                    out = rendered(data.splitlines())
                    if out:
                        yield out
                f.close()
                f = None
                continue
            if not still_writing():
                return
            if until is not None and time.time() > until:
                return
            if alive is not None and not alive():
                return  # the reader went away
            await asyncio.sleep(0.05)
    finally:
        for fh, _ in files:
            fh.close()
        if f is not None:
            f.close()


def _rotated_away(f: Any, path: str) -> bool:
    """Whether the open log `f` is no longer the file at `path` (json-file rotated it)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _rotated_after(f: Any, path: str) -> list[str]:
    """The rotated files written after the open log `f` was rotated away, oldest first."""
    ino = os.fstat(f.fileno()).st_ino
    newer = []
    for p in reversed(_log_files(path)[:-1]):   # LOG.1 (newest) first
        try:
            if os.stat(p).st_ino == ino:
                break
        except FileNotFoundError:
            continue
        newer.append(p)
    # not found: ours was rotated out of reach, so every rotated file left is newer
    return list(reversed(newer))


def _tail_offset(f: Any, n: int) -> int:
    """Offset of the n-th complete line from the end of a log file (reading backwards); a
    partial last line (still being written) is not counted."""
    f.seek(0, os.SEEK_END)
    pos = f.tell()
    data = b""
    while True:
        last_nl = data.rfind(b"\n")
        if pos == 0 or (last_nl >= 0 and data.count(b"\n", 0, last_nl) >= n):
            break
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    last_nl = data.rfind(b"\n")
    if last_nl < 0:
        return pos
    idx = last_nl
    for _ in range(n):
        j = data.rfind(b"\n", 0, idx)
        if j < 0:
            return pos
        idx = j
    return pos + idx + 1


def max_files(opts: dict[str, Any]) -> int:
    """json-file's max-file log option (default 1: no rotated files)."""
    v = opts.get("max-file")
    if v in (None, ""):
        return 1
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid value for log option max-file: {v!r}") from None
    if n < 1:
        raise InvalidParameter("max-file cannot be less than 1")
    return n


def _log_files(path: str) -> list[str]:
    """A json-file log and its rotated files (LOG.1 is the newest of those), oldest first."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path]


def max_size(v: str | None) -> int:
    """Docker's log-opt sizes: 10k, 20m, 1g (bytes if no unit); 0 when unset or invalid."""
    if not v:
        return 0
    v = v.strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1:], 1)
    try:
        return int(float(v.rstrip("kmgb") or 0) * mult)
    except ValueError:
        return 0
