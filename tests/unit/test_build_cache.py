"""The build cache: keys from parent, instruction, file content and build args; miss
explanations naming what changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.build.cache import BuildCache, Probe
from berth.engine.db import Database


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
