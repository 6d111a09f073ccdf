"""Variable substitution as the Dockerfile reference defines it (BuildKit's shell lexer).

`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
`${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`;
single quotes are literal, double quotes allow expansion, the escape character escapes
the next character. Quotes are removed from the result. Pure."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from berth.errors import InvalidParameter

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


class ExpansionError(InvalidParameter):
    pass


@dataclass
class _Lexer:
    text: str
    env: Mapping[str, str]
    escape: str = "\\"
    pos: int = 0
    used: set[str] = field(default_factory=set)
    raw: bool = False   # heredoc bodies: quotes are plain text, only `$` is special

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    # whole input -> words (split on unquoted blanks) ----------------------------------
    def words(self, split: bool) -> list[str]:
        out: list[str] = []
        cur: list[str] = []
        has_word = False
        while self.peek():
            ch = self.peek()
            if split and ch in " \t\n":
                self.next()
                if has_word:
                    out.append("".join(cur))
                    cur, has_word = [], False
                continue
            if ch == "'" and not self.raw:
                self.next()
                cur.append(self._single_quoted())
                has_word = True
            elif ch == '"' and not self.raw:
                self.next()
                cur.append(self._double_quoted())
                has_word = True
            elif ch == "$":
                self.next()
                val = self._dollar()
                if split and val is not None:
                    # an unquoted expansion is split on whitespace, like the shell
                    pieces = re.split(r"[ \t\n]+", val)
                    if len(pieces) > 1:
                        cur.append(pieces[0])
                        if "".join(cur) or has_word:
                            out.append("".join(cur))
                        for p in pieces[1:-1]:
                            if p:
                                out.append(p)
                        cur = [pieces[-1]]
                        has_word = bool(pieces[-1])
                        continue
                cur.append(val or "")
                has_word = has_word or bool(val)
            elif ch == self.escape:
                self.next()
                if self.raw and self.peek() != "$":
                    cur.append(ch)
                    continue
                nxt = self.next()
                if nxt:
                    cur.append(nxt)
                else:
                    cur.append(ch)
                has_word = True
            else:
                cur.append(self.next())
                has_word = True
        if has_word or (not split):
            out.append("".join(cur))
        return out

    def _single_quoted(self) -> str:
        buf = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(buf)
            buf.append(ch)

    def _double_quoted(self) -> str:
        buf: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                return "".join(buf)
            if ch == "$":
                buf.append(self._dollar() or "")
            elif ch == self.escape:
                nxt = self.peek()
                if nxt in ('"', "$", self.escape):
                    buf.append(self.next())
                else:
                    buf.append(ch)
            else:
                buf.append(ch)

    def _name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            return self.next()
        buf = []
        while self.peek() and _NAME_CHAR.match(self.peek()):
            buf.append(self.next())
        return "".join(buf)

    def _lookup(self, name: str) -> str | None:
        self.used.add(name)
        return self.env.get(name)

    def _dollar(self) -> str | None:
        ch = self.peek()
        if ch == "{":
            self.next()
            return self._braced()
        if ch and (_NAME_START.match(ch) or ch.isdigit()):
            return self._lookup(self._name()) or ""
        return "$"

    def _word_until_brace(self) -> str:
        """The `word` part of ${VAR:-word}: may contain quotes and nested expansions."""
        buf: list[str] = []
        depth = 0
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("syntax error: missing '}'")
            if ch == "}" and depth == 0:
                self.next()
                return "".join(buf)
            self.next()
            if ch == "'":
                buf.append(self._single_quoted())
            elif ch == '"':
                buf.append(self._double_quoted())
            elif ch == "$":
                buf.append(self._dollar() or "")
            elif ch == self.escape:
                nxt = self.next()
                buf.append(nxt or ch)
            else:
                buf.append(ch)

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise ExpansionError(f"bad substitution in: {self.text}")
        ch = self.peek()
        if ch == "}":
            self.next()
            return self._lookup(name) or ""
        colon = False
        if ch == ":":
            colon = True
            self.next()
            ch = self.peek()
        if ch in ("-", "+", "?"):
            self.next()
            word = self._word_until_brace()
            val = self._lookup(name)
            is_set = val is not None and (val != "" or not colon)
            if ch == "-":
                return val if is_set else word  # type: ignore[return-value]
            if ch == "+":
                return word if is_set else ""
            if not is_set:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return val  # type: ignore[return-value]
        if not colon and ch in ("#", "%"):
            self.next()
            greedy = False
            if self.peek() == ch:
                self.next()
                greedy = True
            pat = self._word_until_brace()
            val = self._lookup(name) or ""
            return _trim(val, pat, prefix=(ch == "#"), greedy=greedy)
        raise ExpansionError(f"unsupported modifier ({ch}) in substitution: {self.text}")


def _trim(val: str, pat: str, prefix: bool, greedy: bool) -> str:
    rng = range(len(val), -1, -1) if greedy else range(len(val) + 1)
    if prefix:
        for n in rng:
            if fnmatch.fnmatchcase(val[:n], pat):
                return val[n:]
        return val
    rng = range(len(val) + 1) if greedy else range(len(val), -1, -1)
    for n in rng:
        if fnmatch.fnmatchcase(val[n:], pat):
            return val[:n]
    return val


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word (quotes removed, no splitting)."""
    return _Lexer(word, env, escape).words(split=False)[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand and split on unquoted blanks."""
    return _Lexer(text, env, escape).words(split=True)


def expand_heredoc(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand `$VAR` forms in a heredoc body; quotes are kept as written."""
    return _Lexer(text, env, escape, raw=True).words(split=False)[0]


def used_names(word: str, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """Names a word refers to (for cache keys and unused-arg warnings)."""
    lx = _Lexer(word, env, escape)
    lx.words(split=False)
    return lx.used


def env_to_dict(env_list: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env_list or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out
