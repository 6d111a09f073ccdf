"""Build cache: which image a step produced, keyed on the parent image id, the step's
instruction text, the content of the files it copied (not their mtimes) and the build
args it saw. Stored in the daemon's SQLite database. When a step misses, `explain_miss`
compares with earlier builds on the same parent and says what changed: the instruction
text, which copied file, which build arg."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.errors import InvalidParameter

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
        self.remove(gone)
        return gone

    def remove(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.db.execute("DELETE FROM build_cache WHERE key=?", (k,))

    def items(self, exists: Callable[[str], bool]) -> list[CacheItem]:
        """Every record as a prune candidate (records hold no data of their own: size 0)."""
        rows = self.db.execute("SELECT key, parent, keyword, instruction, image_id, last_used FROM build_cache")
        return [CacheItem(id=r["key"], type="regular", size=0, last_used=r["last_used"],
                          dangling=not exists(r["image_id"]), parent=r["parent"],
                          description=f"{r['keyword']} {r['instruction']}") for r in rows]

    def forget_image(self, image_id: str) -> None:
        self.db.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))


# --- POST /build/prune: which records and cache mounts go -------------------------------------

# dockerd's valid prune filters: BuildKit's cache fields, until and its old name unused-for,
# and label/label! (accepted and not applied, as dockerd does)
PRUNE_FILTERS = frozenset({"until", "unused-for", "id", "parent", "type", "description", "inuse",
                           "shared", "private", "label", "label!"})
_MATCHED = ("id", "parent", "type", "description", "inuse", "shared", "private")


@dataclass
class CacheItem:
    """A build cache entry as prune sees it: a step record ("regular") or a RUN cache mount
    ("exec.cachemount")."""
    id: str
    type: str
    size: int
    last_used: float                   # epoch seconds
    in_use: bool = False
    dangling: bool = False             # a step record whose image is gone
    parent: str = ""
    description: str = ""
    shared: bool = False

    def value(self, name: str) -> str:
        v = getattr(self, "in_use" if name == "inuse" else name, None)
        if name == "private":
            v = not self.shared
        return str(v).lower() if isinstance(v, bool) else str(v)


@dataclass
class PruneRule:
    all: bool = False
    keep_bytes: int = 0
    keep_seconds: float = 0            # until: what was used this recently stays
    match: dict[str, str] = field(default_factory=dict)

    def matches(self, item: CacheItem) -> bool:
        for k, want in self.match.items():
            have = item.value(k)
            if k == "id":   # BuildKit's id~=: a regular expression (or the text itself)
                try:
                    if not re.search(want, have):
                        return False
                except re.error:
                    if want not in have:
                        return False
            elif have != want:
                return False
        return True


def prune_rule(filters: dict[str, list[str]], all_: bool = False, keep_bytes: int = 0) -> PruneRule:
    """dockerd's reading of /build/prune's filters (its errors and words); unknown keys are
    refused earlier (`invalid filter 'k'`)."""
    from berth.build.instructions import parse_duration

    until, unused_for = filters.get("until") or [], filters.get("unused-for") or []
    if until and unused_for:
        raise InvalidParameter('conflicting filters: "until" and "unused-for"')
    key = "unused-for" if unused_for else "until"
    values = until + unused_for
    if len(values) > 1:
        raise InvalidParameter("filters expect only one value")
    seconds = 0.0
    if values:
        try:
            seconds = parse_duration(values[0]) / 1e9
        except ValueError as exc:
            raise InvalidParameter(f"\"{key}\" filter expects a duration (e.g., '24h'): {exc}") from None
    match: dict[str, str] = {}
    for k in _MATCHED:
        vals = filters.get(k) or []
        if len(vals) > 1:
            raise InvalidParameter("filters expect only one value")
        if vals:
            match[k] = vals[0]
    return PruneRule(all=all_, keep_bytes=keep_bytes, keep_seconds=seconds, match=match)


def select_for_prune(items: list[CacheItem], rule: PruneRule, now: float) -> list[CacheItem]:
    """What a prune removes, as BuildKit chooses: nothing in use; step records only when their
    image is gone unless `all`; filters; `until` spares what was used within it; with
    `keep_bytes`, the least recently used go first and only while the cache holds more."""
    chosen = [i for i in items
              if not i.in_use and (rule.all or i.type != "regular" or i.dangling) and rule.matches(i)
              and (not rule.keep_seconds or i.last_used < now - rule.keep_seconds)]
    if not rule.keep_bytes:
        return chosen
    total = sum(i.size for i in items)
    out = []
    for i in sorted(chosen, key=lambda i: i.last_used):
        if total <= rule.keep_bytes:
            break
        out.append(i)
        total -= i.size
    return out
