"""Build benchmark: berth beside Debian's dockerd (legacy builder and BuildKit) and podman.

The Dockerfile:

    FROM busybox
    RUN echo hi > /x
    COPY f /f
    CMD ["cat","/x"]

is built cold (`--no-cache`, base image present) and cached (a rebuild with nothing
changed) by each builder in the same run, on the same busybox base (imported from Debian's
busybox-static). Each figure is the median wall-clock time of the client command
(`docker build` with Debian's docker CLI, or `podman build`), so client start-up is in
every figure alike. Every daemon gets its own data root, exec root, socket and bridge and
is stopped (by PID) and cleaned up at the end.

Usage: .venv/bin/python bench/build/bench_build.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from benchlib import timed  # noqa: E402

from fixtures.daemon import _cleanup_host, start_daemon  # noqa: E402
from fixtures.dockerd import start_dockerd, stop_dockerd  # noqa: E402
from support import busybox_rootfs_tar, new_run_names  # noqa: E402

DOCKER = "/usr/bin/docker"   # Debian's CLI: legacy builder and the built-in BuildKit client
PODMAN = "/usr/bin/podman"
DOCKERFILE = 'FROM busybox\nRUN echo hi > /x\nCOPY f /f\nCMD ["cat","/x"]\n'


def builds(client: list[str], tag: str, ctx: Path, env: dict[str, str],
           opts: tuple[str, ...] = ()) -> Callable[[bool], float]:
    """`client build -q [opts] [--no-cache] -t tag ctx`, timed: cold (True) or cached."""
    return lambda cold: timed([*client, "build", "-q", *opts, *(["--no-cache"] if cold else []), "-t", tag,
                               str(ctx)], env, timeout=300)


def measure(build: Callable[[bool], float], runs: int) -> tuple[float, float]:
    """(median cold, median cached) in seconds; one warm-up build first."""
    build(False)
    cold = [build(True) for _ in range(runs)]
    build(False)
    cached = [build(False) for _ in range(runs)]
    return statistics.median(cold), statistics.median(cached)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip", action="append", default=[], choices=["legacy", "buildkit", "podman"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (it starts berthd, dockerd and podman)", file=sys.stderr)
        return 2

    names = new_run_names()
    names.root.mkdir(parents=True)
    ctx = Path(tempfile.mkdtemp(prefix="ctx-", dir=names.root))
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "f").write_text("payload\n")
    bb_tar = busybox_rootfs_tar(names.root / "busybox.tar")
    results: dict[str, tuple[float, float]] = {}
    berth = dockerd = None
    podman_root = names.root / "podman"
    try:
        berth = start_daemon(names)
        env_b = dict(berth.env, DOCKER_BUILDKIT="0")
        subprocess.run([DOCKER, "import", str(bb_tar), "busybox:latest"], env=env_b, check=True,
                       capture_output=True)
        results["berth (legacy API)"] = measure(builds([DOCKER], "bench:b", ctx, env_b), args.runs)

        if not {"legacy", "buildkit"} <= set(args.skip):
            dockerd = start_dockerd(names)
            subprocess.run([DOCKER, "import", str(bb_tar), "busybox:latest"], env=dockerd.env, check=True,
                           capture_output=True)
            if "legacy" not in args.skip:
                env_l = dict(dockerd.env, DOCKER_BUILDKIT="0")
                results["dockerd legacy"] = measure(builds([DOCKER], "bench:l", ctx, env_l), args.runs)
            if "buildkit" not in args.skip:
                env_k = dict(dockerd.env, DOCKER_BUILDKIT="1")
                results["dockerd BuildKit"] = measure(builds([DOCKER], "bench:k", ctx, env_k), args.runs)

        if "podman" not in args.skip:
            pod = [PODMAN, "--root", str(podman_root / "root"), "--runroot", str(podman_root / "run"),
                   "--tmpdir", str(podman_root / "tmp"), "--cgroup-manager", "cgroupfs",
                   "--events-backend", "file", "--storage-driver", "overlay", "--runtime", "/usr/bin/runc"]
            env_p = dict(os.environ, TMPDIR=str(podman_root / "tmp"))
            (podman_root / "tmp").mkdir(parents=True, exist_ok=True)
            subprocess.run([*pod, "import", str(bb_tar), "docker.io/library/busybox:latest"], env=env_p,
                           check=True, capture_output=True)
            results["podman"] = measure(builds(pod, "bench:p", ctx, env_p, ("--network", "host")), args.runs)
    finally:
        if berth is not None:
            berth.stop()
        _cleanup_host(names)
        if dockerd is not None:
            stop_dockerd(dockerd)
        if podman_root.exists():
            subprocess.run([PODMAN, "--root", str(podman_root / "root"), "--runroot", str(podman_root / "run"),
                            "system", "reset", "--force"], capture_output=True, timeout=120)
            subprocess.run(["umount", "-R", str(podman_root)], capture_output=True)
        shutil.rmtree(names.root, ignore_errors=True)

    print(f"build benchmark: median of {args.runs} runs, wall clock of the client command")
    print(f"  Dockerfile: {DOCKERFILE.strip().replace(chr(10), ' / ')}")
    print(f"  {'builder':<22}{'cold (--no-cache)':>20}{'cached rebuild':>18}")
    for k, (c, r) in results.items():
        print(f"  {k:<22}{c * 1000:>17.0f} ms{r * 1000:>15.0f} ms")
    b_cold, b_cached = results["berth (legacy API)"]
    print("ratios (berth / peer; below 1.00 means berth is faster):")
    for k, (c, r) in results.items():
        if k.startswith("berth"):
            continue
        print(f"  vs {k:<20} cold {b_cold / c:5.2f}   cached {b_cached / r:5.2f}")
    if "dockerd legacy" in results and "dockerd BuildKit" in results:
        ok_cached = b_cached <= results["dockerd legacy"][1]
        ok_cold = b_cold <= results["dockerd BuildKit"][0]
        print(f"targets: cached <= dockerd's: {'met' if ok_cached else 'NOT met'}; "
              f"cold <= BuildKit's: {'met' if ok_cold else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
