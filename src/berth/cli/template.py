"""A subset of Go's text/template, as `--format` uses it in the docker CLI (pure).

Supported: `{{.A.B}}`, `{{$}}`, variables (`$v := ...`, `range $k, $v := ...`), pipelines
with `|`, parenthesised sub-pipelines, string/number/bool literals, `if`/`else if`/`else`,
`range`, `with`, `end`, trim markers `{{-` and `-}}`, and the functions docker adds:
`json`, `join`, `split`, `lower`, `upper`, `title`, `index`, `len`, `print`, `printf`,
`println`, `truncate`, `pad`, plus `eq ne lt le gt ge and or not`.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any


class TemplateError(Exception):
    pass


NO_VALUE = object()   # Go prints "<no value>" for a missing map key


# ---------------------------------------------------------------- lexing the text
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def _split(src: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        parts.append(("text", text))
        body = m.group(2).strip()
        if body.startswith("/*") and body.endswith("*/"):
            parts.append(("text", ""))
        else:
            parts.append(("action", body))
        pos = m.end()
        if m.group(3):
            rest = src[pos:]
            pos += len(rest) - len(rest.lstrip())
    parts.append(("text", src[pos:]))
    return parts


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<declare>:=)
    | (?P<assign>=)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<punct>[|(),])
    )""", re.X)


def _tokens(s: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    s = s.rstrip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {s[pos:].strip()[:10]!r} in command")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


# ---------------------------------------------------------------- AST
class Pipe:
    """A pipeline; `decl` names the variables it declares. (Plain classes, not dataclasses:
    --format is on many scripted `berth` calls and dataclasses cost ~11 ms to import.)"""

    __slots__ = ("decl", "cmds")

    def __init__(self, decl: list[str], cmds: list[list[Any]]) -> None:
        self.decl = decl
        self.cmds = cmds      # each command: list of operands


class Node:
    __slots__ = ("kind", "text", "pipe", "body", "orelse")

    def __init__(self, kind: str, text: str = "", pipe: Pipe | None = None) -> None:
        self.kind = kind      # text, action, if, range, with
        self.text = text
        self.pipe = pipe
        self.body: list[Node] = []
        self.orelse: list[Node] = []


def _parse_operands(toks: list[tuple[str, str]], i: int, stop: str | None) -> tuple[list[list[Any]], int]:
    cmds: list[list[Any]] = [[]]
    while i < len(toks):
        kind, val = toks[i]
        if kind == "punct" and val == ")":
            if stop == ")":
                return cmds, i + 1
            raise TemplateError("unexpected right paren")
        if kind == "punct" and val == "|":
            cmds.append([])
            i += 1
            continue
        if kind == "punct" and val == "(":
            sub, i = _parse_operands(toks, i + 1, ")")
            cmds[-1].append(("pipe", Pipe([], sub)))
            continue
        if kind == "str":
            cmds[-1].append(("lit", json.loads(val) if val.startswith('"') else val[1:-1]))
        elif kind == "num":
            cmds[-1].append(("lit", float(val) if "." in val or "e" in val.lower() else int(val)))
        elif kind == "field":
            cmds[-1].append(("field", [p for p in val.split(".") if p]))
        elif kind == "var":
            name, *chain = val.split(".")
            cmds[-1].append(("var", name, chain))
        elif kind == "ident":
            if val in ("true", "false"):
                cmds[-1].append(("lit", val == "true"))
            elif val == "nil":
                cmds[-1].append(("lit", None))
            else:
                cmds[-1].append(("fn", val))
        else:
            raise TemplateError(f"unexpected {val!r}")
        i += 1
    if stop == ")":
        raise TemplateError("unclosed left paren")
    return cmds, i


def _parse_pipe(text: str) -> Pipe:
    toks = _tokens(text)
    decl: list[str] = []
    # "$x := pipeline" or "$k, $v := pipeline"
    j = 0
    names = []
    while j < len(toks) and toks[j][0] == "var":
        names.append(toks[j][1])
        j += 1
        if j < len(toks) and toks[j] == ("punct", ","):
            j += 1
            continue
        break
    if names and j < len(toks) and toks[j][0] in ("declare", "assign"):
        decl = names
        toks = toks[j + 1:]
    cmds, _ = _parse_operands(toks, 0, None)
    if any(not c for c in cmds):
        raise TemplateError("missing value for command")
    return Pipe(decl, cmds)


def parse(src: str) -> list[Node]:
    parts = _split(src)
    pos = 0

    def block(until: tuple[str, ...]) -> tuple[list[Node], str]:
        nonlocal pos
        nodes: list[Node] = []
        while pos < len(parts):
            kind, val = parts[pos]
            pos += 1
            if kind == "text":
                if val:
                    nodes.append(Node("text", text=val))
                continue
            word = val.split(None, 1)[0] if val else ""
            rest = val[len(word):].strip()
            if word in ("end", "else"):
                if word not in until and not (word == "else" and "else" in until):
                    raise TemplateError(f"unexpected {{{{{word}}}}}")
                if word == "else":
                    return nodes, "else " + rest
                return nodes, "end"
            if word in ("if", "range", "with"):
                nodes.append(control(word, rest))
                continue
            if not val:
                raise TemplateError("missing value for command")
            nodes.append(Node("action", pipe=_parse_pipe(val)))
        if until:
            raise TemplateError("unexpected EOF")
        return nodes, ""

    def control(word: str, rest: str) -> Node:
        node = Node(word, pipe=_parse_pipe(rest))
        node.body, how = block(("end", "else"))
        if how.startswith("else"):
            tail = how[4:].strip()
            if word == "if" and tail.startswith("if "):
                # {{else if X}}: an if nested in the else branch, sharing the one {{end}}
                node.orelse = [control("if", tail[3:].strip())]
            elif tail:
                raise TemplateError(f"unexpected {tail!r} after else")
            else:
                node.orelse, _ = block(("end",))
        return node

    nodes, _ = block(())
    return nodes


# ---------------------------------------------------------------- evaluation
def go_str(v: Any) -> str:
    """Go's fmt %v rendering of a decoded JSON value."""
    if v is NO_VALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v)) if abs(v) < 1e6 else _go_float(v)
        return _go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v[k])}" for k in sorted(v, key=str)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def _go_float(v: float) -> str:
    s = repr(v)
    if "e" in s:
        mant, exp = s.split("e")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mant}e{sign}{abs(int(exp)):02d}"
    if v.is_integer():
        s = f"{v:e}"
        mant, exp = s.split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{exp[0]}{abs(int(exp)):02d}"
    return s


