"""Making a recipe's root filesystem in a directory: mmdebstrap or busybox-static, then the
recipe's strip list, extra files and symlinks. Paths inside the rootfs are never followed
out of it, and whatever mmdebstrap leaves mounted under the work dir is unmounted.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path

from berth import kernel

from .errors import BootstrapError
from .hostca import IMAGE_CA_DIR
from .recipes import Recipe
from .sources import SourceEntry, render_deb822

BUSYBOX = "/bin/busybox"
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"


def inside(root: Path, path: str) -> Path:
    """`path` (absolute in the image) under `root`, refusing parents that leave the rootfs."""
    rel = path.lstrip("/")
    target = root / rel
    parent = os.path.realpath(target.parent)
    real_root = os.path.realpath(root)
    if parent != real_root and not parent.startswith(real_root + os.sep):
        raise BootstrapError(f"bootstrap: {path} resolves outside the image root")
    return Path(parent) / target.name


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def strip(root: Path, globs: tuple[str, ...]) -> int:
    """Remove everything matching the globs (relative to the rootfs); returns the count."""
    removed = 0
    real_root = os.path.realpath(root)
    for pattern in globs:
        for match in sorted(glob.glob(os.path.join(glob.escape(str(root)), pattern),
                                      recursive=True, include_hidden=True), reverse=True):
            p = Path(match)
            parent = os.path.realpath(p.parent)
            if parent != real_root and not parent.startswith(real_root + os.sep):
                continue
            if p.exists() or p.is_symlink():
                _remove(p)
                removed += 1
    return removed


def add_files(root: Path, recipe: Recipe) -> None:
    for f in recipe.files:
        dest = inside(root, f.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            _remove(dest)
        dest.write_text(f.content)
        os.chmod(dest, f.mode)
    for path, target in recipe.symlinks:
        dest = inside(root, path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            _remove(dest)
        os.symlink(target, dest)


def neutral_host_files(root: Path) -> None:
    """mmdebstrap copies the host's resolv.conf and hostname in: make them empty."""
    for name in ("etc/resolv.conf", "etc/hostname"):
        dest = inside(root, "/" + name)
        if dest.is_symlink() or dest.exists():
            _remove(dest)
        dest.write_text("")
        os.chmod(dest, 0o644)


def busybox_rootfs(root: Path, busybox: str = BUSYBOX) -> None:
    """/bin/busybox from the host's busybox-static, a symlink per applet, the usual dirs."""
    for d, mode in (("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755),
                    ("usr/sbin", 0o755), ("etc", 0o755), ("dev", 0o755), ("proc", 0o755),
                    ("sys", 0o755), ("home", 0o755), ("root", 0o700), ("tmp", 0o1777),
                    ("var", 0o755), ("var/spool", 0o755), ("var/spool/mail", 0o755),
                    ("var/www", 0o755)):
        (root / d).mkdir(exist_ok=True)
        os.chmod(root / d, mode)
    dest = root / "bin/busybox"
    shutil.copyfile(busybox, dest)
    os.chmod(dest, 0o755)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in sorted(set(applets)):
        rel = a.lstrip("/")
        if rel == "bin/busybox" or not rel:
            continue
        link = inside(root, "/" + rel)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            os.symlink("/bin/busybox", link)


def mmdebstrap_command(recipe: Recipe, root: Path, sources_file: Path,
                       ca_dir: Path | None = None) -> list[str]:
    """The mmdebstrap argv; `ca_dir` holds extra CA certificates to trust inside the image."""
    cmd = ["mmdebstrap", "--mode=root", "--format=directory", f"--variant={recipe.variant}",
           "--aptopt=Acquire::Languages \"none\"", f"--hook-dir={MERGED_USR_HOOKS}",
           # no fsync per unpacked file (a third faster here); Docker's debian images ship
           # the same setting (docker-apt-speedup), so it stays in 99mmdebstrap too.
           "--dpkgopt=force-unsafe-io"]
    cmd += [f"--dpkgopt={o}" for o in recipe.dpkg_filters()]
    if recipe.packages:
        cmd.append("--include=" + ",".join(recipe.packages))
    if ca_dir is not None:
        cmd += [f"--customize-hook=sync-in {ca_dir} {IMAGE_CA_DIR}",
                '--customize-hook=chroot "$1" update-ca-certificates']
    cmd += [recipe.suite, str(root), str(sources_file)]
    return cmd


def run_mmdebstrap(recipe: Recipe, root: Path, sources: list[SourceEntry], work: Path,
                   log: Callable[[str], None], ca_dir: Path | None = None) -> None:
    """Install the recipe's packages into `root` (which must not exist or be empty)."""
    if shutil.which("mmdebstrap") is None:
        raise BootstrapError("bootstrap: mmdebstrap is not installed (apt-get install mmdebstrap)")
    sources_file = work / "debian.sources"
    sources_file.write_text(render_deb822(sources))
    cmd = mmdebstrap_command(recipe, root, sources_file, ca_dir)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(recipe.epoch), LC_ALL="C.UTF-8",
               DEBIAN_FRONTEND="noninteractive", TMPDIR=str(work))
    log("bootstrap: " + " ".join(cmd[:-2]).replace(str(work), "<work>") + " <rootfs> <sources>")
    tail: deque[str] = deque(maxlen=25)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            if line.startswith(("I:", "E:", "W:")):
                log("bootstrap: mmdebstrap " + line)
        rc = proc.wait()
    except BaseException:
        # mmdebstrap's apt and dpkg children share its session: stop them all before the
        # caller unmounts and deletes the half-made rootfs.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if rc != 0:
        raise BootstrapError(f"bootstrap: mmdebstrap failed for {recipe.reference} (exit {rc}):\n"
                             + "\n".join(tail))


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if mp == prefix or mp.startswith(prefix + "/"):
                points.append(mp)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_all(path: Path) -> None:
    for _ in range(3):
        points = mounts_under(path)
        if not points:
            return
        for mp in points:
            try:
                kernel.umount(mp, kernel.MNT_DETACH)
            except OSError:
                pass
    left = mounts_under(path)
    if left:
        raise BootstrapError(f"bootstrap: could not unmount {', '.join(left)}")


def remove_workdir(work: Path) -> None:
    """Unmount anything left below `work`, then delete it."""
    if not work.exists():
        return
    unmount_all(work)
    shutil.rmtree(work, ignore_errors=True)
    if work.exists():
        shutil.rmtree(work)
