"""Engine service: images. Wires the content store, layer store, image store and snapshots,
and implements docker's image verbs on top (rmi's untag-versus-delete rules, history,
inspect/list shapes, import, commit, load, save, prune). Methods block: call them from
a worker thread (`asyncio.to_thread`)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from berth.config import DaemonConfig
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.humanize import parse_rfc3339
from berth.image import reference
from berth.image.archive import host_arch, import_rootfs_tar, now_rfc3339
from berth.image.changes import apply_changes
from berth.image.content import ContentStore
from berth.image.layers import LayerStore, has_changes
from berth.image.snapshots import Snapshots
from berth.image.spec import new_image_config
from berth.image.store import Image, ImageStore

__all__ = ["ImageService", "Image"]


def created_unix(created: str) -> int:
    """RFC 3339 (nanoseconds allowed) -> unix seconds; 0 when unknown."""
    t = parse_rfc3339(created)
    return int(t) if t is not None else 0


class ImageService:
    def __init__(self, config: DaemonConfig, db: Any) -> None:
        self.config = config
        self.db = db
        self.content = ContentStore(config.blobs_dir, config.tmp_dir)
        self.layers = LayerStore(config.layers_dir, self.content, config.tmp_dir)
        self.store = ImageStore(db, self.content, self.layers)
        self.snapshots = Snapshots(config.containers_dir, self.layers)
        # set by the daemon: container ids using an image id
        self.in_use: Callable[[str], list[str]] = lambda image_id: []
        # optional: is this container id running (rmi refuses, even forced, to delete an
        # image a running container uses); derived from `in_use`'s service when unset
        self.container_running: Callable[[str], bool] | None = None
        self.events: Any = None
        self._lock = threading.RLock()
        self.snapshots.on_removed = self._snapshot_removed
        self._clean_tmp()

    def _clean_tmp(self) -> None:
        """Leftovers of an interrupted ingest or unpack are never visible; drop them."""
        for d, prefixes in ((self.config.tmp_dir, ("blob-", "diff-", "save-", "load-")),
                            (self.config.layers_dir, ("layer-", "rm-"))):
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if n.startswith(prefixes):
                    p = os.path.join(d, n)
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        try:
                            os.unlink(p)
                        except OSError:
                            pass

    async def start(self) -> None:
        await asyncio.to_thread(self.gc_layers)

    def gc_layers(self) -> list[str]:
        """Remove layers no image lists and no snapshot stacks on (left by a pull, load or
        commit interrupted by a crash), with their blobs. Run at daemon start-up."""
        with self._lock:
            used: set[str] = set()
            for img in self.store.list():
                used.update(img.layers)
            links = self._snapshot_links()
            removed: list[str] = []
            dropped: set[str] = set()
            for chain in self.layers.list():
                if chain in used:
                    continue
                try:
                    layer = self.layers.get(chain)
                except NotFound:
                    continue
                if os.path.basename(layer.link) in links:
                    continue
                self.layers.remove(chain)
                removed.append(chain)
                if layer.blob:
                    dropped.add(layer.blob)
            if dropped:
                for b in dropped - self.store.layer_blobs_in_use():
                    self.content.delete(b)
            removed += self.store.release_orphan_layers(self._protected)
            return removed

    def _snapshot_links(self) -> set[str]:
        """Short link names of every layer some snapshot (container, build step) stacks on."""
        links: set[str] = set()
        try:
            entries = list(os.scandir(self.config.containers_dir))
        except FileNotFoundError:
            entries = []
        for e in entries:
            try:
                lowers = self.snapshots.lower_dirs(e.name)
            except (NotFound, ValueError, KeyError, InvalidParameter, OSError):
                continue
            links.update(os.path.basename(p) for p in lowers)
        return links

    def _protected(self, chains: list[str]) -> set[str]:
        """Those of `chains` a snapshot stacks on (they must outlive a deleted image)."""
        links = self._snapshot_links()
        out = set()
        for c in chains:
            try:
                if os.path.basename(self.layers.get(c).link) in links:
                    out.add(c)
            except NotFound:
                continue
        return out

    def _snapshot_removed(self, key: str) -> None:
        """A container's snapshot is gone: free the layers of deleted images it held."""
        del key
        if not self.store.has_orphan_layers():
            return
        with self._lock:
            self.store.release_orphan_layers(self._protected)

    def _event(self, action: str, actor: str, **attrs: str) -> None:
        if self.events is not None:
            try:
                self.events.publish("image", action, actor, **attrs)
            except Exception:  # noqa: BLE001 - events are best effort
                pass

    # --- lookups ------------------------------------------------------------------------
    def resolve(self, name_or_id: str) -> Image:
        return self.store.resolve(name_or_id)

    def get(self, image_id: str) -> Image:
        return self.store.get(image_id)

    def list(self) -> list[Image]:
        return self.store.list()

    def lower_dirs(self, image: Image | str) -> list[str]:
        img = image if isinstance(image, Image) else self.resolve(image)
        return self.layers.lower_dirs(img.layers)

    # --- creating -----------------------------------------------------------------------
    def add(self, config: bytes | dict[str, Any], tags: Iterable[str] = (),
            repo_digests: Iterable[str] = (), parent: str = "") -> Image:
        """Record an image whose layers are already applied (used by pull). `parent` is
        the image it was made from (build steps, commit), as docker records it."""
        img = self.store.create(config, tags=list(tags), repo_digests=list(repo_digests),
                                parent=parent)
        return img

    def import_tar(self, stream: IO[bytes], repo: str = "", tag: str = "",
                   changes: list[str] | None = None, message: str = "", source: str = "-",
                   platform: str = "") -> Image:
        tags = [self.tag_ref(repo, tag)] if repo else []
        plat: dict[str, str] = {}
        if platform:
            parts = platform.split("/")
            plat = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else host_arch()}
        img = import_rootfs_tar(stream, self.layers, self.store, tags=tags, changes=changes,
                                message=message, source=source, platform=plat)
        self._event("import", img.id)
        for t in tags:
            self._event("tag", img.id, name=t)
        return img

    @staticmethod
    def tag_ref(repo: str, tag: str) -> str:
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        ref = reference.parse(repo, default_tag=False)
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if tag:
            if ref.tag:
                raise InvalidParameter(f"invalid reference format: {repo}:{tag}")
            reference.validate_tag(tag)
            ref = ref.with_tag(tag)
        elif not ref.tag:
            ref = ref.with_tag("latest")
        return ref.full

    def commit(self, snapshot_key: str | None, parent: Image | None, config: dict[str, Any] | None = None,
               history: dict[str, Any] | None = None, tags: Iterable[str] = (),
               changes: list[str] | None = None, author: str = "") -> Image:
        """A new image from a snapshot: its upper dir becomes a new layer on top of
        `parent`'s, or (nothing changed) only an `empty_layer` history entry is added.
        `config` is the container config (`Env`, `Cmd`, ...) of the new image; None keeps
        the parent's. `history` supplies `created_by`/`comment`/`author`. A None
        `snapshot_key` makes a metadata-only image (ENV, CMD, LABEL ... in a build)."""
        upper = self.snapshots.upper(snapshot_key) if snapshot_key else ""
        if snapshot_key and not os.path.isdir(upper):
            raise NotFound(f"snapshot {snapshot_key} not found")
        base = copy.deepcopy(parent.config) if parent else {}
        inner = copy.deepcopy(config if config is not None else base.get("config") or {})
        if changes:
            inner = apply_changes(inner, changes)
        created = now_rfc3339()
        hist = {k: v for k, v in (history or {}).items() if v not in (None, "")}
        hist["created"] = hist.get("created") or created
        diff_ids = list(parent.diff_ids) if parent else []
        parent_chain = parent.layers[-1] if parent and parent.layers else None
        if upper and has_changes(upper):
            tar_path, diff_id = self.layers.diff(upper)
            try:
                blob = self.content.adopt_file(tar_path, diff_id)
            except BaseException:
                os.unlink(tar_path)
                raise
            with self.content.open(blob) as f:
                self.layers.apply(f, parent_chain, blob=blob,
                                  media_type="application/vnd.oci.image.layer.v1.tar",
                                  expected_diff_id=diff_id)
            diff_ids.append(diff_id)
        else:
            hist["empty_layer"] = True
        extra: dict[str, Any] = {}
        for k in ("variant", "os.version", "os.features"):
            if k in base:
                extra[k] = base[k]
        if author or hist.get("author"):
            extra["author"] = author or hist.get("author")
        doc = new_image_config(diff_ids, inner, [*(base.get("history") or []), hist], created,
                               architecture=base.get("architecture") or host_arch(),
                               os_=base.get("os") or "linux", extra=extra)
        img = self.store.create(doc, tags=list(tags), parent=parent.id if parent else "")
        # every image made here is announced, tagged or not (API 1.46; dockerd's builder
        # had only `tag`, so an untagged build went unseen), as dockerd's LogImageEvent
        self._event("create", img.id, name=img.id)
        for t in tags:
            self._event("tag", img.id, name=t)
        return img

    # --- tags and removal ---------------------------------------------------------------
    def tag(self, name_or_id: str, repo: str, tag: str = "") -> str:
        img = self.resolve(name_or_id)
        ref = self.tag_ref(repo, tag)
        self.store.tag(img.id, ref)
        r = reference.parse(ref)
        self._event("tag", img.id, name=r.familiar)
        return r.familiar

    def untag(self, ref: str) -> str | None:
        return self.store.untag(ref)

    def delete(self, name: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """docker rmi: untag a reference, and delete the image once nothing refers to it,
        then (with `prune`) its parents that are left untagged and unused, as dockerd's
        image_delete does. Answers Docker's list of {"Untagged"} / {"Deleted"} records."""
        records, _ = self._delete(name, force, prune)
        return records

    def _delete(self, name: str, force: bool, prune: bool) -> tuple[list[dict[str, str]], int]:
        with self._lock:
            img = self.resolve(name)
            records: list[dict[str, str]] = []
            tags, digests = self.store.references(img.id)
            repo_refs = tags + digests
            by_id = reference.looks_like_id(name) and img.id.removeprefix("sha256:").startswith(
                name.removeprefix("sha256:"))
            removed_ref = False
            if not by_id:
                ref = reference.parse(name)
                if not force and _single_repo(repo_refs):
                    users = self.in_use(img.id)
                    if users:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{name}" (must force) - '
                            f"container {users[0][:12]} is using its referenced image {img.short_id}")
                removed = self.store.untag(ref)
                if removed is None and ref.digest is None:
                    raise NotFound(f"No such image: {ref.familiar}")
                records.append({"Untagged": ref.familiar})
                self._event("untag", img.id, name=ref.familiar)
                tags, digests = self.store.references(img.id)
                # a removed tag whose repository only keeps digest refs takes them along
                if ref.tag and not any(t.rsplit(":", 1)[0] == ref.name for t in tags):
                    for d in digests:
                        if d.split("@")[0] == ref.name:
                            self._untag_record(img.id, d, records)
                    tags, digests = self.store.references(img.id)
                if tags or digests:
                    return records, 0
                removed_ref = True
            elif _single_repo(repo_refs):
                # by id with one repository's references: they go with the image
                conflict = self._conflict(img, _HARD if force else _HARD | _STOPPED)
                if conflict is not None:
                    raise conflict.error()
                for r in repo_refs:
                    self._untag_record(img.id, r, records)
            reclaimed = self._delete_helper(img.id, records, force, prune, quiet=removed_ref)
            return records, reclaimed

    def _untag_record(self, image_id: str, full_ref: str, records: list[dict[str, str]]) -> None:
        if self.store.untag(full_ref) is not None:
            familiar = reference.parse(full_ref, default_tag=False).familiar
            records.append({"Untagged": familiar})
            self._event("untag", image_id, name=familiar)

    def _delete_helper(self, image_id: str, records: list[dict[str, str]], force: bool,
                       prune: bool, quiet: bool) -> int:
        """dockerd's imageDeleteHelper: delete one image unless a conflict stops it (soft
        conflicts give way to force; `quiet` ignores conflicts of an image that is not
        dangling or is in use), then its untagged parent. Returns the bytes reclaimed."""
        img = self.store.get(image_id)
        conflict = self._conflict(img, _HARD if force else _HARD | _SOFT)
        if conflict is not None:
            if quiet and (not self._dangling(img.id) or conflict.used):
                return 0
            raise conflict.error()
        tags, digests = self.store.references(img.id)
        for r in tags + digests:
            self._untag_record(img.id, r, records)
        sizes = {c: self.layers.get(c).size for c in img.layers if self.layers.exists(c)}
        removed_layers = self.store.delete(img.id, protected=self._protected(img.layers))
        records.append({"Deleted": img.id})
        records.extend({"Deleted": c} for c in removed_layers)
        self._event("delete", img.id)
        reclaimed = sum(sizes.get(c, 0) for c in removed_layers)
        if prune and img.parent and self.store.exists(img.parent):
            # the parent goes too when nothing else holds it; never forced, quietly
            reclaimed += self._delete_helper(img.parent, records, False, True, True)
        return reclaimed

    def _running_users(self, users: list[str]) -> list[str]:
        """Which of the container ids using an image are running: asked through
        `container_running` when the daemon sets it, else through the container service
        that `in_use` belongs to (its `get(id).running`)."""
        check = self.container_running
        if check is None:
            get = getattr(getattr(self.in_use, "__self__", None), "get", None)
            if get is None:
                return []

            def check(cid: str) -> bool:
                try:
                    return bool(getattr(get(cid), "running", False))
                except NotFound:
                    return False
        return [u for u in users if check(u)]

    def _conflict(self, img: Image, mask: int) -> _DeleteConflict | None:
        """dockerd's checkImageDeleteConflict, in its order."""
        if mask & _CHILD and self.store.children(img.id):
            return _DeleteConflict(img, True, False, "image has dependent child images")
        users = self.in_use(img.id) if mask & (_RUNNING | _STOPPED) else []
        running = self._running_users(users) if users else []
        if mask & _RUNNING and running:
            return _DeleteConflict(img, True, True,
                                   f"image is being used by running container {running[0][:12]}")
        if mask & _REFERENCE and any(self.store.references(img.id)):
            return _DeleteConflict(img, False, False, "image is referenced in multiple repositories")
        stopped = [u for u in users if u not in running]
        if mask & _STOPPED and stopped:
            return _DeleteConflict(img, False, True,
                                   f"image is being used by stopped container {stopped[0][:12]}")
        return None

    def _dangling(self, image_id: str) -> bool:
        tags, digests = self.store.references(image_id)
        return not tags and not digests and not self.store.children(image_id)

    def prune(self, dangling_only: bool = True, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """POST /images/prune as dockerd: dangling images (untagged and without children)
        with their untagged parents, or with dangling=false every image no container
        uses. Images a container uses, or that a filter excludes, stay."""
        filters = filters or {}
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        with self._lock:
            tried: set[str] = set()
            while True:
                progress = False
                parents = self.store.parents()
                for img in self.list():
                    if img.id in tried or img.id in parents or not self.store.exists(img.id):
                        continue
                    tried.add(img.id)
                    if not _match_time_label(img, filters):
                        continue
                    tags, digests = self.store.references(img.id)
                    if dangling_only and tags:
                        continue
                    names = (digests if dangling_only else tags + digests) or [img.id]
                    for n in names:
                        try:
                            recs, size = self._delete(n, False, True)
                        except (Conflict, NotFound):
                            continue
                        deleted.extend(recs)
                        reclaimed += size
                        progress = True
                if dangling_only or not progress:
                    break
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # --- presentation -------------------------------------------------------------------
    def inspect(self, name_or_id: str | Image) -> dict[str, Any]:
        img = name_or_id if isinstance(name_or_id, Image) else self.resolve(name_or_id)
        c = img.config
        inner = c.get("config") or {}
        layers = [self.layers.get(ch) for ch in img.layers if self.layers.exists(ch)]
        graph: dict[str, Any] = {"Name": "overlay2", "Data": {}}
        if layers:
            graph["Data"] = {"MergedDir": "", "UpperDir": layers[-1].path,
                             "LowerDir": ":".join(x.path for x in reversed(layers[:-1]))}
        return {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": img.parent,
            "Comment": _last_comment(c),
            "Created": c.get("created") or "",
            "Container": c.get("container", ""),
            "ContainerConfig": c.get("container_config") or _empty_container_config(),
            "DockerVersion": c.get("docker_version", ""),
            "Author": c.get("author", ""),
            "Config": _full_container_config(inner),
            "Architecture": c.get("architecture", ""),
            **({"Variant": c["variant"]} if c.get("variant") else {}),
            "Os": c.get("os", ""),
            "Size": img.size,
            "VirtualSize": img.size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }

    def summary(self, img: Image) -> dict[str, Any]:
        """One entry of GET /images/json."""
        return {
            "Containers": len(self.in_use(img.id)),
            "Created": created_unix(img.created),
            "Id": img.id,
            "Labels": (img.config.get("config") or {}).get("Labels") or {},
            "ParentId": img.parent,
            "RepoDigests": img.repo_digests,
            "RepoTags": img.repo_tags,
            "SharedSize": -1,
            "Size": img.size,
            "VirtualSize": img.size,
        }

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        img = self.resolve(name_or_id)
        hist = list(img.config.get("history") or [])
        sizes = [self.layers.get(c).size if self.layers.exists(c) else 0 for c in img.layers]
        entries = []
        li = 0
        for h in hist:
            size = 0
            if not h.get("empty_layer"):
                size = sizes[li] if li < len(sizes) else 0
                li += 1
            entries.append({"Id": "<missing>", "Created": created_unix(h.get("created", "")),
                            "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                            "Comment": h.get("comment", "")})
        if not entries:  # images without history: one line per layer
            for size in sizes:
                entries.append({"Id": "<missing>", "Created": created_unix(img.created),
                                "CreatedBy": "", "Tags": None, "Size": size, "Comment": ""})
        entries.reverse()
        # as dockerd: the newest entries carry the ids (and tags) of the image and of its
        # parent chain, as far as those images are still here
        cur: Image | None = img
        for e in entries:
            if cur is None:
                break
            e["Id"] = cur.id
            e["Tags"] = cur.repo_tags or None
            try:
                cur = self.store.get(cur.parent) if cur.parent else None
            except NotFound:
                cur = None
        return entries

    def filter_list(self, all_: bool = False, filters: dict[str, list[str]] | None = None,
                    shared_size: bool = False) -> list[dict[str, Any]]:
        """GET /images/json as dockerd lists them: an untagged image that has children
        (a build step's intermediate) shows only with `all`; `dangling=true` keeps the
        untagged images without children, `dangling=false` the referenced ones."""
        filters = filters or {}
        dangling_only = False
        if "dangling" in filters:
            v = filters["dangling"][-1].lower()
            if v in ("true", "1"):
                dangling_only = True
            elif v not in ("false", "0"):
                raise InvalidParameter(f"invalid filter 'dangling={filters['dangling'][-1]}'")
        patterns = filters.get("reference") or []
        parents = self.store.parents()
        images = self.list()
        shared: dict[str, int] = {}   # chain -> number of images using it
        if shared_size:
            for img in images:
                for c in img.layers:
                    shared[c] = shared.get(c, 0) + 1
        out = []
        for img in images:
            has_children = img.id in parents
            if dangling_only and has_children:
                continue
            if not _match_time_label(img, filters, resolve=self.resolve):
                continue
            tags = [t for t in img.repo_tags if not patterns or any(_ref_matches(t, p) for p in patterns)]
            digests = [d for d in img.repo_digests
                       if not patterns or any(_ref_matches(d, p) for p in patterns)]
            if not tags and not digests:
                if has_children and not all_:
                    continue
                if ("dangling" in filters and not dangling_only) or patterns:
                    continue
            elif dangling_only and tags:
                continue
            s = self.summary(img)
            s["RepoTags"], s["RepoDigests"] = tags, digests
            if shared_size:  # the size of its layers that other images use too
                s["SharedSize"] = sum(self.layers.get(c).size for c in img.layers
                                      if shared.get(c, 0) > 1 and self.layers.exists(c))
            out.append(s)
        return out

    # --- archives -----------------------------------------------------------------------
    def save(self, names: list[str], out: IO[bytes], fmt: str = "docker") -> None:
        from berth.image.archive_io import save
        save(self, names, out, fmt)

    def load(self, stream: IO[bytes], quiet: bool = True) -> list[str]:
        from berth.image.archive_io import load
        return load(self, stream)


_CHILD, _RUNNING, _REFERENCE, _STOPPED = 1, 2, 4, 8
_HARD = _CHILD | _RUNNING          # cannot be forced
_SOFT = _REFERENCE | _STOPPED      # must be forced


@dataclass
class _DeleteConflict:
    image: Image
    hard: bool
    used: bool          # a container (running or stopped) holds the image
    message: str

    def error(self) -> Conflict:
        how = "cannot be forced" if self.hard else "must be forced"
        return Conflict(f"conflict: unable to delete {self.image.short_id} ({how}) - {self.message}")


def _single_repo(refs: list[str]) -> bool:
    """docker's isSingleReference: one reference, or one tag plus digest references of
    that same repository only."""
    if len(refs) <= 1:
        return len(refs) == 1
    tag_repo = None
    digest_repos = set()
    for r in refs:
        if "@" in r:
            digest_repos.add(r.split("@", 1)[0])
        elif tag_repo is None:
            tag_repo = r.rsplit(":", 1)[0]
        else:
            return False
    if tag_repo is None:
        tag_repo = refs[0].split("@", 1)[0]
    return digest_repos == {tag_repo}


def _ref_matches(familiar: str, pattern: str) -> bool:
    """distribution's FamiliarMatch: the pattern (Go path.Match syntax, `*` stops at `/`)
    against the whole familiar reference, else against its name alone."""
    if "@" in familiar:
        name = familiar.split("@", 1)[0]
    else:
        last = familiar.rsplit("/", 1)[-1]
        name = familiar.rsplit(":", 1)[0] if ":" in last else familiar
    return _path_match(pattern, familiar) or _path_match(pattern, name)


def _path_match(pattern: str, s: str) -> bool:
    rx, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            rx += "[^/]*"
        elif ch == "?":
            rx += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            rx += re.escape(pattern[i])
        elif ch == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                return False  # Go answers ErrBadPattern: nothing matches
            body = pattern[i + 1:j]
            if body.startswith("^"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\").replace("^", "\\^")
            rx += f"(?!/)[{body}]"
            i = j
        else:
            rx += re.escape(ch)
        i += 1
    return re.fullmatch(rx, s) is not None


def _match_time_label(img: Image, filters: dict[str, list[str]],
                      resolve: Callable[[str], Image] | None = None) -> bool:
    labels = (img.config.get("config") or {}).get("Labels") or {}
    for lab in filters.get("label", []):
        k, eq, v = lab.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    for lab in filters.get("label!", []):
        k, eq, v = lab.partition("=")
        if k in labels and (not eq or labels[k] == v):
            return False
    created = created_unix(img.created)
    for key, cmp in (("before", lambda a, b: a < b), ("since", lambda a, b: a > b)):
        for v in filters.get(key, []):
            if resolve is None:
                continue
            other = resolve(v)
            if not cmp(created, created_unix(other.created)) and not (
                    created == created_unix(other.created) and cmp(img.added, other.added)):
                return False
    for v in filters.get("until", []):
        try:
            limit = float(v)
        except ValueError:
            limit = created_unix(v)
        if created >= limit:
            return False
    return True


def _last_comment(c: dict[str, Any]) -> str:
    h = c.get("history") or []
    return (h[-1].get("comment") or "") if h else ""


def _empty_container_config() -> dict[str, Any]:
    return _full_container_config({})


def _full_container_config(inner: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                            "AttachStdout": False, "AttachStderr": False, "Tty": False,
                            "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
                            "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                            "OnBuild": None, "Labels": None}
    base.update(inner)
    return base


def dumps_stream(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"
