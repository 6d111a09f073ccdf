"""Blob GET throughput: berth-registry beside Debian's docker-registry (CNCF distribution 2.8).

Usage: .venv/bin/python bench/registry/blob_get.py [--size-mib 128] [--rounds 3]

Both registries run on loopback with htpasswd auth, each with its own root, holding the same
random blob. `curl` clients (C, so the client is not the bottleneck) download it to
/dev/null, first one at a time (`--rounds` downloads), then 8 at once (`--rounds` waves);
each measurement is repeated `--repeats` times, alternating registries, and the script
prints the median MiB/s for each registry and the ratio berth/distribution.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.registry import RunningRegistry, start_berth_registry, start_distribution_registry  # noqa: E402


def put_blob(reg: RunningRegistry, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{reg.url}/v2/bench/blob/blobs/uploads/", params={"digest": digest}, data=data,
                      auth=(reg.user, reg.password))
    if r.status_code != 201:
        # distribution wants a session for big monolithic bodies on some versions
        r = requests.post(f"{reg.url}/v2/bench/blob/blobs/uploads/", auth=(reg.user, reg.password))
        loc = r.headers["Location"]
        url = loc if loc.startswith("http") else reg.url + loc
        sep = "&" if "?" in url else "?"
        r = requests.put(f"{url}{sep}digest={digest}", data=data, auth=(reg.user, reg.password))
        r.raise_for_status()
    return digest


def fetch(reg: RunningRegistry, digest: str, clients: int, rounds: int, size: int) -> float:
    """MiB/s over `rounds` waves of `clients` concurrent curl downloads."""
    url = f"{reg.url}/v2/bench/blob/blobs/{digest}"
    argv = ["curl", "-sS", "-f", "-u", f"{reg.user}:{reg.password}", "-o", "/dev/null", "-w", "%{size_download}",
            url]
    # warm up (page cache, connection setup, bcrypt cache)
    subprocess.run(argv, check=True, capture_output=True)
    start = time.perf_counter()
    total = 0
    for _ in range(rounds):
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(clients)]
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"curl failed against {url}")
            total += int(out)
    elapsed = time.perf_counter() - start
    if total != size * clients * rounds:
        raise RuntimeError(f"downloaded {total} bytes, expected {size * clients * rounds}")
    return total / elapsed / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="measurements per registry (median printed)")
    a = ap.parse_args()
    data = os.urandom(a.size_mib << 20)
    with tempfile.TemporaryDirectory(prefix="berth-bench-registry-") as tmp:
        with start_berth_registry(Path(tmp)) as berth, start_distribution_registry(Path(tmp)) as dist:
            db = put_blob(berth, data)
            dd = put_blob(dist, data)
            assert db == dd
            print(f"blob GET throughput, {a.size_mib} MiB blob, curl clients on loopback")
            for clients in (1, 8):
                # interleave so load changes hit both alike
                bs, ds = [], []
                for _ in range(a.repeats):
                    bs.append(fetch(berth, db, clients, a.rounds, len(data)))
                    ds.append(fetch(dist, dd, clients, a.rounds, len(data)))
                b, d = statistics.median(bs), statistics.median(ds)
                print(f"  {clients} client{'s' if clients > 1 else ' '}: berth-registry {b:8.1f} MiB/s   "
                      f"distribution {d:8.1f} MiB/s   ratio berth/distribution {b / d:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