def _truthy(v: Any) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str | list | dict | tuple):
        return len(v) > 0
    return True


def _lookup(v: Any, name: str) -> Any:
    if v is NO_VALUE or v is None:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(v, dict):
        if name in v:
            return v[name]
        for k in v:
            if isinstance(k, str) and k.lower() == name.lower():
                return v[k]
        return NO_VALUE
    attr = getattr(v, name, NO_VALUE)
    if attr is NO_VALUE:
        raise TemplateError(f"can't evaluate field {name} in type {type(v).__name__}")
    return attr() if callable(attr) else attr


def _json(v: Any) -> str:
    if v is NO_VALUE:
        v = None
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, NO_VALUE)
        elif isinstance(v, list | str):
            v = v[int(k)]
        else:
            raise TemplateError(f"can't index item of type {type(v).__name__}")
    return v


def _printf(fmt: str, *args: Any) -> str:
    out = []
    it = iter(args)
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            m = re.match(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqftx%])", fmt[i:])
            if m:
                flags, width, prec, verb = m.groups()
                i += m.end()
                if verb == "%":
                    out.append("%")
                    continue
                a = next(it, NO_VALUE)
                if verb == "d":
                    s = str(int(a))
                elif verb == "f":
                    s = f"{float(a):.{prec or 6}f}"
                elif verb == "q":
                    s = json.dumps(go_str(a))
                elif verb == "t":
                    s = go_str(bool(a))
                elif verb == "x":
                    s = format(int(a), "x") if isinstance(a, int) else go_str(a).encode().hex()
                else:
                    s = go_str(a)
                    if prec:
                        s = s[:int(prec)]
                if width:
                    s = s.ljust(int(width)) if "-" in flags else s.rjust(int(width))
                out.append(s)
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _cmp(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    return go_str(a), go_str(b)


FUNCS: dict[str, Any] = {
    "json": _json,
    "join": lambda lst, sep: sep.join(go_str(x) for x in (lst or [])),
    "split": lambda s, sep: s.split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "index": _index,
    "len": lambda v: len(v) if v not in (None, NO_VALUE) else 0,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "printf": _printf,
    "truncate": lambda s, n: go_str(s)[:int(n)],
    "pad": lambda s, a, b: " " * int(a) + go_str(s) + " " * int(b),
    "eq": lambda a, *bs: any(_cmp(a, b)[0] == _cmp(a, b)[1] for b in bs),
    "ne": lambda a, b: _cmp(a, b)[0] != _cmp(a, b)[1],
    "lt": lambda a, b: _cmp(a, b)[0] < _cmp(a, b)[1],
    "le": lambda a, b: _cmp(a, b)[0] <= _cmp(a, b)[1],
    "gt": lambda a, b: _cmp(a, b)[0] > _cmp(a, b)[1],
    "ge": lambda a, b: _cmp(a, b)[0] >= _cmp(a, b)[1],
    "not": lambda a: not _truthy(a),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
}


class _Scope:
    def __init__(self, root: Any) -> None:
        self.vars: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.vars):
            if name in frame:
                return frame[name]
        raise TemplateError(f'undefined variable "{name}"')

    def set(self, name: str, value: Any) -> None:
        self.vars[-1][name] = value


