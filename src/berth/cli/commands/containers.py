"""Container commands that do not carry stdio: ps, stop, rm, logs, top, stats, ..."""

from __future__ import annotations

import sys
import time

from berth.cli import format as fmt
from berth.cli.client import CLIError, path_part
from berth.cli.commands.common import (
    confirmed,
    filters_param,
    inspect_container,
    post_each,
    print_reclaimed,
    prune,
)
from berth.cli.context import Context
from berth.cli.flags import BOOL, INT, LIST, STR, UINT16, Flag, Parsed, Spec, UsageError

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

# ------------------------------------------------------------------ stop / restart / kill / rm
STOP = Spec("stop", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("signal", STR, "s", help="Signal to send to the container"),
    Flag("timeout", INT, "t", help="Seconds to wait before killing the container"),
    Flag("time", INT, hidden=True),
], min_args=1, help="Stop one or more running containers")


def _stop_params(p: Parsed) -> dict[str, Any]:
    params: dict[str, Any] = {}
    t = p.timeout if p.timeout is not None else p.time
    if t is not None:
        params["t"] = t
    if p.signal:
        params["signal"] = p.signal
    return params


def cmd_stop(ctx: Context, p: Parsed) -> int:
    return post_each(ctx, p.args, "stop", _stop_params(p))


RESTART = Spec("restart", "[OPTIONS] CONTAINER [CONTAINER...]", STOP.flags, min_args=1,
               help="Restart one or more containers")


def cmd_restart(ctx: Context, p: Parsed) -> int:
    return post_each(ctx, p.args, "restart", _stop_params(p))


KILL = Spec("kill", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("signal", STR, "s", help="Signal to send to the container"),
], min_args=1, help="Kill one or more running containers")


def cmd_kill(ctx: Context, p: Parsed) -> int:
    return post_each(ctx, p.args, "kill", {"signal": p.signal} if p.signal else None)


RM = Spec("rm", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("force", BOOL, "f", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("link", BOOL, "l", help="Remove the specified link"),
    Flag("volumes", BOOL, "v", help="Remove anonymous volumes associated with the container"),
], min_args=1, help="Remove one or more containers")


def cmd_rm(ctx: Context, p: Parsed) -> int:
    params = {"force": p.force, "v": p.volumes, "link": p.link}

    def rm(name: str) -> str:
        if not name.strip("/"):
            raise CLIError("Container name cannot be empty")
        ctx.client.delete(f"/containers/{path_part(name)}", params)
        return name
    return ctx.for_each(p.args, rm)


# ------------------------------------------------------------------ ps
PS = Spec("ps", "[OPTIONS]", [
    Flag("all", BOOL, "a", help="Show all containers (default shows just running)"),
    Flag("filter", LIST, "f", shows="filter", help="Filter output based on conditions provided"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("last", INT, "n", default=-1, help="Show n last created containers (includes all states)"),
    Flag("latest", BOOL, "l", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", BOOL, help="Don't truncate output"),
    Flag("quiet", BOOL, "q", help="Only display container IDs"),
    Flag("size", BOOL, "s", help="Display total file sizes"),
], max_args=0, help="List containers")

PS_HEADERS: dict[str, Any] = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "State": "STATE", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
              "Label": lambda key: key}   # docker heads a label column with its key


def container_row(c: dict[str, Any], trunc: bool, now: float | None = None) -> dict[str, Any]:
    """The fields `ps --format` offers, computed from one /containers/json entry."""
    cid = c.get("Id", "")
    command = c.get("Command", "")
    image = c.get("Image", "")
    if trunc:
        if image.startswith("sha256:"):
            image = fmt.short_id(image)
        command = fmt.ellipsis(command, 20)
    created = c.get("Created")
    size = ""
    if c.get("SizeRw") is not None or c.get("SizeRootFs") is not None:
        size = fmt.human_size(c.get("SizeRw") or 0, 3)
        if c.get("SizeRootFs"):
            size += f" (virtual {fmt.human_size(c['SizeRootFs'], 3)})"
    labels = c.get("Labels") or {}
    nets = sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    mounts = [m.get("Name") or m.get("Source", "") for m in (c.get("Mounts") or [])]
    created_at = ""
    if created:
        created_at = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(int(created)))
    return {
        "ID": fmt.short_id(cid) if trunc else cid,
        "Image": image,
        "Command": fmt.quote(command),
        "CreatedAt": created_at,
        "RunningFor": fmt.ago(created, now) if created else "",
        "Ports": fmt.format_ports(c.get("Ports")),
        "Status": c.get("Status", ""),
        "State": c.get("State", ""),
        "Size": size,
        "Names": fmt.container_names(c.get("Names")),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Label": lambda key: labels.get(key, ""),
        "Mounts": ",".join(fmt.ellipsis(m, 15) if trunc else m for m in mounts),
        "Networks": ",".join(nets),
        "LocalVolumes": str(sum(1 for m in (c.get("Mounts") or []) if m.get("Driver") == "local")),
    }


