"""Executes a parsed Dockerfile: stages, multi-stage dependencies, --target, the build
cache, image config and history as Docker's legacy builder writes them.

The builder never touches containers or the image store itself: it talks to a
`StepRunner` (the engine supplies one backed by its container and image services; tests
can supply their own)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import json
import os
import posixpath
import re
import shutil
import signal as _signal
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from berth.build import instructions as I
from berth.build import mountpoints
from berth.build.cache import BuildCache, Probe
from berth.build.cachemounts import CacheMountStore, CacheSpec, copy_tree
from berth.build.context import (
    BuildContext,
    OutsideContext,
    digest_of,
    glob_in,
    hash_tree,
    resolve_in_root,
)
from berth.build.copier import Copier, Source, parse_chmod, parse_chown
from berth.build.expansion import env_to_dict, expand_heredoc, expand_word, expand_words
from berth.build.parser import DockerfileSyntaxError, parse
from berth.build.runmount import Mount, parse_mount
from berth.errors import BerthError, InvalidParameter, NotFound

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class BuildError(BerthError):
    """A build step failed; `code` is the failing command's exit status, if any."""

    status = 500

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StepFailed(BerthError):
    """Raised by a StepRunner when a RUN command exits non-zero."""

    def __init__(self, exit_code: int, message: str = "") -> None:
        super().__init__(message or f"exit code {exit_code}")
        self.exit_code = exit_code


@dataclass
class ImageRef:
    id: str                     # "sha256:..."; "" for scratch
    config: dict[str, Any]      # the whole image config document

    @property
    def inner(self) -> dict[str, Any]:
        return self.config.get("config") or {}


@dataclass
class RunRequest:
    """Run `cmd` in a container made from the parent image and commit the result."""

    cmd: list[str]
    env: list[str]
    user: str
    workdir: str
    network_mode: str
    config: dict[str, Any]          # container config of the image to commit
    history: dict[str, Any]         # history entry of the image to commit
    prepare: Callable[[str], None] | None = None   # called with the rootfs before start
    cleanup: Callable[[str], None] | None = None   # called with the rootfs before commit
    host_config: dict[str, Any] = field(default_factory=dict)  # extra HostConfig settings
    mounts: list[dict[str, Any]] = field(default_factory=list)  # HostConfig.Mounts (--mount)
    scrub: Callable[[str], None] | None = None     # called with the upper dir before commit
    remove: bool = True          # rm: remove the container afterwards (else it is kept)
    force_remove: bool = False   # forcerm: say so after a failure too, as docker does


class StepRunner(Protocol):
    async def resolve(self, name: str, *, pull: bool, platform: str | None, emit: Emit) -> ImageRef: ...

    async def exists(self, image_id: str) -> bool: ...

    async def get(self, image_id: str) -> ImageRef: ...

    async def run(self, parent: ImageRef | None, req: RunRequest,
                  on_start: Callable[[str], Awaitable[None]],
                  on_output: Callable[[bytes], Awaitable[None]]) -> ImageRef: ...

    async def fs_step(self, parent: ImageRef | None, apply: Callable[[str], None],
                      config: dict[str, Any], history: dict[str, Any]) -> ImageRef: ...

    async def commit_config(self, parent: ImageRef | None, config: dict[str, Any],
                            history: dict[str, Any]) -> ImageRef: ...

    def mount_image(self, image: ImageRef) -> AbstractAsyncContextManager[str]: ...

    async def path_is_dir(self, image: ImageRef | None, path: str) -> bool: ...

    async def tag(self, image_id: str, tags: list[str]) -> list[str]: ...

    async def lineage(self, name: str) -> list[tuple[str, str, str]]:
        """(parent id, image id, created_by of its last history entry) for the image and
        each ancestor still present; raises NotFound for a missing image."""
        ...


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    no_cache: bool = False
    target: str | None = None
    quiet: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str | None = None
    pull: bool = False
    platform: str | None = None
    # HostConfig settings for RUN containers (ExtraHosts, Memory, CpuShares, ShmSize, Ulimits, ...)
    run_host_config: dict[str, Any] = field(default_factory=dict)
    remove: bool = True          # rm: remove a RUN's container after it succeeded
    force_remove: bool = False   # forcerm: after it failed too
    cache_from: list[str] = field(default_factory=list)   # images whose history may be cache hits


@dataclass
class _State:
    stage: I.Stage
    image: ImageRef | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    missed: bool = False          # a step of this chain already missed the cache
    maintainer: str = ""          # MAINTAINER of this stage: the author of every later step

    def hist(self, created_by: str, **extra: Any) -> dict[str, Any]:
        """A history entry as the legacy builder writes it (author once MAINTAINER ran)."""
        h: dict[str, Any] = {"created_by": created_by, **extra}
        if self.maintainer:
            h["author"] = self.maintainer
        return h

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    @property
    def parent_id(self) -> str:
        return self.image.id if self.image else ""


def _go_quote_list(items: list[str]) -> str:
    return "[" + " ".join(json.dumps(x) for x in items) + "]"


