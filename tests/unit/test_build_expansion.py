"""Variable substitution as the Dockerfile reference defines it."""

from __future__ import annotations

import pytest

from berth.build.expansion import ExpansionError, expand_heredoc, expand_word, expand_words, used_names

ENV = {"A": "alpha", "EMPTY": "", "SPACED": "one two", "PATHISH": "/usr/local/bin:/usr/bin"}


@pytest.mark.parametrize("word,expected", [
    ("$A", "alpha"),
    ("${A}", "alpha"),
    ("pre${A}post", "prealphapost"),
    ("$A.txt", "alpha.txt"),
    ("$UNSET", ""),
    ("${UNSET}x", "x"),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${UNSET-def}", "def"),
    ("${A:-def}", "alpha"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-${A}}", "alpha"),
    ("${UNSET:-a b}", "a b"),
    ("\\$A", "$A"),
    ("'$A'", "$A"),
    ('"$A"', "alpha"),
    ('"\\$A"', "$A"),
    ('"a\\b"', "a\\b"),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("cost $5", "cost "),
    ("${PATHISH#*:}", "/usr/bin"),
    ("${PATHISH##*/}", "bin"),
    ("${PATHISH%:*}", "/usr/local/bin"),
    ("${PATHISH%%/bin*}", "/usr/local"),
])
def test_expand_word(word: str, expected: str) -> None:
    assert expand_word(word, ENV) == expected


def test_required_variable_error() -> None:
    with pytest.raises(ExpansionError, match="UNSET: must be set"):
        expand_word("${UNSET:?must be set}", ENV)
    assert expand_word("${A:?x}", ENV) == "alpha"


def test_backtick_escape_token() -> None:
    assert expand_word("`$A", ENV, escape="`") == "$A"
    assert expand_word("c:\\dir\\$A", ENV, escape="`") == "c:\\dir\\alpha"


def test_words_split_after_expansion_but_not_inside_quotes() -> None:
    assert expand_words("a $SPACED \"$SPACED\" 'x y'", ENV) == ["a", "one", "two", "one two", "x y"]
    assert expand_words("  8080  9090/udp ", ENV) == ["8080", "9090/udp"]


def test_unterminated_quotes_and_braces() -> None:
    with pytest.raises(ExpansionError):
        expand_word("'abc", ENV)
    with pytest.raises(ExpansionError):
        expand_word("${A", ENV)


def test_heredoc_expansion_keeps_quotes() -> None:
    assert expand_heredoc("echo \"$A\" '$A' \\$A\n", ENV) == "echo \"alpha\" 'alpha' $A\n"


def test_used_names() -> None:
    assert used_names("${A:-$B} $C", ENV) == {"A", "B", "C"}