def cmd_ps(ctx: Context, p: Parsed) -> int:
    params: dict[str, Any] = {"all": p.all or None, "size": p.size or None,
                              "filters": filters_param(p.filter)}
    if p.latest:
        params["limit"] = 1
    elif p.last is not None and p.last > 0:
        params["limit"] = p.last
    containers = ctx.client.get("/containers/json", params) or []
    if p.quiet:
        for c in containers:
            ctx.print(c["Id"] if p.no_trunc else fmt.short_id(c["Id"]))
        return 0
    rows = [container_row(c, not p.no_trunc) for c in containers]
    cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"] + (["Size"] if p.size else [])
    ctx.out.write(fmt.listing(p.format, rows, PS_HEADERS, cols))
    return 0


# ------------------------------------------------------------------ logs
LOGS = Spec("logs", "[OPTIONS] CONTAINER", [
    Flag("details", BOOL, help="Show extra details provided to logs"),
    Flag("follow", BOOL, "f", help="Follow log output"),
    Flag("since", STR, help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    Flag("tail", STR, "n", default="all", help='Number of lines to show from the end of the logs (default "all")'),
    Flag("timestamps", BOOL, "t", help="Show timestamps"),
    Flag("until", STR, help="Show logs before a timestamp or relative"),
], min_args=1, max_args=1, help="Fetch the logs of a container")


def timestamp_param(value: str, flag: str, now: float | None = None) -> str:
    """Docker's GetTimestamp: a Go duration before now, a unix time, or an RFC 3339 date."""
    import re

    from berth.cli.flagvalues import duration_ns

    now = time.time() if now is None else now
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return v
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", v):
        t = now - duration_ns(v, flag) / 1e9
        return f"{t:.9f}"
    t = fmt.parse_time(v if ("T" in v or " " in v) else v + "T00:00:00Z")
    if t is None and "T" in v and not re.search(r"(Z|[+-]\d\d:\d\d)$", v):
        t = fmt.parse_time(v + "Z")
    if t is None:
        raise UsageError(f'invalid value for "{flag}": failed to parse value as time or duration: "{value}"')
    return f"{t:.9f}"


def cmd_logs(ctx: Context, p: Parsed) -> int:
    from berth.cli.streams import copy_logs

    info = inspect_container(ctx, p.args[0])
    tty = bool((info.get("Config") or {}).get("Tty"))
    params: dict[str, Any] = {"stdout": True, "stderr": True, "follow": p.follow or None,
                              "timestamps": p.timestamps or None, "details": p.details or None,
                              "tail": p.tail if p.tail not in (None, "") else "all"}
    if p.since:
        params["since"] = timestamp_param(p.since, "--since")
    if p.until:
        params["until"] = timestamp_param(p.until, "--until")
    resp = ctx.client.get(f"/containers/{info['Id']}/logs", params, stream=True)
    try:
        copy_logs(resp, tty, sys.stdout.buffer, sys.stderr.buffer)
    finally:
        resp.close()
    return 0


# ------------------------------------------------------------------ wait / top / rename / pause
WAIT = Spec("wait", "CONTAINER [CONTAINER...]", [], min_args=1,
            help="Block until one or more containers stop, then print their exit codes")


def cmd_wait(ctx: Context, p: Parsed) -> int:
    def wait(name: str) -> str:
        res = ctx.client.post(f"/containers/{path_part(name)}/wait")
        return str(res.get("StatusCode", 0))
    return ctx.for_each(p.args, wait)


TOP = Spec("top", "CONTAINER [ps OPTIONS]", [], min_args=1, interspersed=False,
           help="Display the running processes of a container")


def cmd_top(ctx: Context, p: Parsed) -> int:
    params = {"ps_args": " ".join(p.args[1:])} if len(p.args) > 1 else None
    res = ctx.client.get(f"/containers/{path_part(p.args[0])}/top", params)
    ctx.out.write(fmt.table(res.get("Titles") or [], res.get("Processes") or [], min_width=20))
    return 0


RENAME = Spec("rename", "CONTAINER NEW_NAME", [], min_args=2, max_args=2, help="Rename a container")


def cmd_rename(ctx: Context, p: Parsed) -> int:
    old, new = p.args
    if not new.strip().lstrip("/"):
        raise CLIError("Error: Neither old nor new names may be empty")
    ctx.client.post(f"/containers/{path_part(old)}/rename", {"name": new})
    return 0


PAUSE = Spec("pause", "CONTAINER [CONTAINER...]", [], min_args=1,
             help="Pause all processes within one or more containers")
UNPAUSE = Spec("unpause", "CONTAINER [CONTAINER...]", [], min_args=1,
               help="Unpause all processes within one or more containers")


def _simple(action: str):  # type: ignore[no-untyped-def]
    def handler(ctx: Context, p: Parsed) -> int:
        return post_each(ctx, p.args, action)
    return handler


# ------------------------------------------------------------------ port
PORT = Spec("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", [], min_args=1, max_args=2,
            help="List port mappings or a specific mapping for the container")


def port_lines(ports: dict[str, Any] | None, want: str | None = None) -> list[str]:
    out = []
    items = sorted((ports or {}).items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0]))
    if want:
        key = want if "/" in want else f"{want}/tcp"
        bindings = (ports or {}).get(key)
        if not bindings:
            raise CLIError(f"Error: No public port '{key}' published for the container")
        return [f"{'[' + b.get('HostIp') + ']' if ':' in (b.get('HostIp') or '') else (b.get('HostIp') or '0.0.0.0')}:{b.get('HostPort')}"
                for b in bindings]
    for key, bindings in items:
        for b in bindings or []:
            ip = b.get("HostIp") or "0.0.0.0"
            ip = f"[{ip}]" if ":" in ip else ip
            out.append(f"{key} -> {ip}:{b.get('HostPort')}")
    return out


