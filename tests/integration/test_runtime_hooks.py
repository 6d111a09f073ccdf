"""OCI hooks run at the right moments with the container state on stdin."""

from __future__ import annotations

import json
import os

import pytest
from test_runtime_container import assert_clean, box, rt  # noqa: F401 - shared fixtures
from test_runtime_support import read_all, wait_pid, write

from berth.runtime import spec
from berth.runtime.errors import RuntimeFailure

pytestmark = [pytest.mark.root]


def _hook(out: str, extra: str = "") -> spec.Hook:
    return spec.Hook(path="/bin/sh", args=["sh", "-c", f"cat > {out}{extra}"])


def test_hooks_lifecycle(rt, box, run_names):  # noqa: F811
    cid, bundle, sp = box(["sh", "-c", "cat /hook-started 2>/dev/null || echo none"])
    d = run_names.root / f"hooks-{cid}"
    d.mkdir()
    sp.hooks = spec.Hooks(
        prestart=[_hook(f"{d}/prestart")],
        create_runtime=[_hook(f"{d}/create_runtime", "; readlink /proc/self/ns/mnt > " + f"{d}/cr_ns")],
        create_container=[spec.Hook(path="/bin/sh", args=["sh", "-c", f"readlink /proc/self/ns/mnt > {d}/cc_ns"])],
        start_container=[spec.Hook(path="/bin/sh", args=["sh", "-c", "cat > /hook-started"])],
        poststart=[_hook(f"{d}/poststart")],
        poststop=[_hook(f"{d}/poststop")])
    write(bundle, sp)
    r, w = os.pipe()
    pid = rt.create(cid, str(bundle), stdio=(0, w, 2))
    os.close(w)
    for name in ("prestart", "create_runtime"):
        state = json.loads((d / name).read_text())
        assert (state["id"], state["pid"], state["status"], state["bundle"]) == (cid, pid, "creating", str(bundle))
    assert (d / "cr_ns").read_text() == os.readlink("/proc/self/ns/mnt") + "\n"   # runtime's namespace
    assert (d / "cc_ns").read_text() == os.readlink(f"/proc/{pid}/ns/mnt") + "\n"  # container's
    assert not (d / "poststart").exists()
    rt.start(cid)
    (out,) = read_all([r])
    os.close(r)
    assert wait_pid(pid) == 0
    started = json.loads(out)  # the startContainer hook ran inside, with the state on stdin
    assert (started["id"], started["status"]) == (cid, "running")
    assert json.loads((d / "poststart").read_text())["status"] == "running"
    rt.delete(cid)
    assert json.loads((d / "poststop").read_text())["status"] == "stopped"
    assert_clean(rt, cid)


def test_failing_prestart_hook_fails_create_and_leaves_nothing(rt, box):  # noqa: F811
    cid, bundle, sp = box(["true"])
    sp.hooks = spec.Hooks(prestart=[spec.Hook(path="/bin/sh", args=["sh", "-c", "echo nope >&2; exit 7"])])
    write(bundle, sp)
    with pytest.raises(RuntimeFailure, match="exited with status 7: nope"):
        rt.create(cid, str(bundle), stdio=(0, 1, 2))
    assert_clean(rt, cid)
