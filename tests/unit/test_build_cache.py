"""The build cache: keys from parent, instruction, file content and build args; miss
explanations naming what changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.build.cache import BuildCache, CacheItem, Probe, PruneRule, prune_rule, select_for_prune
from berth.engine.db import Database
from berth.errors import InvalidParameter


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[BuildCache]:
    db = Database(tmp_path / "db.sqlite")
    yield BuildCache(db)
    db.close()


def p(**kw: object) -> Probe:
    base: dict[str, object] = {"parent": "sha256:p", "keyword": "COPY", "instruction": "COPY . /app",
                               "files": {"a.py": "1", "b.py": "2"}, "args": {}}
    base.update(kw)
    return Probe(**base)  # type: ignore[arg-type]


def test_key_depends_on_every_input() -> None:
    keys = {p().key, p(parent="sha256:q").key, p(instruction="COPY . /srv").key,
            p(files={"a.py": "1", "b.py": "3"}).key, p(args={"V": "1"}).key, p(extra="x").key}
    assert len(keys) == 6
    assert p().key == p(files={"b.py": "2", "a.py": "1"}).key  # order does not matter


def test_lookup_store_and_vanished_images(cache: BuildCache) -> None:
    assert cache.lookup(p(), lambda _i: True) is None
    cache.store(p(), "sha256:img")
    assert cache.lookup(p(), lambda _i: True) == "sha256:img"
    assert cache.lookup(p(), lambda _i: False) is None   # image gone: record dropped
    assert cache.lookup(p(), lambda _i: True) is None


def test_explanations(cache: BuildCache) -> None:
    assert cache.explain_miss(p()) == "no earlier build step on top of image p"
    cache.store(p(args={"V": "1", "W": "x"}), "sha256:one")
    assert cache.explain_miss(p(files={"a.py": "9", "b.py": "2"}, args={"V": "1", "W": "x"})) == \
        "file changed: a.py"
    assert cache.explain_miss(p(files={"a.py": "1", "b.py": "2", "c.py": "3"}, args={"V": "1", "W": "x"})) == \
        "file added: c.py"
    assert cache.explain_miss(p(files={"a.py": "1"}, args={"V": "1", "W": "x"})) == "file removed: b.py"
    assert cache.explain_miss(p(args={"V": "2", "X": "new"})) == (
        "build arg V changed from '1' to '2'; build arg W no longer set (was 'x'); build arg X set to 'new'")
    assert cache.explain_miss(p(instruction="COPY . /srv")) == "instruction changed (was: COPY . /app)"
    assert cache.explain_miss(p(keyword="RUN", instruction="RUN x")) == \
        "no earlier build ran this step on top of image p"


def test_many_changed_files_are_summarised(cache: BuildCache) -> None:
    old = {f"f{i}": "0" for i in range(8)}
    cache.store(p(files=old), "sha256:one")
    new = {f"f{i}": "1" for i in range(8)}
    assert cache.explain_miss(p(files=new)) == "file changed: f0, f1, f2, f3, f4 (and 3 more)"


def test_prune(cache: BuildCache) -> None:
    cache.store(p(), "sha256:keep")
    cache.store(p(instruction="other"), "sha256:gone")
    assert cache.prune(keep=lambda i: i == "sha256:keep") == [p(instruction="other").key]
    assert cache.prune() == [p().key]


# --- /build/prune: filters, all, keep-storage ------------------------------------------------

def _items() -> list[CacheItem]:
    return [CacheItem(id="sha256:aaa", type="regular", size=0, last_used=100, dangling=True),
            CacheItem(id="sha256:bbb", type="regular", size=0, last_used=900),
            CacheItem(id="m-old", type="exec.cachemount", size=300, last_used=200),
            CacheItem(id="m-new", type="exec.cachemount", size=500, last_used=950),
            CacheItem(id="m-busy", type="exec.cachemount", size=100, last_used=10, in_use=True)]


def _ids(rule: PruneRule) -> list[str]:
    return sorted(i.id for i in select_for_prune(_items(), rule, now=1000))


def test_prune_selection() -> None:
    assert _ids(prune_rule({})) == ["m-new", "m-old", "sha256:aaa"]            # no live records
    assert _ids(prune_rule({}, all_=True)) == ["m-new", "m-old", "sha256:aaa", "sha256:bbb"]
    assert _ids(prune_rule({"until": ["5m"]}, all_=True)) == ["m-old", "sha256:aaa"]  # used < 5 min ago stays
    assert _ids(prune_rule({"type": ["exec.cachemount"]}, all_=True)) == ["m-new", "m-old"]
    assert _ids(prune_rule({"id": ["^m-o"]})) == ["m-old"]
    assert _ids(prune_rule({"inuse": ["true"]}, all_=True)) == []
    # keep 600 of 900 bytes (100 in use): the least recently used go until the rest fits
    assert _ids(prune_rule({}, keep_bytes=600)) == ["m-old", "sha256:aaa"]
    assert _ids(prune_rule({}, keep_bytes=900)) == []


@pytest.mark.parametrize("filters,message", [
    ({"until": ["1h"], "unused-for": ["1h"]}, 'conflicting filters: "until" and "unused-for"'),
    ({"until": ["1h", "2h"]}, "filters expect only one value"),
    ({"type": ["regular", "exec.cachemount"]}, "filters expect only one value"),
    ({"until": ["soon"]}, "\"until\" filter expects a duration \\(e.g., '24h'\\): time: invalid duration \"soon\""),
])
def test_prune_filters_refused(filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        prune_rule(filters)
