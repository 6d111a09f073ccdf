"""berthd: wires the engine services together and serves the Engine API.

`Daemon` owns the configuration, the database and one instance of every service. Services
written by other areas are constructed if their module is importable, so the daemon runs
(and answers /_ping) while parts of the platform are still being built.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from berth.config import DaemonConfig
from berth.engine.db import Database
from berth.engine.events import EventBus

log = logging.getLogger("berth.daemon")


def _optional(module: str, cls: str) -> Any:
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        log.warning("%s.%s unavailable: %s", module, cls, exc)
        return None


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.started_at = time.time()
        config.ensure_dirs()
        self.db = Database(config.db_path)
        self.events = EventBus()
        self.images: Any = None
        self.networks: Any = None
        self.volumes: Any = None
        self.containers: Any = None
        self.registry: Any = None
        self.builder: Any = None
        self._construct()

    def _construct(self) -> None:
        cfg, db = self.config, self.db
        for attr, mod, cls in (("images", "berth.engine.images", "ImageService"),
                               ("networks", "berth.engine.networks", "NetworkService"),
                               ("volumes", "berth.engine.volumes", "VolumeService")):
            klass = _optional(mod, cls)
            if klass is not None:
                try:
                    setattr(self, attr, klass(cfg, db))
                except Exception:  # noqa: BLE001 - a broken peer service must not stop the daemon
                    log.exception("constructing %s failed", cls)
        # events reach the other services if they accept them
        for svc in (self.images, self.networks, self.volumes):
            if svc is not None and hasattr(svc, "events") and getattr(svc, "events", None) is None:
                svc.events = self.events
        from berth.engine.containers import ContainerService
        self.containers = ContainerService(cfg, db, self.images, self.networks, self.volumes,
                                           events=self.events)
        if self.images is not None:
            try:
                self.images.in_use = self.containers.uses_image
            except AttributeError:
                pass
        klass = _optional("berth.engine.registry", "RegistryService")
        if klass is not None and self.images is not None:
            try:
                self.registry = klass(cfg, db, self.images)
            except Exception:  # noqa: BLE001
                log.exception("constructing RegistryService failed")
        klass = _optional("berth.engine.builds", "BuildService")
        if klass is not None and self.images is not None:
            try:
                self.builder = klass(cfg, self.images, self.containers)
            except Exception:  # noqa: BLE001
                log.exception("constructing BuildService failed")

    def services(self) -> list[Any]:
        return [s for s in (self.images, self.networks, self.volumes, self.containers,
                            self.registry, self.builder) if s is not None]

    async def start(self) -> None:
        self.events.bind(asyncio.get_running_loop())
        for svc in self.services():
            fn = getattr(svc, "start", None)
            if fn is not None and asyncio.iscoroutinefunction(fn):
                try:
                    await fn()
                except Exception:  # noqa: BLE001
                    log.exception("starting %s failed", type(svc).__name__)
                    if svc is self.containers:
                        raise

    async def stop(self) -> None:
        for svc in reversed(self.services()):
            fn = getattr(svc, "stop", None)
            if fn is not None and asyncio.iscoroutinefunction(fn):
                try:
                    await fn()
                except Exception:  # noqa: BLE001
                    log.exception("stopping %s failed", type(svc).__name__)
        self.db.close()


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="berthd", description="berth daemon (Docker Engine API)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--exec-root", default=None)
    p.add_argument("-H", "--host", action="append", default=[])
    p.add_argument("--bridge", default=None)
    p.add_argument("--bridge-subnet", default=None)
    p.add_argument("--firewall-prefix", default=None)
    p.add_argument("--cgroup-parent", default=None)
    p.add_argument("--registry-mirror", action="append", default=[])
    p.add_argument("--insecure-registry", action="append", default=[])
    p.add_argument("--hub-endpoint", default=None,
                   help="where docker.io requests go (a registry URL); default: Docker Hub")
    p.add_argument("--init-path", default=None,
                   help="the init binary for --init (default /usr/bin/tini-static, else docker-init on PATH)")
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("--config-file", default=None,
                   help=f"daemon settings in JSON (default {DEFAULT_CONFIG_FILE} when it exists; '' for none)")
    p.add_argument("-p", "--pidfile", default=None,
                   help="where berthd writes its pid (default EXEC_ROOT/berthd.pid)")
    a = p.parse_args(argv)
    load_config_file(a)
    cfg = DaemonConfig()
    if a.data_root:
        cfg.data_root = Path(a.data_root)
    if a.exec_root:
        cfg.exec_root = Path(a.exec_root)
    if a.host:
        cfg.host = a.host[0]
    elif a.exec_root:
        cfg.host = f"unix://{cfg.exec_root / 'berth.sock'}"
    for name in ("bridge", "bridge_subnet", "firewall_prefix", "cgroup_parent", "init_path"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    cfg.registry_mirrors = a.registry_mirror
    if a.hub_endpoint:
        cfg.hub_endpoint = a.hub_endpoint
    cfg.insecure_registries = cfg.insecure_registries + a.insecure_registry
    cfg.debug = a.debug
    cfg._extra_hosts = a.host[1:]  # type: ignore[attr-defined]
    cfg._pidfile = a.pidfile or str(cfg.exec_root / "berthd.pid")  # type: ignore[attr-defined]
    return cfg


DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json"
# daemon.json keys (Docker's spelling where Docker has the setting) -> argparse dest
_FILE_KEYS = {
    "data-root": "data_root", "exec-root": "exec_root", "hosts": "host", "bridge": "bridge",
    "bridge-subnet": "bridge_subnet", "firewall-prefix": "firewall_prefix",
    "cgroup-parent": "cgroup_parent", "registry-mirrors": "registry_mirror",
    "insecure-registries": "insecure_registry", "hub-endpoint": "hub_endpoint",
    "debug": "debug", "pidfile": "pidfile", "init-path": "init_path",
}


def load_config_file(a: argparse.Namespace) -> None:
    """Fill settings the command line left unset from daemon.json (flags win, as the file
    is the machine's default and a flag the operator's choice for this start)."""
    path = a.config_file
    if path == "":
        return
    explicit = path is not None
    path = path or DEFAULT_CONFIG_FILE
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        if explicit:
            raise SystemExit(f"berthd: config file {path} does not exist") from None
        return
    except (OSError, ValueError) as exc:
        raise SystemExit(f"berthd: cannot read config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"berthd: config file {path} must hold a JSON object")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise SystemExit(f"berthd: config file {path}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(_FILE_KEYS))})")
    for key, dest in _FILE_KEYS.items():
        if key not in data:
            continue
        value, current = data[key], getattr(a, dest)
        if isinstance(current, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SystemExit(f"berthd: config file {path}: {key} must be a list of strings")
            if not current:
                setattr(a, dest, list(value))
        elif dest == "debug":
            if not isinstance(value, bool):
                raise SystemExit(f"berthd: config file {path}: debug must be true or false")
            a.debug = a.debug or value
        else:
            if not isinstance(value, str):
                raise SystemExit(f"berthd: config file {path}: {key} must be a string")
            if current is None:
                setattr(a, dest, value)


async def serve(cfg: DaemonConfig) -> None:
    from aiohttp import web

    from berth.api.app import build_app

    daemon = Daemon(cfg)
    await daemon.start()
    app = build_app(daemon)
    # long-lived streams (events, logs -f, attach) must not hold a shutdown for a minute
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    sites: list[web.BaseSite] = []
    for host in [cfg.host, *getattr(cfg, "_extra_hosts", [])]:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            sites.append(web.UnixSite(runner, path))
        elif host.startswith(("tcp://", "http://")):
            hp = host.split("://", 1)[1]
            h, _, port = hp.rpartition(":")
            sites.append(web.TCPSite(runner, h or "127.0.0.1", int(port or 2375)))
        else:
            raise SystemExit(f"berthd: unsupported host {host!r} (use unix:// or tcp://)")
    for s in sites:
        await s.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_pid = os.getpid()

    def on_signal(signum: int, frame: Any) -> None:
        # Not loop.add_signal_handler: its wakeup fd is shared with children that libraries
        # fork (pyroute2's netns helper), so a SIGTERM sent to such a child would stop us.
        if os.getpid() == main_pid:
            loop.call_soon_threadsafe(stop.set)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    pidfile = Path(getattr(cfg, "_pidfile", cfg.exec_root / "berthd.pid"))
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{main_pid}\n")
    log.info("berthd listening on %s (data root %s)", cfg.host, cfg.data_root)
    daemon.events.publish("daemon", "start", "berthd")
    try:
        await stop.wait()
    finally:
        # a library may fork the daemon (pyroute2 does for netns work); a child unwinding
        # through here must not close the daemon's listeners or unlink its socket
        if os.getpid() == main_pid:
            exc = sys.exc_info()[1]
            log.info("berthd shutting down (containers keep running: live restore)%s",
                     f": {type(exc).__name__} {exc}" if exc is not None else "", exc_info=exc is not None)
            await runner.cleanup()
            await daemon.stop()
            try:
                if pidfile.read_text().strip() == str(main_pid):
                    pidfile.unlink()
            except OSError:
                pass
            if cfg.host.startswith("unix://"):
                try:
                    os.unlink(cfg.socket_path)
                except FileNotFoundError:
                    pass


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if cfg.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
