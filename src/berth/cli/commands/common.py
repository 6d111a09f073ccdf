"""Helpers shared by the command modules."""

from __future__ import annotations

from berth.cli import wirejson
from berth.cli.client import CLIError, DaemonError, path_part
from berth.cli.context import Context

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any


def inspect_container(ctx: Context, name: str) -> dict[str, Any]:
    return ctx.client.get(f"/containers/{path_part(name)}/json")


def post_each(ctx: Context, names: list[str], action: str, params: dict[str, Any] | None = None) -> int:
    """POST /containers/<name>/<action> for each name, printed once done, as docker's
    start/stop/kill/... do (a failure is reported and the others still go)."""
    def one(name: str) -> str:
        ctx.client.post(f"/containers/{path_part(name)}/{action}", params)
        return name
    return ctx.for_each(names, one)


def filters_param(values: list[str]) -> str | None:
    """`--filter k=v` (repeated) -> the filters JSON docker sends: {"k": {"v": true}}. As the
    docker CLI's FilterOpt: the name is trimmed and lower-cased, the value trimmed, an empty
    --filter ignored (one without `=` is refused by the flag parser)."""
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        if not v:
            continue
        k, eq, val = v.partition("=")
        if not eq:
            raise CLIError(f"bad format of filter (expected name=value): {v}")
        out.setdefault(k.strip().lower(), {})[val.strip()] = True
    return wirejson.dumps(out, compact=True) if out else None


def print_json(ctx: Context, data: Any) -> None:
    import json  # here: the json package costs ~7 ms of imports (see berth.cli.wirejson)

    ctx.print(json.dumps(data, indent=4, ensure_ascii=False))


def is_not_found(exc: CLIError) -> bool:
    return isinstance(exc, DaemonError) and exc.http_status == 404


def confirmed(ctx: Context, force: bool, warning: str) -> bool:
    """Whether a destructive command may go ahead: `--force`, or `y` at the prompt."""
    return force or ctx.confirm(warning)


def prune(ctx: Context, kind: str, params: dict[str, Any], blank_line: bool = True) -> int:
    """POST /<kind>/prune and print what went as `docker <kind> prune` does: `Deleted <Kind>:`,
    one line per item (image entries as `untagged: ref` / `deleted: sha256:...`), then an
    empty line unless `blank_line` is off. Returns the bytes reclaimed."""
    res = ctx.client.post(f"/{kind}/prune", params) or {}
    title = kind.capitalize()
    deleted = res.get(f"{title}Deleted") or []
    if deleted:
        ctx.print(f"Deleted {title}:")
        for d in deleted:
            if isinstance(d, dict):
                for k, v in d.items():
                    ctx.print(f"{k.lower()}: {v}")
            else:
                ctx.print(d)
        if blank_line:
            ctx.print("")
    return res.get("SpaceReclaimed") or 0


def print_reclaimed(ctx: Context, size: int) -> None:
    from berth.humanize import human_size  # here: run needs none of berth.cli.format's imports

    ctx.print(f"Total reclaimed space: {human_size(size)}")


def registry_auth_header(ctx: Context, image: str) -> dict[str, str]:
    """X-Registry-Auth for the registry an image reference lives on, from stored credentials."""
    try:
        from berth.cli.refs import registry_of
        from berth.registry.auth_config import AuthConfigFile, encode_registry_auth
    except ImportError:
        return {}
    import os

    try:
        creds = AuthConfigFile(os.path.join(ctx.config_dir, "config.json")).get(registry_of(image))
    except Exception as exc:  # noqa: BLE001 - a broken config file should not hide the real work
        ctx.warn(f"berth: WARNING: could not read stored credentials: {exc}")
        creds = None
    if not creds:
        return {}
    return {"X-Registry-Auth": encode_registry_auth(creds)}
