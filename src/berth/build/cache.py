"""Build cache: which image a step produced, keyed on the parent image id, the step's
instruction text, the content of the files it copied (not their mtimes) and the build
args it saw. Stored in the daemon's SQLite database. When a step misses, `explain_miss`
compares with earlier builds on the same parent and says what changed: the instruction
text, which copied file, which build arg."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    keyword TEXT NOT NULL,
    instruction TEXT NOT NULL,
    files TEXT NOT NULL,
    args TEXT NOT NULL,
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_by_parent ON build_cache(parent);
CREATE INDEX IF NOT EXISTS build_cache_by_image ON build_cache(image_id);
"""


class DB(Protocol):
    def ensure_schema(self, ddl: str) -> None: ...
    def execute(self, sql: str, params: Any = ()) -> list[Any]: ...
    def one(self, sql: str, params: Any = ()) -> Any: ...


@dataclass
class Probe:
    parent: str                        # parent image id ("" for scratch)
    keyword: str                       # RUN, COPY, ...
    instruction: str                   # the step as it affects the result (expanded)
    files: dict[str, str] = field(default_factory=dict)   # copied path -> content digest
    args: dict[str, str] = field(default_factory=dict)    # build args the step saw
    extra: str = ""                    # other inputs (env, workdir, ...), keyed but not shown

    @property
    def key(self) -> str:
        blob = json.dumps([self.parent, self.instruction, sorted(self.files.items()),
                           sorted(self.args.items()), self.extra], separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12] or "scratch"


def _list(names: list[str], n: int = 5) -> str:
    more = f" (and {len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


class BuildCache:
    def __init__(self, db: DB) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def lookup(self, probe: Probe, exists: Callable[[str], bool]) -> str | None:
        row = self.db.one("SELECT image_id FROM build_cache WHERE key=?", (probe.key,))
        if row is None:
            return None
        image_id = row["image_id"]
        if not exists(image_id):
            self.db.execute("DELETE FROM build_cache WHERE key=?", (probe.key,))
            return None
        self.db.execute("UPDATE build_cache SET last_used=? WHERE key=?", (time.time(), probe.key))
        return image_id

    def store(self, probe: Probe, image_id: str) -> None:
        now = time.time()
        self.db.execute(
            "INSERT OR REPLACE INTO build_cache(key, parent, keyword, instruction, files, args, "
            "image_id, created, last_used) VALUES (?,?,?,?,?,?,?,?,?)",
            (probe.key, probe.parent, probe.keyword, probe.instruction,
             json.dumps(probe.files, sort_keys=True), json.dumps(probe.args, sort_keys=True),
             image_id, now, now))

    def explain_miss(self, probe: Probe) -> str:
        """Why `probe` missed, compared with the closest earlier build on the same parent."""
        rows = self.db.execute(
            "SELECT * FROM build_cache WHERE parent=? ORDER BY last_used DESC LIMIT 200", (probe.parent,))
        if not rows:
            return f"no earlier build step on top of image {_short(probe.parent)}"
        same = [r for r in rows if r["instruction"] == probe.instruction]
        if not same:
            kin = [r for r in rows if r["keyword"] == probe.keyword]
            if kin:
                return f"instruction changed (was: {kin[0]['instruction']})"
            return f"no earlier build ran this step on top of image {_short(probe.parent)}"
        # the candidate closest in inputs: fewest differing files, then args
        best = None
        best_score: tuple[int, int] | None = None
        for r in same:
            files = json.loads(r["files"])
            args = json.loads(r["args"])
            fd = sum(1 for k in set(files) | set(probe.files) if files.get(k) != probe.files.get(k))
            ad = sum(1 for k in set(args) | set(probe.args) if args.get(k) != probe.args.get(k))
            if best_score is None or (fd, ad) < best_score:
                best, best_score = (files, args), (fd, ad)
        assert best is not None
        files, args = best
        reasons = []
        changed = sorted(k for k in probe.files if k in files and files[k] != probe.files[k])
        added = sorted(k for k in probe.files if k not in files)
        removed = sorted(k for k in files if k not in probe.files)
        if changed:
            reasons.append(f"file changed: {_list(changed)}")
        if added:
            reasons.append(f"file added: {_list(added)}")
        if removed:
            reasons.append(f"file removed: {_list(removed)}")
        for k in sorted(set(args) | set(probe.args)):
            old, new = args.get(k), probe.args.get(k)
            if old == new:
                continue
            if old is None:
                reasons.append(f"build arg {k} set to {new!r}")
            elif new is None:
                reasons.append(f"build arg {k} no longer set (was {old!r})")
            else:
                reasons.append(f"build arg {k} changed from {old!r} to {new!r}")
        if not reasons:
            return "the cached result is gone (its image was removed) or the step's settings changed"
        return "; ".join(reasons)

    def prune(self, keep: Callable[[str], bool] | None = None) -> list[str]:
        """Drop cache records (all, or those whose image `keep` rejects); returns their keys."""
        rows = self.db.execute("SELECT key, image_id FROM build_cache")
        gone = [r["key"] for r in rows if keep is None or not keep(r["image_id"])]
        for k in gone:
            self.db.execute("DELETE FROM build_cache WHERE key=?", (k,))
        return gone

    def forget_image(self, image_id: str) -> None:
        self.db.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))
