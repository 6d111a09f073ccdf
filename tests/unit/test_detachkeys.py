"""berth.detachkeys: Docker's detach-key specs, as moby/term's ToBytes reads them, and the
two callers' errors (the API's 400 wording, the CLI's usage error)."""

from __future__ import annotations

import pytest

from berth import detachkeys
from berth.api.streams import parse_detach_keys as api_parse
from berth.cli.streams import parse_detach_keys as cli_parse
from berth.errors import InvalidParameter


@pytest.mark.parametrize(("spec", "want"), [
    ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("a,ctrl-@", b"a\x00"),
    ("ctrl-a,ctrl-z", b"\x01\x1a"),
    ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"),
    ("A,,", None),            # an empty key is neither a character nor a control name
    ("Q", b"Q"),              # single characters are taken as they are
    ("", b""),                # no detach keys at all
])
def test_parse(spec: str, want: bytes | None) -> None:
    if want is None:
        with pytest.raises(ValueError):
            detachkeys.parse(spec)
    else:
        assert detachkeys.parse(spec) == want


@pytest.mark.parametrize("bad", ["ctrl-pq", "ctrl-P", " ctrl-p", "ctrl-1", "ab"])
def test_bad_keys_name_the_key(bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        detachkeys.parse(f"ctrl-a,{bad}")
    assert str(exc.value) == bad
    with pytest.raises(ValueError, match="invalid detach key"):
        cli_parse(bad)
    with pytest.raises(InvalidParameter, match=r"Invalid detach keys \(.*\) provided"):
        api_parse(bad)


def test_api_default_is_dockers() -> None:
    assert api_parse(None) == b"\x10\x11" == detachkeys.parse(detachkeys.DEFAULT)
