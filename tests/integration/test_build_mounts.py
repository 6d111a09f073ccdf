"""RUN --mount through a real berthd: cache mounts that persist between builds and stay
out of the image, binds from the context and from a stage, tmpfs, the cache key that
follows a bind-mounted context file, a failed RUN that leaves nothing, `builder prune`,
and the docker CLI's legacy builder sending such a Dockerfile."""

from __future__ import annotations

import io
import json
import secrets
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from test_build_api import build, build_containers, error_of, image_id, run_output

pytestmark = [pytest.mark.root]


def top_layer_names(daemon: Any, ref: str, index: int = -1) -> list[str]:
    """Entries of the image's last (or `index`) layer (from `docker save`)."""
    r = daemon.api("GET", f"/images/{ref}/get", timeout=60)
    assert r.status == 200
    outer = tarfile.open(fileobj=io.BytesIO(r.body))
    layers = json.load(outer.extractfile("manifest.json"))[0]["Layers"]
    return sorted(tarfile.open(fileobj=outer.extractfile(layers[index])).getnames())


def run_mounts(daemon: Any) -> str:
    """Mounts under the run's roots that a build could have left."""
    lines = Path("/proc/mounts").read_text().splitlines()
    return "\n".join(ln for ln in lines if str(daemon.names.root) in ln and "build-" in ln)


def tmp_leftovers(daemon: Any) -> list[str]:
    tmp = Path(daemon.names.data_root) / "tmp"
    return [p.name for p in tmp.iterdir()] if tmp.exists() else []


def test_cache_mount_persists_between_builds_and_stays_out_of_the_image(daemon: Any, busybox_image: str) -> None:
    cid = "itest-" + secrets.token_hex(4)
    first = (f"FROM busybox\nRUN --mount=type=cache,target=/root/.cache/pip,id={cid} "
             "echo downloaded > /root/.cache/pip/wheel && echo one > /one\n")
    msgs, _ = build(daemon, {"Dockerfile": first}, t="cachemount:1", nocache=True)
    assert error_of(msgs) is None, msgs
    assert top_layer_names(daemon, "cachemount:1") == ["one"]  # no root/.cache, no wheel
    second = (f"FROM busybox\nRUN --mount=type=cache,target=/var/cache/x,id={cid},sharing=locked "
              "cat /var/cache/x/wheel > /seen\n")
    msgs, _ = build(daemon, {"Dockerfile": second}, t="cachemount:2", nocache=True)
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "cachemount:2", "cat", "/seen") == "downloaded\n"
    assert top_layer_names(daemon, "cachemount:2") == ["seen"]
    assert run_output(daemon, "cachemount:2", "sh", "-c",
                      "test ! -e /var/cache/x && test ! -e /root/.cache && echo absent") == "absent\n"


def test_bind_from_the_context_is_readable_and_not_in_the_image(daemon: Any, busybox_image: str) -> None:
    files = {"Dockerfile": "FROM busybox\nWORKDIR /work\n"
                           "RUN --mount=source=conf,target=/ctx/conf --mount=source=data.txt,target=data.txt "
                           "cat /ctx/conf/a data.txt > /out && ! touch /ctx/conf/a 2>/dev/null\n"
                           "RUN --mount=target=/all,rw rm /all/data.txt && echo scratch > /all/new && ls /all > /ls\n",
             "data.txt": "data\n", "conf/a": "conf-a\n"}
    msgs, _ = build(daemon, files, t="bindctx:1", nocache=True)
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "bindctx:1", "cat", "/out") == "conf-a\ndata\n"
    # rw: writes allowed, and nothing reached the context (data.txt was still there for ls
    # only in the copy; the earlier step saw the original)
    assert run_output(daemon, "bindctx:1", "cat", "/ls").split() == ["Dockerfile", "conf", "new"]
    assert top_layer_names(daemon, "bindctx:1") == ["ls"]
    assert top_layer_names(daemon, "bindctx:1", -2) == ["out"]  # no work/ copied up for work/data.txt
    assert "ctx" not in run_output(daemon, "bindctx:1", "ls", "/").split()
    assert run_output(daemon, "bindctx:1", "ls", "-a", "/work") == ".\n..\n"
    assert not [n for n in tmp_leftovers(daemon) if n.startswith(".berth-mount-")]


def test_bind_from_a_stage_cache_seeds_and_tmpfs(daemon: Any, busybox_image: str) -> None:
    df = ("FROM busybox AS gen\nRUN mkdir /gen && echo generated > /gen/g\n"
          "FROM busybox\n"
          "RUN --mount=from=gen,source=/gen,target=/in cat /in/g > /out\n"
          "RUN --mount=from=gen,target=/stage,rw echo x > /stage/gen/new && cat /stage/gen/g >> /out\n"
          "RUN --mount=from=0,target=/stage test ! -e /stage/gen/new && echo clean >> /out\n"
          "RUN --mount=type=cache,target=/c,from=gen,source=/gen,id=seeded cat /c/g >> /out\n"
          "RUN --mount=type=cache,target=/u,uid=1000,gid=100,mode=0750 stat -c %u:%g:%a /u >> /out\n"
          "RUN --mount=type=tmpfs,target=/scratch,size=1m grep ' /scratch ' /proc/mounts > /tm && "
          "echo y > /scratch/y\n")
    msgs, text = build(daemon, {"Dockerfile": df}, t="bindstage:1", nocache=True)
    assert error_of(msgs) is None, text
    assert run_output(daemon, "bindstage:1", "cat", "/out") == \
        "generated\ngenerated\nclean\ngenerated\n1000:100:750\n"
    tm = run_output(daemon, "bindstage:1", "cat", "/tm")
    assert tm.split()[2] == "tmpfs" and "size=1024k" in tm, tm
    assert top_layer_names(daemon, "bindstage:1") == ["tm"]
    assert "scratch" not in run_output(daemon, "bindstage:1", "ls", "/").split()


