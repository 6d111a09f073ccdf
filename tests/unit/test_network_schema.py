"""The network service's tables: a database made before IPv6 (no subnet6/gateway6/ip6/ipv6
columns) opens, gains the columns and keeps its rows; opening again changes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from berth.config import DaemonConfig
from berth.engine import networks
from berth.engine.db import Database


def _columns(db: Database, table: str) -> set[str]:
    return {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}


def test_an_old_database_is_migrated(tmp_path: Path) -> None:
    db = Database(tmp_path / "berth.db")
    try:
        db.ensure_schema(networks.SCHEMA)   # the tables as first released
        assert "subnet6" not in _columns(db, "networks")
        db.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, created) "
                   "VALUES ('n1', 'old', 'bridge', 'br-old', '10.9.0.0/24', '10.9.0.1', 'then')")
        db.execute("INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname) "
                   "VALUES ('e1', 'c1', 'n1', '10.9.0.2', '02:42:0a:09:00:02', 'veth1', 'eth0')")
        cfg = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "run")
        for _ in range(2):
            networks.NetworkService(cfg, db)
            for table, column, _decl in networks.ADDED_COLUMNS:
                assert column in _columns(db, table), (table, column)
        row = db.one("SELECT * FROM networks WHERE id = 'n1'")
        assert (row["subnet"], row["subnet6"], row["gateway6"]) == ("10.9.0.0/24", "", "")
        assert db.one("SELECT ip6 FROM net_endpoints WHERE id = 'e1'")["ip6"] == ""
        # the IPv6 address of an endpoint is unique per network; '' (no IPv6) is not
        db.execute("INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname) "
                   "VALUES ('e2', 'c2', 'n1', '10.9.0.3', '02:42:0a:09:00:03', 'veth2', 'eth0')")
        insert6 = ("INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname, ip6) "
                   "VALUES (?, ?, 'n1', ?, 'm', ?, 'eth0', 'fd00::2')")
        db.execute(insert6, ("e3", "c3", "10.9.0.4", "veth3"))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(insert6, ("e4", "c4", "10.9.0.5", "veth4"))
    finally:
        db.close()

