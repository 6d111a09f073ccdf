"""version, info, inspect (any object), system df/prune, events."""

from __future__ import annotations

import os
import sys

from berth.cli import format as fmt
from berth.cli import wirejson
from berth.cli.client import API_VERSION, CLIError, DaemonError, path_part
from berth.cli.commands.common import confirmed, filters_param, print_json, print_reclaimed, prune
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, Flag, Parsed, Spec

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def show_inspected(ctx: Context, objs: list[Any], template: str | None) -> None:
    if template:
        from berth.cli.template import Template, TemplateError

        try:
            t = Template(template.replace("\\n", "\n").replace("\\t", "\t"))
            for o in objs:
                ctx.print(t.render(o))
        except TemplateError as exc:
            raise CLIError(str(exc)) from None
        return
    print_json(ctx, objs)


def inspect_each(ctx: Context, names: list[str], request: Callable[[str], tuple[str, dict[str, Any] | None]],
                 template: str | None) -> int:
    """`docker X inspect`: fetch each name's object (`request(name) -> (path, params)`), show
    those found, warn for the others; exit 1 when any was missing."""
    objs = []
    failed = False
    for name in names:
        path, params = request(name)
        try:
            objs.append(ctx.client.get(path, params))
        except CLIError as exc:
            failed = True
            ctx.warn(f"berth: {exc}")
    show_inspected(ctx, objs, template)
    return 1 if failed else 0


# ------------------------------------------------------------------ inspect
INSPECT = Spec("inspect", "[OPTIONS] NAME|ID [NAME|ID...]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
    Flag("size", BOOL, "s", help="Display total file sizes if the type is container"),
    Flag("type", STR, help="Return JSON for specified type"),
], min_args=1, help="Return low-level information on berth objects")

_KINDS = {
    "container": lambda n, size: ("/containers/" + path_part(n) + "/json", {"size": size or None}),
    "image": lambda n, size: ("/images/" + path_part(n) + "/json", None),
    "network": lambda n, size: ("/networks/" + path_part(n), None),
    "volume": lambda n, size: ("/volumes/" + path_part(n), None),
}


def cmd_inspect(ctx: Context, p: Parsed) -> int:
    kinds = list(_KINDS)
    if p.type:
        if p.type not in _KINDS:
            raise CLIError(f'"{p.type}" is not a valid value for --type')
        kinds = [p.type]
    objs = []
    failed = False
    for name in p.args:
        for kind in kinds:
            path, params = _KINDS[kind](name, p.size)
            try:
                objs.append(ctx.client.get(path, params))
                break
            except DaemonError as exc:
                if exc.http_status not in (404, 400):
                    raise
        else:
            failed = True
            ctx.warn(f"berth: Error: No such {p.type or 'object'}: {name}")
    show_inspected(ctx, objs, p.format)
    return 1 if failed else 0


# ------------------------------------------------------------------ version / info
VERSION = Spec("version", "[OPTIONS]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
], max_args=0, help="Show the berth version information")


def cmd_version(ctx: Context, p: Parsed) -> int:
    from berth import __version__

    client_info = {"Platform": {"Name": "berth"}, "Version": __version__, "ApiVersion": API_VERSION,
                   "DefaultAPIVersion": API_VERSION, "GoVersion": f"python{_python_version()}",
                   "Os": sys.platform, "Arch": os.uname().machine}
    server: dict[str, Any] | None = None
    server_err = None
    try:
        server = ctx.client.get("/version")
    except CLIError as exc:
        server_err = exc
    data = {"Client": client_info, "Server": server}
    if p.format:
        show_inspected(ctx, [data], p.format)
    else:
        lines = ["Client:", f" Version:           {__version__}", f" API version:       {API_VERSION}",
                 f" Python version:    {_python_version()}", f" OS/Arch:           linux/{_arch()}"]
        if server:
            lines += ["", f"Server: {(server.get('Platform') or {}).get('Name') or 'berth'}",
                      " Engine:",
                      f"  Version:          {server.get('Version', '')}",
                      f"  API version:      {server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})",
                      f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}"]
            for comp in server.get("Components") or []:
                if comp.get("Name") and comp.get("Name") != "Engine":
                    lines += [f" {comp['Name']}:", f"  Version:          {comp.get('Version', '')}"]
        ctx.print("\n".join(lines))
    if server_err is not None:
        raise server_err
    return 0


def _python_version() -> str:
    """platform.python_version() without importing platform (~1.3 ms): "3.11.2"."""
    return sys.version.split()[0]


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