def test_a_changed_bind_mounted_file_misses_the_cache(daemon: Any, busybox_image: str) -> None:
    df = "FROM busybox\nRUN --mount=source=req.txt,target=/req.txt cat /req.txt > /copy\n"
    msgs, _ = build(daemon, {"Dockerfile": df, "req.txt": "v1\n", "other": "a"})
    first = image_id(msgs)
    msgs, text = build(daemon, {"Dockerfile": df, "req.txt": "v1\n", "other": "b"})
    assert image_id(msgs) == first and "Using cache" in text
    msgs, text = build(daemon, {"Dockerfile": df, "req.txt": "v2\n", "other": "b"}, t="bindkey:2")
    assert image_id(msgs) != first
    assert "Cache miss: file changed: req.txt" in text
    assert run_output(daemon, "bindkey:2", "cat", "/copy") == "v2\n"


def test_bad_mounts_and_a_failed_run_leave_nothing(daemon: Any, busybox_image: str) -> None:
    before = set(build_containers(daemon))
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN --mount=type=bogus,target=/x true\n"})
    assert error_of(msgs) == ('Dockerfile:2: --mount=type=bogus,target=/x: unsupported mount type "bogus" '
                              "(one of: bind, cache, tmpfs, secret, ssh)")
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=tok true\n"})
    assert "Dockerfile:2:" in error_of(msgs) and "BuildKit session" in error_of(msgs)
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN true\nRUN --mount=from=nostage,target=/x true\n"})
    assert error_of(msgs).startswith("Dockerfile:3: --mount=from=nostage,target=/x:"), msgs
    df = ("FROM busybox AS s\nFROM busybox\nRUN --mount=type=cache,target=/c --mount=from=s,target=/s,rw "
          "--mount=source=f,target=/f,rw --mount=type=tmpfs,target=/t echo partial > /c/p && exit 4\n")
    msgs, _ = build(daemon, {"Dockerfile": df, "f": "x"}, t="mountfail:1")
    assert "returned a non-zero code: 4" in error_of(msgs)
    assert set(build_containers(daemon)) == before
    assert run_mounts(daemon) == ""
    # (the API unlinks its uploaded build-ctx-*.tar just after the response)
    assert not [n for n in tmp_leftovers(daemon)
                if n.startswith((".berth-mount-", "build-ctx-")) and not n.endswith(".tar")]
    # the failed step recorded no build-cache row; what it wrote to its cache mount stays,
    # as BuildKit keeps a cache mount's content whatever the command's outcome
    db = sqlite3.connect(f"file:{daemon.names.data_root}/berth.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT count(*) FROM build_cache WHERE instruction LIKE '%exit 4%'").fetchone()
    finally:
        db.close()
    assert rows == (0,)
    msgs, _ = build(daemon, {"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/c cat /c/p > /p\n"},
                    t="mountfail:2", nocache=True)
    assert run_output(daemon, "mountfail:2", "cat", "/p") == "partial\n"


def test_docker_cli_legacy_build_with_a_cache_mount(daemon: Any, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=cache,target=/cache,id=cli-cache "
        "sh -c 'date +%N >> /cache/log; wc -l < /cache/log > /runs'\n")
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    runs = []
    for n in (1, 2):
        p = subprocess.run(["/usr/bin/docker", "build", "--no-cache", "-t", f"cli-cache:{n}", str(tmp_path)],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        runs.append(int(run_output(daemon, f"cli-cache:{n}", "cat", "/runs")))
    assert runs[1] == runs[0] + 1


def test_builder_prune_removes_cache_mounts(daemon: Any, busybox_image: str) -> None:
    df = "FROM busybox\nRUN --mount=type=cache,target=/c,id=prune-me sh -c 'ls /c > /before; touch /c/mark'\n"
    msgs, _ = build(daemon, {"Dockerfile": df}, nocache=True)
    assert error_of(msgs) is None, msgs
    cache = daemon.api("GET", "/system/df").json()["BuildCache"]
    mine = [c for c in cache if c["Description"] == "cached mount prune-me"]
    assert len(mine) == 1 and mine[0]["Type"] == "exec.cachemount" and not mine[0]["InUse"], cache
    df_out = daemon.docker("system", "df").stdout
    assert any(ln.split()[:3] == ["Build", "Cache", str(len(cache))] for ln in df_out.splitlines()), df_out
    p = daemon.cli("builder", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert not any((Path(daemon.names.data_root) / "build-cache-mounts").iterdir())
    assert daemon.api("GET", "/system/df").json()["BuildCache"] == []
    msgs, _ = build(daemon, {"Dockerfile": df}, nocache=True, t="pruned:1")
    assert error_of(msgs) is None, msgs
    assert run_output(daemon, "pruned:1", "cat", "/before") == ""
