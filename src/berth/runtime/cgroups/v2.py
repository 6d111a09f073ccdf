"""cgroup v2 manager: one directory in the unified hierarchy."""

from __future__ import annotations

import errno
import os
import time

from berth.runtime.cgroups import _read, _write, cgroup_mounts, own_cgroups
from berth.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc uses."""
    if shares <= 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


class V2Manager:
    def __init__(self, path: str, mount: str = "/sys/fs/cgroup") -> None:
        self.path = path
        self.mount = mount

    @classmethod
    def for_path(cls, cgpath: str, mount: str | None = None) -> V2Manager:
        if mount is None:
            mount = "/sys/fs/cgroup"
            for fstype, mnt, _root, _opts in ([] if os.path.exists("/sys/fs/cgroup/cgroup.controllers")
                                              else cgroup_mounts()):
                if fstype == "cgroup2":
                    mount = mnt
                    break
        if not cgpath.startswith("/"):
            cgpath = os.path.join(own_cgroups().get("", "/"), cgpath)
        return cls(os.path.normpath(mount + "/" + cgpath.lstrip("/")), mount)

    def to_state(self) -> dict[str, Any]:
        return {"version": 2, "path": self.path, "mount": self.mount}

    def create(self) -> None:
        # enable the available controllers on every ancestor so the leaf gets them
        rel = os.path.relpath(self.path, self.mount)
        cur = self.mount
        for part in rel.split("/")[:-1] if rel != "." else []:
            self._enable_controllers(cur)
            cur = os.path.join(cur, part)
            os.makedirs(cur, exist_ok=True)
        self._enable_controllers(cur)
        os.makedirs(self.path, exist_ok=True)

    @staticmethod
    def _enable_controllers(path: str) -> None:
        try:
            avail = _read(os.path.join(path, "cgroup.controllers")).split()
        except OSError:
            return
        for ctrl in avail:
            if ctrl in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb"):
                try:
                    with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                        f.write("+" + ctrl)
                except OSError:
                    pass

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def apply(self, resources: Any) -> None:
        if resources is None:
            return
        mem = resources.memory
        if mem is not None:
            if mem.limit is not None and mem.limit != 0:
                _write(self._file("memory.max"), "max" if mem.limit < 0 else str(mem.limit))
                if mem.swap is not None and mem.swap != 0 and os.path.exists(self._file("memory.swap.max")):
                    # v1 semantics: swap is memory+swap; v2 counts swap alone
                    value = "max" if mem.swap < 0 else str(max(mem.swap - mem.limit, 0))
                    _write(self._file("memory.swap.max"), value)
            if mem.reservation:
                _write(self._file("memory.low"), str(mem.reservation))
        cpu = resources.cpu
        if cpu is not None:
            if cpu.shares:
                _write(self._file("cpu.weight"), str(shares_to_weight(cpu.shares)))
            if cpu.quota or cpu.period:
                quota = "max" if not cpu.quota or cpu.quota < 0 else str(cpu.quota)
                _write(self._file("cpu.max"), f"{quota} {cpu.period or 100000}")
            if cpu.cpus:
                _write(self._file("cpuset.cpus"), cpu.cpus)
            if cpu.mems:
                _write(self._file("cpuset.mems"), cpu.mems)
        if resources.pids is not None:
            limit = resources.pids.limit
            _write(self._file("pids.max"), "max" if limit <= 0 else str(limit))
        if resources.block_io:
            self._apply_io(resources.block_io)
        for key, value in (resources.unified or {}).items():
            _write(self._file(key), value)
        if resources.devices:
            # v2 has no devices.allow: access control is an eBPF program on the cgroup
            from berth.runtime.cgroups import devices_bpf
            from berth.runtime.devices import cgroup_rules
            rules = cgroup_rules(resources.devices)
            try:
                devices_bpf.attach(self.path, rules)
            except OSError as exc:
                raise RuntimeFailure(f"cgroup {self.path}: cannot install the device filter: {exc}") from None

    def _apply_io(self, bio: dict[str, Any]) -> None:
        """linux.resources.blockIO: BFQ's weights where the kernel has them (same 10-1000
        scale), else io.weight (1-10000, converted as runc does); throttles in io.max."""
        bfq = os.path.exists(self._file("io.bfq.weight"))
        name = "io.bfq.weight" if bfq else "io.weight"

        def scaled(w: int) -> int:
            return w if bfq else 1 + (w - 10) * 9999 // 990

        if bio.get("weight"):
            _write(self._file(name), str(scaled(bio["weight"])))
        for dev in bio.get("weightDevice") or []:
            _write(self._file(name), f"{dev['major']}:{dev['minor']} {scaled(dev['weight'])}")
        for key, limit in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                           ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for dev in bio.get(key) or []:
                _write(self._file("io.max"), f"{dev['major']}:{dev['minor']} {limit}={dev['rate']}")

    def add(self, pid: int) -> None:
        _write(self._file("cgroup.procs"), str(pid))

    def procs(self) -> list[int]:
        try:
            return [int(x) for x in _read(self._file("cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def freeze(self) -> None:
        _write(self._file("cgroup.freeze"), "1")
        for _ in range(2000):
            if "frozen 1" in _read(self._file("cgroup.events")):
                return
            time.sleep(0.001)
        raise RuntimeFailure("cgroup did not become frozen")

    def thaw(self) -> None:
        _write(self._file("cgroup.freeze"), "0")

    def frozen(self) -> bool:
        try:
            return _read(self._file("cgroup.freeze")).strip() == "1"
        except FileNotFoundError:
            return False

    def _kv(self, name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            for line in _read(self._file(name)).splitlines():
                k, _, v = line.partition(" ")
                try:
                    out[k] = int(v)
                except ValueError:
                    pass
        except OSError:
            pass
        return out

    def oom_killed(self) -> bool:
        return self._kv("memory.events").get("oom_kill", 0) > 0

    def stats(self) -> dict[str, Any]:
        def num(name: str) -> int | None:
            try:
                raw = _read(self._file(name)).strip()
                return 0 if raw == "max" else int(raw)
            except (OSError, ValueError):
                return None

        cpu = self._kv("cpu.stat")
        return {
            "memory": {"usage": num("memory.current"), "max_usage": num("memory.peak"),
                       "limit": num("memory.max"), "failcnt": self._kv("memory.events").get("max"),
                       "stats": self._kv("memory.stat")},
            "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000 if cpu else None, "percpu": [],
                              "user": cpu.get("user_usec", 0) * 1000 if cpu else None,
                              "kernel": cpu.get("system_usec", 0) * 1000 if cpu else None},
                    "throttling": {"periods": cpu.get("nr_periods"),
                                   "throttled_periods": cpu.get("nr_throttled"),
                                   "throttled_time": cpu.get("throttled_usec", 0) * 1000 if cpu else None}},
            "pids": {"current": num("pids.current"), "limit": num("pids.max")},
        }

    def destroy(self) -> None:
        for attempt in range(200):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 199:
                    raise RuntimeFailure(f"cannot remove cgroup {self.path}: {exc.strerror}") from None
                time.sleep(0.005)
