"""The persistent directories behind `RUN --mount=type=cache`.

Each cache lives in `<root>/<name>/` with a row in the table `build_cache_mounts`. A cache
is found by its key: the cache id plus what a new directory starts as (mode, owner, the
`from` content it is seeded with), as BuildKit keys its cache refs on the id and the base.
A key may have several instances (sharing=private makes a new one when the others are
busy). Sharing: `shared` users use one directory at once; `locked` waits until nobody else
uses it; `private` takes a free instance or makes a new one. A new directory is made under
`.new-<name>` and renamed into place once seeded, so a failed seed leaves nothing.
`prune()` removes every cache not in use (it runs in a thread; the in-use table is shared
under a lock)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from berth.build.cache import DB

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache_mounts (
    name TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_mounts_by_key ON build_cache_mounts(key);
"""

_NEW = ".new-"


@dataclass(frozen=True)
class CacheSpec:
    id: str
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    seed: str = ""      # identity of the content a new cache starts with ("" = empty)

    @property
    def key(self) -> str:
        return json.dumps([self.id, self.mode, self.uid, self.gid, self.seed])


def copy_tree(src: str, dst: str) -> None:
    """Copy a file or a directory's contents into `dst` keeping owners, modes, links and
    xattrs (`cp -a`: shutil does not keep owners or hard links)."""
    what = os.path.join(src, ".") if os.path.isdir(src) and not os.path.islink(src) else src
    p = subprocess.run(["cp", "-a", "--reflink=auto", what, dst], capture_output=True, text=True)
    if p.returncode != 0:
        raise OSError(f"copying {src}: {p.stderr.strip()}")


def tree_size(path: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames + dirnames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
    return total


class CacheMountStore:
    def __init__(self, root: str | Path, db: DB) -> None:
        self.root = Path(root)
        self.db = db
        db.ensure_schema(SCHEMA)
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}
        self._exclusive: set[str] = set()
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._released: asyncio.Event | None = None
        self._clean()

    def _clean(self) -> None:
        """Half-made directories, directories without a row and rows without a directory
        (a daemon that died mid-build) are dropped."""
        self.root.mkdir(parents=True, exist_ok=True)
        rows = {r["name"] for r in self.db.execute("SELECT name FROM build_cache_mounts")}
        present = set(os.listdir(self.root))
        for n in present - rows:
            shutil.rmtree(self.root / n, ignore_errors=True)
        for n in rows - present:
            self.db.execute("DELETE FROM build_cache_mounts WHERE name=?", (n,))

    # --- in-use bookkeeping (under self._lock) -----------------------------------------
    def _pick(self, names: list[str], sharing: str) -> str | None:
        """An instance this user may take now, or None (busy, or none exists)."""
        for n in names:
            busy = self._users.get(n, 0)
            if sharing == "shared" and n not in self._exclusive:
                return n
            if busy == 0:
                return n
            if sharing != "private":
                return None  # shared/locked wait for the first instance
        return None

    def _hold(self, name: str, exclusive: bool) -> None:
        self._users[name] = self._users.get(name, 0) + 1
        if exclusive:
            self._exclusive.add(name)

    def in_use(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    # --- acquire / release --------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def acquire(self, spec: CacheSpec,
                      seed: Callable[[str], None] | None = None) -> AsyncIterator[str]:
        """The cache's directory, held for the block (`seed(dir)` fills a new one)."""
        name = await self._take(spec, seed)
        try:
            yield str(self.root / name)
        finally:
            self._give(name)

    async def _take(self, spec: CacheSpec, seed: Callable[[str], None] | None) -> str:
        key = spec.key
        exclusive = spec.sharing != "shared"
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        while True:
            async with lock:
                released = self._released_event()
                with self._lock:
                    names = [r["name"] for r in self.db.execute(
                        "SELECT name FROM build_cache_mounts WHERE key=? ORDER BY created", (key,))]
                    name = self._pick(names, spec.sharing)
                    if name is not None:
                        self._hold(name, exclusive)
                        self.db.execute("UPDATE build_cache_mounts SET last_used=? WHERE name=?",
                                        (time.time(), name))
                        return name
                if not names or spec.sharing == "private":
                    return await self._create_held(spec, seed, exclusive)
            await released.wait()

    async def _create_held(self, spec: CacheSpec, seed: Callable[[str], None] | None,
                           exclusive: bool) -> str:
        made = asyncio.ensure_future(asyncio.to_thread(self._create, spec, seed, exclusive))
        try:
            return await asyncio.shield(made)
        except asyncio.CancelledError:
            # the thread finishes anyway: give back the hold nobody will release
            made.add_done_callback(
                lambda f: f.cancelled() or f.exception() is not None or self._give(f.result()))
            raise

    def _released_event(self) -> asyncio.Event:
        if self._released is None:
            self._released = asyncio.Event()
        return self._released

    def _give(self, name: str) -> None:
        with self._lock:
            left = self._users.get(name, 0) - 1
            if left > 0:
                self._users[name] = left
            else:
                self._users.pop(name, None)
            self._exclusive.discard(name)
        if self._released is not None:
            self._released.set()
            self._released = None

    def _create(self, spec: CacheSpec, seed: Callable[[str], None] | None, exclusive: bool) -> str:
        name = secrets.token_hex(16)
        tmp = self.root / (_NEW + name)
        tmp.mkdir(parents=True)
        try:
            if seed is not None:
                seed(str(tmp))  # the directory takes the seed's mode and owner
            if spec.mode is not None or seed is None:
                os.chmod(tmp, 0o755 if spec.mode is None else spec.mode)
            if spec.uid is not None or spec.gid is not None:
                os.chown(tmp, -1 if spec.uid is None else spec.uid,
                         -1 if spec.gid is None else spec.gid)
            os.rename(tmp, self.root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        now = time.time()
        with self._lock:
            self.db.execute("INSERT INTO build_cache_mounts(name, key, id, created, last_used) "
                            "VALUES (?,?,?,?,?)", (name, spec.key, spec.id, now, now))
            self._hold(name, exclusive)
        return name

    def usage(self) -> list[dict[str, object]]:
        """Every cache mount: name, id, created, last_used (epoch seconds), size, in_use."""
        with self._lock:
            rows = list(self.db.execute("SELECT name, id, created, last_used FROM build_cache_mounts"))
            busy = set(self._users)
        return [{"name": r["name"], "id": r["id"], "created": r["created"], "last_used": r["last_used"],
                 "size": tree_size(str(self.root / r["name"])), "in_use": r["name"] in busy} for r in rows]

    # --- pruning ------------------------------------------------------------
    def prune(self, names: Collection[str] | None = None) -> tuple[list[str], int]:
        """Remove every cache nobody is using (of `names`, when given): (their names, bytes freed)."""
        with self._lock:
            rows = self.db.execute("SELECT name FROM build_cache_mounts")
            gone = [r["name"] for r in rows if r["name"] not in self._users
                    and (names is None or r["name"] in names)]
            for n in gone:
                self.db.execute("DELETE FROM build_cache_mounts WHERE name=?", (n,))
        freed = 0
        for n in gone:
            path = self.root / n
            freed += tree_size(str(path))
            shutil.rmtree(path, ignore_errors=True)
        return gone, freed