INFO = Spec("info", "[OPTIONS]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
], max_args=0, help="Display system-wide information")


def cmd_info(ctx: Context, p: Parsed) -> int:
    info = ctx.client.get("/info") or {}
    if p.format:
        show_inspected(ctx, [info], p.format)
        return 0
    rows = [
        ("Containers", info.get("Containers")), (" Running", info.get("ContainersRunning")),
        (" Paused", info.get("ContainersPaused")), (" Stopped", info.get("ContainersStopped")),
        ("Images", info.get("Images")), ("Server Version", info.get("ServerVersion")),
        ("Storage Driver", info.get("Driver")), ("Logging Driver", info.get("LoggingDriver")),
        ("Cgroup Driver", info.get("CgroupDriver")), ("Cgroup Version", info.get("CgroupVersion")),
        ("Default Runtime", info.get("DefaultRuntime")), ("Kernel Version", info.get("KernelVersion")),
        ("Operating System", info.get("OperatingSystem")), ("OSType", info.get("OSType")),
        ("Architecture", info.get("Architecture")), ("CPUs", info.get("NCPU")),
        ("Total Memory", fmt.bytes_size(info["MemTotal"]) if info.get("MemTotal") else None),
        ("Name", info.get("Name")), ("ID", info.get("ID")),
        ("Berth Root Dir", info.get("DockerRootDir")), ("Debug Mode", info.get("Debug")),
    ]
    lines = ["Client:", f" Version:    {_client_version()}", f" Context:    {ctx.host}", "",
             "Server:"]
    for k, v in rows:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append(f" {k}: {v}")
    mirrors = (info.get("RegistryConfig") or {}).get("Mirrors") or []
    insecure = (info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    if insecure:
        lines.append(" Insecure Registries:")
        lines += [f"  {r}" for r in insecure]
    if mirrors:
        lines.append(" Registry Mirrors:")
        lines += [f"  {m}" for m in mirrors]
    ctx.print("\n".join(lines))
    for w in info.get("Warnings") or []:
        ctx.warn(w)
    return 0


def _client_version() -> str:
    from berth import __version__

    return __version__


# ------------------------------------------------------------------ system df / prune
DF = Spec("system df", "[OPTIONS]", [
    Flag("format", STR, help="Format output using a custom template"),
    Flag("verbose", BOOL, "v", help="Show detailed information on space usage"),
], max_args=0, help="Show berth disk usage")


def _reclaim(part: int, total: int, percent: bool = True) -> str:
    if percent and total > 0:
        return f"{fmt.human_size(part)} ({part * 100 // total}%)"
    return fmt.human_size(part)


def df_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """`system df` rows computed as the docker CLI computes them from GET /system/df."""
    images = d.get("Images") or []
    containers = d.get("Containers") or []
    volumes = d.get("Volumes") or []
    cache = d.get("BuildCache") or []
    img_total = d.get("LayersSize")
    if img_total is None:
        img_total = sum(i.get("Size") or 0 for i in images)
    used = 0
    for i in images:
        if (i.get("Containers") or 0) != 0 and (i.get("Size") or 0) != -1 and (i.get("SharedSize") or 0) != -1:
            used += (i.get("Size") or 0) - max(i.get("SharedSize") or 0, 0)
    c_total = sum(c.get("SizeRw") or 0 for c in containers)
    c_reclaim = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") != "running")
    v_sizes = [((v.get("UsageData") or {}).get("Size") or 0) for v in volumes]
    v_total = sum(s for s in v_sizes if s > 0)
    v_reclaim = sum(s for v, s in zip(volumes, v_sizes, strict=True)
                    if s > 0 and ((v.get("UsageData") or {}).get("RefCount") or 0) == 0)
    b_total = sum(b.get("Size") or 0 for b in cache if not b.get("Shared"))
    b_reclaim = sum(b.get("Size") or 0 for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": len(images),
         "Active": sum(1 for i in images if (i.get("Containers") or 0) > 0),
         "Size": fmt.human_size(img_total), "Reclaimable": _reclaim(img_total - used, img_total)},
        {"Type": "Containers", "TotalCount": len(containers),
         "Active": sum(1 for c in containers if c.get("State") == "running"),
         "Size": fmt.human_size(c_total), "Reclaimable": _reclaim(c_reclaim, c_total)},
        {"Type": "Local Volumes", "TotalCount": len(volumes),
         "Active": sum(1 for v in volumes if ((v.get("UsageData") or {}).get("RefCount") or 0) > 0),
         "Size": fmt.human_size(v_total), "Reclaimable": _reclaim(v_reclaim, v_total)},
        {"Type": "Build Cache", "TotalCount": len(cache),
         "Active": sum(1 for b in cache if b.get("InUse")),
         "Size": fmt.human_size(b_total), "Reclaimable": _reclaim(b_reclaim, b_total, percent=False)},
    ]


