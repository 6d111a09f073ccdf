""".dockerignore patterns with Docker's rules (pure).

- one pattern a line; lines starting with `#` are comments; blanks are trimmed;
- `!pattern` re-includes; the last matching pattern wins (order matters);
- patterns are cleaned like Go's filepath.Clean, then a leading `/` is dropped
  (`./a` -> `a`, `/a/b/` -> `a/b`);
- `*` any run of non-`/` chars, `?` one non-`/` char, `[...]` a class (`[!x]`/`[^x]`),
  `**` any number of directories (zero included), `\\` escapes;
- a pattern that matches a parent directory matches everything below it.

The CLI imports this to filter the build context; the daemon re-applies it after
extracting the context, as Docker's legacy builder does."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


def clean_path(p: str) -> str:
    """Go's filepath.Clean for '/'-separated paths."""
    if not p:
        return "."
    out = posixpath.normpath(p)
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out


def read_dockerignore(text: str) -> list[str]:
    """Patterns from a .dockerignore file's text, cleaned as Docker does."""
    out: list[str] = []
    for i, line in enumerate(text.splitlines()):
        if i == 0:
            line = line.lstrip("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _to_regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    out.append(".*")
                else:
                    out.append("(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                raise ValueError(f"syntax error in pattern: {pattern}")
            body = pattern[i + 1:j]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        elif ch == "\\":
            if i + 1 < n:
                out.append(re.escape(pattern[i + 1]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


@dataclass
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    dirs: int

    def match(self, path: str) -> bool:
        return bool(self.regex.match(path))


class PatternMatcher:
    """Compiled patterns; `matches(path)` answers whether `path` (relative to the context
    root, '/'-separated) is excluded."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for p in patterns:
            p = p.strip()
            if not p:
                continue
            excl = p.startswith("!")
            if excl:
                p = p[1:]
                if not p:
                    raise ValueError("illegal exclusion pattern: \"!\"")
            p = clean_path(p)
            self.patterns.append(Pattern(text=p, exclusion=excl, regex=_to_regex(p),
                                         dirs=len(p.split("/"))))

    @property
    def exclusions(self) -> bool:
        """True if any `!` pattern exists (then an excluded directory must still be walked)."""
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        path = clean_path(path).lstrip("/")
        parents = path.split("/")[:-1]
        matched = False
        for pat in self.patterns:
            # an exclusion can only undo a match; a plain pattern only make one
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parents:
                hit = any(pat.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pat.exclusion
        return matched


def matches(patterns: list[str], path: str) -> bool:
    """Whether `path` is excluded by `patterns` (as returned by read_dockerignore)."""
    return PatternMatcher(patterns).matches(path)
