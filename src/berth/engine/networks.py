"""Engine service: networks (bridge driver, IPAM in the database, published ports, firewall,
embedded DNS, per-container hosts/resolv.conf/hostname).

State: tables `networks` (one row per network, the built-in bridge/host/none included;
`subnet`/`gateway` empty on an IPv6-only bridge network, `subnet6`/`gateway6` set when
IPv6 is enabled), `net_sandboxes` (one per container with live plumbing), `net_endpoints`
(one per container x network with its addresses, IPv4 and/or IPv6 as the network has,
and a veth), `net_attachments` (the networks a container is
configured to join beyond its network mode; they outlive restarts) and `net_meta` (the
daemon's ULA global id). Kernel work runs in threads; one asyncio lock serialises changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.config import DaemonConfig
from berth.errors import BerthError, Conflict, Forbidden, InvalidParameter, NotFound
from berth.network import endpoint as epcheck
from berth.network import files as netfiles
from berth.network import firewall, ipam
from berth.network.dns import DNSServer, Resolver, close_quietly
from berth.network.ports import (
    PortMapping,
    PortReservations,
    check_publishable,
    expand_bindings,
    only_ipv6,
    settings_ports,
)
from berth.network.proxy import LoopbackProxy
from berth.network.sandbox import Sandbox

log = logging.getLogger("berth.engine.networks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  driver TEXT NOT NULL,
  bridge TEXT NOT NULL DEFAULT '',
  subnet TEXT NOT NULL DEFAULT '',
  gateway TEXT NOT NULL DEFAULT '',
  internal INTEGER NOT NULL DEFAULT 0,
  attachable INTEGER NOT NULL DEFAULT 0,
  builtin INTEGER NOT NULL DEFAULT 0,
  labels TEXT NOT NULL DEFAULT '{}',
  options TEXT NOT NULL DEFAULT '{}',
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS net_sandboxes (
  container_id TEXT PRIMARY KEY,
  sandbox_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL,
  netns TEXT,
  hostname TEXT NOT NULL DEFAULT '',
  domainname TEXT NOT NULL DEFAULT '',
  ports TEXT NOT NULL DEFAULT '[]',
  exposed TEXT NOT NULL DEFAULT '{}',
  dns TEXT NOT NULL DEFAULT '[]',
  extra_hosts TEXT NOT NULL DEFAULT '[]',
  files TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS net_endpoints (
  id TEXT PRIMARY KEY,
  container_id TEXT NOT NULL,
  network_id TEXT NOT NULL REFERENCES networks(id),
  ip TEXT NOT NULL,
  mac TEXT NOT NULL,
  host_if TEXT NOT NULL,
  ifname TEXT NOT NULL,
  aliases TEXT NOT NULL DEFAULT '[]',
  seq INTEGER NOT NULL DEFAULT 0,
  UNIQUE (container_id, network_id),
  UNIQUE (network_id, ip)
);
CREATE TABLE IF NOT EXISTS net_attachments (
  container_id TEXT NOT NULL,
  network_id TEXT NOT NULL REFERENCES networks(id),
  aliases TEXT NOT NULL DEFAULT '[]',
  ipv4 TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS net_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"""
# Columns added since the tables were first made: (table, column, declaration). Every
# database gets them through `_migrate` (ALTER TABLE when missing), so a data root made by
# older code opens; the tables above stay as first released.
ADDED_COLUMNS = (
    ("networks", "subnet6", "TEXT NOT NULL DEFAULT ''"),
    ("networks", "gateway6", "TEXT NOT NULL DEFAULT ''"),
    ("net_endpoints", "ip6", "TEXT NOT NULL DEFAULT ''"),
    ("net_attachments", "ipv6", "TEXT NOT NULL DEFAULT ''"),
    # whether a subnet was given at network create (dockerd takes --ip/--ip6 only then);
    # networks made before this was kept count as given, as berth took --ip on them
    ("networks", "subnet_static", "INTEGER NOT NULL DEFAULT 1"),
    ("networks", "subnet6_static", "INTEGER NOT NULL DEFAULT 1"),
    ("net_endpoints", "ipam", "TEXT NOT NULL DEFAULT ''"),   # the IPAMConfig asked for (JSON)
    ("net_attachments", "mac", "TEXT NOT NULL DEFAULT ''"),
    ("net_attachments", "link_local", "TEXT NOT NULL DEFAULT '[]'"),
    # the endpoint's DriverOpts (JSON; '' none); on an attachment '' is "not given": the
    # create's EndpointsConfig entry for the network applies (see `_driver_opts`)
    ("net_endpoints", "driver_opts", "TEXT NOT NULL DEFAULT ''"),
    ("net_attachments", "driver_opts", "TEXT NOT NULL DEFAULT ''"),
)
AFTER_MIGRATION = """
CREATE UNIQUE INDEX IF NOT EXISTS net_endpoints_ip ON net_endpoints (network_id, ip) WHERE ip != '';
CREATE UNIQUE INDEX IF NOT EXISTS net_endpoints_ip6 ON net_endpoints (network_id, ip6) WHERE ip6 != '';
"""
# net_endpoints as first released is UNIQUE (network_id, ip): one endpoint without an IPv4
# address ('', on an IPv6-only network) per network. SQLite cannot drop a constraint, so
# `_migrate` rebuilds the table without it; `net_endpoints_ip` keeps real addresses unique.
_IP_UNIQUE = re.compile(r",\s*UNIQUE\s*\(\s*network_id\s*,\s*ip\s*\)")

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
BUILTIN = ("bridge", "host", "none")
PREDEFINED = (*BUILTIN, "default")   # dockerd's network.IsPredefined: no user network takes these names


def _bridge():  # pyroute2 only on the daemon's path
    from berth.network import bridge
    return bridge


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e9) % 10**9:09d}Z"


def _prefixlen(subnet: str) -> int:
    """The prefix length of a network's subnet of one family (0: the family is off)."""
    return ipaddress.ip_network(subnet).prefixlen if subnet else 0


def _hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _migrate(db: Any) -> None:
    for table, column, decl in ADDED_COLUMNS:
        if column not in {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    _drop_ip_unique(db)
    db.ensure_schema(AFTER_MIGRATION)


def _drop_ip_unique(db: Any) -> None:
    """Rebuild net_endpoints without its UNIQUE (network_id, ip) (see `_IP_UNIQUE`): the
    same table as stored (every column added since), rows copied, in one transaction."""
    row = db.one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'net_endpoints'")
    if row is None or not _IP_UNIQUE.search(row["sql"]):
        return
    ddl = _IP_UNIQUE.sub("", row["sql"]).replace("net_endpoints", "net_endpoints_rebuilt", 1)
    with db.transaction() as tx:
        tx.execute(ddl)
        tx.execute("INSERT INTO net_endpoints_rebuilt SELECT * FROM net_endpoints")
        tx.execute("DROP TABLE net_endpoints")   # and its indexes: AFTER_MIGRATION makes them again
        tx.execute("ALTER TABLE net_endpoints_rebuilt RENAME TO net_endpoints")


@dataclass
class _Wanted:
    """A network a starting container joins, with its aliases and requested addresses."""

    net: Any
    aliases: list[str]
    ipv4: str
    ipv6: str
    mac: str = ""
    link_local: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)


def _ipam_config(ipv4: str, ipv6: str, link_local: list[str]) -> str:
    """The IPAMConfig an endpoint was asked for, as inspect shows it ('' for none)."""
    cfg = {k: v for k, v in (("IPv4Address", ipv4), ("IPv6Address", ipv6), ("LinkLocalIPs", link_local)) if v}
    return json.dumps(cfg) if cfg else ""


