"""cgroup v1 manager: one directory per hierarchy (memory, cpu, cpuset, pids, freezer, ...)."""

from __future__ import annotations

import errno
import os
import time

from berth.runtime.cgroups import _read, _write, cgroup_mounts, own_cgroups
from berth.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any


# OCI blockIO throttle key -> blkio file
_THROTTLES = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
              ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
              ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
              ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"))


def _apply_blkio(d: str, bio: dict[str, Any]) -> None:
    """linux.resources.blockIO on a v1 blkio directory (BFQ's files where CFQ's are gone)."""
    def weight_file(cfq: str, bfq: str) -> str:
        return os.path.join(d, cfq if os.path.exists(os.path.join(d, cfq)) else bfq)

    if bio.get("weight"):
        _write(weight_file("blkio.weight", "blkio.bfq.weight"), str(bio["weight"]))
    for dev in bio.get("weightDevice") or []:
        _write(weight_file("blkio.weight_device", "blkio.bfq.weight_device"),
               f"{dev['major']}:{dev['minor']} {dev['weight']}")
    for key, name in _THROTTLES:
        for dev in bio.get(key) or []:
            _write(os.path.join(d, name), f"{dev['major']}:{dev['minor']} {dev['rate']}")


class V1Manager:
    """`paths` maps a hierarchy key (its controllers, e.g. 'memory', 'name=systemd', or
    'unified' for a hybrid host's v2 tree) to the container's directory in it."""

    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = paths

    @classmethod
    def for_path(cls, cgpath: str) -> V1Manager:
        own = None
        paths: dict[str, str] = {}
        for fstype, mnt, root, opts in cgroup_mounts():
            if fstype == "cgroup2":
                key = "unified"
                own_key = ""
            else:
                ctrls = [o for o in opts.split(",") if o not in ("rw", "ro") and not o.startswith(
                    ("relatime", "noatime", "nosuid", "nodev", "noexec", "xattr", "release_agent",
                     "clone_children", "noprefix", "cpuset_v2_mode"))]
                if not ctrls:
                    continue
                key = ",".join(ctrls)
                own_key = key
            if key in paths:
                continue
            if cgpath.startswith("/"):
                full = cgpath
            else:
                if own is None:
                    own = own_cgroups()
                full = os.path.join(own.get(own_key, "/"), cgpath)
            rel = full
            if root != "/" and full.startswith(root):
                rel = full[len(root):]
            paths[key] = os.path.normpath(mnt + "/" + rel.lstrip("/"))
        if not paths:
            raise RuntimeFailure("no cgroup hierarchies are mounted under /sys/fs/cgroup")
        return cls(paths)

    def _dir(self, ctrl: str) -> str | None:
        for key, path in self.paths.items():
            if ctrl in key.split(","):
                return path
        return None

    def to_state(self) -> dict[str, Any]:
        return {"version": 1, "paths": self.paths}

    def create(self) -> None:
        for key, path in self.paths.items():
            if "cpuset" in key.split(","):
                self._make_cpuset(path)
            else:
                os.makedirs(path, exist_ok=True)

    @staticmethod
    def _make_cpuset(path: str) -> None:
        """A new cpuset cgroup starts with empty cpus/mems: copy them down from the parent at
        every level (idempotent, so concurrent creates below one parent are safe)."""
        parent = os.path.dirname(path)
        if not os.path.exists(os.path.join(parent, "cpuset.cpus")):
            V1Manager._make_cpuset(parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not _read(os.path.join(path, name)).strip():
                value = _read(os.path.join(parent, name)).strip()
                if not value:  # the parent is being made by someone else right now
                    V1Manager._make_cpuset(parent)
                    value = _read(os.path.join(parent, name)).strip()
                _write(os.path.join(path, name), value)

    def apply(self, resources: Any) -> None:
        if resources is None:
            return
        mem = resources.memory
        d = self._dir("memory")
        if mem is not None and d:
            if mem.limit is not None and mem.limit > 0:
                # the memsw limit must be >= the memory limit at every step
                swap = mem.swap if mem.swap is not None else None
                memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
                has_memsw = os.path.exists(memsw)
                if has_memsw and swap not in (None, 0):
                    _write(memsw, "-1")
                _write(os.path.join(d, "memory.limit_in_bytes"), str(mem.limit))
                if has_memsw and swap is not None and swap != 0:
                    _write(memsw, str(swap))
            if mem.reservation:
                _write(os.path.join(d, "memory.soft_limit_in_bytes"), str(mem.reservation))
            if mem.swappiness is not None and 0 <= mem.swappiness <= 100:
                _write(os.path.join(d, "memory.swappiness"), str(mem.swappiness))
            if mem.disable_oom_killer:
                _write(os.path.join(d, "memory.oom_control"), "1")
        cpu = resources.cpu
        if cpu is not None:
            d = self._dir("cpu")
            if d:
                if cpu.shares:
                    _write(os.path.join(d, "cpu.shares"), str(cpu.shares))
                if cpu.period:
                    _write(os.path.join(d, "cpu.cfs_period_us"), str(cpu.period))
                if cpu.quota:
                    _write(os.path.join(d, "cpu.cfs_quota_us"), str(cpu.quota))
                # the period first: the kernel checks runtime <= period
                if cpu.realtime_period:
                    _write(os.path.join(d, "cpu.rt_period_us"), str(cpu.realtime_period))
                if cpu.realtime_runtime:
                    _write(os.path.join(d, "cpu.rt_runtime_us"), str(cpu.realtime_runtime))
            d = self._dir("cpuset")
            if d:
                if cpu.cpus:
                    _write(os.path.join(d, "cpuset.cpus"), cpu.cpus)
                if cpu.mems:
                    _write(os.path.join(d, "cpuset.mems"), cpu.mems)
        d = self._dir("pids")
        if resources.pids is not None and d:
            limit = resources.pids.limit
            _write(os.path.join(d, "pids.max"), "max" if limit <= 0 else str(limit))
        d = self._dir("blkio")
        if resources.block_io and d:
            _apply_blkio(d, resources.block_io)
        d = self._dir("devices")
        if resources.devices and d:
            from berth.runtime.devices import cgroup_rules
            rules = cgroup_rules(resources.devices)
            for rule in rules:
                kind = rule.type or "a"
                major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
                minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
                access = rule.access or "rwm"
                line = "a" if kind == "a" and major == "*" and minor == "*" and access == "rwm" \
                    else f"{kind} {major}:{minor} {access}"
                _write(os.path.join(d, "devices.allow" if rule.allow else "devices.deny"), line)

    def add(self, pid: int) -> None:
        for path in self.paths.values():
            _write(os.path.join(path, "cgroup.procs"), str(pid))

    def procs(self) -> list[int]:
        path = self._dir("pids") or self._dir("freezer") or next(iter(self.paths.values()))
        try:
            return [int(x) for x in _read(os.path.join(path, "cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def _freezer(self) -> str:
        d = self._dir("freezer")
        if not d:
            raise RuntimeFailure("the freezer cgroup controller is not available")
        return d

    def freeze(self) -> None:
        d = self._freezer()
        _write(os.path.join(d, "freezer.state"), "FROZEN")
        for _ in range(2000):
            if _read(os.path.join(d, "freezer.state")).strip() == "FROZEN":
                return
            time.sleep(0.001)
        raise RuntimeFailure("cgroup freezer did not reach FROZEN")

    def thaw(self) -> None:
        _write(os.path.join(self._freezer(), "freezer.state"), "THAWED")

    def frozen(self) -> bool:
        d = self._dir("freezer")
        if not d:
            return False
        try:
            return _read(os.path.join(d, "freezer.state")).strip() != "THAWED"
        except FileNotFoundError:
            return False

    def oom_killed(self) -> bool:
        d = self._dir("memory")
        if not d:
            return False
        try:
            for line in _read(os.path.join(d, "memory.oom_control")).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except FileNotFoundError:
            pass
        return False

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}

        def num(ctrl: str, name: str) -> int | None:
            d = self._dir(ctrl)
            try:
                return int(_read(os.path.join(d, name)).split()[0]) if d else None
            except (OSError, ValueError, IndexError):
                return None

        stat: dict[str, int] = {}
        d = self._dir("memory")
        if d:
            try:
                for line in _read(os.path.join(d, "memory.stat")).splitlines():
                    k, _, v = line.partition(" ")
                    stat[k] = int(v)
            except (OSError, ValueError):
                pass
        out["memory"] = {"usage": num("memory", "memory.usage_in_bytes"),
                         "max_usage": num("memory", "memory.max_usage_in_bytes"),
                         "limit": num("memory", "memory.limit_in_bytes"),
                         "failcnt": num("memory", "memory.failcnt"), "stats": stat}
        percpu = []
        d = self._dir("cpuacct")
        if d:
            try:
                percpu = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu")).split()]
            except (OSError, ValueError):
                pass
        cpu_stat: dict[str, int] = {}
        d = self._dir("cpu")
        if d:
            try:
                for line in _read(os.path.join(d, "cpu.stat")).splitlines():
                    k, _, v = line.partition(" ")
                    cpu_stat[k] = int(v)
            except (OSError, ValueError):
                pass
        out["cpu"] = {"usage": {"total": num("cpuacct", "cpuacct.usage"), "percpu": percpu,
                                "user": None, "kernel": None},
                      "throttling": {"periods": cpu_stat.get("nr_periods"),
                                     "throttled_periods": cpu_stat.get("nr_throttled"),
                                     "throttled_time": cpu_stat.get("throttled_time")}}
        d = self._dir("cpuacct")
        if d:
            try:
                parts = dict(line.split() for line in _read(os.path.join(d, "cpuacct.stat")).splitlines())
                tick = 10_000_000  # ns per USER_HZ tick (100 Hz)
                out["cpu"]["usage"]["user"] = int(parts.get("user", 0)) * tick
                out["cpu"]["usage"]["kernel"] = int(parts.get("system", 0)) * tick
            except (OSError, ValueError):
                pass
        pmax = None
        d = self._dir("pids")
        if d:
            try:
                raw = _read(os.path.join(d, "pids.max")).strip()
                pmax = 0 if raw == "max" else int(raw)
            except (OSError, ValueError):
                pass
        out["pids"] = {"current": num("pids", "pids.current"), "limit": pmax}
        return out

    def destroy(self) -> None:
        """Remove the container's directories; retries while the kernel still lists exiting
        tasks. Raises RuntimeFailure if a directory stays busy."""
        busy = []
        for path in self.paths.values():
            for attempt in range(200):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or attempt == 199:
                        busy.append(f"{path}: {exc.strerror}")
                        break
                    time.sleep(0.005)
        if busy:
            raise RuntimeFailure("cannot remove cgroups: " + "; ".join(busy))
