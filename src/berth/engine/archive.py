"""`docker cp` and `docker export` helper: `python -m berth.engine.archive OP ROOT [PATH]`.

Run as a separate process by the daemon: it chroots into ROOT (a running container's
`/proc/<pid>/root`, which includes its volumes, or a stopped container's rootfs), so paths
and symlinks resolve inside the container and extraction cannot write outside it.

  stat ROOT PATH     one JSON line: Docker's path stat (name, size, mode as Go's FileMode,
                     mtime, linkTarget)
  get ROOT PATH      the stat line, then a tar of PATH (top entry named after PATH's base)
  put ROOT PATH      extract the tar on stdin into the directory PATH
  export ROOT        a tar of the whole filesystem
Exit status 2 with the message on stderr when PATH does not exist, 3 when it is not a
directory (put), 1 for other errors.
"""

from __future__ import annotations

import json
import os
import stat as st
import sys
import tarfile
import time

GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_mode(mode: int) -> int:
    """A stat mode as Go's os.FileMode (what the docker CLI decodes)."""
    m = mode & 0o777
    if st.S_ISDIR(mode):
        m |= GO_DIR
    elif st.S_ISLNK(mode):
        m |= GO_SYMLINK
    elif st.S_ISFIFO(mode):
        m |= GO_PIPE
    elif st.S_ISSOCK(mode):
        m |= GO_SOCKET
    elif st.S_ISCHR(mode):
        m |= GO_DEVICE | GO_CHARDEV
    elif st.S_ISBLK(mode):
        m |= GO_DEVICE
    if mode & st.S_ISUID:
        m |= GO_SETUID
    if mode & st.S_ISGID:
        m |= GO_SETGID
    if mode & st.S_ISVTX:
        m |= GO_STICKY
    return m


def path_stat(path: str) -> dict:
    s = os.lstat(path)
    link = os.readlink(path) if st.S_ISLNK(s.st_mode) else ""
    mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s.st_mtime)) + f".{s.st_mtime_ns % 10**9:09d}Z"
    name = os.path.basename(path.rstrip("/")) or "/"
    return {"name": name, "size": s.st_size, "mode": go_mode(s.st_mode), "mtime": mtime, "linkTarget": link}


def _fail(code: int, msg: str) -> None:
    sys.stderr.write(msg)
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str]) -> None:
    op, root = argv[0], argv[1]
    path = argv[2] if len(argv) > 2 else "/"
    os.chroot(root)
    os.chdir("/")
    if not path.startswith("/"):
        path = "/" + path
    out = sys.stdout.buffer
    if op == "export":
        with tarfile.open(fileobj=out, mode="w|") as tar:
            for entry in sorted(os.listdir("/")):
                tar.add("/" + entry, arcname=entry)
        return
    contents = path.endswith("/.")
    if op in ("stat", "get"):
        try:
            info = path_stat(path.rstrip(".") if contents else path)
        except FileNotFoundError:
            _fail(2, f"Could not find the file {path} in container")
        out.write(json.dumps(info).encode() + b"\n")
        if op == "get":
            out.flush()
            with tarfile.open(fileobj=out, mode="w|") as tar:
                if contents:
                    base = path[:-2] or "/"
                    for entry in sorted(os.listdir(base)):
                        tar.add(os.path.join(base, entry), arcname=entry)
                else:
                    tar.add(path, arcname=info["name"] if info["name"] != "/" else ".")
        out.flush()
        return
    if op == "put":
        if not os.path.lexists(path):
            _fail(2, f"Could not find the file {path} in container")
        if not os.path.isdir(path):
            _fail(3, "extraction point is not a directory")
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
            for member in tar:
                name = os.path.normpath(member.name)
                if name.startswith("..") or os.path.isabs(name):
                    _fail(1, f"invalid path in archive: {member.name}")
                tar.extract(member, path)
        return
    _fail(1, f"unknown operation {op}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except OSError as exc:
        _fail(1, str(exc))
