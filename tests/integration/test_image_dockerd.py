"""Archive interoperability with Debian's dockerd: `berth save` output loads and runs in
dockerd; `docker save` output loads into berth, resolves and unpacks to the same rootfs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.engine.images import ImageService
from fixtures.images import image_service, save_unpacked
from support import RunNames, unmount_under

pytestmark = [pytest.mark.root, pytest.mark.peer]


@pytest.fixture
def svc(run_names: RunNames) -> Iterator[ImageService]:
    root = run_names.root / "img-dockerd"
    try:
        yield image_service(root)
    finally:
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def made_by_dockerd(dockerd, busybox_tar: str, repo: str, cmd: str, script: str,  # type: ignore[no-untyped-def]
                    archive: Path) -> str:
    """An image dockerd made itself: busybox imported as `<repo>:1` with CMD `cmd`, then a
    layer committed as `<repo>:2` from a container that ran `script`; written to `archive` by
    `docker save` and removed from dockerd. Its id."""
    name = "berth-img-" + repo.rpartition("/")[2]
    r = dockerd.docker("import", "-c", f"CMD {cmd}", busybox_tar, f"{repo}:1")
    assert r.returncode == 0, r.stderr
    try:
        r = dockerd.docker("run", "--name", name, "--network", "none", f"{repo}:1", "sh", "-c", script)
        assert r.returncode == 0, r.stderr
        r = dockerd.docker("commit", "-c", f"CMD {cmd}", name, f"{repo}:2")
        assert r.returncode == 0, r.stderr
        image_id = r.stdout.strip()
        r = dockerd.docker("save", "-o", str(archive), f"{repo}:2")
        assert r.returncode == 0, r.stderr
    finally:
        dockerd.docker("rm", "-f", name)
        dockerd.docker("rmi", "-f", f"{repo}:2", f"{repo}:1")
    return image_id


# First in the file: berthd is started before dockerd, so that the session's dockerd is
# stopped before the daemon fixture checks the host for the run's leftovers.
def test_docker_save_loads_into_berthd_and_runs(daemon, dockerd, busybox_tar: str,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    made_by_dockerd(dockerd, busybox_tar, "dockermade/run", '["cat", "/etc/hostname-from-docker"]',
                    "echo written-in-docker > /etc/hostname-from-docker", archive)
    r = daemon.docker("load", "-i", str(archive))
    assert r.returncode == 0 and "Loaded image: dockermade/run:2" in r.stdout, r.stderr
    try:
        r = daemon.docker("run", "--rm", "--network", "none", "dockermade/run:2")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "written-in-docker\n"
    finally:
        daemon.docker("rmi", "-f", "dockermade/run:2")


def test_berth_save_loads_and_runs_in_dockerd(dockerd, svc: ImageService, busybox_tar: str,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    with open(busybox_tar, "rb") as f:
        img = svc.import_tar(f, "berthsaved/bb", "v1", changes=['CMD ["echo", "from berth"]'])
    archive = tmp_path / "berth.tar"
    with open(archive, "wb") as f:
        svc.save(["berthsaved/bb:v1"], f)
    try:
        r = dockerd.docker("load", "-i", str(archive))
        assert r.returncode == 0, r.stderr
        assert "Loaded image: berthsaved/bb:v1" in r.stdout
        r = dockerd.docker("image", "inspect", "--format", "{{.Id}}", "berthsaved/bb:v1")
        assert r.stdout.strip() == img.id, r.stderr
        r = dockerd.docker("run", "--rm", "--network", "none", "berthsaved/bb:v1")
        assert r.returncode == 0 and r.stdout == "from berth\n", r.stderr
        r = dockerd.docker("run", "--rm", "--network", "none", "berthsaved/bb:v1", "sh", "-c",
                           "ls /bin | wc -l; cat /etc/passwd | head -1")
        assert r.returncode == 0, r.stderr
        assert int(r.stdout.split()[0]) > 50 and "root:x:0:0" in r.stdout
    finally:
        dockerd.docker("rmi", "-f", "berthsaved/bb:v1")


def test_docker_save_loads_into_berth(dockerd, svc: ImageService, busybox_tar: str,  # type: ignore[no-untyped-def]
                                      tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    docker_id = made_by_dockerd(dockerd, busybox_tar, "dockermade/top", '["sh"]',
                                "echo layered > /layered; rm /etc/group; mkdir -p /d/e", archive)
    with open(archive, "rb") as f:
        assert svc.load(f) == ["dockermade/top:2"]
    img = svc.resolve("dockermade/top:2")
    assert img.id == docker_id
    assert len(img.diff_ids) == 2
    merged = svc.snapshots.prepare("dockerd-check", svc.lower_dirs(img))
    try:
        assert Path(merged, "layered").read_text() == "layered\n"
        assert not os.path.exists(os.path.join(merged, "etc/group"))  # the whiteout works
        assert os.path.isdir(os.path.join(merged, "d/e"))
        assert os.path.isfile(os.path.join(merged, "bin/busybox"))
    finally:
        svc.snapshots.remove("dockerd-check")
    # and berth's own save of it still carries the same ids
    manifest = save_unpacked(svc, ["dockermade/top:2"], tmp_path / "again")
    assert manifest[0]["Config"].endswith(docker_id[7:])
