"""The reference filter of `images`: distribution's FamiliarMatch (Go path.Match syntax)."""

from __future__ import annotations

import pytest

from berth.engine.images import _ref_matches


@pytest.mark.parametrize("ref,pattern,expected", [
    ("busybox:latest", "busy*", True),             # against the name
    ("busybox:latest", "busybox:lat*", True),      # against the whole reference
    ("busybox:latest", "busybox:1*", False),
    ("team/app:1", "team*", False),                # `*` stops at `/`, as path.Match
    ("team/app:1", "team/*", True),
    ("localhost:5000/x:1", "localhost:5000/x", True),
    ("x@sha256:" + "a" * 64, "x", True),           # digest references by name
    ("x:1", "[wx]", True),
    ("x:1", "[^x]", False),
    ("x:1", "[x", False),                          # a bad pattern matches nothing
])
def test_reference_filter_matches_as_docker(ref: str, pattern: str, expected: bool) -> None:
    assert _ref_matches(ref, pattern) is expected
