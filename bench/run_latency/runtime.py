"""`berth-runtime run` beside `runc run` and `crun run` on the same busybox bundle.

Usage (as root): .venv/bin/python bench/run_latency/runtime.py [--runs 20] [--cmd true] [--seccomp]

Each runtime runs the bundle's command (`true` by default) `--runs` times, interleaved
(berth, runc, crun, berth, ...) so load changes hit every runtime alike; the script prints
medians and the ratio berth/peer. The bundle is runc's default spec with terminal off and
the busybox rootfs from tests/support.py. berth-runtime is called through its console
script, as dockerd/containerd call it; the interpreter's own start-up (`python -c pass`,
started like the launchers: `python3 -I -c pass`) is printed for reference, and so is
`floor.py`: the least a Python runtime does to run the bundle (no devices, masked paths,
capabilities, seccomp or state), started the same way: the part of the gap to runc that
any Python runtime pays on this machine.
Everything is measured twice: back to back, and as lone starts 200 ms apart. The kernel's
cgroup-attach wait (an RCU grace period) is often skipped back to back, since the previous
run's moves keep its fast path open, and paid by a lone start, as by most real container
starts; runc pays it on its critical path, berth-runtime behind its imports.
Byte-code is compiled first so no run pays for compiling. `--seccomp` gives the bundle
Docker's default seccomp profile (as berthd's containers have it, no_new_privileges off).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from berth.runtime import spec  # noqa: E402
from support import busybox_rootfs_tar, remove_cgroup_tree  # noqa: E402

VENV = REPO / ".venv" / "bin"
# Moving a process into a cgroup waits for an RCU grace period, unless another move happened
# within about one: back-to-back runs often skip that wait, a lone start pays it
LONE_GAP = 0.2
FLOOR = Path(__file__).resolve().parent / "floor.py"


def make_bundle(base: Path, cmd: list[str], with_seccomp: bool = False) -> Path:
    bundle = base / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    tar_path = busybox_rootfs_tar(base / "busybox.tar")
    with tarfile.open(tar_path) as tar:
        tar.extractall(bundle / "rootfs")
    sp = spec.default_spec()
    sp.process.terminal = False
    sp.process.args = cmd
    sp.linux.cgroups_path = f"/berth-bench-{os.getpid()}/c"
    if with_seccomp:
        from berth.runtime import seccomp
        sp.linux.seccomp = seccomp.docker_default(sp.process.capabilities.bounding)
        sp.process.no_new_privileges = False
    spec.dump(sp, str(bundle))
    return bundle


def time_once(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    res = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {res.stderr.decode(errors='replace')}")
    return elapsed * 1000


def measure(runtimes: dict[str, list[str]], bundle: Path, base: Path, runs: int, gap: float) -> dict[str, float]:
    """Median ms per runtime (and the floor, and the bare interpreter), runs interleaved,
    each start `gap` seconds after the previous one ended."""
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    times["python floor"] = []
    times["python -c pass"] = []
    for i in range(runs + 1):  # the first round warms caches and is dropped
        argvs = {name: [*exe, "--root", str(base / f"state-{name}"), "run", f"bench{gap}-{i}"]
                 for name, exe in runtimes.items()}
        argvs["python floor"] = [str(VENV / "python3"), "-I", str(FLOOR), str(bundle),
                                 f"/berth-bench-{os.getpid()}/floor{i}"]
        argvs["python -c pass"] = [str(VENV / "python3"), "-I", "-c", "pass"]
        for name, argv in argvs.items():
            time.sleep(gap)
            ms = time_once(argv, bundle)
            if i:
                times[name].append(ms)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cmd", default="true")
    ap.add_argument("--seccomp", action="store_true", help="Docker's default seccomp profile")
    args = ap.parse_args()
    compileall.compile_dir(str(REPO / "src" / "berth"), quiet=1)
    base = Path(tempfile.mkdtemp(prefix="berth-bench-rt-", dir="/var/tmp"))
    try:
        bundle = make_bundle(base, args.cmd.split(), args.seccomp)
        runtimes = {"berth-runtime": [str(VENV / "berth-runtime")]}
        skipped = {}
        for peer in ("runc", "crun"):
            exe = shutil.which(peer)
            if not exe:
                continue
            try:  # crun refuses hybrid cgroup hosts (v1 controllers + a v2 mount), like this one
                time_once([exe, "--root", str(base / f"state-{peer}"), "run", "probe"], bundle)
                runtimes[peer] = [exe]
            except RuntimeError as exc:
                skipped[peer] = str(exc).strip().splitlines()[-1]
        profile = ", Docker's seccomp profile" if args.seccomp else ""
        print(f"runtime run latency, bundle busybox `{args.cmd}`{profile}, {args.runs} runs each (median ms)")
        report: dict[str, dict[str, float]] = {}
        for label, gap in (("back to back", 0.0), (f"lone starts, {LONE_GAP * 1000:.0f} ms apart", LONE_GAP)):
            med = measure(runtimes, bundle, base, args.runs, gap)
            report[label] = med
            print(f" {label}:")
            for name, m in med.items():
                print(f"  {name:<16} {m:8.1f} ms")
            for peer in ("runc", "crun"):
                if peer in med:
                    print(f"  ratio berth-runtime/{peer}: {med['berth-runtime'] / med[peer]:.2f}")
            if "runc" in med:
                print(f"  ratio python floor/runc: {med['python floor'] / med['runc']:.2f}   "
                      "(the least any Python runtime pays here: floor.py)")
            # informational: what berth-runtime itself adds on top of starting the interpreter
            own = med["berth-runtime"] - med["python -c pass"]
            print(f"  berth-runtime minus interpreter start-up: {own:.1f} ms")
        for peer, why in skipped.items():
            print(f"  {peer}: skipped ({why})")
        print(json.dumps({"median_ms": report, "skipped": skipped}))
    finally:
        remove_cgroup_tree(f"berth-bench-{os.getpid()}")
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
