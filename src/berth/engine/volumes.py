"""Engine service: volumes (local driver) and the mounts of a container.

Tables: `volumes` (one row per volume) and `volume_refs` (which container uses which
volume at which target; a volume with a reference is in use and cannot be removed).
`prepare_mounts` is idempotent per container: a restarted container gets back the same
anonymous volumes; `release` drops its references (and, asked to, its anonymous volumes).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from berth.config import DaemonConfig
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.volume import mounts as mspec
from berth.volume.local import LocalDriver, check_options, resolve_in_root
from berth.volume.mounts import MountPoint, MountSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  driver TEXT NOT NULL DEFAULT 'local',
  labels TEXT NOT NULL DEFAULT '{}',
  options TEXT NOT NULL DEFAULT '{}',
  anonymous INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_refs (
  container_id TEXT NOT NULL,
  name TEXT NOT NULL REFERENCES volumes(name),
  target TEXT NOT NULL,
  PRIMARY KEY (container_id, target)
);
"""

ANON_LABEL = "com.docker.volume.anonymous"


def parse_volumes_from(spec: str) -> tuple[str, bool]:
    """`--volumes-from NAME[:MODE]` (Docker's ParseVolumesFrom) -> (container, force
    read-only). MODE is ro or rw, with z/Z allowed; propagation and copy modes are not."""
    if not spec:
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    name, _, mode = spec.partition(":")
    opts = mode.split(",") if mode else []
    if any(o not in ("ro", "rw", "z", "Z") for o in opts) or sum(o in ("ro", "rw") for o in opts) > 1:
        raise InvalidParameter(f"invalid mode: {mode}")
    return name, "ro" in opts


