"""OCI hooks: run a hook program with the container state on its stdin."""

from __future__ import annotations

import json
import os
import subprocess

from berth.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any


def run(hook, state: dict[str, Any], mount_ns: str | None = None) -> None:
    args = hook.args or [hook.path]
    env = dict(e.partition("=")[::2] for e in hook.env or [])
    preexec = None
    if mount_ns:
        def preexec() -> None:
            from berth import kernel
            fd = os.open(mount_ns, os.O_RDONLY)
            kernel.setns(fd, kernel.CLONE_NEWNS)
            os.close(fd)
    try:
        res = subprocess.run(args, executable=hook.path, input=json.dumps(state).encode(), env=env,
                             capture_output=True, timeout=hook.timeout or None, preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"hook {hook.path} timed out after {hook.timeout}s") from None
    except OSError as exc:
        raise RuntimeFailure(f"hook {hook.path}: {exc.strerror}") from None
    if res.returncode != 0:
        out = (res.stderr or res.stdout).decode(errors="replace").strip()
        raise RuntimeFailure(f"hook {hook.path} exited with status {res.returncode}: {out}")
