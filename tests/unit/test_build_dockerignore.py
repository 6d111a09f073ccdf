""".dockerignore patterns with Docker's rules."""

from __future__ import annotations

import pytest

from berth.build.dockerignore import PatternMatcher, matches, read_dockerignore


def test_read_cleans_patterns_and_drops_comments() -> None:
    text = "\ufeff# comment\n  *.md  \n\n!README.md\n/abs/path/\n./rel/../other\n! spaced\n"
    assert read_dockerignore(text) == ["*.md", "!README.md", "abs/path", "other", "!spaced"]


@pytest.mark.parametrize("patterns,path,expected", [
    (["*.md"], "a.md", True),
    (["*.md"], "docs/a.md", False),          # * does not cross directories
    (["*/*.md"], "docs/a.md", True),
    (["**/*.md"], "a.md", True),            # ** matches zero directories
    (["**/*.md"], "x/y/z/a.md", True),
    (["docs/**"], "docs/a/b", True),
    (["docs"], "docs/a/b", True),           # a matched parent excludes what is below
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[!a-c]x"], "bx", False),
    (["[^a-c]x"], "dx", True),
    (["\\*x"], "*x", True),
    (["\\*x"], "ax", False),
    (["node_modules"], "node_modules", True),
    (["*", "!keep"], "keep", False),
    (["*", "!keep", "keep"], "keep", True),  # order matters: the last match wins
    (["*.log", "!important.log"], "important.log", False),
    (["*.log", "!important.log"], "other.log", True),
    (["build/", "!build/keep.txt"], "build/keep.txt", False),
    (["build/", "!build/keep.txt"], "build/drop.txt", True),
    (["/root-only"], "root-only", True),
    (["./x"], "x", True),
    ([], "anything", False),
])
def test_matches(patterns: list[str], path: str, expected: bool) -> None:
    pats = read_dockerignore("\n".join(patterns))
    assert matches(pats, path) is expected


def test_matcher_reports_exclusions() -> None:
    assert PatternMatcher(["a", "!b"]).exclusions
    assert not PatternMatcher(["a"]).exclusions


def test_lone_bang_is_refused() -> None:
    with pytest.raises(ValueError):
        PatternMatcher(["!"])
