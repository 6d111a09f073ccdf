"""volume create/ls/inspect/rm/prune."""

from __future__ import annotations

from berth.cli import format as fmt
from berth.cli.client import CLIError, path_part
from berth.cli.commands.common import confirmed, filters_param, print_reclaimed, prune
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, Flag, Parsed, Spec, UsageError

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

CREATE = Spec("volume create", "[OPTIONS] [VOLUME]", [
    Flag("driver", STR, "d", default="local", help="Specify volume driver name"),
    Flag("label", LIST, help="Set metadata for a volume"),
    Flag("name", STR, hidden=True, help="Specify volume name"),   # hidden in docker's help too
    Flag("opt", LIST, "o", shows="map", help="Set driver specific options"),
], max_args=1, help="Create a volume")


def _kv(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not k:
            raise UsageError(f"invalid {what}: {v!r}")
        out[k] = val
    return out


def cmd_create(ctx: Context, p: Parsed) -> int:
    if p.name and p.args:   # even when both say the same name, as docker refuses it
        raise CLIError("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
    name = p.args[0] if p.args else (p.name or "")
    body: dict[str, Any] = {"Name": name, "Driver": p.driver or "local",
                            "DriverOpts": _kv(p.opt, "option"), "Labels": _kv(p.label, "label")}
    res = ctx.client.post("/volumes/create", body=body) or {}
    ctx.print(res.get("Name", name))
    return 0


LS = Spec("volume ls", "[OPTIONS]", [
    Flag("filter", LIST, "f", shows="filter", help="Provide filter values (e.g. \"dangling=true\")"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("quiet", BOOL, "q", help="Only display volume names"),
    Flag("cluster", BOOL, hidden=True),
], max_args=0, help="List volumes")

VOL_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED AT"}


def cmd_ls(ctx: Context, p: Parsed) -> int:
    res = ctx.client.get("/volumes", {"filters": filters_param(p.filter)}) or {}
    vols = sorted(res.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    for w in res.get("Warnings") or []:
        ctx.warn(f"WARNING: {w}")
    if p.quiet:
        for v in vols:
            ctx.print(v.get("Name", ""))
        return 0
    rows = []
    for v in vols:
        usage = v.get("UsageData") or {}
        rows.append({"Driver": v.get("Driver", ""), "Name": v.get("Name", ""),
                     "Mountpoint": v.get("Mountpoint", ""), "Scope": v.get("Scope", "local"),
                     "Labels": ",".join(f"{k}={val}" for k, val in sorted((v.get("Labels") or {}).items())),
                     "Links": str(usage["RefCount"]) if usage.get("RefCount", -1) >= 0 else "N/A",
                     "Size": fmt.human_size(usage["Size"], 3) if usage.get("Size", -1) >= 0 else "N/A",
                     "CreatedAt": v.get("CreatedAt", "")})
    cols = ["Driver", "Name"]
    ctx.out.write(fmt.listing(p.format, rows, VOL_HEADERS, cols))
    return 0


INSPECT = Spec("volume inspect", "[OPTIONS] VOLUME [VOLUME...]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
], min_args=1, help="Display detailed information on one or more volumes")


def cmd_inspect(ctx: Context, p: Parsed) -> int:
    from berth.cli.commands.system import inspect_each

    return inspect_each(ctx, p.args, lambda name: (f"/volumes/{path_part(name)}", None), p.format)


RM = Spec("volume rm", "[OPTIONS] VOLUME [VOLUME...]", [
    Flag("force", BOOL, "f", help="Force the removal of one or more volumes"),
], min_args=1, help="Remove one or more volumes")


def cmd_rm(ctx: Context, p: Parsed) -> int:
    def rm(name: str) -> str:
        ctx.client.delete(f"/volumes/{path_part(name)}", {"force": p.force or None})
        return name
    return ctx.for_each(p.args, rm)


PRUNE = Spec("volume prune", "[OPTIONS]", [
    Flag("all", BOOL, "a", help="Remove all unused volumes, not just anonymous ones"),
    Flag("filter", LIST, shows="filter", help='Provide filter values (e.g. "label=<label>")'),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
], max_args=0, help="Remove unused local volumes")


def cmd_prune(ctx: Context, p: Parsed) -> int:
    import json

    warning = ("WARNING! This will remove all local volumes not used by at least one container."
               if p.all else "WARNING! This will remove anonymous local volumes not used by at least one container.")
    if not confirmed(ctx, p.force, warning):
        return 0
    f = filters_param(p.filter)
    filters = json.loads(f) if f else {}
    if p.all:
        filters["all"] = {"true": True}
    print_reclaimed(ctx, prune(ctx, "volumes", {"filters": json.dumps(filters) if filters else None}))
    return 0


COMMANDS = {
    "create": (CREATE, cmd_create), "ls": (LS, cmd_ls), "inspect": (INSPECT, cmd_inspect),
    "rm": (RM, cmd_rm), "prune": (PRUNE, cmd_prune),
}
