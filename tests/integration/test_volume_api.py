"""Volumes and mounts through berthd with the real docker CLI: image VOLUMEs become
anonymous volumes filled from the image, --mount/--tmpfs/bind mounts, local driver options."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support import ok

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]



@pytest.fixture
def made(daemon) -> Iterator[list[str]]:  # noqa: ANN001
    items: list[str] = []
    yield items
    for item in reversed(items):
        kind, _, name = item.rpartition(":")
        if kind == "vol":
            daemon.docker("volume", "rm", "-f", name)
        elif kind == "img":
            daemon.docker("rmi", "-f", name)
        else:
            daemon.docker("rm", "-f", "-v", name)


def test_image_volume_becomes_an_anonymous_volume_filled_from_the_image(daemon, busybox_tar, made) -> None:  # noqa: ANN001
    d = daemon
    made += ["img:nt-volimg:latest", "nt-volc"]
    ok(d.docker("import", "--change", "VOLUME /etc", busybox_tar, "nt-volimg:latest"))
    ok(d.docker("create", "--name", "nt-volc", "nt-volimg:latest", "sh", "-c",
                 "grep -q '^root:' /etc/passwd && echo added > /etc/added"))
    ok(d.docker("start", "-a", "nt-volc"))
    mounts = json.loads(ok(d.docker("inspect", "nt-volc")))[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/etc"
    name = mounts[0]["Name"]
    src = mounts[0]["Source"]
    with open(f"{src}/passwd") as f:
        assert f.read().startswith("root:")                 # copied from the image
    with open(f"{src}/added") as f:
        assert f.read() == "added\n"                        # written by the container
    # restarting keeps the same anonymous volume; rm -v removes it
    ok(d.docker("start", "-a", "nt-volc"))
    assert json.loads(ok(d.docker("inspect", "nt-volc")))[0]["Mounts"][0]["Name"] == name
    ok(d.docker("rm", "-v", "nt-volc"))
    assert name not in ok(d.docker("volume", "ls", "-q")).split()


def test_mount_flags_bind_tmpfs_and_readonly(daemon, busybox_image, tmp_path, made) -> None:  # noqa: ANN001
    d = daemon
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    made += ["vol:nt-mnt"]
    out = ok(d.docker("run", "--rm",
                       "--mount", f"type=bind,source={host},target=/h,readonly",
                       "--mount", "type=volume,source=nt-mnt,target=/v",
                       "--mount", "type=tmpfs,target=/t,tmpfs-size=1048576",
                       "--tmpfs", "/scratch:size=2m",
                       "-v", f"{host}:/hw",
                       busybox_image, "sh", "-c",
                       "cat /h/in.txt; (echo no > /h/x) 2>/dev/null && echo WROTE-RO; echo yes > /hw/out.txt;"
                       " echo v > /v/f; grep -E ' /(t|scratch) ' /proc/mounts"))
    assert out.startswith("from host\n") and "WROTE-RO" not in out
    assert (host / "out.txt").read_text() == "yes\n"
    tmpfs_lines = [ln for ln in out.splitlines() if ln.startswith("tmpfs")]
    assert len(tmpfs_lines) == 2 and any("size=1024k" in ln for ln in tmpfs_lines)
    r = d.docker("run", "--rm", "--mount", f"type=bind,source={tmp_path}/missing,target=/m", busybox_image, "true")
    assert r.returncode != 0 and "does not exist" in r.stderr


def test_local_driver_tmpfs_volume(daemon, busybox_image, made) -> None:  # noqa: ANN001
    d = daemon
    made += ["vol:nt-tmpvol", "nt-tmpc"]
    ok(d.docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                 "--opt", "o=size=1m", "nt-tmpvol"))
    info = json.loads(ok(d.docker("volume", "inspect", "nt-tmpvol")))[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    ok(d.docker("run", "--name", "nt-tmpc", "-v", "nt-tmpvol:/data", busybox_image, "sh", "-c",
                 "echo in-tmpfs > /data/f"))
    mp = info["Mountpoint"]
    mounted = [ln for ln in open("/proc/mounts").read().splitlines() if f" {mp} " in ln]
    assert mounted and mounted[0].startswith("tmpfs ")
    ok(d.docker("rm", "nt-tmpc"))
    ok(d.docker("volume", "rm", "nt-tmpvol"))
    assert not [ln for ln in open("/proc/mounts").read().splitlines() if f" {mp} " in ln]
    r = d.docker("volume", "create", "--opt", "bogus=1", "nt-badopt")
    assert r.returncode != 0 and "invalid option" in r.stderr
