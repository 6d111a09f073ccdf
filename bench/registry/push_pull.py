"""One 256 MiB random layer pushed and pulled through local registries by berth, docker and
skopeo, in the same run.

Usage (as root): .venv/bin/python bench/registry/push_pull.py [--size-mib 256] [--skip-docker]

Set-up: a tar holding one file of random bytes becomes a one-layer OCI image (gzip -1 via
pigz) in an OCI layout, pushed (untimed) to registry A. Every timed push goes to a fresh
berth-registry (htpasswd auth, loopback) so no tool can skip or mount a blob the target
already has; before each timed pull the tool's local copy is removed. Each operation runs
`--repeats` times, interleaved across tools (the machine is shared: best of N is printed).

  skopeo push   oci layout -> registry A             skopeo pull   A -> oci layout
  berth pull    A -> berthd (download, verify, unpack) berth push    berthd -> registry B
  docker pull   A -> dockerd (download, unpack)        docker push   dockerd -> registry C
  berth push*   a layer of the same size imported uncompressed, so berth must gzip it (as docker does)

Rates are the layer size over wall time of the whole command or API call. Printed: MiB/s per
tool and the ratios berth/skopeo and berth/docker.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from berth.registry.auth_config import encode_registry_auth  # noqa: E402
from fixtures.daemon import DaemonHandle, _cleanup_host, start_daemon  # noqa: E402
from fixtures.registry import RunningRegistry, start_berth_registry  # noqa: E402
from support import new_run_names  # noqa: E402


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_layer_tar(path: Path, size: int) -> None:
    with tarfile.open(path, "w") as t:
        ti = tarfile.TarInfo("big.bin")
        ti.size = size
        ti.mode = 0o644
        with open("/dev/urandom", "rb") as rnd:
            t.addfile(ti, _Limited(rnd, size))
        for d in ("bin", "tmp"):
            di = tarfile.TarInfo(d)
            di.type = tarfile.DIRTYPE
            di.mode = 0o755
            t.addfile(di)


class _Limited(io.RawIOBase):
    def __init__(self, f: Any, n: int) -> None:
        self.f, self.n = f, n

    def read(self, k: int = -1) -> bytes:
        if self.n <= 0:
            return b""
        k = self.n if k < 0 else min(k, self.n)
        data = self.f.read(k)
        self.n -= len(data)
        return data


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_layout(dest: Path, tar_path: Path) -> None:
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    gz = dest / "layer.gz"
    pigz = shutil.which("pigz")
    with open(tar_path, "rb") as src, open(gz, "wb") as out:
        subprocess.run([pigz, "-1", "-n", "-c"] if pigz else ["gzip", "-1", "-n", "-c"], stdin=src, stdout=out,
                       check=True)
    layer_digest = file_sha(gz)
    os.replace(gz, blobs / layer_digest.split(":")[1])
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": [file_sha(tar_path)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": layer_digest,
                                       "size": (blobs / layer_digest.split(':')[1]).stat().st_size}]}).encode()
    for b in (config, manifest):
        (blobs / sha(b).split(":")[1]).write_bytes(b)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))


def timed(fn: Any) -> float:
    os.sync()  # every tool starts without the previous one's dirty pages to write back
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(argv: list[str], **kw: Any) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {r.stderr[-2000:]}")


def api_stream(d: DaemonHandle, method: str, path: str, **kw: Any) -> None:
    r = d.api(method, path, timeout=900, **kw)
    if r.status != 200 or '"error"' in r.text:
        raise RuntimeError(f"{path}: {r.status} {r.text[-2000:]}")


def auth_header(reg: RunningRegistry) -> dict[str, str]:
    return {"X-Registry-Auth": encode_registry_auth({"username": reg.user, "password": reg.password,
                                                     "serveraddress": reg.host})}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each operation; the best is printed")
    ap.add_argument("--skip-docker", action="store_true")
    a = ap.parse_args()
    size = a.size_mib << 20
    mib = size / (1 << 20)
    names = new_run_names()
    names.root.mkdir(parents=True)
    work = names.root / "bench"
    work.mkdir()
    results: dict[str, list[float]] = {}
    daemon = None
    dockerd = None

    def record(key: str, seconds: float) -> None:
        results.setdefault(key, []).append(seconds)

    def fresh() -> Any:
        return start_berth_registry(work / "registries")

    try:
        tar_path = work / "layer.tar"
        make_layer_tar(tar_path, size)
        layout = work / "layout"
        make_layout(layout, tar_path)
        plain_tar = work / "plain.tar"   # other random bytes of the same size, imported uncompressed
        make_layer_tar(plain_tar, size)
        daemon = start_daemon(names)
        with open(plain_tar, "rb") as f:
            r = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": "plain/big", "tag": "v1"},
                           body=f.read(), timeout=900)
        if r.status != 200:
            raise RuntimeError(r.text)
        if not a.skip_docker:
            from fixtures.dockerd import start_dockerd
            dockerd = start_dockerd(names)
        denv = dict(dockerd.env, DOCKER_CONFIG=str(work / "docker-config")) if dockerd else {}
        with start_berth_registry(work / "registries") as src:   # every pull reads from here
            creds = f"{src.user}:{src.password}"
            src_ref = f"{src.host}/big/image:v1"
            run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1",
                 f"docker://{src_ref}"])
            if dockerd:
                run(["docker", "login", "-u", src.user, "--password-stdin", src.host], env=denv,
                    input=src.password + "\n")
            for rep in range(a.repeats):
                with fresh() as dst:
                    record("skopeo push", timed(lambda: run(
                        ["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"{dst.user}:{dst.password}",
                         f"oci:{layout}:v1", f"docker://{dst.host}/big/image:v1"])))
                out = work / f"skopeo-out-{rep}"
                record("skopeo pull", timed(lambda out=out: run(
                    ["skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds, f"docker://{src_ref}",
                     f"oci:{out}:v1"])))
                shutil.rmtree(out, ignore_errors=True)
                record("berth pull", timed(lambda: api_stream(
                    daemon, "POST", "/images/create", params={"fromImage": f"{src.host}/big/image", "tag": "v1"},
                    headers=auth_header(src))))
                with fresh() as dst:
                    daemon.api("POST", f"/images/{src_ref}/tag", params={"repo": f"{dst.host}/big/image",
                                                                         "tag": "v1"})
                    record("berth push", timed(lambda: api_stream(
                        daemon, "POST", f"/images/{dst.host}/big/image/push", params={"tag": "v1"},
                        headers=auth_header(dst))))
                    daemon.api("DELETE", f"/images/{dst.host}/big/image:v1")
                daemon.api("DELETE", f"/images/{src_ref}", params={"force": True})   # layers and blobs too
                with fresh() as dst:
                    daemon.api("POST", "/images/plain/big:v1/tag", params={"repo": f"{dst.host}/plain/big",
                                                                           "tag": "v1"})
                    record("berth push*", timed(lambda: api_stream(
                        daemon, "POST", f"/images/{dst.host}/plain/big/push", params={"tag": "v1"},
                        headers=auth_header(dst))))
                    daemon.api("DELETE", f"/images/{dst.host}/plain/big:v1")
                if dockerd:
                    record("docker pull", timed(lambda: run(["docker", "pull", src_ref], env=denv)))
                    with fresh() as dst:
                        run(["docker", "login", "-u", dst.user, "--password-stdin", dst.host], env=denv,
                            input=dst.password + "\n")
                        run(["docker", "tag", src_ref, f"{dst.host}/big/image:v1"], env=denv)
                        record("docker push", timed(lambda: run(["docker", "push", f"{dst.host}/big/image:v1"],
                                                                env=denv)))
                        run(["docker", "rmi", "-f", f"{dst.host}/big/image:v1", src_ref], env=denv)
    finally:
        if dockerd is not None:
            from fixtures.dockerd import stop_dockerd
            stop_dockerd(dockerd)
        if daemon is not None:
            daemon.remove_all_containers()
            daemon.stop()
        _cleanup_host(names)
        shutil.rmtree(names.root, ignore_errors=True)
    rate = {k: mib / min(v) for k, v in results.items()}
    print(f"registry push/pull of one {a.size_mib} MiB random layer: MiB/s over the wall time of the whole "
          f"operation, best of {a.repeats} (all runs in seconds)")
    for k in sorted(rate):
        print(f"  {k:12s} {rate[k]:8.1f} MiB/s  ({', '.join(f'{t:.2f}' for t in results[k])})")
    for op in ("push", "pull"):
        b = rate[f"berth {op}"]
        line = f"  berth {op}: ratio berth/skopeo {b / rate[f'skopeo {op}']:.2f}"
        if f"docker {op}" in rate:
            line += f"   ratio berth/docker {b / rate[f'docker {op}']:.2f}"
        print(line)
    if "docker push" in rate:
        print(f"  berth push* (compressing) : ratio berth/docker {rate['berth push*'] / rate['docker push']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
