"""`build_image("python:3.11-slim", out)`: recipe -> rootfs -> one deterministic layer ->
image config -> `docker save` archive, stating what it was built from.

Reproducibility: the layer's mtimes and the config's `created` are the newest package's
date (see `packages.newest_package_mtime`), maintainer scripts run with the recipe's fixed
SOURCE_DATE_EPOCH, host-specific files are emptied and caches/logs stripped, so the same
recipe and the same package versions give the same image id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import hostca
from .archive import canonical_json, host_architecture, image_config, rfc3339, write_docker_archive
from .errors import BootstrapError
from .layertar import write_layer_file
from .packages import host_package_version, installed_versions, newest_package_mtime
from .recipes import Recipe, lookup, upstream_version, version_matches
from .rootfs import (
    BUSYBOX,
    add_files,
    busybox_rootfs,
    neutral_host_files,
    remove_workdir,
    run_mmdebstrap,
    strip,
)
from .sources import SourceEntry, describe, for_suite, mirror_uris, read_sources, render_deb822

# Bump when the builder's output changes for the same recipe (invalidates caches).
BUILDER_VERSION = "3"
CACHE_ENV = "BERTH_BOOTSTRAP_CACHE"


@dataclass
class BootstrapResult:
    tar_path: Path            # `docker save` archive (manifest.json + config + one layer)
    reference: str            # e.g. "python:3.11-slim"
    description: str          # what it was built from: recipe, suite, mirror, package versions
    image_id: str             # sha256:<config digest>
    packages: dict[str, str] = field(default_factory=dict)   # main packages -> Debian version
    created: str = ""         # RFC 3339, from the newest package's date
    layer_size: int = 0
    package_count: int = 0
    cached: bool = False


def _main_versions(recipe: Recipe, installed: dict[str, str]) -> dict[str, str]:
    out = {}
    for pkg in recipe.main_packages:
        if pkg not in installed:
            raise BootstrapError(f"bootstrap: {recipe.reference}: package {pkg} was not installed "
                                 f"from the mirror")
        out[pkg] = installed[pkg]
    first = recipe.main_packages[0]
    if recipe.version and not version_matches(recipe.version, out[first]):
        raise BootstrapError(
            f"bootstrap: {recipe.reference}: the mirror provides {first} {out[first]}, not "
            f"{recipe.ships}; refusing to label it {recipe.reference}")
    return out


def _labels(recipe: Recipe, versions: dict[str, str], mirrors: list[str],
            created: str, cas: list[hostca.HostCA]) -> dict[str, str]:
    """Labels name the recipe's canonical reference, so aliases (debian:12-slim and
    debian:bookworm-slim) are one image with one id, as on Docker Hub."""
    first = recipe.main_packages[0]
    labels = {
        "org.opencontainers.image.title": recipe.reference,
        "org.opencontainers.image.description":
            f"{recipe.summary}; built by berth bootstrap from Debian {recipe.suite} packages",
        "org.opencontainers.image.source": " ".join(mirrors),
        "org.opencontainers.image.version": upstream_version(versions[first]),
        "org.opencontainers.image.created": created,
        "io.berth.bootstrap.recipe": recipe.reference,
        "io.berth.bootstrap.suite": recipe.suite,
        "io.berth.bootstrap.packages": " ".join(f"{p}={v}" for p, v in versions.items()),
    }
    if cas:
        labels["io.berth.bootstrap.host-ca"] = hostca.label(cas)
    labels.update(dict(recipe.labels))
    return labels


def _describe(recipe: Recipe, reference: str, versions: dict[str, str], origin: str,
              count: int, created: str, cas: list[hostca.HostCA]) -> str:
    if recipe.source == "busybox":
        how = f"built from Debian {recipe.suite}'s busybox-static as installed on this host (no mmdebstrap)"
    else:
        how = (f"built from Debian {recipe.suite} packages with mmdebstrap --variant={recipe.variant}"
               + (" (slim: no docs, man pages, locales, apt lists)" if recipe.slim else ""))
    pkgs = ", ".join(f"{p} {v}" for p, v in versions.items())
    lines = [f"{reference}: {recipe.summary}", how,
             f"{'apt sources' if recipe.source == 'busybox' else 'mirror'}: {origin}",
             f"packages: {pkgs}" + (f" ({count} installed)" if count > 1 else ""),
             f"dated {created} (newest package)"]
    lines += [f"note: {n}" for n in recipe.notes]
    if cas:
        lines.append(f"note: also trusts this host's local CA certificates from {hostca.HOST_CA_DIR}: "
                     f"{', '.join(ca.name for ca in cas)} (disable with {hostca.HOST_CA_ENV}=0)")
    return "\n".join(lines)


def _cache_key(recipe: Recipe, reference: str, sources: list[SourceEntry],
               cas: list[hostca.HostCA]) -> str:
    h = hashlib.sha256()
    for part in (BUILDER_VERSION, recipe.digest(), reference, render_deb822(sources), hostca.label(cas)):
        h.update(part.encode() + b"\0")
    if recipe.source == "busybox":
        h.update(host_package_version("busybox-static").encode())
    return h.hexdigest()[:16]


def _cache_paths(cache_dir: Path, recipe: Recipe, reference: str, sources: list[SourceEntry],
                 cas: list[hostca.HostCA]) -> tuple[Path, Path]:
    day = datetime.now(UTC).strftime("%Y%m%d")
    key = _cache_key(recipe, reference, sources, cas)
    stem = f"{reference.replace(':', '_').replace('/', '_')}-{key}-{day}"
    return cache_dir / f"{stem}.tar", cache_dir / f"{stem}.json"


def _make_parents(d: Path) -> list[Path]:
    """mkdir -p, returning the directories it created, deepest first."""
    missing = []
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        m.mkdir(exist_ok=True)
    return missing


def _copy_atomic(src: Path, dest: Path) -> None:
    """A copy (never a hard link: whoever gets the archive may rewrite it), renamed into place."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _from_cache(tar: Path, meta: Path, out_path: Path) -> BootstrapResult | None:
    if not (tar.is_file() and meta.is_file()):
        return None
    try:
        data = json.loads(meta.read_text())
        data.pop("tar_path", None)
        data["cached"] = True
        result = BootstrapResult(tar_path=out_path, **data)
        _copy_atomic(tar, out_path)
    except (ValueError, TypeError, OSError):
        return None    # unreadable or removed meanwhile: build afresh
    return result


