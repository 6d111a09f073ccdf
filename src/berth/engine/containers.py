"""Engine service: containers (create, start, stop, kill, wait, remove, rename, pause,
update, attach, restart policies, live restore), and the facade the API calls for what
lives in its own modules: exec (`execs`), docker cp/export/diff (`containerfs`), top and
stats (`stats`), inspect and ps (`containerjson`), logs (`jsonlog`).

State lives in the `containers` table (one JSON document per row, `container.Container`);
running containers are driven through their shim (berth.shim.client). The service is
asyncio-based: call its coroutines from the daemon's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal as signal_mod
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

from berth.config import DaemonConfig
from berth.engine import containerfs, containerjson, hostconfig, jsonlog, links, specgen, stats
from berth.engine.container import Container, new_state
from berth.engine.execs import Exec, ExecFailed, Execs, exec_failed
from berth.engine.humanize import ZERO_TIME
from berth.engine.names import random_name, validate
from berth.engine.sharing import Sharing
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, NotModified
from berth.network import endpoint as epcheck
from berth.network.sandbox import Sandbox
from berth.runtime import cgroups
from berth.shim import client as shim
from berth.shim.protocol import ShimConfig, rfc3339_nano

log = logging.getLogger("berth.containers")

# written into containers/<id>/ at each start (by us or the network service), beside the
# snapshot's rootfs/upper/work and the log
START_FILES = ("config.json", "hosts", "hostname", "resolv.conf", "exit.json")

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created TEXT NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
"""


class LogsNotReadable(BerthError):
    """`logs` of a container whose log driver keeps nothing (dockerd: 501)."""

    status = 501


def parse_signal(sig: str | int | None, default: int = signal_mod.SIGKILL) -> int:
    if sig is None or sig == "":
        return int(default)
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
        if n <= 0 or n > 64:
            raise InvalidParameter(f"Invalid signal: {sig}")
        return n
    name = str(sig).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal_mod.Signals, name))
    except AttributeError:
        if name.startswith("SIGRTMIN+"):
            return int(signal_mod.SIGRTMIN) + int(name.split("+")[1])
        raise InvalidParameter(f"Invalid signal: {sig}") from None


