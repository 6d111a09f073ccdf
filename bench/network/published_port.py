"""Published-port throughput (berth's DNAT beside docker's docker-proxy) and container start
latency on the default bridge versus `--network none`.

Usage (as root): .venv/bin/python bench/network/published_port.py [--seconds 5] [--rounds 3]
                 [--runs 15] [--connections 16]

Everything is started by the script, isolated and removed at the end:
- berthd with the run's own data root, exec root, socket, bridge, subnet, firewall prefix
  and cgroup parent (tests/fixtures/daemon.py), busybox imported from busybox-static;
- Debian's dockerd with its own roots, socket, pidfile and bridge (tests/fixtures/dockerd.py;
  it runs with --iptables=false, so its published ports go through docker-proxy, Docker's
  userland proxy, which is also what serves 127.0.0.1 in a default Docker install).
The same busybox `httpd` page is published by both; `wrk` (Debian package) loads
127.0.0.1:PORT from the host. Rounds alternate berth/docker so load changes hit both alike.
Printed: requests/s (median of rounds) and the ratio berth/docker; start latency medians
of `berth run --rm busybox true` with the default bridge and with `--network none`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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
from support import busybox_rootfs_tar, free_port, new_run_names  # noqa: E402

BERTH = str(REPO / ".venv" / "bin" / "berth")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
HTTPD = "mkdir -p /www && head -c 1024 /dev/zero | tr '\\0' x > /www/index.html && exec httpd -f -p 80 -h /www"


def wait_http(url: str, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if subprocess.run(["busybox", "wget", "-q", "-O", "/dev/null", url], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def wrk_rps(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run([WRK, "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True,
                         timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out.stdout)
    if errors:
        print(f"    (wrk reported: {errors.group(0)})")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    if not os.path.exists(WRK):
        sys.exit("wrk is not installed (Debian package `wrk`, see scripts/setup.sh)")

    names = new_run_names()
    names.root.mkdir(parents=True)
    tar = str(busybox_rootfs_tar(names.root / "busybox.tar"))
    dockerd = None
    with private_daemon(names, tar) as berthd:   # at the end: all berthd made, and names.root, removed
        try:
            dockerd = start_dockerd(names)
            res = dockerd.docker("import", tar, "busybox:latest", timeout=120)
            assert res.returncode == 0, res.stderr

            p_berth, p_docker = free_port(), free_port()
            r1 = berthd.docker("run", "-d", "--name", "bench-web", "-p", f"{p_berth}:80", "busybox", "sh", "-c", HTTPD)
            assert r1.returncode == 0, r1.stderr
            r2 = dockerd.docker("run", "-d", "--name", "bench-web", "-p", f"{p_docker}:80", "busybox", "sh", "-c", HTTPD)
            assert r2.returncode == 0, r2.stderr
            urls = {"berth": f"http://127.0.0.1:{p_berth}/", "docker": f"http://127.0.0.1:{p_docker}/"}
            for u in urls.values():
                wait_http(u)
            wrk_rps(urls["berth"], 1, args.connections)     # warm-up
            wrk_rps(urls["docker"], 1, args.connections)
            rps: dict[str, list[float]] = {k: [] for k in urls}
            for i in range(args.rounds):
                order = list(urls) if i % 2 == 0 else list(reversed(urls))
                for k in order:
                    rps[k].append(wrk_rps(urls[k], args.seconds, args.connections))
            med = {k: statistics.median(v) for k, v in rps.items()}
            print(f"published port, 1 KiB busybox httpd page at 127.0.0.1, wrk -t2 -c{args.connections} "
                  f"-d{args.seconds}s, {args.rounds} rounds, medians:")
            print(f"  berth  (iptables DNAT)      {med['berth']:9.0f} req/s  {[round(x) for x in rps['berth']]}")
            print(f"  docker (docker-proxy)       {med['docker']:9.0f} req/s  {[round(x) for x in rps['docker']]}")
            print(f"  ratio berth/docker: {med['berth'] / med['docker']:.2f}")
            berthd.docker("rm", "-f", "bench-web")
            dockerd.docker("rm", "-f", "bench-web")

            benv = berthd.env
            times = interleaved({"default bridge": ([BERTH, "run", "--rm", "busybox", "true"], benv),
                                 "--network none": ([BERTH, "run", "--rm", "--network", "none", "busybox", "true"], benv)},
                                args.runs)
            lat = {k: statistics.median(v) * 1000 for k, v in times.items()}
            print(f"berth run --rm busybox true, {args.runs} runs each, medians:")
            for k, v in lat.items():
                print(f"  {k:16s} {v:7.1f} ms  (min {min(times[k]) * 1000:.1f}, max {max(times[k]) * 1000:.1f})")
            print(f"  ratio bridge/none: {lat['default bridge'] / lat['--network none']:.2f}"
                  f"  (network set-up costs {lat['default bridge'] - lat['--network none']:.1f} ms)")
        finally:
            if dockerd is not None:
                dockerd.docker("rm", "-f", "bench-web")
                stop_dockerd(dockerd)


if __name__ == "__main__":
    main()
