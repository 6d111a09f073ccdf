"""Overlay snapshots, one per container (or build step), under `containers/<key>/`:
`rootfs/` (the overlay mount point), `upper/`, `work/` and `snapshot.json` (the lower dirs,
so a restarted daemon can mount it again). Mounting goes through `berth.kernel`."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from berth import kernel
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.image.layers import LayerStore

PAGE = 4096
_OWN = ("rootfs", "upper", "work", "empty", "snapshot.json")


def is_mounted(path: str | Path) -> bool:
    p = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and _unescape(fields[4]) == p:
                return True
    return False


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


class Snapshots:
    def __init__(self, root: str | Path, layers: LayerStore | None = None) -> None:
        self.root = Path(root)
        self.layers = layers
        self.root.mkdir(parents=True, exist_ok=True)
        # called with the key after a snapshot is removed (the image service frees the
        # layers of deleted images that only this snapshot still held)
        self.on_removed: Callable[[str], None] | None = None

    def dir(self, key: str) -> Path:
        if not key or "/" in key or key in (".", ".."):
            raise InvalidParameter(f"invalid snapshot key {key!r}")
        return self.root / key

    def merged(self, key: str) -> str:
        return str(self.dir(key) / "rootfs")

    def upper(self, key: str) -> str:
        return str(self.dir(key) / "upper")

    def work(self, key: str) -> str:
        return str(self.dir(key) / "work")

    def exists(self, key: str) -> bool:
        return (self.dir(key) / "snapshot.json").is_file()

    def lower_dirs(self, key: str) -> list[str]:
        try:
            return json.loads((self.dir(key) / "snapshot.json").read_text())["lower"]
        except FileNotFoundError:
            raise NotFound(f"snapshot {key} not found") from None

    def prepare(self, key: str, lower_dirs: list[str], mount: bool = True) -> str:
        """Create upper/work dirs over `lower_dirs` (top-most first) and mount the overlay
        on `rootfs/`. Returns the merged path. On failure nothing is left behind."""
        d = self.dir(key)
        if self.exists(key):
            raise Conflict(f"snapshot {key} already exists")
        created_dir = not d.exists()
        try:
            d.mkdir(parents=True, exist_ok=True)
            for sub in ("rootfs", "upper", "work"):
                (d / sub).mkdir(mode=0o755)
            lowers = list(lower_dirs)
            if not lowers:  # overlay needs a lower dir: an empty one for `FROM scratch`
                (d / "empty").mkdir(mode=0o755)
                lowers = [str(d / "empty")]
            (d / "snapshot.json").write_text(json.dumps({"lower": lowers}))
            if mount:
                self.mount(key)
            return self.merged(key)
        except BaseException:
            self._remove_dirs(d, created_dir)
            raise

    def _options(self, key: str, lowers: list[str]) -> str:
        return (f"lowerdir={':'.join(lowers)},upperdir={self.upper(key)},"
                f"workdir={self.work(key)},redirect_dir=off,metacopy=off")

    def mount(self, key: str) -> str:
        merged = self.merged(key)
        if is_mounted(merged):
            return merged
        lowers = self.lower_dirs(key)
        opts = self._options(key, lowers)
        if len(opts) < PAGE:
            kernel.mount("overlay", merged, "overlay", 0, opts)
            return merged
        # Many layers: name them relative to the layer store (`l/<short>`), as overlay2
        # does, and mount from a child whose working directory is the layer store (the
        # daemon is multi-threaded, so it never changes its own cwd).
        base = self.layers.root if self.layers is not None else None
        if base is None or not all(os.path.dirname(p) == str(base / "l") for p in lowers):
            raise InvalidParameter(f"too many layers ({len(lowers)}) for an overlay mount")
        rel = [os.path.relpath(p, base) for p in lowers]
        opts = self._options(key, rel)
        if len(opts) >= PAGE:
            raise InvalidParameter(f"too many layers ({len(lowers)}) for an overlay mount")
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, merged], cwd=base,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(f"mount overlay on {merged} ({len(lowers)} layers): {r.stderr.strip()}")
        return merged

    def unmount(self, key: str) -> None:
        merged = self.merged(key)
        if not is_mounted(merged):
            return
        try:
            kernel.umount(merged)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            kernel.umount(merged, kernel.MNT_DETACH)

    def remove(self, key: str) -> None:
        """Unmount and delete the snapshot's dirs (the container dir itself goes when empty)."""
        d = self.dir(key)
        if not d.exists():
            return
        self.unmount(key)
        self._remove_dirs(d, True)
        if self.on_removed is not None:
            self.on_removed(key)

    def _remove_dirs(self, d: Path, rmdir: bool) -> None:
        merged = d / "rootfs"
        if merged.exists() and is_mounted(merged):
            kernel.umount(str(merged), kernel.MNT_DETACH)
        for name in _OWN:
            p = d / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        if rmdir:
            try:
                d.rmdir()
            except OSError:
                pass

    def diff(self, key: str) -> tuple[str, str]:
        """The snapshot's changes as a layer tar: (tar path, diff_id)."""
        if self.layers is None:
            raise RuntimeError("Snapshots made without a LayerStore cannot diff")
        return self.layers.diff(self.upper(key))
