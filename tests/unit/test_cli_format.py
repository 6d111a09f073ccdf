"""Output formatting as docker prints it (pure)."""

from __future__ import annotations

from berth.cli import format as fmt
from berth.cli.commands.containers import PS_HEADERS, container_row, port_lines, stats_row
from berth.cli.commands.images import image_rows


def test_human_size_and_bytes_size() -> None:
    assert fmt.human_size(0) == "0B"
    assert fmt.human_size(1980000, 3) == "1.98MB"
    assert fmt.human_size(4261376) == "4.261MB"
    assert fmt.human_size(999) == "999B"
    assert fmt.human_size(1000) == "1kB"
    assert fmt.bytes_size(1536 * 1024) == "1.5MiB"
    assert fmt.bytes_size(0) == "0B"


def test_human_duration() -> None:
    assert fmt.human_duration(0.2) == "Less than a second"
    assert fmt.human_duration(1) == "1 second"
    assert fmt.human_duration(45) == "45 seconds"
    assert fmt.human_duration(70) == "About a minute"
    assert fmt.human_duration(600) == "10 minutes"
    assert fmt.human_duration(3600) == "About an hour"
    assert fmt.human_duration(5 * 3600) == "5 hours"
    assert fmt.human_duration(3 * 86400) == "3 days"
    assert fmt.human_duration(20 * 86400) == "2 weeks"
    assert fmt.human_duration(90 * 86400) == "3 months"
    assert fmt.human_duration(800 * 86400) == "2 years"


def test_parse_time_rfc3339_with_nanoseconds() -> None:
    assert fmt.parse_time("2026-01-02T03:04:05.123456789Z") == 1767323045.123456789
    assert fmt.parse_time("0001-01-01T00:00:00Z") is None
    assert fmt.parse_time(1700000000) == 1700000000.0


def test_table_pads_like_tabwriter() -> None:
    out = fmt.table(["A", "LONGER HEADER"], [["x", "y"], ["wide value here", "z"]])
    lines = out.splitlines()
    assert lines[0] == "A                 LONGER HEADER"
    assert lines[2] == "wide value here   z"


def test_ports() -> None:
    ports = [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"},
             {"PrivatePort": 443, "Type": "tcp"},
             {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "::"}]
    assert fmt.format_ports(ports) == "0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp"
    assert port_lines({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8001"}], "53/udp": None}) == \
        ["80/tcp -> 0.0.0.0:8001"]
    assert port_lines({"80/tcp": [{"HostIp": "", "HostPort": "8001"}]}, "80") == ["0.0.0.0:8001"]


def test_container_row() -> None:
    c = {"Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "Command": "sh -c 'sleep 1000; echo done'",
         "Created": 1000, "Status": "Up 2 seconds", "State": "running",
         "Ports": [{"PrivatePort": 80, "PublicPort": 8001, "Type": "tcp", "IP": "0.0.0.0"}]}
    r = container_row(c, trunc=True, now=1010)
    assert r["ID"] == "a" * 12
    assert r["Command"] == '"sh -c \'sleep 1000; \u2026"'
    assert r["RunningFor"] == "10 seconds ago"
    assert r["Names"] == "web" and r["Ports"] == "0.0.0.0:8001->80/tcp"
    assert container_row(c, trunc=False, now=1010)["ID"] == "a" * 64
    c["Labels"] = {"com.example.team": "web"}
    rows = [container_row(c, trunc=True, now=1010)]
    assert fmt.render_format('{{.Names}} {{.Label "com.example.team"}}', rows, PS_HEADERS) == "web web\n"
    assert fmt.render_format('table {{.Label "com.example.team"}}', rows, PS_HEADERS) == "com.example.team\nweb\n"
    assert '"Labels":"com.example.team=web"' in fmt.render_format("json", rows, PS_HEADERS)


def test_image_rows() -> None:
    images = [{"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest", "localhost:5000/bb:1"],
               "RepoDigests": ["busybox@sha256:" + "c" * 64], "Created": 100, "Size": 1980000},
              {"Id": "sha256:" + "d" * 64, "RepoTags": None, "RepoDigests": None, "Created": 100, "Size": 5}]
    rows = image_rows(images, trunc=True, digests=True, now=160)
    assert [(r["Repository"], r["Tag"]) for r in rows] == [
        ("busybox", "latest"), ("localhost:5000/bb", "1"), ("<none>", "<none>")]
    assert rows[0]["Digest"] == "sha256:" + "c" * 64
    assert rows[0]["ID"] == "b" * 12 and rows[0]["Size"] == "1.98MB"
    assert rows[0]["CreatedSince"] == "About a minute ago"


def test_stats_row() -> None:
    s = {"cpu_stats": {"cpu_usage": {"total_usage": 2_000_000}, "system_cpu_usage": 20_000_000, "online_cpus": 2},
         "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
         "memory_stats": {"usage": 2 * 1048576, "limit": 8 * 1048576, "stats": {"total_inactive_file": 1048576}},
         "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
         "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}]},
         "pids_stats": {"current": 3}}
    r = stats_row(s, "web", "abc")
    assert r["CPUPerc"] == "20.00%"
    assert r["MemUsage"] == "1MiB / 8MiB" and r["MemPerc"] == "12.50%"
    assert r["NetIO"] == "1.5kB / 0B" and r["BlockIO"] == "4.1kB / 0B" and r["PIDs"] == "3"


def test_render_format_table_and_plain() -> None:
    rows = [{"ID": "1", "Names": "a"}, {"ID": "2", "Names": "bb"}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert fmt.render_format("{{.ID}}:{{.Names}}", rows, headers) == "1:a\n2:bb\n"
    out = fmt.render_format("table {{.ID}}\\t{{.Names}}", rows, headers)
    assert out.splitlines() == ["CONTAINER ID   NAMES", "1              a", "2              bb"]
    assert fmt.render_format("json", rows, headers).splitlines()[0] == '{"ID":"1","Names":"a"}'


def test_logs_since_and_until_values() -> None:
    import pytest

    from berth.cli.commands.containers import timestamp_param
    from berth.cli.flags import UsageError

    now = 1_000_000.0
    assert timestamp_param("1700000000", "--since", now) == "1700000000"
    assert float(timestamp_param("10m", "--since", now)) == now - 600
    assert float(timestamp_param("1h30m", "--since", now)) == now - 5400
    assert float(timestamp_param("2026-01-02T03:04:05Z", "--since", now)) == 1767323045.0
    assert float(timestamp_param("2026-01-02", "--since", now)) == 1767312000.0
    with pytest.raises(UsageError, match='invalid value for "--since"'):
        timestamp_param("yesterday", "--since", now)


def test_one_rfc3339_reading_for_cli_daemon_and_images() -> None:
    """berth.humanize.parse_rfc3339 is what the CLI, the daemon's status strings and image
    times all read: nanoseconds, any zone, Go's zero time."""
    from berth.engine.humanize import parse_time as engine_time
    from berth.engine.images import created_unix
    from berth.humanize import parse_rfc3339

    t = parse_rfc3339("2024-01-02T03:04:05.25Z")
    assert t == 1704164645.25
    assert parse_rfc3339("2024-01-02T05:04:05.25+02:00") == t
    assert parse_rfc3339("2024-01-02T03:04:05.25") == t            # no zone: UTC
    for zero in ("", None, "0001-01-01T00:00:00Z", "yesterday"):
        assert parse_rfc3339(zero) is None and engine_time(zero) is None
        assert created_unix(zero or "") == 0
    assert engine_time("2024-01-02T01:04:05.25-02:00") == t == fmt.parse_time("2024-01-02T03:04:05.25Z")