def cmd_port(ctx: Context, p: Parsed) -> int:
    info = inspect_container(ctx, p.args[0])
    ports = (info.get("NetworkSettings") or {}).get("Ports")
    for line in port_lines(ports, p.args[1] if len(p.args) > 1 else None):
        ctx.print(line)
    return 0


# ------------------------------------------------------------------ stats
STATS = Spec("stats", "[OPTIONS] [CONTAINER...]", [
    Flag("all", BOOL, "a", help="Show all containers (default shows just running)"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("no-stream", BOOL, help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", BOOL, help="Do not truncate output"),
], help="Display a live stream of container(s) resource usage statistics")

STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def stats_row(s: dict[str, Any], name: str, ident: str) -> dict[str, Any]:
    cpu = s.get("cpu_stats") or {}
    pre = s.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - \
        ((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_pct = (cpu_delta / sys_delta) * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    mstats = mem.get("stats") or {}
    usage = mem.get("usage") or 0
    cache = mstats.get("total_inactive_file", mstats.get("inactive_file", 0)) or 0
    if cache < usage:
        usage -= cache
    limit = mem.get("limit") or 0
    mem_pct = usage / limit * 100.0 if limit else 0.0
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes") or 0
        tx += n.get("tx_bytes") or 0
    rd = wr = 0
    for e in ((s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []):
        op = (e.get("op") or "").lower()
        if op == "read":
            rd += e.get("value") or 0
        elif op == "write":
            wr += e.get("value") or 0
    pids = (s.get("pids_stats") or {}).get("current")
    return {
        "Container": name or ident, "ID": ident, "Name": name,
        "CPUPerc": f"{cpu_pct:.2f}%",
        "MemUsage": f"{fmt.bytes_size(usage)} / {fmt.bytes_size(limit)}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": f"{fmt.human_size(rx, 3)} / {fmt.human_size(tx, 3)}",
        "BlockIO": f"{fmt.human_size(rd, 3)} / {fmt.human_size(wr, 3)}",
        "PIDs": str(pids if pids is not None else 0),
    }


def _stats_once(ctx: Context, p: Parsed) -> str:
    if p.args:
        targets = [(name, None) for name in p.args]
    else:
        targets = [(fmt.container_names(c.get("Names")), c["Id"])
                   for c in ctx.client.get("/containers/json", {"all": p.all or None}) or []]
    rows = []
    for name, cid in targets:
        ident = cid or name
        try:
            s = ctx.client.get(f"/containers/{path_part(ident)}/stats", {"stream": False})
        except CLIError:
            if p.args:
                raise
            continue
        cname = (s.get("name") or name or "").lstrip("/")
        full_id = s.get("id") or cid or ident
        rows.append(stats_row(s, cname, full_id if p.no_trunc else fmt.short_id(full_id)))
    cols = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
    return fmt.listing(p.format, rows, STATS_HEADERS, cols)


def cmd_stats(ctx: Context, p: Parsed) -> int:
    if p.no_stream:
        ctx.out.write(_stats_once(ctx, p))
        return 0
    tty = ctx.out.isatty()
    while True:
        text = _stats_once(ctx, p)
        if tty:
            ctx.out.write("\x1b[2J\x1b[H")
        ctx.out.write(text)
        ctx.out.flush()
        time.sleep(1)


# ------------------------------------------------------------------ inspect / prune
INSPECT = Spec("container inspect", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
    Flag("size", BOOL, "s", help="Display total file sizes"),
], min_args=1, help="Display detailed information on one or more containers")


def cmd_inspect(ctx: Context, p: Parsed) -> int:
    from berth.cli.commands.system import inspect_each

    return inspect_each(ctx, p.args, lambda name: (f"/containers/{path_part(name)}/json", {"size": p.size or None}), p.format)


PRUNE = Spec("container prune", "[OPTIONS]", [
    Flag("filter", LIST, shows="filter", help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
], max_args=0, help="Remove all stopped containers")


def cmd_prune(ctx: Context, p: Parsed) -> int:
    if not confirmed(ctx, p.force, "WARNING! This will remove all stopped containers."):
        return 0
    print_reclaimed(ctx, prune(ctx, "containers", {"filters": filters_param(p.filter)}))
    return 0


# ------------------------------------------------------------------ cp / diff / commit / export
CP = Spec("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", [
    Flag("archive", BOOL, "a", help="Archive mode (copy all uid/gid information)"),
    Flag("follow-link", BOOL, "L", help="Always follow symbol link in SRC_PATH"),
    Flag("quiet", BOOL, "q", help="Suppress progress output during copy"),
], min_args=2, max_args=2, help="Copy files/folders between a container and the local filesystem")


def _split_cp(arg: str) -> tuple[str | None, str]:
    if arg.startswith((".", "/")) or ":" not in arg:
        return None, arg
    c, _, path = arg.partition(":")
    return c, path


def _container_path_is_dir(ctx: Context, container: str, path: str) -> bool:
    """HEAD /containers/{id}/archive: the X-Docker-Container-Path-Stat header (base64 JSON)
    carries the path's Go file mode, whose top bit marks a directory."""
    import base64
    import json

    try:
        resp = ctx.client.request("HEAD", f"/containers/{path_part(container)}/archive", {"path": path},
                                  stream=True)
    except CLIError:
        return False
    resp.close()
    raw = resp.headers.get("x-docker-container-path-stat")
    if not raw:
        return path.endswith("/")
    try:
        stat = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return path.endswith("/")
    return bool(int(stat.get("mode", 0)) & (1 << 31))


def cmd_cp(ctx: Context, p: Parsed) -> int:
    import io
    import os
    import tarfile

    (sc, src), (dc, dst) = _split_cp(p.args[0]), _split_cp(p.args[1])
    if sc and dc:
        raise CLIError("copying between containers is not supported")
    if not sc and not dc:
        raise CLIError("must specify at least one container source")
    if sc:
        resp = ctx.client.get(f"/containers/{path_part(sc)}/archive", {"path": src}, stream=True)
        data = resp.read()
        if dst == "-":
            sys.stdout.buffer.write(data)
            return 0
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            if not members:
                return 0
            top = members[0].name.split("/")[0]
            if os.path.isdir(dst):
                tar.extractall(dst, filter="tar" if p.archive else "data")
            else:
                parent = os.path.dirname(os.path.abspath(dst)) or "."
                if not os.path.isdir(parent):
                    raise CLIError(f'invalid output path: directory "{parent}" does not exist')
                for m in members:
                    rel = m.name[len(top):].lstrip("/")
                    m.name = os.path.join(os.path.basename(dst), rel) if rel else os.path.basename(dst)
                tar.extractall(parent, members=members, filter="tar" if p.archive else "data")
        if not p.quiet:
            ctx.warn(f"Successfully copied {fmt.human_size(len(data), 3)} to {dst}")
        return 0
    if src == "-":
        body = sys.stdin.buffer.read()
        ctx.client.request("PUT", f"/containers/{path_part(dc or '')}/archive", {"path": dst}, body,
                           headers={"Content-Type": "application/x-tar"})
        return 0
    if not os.path.exists(src):
        raise CLIError(f"lstat {os.path.abspath(src)}: no such file or directory")
    buf = io.BytesIO()
    target_dir, name = dst, os.path.basename(os.path.normpath(src))
    # Copy into DEST if it is an existing directory, else DEST is the new name.
    is_dir = _container_path_is_dir(ctx, dc or "", dst)
    if not is_dir:
        target_dir, name = os.path.dirname(dst.rstrip("/")) or "/", os.path.basename(dst.rstrip("/"))
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(src, arcname=name)
    ctx.client.request("PUT", f"/containers/{path_part(dc or '')}/archive", {"path": target_dir},
                       buf.getvalue(), headers={"Content-Type": "application/x-tar"})
    if not p.quiet:
        ctx.warn(f"Successfully copied {fmt.human_size(len(buf.getvalue()), 3)} to {dc}:{dst}")
    return 0


DIFF = Spec("diff", "CONTAINER", [], min_args=1, max_args=1,
            help="Inspect changes to files or directories on a container's filesystem")


def cmd_diff(ctx: Context, p: Parsed) -> int:
    changes = ctx.client.get(f"/containers/{path_part(p.args[0])}/changes") or []
    for c in changes:
        ctx.print(f"{'CAD'[c.get('Kind', 0)] if c.get('Kind', 0) in (0, 1, 2) else '?'} {c.get('Path')}")
    return 0


COMMIT = Spec("commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", [
    Flag("author", STR, "a", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
    Flag("change", LIST, "c", help="Apply Dockerfile instruction to the created image"),
    Flag("message", STR, "m", help="Commit message"),
    Flag("pause", BOOL, "p", default=True, help="Pause container during commit"),
], min_args=1, max_args=2, help="Create a new image from a container's changes")


def cmd_commit(ctx: Context, p: Parsed) -> int:
    params: dict[str, Any] = {"container": p.args[0], "author": p.author, "comment": p.message,
                              "pause": p.pause, "changes": p.change or None}
    if len(p.args) > 1:
        ref = p.args[1]
        slash, colon = ref.rfind("/"), ref.rfind(":")
        if colon > slash:
            params["repo"], params["tag"] = ref[:colon], ref[colon + 1:]
        else:
            params["repo"] = ref
    res = ctx.client.post("/commit", params)
    ctx.print(res.get("Id", ""))
    return 0


EXPORT = Spec("export", "[OPTIONS] CONTAINER", [
    Flag("output", STR, "o", help="Write to a file, instead of STDOUT"),
], min_args=1, max_args=1, help="Export a container's filesystem as a tar archive")


def cmd_export(ctx: Context, p: Parsed) -> int:
    if not p.output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = ctx.client.get(f"/containers/{path_part(p.args[0])}/export", stream=True)
    try:
        if p.output:
            with open(p.output, "wb") as fh:
                for chunk in resp.chunks():
                    fh.write(chunk)
        else:
            for chunk in resp.chunks():
                sys.stdout.buffer.write(chunk)
    finally:
        resp.close()
    return 0


UPDATE = Spec("update", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("blkio-weight", UINT16, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    Flag("cpu-period", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", INT, help="Limit the CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", INT, help="Limit the CPU real-time runtime in microseconds"),
    Flag("cpu-shares", INT, "c", help="CPU shares (relative weight)"),
    Flag("cpus", "decimal", help="Number of CPUs"),
    Flag("cpuset-cpus", STR, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", STR, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("kernel-memory", STR, hidden=True),   # hidden in docker's help too (deprecated)
    Flag("memory", STR, "m", shows="bytes", help="Memory limit"),
    Flag("memory-reservation", STR, shows="bytes", help="Memory soft limit"),
    Flag("memory-swap", STR, shows="bytes", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("pids-limit", INT, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("restart", STR, help="Restart policy to apply when a container exits"),
], min_args=1, help="Update configuration of one or more containers")

# update flags whose value goes to the body as it is: dest -> UpdateConfig field
_UPDATE_AS_IS = {"blkio_weight": "BlkioWeight", "cpu_period": "CpuPeriod", "cpu_quota": "CpuQuota",
                 "cpu_rt_period": "CpuRealtimePeriod", "cpu_rt_runtime": "CpuRealtimeRuntime",
                 "cpu_shares": "CpuShares", "cpuset_cpus": "CpusetCpus", "cpuset_mems": "CpusetMems",
                 "pids_limit": "PidsLimit"}


def cmd_update(ctx: Context, p: Parsed) -> int:
    from berth.cli.flagvalues import parse_restart, ram_in_bytes, swap_in_bytes

    body: dict[str, Any] = {field: p.opts[dest] for dest, field in _UPDATE_AS_IS.items() if dest in p.given}
    if p.cpus is not None:
        body["NanoCpus"] = int(round(p.cpus * 1e9))
    if p.memory:
        body["Memory"] = ram_in_bytes(p.memory)
    if p.memory_reservation:
        body["MemoryReservation"] = ram_in_bytes(p.memory_reservation, "--memory-reservation")
    if p.kernel_memory:   # sent as docker's update sends it (its create drops it)
        body["KernelMemory"] = ram_in_bytes(p.kernel_memory, "--kernel-memory")
    if p.memory_swap:
        body["MemorySwap"] = swap_in_bytes(p.memory_swap)
    if p.restart:
        body["RestartPolicy"] = parse_restart(p.restart)
    if not p.given:
        raise UsageError("you must provide one or more flags when using this command")

    def update(name: str) -> str:
        res = ctx.client.post(f"/containers/{path_part(name)}/update", body=body) or {}
        for w in res.get("Warnings") or []:
            ctx.warn(f"WARNING: {w}")
        return name
    return ctx.for_each(p.args, update)


COMMANDS = {
    "stop": (STOP, cmd_stop), "restart": (RESTART, cmd_restart), "kill": (KILL, cmd_kill),
    "rm": (RM, cmd_rm), "ps": (PS, cmd_ps), "logs": (LOGS, cmd_logs), "wait": (WAIT, cmd_wait),
    "top": (TOP, cmd_top), "rename": (RENAME, cmd_rename), "pause": (PAUSE, _simple("pause")),
    "unpause": (UNPAUSE, _simple("unpause")), "port": (PORT, cmd_port), "stats": (STATS, cmd_stats),
    "inspect": (INSPECT, cmd_inspect), "prune": (PRUNE, cmd_prune), "cp": (CP, cmd_cp),
    "diff": (DIFF, cmd_diff), "commit": (COMMIT, cmd_commit), "export": (EXPORT, cmd_export),
    "update": (UPDATE, cmd_update),
}
