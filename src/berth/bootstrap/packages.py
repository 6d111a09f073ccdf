"""What a built rootfs holds: installed package versions, and the newest package's date.

The image's epoch (layer mtimes, config `created`) is the newest mtime among regular files
that dpkg unpacked from a package (listed in /var/lib/dpkg/info/*.list) and that nothing
rewrote during the build: for Debian's reproducible packages that is the package's own
build date, so the same package versions always give the same epoch.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path


def installed_versions(root: str | Path) -> dict[str, str]:
    """{package: version} from the rootfs's dpkg database."""
    admindir = Path(root) / "var/lib/dpkg"
    out = subprocess.run(["dpkg-query", f"--admindir={admindir}", "-W",
                          "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"],
                         capture_output=True, text=True, check=True).stdout
    versions = {}
    for line in out.splitlines():
        pkg, version, status = (line.split("\t") + ["", ""])[:3]
        if status.startswith("ii"):
            versions[pkg] = version
    return versions


def host_package_version(package: str) -> str:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout:
        raise FileNotFoundError(f"package {package} is not installed on this host")
    return res.stdout.strip()


def newest_package_mtime(root: str | Path, before: float, packages: list[str] | None = None) -> int:
    """Newest mtime (whole seconds) of package-shipped regular files older than `before`.

    `packages` limits the scan to those packages (names as in the .list files, with or
    without ':arch'); None scans all. Returns 0 when nothing qualifies.
    """
    root = Path(root)
    info = root / "var/lib/dpkg/info"
    best = 0
    wanted = set(packages) if packages is not None else None
    for lst in sorted(info.glob("*.list")):
        pkg = lst.stem
        if wanted is not None and pkg not in wanted and pkg.split(":")[0] not in wanted:
            continue
        for line in lst.read_text(errors="surrogateescape").splitlines():
            p = root / line.lstrip("/")
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mtime < before:
                best = max(best, int(st.st_mtime))
    return best
