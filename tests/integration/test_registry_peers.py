"""Peers against berth-registry: skopeo (basic and token auth) and oras (an artifact);
and berthd pulling what skopeo pushed, then running it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from fixtures.registry import RunningRegistry

pytestmark = [pytest.mark.peer]

SKOPEO = shutil.which("skopeo") or "skopeo"


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_oci_layout(dest: Path, rootfs_tar: str, tag: str = "v1",
                    description: str = "") -> dict[str, Any]:
    """An OCI image layout holding a one-layer image (gzip) built from `rootfs_tar`."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    plain = Path(rootfs_tar).read_bytes()
    layer = gzip.compress(plain, compresslevel=1, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh", "-c", "echo hello-from-skopeo"],
                                    "Labels": {"org.opencontainers.image.description": description}
                                    if description else {}},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(plain)]},
                         "history": [{"created_by": "test"}]}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": _digest(layer), "size": len(layer)}]}).encode()
    for b in (layer, config, manifest):
        (blobs / _digest(b).split(":")[1]).write_bytes(b)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return {"layer": _digest(layer), "config": _digest(config), "manifest": _digest(manifest)}


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def oci_image(tmp_path_factory: pytest.TempPathFactory, busybox_tar: str) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("oci") / "layout"
    return d, make_oci_layout(d, busybox_tar)


@pytest.mark.parametrize("which", ["berth_registry", "berth_token_registry"])
def test_skopeo_push_and_pull(request: pytest.FixtureRequest, oci_image: tuple[Path, dict[str, Any]],
                              tmp_path: Path, which: str) -> None:
    reg: RunningRegistry = request.getfixturevalue(which)
    layout, digests = oci_image
    creds = f"{reg.user}:{reg.password}"
    target = f"docker://{reg.host}/skopeo/busybox:v1"
    denied = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", target)
    assert denied.returncode != 0 and any(w in denied.stderr.lower() for w in (
        "unauthorized", "authentication required", "access to the resource is denied")), denied.stderr
    wrong = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{reg.user}:wrong", f"oci:{layout}:v1",
                   target)
    assert wrong.returncode != 0
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", target)
    assert r.returncode == 0, r.stderr
    assert (reg.root / "blobs" / "sha256" / digests["layer"].split(":")[1]).exists()
    insp = skopeo("inspect", "--tls-verify=false", "--creds", creds, target)
    assert insp.returncode == 0, insp.stderr
    info = json.loads(insp.stdout)
    assert info["Digest"] == digests["manifest"] and info["Layers"] == [digests["layer"]]
    out = tmp_path / "out"
    r = skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, target, f"oci:{out}:v1")
    assert r.returncode == 0, r.stderr
    got = json.loads((out / "index.json").read_text())["manifests"][0]["digest"]
    assert got == digests["manifest"]
    assert (out / "blobs" / "sha256" / digests["layer"].split(":")[1]).read_bytes() == \
        (layout / "blobs" / "sha256" / digests["layer"].split(":")[1]).read_bytes()
    tags = skopeo("list-tags", "--tls-verify=false", "--creds", creds, f"docker://{reg.host}/skopeo/busybox")
    assert json.loads(tags.stdout)["Tags"] == ["v1"]


@pytest.mark.parametrize("which", ["berth_registry", "berth_token_registry"])
def test_oras_push_and_pull_artifact(request: pytest.FixtureRequest, tmp_path: Path, which: str) -> None:
    import oras.client
    reg: RunningRegistry = request.getfixturevalue(which)
    src = tmp_path / "src"
    src.mkdir()
    payload = os.urandom(300_000)
    (src / "artifact.bin").write_bytes(payload)
    (src / "notes.txt").write_text("hello oras\n")
    target = f"{reg.host}/oras/artifact:v1"
    # oras-py picks its auth scheme up front: "basic" for htpasswd, "token" for the bearer flow
    backend = "token" if reg.token_auth else "basic"
    client = oras.client.OrasClient(hostname=reg.host, insecure=True, auth_backend=backend)
    client.auth.set_basic_auth(reg.user, reg.password)
    cwd = os.getcwd()
    os.chdir(src)
    try:
        resp = client.push(files=["artifact.bin", "notes.txt"], target=target, do_chunked=(which == "berth_registry"),
                           chunk_size=64 * 1024)
        assert resp.status_code == 201, resp.text
    finally:
        os.chdir(cwd)
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert sorted(Path(f).name for f in files) == ["artifact.bin", "notes.txt"]
    assert (out / "artifact.bin").read_bytes() == payload
    assert (out / "notes.txt").read_text() == "hello oras\n"
    manifest = client.get_manifest(target)
    titles = sorted(la["annotations"]["org.opencontainers.image.title"] for la in manifest["layers"])
    assert titles == ["artifact.bin", "notes.txt"]
    r = requests.get(f"{reg.url}/v2/oras/artifact/manifests/v1")
    assert r.status_code == 401, "the artifact is not readable anonymously"


@pytest.mark.root
def test_berth_pulls_what_skopeo_pushed_and_runs_it(daemon: Any, berth_token_registry: RunningRegistry,
                                                    tmp_path: Path, busybox_tar: str) -> None:
    from berth.registry.auth_config import encode_registry_auth
    reg = berth_token_registry
    layout = tmp_path / "layout"
    digests = make_oci_layout(layout, busybox_tar, "v2")
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{reg.user}:{reg.password}",
               f"oci:{layout}:v2", f"docker://{reg.host}/skopeo/runme:v2")
    assert r.returncode == 0, r.stderr
    ref = f"{reg.host}/skopeo/runme:v2"
    auth = {"X-Registry-Auth": encode_registry_auth({"username": reg.user, "password": reg.password,
                                                     "serveraddress": reg.host})}
    pr = daemon.api("POST", "/images/create", params={"fromImage": f"{reg.host}/skopeo/runme", "tag": "v2"},
                    headers=auth, timeout=300)
    assert pr.status == 200, pr.text
    assert "error" not in pr.text, pr.text
    info = daemon.api("GET", f"/images/{ref}/json").json()
    assert info["Id"] == digests["config"]
    cid = None
    try:
        c = daemon.api("POST", "/containers/create", json={"Image": ref})
        assert c.status == 201, c.text
        cid = c.json()["Id"]
        assert daemon.api("POST", f"/containers/{cid}/start").status == 204
        w = daemon.api("POST", f"/containers/{cid}/wait", timeout=60)
        assert w.json()["StatusCode"] == 0
        logs = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": True, "stderr": True})
        assert b"hello-from-skopeo" in logs.body
    finally:
        if cid:
            daemon.api("DELETE", f"/containers/{cid}", params={"force": True})
        daemon.api("DELETE", f"/images/{ref}", params={"force": True})
