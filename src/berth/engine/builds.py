"""Engine service: builds. Runs `berth.build.builder` with a step runner backed by the
engine: RUN steps in hidden containers made by the ContainerService (output streamed,
result committed with ImageService.commit, container removed), COPY/ADD/WORKDIR steps in
an overlay snapshot of the parent image, metadata steps as config-only images."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from berth.build.builder import (
    BuildOptions,
    Emit,
    ImageRef,
    RunRequest,
    StepFailed,
    run_build,
)
from berth.build.cache import BuildCache, CacheItem, prune_rule, select_for_prune
from berth.build.cachemounts import CacheMountStore
from berth.build.context import BuildContext, extract_tar
from berth.config import DaemonConfig
from berth.engine import mounttargets
from berth.errors import InvalidParameter, NotFound

log = logging.getLogger("berth.builds")

_SNAP_PREFIX = "build-"
BUILD_LABEL = "berth.build.step"   # on the hidden containers that run RUN steps


def _ref(img: Any) -> ImageRef:
    return ImageRef(id=img.id, config=img.config)


class EngineStepRunner:
    """The builder's StepRunner on top of the engine's image and container services."""

    def __init__(self, images: Any, containers: Any, registry: Any = None,
                 auth: dict[str, Any] | None = None) -> None:
        self.images = images
        self.containers = containers
        self.registry = registry
        self.auth = auth or {}

    # --- images -------------------------------------------------------------------------
    async def resolve(self, name: str, *, pull: bool, platform: str | None, emit: Emit) -> ImageRef:
        if not pull:
            try:
                return _ref(await asyncio.to_thread(self.images.resolve, name))
            except NotFound:
                if self.registry is None:
                    raise
        if self.registry is None:
            raise NotFound(f"No such image: {name} (and no registry service to pull it)")

        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []

        def sync_progress(msg: dict[str, Any]) -> None:
            def schedule() -> None:
                pending.append(asyncio.ensure_future(emit(msg)))
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                schedule()
            else:
                loop.call_soon_threadsafe(schedule)

        auth = self._auth_for(name)
        img = await self.registry.pull(name, auth, sync_progress, platform)
        await asyncio.sleep(0)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if img is None:
            img = await asyncio.to_thread(self.images.resolve, name)
        return _ref(img)

    def _auth_for(self, name: str) -> dict[str, Any] | None:
        if not self.auth:
            return None
        from berth.image import reference
        try:
            domain = reference.parse(name).domain
        except Exception:  # noqa: BLE001
            return None
        for key in (domain, f"https://{domain}", f"http://{domain}"):
            if key in self.auth:
                return self.auth[key]
        if domain == "docker.io":
            for key in ("https://index.docker.io/v1/", "index.docker.io"):
                if key in self.auth:
                    return self.auth[key]
        return None

    async def exists(self, image_id: str) -> bool:
        return await asyncio.to_thread(self.images.store.exists, image_id)

    async def get(self, image_id: str) -> ImageRef:
        return _ref(await asyncio.to_thread(self.images.get, image_id))

    async def tag(self, image_id: str, tags: list[str]) -> list[str]:
        out = []
        for t in tags:
            out.append(await asyncio.to_thread(self.images.tag, image_id, t))
        return [_with_tag(t) for t in out]

    async def lineage(self, name: str) -> list[tuple[str, str, str]]:
        def walk() -> list[tuple[str, str, str]]:
            out = []
            img = self.images.resolve(name)
            while img is not None:
                history = img.config.get("history") or []
                created_by = history[-1].get("created_by", "") if history else ""
                out.append((img.parent or "", img.id, created_by))
                img = self.images.store.get(img.parent) if img.parent and self.images.store.exists(img.parent) else None
            return out
        return await asyncio.to_thread(walk)

    async def commit_config(self, parent: ImageRef | None, config: dict[str, Any],
                            history: dict[str, Any]) -> ImageRef:
        def do() -> ImageRef:
            # ImageService.commit without a snapshot: a settings-only image whose history
            # entry is `empty_layer`, recorded with its parent (as docker's image store)
            parent_img = self.images.get(parent.id) if parent else None
            return _ref(self.images.commit(None, parent_img, config, history))
        return await asyncio.to_thread(do)

    async def path_is_dir(self, image: ImageRef | None, path: str) -> bool:
        if image is None:
            return False

        def check() -> bool:
            rel = path.strip("/")
            parts = rel.split("/")
            for layer in self.images.lower_dirs(image.id):
                cur = layer
                for i, part in enumerate(parts):
                    cur = os.path.join(cur, part)
                    try:
                        st = os.lstat(cur)
                    except FileNotFoundError:
                        break
                    except NotADirectoryError:
                        return False
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                        return False  # whited out in this layer
                    if i == len(parts) - 1:
                        return stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)
                    if stat.S_ISLNK(st.st_mode):
                        return False  # symlinked parent: let the fs step decide
            return False
        return await asyncio.to_thread(check)

    # --- snapshots ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def mount_image(self, image: ImageRef) -> AsyncIterator[str]:
        key = _SNAP_PREFIX + "src-" + secrets.token_hex(8)
        snaps = self.images.snapshots
        lowers = await asyncio.to_thread(self.images.lower_dirs, image.id)
        merged = await asyncio.to_thread(snaps.prepare, key, lowers)
        try:
            yield merged
        finally:
            await asyncio.to_thread(snaps.remove, key)

    async def fs_step(self, parent: ImageRef | None, apply: Callable[[str], None],
                      config: dict[str, Any], history: dict[str, Any]) -> ImageRef:
        def do() -> ImageRef:
            key = _SNAP_PREFIX + secrets.token_hex(12)
            snaps = self.images.snapshots
            parent_img = self.images.get(parent.id) if parent else None
            lowers = self.images.lower_dirs(parent_img) if parent_img else []
            merged = snaps.prepare(key, lowers)
            try:
                apply(merged)
                img = self.images.commit(key, parent_img, config, history)
            finally:
                snaps.remove(key)
            return _ref(img)
        return await asyncio.to_thread(do)

    # --- RUN ----------------------------------------------------------------------------
    async def run(self, parent: ImageRef | None, req: RunRequest,
                  on_start: Callable[[str], Awaitable[None]],
                  on_output: Callable[[bytes], Awaitable[None]]) -> ImageRef:
        if parent is None:
            raise InvalidParameter("RUN needs a base image with a shell (FROM scratch has none)")
        body = {"Image": parent.id, "Cmd": req.cmd, "Entrypoint": [], "Env": req.env,
                "WorkingDir": req.workdir, "User": req.user, "AttachStdout": True,
                "AttachStderr": True, "Labels": {BUILD_LABEL: "1"},
                "HostConfig": {**req.host_config, "NetworkMode": req.network_mode}}
        if req.mounts:
            body["HostConfig"]["Mounts"] = [*(req.host_config.get("Mounts") or []), *req.mounts]
        cid = await self.containers.create(None, body, hidden=True)
        # rm=0 keeps the step's container, succeeded or not. dockerd also keeps a failed
        # step's container when rm=1 without forcerm; berth removes it (no build leaves a
        # container behind unless asked to), so forcerm changes nothing more here.
        keep = not req.remove
        waiter: asyncio.Task[dict[str, Any]] | None = None
        attach: asyncio.Task[Any] | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            rootfs = self.containers.rootfs(cid)
            if req.prepare is not None:
                await asyncio.to_thread(req.prepare, rootfs)
            waiter = self.containers.wait_future(cid, "next-exit")
            attach = asyncio.create_task(self.containers.attach(cid, stdout=True, stderr=True))
            await asyncio.sleep(0)  # let attach register before start
            await on_start(cid)
            await self.containers.start(cid)
            try:
                streams = await attach
            except Exception:  # noqa: BLE001 - exited before the attach connected
                streams = None
            if streams is not None:
                writer = streams[1]
                await _pump_frames(streams[0], on_output)
            result = await waiter
            code = int(result.get("StatusCode", 0))
            if code != 0:
                raise StepFailed(code)
            if req.cleanup is not None:
                await asyncio.to_thread(req.cleanup, rootfs)

            def commit() -> ImageRef:
                parent_img = self.images.get(parent.id)
                self.images.snapshots.unmount(cid)
                upper = self.images.snapshots.upper(cid)
                if req.scrub is not None:
                    req.scrub(upper)
                mounttargets.drop_placeholders(upper)
                return _ref(self.images.commit(cid, parent_img, req.config, req.history))
            image = await asyncio.to_thread(commit)
        finally:
            if writer is not None:
                writer.close()
            for t in (attach, waiter):
                if t is not None and not t.done():
                    t.cancel()
            if keep:
                await asyncio.to_thread(self.containers.reveal, cid, (BUILD_LABEL,))
            else:
                with contextlib.suppress(NotFound):
                    await self.containers.remove(cid, force=True, volumes=True)
        return image


def _with_tag(familiar: str) -> str:
    last = familiar.rsplit("/", 1)[-1]
    return familiar if (":" in last or "@" in last) else familiar + ":latest"


async def _pump_frames(reader: asyncio.StreamReader, on_output: Callable[[bytes], Awaitable[None]]) -> None:
    """Docker's multiplexed stream: 8-byte header (stream, 0, 0, 0, size BE32) + payload."""
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                await on_output(exc.partial)
            return
        size = int.from_bytes(header[4:8], "big")
        if header[0] not in (0, 1, 2) or header[1:4] != b"\0\0\0":
            # not framed (tty): pass through
            await on_output(header)
            while chunk := await reader.read(65536):
                await on_output(chunk)
            return
        try:
            payload = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            payload = exc.partial
        if payload:
            await on_output(payload)


