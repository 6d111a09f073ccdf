"""json-file rotation (`--log-opt max-size=... --log-opt max-file=N`) through berthd with the
real docker CLI: the log rotates to LOG.1 .. LOG.<N-1>, `logs` reads across the files in
order (with --tail too) and `logs -f` follows across a rotation and across max-size alone
starting the log over; a bad max-file is refused."""

from __future__ import annotations

import json
import os

import pytest

from support import ok

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]

# 400 numbered lines of 40 bytes: ~34 KiB of json-file records against 4 KiB files
PRINT = "i=1; while [ $i -le 400 ]; do printf 'line %04d %s\\n' $i aaaaaaaaaaaaaaaaaaaaaaaaaaaa; i=$((i+1)); done"



def _numbers(out: str) -> list[int]:
    return [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("line ")]


def test_rotated_logs_are_kept_read_in_order_and_tailed(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    name = "lr-rotate"
    try:
        ok(d.docker("run", "--name", name, "--log-opt", "max-size=4k", "--log-opt", "max-file=3",
                     busybox_image, "sh", "-c", PRINT))
        path = json.loads(ok(d.docker("inspect", name)))[0]["LogPath"]
        assert os.path.exists(path + ".1") and os.path.exists(path + ".2")
        assert not os.path.exists(path + ".3")
        assert all(os.path.getsize(p) <= 4096 for p in (path, path + ".1", path + ".2"))
        nums = _numbers(ok(d.docker("logs", name)))
        # the newest lines, contiguous and in order, ending with the last one; older ones dropped
        assert nums == list(range(nums[0], 401)) and 1 < nums[0] < 400, nums[:3]
        # a 4 KiB file holds fewer than 50 of these records: the tail spans two files
        assert _numbers(ok(d.docker("logs", "--tail", "50", name))) == list(range(351, 401))
    finally:
        d.docker("rm", "-f", name)


def test_logs_follow_continues_across_a_rotation(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    name = "lr-follow"
    slow = "sleep 1; " + PRINT.replace("i=$((i+1))", "i=$((i+1)); [ $((i % 50)) -eq 0 ] && sleep 0.2")
    try:
        ok(d.docker("run", "-d", "--name", name, "--log-opt", "max-size=4k", "--log-opt", "max-file=20",
                     busybox_image, "sh", "-c", slow))
        followed = _numbers(ok(d.docker("logs", "-f", name)))
        assert followed == list(range(1, 401))
    finally:
        d.docker("rm", "-f", name)


def test_logs_follow_continues_when_max_size_alone_starts_the_log_over(daemon, busybox_image) -> None:  # noqa: ANN001
    """max-size without max-file keeps one file: when full it starts over, and a follower goes
    on with the new one. (A file replaced twice between two looks is gone for good, as with
    Docker's single file: the writer here fills one in about half a second.)"""
    d = daemon
    name = "lr-over"
    slow = "sleep 1; " + PRINT.replace("i=$((i+1))", "i=$((i+1)); [ $((i % 5)) -eq 0 ] && sleep 0.05")
    try:
        ok(d.docker("run", "-d", "--name", name, "--log-opt", "max-size=4k", busybox_image, "sh", "-c", slow))
        followed = _numbers(ok(d.docker("logs", "-f", name)))
        assert followed == list(range(1, 401))
        path = json.loads(ok(d.docker("inspect", name)))[0]["LogPath"]
        assert os.path.getsize(path) <= 4096
        assert [p for p in os.listdir(os.path.dirname(path)) if p.startswith(os.path.basename(path) + ".")] == []
        # the file now holds only the last lines
        nums = _numbers(ok(d.docker("logs", name)))
        assert nums == list(range(nums[0], 401)) and nums[0] > 300
    finally:
        d.docker("rm", "-f", name)


def test_bad_max_file_is_refused_and_leaves_no_container(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    for bad, says in (("0", "max-file cannot be less than 1"), ("lots", "max-file")):
        r = d.docker("create", "--name", "lr-bad", "--log-opt", f"max-file={bad}", busybox_image, "true")
        assert r.returncode != 0 and says in r.stderr, r.stderr
        assert "lr-bad" not in ok(d.docker("ps", "-a", "--format", "{{.Names}}")).split()