def _to_cache(result: BootstrapResult, tar: Path, meta: Path) -> None:
    tar.parent.mkdir(parents=True, exist_ok=True)
    # Entries of the same reference from other days or recipes are stale: drop them.
    ref = tar.name.rsplit("-", 2)[0]
    same_ref = re.compile(re.escape(ref) + r"-[0-9a-f]{16}-[0-9]{8}\.(tar|json)")
    for old in tar.parent.iterdir():
        if old.name not in (tar.name, meta.name) and same_ref.fullmatch(old.name):
            old.unlink(missing_ok=True)
    _copy_atomic(result.tar_path, tar)
    data = asdict(result)
    data["tar_path"] = str(tar)
    tmp = meta.with_name(f".{meta.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, meta)


def build_image(name_tag: str, out_path: str | Path, log: Callable[[str], None] = print, *,
                cache_dir: str | Path | None = None,
                work_dir: str | Path | None = None,
                host_ca: bool | None = None) -> BootstrapResult:
    """Build NAME:TAG from its recipe into a `docker save` archive at `out_path`.

    `cache_dir` (default: $BERTH_BOOTSTRAP_CACHE, else no cache) reuses an archive built
    today from the same recipe and sources (copied to `out_path`). `work_dir` is where the
    temporary rootfs goes.
    `host_ca` (default: on unless $BERTH_BOOTSTRAP_HOST_CA=0) adds the host's local CA
    certificates to images that include ca-certificates (see `hostca`).
    Raises InvalidParameter for an unknown or unbuildable NAME:TAG, BootstrapError when
    the build fails; nothing is left behind in either case.
    """
    recipe, tag = lookup(name_tag)
    reference = f"{recipe.name}:{tag}"
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / f"{reference.replace(':', '_')}.tar"
    cache_dir = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or None
    try:
        sources = for_suite(read_sources(), recipe.suite)
    except BootstrapError:
        if recipe.source != "busybox":
            raise
        sources = []   # busybox comes from the host's dpkg database, no mirror needed
    cas = hostca.host_cas() if recipe.trusts_host_ca and hostca.wanted(host_ca) else []
    cache: tuple[Path, Path] | None = None
    if cache_dir is not None:
        cache = _cache_paths(Path(cache_dir), recipe, reference, sources, cas)
        hit = _from_cache(*cache, out_path)
        if hit is not None:
            log(f"bootstrap: {reference}: using the archive built earlier today ({cache[0]})")
            return hit
    origin = describe(sources) or "none configured"
    log(f"bootstrap: building {reference} from Debian {recipe.suite} ({origin})")
    work = Path(tempfile.mkdtemp(prefix="berth-bootstrap-", dir=work_dir))
    work.chmod(0o755)     # lets apt's download sandbox (user _apt) reach the rootfs
    tmp_out = out_path.with_name(f".{out_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    made_dirs: list[Path] = []
    try:
        root = work / "rootfs"
        started = time.time()
        if recipe.source == "busybox":
            installed = {"busybox-static": host_package_version("busybox-static")}
            versions = _main_versions(recipe, installed)
            root.mkdir()
            busybox_rootfs(root, BUSYBOX)
            epoch = newest_package_mtime(Path("/"), before=started, packages=["busybox-static"])
        else:
            ca_dir = hostca.stage(cas, work / "host-ca") if cas else None
            run_mmdebstrap(recipe, root, sources, work, log, ca_dir)
            installed = installed_versions(root)
            versions = _main_versions(recipe, installed)
            epoch = newest_package_mtime(root, before=started)
            neutral_host_files(root)
        epoch = epoch or recipe.epoch
        removed = strip(root, recipe.strip_globs())
        add_files(root, recipe)
        log(f"bootstrap: {len(installed)} packages, {removed} paths stripped; writing the layer")
        created = rfc3339(epoch)
        layer_path = work / "layer.tar"
        layer = write_layer_file(root, layer_path, epoch)
        env = [f"{k}={v}" for k, v in recipe.env]
        env += [f"{k}={upstream_version(installed[p])}" for k, p in recipe.version_env]
        mirrors = mirror_uris(sources)
        labels = _labels(recipe, versions, mirrors, created, cas)
        created_by = f"berth bootstrap {recipe.reference} (Debian {recipe.suite})"
        config = image_config(
            diff_id=layer.diff_id, epoch=epoch, env=env, cmd=list(recipe.cmd),
            entrypoint=list(recipe.entrypoint), workdir=recipe.workdir,
            exposed_ports=list(recipe.exposed_ports), stop_signal=recipe.stop_signal,
            labels=labels, created_by=created_by,
            comment=" ".join(f"{p}={v}" for p, v in versions.items()),
            architecture=host_architecture())
        made_dirs = _make_parents(out_path.parent)
        image_id = write_docker_archive(tmp_out, config=canonical_json(config), layer_path=layer_path,
                                        diff_id=layer.diff_id, repo_tags=[reference], epoch=epoch)
        os.replace(tmp_out, out_path)
        result = BootstrapResult(
            tar_path=out_path, reference=reference,
            description=_describe(recipe, reference, versions, origin, len(installed), created, cas),
            image_id=image_id, packages=versions, created=created, layer_size=layer.size,
            package_count=len(installed))
    except BaseException:
        tmp_out.unlink(missing_ok=True)
        for d in made_dirs:          # deepest first; only the ones this build created
            try:
                d.rmdir()
            except OSError:
                break
        raise
    finally:
        if tmp_out.exists():
            tmp_out.unlink()
        remove_workdir(work)
    if cache is not None:
        try:
            _to_cache(result, *cache)
        except OSError as e:
            log(f"bootstrap: could not store {reference} in the cache {cache_dir}: {e}")
    log(f"bootstrap: built {reference} {image_id} ({layer.size // (1 << 20)} MiB layer)")
    return result
