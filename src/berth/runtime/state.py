"""Per-container runtime state: `<root>/<id>/state.json` plus `exec.fifo` while created.

`State.public()` is the OCI runtime-spec state JSON (`ociVersion, id, status, pid, bundle,
annotations`) with runc's extra `rootfs`, `created` and `owner`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

from berth.runtime.version import OCI_VERSION

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"


@dataclass
class State:
    """A container's state.json: the spec's state fields plus what the runtime needs to find it again."""

    id: str
    bundle: str
    rootfs: str
    pid: int = 0
    status: str = "creating"
    created: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    # private to the runtime
    init_start: int = 0                        # start time (jiffies) of the init, against pid reuse
    cgroup: dict[str, Any] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)  # type -> path to join for exec
    config: dict[str, Any] = field(default_factory=dict)       # the spec as created (hooks, process)
    oci_version: str = OCI_VERSION

    def public(self) -> dict[str, Any]:
        out = {"ociVersion": self.oci_version, "id": self.id, "pid": self.pid, "status": self.status,
               "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created, "owner": ""}
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    def hook_state(self) -> dict[str, Any]:
        out = {"ociVersion": self.oci_version, "id": self.id, "status": self.status, "pid": self.pid,
               "bundle": self.bundle}
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def save(directory: str, state: State) -> None:
    path = os.path.join(directory, STATE_FILE)
    tmp = path + ".tmp"
    # not dataclasses.asdict: it deep-copies the whole config, which is already plain data;
    # json.dumps, not json.dump: only dumps uses the C encoder
    data = json.dumps({f.name: getattr(state, f.name) for f in fields(state)})
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def load(directory: str) -> State:
    with open(os.path.join(directory, STATE_FILE)) as f:
        data = json.load(f)
    known = set(State.__dataclass_fields__)
    return State(**{k: v for k, v in data.items() if k in known})


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat, or 0 if the process is gone; -1 for a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0
    rest = raw[raw.rfind(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return -1
    return int(rest[19])
