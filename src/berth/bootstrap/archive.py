"""Image config and the `docker save` archive for a one-layer bootstrapped image.

The archive holds `manifest.json`, the config blob `<hex>.json`, the layer as
`<hex>/layer.tar` (with the legacy `VERSION` and `json` beside it) and `repositories`, so
berth's `POST /images/load` and `docker load` both accept it. Everything in it is written
deterministically (sorted JSON, fixed member order, mtimes = the image's epoch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# dpkg architecture -> OCI (GOARCH, variant)
_ARCHES = {"amd64": ("amd64", ""), "arm64": ("arm64", "v8"), "armhf": ("arm", "v7"),
           "armel": ("arm", "v5"), "i386": ("386", ""), "ppc64el": ("ppc64le", ""),
           "s390x": ("s390x", ""), "riscv64": ("riscv64", ""), "mips64el": ("mips64le", "")}


def host_architecture() -> tuple[str, str]:
    deb = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                         check=True).stdout.strip()
    return _ARCHES.get(deb, (deb, ""))


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def image_config(*, diff_id: str, epoch: int, env: list[str], cmd: list[str],
                 entrypoint: list[str], workdir: str, exposed_ports: list[str],
                 stop_signal: str, labels: dict[str, str], created_by: str, comment: str,
                 architecture: tuple[str, str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {"Env": env}
    if cmd:
        cfg["Cmd"] = cmd
    if entrypoint:
        cfg["Entrypoint"] = entrypoint
    if workdir:
        cfg["WorkingDir"] = workdir
    if exposed_ports:
        cfg["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in exposed_ports}
    if stop_signal:
        cfg["StopSignal"] = stop_signal
    if labels:
        cfg["Labels"] = labels
    created = rfc3339(epoch)
    out: dict[str, Any] = {
        "architecture": architecture[0],
        "os": "linux",
        "created": created,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": created_by, "comment": comment}],
    }
    if architecture[1]:
        out["variant"] = architecture[1]
    return out


def _member(name: str, size: int, epoch: int, mode: int = 0o644,
            typ: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.type = size, epoch, mode, typ
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def write_docker_archive(dest: str | Path, *, config: bytes, layer_path: str | Path,
                         diff_id: str, repo_tags: list[str], epoch: int) -> str:
    """Write a `docker save` archive; returns the image id (sha256 of the config)."""
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    config_name = image_id.split(":", 1)[1] + ".json"
    layer_dir = diff_id.split(":", 1)[1]
    layer_name = f"{layer_dir}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": [layer_name]}]
    repositories: dict[str, dict[str, str]] = {}
    for rt in repo_tags:
        repo, _, tag = rt.rpartition(":")
        repositories.setdefault(repo, {})[tag] = layer_dir
    cfg = json.loads(config)
    legacy = {"id": layer_dir, "created": cfg.get("created"), "os": cfg.get("os"),
              "architecture": cfg.get("architecture"), "config": cfg.get("config", {})}
    small = {
        f"{layer_dir}/VERSION": b"1.0",
        f"{layer_dir}/json": canonical_json(legacy),
        config_name: config,
        "manifest.json": canonical_json(manifest),
        "repositories": canonical_json(repositories),
    }
    layer_size = os.path.getsize(layer_path)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member(layer_dir, 0, epoch, 0o755, tarfile.DIRTYPE))
        tar.addfile(_member(f"{layer_dir}/VERSION", len(small[f"{layer_dir}/VERSION"]), epoch),
                    io.BytesIO(small[f"{layer_dir}/VERSION"]))
        tar.addfile(_member(f"{layer_dir}/json", len(small[f"{layer_dir}/json"]), epoch),
                    io.BytesIO(small[f"{layer_dir}/json"]))
        with open(layer_path, "rb") as lf:
            tar.addfile(_member(layer_name, layer_size, epoch), lf)
        for name in (config_name, "manifest.json", "repositories"):
            tar.addfile(_member(name, len(small[name]), epoch), io.BytesIO(small[name]))
    return image_id