def cmd_df(ctx: Context, p: Parsed) -> int:
    rows = df_rows(ctx.client.get("/system/df") or {})
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
    cols = ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
    ctx.out.write(fmt.listing(p.format, rows, headers, cols))
    return 0


PRUNE = Spec("system prune", "[OPTIONS]", [
    Flag("all", BOOL, "a", help="Remove all unused images not just dangling ones"),
    Flag("filter", LIST, shows="filter", help='Provide filter values (e.g. "label=<key>=<value>")'),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
    Flag("volumes", BOOL, help="Prune anonymous volumes"),
], max_args=0, help="Remove unused data")


def cmd_prune(ctx: Context, p: Parsed) -> int:
    what = ["all stopped containers", "all networks not used by at least one container"]
    if p.volumes:
        what.append("all anonymous volumes not used by at least one container")
    what.append("all images without at least one container associated to them" if p.all
                else "all dangling images")
    what.append("unused build cache")
    msg = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
    if not confirmed(ctx, p.force, msg.rstrip("\n")):
        return 0
    filters = filters_param(p.filter)
    total = prune(ctx, "containers", {"filters": filters})
    prune(ctx, "networks", {"filters": filters})   # networks free no space
    if p.volumes:
        total += prune(ctx, "volumes", {"filters": filters})
    img_filters = wirejson.loads(filters) if filters else {}
    img_filters["dangling"] = {"false" if p.all else "true": True}
    total += prune(ctx, "images", {"filters": wirejson.dumps(img_filters)})
    try:
        b = ctx.client.post("/build/prune", {"all": p.all or None}) or {}
        total += b.get("SpaceReclaimed") or 0
    except DaemonError as exc:
        if exc.http_status not in (404, 405, 501):
            raise
    print_reclaimed(ctx, total)
    return 0


BUILDER_PRUNE = Spec("builder prune", "[OPTIONS]", [
    Flag("all", BOOL, "a", help="Remove all unused build cache, not just dangling ones"),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
], max_args=0, help="Remove build cache")


def cmd_builder_prune(ctx: Context, p: Parsed) -> int:
    if not confirmed(ctx, p.force, "WARNING! This will remove all dangling build cache."):
        return 0
    b = ctx.client.post("/build/prune", {"all": p.all or None}) or {}
    print_reclaimed(ctx, b.get("SpaceReclaimed") or 0)
    return 0


# ------------------------------------------------------------------ events
EVENTS = Spec("events", "[OPTIONS]", [
    Flag("filter", LIST, "f", shows="filter", help="Filter output based on conditions provided"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("since", STR, help="Show all events created since timestamp"),
    Flag("until", STR, help="Stream events until this timestamp"),
], max_args=0, help="Get real time events from the server")


def cmd_events(ctx: Context, p: Parsed) -> int:
    import datetime

    from berth.cli.commands.containers import timestamp_param

    params: dict[str, Any] = {"filters": filters_param(p.filter)}
    if p.since:
        params["since"] = timestamp_param(p.since, "--since")
    if p.until:
        params["until"] = timestamp_param(p.until, "--until")
    resp = ctx.client.get("/events", params, stream=True)
    try:
        for ev in resp.json_stream():
            if p.format:
                show_inspected(ctx, [ev], p.format)
            else:
                t = ev.get("timeNano") or int((ev.get("time") or 0) * 1e9)
                when = datetime.datetime.fromtimestamp(t / 1e9).astimezone().isoformat(timespec="microseconds")
                actor = ev.get("Actor") or {}
                attrs = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
                ctx.print(f"{when} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
                          + (f" ({attrs})" if attrs else ""))
            ctx.out.flush()
    finally:
        resp.close()
    return 0


COMMANDS = {
    "inspect": (INSPECT, cmd_inspect), "version": (VERSION, cmd_version), "info": (INFO, cmd_info),
    "df": (DF, cmd_df), "prune": (PRUNE, cmd_prune), "builder_prune": (BUILDER_PRUNE, cmd_builder_prune),
    "events": (EVENTS, cmd_events),
}
