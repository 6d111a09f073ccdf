"""A container's filesystem as the Engine API shows it: `docker cp` (stat, get and put of
`/containers/{id}/archive`), `docker export`, `docker diff` and the size of the writable layer.

Reading and writing files runs `python -m berth.engine.archive` (a helper that chroots, so
symlinks resolve inside the container) against `root(container)`: the running container's
own view through `/proc/<pid>/root` (volumes included), else its mounted rootfs.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat as st
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from berth.engine import mounttargets
from berth.engine.container import Container
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound


def root(c: Container) -> str:
    pid = c.state.get("Pid") or 0
    if c.running and pid and os.path.exists(f"/proc/{pid}/root"):
        return f"/proc/{pid}/root"
    return rootfs(c)


def rootfs(c: Container) -> str:
    if not c.rootfs or not os.path.isdir(c.rootfs):
        raise Conflict(f"container {c.id} has no mounted filesystem")
    return c.rootfs


def require_path(path: str) -> None:
    if not path:
        raise InvalidParameter("no path given")


async def _helper(op: str, root: str, path: str | None = None, stdin: bool = False) -> asyncio.subprocess.Process:
    args = [op, root] + ([path] if path is not None else [])
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "berth.engine.archive", *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=2**20)


async def _helper_error(proc: asyncio.subprocess.Process, ref: str = "") -> None:
    """The helper's failure as the API answers it; a path it did not find is dockerd's
    `Could not find the file P in container REF` (REF as the client named it)."""
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode(errors="replace").strip()
    code = await proc.wait()
    if code == 2:
        raise NotFound(f"{err} {ref}".rstrip())
    if code == 3:
        raise InvalidParameter(err)
    if code != 0:
        raise BerthError(err or f"archive helper failed ({code})")


async def _helper_output(proc: asyncio.subprocess.Process) -> AsyncGenerator[bytes, None]:
    """A helper's stdout in chunks, then its error if it failed; the helper is killed if
    the reader stops early (a client gone mid-download)."""
    assert proc.stdout is not None
    try:
        while True:
            data = await proc.stdout.read(65536)
            if not data:
                break
            yield data
        await _helper_error(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def archive(root: str, path: str, want_tar: bool, ref: str) -> tuple[dict[str, Any], Any]:
    """(Docker's stat of `path`, async iterator of its tar bytes, or None without `want_tar`);
    `ref` is the container as the client named it, for the not-found message."""
    proc = await _helper("get" if want_tar else "stat", root, path)
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if not line:
        await _helper_error(proc, ref)
        raise BerthError("archive helper gave no answer")
    stat = json.loads(line)
    if not want_tar:
        await _helper_error(proc, ref)
        return stat, None
    return stat, _helper_output(proc)


async def extract(root: str, path: str, body: AsyncIterator[bytes], ref: str) -> None:
    """Extract a tar (an async iterator of bytes) into the directory `path`."""
    proc = await _helper("put", root, path, stdin=True)
    assert proc.stdin is not None
    try:
        async for data in body:
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()
    except (ConnectionError, BrokenPipeError):
        pass
    await _helper_error(proc, ref)


async def export(rootfs: str) -> AsyncGenerator[bytes, None]:
    """The rootfs as one tar (`docker export`); close the generator (`aclosing`) to end
    the helper when the reader stops early."""
    return _helper_output(await _helper("export", rootfs))


def changes(upper: str | None, lower_dirs: list[str]) -> list[dict[str, Any]]:
    """Docker's diff: Kind 0 modified, 1 added, 2 deleted, from the overlay upper dir."""
    if upper is None or not os.path.isdir(upper):
        return []
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = "/" + os.path.relpath(dirpath, upper).lstrip(".")
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            path = os.path.join(rel_dir, name) if rel_dir != "/" else "/" + name
            try:
                s = os.lstat(full)
            except OSError:
                continue
            if st.S_ISCHR(s.st_mode) and s.st_rdev == 0:
                out.append({"Path": path, "Kind": 2})   # overlay whiteout
                continue
            if mounttargets.is_placeholder(upper, path) or (
                    st.S_ISDIR(s.st_mode) and mounttargets.only_placeholders(upper, path)):
                continue  # Docker keeps these in its init layer, outside the diff
            in_lower = any(os.path.lexists(os.path.join(d, path.lstrip("/"))) for d in lower_dirs)
            out.append({"Path": path, "Kind": 0 if in_lower else 1})
        dirnames[:] = [d for d in dirnames
                       if not (st.S_ISCHR(os.lstat(os.path.join(dirpath, d)).st_mode))]
    out.sort(key=lambda x: x["Path"])
    return out


def size(upper: str | None) -> int:
    """Bytes of the files in the writable layer (`SizeRw`)."""
    total = 0
    if upper is None:
        return 0
    for dirpath, _, filenames in os.walk(upper):
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
