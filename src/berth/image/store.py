"""Image store on the daemon's SQLite database.

Tables: `images` (id = config digest, the config JSON exactly as hashed, created, size,
layer chain ids, parent image id as docker records it for build steps and commits),
`image_tags` (full `domain/path:tag` -> image id) and `image_digests` (full
`domain/path@digest` -> image id, Docker's RepoDigests). Layers are shared between images;
a layer is removed when no image lists it any more, unless a container's snapshot stacks
on it: then it waits in `image_orphan_layers` until `release_orphan_layers`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.errors import Conflict, InvalidParameter, NotFound
from berth.image import reference
from berth.image.content import ContentStore
from berth.image.layers import LayerStore, chain_ids
from berth.image.spec import sha256_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    layers TEXT NOT NULL DEFAULT '[]',
    parent TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_tags (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS image_tags_by_image ON image_tags(image_id);
CREATE TABLE IF NOT EXISTS image_digests (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_digests_by_image ON image_digests(image_id);
CREATE INDEX IF NOT EXISTS images_by_parent ON images(parent);
CREATE TABLE IF NOT EXISTS image_orphan_layers (
    chain TEXT PRIMARY KEY
);
"""


class DB(Protocol):
    def ensure_schema(self, ddl: str) -> None: ...
    def execute(self, sql: str, params: Any = ()) -> list[Any]: ...
    def one(self, sql: str, params: Any = ()) -> Any: ...
    def transaction(self) -> Any: ...


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    config_bytes: bytes
    created: str
    size: int
    layers: list[str]                     # chain ids, bottom first
    parent: str = ""
    repo_tags: list[str] = field(default_factory=list)     # familiar `name:tag`
    repo_digests: list[str] = field(default_factory=list)  # familiar `name@sha256:...`
    added: float = 0.0

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})


def _familiar_of_stored(ref: str) -> str:
    """Stored refs are full (`docker.io/library/x:t`); show them the docker way."""
    try:
        return reference.parse(ref, default_tag=False).familiar
    except InvalidParameter:
        return ref


