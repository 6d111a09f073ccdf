"""The `local` volume driver: a volume is the directory volumes/<name>/_data (optionally a
filesystem mounted there from `type`/`device`/`o` options, as Docker's local driver does)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from berth import kernel
from berth.errors import BerthError, InvalidParameter

OPTION_KEYS = ("type", "device", "o", "size")


def check_options(options: dict[str, str]) -> None:
    bad = sorted(set(options) - set(OPTION_KEYS))
    if bad:
        raise InvalidParameter(f"invalid option key: {bad[0]!r} (the local driver accepts "
                               f"{', '.join(OPTION_KEYS)})")
    if options and options.get("type") and not options.get("device"):
        raise InvalidParameter("missing required option: \"device\"")


def resolve_in_root(root: str, path: str) -> str:
    """`path` inside the tree at `root`, symlinks resolved as if `root` were `/`."""
    parts = [p for p in path.split("/") if p and p != "."]
    current = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.rsplit("/", 1)[0] if current else ""
            continue
        candidate = f"{current}/{part}"
        full = root + candidate
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                raise InvalidParameter(f"too many symbolic links resolving {path}")
            link = os.readlink(full)
            if link.startswith("/"):
                current = ""
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        current = candidate
    return root + (current or "/")


class LocalDriver:
    def __init__(self, root: Path) -> None:
        self.root = root

    def base(self, name: str) -> Path:
        return self.root / name

    def data(self, name: str) -> Path:
        return self.root / name / "_data"

    def create(self, name: str) -> Path:
        d = self.data(name)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base(name), 0o701)
        return d

    def is_mounted(self, name: str) -> bool:
        d = str(self.data(name))
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == d for line in f)

    def mount(self, name: str, options: dict[str, str]) -> None:
        """Mount the filesystem a volume with type/device/o options describes."""
        if not options.get("type") or self.is_mounted(name):
            return
        data = options.get("o") or None
        try:
            kernel.mount(options["device"], str(self.data(name)), options["type"], 0, data)
        except OSError as exc:
            raise BerthError(f"error while mounting volume {name!r}: {exc}") from None

    def unmount(self, name: str) -> None:
        if self.is_mounted(name):
            with contextlib.suppress(OSError):
                kernel.umount(str(self.data(name)), kernel.MNT_DETACH)

    def remove(self, name: str) -> None:
        self.unmount(name)
        shutil.rmtree(self.base(name), ignore_errors=True)
        if self.base(name).exists():
            raise BerthError(f"remove {name}: could not delete {self.base(name)}")

    def is_empty(self, name: str) -> bool:
        try:
            return not any(os.scandir(self.data(name)))
        except FileNotFoundError:
            return True

    def copy_up(self, name: str, src: str) -> None:
        """Fill an empty volume with the image's content at its mount point (owners, modes,
        links and times kept); the volume root takes the source directory's owner/mode."""
        if not os.path.isdir(src):
            return
        dest = self.data(name)
        st = os.stat(src)
        if any(os.scandir(src)):
            proc = subprocess.run(["cp", "-a", "--", f"{src}/.", f"{dest}/"], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BerthError(f"copying image content into volume {name!r} failed: {proc.stderr.strip()}")
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, st.st_mode & 0o7777)

    def size(self, name: str) -> int:
        total = 0
        for dirpath, _dirs, names in os.walk(self.data(name)):
            for n in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
        return total