def _config_digest(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def _set_env(env: list[str] | None, key: str, value: str) -> list[str]:
    out = list(env or [])
    for i, item in enumerate(out):
        if item.partition("=")[0] == key:
            out[i] = f"{key}={value}"
            return out
    out.append(f"{key}={value}")
    return out


def _normalize_port(p: str) -> list[str]:
    port, _, proto = p.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    if "-" in port:
        a, _, b = port.partition("-")
        if not (a.isdigit() and b.isdigit()) or int(a) > int(b):
            raise InvalidParameter(f"invalid range format for --expose: {p}")
        return [f"{n}/{proto}" for n in range(int(a), int(b) + 1)]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidParameter(f"invalid containerPort: {port}")
    return [f"{int(port)}/{proto}"]


@dataclass
class _RunMount:
    """A `--mount` of one RUN, resolved: the image of `from`, or the context path."""

    spec: Mount
    raw: str = ""                 # as written, for errors
    image: ImageRef | None = None
    context_path: str = ""        # bind from the context: the host path mounted


def _valid_signal(sig: str) -> str:
    s = sig.upper()
    if s.isdigit():
        return sig
    name = s if s.startswith("SIG") else "SIG" + s
    if not hasattr(_signal, name) and not re.match(r"^SIGRTM(IN|AX)([+-]\d+)?$", name):
        raise InvalidParameter(f"Invalid signal: {sig}")
    return sig


class Builder:
    def __init__(self, runner: StepRunner, cache: BuildCache | None, context: BuildContext,
                 options: BuildOptions, emit: Emit,
                 cache_mounts: CacheMountStore | None = None) -> None:
        self.runner = runner
        self.cache = cache
        self.cache_mounts = cache_mounts
        self.ctx = context
        self.opts = options
        self._emit = emit
        self.step = 0
        self.total = 0
        self.escape = "\\"
        self.meta_env: dict[str, str] = {}
        self.declared: set[str] = set()
        self.stage_results: dict[int, ImageRef] = {}
        self._bases: dict[int, ImageRef | None] = {}   # base images resolved while planning
        self.stages: list[I.Stage] = []
        self.filename = options.dockerfile
        self._cleanup: list[str] = []
        self.quiet_log: list[str] = []
        self._cache_steps: list[tuple[str, str, str]] | None = None   # from opts.cache_from

    # --- output -------------------------------------------------------------------------
    async def say(self, text: str) -> None:
        if not self.opts.quiet:
            await self._emit({"stream": text})
        else:
            self.quiet_log.append(text)  # shown only if the build fails, as docker -q does

    async def _progress(self, msg: dict[str, Any]) -> None:
        """Pull progress of a base image (not shown with -q)."""
        if not self.opts.quiet:
            await self._emit(msg)

    # --- entry point --------------------------------------------------------------------
    async def build(self) -> ImageRef:
        if self.opts.dockerfile == "Dockerfile" and not self.ctx.has("Dockerfile") and self.ctx.has("dockerfile"):
            self.opts.dockerfile = "dockerfile"  # the legacy builder's fallback
        text = await asyncio.to_thread(self.ctx.read_text, self.opts.dockerfile)
        name = posixpath.basename(self.opts.dockerfile) or "Dockerfile"
        if name.startswith(".dockerfile."):
            name = "Dockerfile"  # docker CLI's name for a Dockerfile sent from outside the context
        self.filename = name
        df = parse(text, name)
        self.escape = df.escape
        meta, self.stages = I.parse_stages(df, name)
        for w in df.warnings:
            await self.say(f"[Warning] {w}\n")
        syntax = df.directives.get("syntax")
        if syntax and not re.match(r"^(docker\.io/)?docker/dockerfile(-upstream)?(:[0-9a-z.-]+)?(@.*)?$", syntax):
            await self.say(f"[Warning] the syntax directive ({syntax}) is not used: berth parses "
                           "Dockerfiles itself\n")
        self._init_meta(meta)
        target = self._target_index()
        needed = await self._plan(target)
        self.total = sum(1 + len(self.stages[i].instructions) for i in needed)
        for i in needed:
            self.stage_results[i] = await self._build_stage(self.stages[i])
        result = self.stage_results[target]
        if self.opts.labels:
            cfg = copy.deepcopy(result.inner)
            labels = dict(cfg.get("Labels") or {})
            labels.update(self.opts.labels)
            cfg["Labels"] = labels
            shell = " ".join(cfg.get("Shell") or DEFAULT_SHELL)
            text_l = " ".join(f"{k}={v}" for k, v in sorted(self.opts.labels.items()))
            hist: dict[str, Any] = {"created_by": f"{shell} #(nop)  LABEL {text_l}", "empty_layer": True}
            if result.config.get("author"):
                hist["author"] = result.config["author"]
            result = await self.runner.commit_config(result, cfg, hist)
        unused = sorted(k for k in self.opts.build_args
                        if k not in self.declared and k not in I.PROXY_ARGS)
        if unused:
            await self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        return result

    def _init_meta(self, meta: list[I.Arg]) -> None:
        plat = self.opts.platform or f"linux/{_host_arch()}"
        os_, _, arch = plat.partition("/")
        arch, _, variant = arch.partition("/")
        auto = {"BUILDPLATFORM": f"linux/{_host_arch()}", "BUILDOS": "linux", "BUILDARCH": _host_arch(),
                "BUILDVARIANT": "", "TARGETPLATFORM": plat, "TARGETOS": os_, "TARGETARCH": arch,
                "TARGETVARIANT": variant}
        env: dict[str, str] = dict(auto)
        for a in meta:
            for name, default in a.args:
                self.declared.add(name)
                val = self.opts.build_args.get(name)
                if val is None:
                    val = expand_word(default, env, self.escape) if default is not None else None
                if val is not None:
                    env[name] = val
                else:
                    env.pop(name, None)
        self.meta_env = env

    def _stage_index(self, ref: str) -> int | None:
        low = ref.lower()
        for st in self.stages:
            if st.name == low:
                return st.index
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        return None

    def _target_index(self) -> int:
        if not self.opts.target:
            return len(self.stages) - 1
        idx = None
        for st in self.stages:
            if st.name == self.opts.target.lower():
                idx = st.index
        if idx is None:
            raise InvalidParameter(f"failed to reach build target {self.opts.target} in Dockerfile")
        return idx

    # --- planning -----------------------------------------------------------------------
    async def _plan(self, target: int) -> list[int]:
        """The stages the target needs, in build order: the stages its FROM, COPY --from and
        RUN --mount from= name, and those the ONBUILD triggers it runs name. The legacy
        builder builds every stage up to the target, so a trigger finds any earlier stage
        built; BuildKit (since Dockerfile 1.11) plans as here, reading the base images'
        triggers before it builds. A stage added this way can add more (its own steps and
        triggers), hence the loop."""
        deps = {st.index: self._step_deps(st) for st in self.stages}
        known: set[int] = set()          # stages whose triggers are in `deps`
        while True:
            needed = _reachable(target, deps)
            todo = sorted(needed - known)
            if not todo:
                return sorted(needed)
            for i in todo:
                known.add(i)
                deps[i] |= await self._trigger_deps(self.stages[i], needed)

    def _step_deps(self, st: I.Stage) -> set[int]:
        """The earlier stages a stage's FROM and own steps name."""
        d: set[int] = set()
        bi = self._base_stage(st)
        if bi is not None:
            d.add(bi)
        for ins in st.instructions:
            for ref in self._from_refs(ins, self.meta_env):
                fi = self._stage_index(ref)
                if fi is not None:
                    if fi >= st.index:
                        raise DockerfileSyntaxError(
                            f"invalid from flag value {ref}: refers to the current or a later stage",
                            ins.line, self.filename)
                    d.add(fi)
        return d

    async def _trigger_deps(self, st: I.Stage, needed: set[int]) -> set[int]:
        """The earlier stages named by the ONBUILD triggers the stage runs. A trigger naming
        this stage or a later one fails when it runs (_stage_image), as in the legacy
        builder, which has not built them yet either."""
        bi = self._base_stage(st)
        if bi is not None:
            # FROM a stage: its ONBUILD instructions are the triggers (its own base
            # image's triggers ran in it and were cleared)
            triggers = [i.expression for i in self.stages[bi].instructions if isinstance(i, I.OnBuild)]
            env = self.meta_env
        elif needed.issuperset(range(st.index)):
            # every earlier stage is built anyway: the base is resolved at its step, where
            # the legacy builder shows its pull
            return set()
        else:
            # resolved now (a pull shows before the first step) and kept for its step
            image = self._bases[st.index] = await self._base_image(st)
            if image is None:
                return set()
            triggers = list(image.inner.get("OnBuild") or [])
            env = env_to_dict(image.inner.get("Env"))  # what the trigger's --from expands with
        out: set[int] = set()
        for ins in self._triggers(triggers):
            for ref in self._from_refs(ins, env):
                fi = self._stage_index(ref)
                if fi is not None and fi < st.index:
                    out.add(fi)
        return out

    def _from_refs(self, ins: I.Instruction, env: dict[str, str]) -> list[str]:
        """What a step takes files from: a COPY's --from, the from= of a RUN's mounts (a
        stage name or index, or an image)."""
        if isinstance(ins, I.Copy) and ins.from_:
            return [expand_word(ins.from_, env, self.escape)]
        if isinstance(ins, I.Run):
            # `from` of a --mount never expands (runmount)
            return [f for f in (parse_mount(m).from_ for m in ins.mounts) if f]
        return []

    def _triggers(self, expressions: list[str]) -> list[I.Instruction]:
        """ONBUILD triggers as instructions, all parsed before any runs (as the legacy
        builder does)."""
        out: list[I.Instruction] = []
        for t in expressions:
            for node in parse(t, self.filename).nodes:
                ins = I.parse_instruction(node, self.filename)
                if isinstance(ins, (I.From, I.OnBuild)):
                    raise InvalidParameter(f"{ins.keyword} isn't allowed as an ONBUILD trigger")
                out.append(ins)
        return out

    def _base_stage(self, stage: I.Stage) -> int | None:
        """The earlier stage the stage's FROM names (None: an image, or scratch). FROM takes
        stage names only, never an index."""
        base = expand_word(stage.base, self.meta_env, self.escape)
        bi = None if base.isdigit() else self._stage_index(base)
        return bi if bi is not None and bi < stage.index else None

    async def _base_image(self, stage: I.Stage) -> ImageRef | None:
        """The image the stage's FROM names (pulled if need be); None for scratch."""
        base = expand_word(stage.base, self.meta_env, self.escape)
        if not base:
            raise DockerfileSyntaxError("base name (" + stage.base + ") should not be blank",
                                        stage.from_.line, self.filename)
        if base == "scratch":
            return None
        platform = (expand_word(stage.from_.platform, self.meta_env, self.escape)
                    if stage.from_.platform else self.opts.platform)
        return await self.runner.resolve(base, pull=self.opts.pull, platform=platform, emit=self._progress)

    def _stage_image(self, ref: str, state: _State) -> ImageRef | None:
        """The image of the build stage a step's --from or from= names; None when it names
        no stage (it is an image then)."""
        si = self._stage_index(ref)
        if si is None:
            return None
        if si >= state.stage.index:  # (only a trigger gets here: _step_deps refuses the rest)
            raise InvalidParameter(f"invalid from flag value {ref}: refers to the current or a later stage")
        if si not in self.stage_results:
            # never pull an image in place of a stage: the plan expands --from with the
            # global ARGs, so a name made of variables the stage sets was not seen
            raise InvalidParameter(f"invalid from flag value {ref}: that stage was not built: a --from "
                                   "names a stage through global ARGs only, not variables the stage sets")
        return self.stage_results[si]

    # --- stages -------------------------------------------------------------------------
    async def _build_stage(self, stage: I.Stage) -> ImageRef:
        self.step += 1
        await self.say(f"Step {self.step}/{self.total} : {stage.from_.text()}\n")
        bi = self._base_stage(stage)
        image: ImageRef | None
        if bi is not None:
            image = self.stage_results[bi]
        elif stage.index in self._bases:
            image = self._bases.pop(stage.index)
        else:
            image = await self._base_image(stage)
        if image is not None:
            await self.say(f" ---> {image.id.removeprefix('sha256:')[:12]}\n")
            cfg = copy.deepcopy(image.inner)
        else:
            cfg = {"Env": [DEFAULT_PATH]}
        state = _State(stage=stage, image=image, config=cfg)
        triggers = list(cfg.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            await self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for ins in self._triggers(triggers):
                await self._dispatch(state, ins)
        for ins in stage.instructions:
            self.step += 1
            await self.say(f"Step {self.step}/{self.total} : {ins.text()}\n")
            try:
                await self._dispatch(state, ins)
            except DockerfileSyntaxError:
                raise
            except InvalidParameter as exc:
                msg = str(exc)
                raise InvalidParameter(msg if msg.startswith(self.filename + ":")
                                       else f"{self.filename}:{ins.line}: {msg}") from None
        if state.image is None:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        return state.image

    # --- helpers ------------------------------------------------------------------------
    def _env(self, state: _State) -> dict[str, str]:
        env = {k: v for k, v in state.args.items() if v is not None}
        env.update(env_to_dict(state.config.get("Env")))
        return env

    def _x(self, state: _State, word: str) -> str:
        return expand_word(word, self._env(state), self.escape)

    def _nop(self, state: _State, text: str, two: bool = True) -> str:
        return f"{' '.join(state.shell)} #(nop) {' ' if two else ''}{text}"

    async def _cached(self, state: _State, probe: Probe, created_by: str) -> ImageRef | None:
        if self.cache is None or self.opts.no_cache:
            return None
        cache = self.cache
        hit = await asyncio.to_thread(cache.lookup, probe, lambda _id: True)
        if hit is not None:
            if not await self.runner.exists(hit):
                await asyncio.to_thread(cache.forget_image, hit)
                hit = None
        if hit is None:
            hit = await self._from_cache_images(probe.parent, created_by)
        if hit is None:
            if not state.missed:
                state.missed = True
                why = await asyncio.to_thread(cache.explain_miss, probe)
                await self.say(f" ---> Cache miss: {why}\n")
            return None
        await self.say(" ---> Using cache\n")
        return await self.runner.get(hit)

    async def _from_cache_images(self, parent: str, created_by: str) -> str | None:
        """cachefrom, as the classic builder uses it: a step of one of those images (or their
        ancestors) made on the same parent by the same instruction is a hit. Images that are
        not here are skipped, as dockerd does; the chains are read at the first miss."""
        if not self.opts.cache_from:
            return None
        if self._cache_steps is None:
            self._cache_steps = []
            for name in self.opts.cache_from:
                try:
                    self._cache_steps.extend(await self.runner.lineage(name))
                except NotFound:
                    continue
        for step_parent, image_id, step_created_by in self._cache_steps:
            if step_parent == parent and step_created_by == created_by:
                return image_id
        return None

    async def _remember(self, probe: Probe, image: ImageRef) -> None:
        if self.cache is not None:
            await asyncio.to_thread(self.cache.store, probe, image.id)

    async def _advance(self, state: _State, image: ImageRef) -> None:
        state.image = image
        state.config = copy.deepcopy(image.inner)
        await self.say(f" ---> {image.id.removeprefix('sha256:')[:12]}\n")

    async def _meta(self, state: _State, ins: I.Instruction, created_by: str,
                    author: str = "") -> None:
        cfg = state.config
        probe = Probe(parent=state.parent_id, keyword=ins.keyword, instruction=created_by,
                      extra=_config_digest(cfg) + author)
        image = await self._cached(state, probe, created_by)
        if image is None:
            if author:
                state.maintainer = author
            hist = state.hist(created_by, empty_layer=True)
            image = await self.runner.commit_config(state.image, copy.deepcopy(cfg), hist)
            await self._remember(probe, image)
        await self._advance(state, image)

    # --- dispatch -----------------------------------------------------------------------
    async def _dispatch(self, state: _State, ins: I.Instruction) -> None:
        cfg = state.config
        if isinstance(ins, I.Run):
            await self._run(state, ins)
        elif isinstance(ins, (I.Copy,)):
            await self._copy(state, ins)
        elif isinstance(ins, I.Workdir):
            await self._workdir(state, ins)
        elif isinstance(ins, I.Env):
            env = self._env(state)
            parts = []
            new_env = list(cfg.get("Env") or [])
            for k, v in ins.pairs:
                key = expand_word(k, env, self.escape)
                val = expand_word(v, env, self.escape)
                new_env = _set_env(new_env, key, val)
                parts.append(f"{key}={val}")
            cfg["Env"] = new_env
            await self._meta(state, ins, self._nop(state, "ENV " + " ".join(parts)))
        elif isinstance(ins, I.Label):
            env = self._env(state)
            labels = dict(cfg.get("Labels") or {})
            parts = []
            for k, v in ins.pairs:
                key = expand_word(k, env, self.escape)
                val = expand_word(v, env, self.escape)
                labels[key] = val
                parts.append(f"{key}={val}")
            cfg["Labels"] = labels
            await self._meta(state, ins, self._nop(state, "LABEL " + " ".join(parts)))
        elif isinstance(ins, I.Arg):
            parts = []
            for name, default in ins.args:
                self.declared.add(name)
                val = self.opts.build_args.get(name)
                if val is None:
                    if default is not None:
                        val = expand_word(default, self._env(state), self.escape)
                    else:
                        val = self.meta_env.get(name)
                state.args[name] = val
                parts.append(name if default is None else f"{name}={default}")
            await self._meta(state, ins, self._nop(state, "ARG " + " ".join(parts)))
        elif isinstance(ins, I.Cmd):
            cmd = state.shell + ins.cmd if ins.prepend_shell and ins.cmd else list(ins.cmd)
            cfg["Cmd"] = cmd
            state.cmd_set = True
            await self._meta(state, ins, self._nop(state, "CMD " + _go_quote_list(cmd)))
        elif isinstance(ins, I.Entrypoint):
            ep = state.shell + ins.cmd if ins.prepend_shell else list(ins.cmd)
            if ins.prepend_shell and not ins.cmd:
                ep = []
            cfg["Entrypoint"] = ep or None
            if not state.cmd_set:
                cfg["Cmd"] = None
            await self._meta(state, ins, self._nop(state, "ENTRYPOINT " + _go_quote_list(ep)))
        elif isinstance(ins, I.Expose):
            env = self._env(state)
            ports = dict(cfg.get("ExposedPorts") or {})
            shown = []
            for word in ins.ports:
                for p in expand_words(word, env, self.escape):
                    shown.append(p)
                    for n in _normalize_port(p):
                        ports[n] = {}
            cfg["ExposedPorts"] = ports
            await self._meta(state, ins, self._nop(state, "EXPOSE " + " ".join(shown)))
        elif isinstance(ins, I.User):
            user = self._x(state, ins.user)
            cfg["User"] = user
            await self._meta(state, ins, self._nop(state, "USER " + user))
        elif isinstance(ins, I.Volume):
            env = self._env(state)
            vols = dict(cfg.get("Volumes") or {})
            paths = []
            for w in ins.paths:
                for p in ([expand_word(w, env, self.escape)] if ins.node.json else
                          expand_words(w, env, self.escape)):
                    if not p.strip():
                        raise InvalidParameter("VOLUME specified can not be an empty string")
                    vols[p] = {}
                    paths.append(p)
            cfg["Volumes"] = vols
            await self._meta(state, ins, self._nop(state, "VOLUME [" + " ".join(paths) + "]"))
        elif isinstance(ins, I.StopSignal):
            sig = _valid_signal(self._x(state, ins.signal))
            cfg["StopSignal"] = sig
            await self._meta(state, ins, self._nop(state, "STOPSIGNAL " + sig))
        elif isinstance(ins, I.Healthcheck):
            hc: dict[str, Any] = {"Test": ins.test}
            if ins.test != ["NONE"]:
                for key, val in (("Interval", ins.interval), ("Timeout", ins.timeout),
                                 ("StartPeriod", ins.start_period),
                                 ("StartInterval", ins.start_interval), ("Retries", ins.retries)):
                    if val:
                        hc[key] = val
            cfg["Healthcheck"] = hc
            await self._meta(state, ins, self._nop(state, "HEALTHCHECK " + ins.node.original.split(None, 1)[1]))
        elif isinstance(ins, I.OnBuild):
            trig = list(cfg.get("OnBuild") or [])
            trig.append(ins.expression)
            cfg["OnBuild"] = trig
            await self._meta(state, ins, self._nop(state, "ONBUILD " + ins.expression))
        elif isinstance(ins, I.Shell):
            cfg["Shell"] = list(ins.shell)
            await self._meta(state, ins, self._nop(state, "SHELL [" + " ".join(ins.shell) + "]"))
        elif isinstance(ins, I.Maintainer):
            await self._meta(state, ins, self._nop(state, "MAINTAINER " + ins.name), author=ins.name)
        else:  # pragma: no cover - parse_instruction only makes the classes above
            raise InvalidParameter(f"unsupported instruction {ins.keyword}")

    # --- WORKDIR ------------------------------------------------------------------------
    async def _workdir(self, state: _State, ins: I.Workdir) -> None:
        path = self._x(state, ins.path)
        if not path.startswith("/"):
            path = posixpath.join(state.config.get("WorkingDir") or "/", path)
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        state.config["WorkingDir"] = path
        created_by = self._nop(state, "WORKDIR " + path, two=False)
        if path == "/" or await self.runner.path_is_dir(state.image, path):
            await self._meta(state, ins, created_by)
            return
        cfg = state.config
        probe = Probe(parent=state.parent_id, keyword="WORKDIR", instruction=created_by,
                      extra=_config_digest(cfg) + ":mkdir")
        image = await self._cached(state, probe, created_by)
        if image is None:
            uid, gid = 0, 0

            def apply(rootfs: str) -> None:
                Copier(rootfs, uid, gid).mkdirs(path)

            image = await self.runner.fs_step(state.image, apply, copy.deepcopy(cfg),
                                              state.hist(created_by))
            await self._remember(probe, image)
        await self._advance(state, image)

    # --- RUN ----------------------------------------------------------------------------
    def _run_args(self, state: _State) -> tuple[dict[str, str], list[str]]:
        """(args for the cache key/history, env entries for the container)."""
        env_keys = set(env_to_dict(state.config.get("Env")))
        hist: dict[str, str] = {}
        for k, v in state.args.items():
            if v is None or k in env_keys:
                continue
            if k in I.PROXY_ARGS:
                continue
            hist[k] = v
        extra_env = [f"{k}={v}" for k, v in sorted(hist.items())]
        for k in sorted(I.PROXY_ARGS):
            v = self.opts.build_args.get(k)
            if v is not None and k not in env_keys:
                extra_env.append(f"{k}={v}")
        return hist, extra_env

    async def _run(self, state: _State, ins: I.Run) -> None:
        shell = state.shell
        prepare_files: dict[str, tuple[bytes, int]] = {}
        if ins.prepend_shell:
            cmdline = ins.cmd[0]
            if ins.heredocs:
                words = cmdline.split()
                only = len(ins.heredocs) == 1 and len(words) == 1 and re.match(r"^\d*<<-?", words[0])
                if only:
                    body = ins.heredocs[0].content
                    if body.startswith("#!"):
                        script = f"/.berth-heredoc-{ins.heredocs[0].name}"
                        prepare_files[script] = (body.encode(), 0o755)
                        argv = [script]
                    else:
                        argv = shell + [body]
                else:
                    script_text = cmdline + "\n" + "".join(
                        h.content + h.name + "\n" for h in ins.heredocs)
                    argv = shell + [script_text]
            else:
                argv = shell + [cmdline]
        else:
            argv = list(ins.cmd)
        hist_args, extra_env = self._run_args(state)
        created_by = " ".join(argv)
        if hist_args:
            created_by = f"|{len(hist_args)} " + " ".join(
                f"{k}={v}" for k, v in sorted(hist_args.items())) + " " + created_by
        cfg = state.config
        workdir = cfg.get("WorkingDir") or "/"
        network = ins.network or self.opts.network_mode or "default"
        if network == "default":
            network = "bridge"
        mounts = await self._resolve_mounts(state, ins, workdir)
        extra: list[Any] = [_config_digest(cfg), network,
                            {k: hashlib.sha256(v[0]).hexdigest() for k, v in prepare_files.items()}]
        if mounts:
            extra.append([m.image.id if m.image else "" for m in mounts])
        probe = Probe(parent=state.parent_id, keyword="RUN",
                      instruction=" ".join([*(f"--mount={m.spec.flag()}" for m in mounts), *argv]),
                      files=await asyncio.to_thread(_mounted_files, mounts) if mounts else {},
                      args=hist_args, extra=json.dumps(extra))
        image = await self._cached(state, probe, created_by)
        if image is None:
            targets: list[tuple[str, bool]] = []          # mount points: (path, is_dir)
            made: list[mountpoints.Mountpoints] = []

            def prepare(rootfs: str) -> None:
                c = Copier(rootfs)
                if workdir != "/":
                    c.mkdirs(workdir, chown=False)
                for path, (data, mode) in prepare_files.items():
                    host = resolve_in_root(rootfs, path, clamp=True)
                    with open(host, "wb") as f:
                        f.write(data)
                    os.chmod(host, mode)
                if targets:
                    made.append(mountpoints.make(rootfs, targets))

            def cleanup(rootfs: str) -> None:
                for path in prepare_files:
                    try:
                        os.unlink(resolve_in_root(rootfs, path, clamp=True))
                    except FileNotFoundError:
                        pass

            def scrub(upper: str) -> None:
                for mp in made:
                    mp.scrub(upper)

            async with contextlib.AsyncExitStack() as held:
                api_mounts, found = await self._open_mounts(held, mounts)
                targets.extend(found)
                env = list(cfg.get("Env") or []) + extra_env
                req = RunRequest(cmd=argv, env=env, user=cfg.get("User") or "", workdir=workdir,
                                 network_mode=network, config=copy.deepcopy(cfg),
                                 history=state.hist(created_by), prepare=prepare,
                                 cleanup=cleanup if prepare_files else None,
                                 host_config=dict(self.opts.run_host_config),
                                 mounts=api_mounts, scrub=scrub if mounts else None,
                                 remove=self.opts.remove, force_remove=self.opts.force_remove)
                image = await self._run_step(state, req)
            await self._remember(probe, image)
        await self._advance(state, image)

    async def _run_step(self, state: _State, req: RunRequest) -> ImageRef:
        started: list[str] = []

        async def on_start(cid: str) -> None:
            started.append(cid)
            await self.say(f" ---> Running in {cid[:12]}\n")

        async def on_output(data: bytes) -> None:
            await self.say(data.decode("utf-8", errors="replace"))

        try:
            image = await self.runner.run(state.image, req, on_start, on_output)
        except StepFailed as exc:
            if started and req.force_remove:   # (without it the removal is silent)
                await self.say(f"Removing intermediate container {started[0][:12]}\n")
            raise BuildError(f"The command '{' '.join(req.cmd)}' returned a non-zero code: {exc.exit_code}",
                             code=exc.exit_code) from None
        if started and req.remove:
            await self.say(f"Removing intermediate container {started[0][:12]}\n")
        return image

    # --- RUN --mount --------------------------------------------------------------------
    async def _resolve_mounts(self, state: _State, ins: I.Run, workdir: str) -> list[_RunMount]:
        """The RUN's mounts, expanded, targets made absolute, `from` resolved to an image
        and context sources to their host path (all that the cache key needs)."""
        env = self._env(state)
        out: list[_RunMount] = []
        seen: set[str] = set()
        for raw in ins.mounts:
            try:
                spec = parse_mount(raw, lambda v: expand_word(v, env, self.escape))
                target = "/" + posixpath.normpath(posixpath.join(workdir, spec.target)).lstrip("/")
                if target == "/":
                    raise InvalidParameter('invalid mount target "/"')
                if target in seen:
                    raise InvalidParameter(f"duplicate mount target {target}")
                seen.add(target)
                m = _RunMount(replace(spec, target=target), raw=raw)
                if spec.from_:
                    m.image = await self._mount_from(spec.from_, state)
                elif spec.type == "bind":
                    m.context_path = await asyncio.to_thread(self._context_source, spec.source)
            except InvalidParameter as exc:
                raise InvalidParameter(f"--mount={raw}: {exc}") from None
            out.append(m)
        return out

    async def _mount_from(self, ref: str, state: _State) -> ImageRef:
        stage = self._stage_image(ref, state)
        if stage is not None:
            return stage
        try:
            return await self.runner.resolve(ref, pull=self.opts.pull, platform=None, emit=self._progress)
        except NotFound:
            raise InvalidParameter(f"from={ref} names no build stage and no image") from None
        except BerthError as exc:  # e.g. no registry to pull it from: say which flag asked
            raise InvalidParameter(f"from={ref} names no build stage, and as an image: {exc}") from None

    def _context_source(self, source: str) -> str:
        host = resolve_in_root(self.ctx.root, source or "/", clamp=False, what=source)
        if not os.path.lexists(host):
            raise InvalidParameter(f"source not found in the build context: {source}")
        return host

    async def _open_mounts(self, held: contextlib.AsyncExitStack,
                           mounts: list[_RunMount]) -> tuple[list[dict[str, Any]], list[tuple[str, bool]]]:
        """HostConfig.Mounts for the step and the mount points it needs ((target, is_dir));
        what they stand on (image snapshots, scratch copies, held caches) stays open in
        `held` until the step is over."""
        api: list[dict[str, Any]] = []
        targets: list[tuple[str, bool]] = []
        for m in sorted(mounts, key=lambda m: m.spec.target.count("/")):  # parents first
            s = m.spec
            if s.type == "tmpfs":
                entry: dict[str, Any] = {"Type": "tmpfs", "Target": s.target, "ReadOnly": s.readonly}
                if s.size:
                    entry["TmpfsOptions"] = {"SizeBytes": s.size}
                api.append(entry)
                targets.append((s.target, True))
                continue
            root = None
            if m.image is not None:
                # a snapshot of its own: writes to a rw mount land in its throw-away upper dir
                root = await held.enter_async_context(self.runner.mount_image(m.image))
            try:
                if s.type == "cache":
                    source = await self._open_cache(held, m, root)
                elif root is not None:
                    source = _image_source(root, s.source)
                elif s.readonly:
                    source = m.context_path
                else:
                    source = await asyncio.to_thread(self._scratch_copy, held, m.context_path)
            except InvalidParameter as exc:
                raise InvalidParameter(f"--mount={m.raw}: {exc}") from None
            api.append({"Type": "bind", "Source": source, "Target": s.target, "ReadOnly": s.readonly})
            targets.append((s.target, os.path.isdir(source)))
        return api, targets

    async def _open_cache(self, held: contextlib.AsyncExitStack, m: _RunMount, root: str | None) -> str:
        if self.cache_mounts is None:
            raise InvalidParameter("cache mounts are not available to this builder")
        s = m.spec
        seed: Callable[[str], None] | None = None
        seed_id = ""
        if root is not None and m.image is not None:
            src = _image_source(root, s.source)
            seed_id = f"{m.image.id}:{posixpath.normpath('/' + s.source)}"
            seed = functools.partial(copy_tree, src)
        spec = CacheSpec(id=s.cache_id, sharing=s.sharing or "shared", mode=s.mode, uid=s.uid,
                         gid=s.gid, seed=seed_id)
        path = await held.enter_async_context(self.cache_mounts.acquire(spec, seed))
        if root is None and s.source:
            # without `from`, source is a directory inside the cache
            path = resolve_in_root(path, s.source, clamp=True)
            await asyncio.to_thread(os.makedirs, path, 0o755, True)
        return path

    def _scratch_copy(self, held: contextlib.AsyncExitStack, path: str) -> str:
        """A rw bind from the context: a copy of its own, so writes never reach the context."""
        d = tempfile.mkdtemp(prefix=".berth-mount-", dir=os.path.dirname(self.ctx.root))
        held.callback(shutil.rmtree, d, True)
        dst = d if os.path.isdir(path) else os.path.join(d, os.path.basename(path))
        copy_tree(path, dst)
        return dst

    # --- COPY / ADD ---------------------------------------------------------------------
    async def _download(self, url: str) -> tuple[str, str]:
        """ADD <url>: fetch into a directory of its own beside the context (mode 0600, mtime
        from Last-Modified, as Docker does). Returns (directory, file name)."""
        import email.utils
        import urllib.parse

        import aiohttp

        name = posixpath.basename(urllib.parse.urlparse(url).path.rstrip("/")) or "download"
        d = tempfile.mkdtemp(prefix=".berth-add-", dir=os.path.dirname(self.ctx.root))
        self._cleanup.append(d)
        path = os.path.join(d, name)
        await self.say(f"Downloading {url}\n")
        try:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
            async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
                async with session.get(url) as resp:
                    if resp.status >= 400:
                        raise InvalidParameter(
                            f"failed to GET {url} with status {resp.status}: {resp.reason}")
                    with open(path, "wb") as f:
                        async for chunk in resp.content.iter_chunked(1 << 16):
                            await asyncio.to_thread(f.write, chunk)
                    modified = resp.headers.get("Last-Modified")
        except aiohttp.ClientError as exc:
            raise InvalidParameter(f"failed to download {url}: {exc}") from None
        os.chmod(path, 0o600)
        if modified:
            try:
                ts = email.utils.parsedate_to_datetime(modified).timestamp()
                os.utime(path, (ts, ts))
            except (TypeError, ValueError):
                pass
        return d, name

    async def _copy(self, state: _State, ins: I.Copy) -> None:
        env = self._env(state)
        kw = ins.keyword
        srcs_raw = [expand_word(s, env, self.escape) for s in ins.sources]
        dest = expand_word(ins.dest, env, self.escape)
        chown = expand_word(ins.chown, env, self.escape) if ins.chown else None
        chmod_s = expand_word(ins.chmod, env, self.escape) if ins.chmod else None
        chmod = parse_chmod(chmod_s) if chmod_s else None
        heredocs = {h.name: h for h in ins.heredocs}
        from_ref: ImageRef | None = None
        if ins.from_:
            f = expand_word(ins.from_, env, self.escape)
            from_ref = self._stage_image(f, state)
            if from_ref is None:
                from_ref = await self.runner.resolve(f, pull=self.opts.pull, platform=None, emit=self._progress)
        downloads: dict[str, tuple[str, str]] = {}
        if ins.checksum and not all(x.startswith(("http://", "https://")) for x in srcs_raw):
            raise InvalidParameter("checksum can't be specified for non-HTTP(S) sources")
        for s in srcs_raw:
            if s.startswith(("http://", "https://")) and s not in heredocs:
                if not ins.is_add:
                    raise InvalidParameter(f"source can't be a URL for COPY: {s}")
                downloads[s] = await self._download(s)
                if ins.checksum:
                    want = expand_word(ins.checksum, env, self.escape)
                    d, name = downloads[s]
                    got = "sha256:" + await asyncio.to_thread(_sha256_file, os.path.join(d, name))
                    if not want.startswith("sha256:"):
                        raise InvalidParameter(f"unsupported digest algorithm in --checksum={want}")
                    if got != want:
                        raise InvalidParameter(f"digest mismatch for {s}: expected {want}, got {got}")
        workdir = state.config.get("WorkingDir") or "/"

        def gather(root: str | None) -> tuple[list[Source], dict[str, str]]:
            sources: list[Source] = []
            files: dict[str, str] = {}
            for s in srcs_raw:
                if s in downloads:
                    d, name = downloads[s]
                    sources.append(Source(root=d, rel=name))
                    files[s] = hash_tree(os.path.join(d, name), name)[name]
                    continue
                if s in heredocs and from_ref is None:
                    h = heredocs[s]
                    content = expand_heredoc(h.content, env, self.escape) if h.expand else h.content
                    data = content.encode()
                    sources.append(Source(root="", rel=s, inline=data))
                    files[f"<<{s}"] = hashlib.sha256(data).hexdigest()
                    continue
                if root is None:
                    matches = glob_in(self.ctx.root, s, clamp=False)
                else:
                    matches = glob_in(root, s, clamp=True)
                if not matches:
                    where = "build context or excluded by .dockerignore" if root is None else "source image"
                    raise InvalidParameter(
                        f"{kw} failed: file not found in {where}: stat {s}: file does not exist")
                for m in matches:
                    sources.append(Source(root=root or self.ctx.root, rel=m, clamp=root is not None))
                    if root is None:
                        host = resolve_in_root(self.ctx.root, m, clamp=False, what=m)
                        files.update(hash_tree(host, m))
            return sources, files

        async def perform(root: str | None) -> None:
            sources, files = await asyncio.to_thread(gather, root)
            if from_ref is not None:
                # the source image id stands for the content (images are content-addressed)
                files = {f"--from={ins.from_}:/{s.rel}": from_ref.id for s in sources}
            if downloads and len(sources) == 1:
                kind = "file"
            elif len(sources) == 1 and sources[0].inline is None:
                host = resolve_in_root(sources[0].root, sources[0].rel, clamp=sources[0].clamp)
                kind = "dir" if os.path.isdir(host) else "file"
            else:
                kind = "multi"
            digest = digest_of(files)
            created_by = self._nop(state, f"{kw} {kind}:{digest} in {dest} ", two=False)
            flags = "".join(f"--{n}={v} " for n, v in (("from", ins.from_), ("chown", chown), ("chmod", chmod_s)) if v)
            shown = f"{kw} {flags}{' '.join(srcs_raw)} {dest}"
            cfg = state.config
            probe = Probe(parent=state.parent_id, keyword=kw, instruction=shown, files=files,
                          extra=json.dumps([_config_digest(cfg), workdir]))
            image = await self._cached(state, probe, created_by)
            if image is None:
                def apply(rootfs: str) -> None:
                    uid, gid = parse_chown(chown, rootfs) if chown else (0, 0)
                    Copier(rootfs, uid, gid, chmod).copy(sources, dest, workdir, is_add=ins.is_add)

                image = await self.runner.fs_step(state.image, apply, copy.deepcopy(cfg),
                                                  state.hist(created_by))
                await self._remember(probe, image)
            await self._advance(state, image)

        try:
            if from_ref is not None:
                async with self.runner.mount_image(from_ref) as root:
                    await perform(root)
            else:
                await perform(None)
        except OutsideContext as exc:
            raise InvalidParameter(f"{kw} failed: {exc}") from None


def _reachable(target: int, deps: dict[int, set[int]]) -> set[int]:
    """The target and every stage it depends on, directly or not."""
    out: set[int] = set()
    todo = [target]
    while todo:
        i = todo.pop()
        if i not in out:
            out.add(i)
            todo.extend(deps[i])
    return out


def _image_source(root: str, source: str) -> str:
    host = resolve_in_root(root, source or "/", clamp=True)
    if not os.path.lexists(host):
        raise InvalidParameter(f"source not found in the mounted image: {source}")
    return host


def _mounted_files(mounts: list[_RunMount]) -> dict[str, str]:
    """Content digests of what the context bind mounts show (a changed file misses the
    cache as COPY's do); images of `from` are keyed by id."""
    files: dict[str, str] = {}
    for m in mounts:
        if m.context_path:
            rel = posixpath.normpath(m.spec.source.lstrip("/") or ".")
            files.update(hash_tree(m.context_path, rel))
    return files


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _host_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


async def run_build(runner: StepRunner, cache: BuildCache | None, context: BuildContext,
                    options: BuildOptions, emit: Emit,
                    cache_mounts: CacheMountStore | None = None) -> ImageRef:
    """Build and tag; emits Docker's legacy-builder JSON messages. `cache_mounts` holds
    the directories of `RUN --mount=type=cache` (refused without it)."""
    builder = Builder(runner, cache, context, options, emit, cache_mounts)
    try:
        image = await builder.build()
    except BerthError:
        if options.quiet and builder.quiet_log:
            await emit({"stream": "".join(builder.quiet_log)})
        raise
    finally:
        for d in builder._cleanup:
            await asyncio.to_thread(shutil.rmtree, d, True)
    tagged = await runner.tag(image.id, options.tags) if options.tags else []
    if options.quiet:
        await emit({"stream": image.id + "\n"})
        return image
    await emit({"aux": {"ID": image.id}})
    await emit({"stream": f"Successfully built {image.id.removeprefix('sha256:')[:12]}\n"})
    for t in tagged:
        await emit({"stream": f"Successfully tagged {t}\n"})
    return image


__all__ = ["Builder", "BuildError", "BuildOptions", "ImageRef", "NotFound", "RunRequest",
           "StepFailed", "StepRunner", "run_build"]
