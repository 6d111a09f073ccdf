"""Reading the configured Debian mirror from apt sources (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.bootstrap.errors import BootstrapError
from berth.bootstrap.sources import (
    describe,
    for_suite,
    mirror_uris,
    parse_deb822,
    parse_one_line,
    read_sources,
    render_deb822,
)

DEB822 = """Types: deb deb-src
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://other.example/x
Suites: trixie
Components: main
Enabled: no
"""


def test_deb822_parsed_and_filtered() -> None:
    entries = parse_deb822(DEB822)
    assert len(entries) == 2
    kept = for_suite(entries, "bookworm")
    assert [e.suites for e in kept] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    assert mirror_uris(kept) == ["http://mirror.example/debian", "http://mirror.example/debian-security"]
    text = render_deb822(kept)
    assert "Types: deb\n" in text and "deb-src" not in text and "backports" not in text
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text
    assert parse_deb822(text) == kept
    assert describe(kept) == ("http://mirror.example/debian (bookworm bookworm-updates), "
                              "http://mirror.example/debian-security (bookworm-security)")


def test_one_line_format() -> None:
    entries = parse_one_line("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
                             "deb-src http://m.example/debian bookworm main\n# deb http://x bullseye main\n")
    kept = for_suite(entries, "bookworm")
    assert len(kept) == 1
    assert kept[0].uris == ("http://m.example/debian",)
    assert ("Signed-By", "/k.gpg") in kept[0].options


def test_missing_suite_is_an_error() -> None:
    with pytest.raises(BootstrapError, match="no Debian bookworm"):
        for_suite(parse_one_line("deb http://m.example/debian trixie main\n"), "bookworm")


def test_read_sources_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text("deb http://m2.example/debian bookworm main\n")
    uris = mirror_uris(for_suite(read_sources(tmp_path), "bookworm"))
    assert uris[0] == "http://m2.example/debian"
    assert "http://mirror.example/debian" in uris
