"""The shim's wire protocol: one JSON object per line over shims/<id>/shim.sock.

Requests carry `op` (start, state, kill, wait, exec, exec_state, attach, resize, shutdown)
and answer with one line `{"ok": true, ...}` or `{"ok": false, "error": msg, "kind": cls}`.
After a successful `attach` (or `exec` with `attach`) the connection becomes a raw stream:
client -> shim is the process' stdin (half-close = stdin EOF), shim -> client is the output,
framed as Docker's 8-byte multiplexed frames unless the process has a terminal.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

STDIN, STDOUT, STDERR = 0, 1, 2


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream frame: [stream, 0, 0, 0, size(be32)] + payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return json.loads(line)


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


@dataclass
class ShimConfig:
    id: str
    bundle: str                 # containers/<id> (config.json inside)
    runtime_root: str           # Runtime(root=...)
    socket: str                 # shims/<id>/shim.sock
    log_path: str               # containers/<id>/<id>-json.log
    exit_path: str              # containers/<id>/exit.json
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    log_max_size: int = 0       # bytes, 0 = unlimited
    log_max_files: int = 1      # json-file max-file: the log and max_files - 1 rotated ones
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, s: str | bytes) -> ShimConfig:
        return cls(**json.loads(s))