class ImageStore:
    def __init__(self, db: DB, content: ContentStore, layers: LayerStore) -> None:
        self.db = db
        self.content = content
        self.layers = layers
        db.ensure_schema(SCHEMA)

    # --- reading ------------------------------------------------------------------------
    def _image(self, row: Any) -> Image:
        cfg_text = row["config"]
        tags = [_familiar_of_stored(r["ref"]) for r in self.db.execute(
            "SELECT ref FROM image_tags WHERE image_id=? ORDER BY added, ref", (row["id"],))]
        digests = [_familiar_of_stored(r["ref"]) for r in self.db.execute(
            "SELECT ref FROM image_digests WHERE image_id=? ORDER BY ref", (row["id"],))]
        return Image(id=row["id"], config=json.loads(cfg_text), config_bytes=cfg_text.encode(),
                     created=row["created"], size=row["size"], layers=json.loads(row["layers"]),
                     parent=row["parent"], repo_tags=tags, repo_digests=digests, added=row["added"])

    def get(self, image_id: str) -> Image:
        row = self.db.one("SELECT * FROM images WHERE id=?", (image_id,))
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        return self._image(row)

    def exists(self, image_id: str) -> bool:
        return self.db.one("SELECT 1 FROM images WHERE id=?", (image_id,)) is not None

    def list(self) -> list[Image]:
        return [self._image(r) for r in self.db.execute("SELECT * FROM images ORDER BY added DESC")]

    def by_tag(self, ref: reference.Reference) -> Image | None:
        row = self.db.one("SELECT image_id FROM image_tags WHERE ref=?", (ref.full,))
        return self.get(row["image_id"]) if row else None

    def by_digest(self, ref: reference.Reference) -> Image | None:
        row = self.db.one("SELECT image_id FROM image_digests WHERE ref=?",
                          (f"{ref.name}@{ref.digest}",))
        if row:
            return self.get(row["image_id"])
        if ref.digest and self.exists(ref.digest):  # name@<image id> as docker accepts
            img = self.get(ref.digest)
            if any(t.split(":")[0] == ref.familiar_name for t in img.repo_tags):
                return img
        return None

    def resolve(self, name_or_id: str) -> Image:
        """By full or short id, by name (default `:latest`) or by name@digest."""
        s = name_or_id.strip()
        if not s:
            raise NotFound("No such image: ")
        hexpart = s.removeprefix("sha256:")
        if len(hexpart) == 64 and reference.looks_like_id(s):
            return self.get("sha256:" + hexpart)
        ref = None
        if not s.startswith("sha256:"):
            try:
                ref = reference.parse(s)
            except InvalidParameter:
                ref = None
        if ref is not None:
            img = self.by_digest(ref) if ref.digest else self.by_tag(ref)
            if img is not None:
                return img
        if reference.looks_like_id(s):
            rows = self.db.execute("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hexpart}%",))
            if len(rows) == 1:
                return self.get(rows[0]["id"])
            if len(rows) > 1:
                raise NotFound(f"No such image: {s} (ambiguous: {len(rows)} images match)")
        shown = ref.familiar if ref is not None else s
        raise NotFound(f"No such image: {shown}")

    def tags_in_repository(self, name: str) -> list[tuple[str, str]]:
        """(full tag ref, image id) for every tag of a full repository name."""
        rows = self.db.execute("SELECT ref, image_id FROM image_tags WHERE ref > ? AND ref < ? ORDER BY ref",
                               (f"{name}:", f"{name};"))
        return [(r["ref"], r["image_id"]) for r in rows if r["ref"].rsplit(":", 1)[0] == name]

    def children(self, image_id: str) -> list[str]:
        return [r["id"] for r in self.db.execute("SELECT id FROM images WHERE parent=?", (image_id,))]

    def parents(self) -> set[str]:
        """Ids of the images that have at least one child."""
        return {r["parent"] for r in self.db.execute("SELECT DISTINCT parent FROM images WHERE parent != ''")}

    # --- writing ------------------------------------------------------------------------
    def create(self, config: bytes | dict[str, Any], layers: list[str] | None = None,
               tags: Iterable[str] = (), repo_digests: Iterable[str] = (), parent: str = "") -> Image:
        """Record an image whose layers are already in the layer store. `config` is the
        config blob (bytes kept exactly, id = its sha256) or a dict (serialised once).
        `layers` defaults to the chain ids of the config's diff_ids."""
        if isinstance(config, dict):
            config = json.dumps(config, separators=(",", ":")).encode()
        try:
            doc = json.loads(config)
        except ValueError as exc:
            raise InvalidParameter(f"image config is not JSON: {exc}") from None
        diff_ids = list((doc.get("rootfs") or {}).get("diff_ids") or [])
        chains = chain_ids(diff_ids)
        if layers is not None and list(layers) != chains:
            raise InvalidParameter("image layers do not match the config's rootfs.diff_ids")
        for c in chains:
            if not self.layers.exists(c):
                raise NotFound(f"layer {c} of image is not in the layer store")
        image_id = sha256_digest(config)
        if parent and (parent == image_id or not self.exists(parent)):
            parent = ""
        if not self.content.exists(image_id):
            self.content.write_bytes(config, image_id)
        size = sum(self.layers.get(c).size for c in chains)
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO images(id, config, created, size, layers, parent, added) "
                         "VALUES (?,?,?,?,?,?,?)",
                         (image_id, config.decode(), doc.get("created") or "", size,
                          json.dumps(chains), parent, now))
            for t in tags:
                ref = reference.parse(t)
                if ref.digest:
                    raise InvalidParameter(f"cannot tag with a digest reference: {t}")
                conn.execute("INSERT OR REPLACE INTO image_tags(ref, image_id, added) VALUES (?,?,?)",
                             (ref.full, image_id, now))
            for d in repo_digests:
                ref = reference.parse(d, default_tag=False)
                if not ref.digest:
                    raise InvalidParameter(f"repo digest {d} has no digest")
                conn.execute("INSERT OR REPLACE INTO image_digests(ref, image_id) VALUES (?,?)",
                             (f"{ref.name}@{ref.digest}", image_id))
        return self.get(image_id)

    def tag(self, image_id: str, ref: str | reference.Reference) -> reference.Reference:
        r = ref if isinstance(ref, reference.Reference) else reference.parse(ref)
        if r.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if not self.exists(image_id):
            raise NotFound(f"No such image: {image_id}")
        self.db.execute("INSERT OR REPLACE INTO image_tags(ref, image_id, added) VALUES (?,?,?)",
                        (r.full, image_id, time.time()))
        return r

    def add_repo_digest(self, image_id: str, ref: str) -> None:
        r = reference.parse(ref, default_tag=False)
        if not r.digest:
            raise InvalidParameter(f"repo digest {ref} has no digest")
        self.db.execute("INSERT OR REPLACE INTO image_digests(ref, image_id) VALUES (?,?)",
                        (f"{r.name}@{r.digest}", image_id))

    def untag(self, ref: str | reference.Reference) -> str | None:
        """Remove a tag or repo digest; returns the image id it pointed at (or None)."""
        r = ref if isinstance(ref, reference.Reference) else reference.parse(ref)
        if r.digest:
            key = f"{r.name}@{r.digest}"
            row = self.db.one("SELECT image_id FROM image_digests WHERE ref=?", (key,))
            self.db.execute("DELETE FROM image_digests WHERE ref=?", (key,))
        else:
            row = self.db.one("SELECT image_id FROM image_tags WHERE ref=?", (r.full,))
            self.db.execute("DELETE FROM image_tags WHERE ref=?", (r.full,))
        return row["image_id"] if row else None

    def references(self, image_id: str) -> tuple[list[str], list[str]]:
        """(full tag refs, full digest refs) of an image."""
        tags = [r["ref"] for r in self.db.execute("SELECT ref FROM image_tags WHERE image_id=?", (image_id,))]
        digs = [r["ref"] for r in self.db.execute("SELECT ref FROM image_digests WHERE image_id=?", (image_id,))]
        return tags, digs

    def delete(self, image_id: str, protected: Iterable[str] = ()) -> list[str]:
        """Remove the image record, its tags and digests, then the layers (and their
        blobs) no other image uses. Layers in `protected` (a container's snapshot stacks
        on them) stay, remembered as orphans. Returns the removed layer chain ids."""
        img = self.get(image_id)
        if self.children(image_id):
            raise Conflict(f"conflict: unable to delete {img.short_id} (cannot be forced) - "
                           "image has dependent child images")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM image_tags WHERE image_id=?", (image_id,))
            conn.execute("DELETE FROM image_digests WHERE image_id=?", (image_id,))
            conn.execute("DELETE FROM images WHERE id=?", (image_id,))
        keep = set(protected)
        used = self.layers_in_use()
        orphans = [c for c in img.layers if c not in used and c in keep]
        for c in orphans:
            self.db.execute("INSERT OR IGNORE INTO image_orphan_layers(chain) VALUES (?)", (c,))
        removed = self._remove_layers([c for c in reversed(img.layers) if c not in used and c not in keep])
        self.content.delete(image_id)  # the config blob
        return removed

    def layers_in_use(self) -> set[str]:
        used: set[str] = set()
        for r in self.db.execute("SELECT layers FROM images"):
            used.update(json.loads(r["layers"]))
        return used

    def _remove_layers(self, chains: Iterable[str]) -> list[str]:
        """Remove layers (top-most first) and the blobs no remaining layer uses."""
        removed: list[str] = []
        dropped_blobs: set[str] = set()
        for c in chains:
            layer = self.layers.remove(c)
            if layer is not None:
                removed.append(c)
                if layer.blob:
                    dropped_blobs.add(layer.blob)
        if dropped_blobs:
            for b in dropped_blobs - self.layer_blobs_in_use():
                self.content.delete(b)
        return removed

    def has_orphan_layers(self) -> bool:
        return self.db.one("SELECT 1 FROM image_orphan_layers LIMIT 1") is not None

    def release_orphan_layers(self, protected: Callable[[list[str]], set[str]]) -> list[str]:
        """Remove the layers of deleted images that a container held, once no image
        lists them and no snapshot stacks on them any more (`protected(chains)` answers
        which of the given chains a snapshot still uses)."""
        rows = [r["chain"] for r in self.db.execute("SELECT chain FROM image_orphan_layers")]
        if not rows:
            return []
        keep = set(protected(rows)) | self.layers_in_use()
        free = [c for c in rows if c not in keep]
        # top-most first: a chain's parents are listed by its meta; remove deeper ones last
        depth: dict[str, int] = {}
        for c in free:
            n, cur = 0, c
            while cur and n < 1000:
                try:
                    cur = self.layers.get(cur).parent or ""
                except NotFound:
                    break
                n += 1
            depth[c] = n
        free.sort(key=lambda c: -depth[c])
        removed = self._remove_layers(free)
        for c in rows:
            if c not in keep or not self.layers.exists(c):
                self.db.execute("DELETE FROM image_orphan_layers WHERE chain=?", (c,))
        return removed

    def layer_blobs_in_use(self) -> set[str]:
        out: set[str] = set()
        for c in self.layers.list():
            try:
                b = self.layers.get(c).blob
            except NotFound:
                continue
            if b:
                out.add(b)
        return out