def _eval_pipe(pipe: Pipe, dot: Any, scope: _Scope) -> Any:
    value: Any = NO_VALUE
    first = True
    for cmd in pipe.cmds:
        value = _eval_cmd(cmd, dot, scope, None if first else value, not first)
        first = False
    for name in pipe.decl[-1:]:
        scope.set(name, value)
    return value


def _operand(op: Any, dot: Any, scope: _Scope) -> Any:
    kind = op[0]
    if kind == "lit":
        return op[1]
    if kind == "field":
        v = dot
        for name in op[1]:
            v = _lookup(v, name)
        return v
    if kind == "var":
        v = scope.get(op[1])
        for name in op[2]:
            v = _lookup(v, name)
        return v
    if kind == "pipe":
        return _eval_pipe(op[1], dot, scope)
    if kind == "fn":
        return _call(op[1], [])
    raise TemplateError(f"bad operand {op!r}")


def _call(name: str, args: list[Any]) -> Any:
    fn = FUNCS.get(name)
    if fn is None:
        raise TemplateError(f'function "{name}" not defined')
    try:
        return fn(*args)
    except TemplateError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise TemplateError(f"error calling {name}: {exc}") from None


def _eval_cmd(cmd: list[Any], dot: Any, scope: _Scope, piped: Any, has_piped: bool) -> Any:
    head = cmd[0]
    if head[0] == "fn":
        args = [_operand(op, dot, scope) for op in cmd[1:]]
        if has_piped:
            args.append(piped)
        return _call(head[1], args)
    if head[0] == "field" and (len(cmd) > 1 or has_piped):
        # a method with arguments, e.g. ps's {{.Label "com.example.key"}}
        target = _operand(head, dot, scope)
        if callable(target):
            args = [_operand(op, dot, scope) for op in cmd[1:]]
            if has_piped:
                args.append(piped)
            return target(*args)
    if len(cmd) > 1 or has_piped:
        raise TemplateError("can't give argument to non-function")
    return _operand(head, dot, scope)


def _render(nodes: list[Node], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            assert node.pipe is not None
            v = _eval_pipe(node.pipe, dot, scope)
            if not node.pipe.decl:
                out.append(go_str(v))
        elif node.kind == "if":
            assert node.pipe is not None
            scope.vars.append({})
            try:
                cond = _eval_pipe(node.pipe, dot, scope)
                _render(node.body if _truthy(cond) else node.orelse, dot, scope, out)
            finally:
                scope.vars.pop()
        elif node.kind == "with":
            assert node.pipe is not None
            scope.vars.append({})
            try:
                v = _eval_pipe(node.pipe, dot, scope)
                if _truthy(v):
                    _render(node.body, v, scope, out)
                else:
                    _render(node.orelse, dot, scope, out)
            finally:
                scope.vars.pop()
        elif node.kind == "range":
            assert node.pipe is not None
            decl = node.pipe.decl
            plain = Pipe([], node.pipe.cmds)
            seq = _eval_pipe(plain, dot, scope)
            if isinstance(seq, dict):
                items = [(k, seq[k]) for k in sorted(seq, key=str)]
            elif isinstance(seq, list | tuple):
                items = list(enumerate(seq))
            elif seq in (None, NO_VALUE):
                items = []
            elif isinstance(seq, int):
                items = [(i, i) for i in range(seq)]
            else:
                raise TemplateError(f"range can't iterate over {go_str(seq)}")
            if not items:
                _render(node.orelse, dot, scope, out)
            for k, v in items:
                scope.vars.append({})
                try:
                    if len(decl) == 2:
                        scope.set(decl[0], k)
                        scope.set(decl[1], v)
                    elif len(decl) == 1:
                        scope.set(decl[0], v)
                    _render(node.body, v, scope, out)
                finally:
                    scope.vars.pop()


class Template:
    def __init__(self, src: str) -> None:
        self.src = src
        try:
            self.nodes = parse(src)
        except TemplateError as exc:
            raise TemplateError(f"template parsing error: template: :1: {exc}") from None

    def render(self, data: Any) -> str:
        out: list[str] = []
        try:
            _render(self.nodes, data, _Scope(data), out)
        except TemplateError as exc:
            raise TemplateError(f"template: :1: executing \"\": {exc}") from None
        return "".join(out)


def render(src: str, data: Any) -> str:
    return Template(src).render(data)
