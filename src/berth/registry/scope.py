"""Docker token-auth scopes: `repository:library/busybox:pull,push`, `registry:catalog:*` (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def covers(self, other: Scope) -> bool:
        return (self.type == other.type and self.name == other.name
                and ("*" in self.actions or set(other.actions) <= set(self.actions)))


def parse_scope(s: str) -> Scope:
    """`type:name:actions`; the name may itself hold colons (a class like `repository(plugin)`
    stays part of the type). ValueError when malformed."""
    first = s.find(":")
    last = s.rfind(":")
    if first <= 0 or last == first:
        raise ValueError(f"invalid scope {s!r}: want type:name:actions")
    typ, name, actions = s[:first], s[first + 1:last], s[last + 1:]
    if "(" in typ:
        typ = typ[:typ.index("(")]
    acts = tuple(a for a in actions.split(",") if a)
    if not name:
        raise ValueError(f"invalid scope {s!r}: empty name")
    return Scope(typ, name, acts)


def parse_scopes(values: list[str]) -> list[Scope]:
    """Several `scope=` values; each may hold several space-separated scopes."""
    out: list[Scope] = []
    for v in values:
        for part in v.split():
            out.append(parse_scope(part))
    return merge(out)


def merge(scopes: list[Scope]) -> list[Scope]:
    """One scope per (type, name) with the union of actions, in first-seen order."""
    acc: dict[tuple[str, str], list[str]] = {}
    for sc in scopes:
        acts = acc.setdefault((sc.type, sc.name), [])
        for a in sc.actions:
            if a not in acts:
                acts.append(a)
    return [Scope(t, n, tuple(a)) for (t, n), a in acc.items()]


def repository(name: str, *actions: str) -> Scope:
    return Scope("repository", name, tuple(actions))


CATALOG = Scope("registry", "catalog", ("*",))
