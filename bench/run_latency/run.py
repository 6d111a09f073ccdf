"""`berth run --rm busybox true` beside `docker run --rm` and `podman run --rm`, plus memory.

Usage (as root): .venv/bin/python bench/run_latency/run.py [--runs 20] [--skip-podman]

Everything is started by the script, isolated, and removed at the end:
- berthd with its own data root, exec root, socket, bridge, subnet, firewall prefix and
  cgroup parent (tests/fixtures/daemon.py), busybox imported from Debian's busybox-static;
- Debian's dockerd with its own data root, exec root, pidfile, socket and a bridge the
  script creates (tests/fixtures/dockerd.py), the same busybox tar `docker import`ed;
- podman with its own --root/--runroot, the same tar `podman import`ed; podman runs with
  `--network none` (its default network would create a `podman0` bridge and firewall
  rules outside the script's names); berth is also measured with `--network none`.

Runs are interleaved (berth, docker, podman, berth, ...) so load changes hit each alike;
`docker run` against berthd is also timed (the engine without the berth CLI's start-up);
the script prints medians, the ratios berth/peer, berthd's idle RSS, and the RSS of the shim
of a running container beside containerd-shim-runc-v2's (dockerd) and conmon's (podman).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from benchlib import interleaved  # noqa: E402

from fixtures.daemon import private_daemon  # noqa: E402
from fixtures.dockerd import start_dockerd, stop_dockerd  # noqa: E402
from support import busybox_rootfs_tar, new_run_names  # noqa: E402

BERTH = str(REPO / ".venv" / "bin" / "berth")
DOCKER = "/usr/bin/docker"
PODMAN = "/usr/bin/podman"


def _proc_kib(path: str, field: str) -> int:
    """The `field:` line's KiB in a /proc file (0 if the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/status", "VmRSS")


def pss_kib(pid: int) -> int:
    """Proportional set size: pages shared with the template (copy-on-write) count in part."""
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss")


def pids_matching(pred) -> list[int]:
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{e}/cwd")
        except OSError:
            continue
        if pred(int(e), cmd, cwd):
            out.append(int(e))
    return out


def _podman_ulimits() -> list[str]:
    """This machine lacks CAP_SYS_RESOURCE: podman's default RLIMIT_NOFILE/NPROC exceed the
    hard limits, so ask for limits at or below the ones we have (lowering is allowed)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["--ulimit", f"nofile={min(soft, 1024)}:{min(hard, 1024)}", "--ulimit", "nproc=1024:1024"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--skip-docker", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")

    names = new_run_names()
    names.root.mkdir(parents=True)
    tar = str(busybox_rootfs_tar(names.root / "busybox.tar"))
    dockerd = None
    podman_root = names.root / "podman"
    podman_args = [PODMAN, "--root", str(podman_root / "root"), "--runroot", str(podman_root / "run"),
                   "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", "runc"]
    with private_daemon(names) as berthd:   # at the end: all berthd made, and names.root, removed
        try:
            time.sleep(1.0)
            idle_rss = rss_kib(berthd.proc.pid)
            berthd.import_busybox(tar)
            benv = berthd.env
            cases: dict[str, tuple[list[str], dict[str, str]]] = {
                "berth": ([BERTH, "run", "--rm", "busybox", "true"], benv),
                "berth --network none": ([BERTH, "run", "--rm", "--network", "none", "busybox", "true"], benv),
                # the Go docker CLI against berthd: the engine's share without the berth CLI's start-up
                "docker CLI -> berthd": ([DOCKER, "run", "--rm", "busybox", "true"], benv),
            }
            if not args.skip_docker and os.path.exists("/usr/sbin/dockerd"):
                dockerd = start_dockerd(names)
                res = dockerd.docker("import", tar, "busybox:latest", timeout=120)
                assert res.returncode == 0, res.stderr
                cases["docker"] = ([DOCKER, "run", "--rm", "busybox", "true"], dockerd.env)
            if not args.skip_podman and os.path.exists(PODMAN):
                res = subprocess.run([*podman_args, "import", tar, "busybox:latest"], capture_output=True, text=True)
                if res.returncode == 0:
                    cases["podman --network none"] = ([*podman_args, "run", "--rm", "--network", "none", *_podman_ulimits(),
                                                       "busybox", "true"], dict(os.environ))
                else:
                    print(f"podman import failed, skipping podman: {res.stderr.strip()}")
            times = interleaved(cases, args.runs)
            med = {k: statistics.median(v) * 1000 for k, v in times.items()}
            print(f"run --rm busybox true, {args.runs} runs each, medians:")
            for k, v in med.items():
                print(f"  {k:24s} {v:7.1f} ms  (min {min(times[k]) * 1000:.1f}, max {max(times[k]) * 1000:.1f})")
            for peer in ("docker", "podman --network none"):
                if peer in med:
                    print(f"  ratio berth/{peer}: {med['berth'] / med[peer]:.2f}"
                          f"   (berth --network none / {peer}: {med['berth --network none'] / med[peer]:.2f},"
                          f" docker CLI -> berthd / {peer}: {med['docker CLI -> berthd'] / med[peer]:.2f})")

            # memory: idle daemon, a running container's shim beside the peers'
            print("memory (VmRSS):")
            print(f"  berthd idle               {idle_rss / 1024:6.1f} MiB")
            cid = subprocess.run([BERTH, "run", "-d", "busybox", "sleep", "60"], env=benv, capture_output=True,
                                 text=True).stdout.strip() or berthd.api(
                "GET", "/containers/json").json()[0]["Id"]
            time.sleep(0.5)
            shim_dir = str(names.exec_root / "shims" / cid)
            shims = pids_matching(lambda p, cmd, cwd: cwd == shim_dir and "berth.shim" in cmd)
            if shims:
                print(f"  berth shim (running)      {rss_kib(shims[0]) / 1024:6.1f} MiB   (PSS {pss_kib(shims[0]) / 1024:.1f} MiB)")
            tmpl = pids_matching(lambda p, cmd, cwd: "--template" in cmd and str(names.exec_root) in cmd)
            if tmpl:
                print(f"  berth shim template       {rss_kib(tmpl[0]) / 1024:6.1f} MiB (one per daemon)")
            print(f"  berthd with 1 container   {rss_kib(berthd.proc.pid) / 1024:6.1f} MiB")
            berthd.api("DELETE", f"/containers/{cid}", params={"force": 1})
            if dockerd is not None:
                dcid = dockerd.docker("run", "-d", "busybox", "sleep", "60").stdout.strip()
                time.sleep(0.5)
                cs = pids_matching(lambda p, cmd, cwd: "containerd-shim" in cmd and dcid in cmd)
                if cs:
                    print(f"  containerd-shim-runc-v2   {rss_kib(cs[0]) / 1024:6.1f} MiB   (PSS {pss_kib(cs[0]) / 1024:.1f} MiB)")
                print(f"  dockerd with 1 container  {rss_kib(dockerd.proc.pid) / 1024:6.1f} MiB")
                dockerd.docker("rm", "-f", dcid)
        finally:
            if dockerd is not None:
                stop_dockerd(dockerd)
            if podman_root.exists():
                subprocess.run([*podman_args, "rm", "-af"], capture_output=True)
                subprocess.run([*podman_args, "system", "reset", "-f"], capture_output=True)
                subprocess.run(["umount", "-R", "-l", str(podman_root)], capture_output=True)


if __name__ == "__main__":
    main()
