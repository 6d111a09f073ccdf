"""Docker's detach-key sequences (`--detach-keys`, the API's `detachKeys`), shared by the
daemon's attach streams and the CLI's terminal.

A spec is comma-separated keys, each one character or a control name `ctrl-@`, `ctrl-a` ..
`ctrl-z`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`, `ctrl-_` (as moby/term's ToBytes: exact
spelling, no spaces, no upper-case control names).
"""

from __future__ import annotations

DEFAULT = "ctrl-p,ctrl-q"

# ctrl-@ is 0, ctrl-a 1 .. ctrl-z 26, then ctrl-[ ctrl-\ ctrl-] ctrl-^ ctrl-_ (27..31)
_CONTROL = {f"ctrl-{c}": code for code, c in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


def parse(spec: str) -> bytes:
    """The byte sequence of `spec` ("" gives b"": no detaching). Raises ValueError naming the
    first key that is neither one character nor a control name."""
    if spec == "":
        return b""
    out = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            out.append(ord(key))
        elif key in _CONTROL:
            out.append(_CONTROL[key])
        else:
            raise ValueError(key)
    return bytes(out)