class NetworkService:
    def __init__(self, config: DaemonConfig, db: Any) -> None:
        self.config = config
        self.db = db
        db.ensure_schema(SCHEMA)
        _migrate(db)
        self._lock = asyncio.Lock()
        self.ports = PortReservations()
        self._dns: dict[str, DNSServer] = {}
        self._proxies: dict[str, LoopbackProxy] = {}
        # whether berth's ip6tables chains may exist: unknown at start (reconciled by the
        # first sync), then whether an IPv6 network exists; saves ip6tables calls when not
        self._v6_rules = True
        self._stem = re.sub(r"[^a-z0-9]", "", config.firewall_prefix.lower())[:8] or "berth"

    # ------------------------------------------------------------------ names and lookups
    def _user_bridge_name(self, net_id: str) -> str:
        return f"{self._stem}-{net_id[: 14 - len(self._stem)]}"

    def _veth_name(self, container_id: str, net_id: str) -> str:
        return f"{self._stem}{_hash(container_id, net_id)[: 15 - len(self._stem)]}"

    def _netns_path(self, container_id: str) -> str:
        return str(self.config.netns_dir / container_id)

    def _container_dir(self, container_id: str) -> Path:
        return self.config.containers_dir / container_id

    def _row(self, id_or_name: str) -> Any:
        db = self.db
        row = db.one("SELECT * FROM networks WHERE name = ?", (id_or_name,)) or \
            db.one("SELECT * FROM networks WHERE id = ?", (id_or_name,))
        if row is None and id_or_name and re.fullmatch(r"[0-9a-f]+", id_or_name):
            rows = db.execute("SELECT * FROM networks WHERE id LIKE ?", (id_or_name + "%",))
            if len(rows) > 1:
                raise NotFound(f"network {id_or_name} is ambiguous ({len(rows)} matches found based on ID prefix)")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {id_or_name} not found")
        return row

    def _sandbox_row(self, container_id: str) -> Any:
        return self.db.one("SELECT * FROM net_sandboxes WHERE container_id = ?", (container_id,))

    # ------------------------------------------------------------------ daemon life
    async def start(self) -> None:
        """Make the built-in networks and the default bridge, enable forwarding, restore
        the plumbing of containers that lived through a daemon restart, reconcile rules."""
        self.config.netns_dir.mkdir(parents=True, exist_ok=True)
        async with self._lock:
            await asyncio.to_thread(_bridge().enable_ip_forward)
            await self._ensure_default_bridge()
            for row in self.db.execute("SELECT * FROM networks WHERE driver = 'bridge' AND builtin = 0"):
                await self._ensure_bridge(row)
            await self._restore_sandboxes()
            self._purge_stale_attachments()
            await self._sync_firewall()

    async def _ensure_default_bridge(self) -> None:
        for name, driver in (("host", "host"), ("none", "null")):
            if self.db.one("SELECT id FROM networks WHERE name = ?", (name,)) is None:
                self.db.execute("INSERT INTO networks (id, name, driver, builtin, created) VALUES (?,?,?,1,?)",
                                (secrets.token_hex(32), name, driver, _now()))
        row = self.db.one("SELECT * FROM networks WHERE name = 'bridge'")
        others = [(r["name"], ipaddress.ip_network(r["subnet"])) for r in
                  self.db.execute("SELECT name, subnet FROM networks WHERE subnet != '' AND name != 'bridge'")]
        in_use = row is not None and self.db.one(
            "SELECT 1 FROM net_endpoints WHERE network_id = ?", (row["id"],)) is not None
        routes = ipam.host_routes(exclude_ifaces=[self.config.bridge])
        if row is not None and (in_use or not self.config.bridge_subnet or row["subnet"] == self.config.bridge_subnet) \
                and row["bridge"] == self.config.bridge:
            subnet = ipaddress.ip_network(row["subnet"])
            gateway = row["gateway"]
        else:
            if self.config.bridge_subnet:
                subnet = ipam.parse_subnet(self.config.bridge_subnet)
                ipam.check_free(subnet, others, routes)
            else:
                subnet = ipam.choose_subnet([n for _, n in others] + routes)
            gateway = str(ipam.default_gateway(subnet))
            if row is None:
                self.db.execute(
                    "INSERT INTO networks (id, name, driver, bridge, subnet, gateway, builtin, options, created) "
                    "VALUES (?, 'bridge', 'bridge', ?, ?, ?, 1, ?, ?)",
                    (secrets.token_hex(32), self.config.bridge, str(subnet), gateway,
                     json.dumps(self._default_bridge_options()), _now()))
            else:
                self.db.execute("UPDATE networks SET bridge = ?, subnet = ?, gateway = ?, options = ? WHERE id = ?",
                                (self.config.bridge, str(subnet), gateway,
                                 json.dumps(self._default_bridge_options()), row["id"]))
        await asyncio.to_thread(_bridge().ensure_bridge, self.config.bridge, gateway, subnet.prefixlen)

    async def _ensure_bridge(self, row: Any) -> None:
        """A user network's bridge with its gateway addresses (and IPv6 forwarding on)."""
        br = _bridge()
        if row["subnet6"]:
            await asyncio.to_thread(br.enable_ipv6_forward)
        await asyncio.to_thread(br.ensure_bridge, row["bridge"], row["gateway"], _prefixlen(row["subnet"]),
                                gateway6=row["gateway6"], prefixlen6=_prefixlen(row["subnet6"]))

    def _default_bridge_options(self) -> dict[str, str]:
        return {"com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": self.config.bridge,
                "com.docker.network.driver.mtu": "1500"}

    async def _restore_sandboxes(self) -> None:
        br = _bridge()
        known = {r["netns"] for r in self.db.execute("SELECT netns FROM net_sandboxes WHERE netns IS NOT NULL")}
        for entry in os.scandir(self.config.netns_dir):   # orphans of a crash: no record, no owner
            if entry.path not in known:
                await asyncio.to_thread(br.remove_netns, entry.path)
        for sb in self.db.execute("SELECT * FROM net_sandboxes"):
            cid = sb["container_id"]
            own = sb["netns"] and sb["netns"] == self._netns_path(cid)
            if own and not br.netns_alive(sb["netns"]):
                await self._teardown_locked(cid)
                continue
            mappings = [PortMapping(**m) for m in json.loads(sb["ports"])]
            if mappings:
                try:
                    self.ports.reserve(cid, mappings)
                except BerthError as exc:
                    log.warning("container %s: cannot re-reserve its ports: %s", cid[:12], exc)
            await self._start_dns(cid)
            await self._start_proxy(cid)

    async def stop(self) -> None:
        """Close what lives in the daemon (DNS servers, port sockets). Containers' plumbing
        stays for live restore; with no container left, berth's bridges, rules and the
        netns directory mount are removed too."""
        async with self._lock:
            for cid in list(self._dns):
                close_quietly(self._dns.pop(cid))
            for cid in list(self._proxies):   # before the ports: a proxy serves their sockets
                close_quietly(self._proxies.pop(cid))
            self.ports.close()
            if self.db.one("SELECT 1 FROM net_sandboxes") is None:
                br = _bridge()
                for row in self.db.execute("SELECT bridge FROM networks WHERE driver = 'bridge'"):
                    await asyncio.to_thread(br.delete_link, row["bridge"])
                await asyncio.to_thread(firewall.remove_all, self.config.firewall_prefix)
                await asyncio.to_thread(br.release_netns_dir, str(self.config.netns_dir))

    # ------------------------------------------------------------------ firewall
    def _desired_rules(self) -> tuple[list[firewall.NetworkRule], list[firewall.PortRule]]:
        nets = [firewall.NetworkRule(r["bridge"], r["subnet"], bool(r["internal"]), r["subnet6"]) for r in
                self.db.execute("SELECT * FROM networks WHERE driver = 'bridge' ORDER BY created, name")]
        rules: list[firewall.PortRule] = []
        for sb in self.db.execute("SELECT * FROM net_sandboxes"):
            ports = [PortMapping(**m) for m in json.loads(sb["ports"])]
            targets = {v6: self._port_target(sb["container_id"], v6) for v6 in {m.ipv6 for m in ports}}
            for m in ports:
                target = targets[m.ipv6]
                if target is not None:
                    rules.append(firewall.PortRule(m.proto, m.host_ip, m.host_port, target[0],
                                                   m.container_port, target[1]))
        return nets, rules

    def _port_target(self, container_id: str, ipv6: bool) -> tuple[str, str] | None:
        """(container address, bridge) a published port of the family leads to: the first
        endpoint (by seq) with an address of that family."""
        col = "ip6" if ipv6 else "ip"
        ep = self.db.one(
            f"SELECT e.{col} AS addr, n.bridge FROM net_endpoints e JOIN networks n ON n.id = e.network_id "
            f"WHERE e.container_id = ? AND e.{col} != '' ORDER BY e.seq LIMIT 1", (container_id,))
        return None if ep is None else (ep["addr"], ep["bridge"])

    async def _sync_firewall(self) -> None:
        nets, ports = self._desired_rules()
        v6 = any(n.subnet6 for n in nets)
        versions = (4, 6) if v6 or self._v6_rules else (4,)
        await asyncio.to_thread(firewall.apply, self.config.firewall_prefix, nets, ports, versions)
        self._v6_rules = v6

    # ------------------------------------------------------------------ networks CRUD
    async def create(self, name: str, driver: str = "bridge", internal: bool = False,
                     subnet: str = "", gateway: str = "", labels: dict | None = None,
                     options: dict | None = None, attachable: bool = False,
                     check_duplicate: bool = True, ipv6: bool = False, subnet6: str = "",
                     gateway6: str = "", ipv4: bool = True) -> dict:
        """A bridge network: with `ipv4` (the default) its IPv4 subnet (given or chosen from
        Docker's pools) and, with `ipv6`, an IPv6 one (given, or a /64 of the daemon's ULA
        /48); at least one of the two (an IPv6-only network: `ipv4=False, ipv6=True`, as
        dockerd 28's EnableIPv4). Every check comes before anything is made."""
        if name in PREDEFINED:   # dockerd's PredefinedNetworkError, checked first (its words, space and all)
            raise Forbidden(f"operation is not permitted on predefined {name} network ")
        if not name or not _NAME.match(name):
            raise InvalidParameter(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        driver = driver or "bridge"
        if driver != "bridge":
            if driver in ("host", "null"):
                raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
            raise NotFound(f"plugin \"{driver}\" not found")
        if not ipv4 and not ipv6:
            raise InvalidParameter("IPv4 or IPv6 must be enabled")   # dockerd's bridge driver
        for family, given, enabled in (("IPv4", subnet or gateway, ipv4), ("IPv6", subnet6 or gateway6, ipv6)):
            if given and not enabled:
                raise InvalidParameter(f"{family} subnet or gateway {given} given to a network without "
                                       f"{family}: enable it (--{family.lower()}, Enable{family})")
        async with self._lock:
            if self.db.one("SELECT 1 FROM networks WHERE name = ?", (name,)):
                raise Conflict(f"network with name {name} already exists")
            bridges = [r["bridge"] for r in self.db.execute("SELECT bridge FROM networks WHERE bridge != ''")]
            net = gw = net6 = gw6 = None
            if ipv4:
                net, gw = self._pick_subnet(4, subnet, gateway, bridges)
            if ipv6:
                net6, gw6 = self._pick_subnet(6, subnet6, gateway6, bridges)
            net_id = secrets.token_hex(32)
            dev = (options or {}).get("com.docker.network.bridge.name") or self._user_bridge_name(net_id)
            if len(dev) > 15:
                raise InvalidParameter(f"bridge name {dev!r} is longer than 15 characters")
            br = _bridge()
            if await asyncio.to_thread(br.link_exists, dev):
                raise Conflict(f"a network interface named {dev} already exists on the host")
            self.db.execute(
                "INSERT INTO networks (id, name, driver, bridge, subnet, gateway, internal, attachable, labels, "
                "options, created, subnet6, gateway6, subnet_static, subnet6_static) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (net_id, name, driver, dev, str(net or ""), str(gw or ""), int(internal), int(attachable),
                 json.dumps(labels or {}), json.dumps(options or {}), _now(), str(net6 or ""), str(gw6 or ""),
                 int(bool(subnet)), int(bool(subnet6))))
            try:
                await self._ensure_bridge(self._row(net_id))
                await self._sync_firewall()
            except BaseException:
                self.db.execute("DELETE FROM networks WHERE id = ?", (net_id,))
                await asyncio.to_thread(br.delete_link, dev)
                with contextlib.suppress(Exception):
                    await self._sync_firewall()
                raise
        return {"Id": net_id, "Warning": ""}

    def _pick_subnet(self, version: int, subnet: str, gateway: str,
                     bridges: list[str]) -> tuple[ipam.IPNet, ipam.IPAddr]:
        """(subnet, gateway) of one IP version for a new network: the given subnet if it
        overlaps no network of ours nor a host route (ours left out), else the first free
        one of Docker's pools (IPv4) or the daemon's ULA /48 (IPv6); the gateway given
        (inside the subnet) or its first address."""
        col = "subnet" if version == 4 else "subnet6"
        others = [(r["name"], ipaddress.ip_network(r[col])) for r in
                  self.db.execute(f"SELECT name, {col} FROM networks WHERE {col} != ''")]
        routes = ipam.host_routes(exclude_ifaces=bridges, version=version)
        if subnet:
            net = ipam.parse_subnet(subnet, version)
            ipam.check_free(net, others, routes)
        else:
            if gateway:
                raise InvalidParameter(f"the IPv{version} gateway {gateway} needs a subnet (--subnet) to go with it")
            pools = ipam.DEFAULT_POOLS if version == 4 else (self._ula_pool(),)
            net = ipam.choose_subnet([n for _, n in others] + routes, pools)
        gw = ipam.parse_address(gateway, f"IPv{version} gateway", version) if gateway else ipam.default_gateway(net)
        ipam.check_gateway(net, gw)
        return net, gw

    def _ula_pool(self) -> tuple[str, int]:
        """The daemon's ULA /48 (RFC 4193: a random 40-bit global id, kept in the database
        so its networks stay in one prefix across restarts), cut into /64s."""
        row = self.db.one("SELECT value FROM net_meta WHERE key = 'ula_global_id'")
        if row is None:
            self.db.execute("INSERT OR IGNORE INTO net_meta (key, value) VALUES ('ula_global_id', ?)",
                            (f"{ipam.new_ula_global_id():010x}",))
            row = self.db.one("SELECT value FROM net_meta WHERE key = 'ula_global_id'")
        return ipam.ula_pool(int(row["value"], 16))

    async def remove(self, id_or_name: str) -> None:
        async with self._lock:
            row = self._row(id_or_name)
            if row["builtin"]:
                raise Forbidden(f"{row['name']} is a pre-defined network and cannot be removed")
            self._purge_stale_attachments()
            users = [r["container_id"] for r in self.db.execute(
                "SELECT container_id FROM net_endpoints WHERE network_id = ? UNION "
                "SELECT container_id FROM net_attachments WHERE network_id = ?", (row["id"], row["id"]))]
            if users:
                raise Forbidden(f"error while removing network: network {row['name']} id {row['id']} has "
                                f"active endpoints ({', '.join(u[:12] for u in users)})")
            self.db.execute("DELETE FROM networks WHERE id = ?", (row["id"],))
            await asyncio.to_thread(_bridge().delete_link, row["bridge"])
            await self._sync_firewall()

    def _view(self, row: Any) -> dict:
        plen, plen6 = _prefixlen(row["subnet"]), _prefixlen(row["subnet6"])
        containers: dict[str, dict] = {}
        for ep in self.db.execute(
                "SELECT e.*, s.name AS cname FROM net_endpoints e LEFT JOIN net_sandboxes s "
                "ON s.container_id = e.container_id WHERE e.network_id = ?", (row["id"],)):
            containers[ep["container_id"]] = {
                "Name": ep["cname"] or "", "EndpointID": ep["id"], "MacAddress": ep["mac"],
                "IPv4Address": f"{ep['ip']}/{plen}" if ep["ip"] else "",
                "IPv6Address": f"{ep['ip6']}/{plen6}" if ep["ip6"] else ""}
        ipam_cfg = [{"Subnet": row[sub], "Gateway": row[gw]}
                    for sub, gw in (("subnet", "gateway"), ("subnet6", "gateway6")) if row[sub]]
        return {
            "Name": row["name"], "Id": row["id"], "Created": row["created"], "Scope": "local",
            # a bridge network without an IPv4 subnet is IPv6-only; host and none count as IPv4 (dockerd's default)
            "Driver": row["driver"], "EnableIPv4": row["driver"] != "bridge" or bool(row["subnet"]),
            "EnableIPv6": bool(row["subnet6"]),
            "IPAM": {"Driver": "default", "Options": None if row["builtin"] else {}, "Config": ipam_cfg},
            "Internal": bool(row["internal"]), "Attachable": bool(row["attachable"]), "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": json.loads(row["options"]), "Labels": json.loads(row["labels"])}

    async def inspect(self, id_or_name: str) -> dict:
        return self._view(self._row(id_or_name))

    async def list(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        out = []
        for row in self.db.execute("SELECT * FROM networks ORDER BY created, name"):
            v = self._view(row)
            if self._matches(v, row, filters or {}):
                out.append(v)
        return out

    def _matches(self, v: dict, row: Any, filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "name" and not any(x in row["name"] for x in values):
                return False
            if key == "id" and not any(row["id"].startswith(x) for x in values):
                return False
            if key == "driver" and row["driver"] not in values:
                return False
            if key == "type":
                kind = "builtin" if row["builtin"] else "custom"
                if kind not in values:
                    return False
            if key == "dangling":
                dangling = not row["builtin"] and not v["Containers"] and not self.db.one(
                    "SELECT 1 FROM net_attachments WHERE network_id = ?", (row["id"],))
                if (values[0] in ("true", "1")) != dangling:
                    return False
            if key == "label":
                labels = v["Labels"]
                for want in values:
                    k, eq, val = want.partition("=")
                    if k not in labels or (eq and labels[k] != val):
                        return False
            if key == "scope" and "local" not in values:
                return False
        return True

    async def prune(self, filters: dict[str, list[str]] | None = None) -> list[str]:
        removed = []
        for v in await self.list(filters):
            row = self._row(v["Id"])
            if row["builtin"] or v["Containers"]:
                continue
            try:
                await self.remove(row["id"])
            except (Forbidden, NotFound):
                continue
            removed.append(row["name"])
        return removed

    # ------------------------------------------------------------------ endpoint settings
    def _facts(self, id_or_name: str) -> epcheck.NetworkFacts | None:
        """What the endpoint checks need of a network (None: no such network yet)."""
        try:
            net = self._row(id_or_name)
        except NotFound:
            return None
        return epcheck.NetworkFacts(user_defined=not net["builtin"], static4=bool(net["subnet_static"]),
                                    ipv6=bool(net["subnet6"]), static6=bool(net["subnet6_static"]))

    def check_endpoints(self, endpoints: dict[str, Any]) -> None:
        """A create's EndpointsConfig checked as dockerd does before it makes anything:
        each entry against the network its key names, when that network exists (a 400
        worded as dockerd's, every entry's errors joined)."""
        errors = []
        for key, settings in endpoints.items():
            try:
                epcheck.check(settings, self._facts(key), key, f"invalid config for network {key}: ")
            except InvalidParameter as exc:
                errors.append(str(exc))
        if errors:
            raise InvalidParameter(epcheck.join(errors))

    def endpoint_key(self, network_mode: str, endpoints: dict[str, Any]) -> str | None:
        """The key of the EndpointsConfig entry for the network of `network_mode`: its
        name, its (short) id, or `default` (the docker CLI's key when no --network is
        given); None when there is none."""
        mode = network_mode or "default"
        for key in ("default", "bridge") if mode in ("default", "bridge") else (mode,):
            if key in endpoints:
                return key
        try:
            want = self._row("bridge" if mode == "default" else mode)["id"]
        except NotFound:
            return None
        for key in endpoints:
            with contextlib.suppress(NotFound):
                if key not in epcheck.PREDEFINED and self._row(key)["id"] == want:
                    return key
        return None

    def endpoint_for(self, network_mode: str, endpoints: dict[str, Any]) -> dict:
        """The EndpointsConfig entry for the network of `network_mode` ({} for none)."""
        key = self.endpoint_key(network_mode, endpoints)
        return (endpoints[key] or {}) if key is not None else {}

    # ------------------------------------------------------------------ containers
    async def setup_container(self, container_id: str, network_mode: str, hostname: str = "",
                              domainname: str = "", aliases: list[str] | None = None,
                              port_bindings: dict | None = None, dns: list[str] | None = None,
                              dns_search: list[str] | None = None, extra_hosts: list[str] | None = None,
                              *, name: str = "", exposed_ports: dict | None = None,
                              publish_all: bool = False, dns_options: list[str] | None = None,
                              ipv4_address: str = "", ipv6_address: str = "",
                              mac_address: str = "", link_local_ips: list[str] | None = None,
                              driver_opts: dict[str, str] | None = None, background: bool = False) -> Sandbox:
        """Build the container's network sandbox (see docs/architecture.md).

        With `background`, a bridged sandbox is returned as soon as what the runtime needs
        to create the container exists (the namespace, the addresses chosen, the files);
        the veths, routes, embedded DNS and rules are made meanwhile by `sandbox.ready`,
        which the caller awaits (`sandbox.plumbed()`) before the container's process runs.
        A failed plumbing tears the sandbox down itself; a teardown waits for it.

        `driver_opts` are the DriverOpts of the network mode's endpoint (None: those of the
        create's EndpointsConfig entry, as recorded); their sysctls are set on its interface."""
        mode = network_mode or "default"
        known: dict[str, Any] = {}
        if driver_opts is None or not name or exposed_ports is None or \
                not (ipv4_address or ipv6_address or mac_address or link_local_ips):
            known = self._container_record(container_id)
            name = name or known.get("name", "")
            if not (ipv4_address or ipv6_address or mac_address or link_local_ips):
                _, ipv4_address, ipv6_address, mac_address, link_local_ips = epcheck.requested(
                    self.endpoint_for(mode, known.get("endpoints") or {}))
            if exposed_ports is None:
                exposed_ports = known.get("exposed") or None
                publish_all = publish_all or bool(known.get("publish_all"))
                dns_options = dns_options or known.get("dns_options") or None
        recorded = known.get("endpoints") or {}
        name = name.lstrip("/")
        hostname = hostname or container_id[:12]
        dns, dns_search = list(dns or []), list(dns_search or [])
        await self._lock.acquire()
        plumbing: asyncio.Task[None] | None = None
        try:
            if self._sandbox_row(container_id) is not None:
                await self._teardown_locked(container_id)
            default_row = self.db.one("SELECT * FROM networks WHERE name = 'bridge'")
            host_gateway = default_row["gateway"] if default_row else ""
            extra = [netfiles.parse_extra_host(e, host_gateway) for e in extra_hosts or []]
            if mode == "host":
                return self._setup_shared_host(container_id, name, extra, dns, dns_search, dns_options)
            if mode.startswith("container:"):
                return self._setup_joined(container_id, name, mode.partition(":")[2])
            if mode == "none":
                return self._setup_none(container_id, name, hostname, domainname, extra, dns, dns_search,
                                        dns_options)
            primary = self._row("bridge" if mode in ("default", "bridge") else mode)
            if primary["driver"] != "bridge":
                raise InvalidParameter(f"container cannot be attached to network {primary['name']}")
            mappings = expand_bindings(port_bindings, exposed_ports, publish_all)
            if mappings and primary["internal"]:
                mappings = []  # internal networks have no way in either
            first = _Wanted(primary, list(aliases or []), ipv4_address, ipv6_address, mac_address,
                            list(link_local_ips or []), self._driver_opts(driver_opts, mode, recorded))
            wanted = self._wanted_networks(container_id, first, recorded)
            has_v4, has_v6 = any(w.net["subnet"] for w in wanted), any(w.net["subnet6"] for w in wanted)
            check_publishable(mappings, has_v6, has_v4)
            if not has_v4:
                mappings = only_ipv6(mappings)
            # a taken port fails first
            reserved = self.ports.reserve(container_id, mappings, dual_stack=has_v4 and has_v6)
            try:
                sandbox, endpoints = await self._prepare_bridged(
                    container_id, name, hostname, domainname, wanted, reserved,
                    exposed_ports, dns, dns_search, dns_options, extra)
            except BaseException:
                await self._teardown_locked(container_id)
                self.ports.release(container_id)
                raise
            # the lock passes to the plumbing task, which releases it when done
            plumbing = asyncio.ensure_future(self._plumb_bridged(container_id, endpoints, bool(reserved)))
        finally:
            if plumbing is None:
                self._lock.release()
        sandbox.ready = plumbing
        # endpoint sysctls may take an IPv6 address away (disable_ipv6): then the start waits
        # for them, and the settings and /etc/hosts are made again without it
        if not background or any(ep["sysctls"] and ep["ip6"] for ep in endpoints):
            await sandbox.plumbed()
            if any(ep.get("released6") for ep in endpoints):
                sandbox.settings = self._settings(container_id)
                netfiles.write_atomic(self._container_dir(container_id) / "hosts",
                                      self._hosts(hostname, domainname, endpoints, extra))
        return sandbox

    @staticmethod
    def _hosts(hostname: str, domainname: str, endpoints: list[dict[str, Any]], extra: list) -> str:
        """/etc/hosts of a bridged container: its addresses on every network."""
        addresses = [ep["ip"] for ep in endpoints if ep["ip"]] + [ep["ip6"] for ep in endpoints if ep["ip6"]]
        return netfiles.hosts_file(hostname, domainname, addresses, extra)

    def _container_record(self, container_id: str) -> dict[str, Any]:
        """What the container service recorded (name, exposed ports, -P, DNS options), for
        callers that do not pass them (other containers resolve the name on user networks)."""
        try:
            row = self.db.one("SELECT name, doc FROM containers WHERE id = ?", (container_id,))
        except sqlite3.Error:
            return {}
        if row is None:
            return {}
        out: dict[str, Any] = {"name": str(row["name"] or "")}
        try:
            doc = json.loads(row["doc"])
            out["exposed"] = (doc.get("config") or {}).get("ExposedPorts") or {}
            hc = doc.get("host_config") or {}
            out["publish_all"] = bool(hc.get("PublishAllPorts"))
            out["dns_options"] = list(hc.get("DnsOptions") or [])
            # legacy links as stored (/TARGET:/ME/ALIAS): on a user network, ALIAS is a name
            # for TARGET that only this container resolves
            out["links"] = {link.rpartition("/")[2].lower(): link.partition(":")[0].lstrip("/").lower()
                            for link in hc.get("Links") or []}
            out["endpoints"] = (doc.get("network_settings") or {}).get("_aliases") or {}
        except (TypeError, ValueError, AttributeError):
            pass
        return out

    def _purge_stale_attachments(self) -> None:
        """Drop remembered connections of containers that no longer exist (when the
        container service's table is there to tell; `forget_container` is the main path)."""
        try:
            self.db.execute("DELETE FROM net_attachments WHERE container_id NOT IN (SELECT id FROM containers)")
        except sqlite3.Error:
            pass

    def _write_files(self, container_id: str, hosts: str, resolv: str, hostname: str) -> dict[str, str]:
        d = self._container_dir(container_id)
        d.mkdir(parents=True, exist_ok=True)
        out = {}
        for cpath, fname, text in (("/etc/hosts", "hosts", hosts), ("/etc/resolv.conf", "resolv.conf", resolv),
                                   ("/etc/hostname", "hostname", hostname + "\n")):
            netfiles.write_atomic(d / fname, text)
            out[cpath] = str(d / fname)
        return out

    def _host_resolv(self) -> netfiles.ResolvConf:
        try:
            return netfiles.parse_resolv_conf(Path("/etc/resolv.conf").read_text())
        except OSError:
            return netfiles.ResolvConf()

    def _insert_sandbox(self, container_id: str, name: str, mode: str, netns: str | None,
                        hostname: str = "", domainname: str = "", ports: list[PortMapping] = (),
                        exposed: dict | None = None, dns: list[str] = (), extra: list = (),
                        files: dict | None = None) -> str:
        sandbox_id = secrets.token_hex(32)
        self.db.execute(
            "INSERT INTO net_sandboxes (container_id, sandbox_id, name, mode, netns, hostname, domainname, "
            "ports, exposed, dns, extra_hosts, files) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (container_id, sandbox_id, name, mode, netns, hostname, domainname,
             json.dumps([m.__dict__ for m in ports]), json.dumps(exposed or {}), json.dumps(list(dns)),
             json.dumps([list(e) for e in extra]), json.dumps(files or {})))
        return sandbox_id

    def _setup_shared_host(self, container_id: str, name: str, extra: list, dns: list[str],
                           dns_search: list[str], dns_options: list[str] | None) -> Sandbox:
        host_name = socket.gethostname()
        try:
            hosts = Path("/etc/hosts").read_text()
        except OSError:
            hosts = netfiles.HOSTS_HEADER
        hosts += "".join(f"{ip}\t{n}\n" for n, ip in extra)
        host_rc = self._host_resolv()
        resolv = netfiles.resolv_conf(host_rc, dns, dns_search, dns_options) if (dns or dns_search or dns_options) \
            else (Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else "")
        files = self._write_files(container_id, hosts, resolv, host_name)
        self._insert_sandbox(container_id, name, "host", None, host_name, files=files)
        return Sandbox(None, True, files, self._settings(container_id))

    def _setup_none(self, container_id: str, name: str, hostname: str, domainname: str, extra: list,
                    dns: list[str], dns_search: list[str], dns_options: list[str] | None) -> Sandbox:
        hosts = netfiles.hosts_file(hostname, domainname, [], extra)
        resolv = netfiles.resolv_conf(self._host_resolv(), dns, dns_search, dns_options)
        files = self._write_files(container_id, hosts, resolv, hostname)
        self._insert_sandbox(container_id, name, "none", None, hostname, domainname, files=files)
        return Sandbox(None, False, files, self._settings(container_id))

    def _setup_joined(self, container_id: str, name: str, target: str) -> Sandbox:
        rows = self.db.execute("SELECT * FROM net_sandboxes WHERE container_id LIKE ? OR name = ?",
                               (target + "%", target.lstrip("/")))
        if len(rows) != 1 or rows[0]["mode"].startswith("container:"):
            raise Conflict(f"cannot join network of a non running container: {target}")
        other = rows[0]
        files = json.loads(other["files"])
        self._insert_sandbox(container_id, name, f"container:{other['container_id']}", other["netns"],
                             other["hostname"], other["domainname"], files=files)
        return Sandbox(other["netns"], other["mode"] == "host", files, self._settings(container_id))

    def _wanted_networks(self, container_id: str, first: _Wanted, recorded: dict[str, Any]) -> list[_Wanted]:
        """The networks a starting container joins: its network mode's first, then those it
        was connected to while stopped (each with its aliases, requested addresses, MAC and
        DriverOpts; `recorded` is the create's EndpointsConfig)."""
        wanted = [first]
        for att in self.db.execute("SELECT * FROM net_attachments WHERE container_id = ?", (container_id,)):
            link_local = json.loads(att["link_local"])
            net = first.net if att["network_id"] == first.net["id"] else self._row(att["network_id"])
            opts = self._driver_opts(json.loads(att["driver_opts"]) if att["driver_opts"] else None, net["name"],
                                     recorded)
            if net is first.net:   # connected before start to its own network
                merged = list(dict.fromkeys([*first.aliases, *json.loads(att["aliases"])]))
                wanted[0] = _Wanted(first.net, merged, first.ipv4 or att["ipv4"], first.ipv6 or att["ipv6"],
                                    first.mac or att["mac"], first.link_local or link_local,
                                    first.driver_opts or opts)
            else:
                wanted.append(_Wanted(net, json.loads(att["aliases"]), att["ipv4"], att["ipv6"], att["mac"],
                                      link_local, opts))
        return wanted

    def _driver_opts(self, given: dict[str, str] | None, network: str, recorded: dict[str, Any]) -> dict[str, str]:
        """An endpoint's DriverOpts: as given, else (None: not passed; the engine passes none
        yet) those of the create's EndpointsConfig entry for `network` (`recorded`)."""
        if given is None:
            given = self.endpoint_for(network, recorded).get("DriverOpts")
        return dict(given or {})

    async def _prepare_bridged(self, container_id: str, name: str, hostname: str, domainname: str,
                               wanted: list[_Wanted], mappings: list[PortMapping],
                               exposed: dict | None, dns: list[str], dns_search: list[str],
                               dns_options: list[str] | None,
                               extra: list) -> tuple[Sandbox, list[dict[str, Any]]]:
        """The namespace, the endpoints' addresses (in the database) and the files: all
        the runtime needs. The endpoints are returned for `_plumb_bridged`."""
        path = self._netns_path(container_id)
        self._insert_sandbox(container_id, name, wanted[0].net["name"], path, hostname, domainname, mappings,
                             exposed, dns, extra)
        await asyncio.to_thread(_bridge().create_netns, path)
        endpoints = [self._add_endpoint(container_id, w, seq) for seq, w in enumerate(wanted)]
        user_net = any(not w.net["builtin"] for w in wanted)
        hosts = self._hosts(hostname, domainname, endpoints, extra)
        resolv = netfiles.resolv_conf(self._host_resolv(), dns, dns_search, dns_options, embedded=user_net)
        files = self._write_files(container_id, hosts, resolv, hostname)
        self.db.execute("UPDATE net_sandboxes SET files = ? WHERE container_id = ?",
                        (json.dumps(files), container_id))
        return Sandbox(path, False, files, self._settings(container_id)), endpoints

    async def _plumb_bridged(self, container_id: str, endpoints: list[dict[str, Any]], ports: bool) -> None:
        """The kernel side of a prepared sandbox (veths, addresses, routes), its embedded DNS
        and the rules for its published ports. Runs holding the lock `setup_container`
        took, releases it; on failure the sandbox is torn down."""
        try:
            for ep in endpoints:
                await self._plumb_endpoint(container_id, ep)
            await self._start_dns(container_id)   # only with a user network
            if ports:   # rules depend on networks and published ports only
                await self._sync_firewall()
                await self._start_proxy(container_id)
        except BaseException:
            await self._teardown_locked(container_id)
            self.ports.release(container_id)
            raise
        finally:
            self._lock.release()

    def _add_endpoint(self, container_id: str, want: _Wanted, seq: int) -> dict[str, Any]:
        """Choose the addresses, MAC and interface names of a container on `want.net` and
        record them: an address of each family the network has (see `_address`). The MAC
        is the one asked for (dockerd lets two endpoints share one), else Docker's 02:42 +
        IPv4 address, or a random one without IPv4 (dockerd 28); link-local addresses are
        added beside the others."""
        net = want.net
        ip, gateway = self._address(container_id, net, 4, want.ipv4)
        ip6, gateway6 = self._address(container_id, net, 6, want.ipv6)
        used = {r["ifname"] for r in self.db.execute("SELECT ifname FROM net_endpoints WHERE container_id = ?",
                                                     (container_id,))}
        n = seq
        while f"eth{n}" in used:
            n += 1
        if want.mac:
            mac = epcheck.parse_mac(want.mac)
        else:
            mac = ipam.mac_for(ipaddress.IPv4Address(ip)) if ip else ipam.random_mac()
        ep = {"id": secrets.token_hex(32), "network_id": net["id"], "ip": ip, "ip6": ip6, "mac": mac,
              "link_local": epcheck.link_local_addresses(want.link_local),
              "host_if": self._veth_name(container_id, net["id"]), "ifname": f"eth{n}", "seq": seq,
              "bridge": net["bridge"], "prefixlen": _prefixlen(net["subnet"]),
              "prefixlen6": _prefixlen(net["subnet6"]), "gateway": gateway, "gateway6": gateway6,
              "sysctls": epcheck.endpoint_sysctls(want.driver_opts)}
        self.db.execute(
            "INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname, aliases, seq, ip6, "
            "ipam, driver_opts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (ep["id"], container_id, net["id"], ip, mac, ep["host_if"], ep["ifname"],
             json.dumps(want.aliases), seq, ip6, _ipam_config(want.ipv4, want.ipv6, want.link_local),
             json.dumps(want.driver_opts) if want.driver_opts else ""))
        return ep

    def _address(self, container_id: str, net: Any, version: int, asked: str) -> tuple[str, str | None]:
        """(address, gateway of the default route it carries or None) of a container on
        `net` in one IP family: `asked` if given and free, else the lowest free one; ("",
        None) when the network does not have the family (then an address asked for is
        refused). The container's first non-internal endpoint with an address of a family
        carries that family's default route, so with an IPv6-only first network the IPv4
        route goes through the next network with IPv4, as dockerd picks a gateway per family."""
        col, subnet, gateway = ("ip", "subnet", "gateway") if version == 4 else ("ip6", "subnet6", "gateway6")
        if not net[subnet]:
            if asked:
                raise InvalidParameter(epcheck.family_disabled(version, asked, net["name"]))
            return "", None
        taken = [r[col] for r in self.db.execute(f"SELECT {col} FROM net_endpoints WHERE network_id = ? "
                                                 f"AND {col} != ''", (net["id"],))]
        addr = ipam.allocate(ipaddress.ip_network(net[subnet]), ipaddress.ip_address(net[gateway]), taken,
                             asked or None)
        routed = self.db.one(
            f"SELECT 1 FROM net_endpoints e JOIN networks n ON n.id = e.network_id "
            f"WHERE e.container_id = ? AND e.{col} != '' AND n.internal = 0", (container_id,)) is not None
        return str(addr), None if net["internal"] or routed else net[gateway]

    async def _plumb_endpoint(self, container_id: str, ep: dict[str, Any]) -> None:
        kept6 = await asyncio.to_thread(
            _bridge().attach, self._netns_path(container_id), ep["bridge"], ep["host_if"], ep["ifname"], ep["ip"],
            ep["prefixlen"], ep["gateway"], ep["mac"], address6=ep["ip6"], prefixlen6=ep["prefixlen6"],
            gateway6=ep["gateway6"], link_local=ep["link_local"], sysctls=ep["sysctls"])
        if not kept6:   # an endpoint sysctl (disable_ipv6) took it away: released, as libnetwork does
            self.db.execute("UPDATE net_endpoints SET ip6 = '' WHERE id = ?", (ep["id"],))
            ep["ip6"], ep["released6"] = "", True

    async def _attach(self, container_id: str, want: _Wanted, seq: int) -> None:
        """Connect a running container to one more network."""
        ep = self._add_endpoint(container_id, want, seq)
        try:
            await self._plumb_endpoint(container_id, ep)
        except BaseException:
            self.db.execute("DELETE FROM net_endpoints WHERE id = ?", (ep["id"],))
            raise

    async def teardown_container(self, container_id: str) -> None:
        """Remove the container's veths, namespace, port reservations, DNS and rules."""
        async with self._lock:
            await self._teardown_locked(container_id)

    async def _teardown_locked(self, container_id: str) -> None:
        close_quietly(self._dns.pop(container_id, None))
        close_quietly(self._proxies.pop(container_id, None))   # before the ports it serves
        self.ports.release(container_id)
        sb = self._sandbox_row(container_id)
        br = _bridge()
        for ep in self.db.execute("SELECT host_if FROM net_endpoints WHERE container_id = ?", (container_id,)):
            await asyncio.to_thread(br.detach, ep["host_if"])
        path = self._netns_path(container_id)
        if os.path.exists(path):
            await asyncio.to_thread(br.remove_netns, path)
        had_rules = sb is not None and sb["ports"] != "[]"
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM net_endpoints WHERE container_id = ?", (container_id,))
            tx.execute("DELETE FROM net_sandboxes WHERE container_id = ?", (container_id,))
        if had_rules:
            await self._sync_firewall()

    async def forget_container(self, container_id: str) -> None:
        """The container is removed: tear down and drop its configured extra networks."""
        async with self._lock:
            await self._teardown_locked(container_id)
            self.db.execute("DELETE FROM net_attachments WHERE container_id = ?", (container_id,))

    async def connect(self, id_or_name: str, container_id: str, aliases: list[str] | None = None,
                      ipv4_address: str = "", name: str = "", ipv6_address: str = "",
                      mac_address: str = "", link_local_ips: list[str] | None = None,
                      driver_opts: dict[str, str] | None = None) -> None:
        """Connect a container (running: now; else at its next start) with the endpoint
        settings checked as dockerd's connect checks them. `driver_opts` None: not given
        (those of the create's EndpointsConfig entry for the network apply)."""
        link_local = list(link_local_ips or [])
        async with self._lock:
            net = self._row(id_or_name)
            if net["driver"] != "bridge":
                raise Forbidden(f"container cannot be disconnected from host network or connected to "
                                f"{net['name']} network")
            sb = self._sandbox_row(container_id)
            if sb is not None and (sb["mode"] in ("host", "none") or sb["mode"].startswith("container:")):
                raise Forbidden(f"container sharing network namespace with another container or host "
                                f"cannot be connected to {net['name']} network")
            # checked before the endpoint exists, as dockerd: a bad setting is answered first
            settings = {"Aliases": aliases, "MacAddress": mac_address, "DriverOpts": driver_opts,
                        "IPAMConfig": {"IPv4Address": ipv4_address, "IPv6Address": ipv6_address,
                                       "LinkLocalIPs": link_local}}
            epcheck.check(settings, self._facts(net["id"]), net["name"])
            if self.db.one("SELECT 1 FROM net_endpoints WHERE container_id = ? AND network_id = ?",
                           (container_id, net["id"])) or \
                    self.db.one("SELECT 1 FROM net_attachments WHERE container_id = ? AND network_id = ?",
                                (container_id, net["id"])):
                raise Forbidden(f"endpoint with name {name or container_id[:12]} already exists in network "
                                f"{net['name']}")
            self.db.execute("INSERT INTO net_attachments (container_id, network_id, aliases, ipv4, ipv6, mac, "
                            "link_local, driver_opts) VALUES (?,?,?,?,?,?,?,?)",
                            (container_id, net["id"], json.dumps(aliases or []), ipv4_address, ipv6_address,
                             mac_address, json.dumps(link_local), "" if driver_opts is None else json.dumps(driver_opts)))
            if sb is None:
                return
            seq = (self.db.one("SELECT MAX(seq) AS m FROM net_endpoints WHERE container_id = ?",
                               (container_id,))["m"] or 0) + 1
            opts = self._driver_opts(driver_opts, net["name"],
                                     self._container_record(container_id).get("endpoints") or {})
            try:
                await self._attach(container_id, _Wanted(net, list(aliases or []), ipv4_address, ipv6_address,
                                                         mac_address, link_local, opts), seq)
            except BaseException:
                self.db.execute("DELETE FROM net_attachments WHERE container_id = ? AND network_id = ?",
                                (container_id, net["id"]))
                raise
            if not net["builtin"] and container_id not in self._dns:
                await self._start_dns(container_id)
            await self._sync_firewall()

    async def disconnect(self, id_or_name: str, container_id: str, force: bool = False) -> None:
        async with self._lock:
            net = self._row(id_or_name)
            ep = self.db.one("SELECT * FROM net_endpoints WHERE container_id = ? AND network_id = ?",
                             (container_id, net["id"]))
            att = self.db.one("SELECT 1 FROM net_attachments WHERE container_id = ? AND network_id = ?",
                              (container_id, net["id"]))
            if ep is None and att is None:
                if force or self._sandbox_row(container_id) is None:
                    return   # not running: the network mode's own network is dropped by the engine
                raise NotFound(f"container {container_id[:12]} is not connected to network {net['name']}")
            self.db.execute("DELETE FROM net_attachments WHERE container_id = ? AND network_id = ?",
                            (container_id, net["id"]))
            if ep is not None:
                await asyncio.to_thread(_bridge().detach, ep["host_if"])
                self.db.execute("DELETE FROM net_endpoints WHERE id = ?", (ep["id"],))
                await self._sync_firewall()

    async def rename_container(self, container_id: str, name: str) -> None:
        """`docker rename` of a container with a sandbox (a no-op without one: the next
        start passes the new name). As libnetwork's Sandbox.Rename: every embedded DNS
        answers the new name at once and the old one no longer (network aliases stay as
        given, so an alias equal to the old name still resolves); reverse lookups,
        DNSNames and `network inspect` show the new name. Under the lock, so a start still
        making its sandbox with the old name is renamed after, not before."""
        async with self._lock:
            self.db.execute("UPDATE net_sandboxes SET name = ? WHERE container_id = ?", (name, container_id))

    def attached_networks(self, container_id: str) -> list[str]:
        """Names of the networks the container is attached to (live or configured)."""
        return [r["name"] for r in self.db.execute(
            "SELECT n.name FROM networks n WHERE n.id IN (SELECT network_id FROM net_endpoints WHERE "
            "container_id = ? UNION SELECT network_id FROM net_attachments WHERE container_id = ?)",
            (container_id, container_id))]

    # ------------------------------------------------------------------ settings / DNS
    def settings(self, container_id: str) -> dict:
        """The container's current NetworkSettings (after connect/disconnect too)."""
        return self._settings(container_id)

    def _settings(self, container_id: str) -> dict:
        sb = self._sandbox_row(container_id)
        s: dict[str, Any] = {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
            "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {}}
        if sb is None:
            return s
        s["SandboxID"] = sb["sandbox_id"]
        s["SandboxKey"] = sb["netns"] or ""
        mappings = [PortMapping(**m) for m in json.loads(sb["ports"])]
        s["Ports"] = settings_ports(mappings, json.loads(sb["exposed"]))
        if sb["mode"] in ("host", "none"):
            net = self.db.one("SELECT id FROM networks WHERE name = ?", (sb["mode"],))
            s["Networks"][sb["mode"]] = self._endpoint_settings(net["id"] if net else "", None, None)
        for ep in self.db.execute(
                "SELECT e.*, n.name AS nname, n.subnet, n.gateway, n.subnet6, n.gateway6, n.builtin, n.internal "
                "FROM net_endpoints e "
                "JOIN networks n ON n.id = e.network_id WHERE e.container_id = ? ORDER BY e.seq", (container_id,)):
            es = self._endpoint_settings(ep["network_id"], ep, sb)
            s["Networks"][ep["nname"]] = es
            if ep["nname"] == "bridge":   # Docker's legacy top-level fields: the default network only
                for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress", "GlobalIPv6Address",
                          "GlobalIPv6PrefixLen", "IPv6Gateway"):
                    s[k] = es[k]
        return s

    def _endpoint_settings(self, network_id: str, ep: Any, sb: Any) -> dict:
        # no GwPriority: dockerd 27 (API 1.47) has none, and 28 leaves a 0 out (omitempty)
        es: dict[str, Any] = {
            "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
            "NetworkID": network_id, "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None}
        if ep is None:
            return es
        aliases = json.loads(ep["aliases"])
        es.update({"MacAddress": ep["mac"], "EndpointID": ep["id"], "IPAMConfig": json.loads(ep["ipam"] or "null"),
                   "Aliases": aliases or None, "DriverOpts": json.loads(ep["driver_opts"] or "null")})
        if ep["ip"]:   # none on an IPv6-only network: IPAddress "", as dockerd shows it
            es.update({"Gateway": "" if ep["internal"] else ep["gateway"], "IPAddress": ep["ip"],
                       "IPPrefixLen": _prefixlen(ep["subnet"])})
        if ep["ip6"]:
            es.update({"GlobalIPv6Address": ep["ip6"],
                       "GlobalIPv6PrefixLen": _prefixlen(ep["subnet6"]),
                       "IPv6Gateway": "" if ep["internal"] else ep["gateway6"]})
        if not ep["builtin"]:
            names = [n for n in [sb["name"] if sb else "", *aliases, ep["container_id"][:12],
                                 sb["hostname"] if sb else ""] if n]
            es["DNSNames"] = list(dict.fromkeys(names))
        return es

    def _user_networks_of(self, container_id: str) -> list[str]:
        return [r["network_id"] for r in self.db.execute(
            "SELECT e.network_id FROM net_endpoints e JOIN networks n ON n.id = e.network_id "
            "WHERE e.container_id = ? AND n.builtin = 0", (container_id,))]

    def _lookup(self, container_id: str, qname: str) -> list[str] | None:
        nets = self._user_networks_of(container_id)
        if not nets:
            return None
        marks = ",".join("?" * len(nets))
        found: list[str] = []
        wanted = {qname}
        target = (self._container_record(container_id).get("links") or {}).get(qname)
        if target:
            wanted.add(target)
        for ep in self.db.execute(
                f"SELECT e.ip, e.ip6, e.aliases, e.container_id, s.name, s.hostname FROM net_endpoints e "
                f"LEFT JOIN net_sandboxes s ON s.container_id = e.container_id "
                f"WHERE e.network_id IN ({marks}) ORDER BY e.container_id", nets):
            names = {(ep["name"] or "").lower(), ep["container_id"][:12], ep["container_id"]}
            names.update(a.lower() for a in json.loads(ep["aliases"]))
            if wanted & names:
                found.extend(ip for ip in (ep["ip"], ep["ip6"]) if ip and ip not in found)
        return found or None

    def _reverse(self, container_id: str, ip: str) -> str | None:
        nets = self._user_networks_of(container_id)
        if not nets:
            return None
        marks = ",".join("?" * len(nets))
        row = self.db.one(
            f"SELECT s.name, e.network_id FROM net_endpoints e JOIN net_sandboxes s ON s.container_id = e.container_id "
            f"WHERE (e.ip = ? OR e.ip6 = ?) AND e.network_id IN ({marks})", [ip, ip, *nets])
        if row is None or not row["name"]:
            return None
        net = self.db.one("SELECT name FROM networks WHERE id = ?", (row["network_id"],))
        return f"{row['name']}.{net['name']}" if net else row["name"]

    def _upstreams(self, container_id: str) -> list[str]:
        nets = self.db.execute(
            "SELECT n.internal FROM net_endpoints e JOIN networks n ON n.id = e.network_id "
            "WHERE e.container_id = ?", (container_id,))
        if nets and all(r["internal"] for r in nets):
            return []   # internal networks: no way out, not even for names
        sb = self._sandbox_row(container_id)
        dns = json.loads(sb["dns"]) if sb else []
        return netfiles.upstream_servers(self._host_resolv(), dns)

    async def _start_proxy(self, container_id: str) -> None:
        """Serve the container's ports published on [::] or [::1] from [::1] (see
        berth.network.proxy: the kernel cannot DNAT IPv6 loopback traffic to a bridge)."""
        if container_id in self._proxies:
            return
        target = self._port_target(container_id, ipv6=True)
        served = [(m, sock) for m, sock in self.ports.held(container_id) if m.proxied]
        if target is None or not served:
            return
        proxy = LoopbackProxy()
        self._proxies[container_id] = proxy
        for m, sock in served:
            serve = proxy.serve_udp if m.proto == "udp" else proxy.serve
            await serve(sock, (target[0], m.container_port))

    async def _start_dns(self, container_id: str) -> None:
        if container_id in self._dns or not self._user_networks_of(container_id):
            return
        path = self._netns_path(container_id)
        br = _bridge()
        udp = await asyncio.to_thread(br.bind_in_netns, path, (netfiles.EMBEDDED_DNS, 53), socket.SOCK_DGRAM)
        try:
            tcp = await asyncio.to_thread(br.bind_in_netns, path, (netfiles.EMBEDDED_DNS, 53),
                                          socket.SOCK_STREAM)
        except BaseException:
            udp.close()
            raise
        server = DNSServer(Resolver(lambda q: self._lookup(container_id, q),
                                    lambda ip: self._reverse(container_id, ip),
                                    lambda: self._upstreams(container_id)))
        try:
            await server.start(udp, tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self._dns[container_id] = server