class ContainerService:
    def __init__(self, config: DaemonConfig, db: Any, images: Any, networks: Any, volumes: Any,
                 events: Any = None) -> None:
        self.config, self.db, self.images = config, db, images
        self.networks, self.volumes, self.events = networks, volumes, events
        self.db.ensure_schema(SCHEMA)
        self.db.ensure_schema("CREATE TABLE IF NOT EXISTS engine_meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.one("SELECT value FROM engine_meta WHERE key='daemon_id'")
        if row is None:
            self.daemon_id = secrets.token_hex(16)
            self.db.execute("INSERT INTO engine_meta VALUES ('daemon_id', ?)", (self.daemon_id,))
        else:
            self.daemon_id = row["value"]
        self._c: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self.execs = Execs(self.get, self._shim_sock, self._event)
        self.sharing = Sharing(config.containers_dir, self.get)
        self._closing = False
        self._create_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._template: Any = None
        for r in self.db.execute("SELECT * FROM containers"):
            c = Container.from_row(r)
            self._c[c.id] = c
            self._names[c.name] = c.id
        for c in self._c.values():   # records older than links by target ID name the target
            for link in c.links:
                link.target_id = link.target_id or self._names.get(link.target_name, "")

    # --- life of the service -----------------------------------------------------------------
    async def _service_start(self) -> None:
        """Start the shim template, then live restore: reconnect to shims that are still
        running and learn exits that happened while the daemon was away."""
        if os.environ.get("BERTH_SHIM_TEMPLATE", "1") != "0":
            from berth.shim.template import TemplateClient
            self._template = TemplateClient(str(self.config.shims_dir))
            try:
                await self._template.start()
                shim.use_template(self._template)
            except OSError:
                log.warning("shim template unavailable; shims start with a fresh interpreter", exc_info=True)
        for c in list(self._c.values()):
            # after a host reboot the rootfs mounts are gone: containers keep theirs until rm
            if self.images is not None and c.rootfs and not os.path.ismount(c.rootfs):
                try:
                    await asyncio.to_thread(self.images.snapshots.mount, c.id)
                except Exception:  # noqa: BLE001
                    log.exception("re-mounting the rootfs of %s failed", c.id[:12])
            if c.state.get("Status") in ("running", "paused", "restarting"):
                await self._restore(c)
        # as dockerd at start-up: `always` containers run again (even if stopped by hand),
        # `unless-stopped` ones unless they were stopped by hand
        for c in list(self._c.values()):
            policy = (c.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if c.running or c.state.get("Status") != "exited" or not c.has_been_started:
                continue
            if policy == "always" or (policy == "unless-stopped" and not c.manually_stopped):
                try:
                    async with c.lock:
                        c.manually_stopped = False
                        await self._start_locked(c)
                except Exception:  # noqa: BLE001
                    log.exception("restarting %s at daemon start failed", c.id[:12])

    async def _service_stop(self) -> None:
        self._closing = True
        if self._template is not None:
            shim.use_template(None)
            await self._template.stop()
        if not any(c.running for c in self._c.values()):
            await asyncio.to_thread(self._remove_cgroup_parent)
        for c in self._c.values():
            if c.monitor is not None:
                c.monitor.cancel()
            if c.health is not None:
                c.health.cancel()
        for t in list(self._tasks):
            t.cancel()

    def _remove_cgroup_parent(self) -> None:
        """With no container left running, the (empty) cgroup parent goes too."""
        parent = self.config.cgroup_parent.strip("/")
        if not parent:
            return
        base = Path("/sys/fs/cgroup")
        try:
            ctrls = list(base.iterdir())
        except OSError:
            return
        for ctrl in ctrls:
            d = ctrl / parent
            try:
                d.rmdir()   # fails (and is left) while anything is inside
            except OSError:
                pass

    async def _restore(self, c: Container) -> None:
        sock = self._shim_sock(c.id)
        try:
            st = await shim.call(sock, {"op": "state"}, timeout=5)
        except (TimeoutError, shim.ShimError, OSError):
            st = None
        c.net_up = True
        if st is not None and st.get("running"):
            c.state["Pid"] = st.get("pid") or c.state.get("Pid", 0)
            c.monitor = asyncio.create_task(self._monitor(c))
            self._start_health(c)
            log.info("restored running container %s", c.id[:12])
            return
        info = shim.read_exit(self._exit_path(c.id))
        if info is None and st is not None:
            # the shim is finishing (the process has exited): exit.json follows shortly
            for _ in range(50):
                await asyncio.sleep(0.1)
                info = shim.read_exit(self._exit_path(c.id))
                if info is not None:
                    break
            if info is None and st.get("exit_code") is not None:
                info = {"exit_code": st["exit_code"], "oom_killed": False, "finished_at": rfc3339_nano()}
        if info is None:
            # the shim died without recording an exit: whatever it left is ended now
            await self._clear_stale(c)
            info = {"exit_code": 255, "oom_killed": False, "finished_at": rfc3339_nano()}
        log.info("container %s exited while the daemon was down (%s)", c.id[:12], info.get("exit_code"))
        await self._on_exit(c, info)

    # --- paths -----------------------------------------------------------------------
    def _dir(self, cid: str) -> Path:
        return self.config.containers_dir / cid

    def _shim_sock(self, cid: str) -> str:
        return str(self.config.shims_dir / cid / "shim.sock")

    def _exit_path(self, cid: str) -> str:
        return str(self._dir(cid) / "exit.json")

    def _log_path(self, cid: str) -> str:
        """The json-file log; "" when the log driver is none (nothing is kept)."""
        c = self._c.get(cid)
        if c is not None and (c.host_config.get("LogConfig") or {}).get("Type") == "none":
            return ""
        return str(self._dir(cid) / f"{cid}-json.log")

    def keeps_logs(self, ref: str) -> bool:
        return bool(self._log_path(self.get(ref).id))

    def check_logs_readable(self, ref: str) -> None:
        if not self.keeps_logs(ref):
            raise LogsNotReadable("configured logging driver does not support reading")

    # --- lookup ----------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        ref = ref.lstrip("/") if ref.startswith("/") else ref
        if ref in self._c:
            return self._c[ref]
        if ref in self._names:
            return self._c[self._names[ref]]
        if ref:
            hits = [c for cid, c in self._c.items() if cid.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise InvalidParameter(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def _save(self, c: Container) -> None:
        self.db.execute("UPDATE containers SET name=?, doc=? WHERE id=?", (c.name, c.doc(), c.id))

    def _event(self, c: Container, action: str, **extra: Any) -> None:
        if self.events is None:
            return
        attrs = {"image": c.config.get("Image", ""), "name": c.name, **(c.config.get("Labels") or {})}
        attrs.update({k: str(v) for k, v in extra.items()})
        self.events.publish("container", action, c.id, **attrs)

    def counts(self) -> tuple[int, int, int]:
        running = paused = stopped = 0
        for c in self._c.values():
            if c.hidden:
                continue
            st = c.state.get("Status")
            if st == "paused":
                paused += 1
            elif st in ("running", "restarting"):
                running += 1
            else:
                stopped += 1
        return running, paused, stopped

    def uses_image(self, image_id: str) -> list[str]:
        return [c.id for c in self._c.values() if c.image_id == image_id]

    def rootfs(self, ref: str) -> str:
        return self.get(ref).rootfs

    # --- create ----------------------------------------------------------------------
    async def create(self, name: str | None, body: dict[str, Any], hidden: bool = False,
                     warnings: list[str] | None = None) -> str:
        """Create a container; Docker's warnings about what it dropped are appended to
        `warnings` (the API's create answer carries them)."""
        # `run` starts the container a few ms from now: open the cgroup-attach window early
        # (see start), its grace period is then over by the time the shim moves the init
        cgroups.prime_attach()
        body = dict(body or {})
        hc = dict(body.pop("HostConfig", None) or {})
        net_cfg = body.pop("NetworkingConfig", None) or {}
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("No image was specified (config.Image is empty)")
        if name:
            name = validate(name)
        dropped = hostconfig.validate_create(hc, self.config.init_path)
        for warning in dropped:
            log.info("create %s: %s", name or image_ref, warning)
        if warnings is not None:
            warnings.extend(dropped)
        jsonlog.max_files((hc.get("LogConfig") or {}).get("Config") or {})   # refuses a bad max-file
        linked = self._check_references(hc)
        endpoints, mac = self._endpoints_config(body, hc, net_cfg)
        if self.images is None:
            raise NotFound(f"No such image: {image_ref}")
        image = await asyncio.to_thread(self.images.resolve, image_ref)
        img_cfg = image.config or {}
        config = specgen.merge_config(body, img_cfg)
        config["Image"] = image_ref
        config["MacAddress"] = mac   # inspect shows the main network's, as dockerd does
        hostconfig.check_volume_driver(hc, list(config.get("Volumes") or {}))
        if not config.get("Entrypoint") and not config.get("Cmd"):
            raise InvalidParameter("No command specified")
        cid = secrets.token_hex(32)
        async with self._create_lock:
            if name is None:
                name = random_name()
                while name in self._names:
                    name = random_name()
            if name in self._names:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{self._names[name]}". You have to remove (or rename) that container '
                               'to be able to reuse that name.')
            self._names[name] = cid  # reserved while we build it
        hc.pop("Links", None)   # kept by target ID in c.links
        hc.setdefault("NetworkMode", "default" if not hc.get("NetworkMode") else hc["NetworkMode"])
        hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
        config.setdefault("Hostname", "")
        if not config.get("Hostname"):
            config["Hostname"] = cid[:12] if hc.get("NetworkMode") != "host" else os.uname().nodename
        for k in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
            config[k] = bool(config.get(k))
        config.setdefault("Domainname", "")
        c = Container(id=cid, name=name, image_id=image.id, created=rfc3339_nano(), config=config,
                      host_config=hc, hidden=hidden, state=new_state(), links=linked)
        c.network_settings = {"Networks": {}, "Ports": {}, "_aliases": endpoints}
        cdir = self._dir(cid)
        snap = False
        try:
            cdir.mkdir(parents=True)
            c.lower_dirs = list(await asyncio.to_thread(self.images.lower_dirs, image))
            c.rootfs = await asyncio.to_thread(self.images.snapshots.prepare, cid, c.lower_dirs)
            snap = True
            if config.get("WorkingDir"):
                wd = os.path.join(c.rootfs, config["WorkingDir"].lstrip("/"))
                if not os.path.isdir(wd):
                    os.makedirs(wd, exist_ok=True)
            # fail early on a user that does not exist in the image, as Docker does at start
            specgen.resolve_user(c.rootfs, config.get("User") or "", hc.get("GroupAdd"))
            await self._prepare_mounts(c, img_cfg)
            await self._connect_extra_networks(c, endpoints)
            with self.db.transaction() as tx:
                tx.execute("INSERT INTO containers (id, name, image_id, created, hidden, doc) VALUES (?,?,?,?,?,?)",
                           (cid, name, c.image_id, c.created, int(hidden), c.doc()))
        except BaseException:
            self._names.pop(name, None)
            if self.networks is not None and hasattr(self.networks, "forget_container"):
                try:
                    await self.networks.forget_container(cid)
                except Exception:  # noqa: BLE001
                    log.exception("dropping the networks of failed create %s", cid[:12])
            if self.volumes is not None:
                try:
                    await asyncio.to_thread(self.volumes.release, cid, True)
                except Exception:  # noqa: BLE001
                    log.exception("releasing volumes of failed create %s", cid[:12])
            if snap:
                try:
                    await asyncio.to_thread(self.images.snapshots.remove, cid)
                except Exception:  # noqa: BLE001
                    log.exception("removing snapshot of failed create %s", cid[:12])
            shutil.rmtree(cdir, ignore_errors=True)
            raise
        self._c[cid] = c
        self._event(c, "create")
        return cid

    async def _connect_extra_networks(self, c: Container, endpoints: dict[str, Any]) -> None:
        """EndpointsConfig entries beyond the network mode's (API 1.44: `docker run --network a
        --network b`): connected as `network connect` does before a start, so the container
        joins them when it starts."""
        nets = self.networks
        if nets is None or not hasattr(nets, "endpoint_key"):
            return
        mode = c.host_config.get("NetworkMode") or "default"
        main = nets.endpoint_key(mode, endpoints)
        extra = [k for k in endpoints if k != main]
        if not extra:
            return
        if mode in ("host", "none") or mode.startswith("container:"):
            raise InvalidParameter(f"Container cannot be connected to network endpoints: {', '.join([mode, *extra])}")
        for key in extra:
            aliases, ipv4, ipv6, mac, link_local = epcheck.requested(endpoints[key] or {})
            await nets.connect(key, c.id, aliases=aliases, ipv4_address=ipv4, name=c.name, ipv6_address=ipv6,
                               mac_address=mac, link_local_ips=link_local)

    def _endpoints_config(self, body: dict[str, Any], hc: dict[str, Any],
                          net_cfg: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The create's EndpointsConfig checked as dockerd checks it (before anything is
        made), with the container-wide MacAddress of API < 1.44 clients moved to the network
        mode's entry; and the MAC address asked for on that network."""
        endpoints = {k: dict(v) if isinstance(v, dict) else v
                     for k, v in (net_cfg.get("EndpointsConfig") or {}).items()}
        nets = self.networks
        if nets is None or not hasattr(nets, "check_endpoints"):
            return endpoints, str(body.get("MacAddress") or "")
        mode = hc.get("NetworkMode") or "default"
        mac = str(body.get("MacAddress") or "")
        if mac:
            if mode in ("host", "none") or mode.startswith("container:"):
                raise InvalidParameter("conflicting options: mac-address and the network mode")
            key = nets.endpoint_key(mode, endpoints) if endpoints else mode
            if key is None:
                raise InvalidParameter("if a container-wide MAC address is supplied, HostConfig.NetworkMode must "
                                       "match the identity of a network in NetworkSettings.Networks")
            ep = endpoints[key] = dict(endpoints.get(key) or {})
            if ep.get("MacAddress") and ep["MacAddress"] != mac:
                raise InvalidParameter("the container-wide MAC address must match the endpoint-specific MAC "
                                       "address for the main network, or be left empty")
            ep["MacAddress"] = mac
        nets.check_endpoints(endpoints)
        return endpoints, str(nets.endpoint_for(mode, endpoints).get("MacAddress") or "")

    def _referenced(self, ref: str, prefix: str = "") -> Container:
        """A container a create names (PidMode, IpcMode, Links): unknown is a 400, as dockerd
        answers (a 404 would make the docker CLI pull the image)."""
        try:
            return self.get(ref)
        except NotFound as exc:
            raise InvalidParameter(prefix + str(exc)) from None

    def _check_references(self, hc: dict[str, Any]) -> list[links.Link]:
        """PidMode/IpcMode `container:X` stored with X's id, as dockerd does; Links'
        targets checked and returned."""
        for key in ("PidMode", "IpcMode"):
            ref = hostconfig.joined_container(hc.get(key))
            if ref:
                hc[key] = "container:" + self._referenced(ref).id
        return links.resolve(hc, lambda ref: self._referenced(ref, f"could not get container for {ref}: "))

    async def _prepare_mounts(self, c: Container, img_cfg: dict[str, Any]) -> None:
        hc = c.host_config
        image_volumes = list(((img_cfg.get("config") or {}).get("Volumes") or {}).keys())
        image_volumes += [v for v in (c.config.get("Volumes") or {}) if v not in image_volumes]
        if self.volumes is not None:
            mps = await asyncio.to_thread(self.volumes.prepare_mounts, c.id, hc.get("Binds") or [],
                                          hc.get("Mounts") or [], hc.get("Tmpfs") or {}, image_volumes,
                                          c.rootfs, hc.get("VolumesFrom"), lambda ref: self.get(ref).mounts)
            c.oci_mounts = [mp.oci for mp in mps]
            c.mounts = [mp.inspect for mp in mps]
            return
        for b in hc.get("Binds") or []:
            parts = b.split(":")
            if len(parts) < 2 or not parts[0].startswith("/"):
                raise InvalidParameter(f"invalid bind mount spec {b!r}: named volumes need the volume service")
            src, dst = parts[0], parts[1]
            mode = parts[2] if len(parts) > 2 else "rw"
            if not os.path.exists(src):
                os.makedirs(src, exist_ok=True)
            opts = ["rbind", "rprivate"] + (["ro"] if "ro" in mode.split(",") else [])
            c.oci_mounts.append({"destination": dst, "type": "bind", "source": src, "options": opts})
            c.mounts.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode,
                             "RW": "ro" not in mode.split(","), "Propagation": "rprivate"})

    # --- start -----------------------------------------------------------------------
    async def start(self, ref: str | None = None) -> None:
        """Start a container; without an argument, the daemon's service start-up (restore)."""
        if ref is None:
            await self._service_start()
            return
        c = self.get(ref)
        async with c.lock:
            st = c.state.get("Status")
            if st == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if st in ("running", "restarting") and c.monitor is not None:
                raise NotModified("container already started")
            c.manually_stopped = False
            await self._start_locked(c)

    async def _start_locked(self, c: Container) -> None:
        hc = c.host_config
        cfg = self.config
        sandbox = None
        spawned = False
        t0 = time.perf_counter()
        # the shim moves the init into its cgroups ~15-30 ms from now; the kernel's first
        # cgroup move after an idle spell waits for an RCU grace period: take that wait now
        cgroups.prime_attach()
        try:
            link_hosts, link_env = links.start_settings(c, self._c.get)
            joined, shm = self.sharing.joined(c)
            self.sharing.mount_shm(c)
            c.net_up = True
            sandbox = await self._network_up(c, link_hosts)
            t_net = time.perf_counter()
            files = dict(sandbox.files)
            if not files:
                files = self._write_net_files(c, sandbox.share_host)
            share_host = sandbox.share_host
            netns = sandbox.netns
            settings = sandbox.settings
            if settings:
                settings = dict(settings)
                settings["_aliases"] = c.network_settings.get("_aliases", {})
                c.network_settings = settings
            parent = stats.cgroup_parent(hc, cfg.cgroup_parent)
            config = c.config
            if link_env:   # the container's own variables win over the links'
                config = dict(config, Env=specgen.merge_env(link_env, config.get("Env")))
            caps = specgen.container_caps(hc)
            seccomp = hostconfig.custom_seccomp(hostconfig.parse_security_opts(hc.get("SecurityOpt")), caps)
            spec = specgen.generate(specgen.SpecInputs(
                id=c.id, rootfs=c.rootfs, config=config, host_config=hc, cgroup_parent=parent,
                hostname=c.config.get("Hostname") or c.id[:12], netns=netns, share_host_network=share_host,
                files=files, extra_mounts=c.oci_mounts, seccomp=seccomp or _seccomp_profile(caps),
                init_path=cfg.init_path, joined=joined, shm_source=shm))
            bundle = self._dir(c.id)
            tmp = bundle / "config.json.tmp"
            tmp.write_text(json.dumps(spec))
            os.replace(tmp, bundle / "config.json")
            try:
                os.unlink(self._exit_path(c.id))
            except FileNotFoundError:
                pass
            await self._clear_stale(c)
            log_path = self._log_path(c.id)
            log_opts = ((hc.get("LogConfig") or {}).get("Config") or {}) if log_path else {}
            scfg = ShimConfig(id=c.id, bundle=str(bundle), runtime_root=str(cfg.runtime_root),
                              socket=self._shim_sock(c.id), log_path=log_path or os.devnull,
                              exit_path=self._exit_path(c.id), tty=c.tty,
                              open_stdin=bool(c.config.get("OpenStdin")),
                              stdin_once=bool(c.config.get("StdinOnce")),
                              log_max_size=jsonlog.max_size(log_opts.get("max-size")), log_max_files=jsonlog.max_files(log_opts))
            t_spec = time.perf_counter()
            # the shim creates the container while the sandbox's interfaces are being made;
            # both are done before the process starts. A failed plumbing removes the netns,
            # which may fail the create too: its own error is the one to report
            ready, plumbing = await asyncio.gather(shim.spawn_shim(scfg), sandbox.plumbed(),
                                                   return_exceptions=True)
            spawned = not isinstance(ready, BaseException)
            for res in (plumbing, ready):
                if isinstance(res, shim.ShimError):
                    raise self._start_error(c, res)
                if isinstance(res, BaseException):
                    raise res
            t_shim = time.perf_counter()
            # attach streams asked for before start get connected before the process runs
            for opts, fut in c.attach_waiters:
                try:
                    conn = await shim.open_stream(scfg.socket, {"op": "attach", **opts})
                    if not fut.done():
                        fut.set_result(conn)
                    else:
                        conn[1].close()
                except Exception as exc:  # noqa: BLE001
                    if not fut.done():
                        fut.set_exception(exc)
            c.attach_waiters.clear()
            await shim.call(scfg.socket, {"op": "start"})
            log.debug("start %s: network %.1f ms, spec %.1f ms, shim+create (and plumbing) %.1f ms, start %.1f ms",
                      c.id[:12], 1000 * (t_net - t0), 1000 * (t_spec - t_net), 1000 * (t_shim - t_spec),
                      1000 * (time.perf_counter() - t_shim))
        except BaseException as exc:
            if spawned:  # created but not started: end the shim and the container's init
                await self._clear_stale(c)
            self.sharing.release_shm(c)
            await self._network_down(c)
            for _, fut in c.attach_waiters:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            c.attach_waiters.clear()
            if isinstance(exc, ExecFailed):
                c.state.update(ExitCode=exc.exit_code, Error=str(exc))
                self._save(c)
                raise
            if isinstance(exc, Exception):
                c.state.update(Error=str(exc), ExitCode=128)
                self._save(c)
            raise
        c.has_been_started = True
        c.state.update(Status="running", Running=True, Paused=False, Restarting=False, OOMKilled=False,
                       Dead=False, Pid=ready.get("pid", 0), ExitCode=0, Error="",
                       StartedAt=rfc3339_nano(), FinishedAt=c.state.get("FinishedAt", ZERO_TIME))
        self._save(c)
        c.monitor = asyncio.create_task(self._monitor(c))
        self._start_health(c)
        self._event(c, "start")

    async def _clear_stale(self, c: Container) -> None:
        """A daemon killed between a shim's create and start leaves a created container and
        its shim behind: end them before starting again."""
        sock = self._shim_sock(c.id)
        if os.path.exists(sock):
            try:
                await shim.call(sock, {"op": "kill", "signal": int(signal_mod.SIGKILL), "all": True}, timeout=5)
                await asyncio.wait_for(shim.wait_exit(sock), 10)
            except (shim.ShimError, OSError, TimeoutError):
                pass
        if (self.config.runtime_root / c.id).exists():
            from berth.runtime.runtime import Runtime

            def delete() -> None:
                try:
                    Runtime(root=str(self.config.runtime_root)).delete(c.id, force=True)
                except Exception:  # noqa: BLE001 - best effort; create reports what is left
                    log.warning("clearing stale runtime state of %s failed", c.id[:12], exc_info=True)
            await asyncio.to_thread(delete)

    def _start_health(self, c: Container) -> None:
        from berth.engine.health import run_health, test_argv
        if c.health is not None:
            c.health.cancel()
            c.health = None
        if test_argv(c.config.get("Healthcheck"), c.config.get("Shell")) is not None:
            c.health = asyncio.create_task(run_health(self, c))

    def _start_error(self, c: Container, exc: shim.ShimError) -> BerthError:
        prefix = "failed to create task for container: OCI runtime create failed: "
        argv0 = ((c.config.get("Entrypoint") or []) + (c.config.get("Cmd") or []) or [""])[0]
        return exec_failed(exc, prefix, argv0) or BerthError(f"{prefix}{exc}")

    async def _network_up(self, c: Container, link_hosts: list[str] | None = None) -> Sandbox:
        """The container's sandbox; its interfaces may still be in the making (see
        `Sandbox.plumbed`), except with `net.*` sysctls, which the runtime applies during
        create and may name the container's interfaces."""
        mode = c.host_config.get("NetworkMode") or "default"
        if self.networks is not None and hasattr(self.networks, "setup_container"):
            aliases, ipv4, ipv6, mac, link_local = epcheck.requested(
                self.networks.endpoint_for(mode, c.network_settings.get("_aliases") or {}))
            hc = c.host_config
            return await self.networks.setup_container(
                c.id, mode, c.config.get("Hostname") or c.id[:12], c.config.get("Domainname") or "",
                aliases, hc.get("PortBindings") or {}, hc.get("Dns") or [], hc.get("DnsSearch") or [],
                (hc.get("ExtraHosts") or []) + (link_hosts or []), name=c.name, exposed_ports=c.config.get("ExposedPorts") or {},
                publish_all=bool(hc.get("PublishAllPorts")), dns_options=hc.get("DnsOptions") or [],
                ipv4_address=ipv4, ipv6_address=ipv6, mac_address=mac, link_local_ips=link_local,
                background=not any(k.startswith("net.") for k in hc.get("Sysctls") or {}))
        if mode == "host":
            return Sandbox(None, True, {}, {"Networks": {"host": {}}})
        return Sandbox(None, False, {}, {"Networks": {"none" if mode == "none" else "bridge": {}},
                                          "Ports": {}})

    def reveal(self, ref: str, drop_labels: tuple[str, ...] = ()) -> None:
        """A hidden container (a build's RUN step kept with rm=0) becomes an ordinary one, as
        docker's are: `ps -a` lists it and daemon start-up no longer removes it."""
        c = self.get(ref)
        c.hidden = False
        for label in drop_labels:
            (c.config.get("Labels") or {}).pop(label, None)
        self.db.execute("UPDATE containers SET hidden=0 WHERE id=?", (c.id,))
        self._save(c)

    def network_changed(self, ref: str) -> None:
        """After a live `network connect`/`disconnect`: inspect and ps show the container's
        networks as they are now, not as they were when it started."""
        c = self.get(ref)
        if self._refresh_network_settings(c):
            self._save(c)

    def _refresh_network_settings(self, c: Container) -> bool:
        """NetworkSettings as the network service has them now (True if it has a sandbox)."""
        if self.networks is None or not c.net_up or not hasattr(self.networks, "settings"):
            return False
        settings = dict(self.networks.settings(c.id))
        settings["_aliases"] = c.network_settings.get("_aliases", {})
        c.network_settings = settings
        return True

    async def _network_down(self, c: Container, forget: bool = False) -> None:
        """Tear the sandbox down (once per start); `forget` also drops the container's
        network attachments (it is being removed)."""
        if self.networks is None:
            return
        name = "forget_container" if forget and hasattr(self.networks, "forget_container") else \
            "teardown_container"
        if name == "teardown_container" and not c.net_up:
            return
        fn = getattr(self.networks, name, None)
        if fn is None:
            return
        try:
            res = fn(c.id)
            if asyncio.iscoroutine(res):
                await res
            c.net_up = False
            c.network_settings = containerjson.released_network_settings(c.network_settings)
        except Exception:  # noqa: BLE001
            log.exception("network teardown of %s failed", c.id[:12])

    def _write_net_files(self, c: Container, share_host: bool) -> dict[str, str]:
        d = self._dir(c.id)
        hostname = c.config.get("Hostname") or c.id[:12]
        (d / "hostname").write_text(hostname + "\n")
        if share_host:
            try:
                hosts = Path("/etc/hosts").read_text()
            except OSError:
                hosts = "127.0.0.1\tlocalhost\n"
        else:
            hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                     "ff02::2\tip6-allrouters\n")
        for eh in c.host_config.get("ExtraHosts") or []:
            h, _, ip = eh.partition(":")
            hosts += f"{ip}\t{h}\n"
        (d / "hosts").write_text(hosts)
        (d / "resolv.conf").write_text(_resolv_conf(c.host_config, share_host))
        return {"/etc/resolv.conf": str(d / "resolv.conf"), "/etc/hostname": str(d / "hostname"),
                "/etc/hosts": str(d / "hosts")}

    # --- exit handling ---------------------------------------------------------------
    async def _monitor(self, c: Container) -> None:
        sock = self._shim_sock(c.id)
        try:
            try:
                info = await shim.wait_exit(sock)
            except (shim.ShimError, OSError):
                info = None
                for _ in range(50):
                    info = shim.read_exit(self._exit_path(c.id))
                    if info is not None:
                        break
                    await asyncio.sleep(0.1)
                info = info or {"exit_code": 255, "oom_killed": False, "finished_at": rfc3339_nano()}
        except asyncio.CancelledError:
            return
        c.monitor = None
        await self._on_exit(c, info)

    async def _on_exit(self, c: Container, info: dict[str, Any]) -> None:
        code = int(info.get("exit_code", 255))
        oom = bool(info.get("oom_killed"))
        if oom and code == 0:
            code = 137
        c.state.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                       ExitCode=code, OOMKilled=oom, FinishedAt=info.get("finished_at") or rfc3339_nano())
        if c.health is not None:
            c.health.cancel()
            c.health = None
        if info.get("started_at") and c.state.get("StartedAt", ZERO_TIME) == ZERO_TIME:
            c.state["StartedAt"] = info["started_at"]
        self.sharing.release_shm(c)
        restart = self._should_restart(c, code)
        auto_remove = not restart and bool(c.host_config.get("AutoRemove")) and c.removal is None
        if not auto_remove:  # auto-remove tears the sandbox down beside the snapshot removal
            t0 = time.perf_counter()
            await self._network_down(c)
            log.debug("exit %s: network teardown %.1f ms", c.id[:12], 1000 * (time.perf_counter() - t0))
        if c.id not in self._c:
            return
        if oom:
            self._event(c, "oom")
        self._event(c, "die", exitCode=code)
        self.execs.container_exited(c.id)
        if restart:
            c.state.update(Status="restarting", Restarting=True)
        self._save(c)
        for fut in c.exit_waiters:
            if not fut.done():
                fut.set_result({"StatusCode": code, "Error": None})
        c.exit_waiters.clear()
        if restart:
            t = asyncio.create_task(self._restart_later(c))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        elif auto_remove and c.removal is None:
            try:
                await self.remove(c.id, force=True, volumes=True)
            except NotFound:
                pass
            except Exception:  # noqa: BLE001
                log.exception("auto-removing %s failed", c.id[:12])

    def _should_restart(self, c: Container, code: int) -> bool:
        if self._closing or c.manually_stopped:
            return False
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and code != 0:
            mx = int(rp.get("MaximumRetryCount") or 0)
            return mx == 0 or c.restart_count < mx
        return False

    async def _restart_later(self, c: Container) -> None:
        delay = min(0.1 * (2 ** min(c.restart_count, 10)), 60.0)
        await asyncio.sleep(delay)
        async with c.lock:
            if c.id not in self._c or c.state.get("Status") != "restarting" or c.manually_stopped:
                if c.state.get("Status") == "restarting":
                    c.state.update(Status="exited", Restarting=False)
                    self._save(c)
                return
            c.restart_count += 1
            try:
                await self._start_locked(c)
                self._event(c, "restart")
            except Exception as exc:  # noqa: BLE001
                log.warning("restarting %s failed: %s", c.id[:12], exc)
                c.state.update(Status="exited", Restarting=False, Error=str(exc))
                self._save(c)

    def _exit_future(self, c: Container) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        return fut

    # --- stop / kill / restart / wait --------------------------------------------------
    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        if not c.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signum in (signal_mod.SIGKILL, signal_mod.SIGTERM, signal_mod.SIGINT):
            c.manually_stopped = c.manually_stopped or False
        try:
            await shim.call(self._shim_sock(c.id), {"op": "kill", "signal": signum})
        except shim.ShimError as exc:
            if exc.kind in ("NotRunning", "ShimGone"):
                raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running") from None
            raise
        self._event(c, "kill", signal=signum)

    async def stop(self, ref: str | None = None, timeout: int | None = None, sig: str | None = None) -> None:
        """Stop a container; without an argument, the daemon's service shut-down."""
        if ref is None:
            await self._service_stop()
            return
        c = self.get(ref)
        if c.state.get("Status") == "restarting":
            c.manually_stopped = True
            c.state.update(Status="exited", Restarting=False)
            self._save(c)
            return
        if not c.running:
            raise NotModified("container already stopped")
        c.manually_stopped = True
        self._save(c)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        signum = parse_signal(sig or c.config.get("StopSignal"), signal_mod.SIGTERM)
        fut = self._exit_future(c)
        if c.state.get("Status") == "paused":
            await self.unpause(c.id)
        try:
            await shim.call(self._shim_sock(c.id), {"op": "kill", "signal": signum})
        except shim.ShimError:
            pass
        if timeout < 0:
            await fut
        else:
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                try:
                    await shim.call(self._shim_sock(c.id), {"op": "kill", "signal": int(signal_mod.SIGKILL),
                                                            "all": True})
                except shim.ShimError:
                    pass
                await fut
        self._event(c, "stop")

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.running:
            await self.stop(c.id, timeout, sig)
        async with c.lock:
            c.manually_stopped = False
            if not c.running:
                await self._start_locked(c)
        self._event(c, "restart")

    async def wait(self, ref: str, condition: str = "not-running") -> dict[str, Any]:
        c = self.get(ref)
        condition = condition or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        if condition == "removed":
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            c.removed_waiters.append(fut)
            code = await fut
            return {"StatusCode": code, "Error": None}
        if condition == "not-running" and not c.running and c.state.get("Status") != "restarting":
            return {"StatusCode": c.state.get("ExitCode", 0), "Error": None}
        return await self._exit_future(c)

    def wait_future(self, ref: str, condition: str = "not-running") -> asyncio.Task[dict[str, Any]]:
        """Register a waiter now (before start) and return a task resolving to the result."""
        c = self.get(ref)
        condition = condition or "not-running"
        if condition == "removed":
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            c.removed_waiters.append(fut)

            async def removed() -> dict[str, Any]:
                return {"StatusCode": await fut, "Error": None}
            return asyncio.create_task(removed())
        if condition == "not-running" and not c.running and c.state.get("Status") != "restarting":
            code = c.state.get("ExitCode", 0)

            async def done() -> dict[str, Any]:
                return {"StatusCode": code, "Error": None}
            return asyncio.create_task(done())
        f = self._exit_future(c)

        async def ex() -> dict[str, Any]:
            return await f
        return asyncio.create_task(ex())

    # --- pause -----------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.get("Status") == "paused":
            raise Conflict(f"Container {c.id} is already paused")
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        await shim.call(self._shim_sock(c.id), {"op": "pause"})
        c.state.update(Status="paused", Paused=True)
        self._save(c)
        self._event(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.get("Status") != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        await shim.call(self._shim_sock(c.id), {"op": "resume"})
        c.state.update(Status="running", Paused=False)
        self._save(c)
        self._event(c, "unpause")

    # --- remove ----------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if c.removal is not None:
            if force:  # a forced remove waits for the one in progress (auto-remove, another rm -f)
                await asyncio.shield(c.removal)
                return
            raise Conflict(f"removal of container {c.id} is already in progress")
        if c.running and not force:
            if c.state.get("Status") == "paused":
                raise Conflict(f"You cannot remove a paused container {c.id}. Unpause and then stop the "
                               "container before attempting removal or force remove")
            raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                           "attempting removal or force remove")
        c.removal = asyncio.get_running_loop().create_future()
        try:
            await self._remove(c, volumes)
        except BaseException as exc:
            fut, c.removal = c.removal, None
            if isinstance(exc, Exception):
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            else:
                fut.cancel()
            raise
        c.removal.set_result(None)

    async def _remove(self, c: Container, volumes: bool) -> None:
        if c.running:
            c.manually_stopped = True
            fut = self._exit_future(c)
            if c.state.get("Status") == "paused":
                try:
                    await shim.call(self._shim_sock(c.id), {"op": "resume"})
                except shim.ShimError:
                    pass
            try:
                await shim.call(self._shim_sock(c.id), {"op": "kill", "signal": int(signal_mod.SIGKILL),
                                                        "all": True})
            except shim.ShimError:
                pass
            try:
                await asyncio.wait_for(fut, 30)
            except TimeoutError:
                log.warning("container %s did not exit after SIGKILL", c.id[:12])
        c.manually_stopped = True
        if c.id not in self._c:
            return
        prev = c.state.get("Status")
        c.state["Status"] = "removing"
        t0 = time.perf_counter()

        def storage() -> None:
            self.sharing.release_shm(c)
            if self.volumes is not None:
                self.volumes.release(c.id, volumes)
            if self.images is not None and c.rootfs:
                self.images.snapshots.remove(c.id)

        # the sandbox, the snapshot and the files that start makes again go in parallel
        # (independent, each takes a while: an unlink costs ~0.3 ms on the data root's ext4)
        results = await asyncio.gather(self._network_down(c, forget=True), asyncio.to_thread(storage),
                                       asyncio.to_thread(self._remove_start_files, c.id),
                                       return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                c.state["Status"] = prev
                raise res
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM containers WHERE id=?", (c.id,))
        self._c.pop(c.id, None)
        if self._names.get(c.name) == c.id:
            del self._names[c.name]
        self.execs.forget(c.id)
        shutil.rmtree(self._dir(c.id), ignore_errors=True)   # the log and anything else left
        log.debug("remove %s: %.1f ms", c.id[:12], 1000 * (time.perf_counter() - t0))
        self._event(c, "destroy")
        code = c.state.get("ExitCode", 0)
        for fut in c.removed_waiters:
            if not fut.done():
                fut.set_result(code)
        c.removed_waiters.clear()

    def _remove_start_files(self, cid: str) -> None:
        """The container's files that `start` writes again (a failed removal loses none of
        its state: the log stays until the directory goes), and the shim's directory."""
        d = self._dir(cid)
        for name in START_FILES:
            try:
                os.unlink(d / name)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.config.shims_dir / cid, ignore_errors=True)

    async def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        deleted = []
        for c in list(self._c.values()):
            if not containerjson.prunable(c, filters):
                continue
            await self.remove(c.id)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}

    async def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new = validate(new_name)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        async with self._create_lock:
            if new in self._names:
                raise Conflict(f'Conflict. The container name "/{new}" is already in use by container '
                               f'"{self._names[new]}". You have to remove (or rename) that container to be '
                               'able to reuse that name.')
            old = c.name
            if self.networks is not None:   # other containers resolve the new name at once, as dockerd's
                await self.networks.rename_container(c.id, new)
            c.name = new
            self._names.pop(old, None)
            self._names[new] = c.id
            self._refresh_network_settings(c)   # DNSNames carry the name
            self._save(c)   # its own links are stored with its name
            for linker in self._c.values():   # links to it hold its id: only the name they show changes
                if links.renamed(linker.links, c.id, new):
                    self._save(linker)
        self._event(c, "rename", oldName="/" + old)

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """`docker update`: restart policy and resource limits (applied live when running)."""
        c = self.get(ref)
        keys = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota",
                "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "RestartPolicy")
        changes = {k: body[k] for k in keys if body.get(k) not in (None, "")}
        if not changes:
            return []
        merged = {**c.host_config, **changes}
        if "NanoCpus" in changes:
            merged.pop("CpuQuota", None)
            merged.pop("CpuPeriod", None)
        if merged.get("AutoRemove") and "RestartPolicy" in changes and \
                (changes["RestartPolicy"].get("Name") or "no") != "no":
            raise InvalidParameter("Cannot update restart policy for a container with AutoRemove enabled")
        hostconfig.validate_host_config({**merged, "AutoRemove": False})
        if c.running and any(k != "RestartPolicy" for k in changes):
            from berth.runtime import spec as rspec
            from berth.runtime.runtime import Runtime
            res = specgen.resources(merged)
            res.pop("devices", None)
            await asyncio.to_thread(Runtime(root=str(self.config.runtime_root)).update, c.id,
                                    rspec.Resources.from_dict(res))
        c.host_config = merged
        self._save(c)
        self._event(c, "update")
        return []

    # --- filesystem: docker diff, sizes, docker cp, export (berth.engine.containerfs) -----
    def _upper(self, c: Container) -> str | None:
        if self.images is None or not c.rootfs:
            return None
        try:
            return self.images.snapshots.upper(c.id)
        except Exception:  # noqa: BLE001
            return None

    def changes(self, ref: str) -> list[dict[str, Any]]:
        c = self.get(ref)
        return containerfs.changes(self._upper(c), c.lower_dirs)

    def sizes(self, ref: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): the writable layer's bytes, and those plus the image's (its
        layers'), as dockerd's GetContainerLayerSize."""
        c = self.get(ref)
        rw = containerfs.size(self._upper(c))
        image_size = 0
        if self.images is not None and c.image_id:
            try:
                image_size = int(self.images.get(c.image_id).size)
            except Exception:  # noqa: BLE001 - an image removed under a container counts 0
                image_size = 0
        return rw, rw + image_size

    async def archive(self, ref: str, path: str, want_tar: bool) -> tuple[dict[str, Any], Any]:
        """(Docker's path stat, async iterator of tar bytes or None)."""
        containerfs.require_path(path)
        return await containerfs.archive(containerfs.root(self.get(ref)), path, want_tar, ref)

    async def extract(self, ref: str, path: str, body: AsyncIterator[bytes]) -> None:
        """Extract a tar (an async iterator of bytes) into the directory `path`."""
        containerfs.require_path(path)
        c = self.get(ref)
        if c.host_config.get("ReadonlyRootfs") and c.running:
            raise Conflict("container rootfs is marked read-only")
        await containerfs.extract(containerfs.root(c), path, body, ref)
        self._event(c, "extract-to-dir")

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        c = self.get(ref)
        async with aclosing(await containerfs.export(containerfs.rootfs(c))) as chunks:
            async for data in chunks:
                yield data
        self._event(c, "export")

    # --- inspect / list (berth.engine.containerjson) ---------------------------------
    def inspect(self, ref: str) -> dict[str, Any]:
        c = self.get(ref)
        return containerjson.inspect(c, self._dir(c.id), self._log_path(c.id), self.execs.ids(c.id))

    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None,
             limit: int = -1, hidden: bool = False) -> list[dict[str, Any]]:
        pf = containerjson.fold_ps_filters(filters or {}, lambda ref: self.get(ref).id)
        out = []
        before = pf.before
        for c in sorted(self._c.values(), key=lambda c: c.created, reverse=True):
            if before:  # newest first: skip down to the `before` container, then list
                before = "" if c.id == before else before
                continue
            if c.id == pf.since:
                break
            if (hidden or not c.hidden) and containerjson.listed(c, all or (limit or 0) > 0, pf, self._image_id):
                out.append(containerjson.summary(c))
                if limit and 0 < limit == len(out):
                    break
        return out

    def _image_id(self, ref: str) -> str | None:
        if self.images is None:
            return None
        try:
            return str(self.images.resolve(ref).id)
        except Exception:  # noqa: BLE001 - an unknown image is no container's ancestor
            return None

    # --- logs --------------------------------------------------------------------------
    async def logs(self, ref: str, stdout: bool = True, stderr: bool = True, follow: bool = False,
                   tail: str = "all", timestamps: bool = False, since: float | None = None,
                   until: float | None = None, alive: Any = None) -> AsyncIterator[bytes]:
        """Yield log output already framed as the Engine API sends it (`berth.engine.jsonlog`)."""
        c = self.get(ref)
        self.check_logs_readable(c.id)

        def still_writing() -> bool:
            cur = self._c.get(c.id)
            return cur is not None and (cur.running or cur.state.get("Status") == "restarting")

        async for chunk in jsonlog.read(self._log_path(c.id), tty=c.tty, stdout=stdout, stderr=stderr,
                                        follow=follow, tail=tail, timestamps=timestamps, since=since,
                                        until=until, still_writing=still_writing, alive=alive):
            yield chunk

    # --- attach ------------------------------------------------------------------------
    async def attach(self, ref: str, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A raw stream to the container's stdio (frames unless tty). Before start, the
        connection is made at start time, before the process runs. None if it exited."""
        c = self.get(ref)
        opts = {"stdin": stdin and bool(c.config.get("OpenStdin")), "stdout": stdout, "stderr": stderr}
        if c.running:
            r, w, _ = await shim.open_stream(self._shim_sock(c.id), {"op": "attach", **opts})
            return r, w
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.attach_waiters.append((opts, fut))
        r, w, _ = await fut
        return r, w

    async def resize(self, ref: str, height: int, width: int, exec_id: str | None = None) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        msg: dict[str, Any] = {"op": "resize", "height": height, "width": width}
        if exec_id:
            msg["exec_id"] = exec_id
        await shim.call(self._shim_sock(c.id), msg)

    # --- exec (berth.engine.execs) ---------------------------------------------------
    def exec_create(self, ref: str, body: dict[str, Any]) -> str:
        return self.execs.create(self.get(ref), body)

    def get_exec(self, eid: str) -> Exec:
        return self.execs.get(eid)

    def exec_check(self, eid: str) -> None:
        """Raise what exec_start would for an exec that cannot start (before any hijack)."""
        self.execs.check(eid)

    async def exec_start(self, eid: str, detach: bool = False, tty: bool | None = None,
                         console_size: list[int] | None = None,
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        return await self.execs.start(eid, detach, tty, console_size)

    async def exec_finished(self, eid: str) -> None:
        """Called when an attached exec stream ended: learn the exit code."""
        await self.execs.refresh(eid)

    async def exec_inspect(self, eid: str) -> dict[str, Any]:
        return await self.execs.inspect(eid)

    # --- top / stats (berth.engine.stats) ---------------------------------------------
    async def top(self, ref: str, ps_args: str = "-ef") -> dict[str, Any]:
        return await stats.top(self.get(ref), self.config.cgroup_parent, ps_args)

    def stats(self, ref: str) -> dict[str, Any]:
        return stats.stats(self.get(ref), self.config.cgroup_parent)

def _resolv_conf(hc: dict[str, Any], share_host: bool) -> str:
    try:
        host = Path("/etc/resolv.conf").read_text()
    except OSError:
        host = ""
    if share_host and not (hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions")):
        return host
    servers = [ln.split()[1] for ln in host.splitlines() if ln.startswith("nameserver") and len(ln.split()) > 1]
    search = next((ln.split()[1:] for ln in host.splitlines() if ln.startswith("search")), [])
    options = next((ln.split()[1:] for ln in host.splitlines() if ln.startswith("options")), [])
    if not share_host:
        servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
        if not servers:
            servers = ["8.8.8.8", "8.8.4.4"]
    servers = hc.get("Dns") or servers
    search = hc.get("DnsSearch") or search
    options = hc.get("DnsOptions") or options
    out = "".join(f"nameserver {s}\n" for s in servers)
    if search:
        out += "search " + " ".join(search) + "\n"
    if options:
        out += "options " + " ".join(options) + "\n"
    return out


_SECCOMP: dict[tuple[str, ...], Any] = {}


def _seccomp_profile(caps: list[str] | None = None) -> dict[str, Any] | None:
    """Docker's default seccomp profile (for these capabilities) from the runtime."""
    key = tuple(sorted(caps or []))
    if key not in _SECCOMP:
        prof = None
        try:
            from berth.runtime import seccomp as sc
            prof = sc.docker_default(list(caps) if caps else None)
            if prof is not None and hasattr(prof, "to_dict"):
                prof = prof.to_dict()
        except Exception:  # noqa: BLE001 - no seccomp support in the runtime
            log.warning("no default seccomp profile available", exc_info=True)
            prof = None
        _SECCOMP[key] = prof
    return _SECCOMP[key]