class BuildService:
    def __init__(self, config: DaemonConfig, images: Any, containers: Any) -> None:
        self.config = config
        self.images = images
        self.containers = containers
        self.cache = BuildCache(images.db)
        self._clean_leftovers()
        self.cache_mounts = CacheMountStore(config.data_root / "build-cache-mounts", images.db)

    def _clean_leftovers(self) -> None:
        """Snapshots of build steps interrupted by a daemon crash are removed at start."""
        try:
            names = os.listdir(self.config.containers_dir)
        except FileNotFoundError:
            return
        for n in names:
            if n.startswith(_SNAP_PREFIX):
                try:
                    self.images.snapshots.remove(n)
                except Exception:  # noqa: BLE001
                    log.exception("removing leftover build snapshot %s", n)
        for n in os.listdir(self.config.tmp_dir) if self.config.tmp_dir.is_dir() else []:
            if n.startswith(("build-ctx-", ".berth-add-", ".berth-mount-")):
                shutil.rmtree(self.config.tmp_dir / n, ignore_errors=True)

    async def start(self) -> None:
        """RUN containers of builds interrupted by a daemon crash are removed (the restored
        container service still knows them, hidden)."""
        try:
            left = self.containers.list(all=True, filters={"label": [BUILD_LABEL]}, hidden=True)
        except TypeError:
            return
        for c in left:
            try:
                await self.containers.remove(c["Id"], force=True)
                log.info("removed build container %s left by an interrupted build", c["Id"][:12])
            except Exception:  # noqa: BLE001
                log.exception("removing leftover build container %s", c["Id"][:12])

    async def build(self, context_tar: str, options: BuildOptions, emit: Emit,
                    registry: Any = None, auth: dict[str, Any] | None = None) -> ImageRef:
        """Build from a context tar file (any compression); emits Docker's JSON messages."""
        self.config.tmp_dir.mkdir(parents=True, exist_ok=True)
        ctx_dir = tempfile.mkdtemp(prefix="build-ctx-", dir=self.config.tmp_dir)
        try:
            ctx = BuildContext(ctx_dir)

            def extract() -> None:
                with open(context_tar, "rb") as f:
                    if os.fstat(f.fileno()).st_size == 0:
                        return  # an empty body: a context with nothing in it
                    extract_tar(f, ctx_dir)
                preload = (options.dockerfile,)
                if options.dockerfile == "Dockerfile":
                    preload += ("dockerfile",)
                ctx.apply_dockerignore(preload=preload)
            await asyncio.to_thread(extract)
            runner = EngineStepRunner(self.images, self.containers, registry, auth)
            return await run_build(runner, self.cache, ctx, options, emit, self.cache_mounts)
        finally:
            await asyncio.to_thread(shutil.rmtree, ctx_dir, True)

    def disk_usage(self) -> list[dict[str, Any]]:
        """GET /system/df's BuildCache: the RUN --mount=type=cache directories, as BuildKit
        reports its own (`exec.cachemount`)."""
        from berth.shim.protocol import rfc3339_nano

        return [{"ID": m["name"], "Parents": None, "Type": "exec.cachemount",
                 "Description": f"cached mount {m['id']}", "InUse": m["in_use"], "Shared": False,
                 "Size": m["size"], "CreatedAt": rfc3339_nano(int(m["created"] * 1e9)),
                 "LastUsedAt": rfc3339_nano(int(m["last_used"] * 1e9)), "UsageCount": 0}
                for m in self.cache_mounts.usage()]

    def prune(self, all_: bool = False, filters: dict[str, list[str]] | None = None,
              keep_storage: int = 0) -> dict[str, Any]:
        """POST /build/prune: forget cache records (all, or those whose image is gone) and
        remove the RUN --mount=type=cache directories no build is using (BuildKit's prune
        removes its cache mounts with or without --all), as `filters` and `keep_storage`
        (bytes to keep) allow."""
        rule = prune_rule(filters or {}, all_, keep_storage)
        items = self.cache.items(self.images.store.exists) + [
            CacheItem(id=m["name"], type="exec.cachemount", size=m["size"], last_used=m["last_used"],
                      in_use=m["in_use"], description=f"cached mount {m['id']}")
            for m in self.cache_mounts.usage()]
        chosen = select_for_prune(items, rule, time.time())
        keys = [i.id for i in chosen if i.type == "regular"]
        self.cache.remove(keys)
        mounts, freed = self.cache_mounts.prune({i.id for i in chosen if i.type != "regular"})
        return {"CachesDeleted": (keys + mounts) or None, "SpaceReclaimed": freed}