def inherited_specs(mounts: list[dict], readonly: bool) -> list[MountSpec]:
    """Another container's volumes and binds (its inspect `Mounts`) at the same places, its
    mode unless `readonly` (Docker's :rw never makes a read-only mount writable). Its
    tmpfs mounts are its own and are not shared; the data is never copied up again."""
    out = []
    for m in mounts:
        kind = m.get("Type")
        if kind not in ("volume", "bind"):
            continue
        out.append(MountSpec(kind, m["Destination"], source=m.get("Name") if kind == "volume" else m.get("Source"),
                             readonly=readonly or not m.get("RW", True), mode=m.get("Mode") or "",
                             propagation=(m.get("Propagation") or "") if kind == "bind" else "", nocopy=True))
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class VolumeService:
    def __init__(self, config: DaemonConfig, db: Any) -> None:
        self.config = config
        self.db = db
        db.ensure_schema(SCHEMA)
        self.driver = LocalDriver(Path(config.volumes_dir))
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ volumes
    def _view(self, row: Any, usage: bool = False) -> dict:
        """Docker's Volume object; UsageData's Size is -1 (not computed) unless `usage`."""
        return {"CreatedAt": row["created"], "Driver": row["driver"], "Labels": json.loads(row["labels"]) or None,
                "Mountpoint": str(self.driver.data(row["name"])), "Name": row["name"],
                "Options": json.loads(row["options"]) or None, "Scope": "local",
                "UsageData": {"Size": self.driver.size(row["name"]) if usage else -1,
                              "RefCount": len(self.users(row["name"]))}}

    def _create_locked(self, name: str, driver: str, options: dict, labels: dict,
                       anonymous: bool) -> tuple[Any, bool]:
        row = self.db.one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is not None:
            if driver not in ("", "local", row["driver"]):
                raise Conflict(f"create {name}: a volume with the name {name} already exists with driver "
                               f"\"{row['driver']}\"")
            return row, False
        self.driver.create(name)
        try:
            self.db.execute("INSERT INTO volumes (name, driver, labels, options, anonymous, created) "
                            "VALUES (?,?,?,?,?,?)",
                            (name, "local", json.dumps(labels), json.dumps(options), int(anonymous), _now()))
        except BaseException:
            self.driver.remove(name)
            raise
        return self.db.one("SELECT * FROM volumes WHERE name = ?", (name,)), True

    def create(self, name: str = "", driver: str = "local", options: dict | None = None,
               labels: dict | None = None) -> dict:
        if driver not in ("", "local"):
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        options = dict(options or {})
        check_options(options)
        labels = dict(labels or {})
        anonymous = not name
        if anonymous:
            name = secrets.token_hex(32)
            labels.setdefault(ANON_LABEL, "")
        mspec.check_volume_name(name)
        with self._lock:
            row, _ = self._create_locked(name, driver, options, labels, anonymous)
            return self._view(row)

    def get(self, name: str) -> dict:
        row = self.db.one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return self._view(row)

    def users(self, name: str) -> list[str]:
        return [r["container_id"] for r in
                self.db.execute("SELECT DISTINCT container_id FROM volume_refs WHERE name = ?", (name,))]

    def list(self, filters: dict[str, list[str]] | None = None, usage: bool = False) -> list[dict]:
        """Volumes matching `filters`; `usage=True` (for /system/df) also sizes them."""
        filters = filters or {}
        out = []
        for row in self.db.execute("SELECT * FROM volumes ORDER BY created, name"):
            if self._matches(row, filters):
                out.append(self._view(row, usage))
        return out

    def _matches(self, row: Any, filters: dict[str, list[str]]) -> bool:
        labels = json.loads(row["labels"])
        for key, values in filters.items():
            if not values:
                continue
            if key == "name" and not any(v in row["name"] for v in values):
                return False
            if key == "driver" and row["driver"] not in values:
                return False
            if key == "dangling":
                dangling = not self.users(row["name"])
                if (values[0].lower() in ("true", "1")) != dangling:
                    return False
            if key == "label":
                for want in values:
                    k, eq, v = want.partition("=")
                    if k not in labels or (eq and labels[k] != v):
                        return False
            if key == "label!":
                for want in values:
                    k, eq, v = want.partition("=")
                    if k in labels and (not eq or labels[k] == v):
                        return False
        return True

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock:
            row = self.db.one("SELECT * FROM volumes WHERE name = ?", (name,))
            if row is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self.driver.remove(name)
            self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict:
        """Unused volumes: anonymous ones only, unless the filter `all=true` is given (API >= 1.42)."""
        filters = dict(filters or {})
        everything = (filters.pop("all", None) or ["false"])[0].lower() in ("true", "1")
        deleted, space = [], 0
        with self._lock:
            for row in self.db.execute("SELECT * FROM volumes ORDER BY name"):
                if self.users(row["name"]) or not self._matches(row, filters):
                    continue
                if not everything and not row["anonymous"]:
                    continue
                space += self.driver.size(row["name"])
                self.driver.remove(row["name"])
                self.db.execute("DELETE FROM volumes WHERE name = ?", (row["name"],))
                deleted.append(row["name"])
        return {"VolumesDeleted": deleted, "SpaceReclaimed": space}

    # ------------------------------------------------------------------ containers
    def prepare_mounts(self, container_id: str, binds: list[str] | None, mounts: list[dict] | None,
                       tmpfs: dict[str, str] | None, image_volumes: dict | list | None,
                       rootfs: str | None, volumes_from: list[str] | None = None,
                       mounts_of: Callable[[str], list[dict]] | None = None) -> list[MountPoint]:
        """The container's mounts, volumes created (and filled from the image) as needed.
        `volumes_from` (HostConfig.VolumesFrom) adds the mounts of other containers, found
        by `mounts_of(name)` (their inspect `Mounts`; it raises NotFound, answered as 400
        "No such container: NAME"); the container's
        own mounts win at the same destination, and those win over image volumes.
        All or nothing: on error, volumes and references made by this call are undone."""
        specs: list[MountSpec] = []
        for b in binds or []:
            specs.append(mspec.parse_bind(b))
        for m in mounts or []:
            specs.append(mspec.from_api_mount(m))
        for target, opts in (tmpfs or {}).items():
            specs.append(mspec.parse_tmpfs(target, opts or ""))
        seen: set[str] = set()
        for s in specs:
            if s.target in seen:
                raise InvalidParameter(f"Duplicate mount point: {s.target}")
            seen.add(s.target)
        inherited: dict[str, MountSpec] = {}
        for spec in volumes_from or []:
            name, readonly = parse_volumes_from(spec)
            try:
                if mounts_of is None:
                    raise NotFound(f"No such container: {name}")
                theirs = mounts_of(name)
            except NotFound as exc:
                # 400, not 404, as Docker since 20.10: on a 404 the docker CLI takes the
                # image for missing and pulls it
                raise InvalidParameter(str(exc)) from None
            for s in inherited_specs(theirs, readonly):
                inherited[s.target] = s     # a later --volumes-from wins, as in Docker
        for target, s in inherited.items():
            if target not in seen:
                specs.append(s)
                seen.add(target)
        for target in image_volumes or []:
            clean = os.path.normpath(target) if target.startswith("/") else None
            if clean and clean not in seen:
                specs.append(MountSpec("volume", clean, from_image=True))
                seen.add(clean)
        created: list[str] = []
        new_refs: list[str] = []
        out: list[MountPoint] = []
        with self._lock:
            try:
                for s in specs:
                    out.append(self._prepare_one(container_id, s, rootfs, created, new_refs))
            except BaseException:
                for target in new_refs:
                    self.db.execute("DELETE FROM volume_refs WHERE container_id = ? AND target = ?",
                                    (container_id, target))
                for name in created:
                    self.driver.remove(name)
                    self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))
                raise
        return out

    def _prepare_one(self, cid: str, s: MountSpec, rootfs: str | None, created: list[str],
                     new_refs: list[str]) -> MountPoint:
        if s.type == "tmpfs":
            return MountPoint(
                {"destination": s.target, "type": "tmpfs", "source": "tmpfs", "options": mspec.oci_options(s)},
                {"Type": "tmpfs", "Source": "", "Destination": s.target, "Mode": ",".join(s.tmpfs_options),
                 "RW": not s.readonly, "Propagation": ""})
        if s.type == "bind":
            if not os.path.exists(s.source):
                if not s.create_host_path:
                    raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does "
                                           f"not exist: {s.source}")
                os.makedirs(s.source, 0o755, exist_ok=True)
            return MountPoint(
                {"destination": s.target, "type": "bind", "source": s.source, "options": mspec.oci_options(s)},
                {"Type": "bind", "Source": s.source, "Destination": s.target, "Mode": s.mode,
                 "RW": not s.readonly, "Propagation": s.propagation or "rprivate"})
        # a volume: named, or anonymous (reused when this container already has one there)
        ref = self.db.one("SELECT name FROM volume_refs WHERE container_id = ? AND target = ?", (cid, s.target))
        name = s.source
        if not name:
            if ref is not None:
                name = ref["name"]
            else:
                name = secrets.token_hex(32)
        check_options(s.volume_options)
        anonymous = not s.source
        labels = dict(s.volume_labels)
        if anonymous:
            labels.setdefault(ANON_LABEL, "")
        row, is_new = self._create_locked(name, "local", s.volume_options, labels, anonymous)
        if is_new:
            created.append(name)
        options = json.loads(row["options"])
        if options.get("type"):
            self.driver.mount(name, options)
        if ref is None or ref["name"] != name:
            self.db.execute("INSERT OR REPLACE INTO volume_refs (container_id, name, target) VALUES (?,?,?)",
                            (cid, name, s.target))
            new_refs.append(s.target)
        if not s.nocopy and rootfs and self.driver.is_empty(name) and (is_new or ref is None):
            src = resolve_in_root(rootfs.rstrip("/"), s.target)
            self.driver.copy_up(name, src)
        data = str(self.driver.data(name))
        return MountPoint(
            {"destination": s.target, "type": "bind", "source": data, "options": mspec.oci_options(s)},
            {"Type": "volume", "Name": name, "Source": data, "Destination": s.target, "Driver": "local",
             "Mode": s.mode if s.mode else ("z" if not s.from_image and s.source else ""),
             "RW": not s.readonly, "Propagation": ""})

    def release(self, container_id: str, remove_anonymous: bool = False) -> list[str]:
        """Drop the container's references; with `remove_anonymous`, delete its anonymous
        volumes no other container uses. Returns the names removed."""
        removed = []
        with self._lock:
            refs = self.db.execute("SELECT name FROM volume_refs WHERE container_id = ?", (container_id,))
            self.db.execute("DELETE FROM volume_refs WHERE container_id = ?", (container_id,))
            for r in refs:
                row = self.db.one("SELECT * FROM volumes WHERE name = ?", (r["name"],))
                if row is None or self.users(r["name"]):
                    continue
                options = json.loads(row["options"])
                if options.get("type"):
                    self.driver.unmount(r["name"])
                if remove_anonymous and row["anonymous"]:
                    self.driver.remove(r["name"])
                    self.db.execute("DELETE FROM volumes WHERE name = ?", (r["name"],))
                    removed.append(r["name"])
        return removed

    def mounts_of(self, container_id: str) -> list[str]:
        return [r["name"] for r in self.db.execute("SELECT name FROM volume_refs WHERE container_id = ?",
                                                   (container_id,))]
