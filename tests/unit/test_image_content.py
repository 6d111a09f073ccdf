"""Content store: a blob becomes visible only once verified; a mismatch leaves nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from berth.errors import NotFound
from berth.image.content import ContentStore, DigestMismatch


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "blobs", tmp_path / "tmp")


def test_write_and_read(store: ContentStore) -> None:
    data = b"hello layer" * 1000
    d = store.write_bytes(data, _digest(data))
    assert d == _digest(data)
    assert store.exists(d)
    assert store.read_bytes(d) == data
    assert store.size(d) == len(data)
    assert store.path(d) == store.root / "sha256" / d[7:]
    assert os.listdir(store.tmp) == []
    assert store.list() == [d]


def test_mismatched_digest_is_rejected_and_never_visible(store: ContentStore) -> None:
    data = b"the real bytes"
    claimed = _digest(b"other bytes")
    with pytest.raises(DigestMismatch, match="does not match expected digest") as exc:
        store.write_bytes(data, claimed)
    assert exc.value.status == 400
    assert not store.exists(claimed)
    assert not store.exists(_digest(data))
    assert os.listdir(store.tmp) == []
    assert list((store.root / "sha256").iterdir()) == []


def test_wrong_size_is_rejected(store: ContentStore) -> None:
    data = b"12345"
    with pytest.raises(DigestMismatch, match="size"):
        with store.writer(_digest(data), expected_size=4) as w:
            w.write(data)
            w.commit()
    with pytest.raises(DigestMismatch, match="size"):
        with store.writer(_digest(data), expected_size=6) as w:
            w.write(data)
            w.commit()
    assert not store.exists(_digest(data))
    assert os.listdir(store.tmp) == []


def test_half_written_blob_is_invisible_until_commit(store: ContentStore) -> None:
    data = b"a" * 5000
    w = store.writer(_digest(data), len(data))
    w.write(data[:100])
    assert not store.exists(_digest(data))
    assert len(os.listdir(store.tmp)) == 1
    w.abort()
    assert os.listdir(store.tmp) == []
    assert not store.exists(_digest(data))


def test_writer_abandoned_in_with_block_is_removed(store: ContentStore) -> None:
    with pytest.raises(RuntimeError):
        with store.writer() as w:
            w.write(b"partial")
            raise RuntimeError("connection dropped")
    assert os.listdir(store.tmp) == []
    assert store.list() == []


def test_unverified_write_names_blob_by_its_digest(store: ContentStore) -> None:
    d = store.write_stream(iter([b"ab", b"cd"]))
    assert d == _digest(b"abcd")
    assert store.read_bytes(d) == b"abcd"


def test_missing_blob_and_delete(store: ContentStore) -> None:
    d = _digest(b"x")
    with pytest.raises(NotFound):
        store.read_bytes(d)
    store.write_bytes(b"x")
    assert store.delete(d)
    assert not store.delete(d)


def test_bad_digest_form_refused(store: ContentStore) -> None:
    with pytest.raises(ValueError):
        store.writer("md5:abc")
    assert not store.exists("sha256:../../etc/passwd")
