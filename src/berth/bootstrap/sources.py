"""The host's configured Debian mirror, read from apt's sources (never a hard-coded host).

`read_sources()` parses deb822 `*.sources` files and one-line `sources.list` files;
`for_suite(entries, "bookworm")` keeps the binary entries of that release (the suite and
its -updates / -security pockets) and `render_deb822()` writes them for mmdebstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import BootstrapError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class SourceEntry:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = field(default=())   # e.g. ("Signed-By", path)


def parse_deb822(text: str) -> list[SourceEntry]:
    entries = []
    for para in _paragraphs(text):
        if para.get("enabled", "yes").lower() == "no":
            continue
        fields = {k: v.split() for k, v in para.items()}
        opts = tuple((k, v) for k, v in para.items()
                     if k not in ("types", "uris", "suites", "components", "enabled"))
        entries.append(SourceEntry(tuple(fields.get("types", ())), tuple(fields.get("uris", ())),
                                   tuple(fields.get("suites", ())),
                                   tuple(fields.get("components", ())),
                                   tuple((_canon(k), v) for k, v in opts)))
    return entries


def _canon(key: str) -> str:
    return "-".join(w.capitalize() for w in key.split("-"))


def _paragraphs(text: str) -> list[dict[str, str]]:
    paras: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                paras.append(cur)
            cur, last = {}, ""
            continue
        if raw[0] in " \t" and last:
            cur[last] += "\n" + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        cur[last] = value.strip()
    if cur:
        paras.append(cur)
    return paras


def parse_one_line(text: str) -> list[SourceEntry]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        typ, rest = words[0], words[1:]
        opts: list[tuple[str, str]] = []
        if rest and rest[0].startswith("["):
            opt_words = []
            while rest:
                w = rest.pop(0)
                opt_words.append(w.strip("[]"))
                if w.endswith("]"):
                    break
            for ow in " ".join(opt_words).split():
                k, _, v = ow.partition("=")
                if k:
                    opts.append((_canon(k), v))
        if len(rest) < 2:
            continue
        entries.append(SourceEntry((typ,), (rest[0],), (rest[1],), tuple(rest[2:]), tuple(opts)))
    return entries


def read_sources(apt_dir: Path = APT_DIR) -> list[SourceEntry]:
    entries: list[SourceEntry] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        entries += parse_one_line(main.read_text())
    d = apt_dir / "sources.list.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix == ".sources":
                entries += parse_deb822(f.read_text())
            elif f.suffix == ".list":
                entries += parse_one_line(f.read_text())
    return entries


def for_suite(entries: list[SourceEntry], suite: str) -> list[SourceEntry]:
    """Binary entries for `suite` and its pockets (-updates, -security); the rest dropped."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security", f"{suite}/updates"}
    out = []
    for e in entries:
        if "deb" not in e.types:
            continue
        suites = tuple(s for s in e.suites if s in wanted)
        if suites and e.uris:
            out.append(SourceEntry(("deb",), e.uris, suites, e.components or ("main",), e.options))
    if not any(suite in e.suites for e in out):
        configured = sorted({s for e in entries for s in e.suites}) or ["none"]
        raise BootstrapError(f"bootstrap: the configured apt sources (/etc/apt) carry no Debian {suite} "
                         f"entry (suites found: {', '.join(configured)}); recipes build {suite} only")
    return out


def render_deb822(entries: list[SourceEntry]) -> str:
    paras = []
    for e in entries:
        lines = [f"Types: {' '.join(e.types)}", f"URIs: {' '.join(e.uris)}",
                 f"Suites: {' '.join(e.suites)}", f"Components: {' '.join(e.components)}"]
        lines += [f"{k}: {v}" for k, v in e.options]
        paras.append("\n".join(lines) + "\n")
    return "\n".join(paras)


def mirror_uris(entries: list[SourceEntry]) -> list[str]:
    seen: list[str] = []
    for e in entries:
        for u in e.uris:
            if u not in seen:
                seen.append(u)
    return seen


def describe(entries: list[SourceEntry]) -> str:
    """'http://deb.debian.org/debian (bookworm bookworm-updates), http://... (bookworm-security)'."""
    parts = []
    for u in mirror_uris(entries):
        suites = [s for e in entries if u in e.uris for s in e.suites]
        parts.append(f"{u} ({' '.join(dict.fromkeys(suites))})")
    return ", ".join(parts)
