"""Dockerfile parser (pure, no I/O): text -> nodes with line numbers.

Follows BuildKit's parser: parser directives at the very top (`# syntax=`, `# escape=`,
`# check=`), line continuation with the escape character, comment and blank lines inside
continuations, exec (JSON) versus shell form, heredocs for RUN/COPY/ADD, case-insensitive
instruction names. Variable expansion is not done here (see expansion.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from berth.errors import InvalidParameter

INSTRUCTIONS = frozenset({
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
    "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
})
HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
ALLOWED_DIRECTIVES = frozenset({"syntax", "escape", "check"})

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)(.+)$")
_FLAG_NAME = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(=.*)?$")


class DockerfileSyntaxError(InvalidParameter):
    """A Dockerfile that cannot be parsed; the message starts with `FILE:LINE:`."""

    def __init__(self, message: str, line: int = 0, filename: str = "Dockerfile") -> None:
        self.line = line
        self.filename = filename
        self.detail = message
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")


@dataclass
class Heredoc:
    name: str
    content: str
    expand: bool = True      # False when the delimiter was quoted
    chomp: bool = False      # `<<-`: leading tabs were removed
    fd: int | None = None    # `3<<EOF`


@dataclass
class Node:
    """One instruction. `value` is the text after the keyword and the flags, unexpanded;
    `args` is its per-instruction split (see _split_args)."""

    instruction: str                 # lower-case keyword
    original: str                    # the logical line (continuations joined)
    value: str
    flags: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    json: bool = False               # exec (JSON) form
    heredocs: list[Heredoc] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    sub: Node | None = None          # the instruction inside ONBUILD


@dataclass
class Dockerfile:
    nodes: list[Node]
    directives: dict[str, str]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)


# --- directives -------------------------------------------------------------------------

def _parse_directives(lines: list[str], filename: str) -> tuple[dict[str, str], int]:
    """Directives are comment lines at the very top; anything else ends them."""
    found: dict[str, str] = {}
    n = 0
    for i, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.strip() if i else raw.lstrip("\ufeff").strip())
        if not m:
            break
        name = m.group(1).lower()
        if name not in ALLOWED_DIRECTIVES:
            break  # unknown directive: a comment, and the end of directives
        if name in found:
            raise DockerfileSyntaxError(f"only one {name} parser directive can be used", i + 1, filename)
        found[name] = m.group(2)
        n = i + 1
    if "escape" in found and found["escape"] not in ("\\", "`"):
        raise DockerfileSyntaxError(f"invalid escape token '{found['escape']}' does not match ` or \\",
                                    1, filename)
    return found, n


# --- logical lines ----------------------------------------------------------------------

def _is_comment(line: str) -> bool:
    return line.lstrip(" \t").startswith("#")


def _continues(line: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing escape char (optionally followed by blanks): (text, continues?)."""
    stripped = line.rstrip(" \t\r")
    if stripped.endswith(escape):
        # an escaped escape char at the end ("\\\\") is not a continuation for '\\' ... BuildKit
        # treats any trailing escape as continuation; follow it.
        return stripped[:-1], True
    return line.rstrip("\r"), False


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text. Raises DockerfileSyntaxError naming the file and line."""
    text = text.lstrip("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    directives, _ = _parse_directives(lines, filename)
    escape = directives.get("escape", "\\")
    nodes: list[Node] = []
    warnings: list[str] = []
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r")
        start = i + 1
        i += 1
        stripped = raw.lstrip(" \t")
        if not stripped or _is_comment(stripped):
            continue
        text_part, cont = _continues(stripped, escape)
        parts = [text_part]
        end = start
        while cont:
            if i >= len(lines):
                break  # continuation at end of file: take what we have
            nxt = lines[i].rstrip("\r")
            i += 1
            end = i
            if _is_comment(nxt):
                continue
            if not nxt.strip():
                warnings.append(f"{filename}:{i}: empty continuation line")
                continue
            text_part, cont = _continues(nxt, escape)
            parts.append(text_part)
        logical = "".join(parts)
        if not logical.strip():
            continue
        node = _parse_line(logical, start, end, filename, escape)
        if node.instruction in HEREDOC_INSTRUCTIONS and not node.json:
            names = _heredoc_markers(node.value)
            for fd, chomp, name, expand in names:
                body: list[str] = []
                while True:
                    if i >= len(lines):
                        raise DockerfileSyntaxError(f"unterminated heredoc {name}", start, filename)
                    hl = lines[i].rstrip("\r") if not lines[i].endswith("\r") else lines[i][:-1]
                    i += 1
                    check = hl.lstrip("\t") if chomp else hl
                    if check == name:
                        break
                    body.append(check + "\n")
                node.heredocs.append(Heredoc(name=name, content="".join(body), expand=expand,
                                             chomp=chomp, fd=fd))
            node.end_line = i if names else end
        nodes.append(node)
    return Dockerfile(nodes=nodes, directives=directives, escape=escape, warnings=warnings)


def _heredoc_markers(value: str) -> list[tuple[int | None, bool, str, bool]]:
    """Find `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, `3<<EOF` words (not inside quotes)."""
    out = []
    for word in _split_shell_words(value):
        m = _HEREDOC_WORD.match(word)
        if not m or m.group(3).startswith("<"):
            continue
        name = m.group(3)
        expand = True
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
            name, expand = name[1:-1], False
        if not name or not re.match(r"^[A-Za-z0-9_.-]+$", name):
            continue
        out.append((int(m.group(1)) if m.group(1) else None, m.group(2) == "-", name, expand))
    return out


def _split_shell_words(s: str) -> list[str]:
    """Whitespace split that keeps quoted spans (quotes retained) together."""
    words: list[str] = []
    cur = ""
    quote = ""
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch in " \t":
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


# --- one logical line -> Node -----------------------------------------------------------

def _parse_line(line: str, start: int, end: int, filename: str, escape: str) -> Node:
    stripped = line.strip()
    m = re.match(r"^(\S+)(?:\s+(.*))?$", stripped, re.S)
    assert m is not None
    keyword, rest = m.group(1), (m.group(2) or "")
    instr = keyword.lower()
    if instr not in INSTRUCTIONS:
        raise DockerfileSyntaxError(f"unknown instruction: {keyword}", start, filename)
    node = Node(instruction=instr, original=stripped, value="", start_line=start, end_line=end)
    if instr == "onbuild":
        sub_text = rest.strip()
        if not sub_text:
            raise DockerfileSyntaxError("ONBUILD requires at least one argument", start, filename)
        sub = _parse_line(sub_text, start, end, filename, escape)
        if sub.instruction == "onbuild":
            raise DockerfileSyntaxError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", start, filename)
        if sub.instruction in ("from", "maintainer"):
            raise DockerfileSyntaxError(f"{sub.instruction.upper()} isn't allowed as an ONBUILD trigger",
                                        start, filename)
        node.sub = sub
        node.value = sub_text
        node.args = [sub_text]
        return node
    flags, rest = _extract_flags(rest)
    node.flags = flags
    node.value = rest
    try:
        node.args, node.json = _split_args(instr, rest, escape)
    except ValueError as exc:
        raise DockerfileSyntaxError(str(exc), start, filename) from None
    return node


def _extract_flags(rest: str) -> tuple[list[str], str]:
    """Leading `--name[=value]` words, as BuildKit's extractBuilderFlags."""
    flags: list[str] = []
    s = rest.lstrip()
    while s.startswith("--"):
        m = re.match(r"^(\S+)(\s+|$)", s)
        assert m is not None
        word = m.group(1)
        if word == "--":
            s = s[m.end():]
            break
        if not _FLAG_NAME.match(word):
            break
        flags.append(word)
        s = s[m.end():]
    return flags, s.strip()


def _split_args(instr: str, rest: str, escape: str) -> tuple[list[str], bool]:
    if instr in ("run", "cmd", "entrypoint", "shell", "copy", "add", "volume"):
        js = _maybe_json(rest)
        if js is not None:
            return js, True
        if instr == "shell":
            raise ValueError("SHELL requires the arguments to be in JSON form")
        if instr in ("copy", "add", "volume"):
            return _whitespace_words(rest, escape), False
        return ([rest] if rest else []), False
    if instr in ("env", "label"):
        return _parse_name_values(instr, rest, escape), False
    if instr == "arg":
        return _parse_arg_words(rest, escape), False
    if instr in ("from", "expose", "healthcheck"):
        return _whitespace_words(rest, escape), False
    # maintainer, workdir, user, stopsignal: the rest as one string
    return ([rest] if rest else []), False


def _maybe_json(rest: str) -> list[str] | None:
    s = rest.strip()
    if not s.startswith("["):
        return None
    try:
        val = json.loads(s)
    except ValueError:
        return None
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        return None
    return val


def _whitespace_words(s: str, escape: str) -> list[str]:
    """Split on unquoted, unescaped blanks; quotes and escapes are kept for expansion."""
    words: list[str] = []
    cur = ""
    quote = ""
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == escape and quote != "'" and i + 1 < len(s):
            cur += ch + s[i + 1]
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur += ch
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch in " \t\n":
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur:
        words.append(cur)
    return words


def _parse_name_values(instr: str, rest: str, escape: str) -> list[str]:
    """ENV/LABEL: `k=v k2="v 2"` or the legacy `ENV key some value` form.
    Returns a flat [key, value, key, value...] list (values still quoted/escaped)."""
    words = _whitespace_words(rest, escape)
    if not words:
        raise ValueError(f"{instr.upper()} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: `ENV key value with spaces`
        parts = re.split(r"[ \t]+", rest.strip(), maxsplit=1)
        if len(parts) < 2:
            if instr == "env":
                raise ValueError("ENV must have two arguments")
            raise ValueError(f"{instr.upper()} requires at least one argument")
        return [parts[0], parts[1]]
    out: list[str] = []
    for w in words:
        if "=" not in w:
            raise ValueError(f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        k, v = w.split("=", 1)
        if not k:
            raise ValueError(f"{instr.upper()} names can not be blank")
        out.extend([k, v])
    return out


def _parse_arg_words(rest: str, escape: str) -> list[str]:
    words = _whitespace_words(rest, escape)
    if not words:
        raise ValueError("ARG requires at least one argument")
    return words
