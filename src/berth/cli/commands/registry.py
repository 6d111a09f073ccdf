"""Registry commands: pull, push, search, login, logout."""

from __future__ import annotations

import os
import sys

from berth.cli import format as fmt
from berth.cli.client import CLIError
from berth.cli.commands.common import filters_param, registry_auth_header
from berth.cli.context import Context
from berth.cli.flags import BOOL, INT, LIST, STR, Flag, Parsed, Spec, UsageError

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any


def _auth_store(ctx: Context):  # type: ignore[no-untyped-def]
    from berth.registry.auth_config import AuthConfigFile

    return AuthConfigFile(os.path.join(ctx.config_dir, "config.json"))


def _stream(ctx: Context, resp: Any, quiet: bool) -> None:
    from berth.cli import progress

    msgs = resp.json_stream()
    if quiet:
        msgs = (m for m in msgs if m.get("error") or m.get("errorDetail"))
    try:
        progress.display(msgs, ctx.out, terminal=ctx.out.isatty())
    finally:
        resp.close()


# ------------------------------------------------------------------ pull
PULL = Spec("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", [
    Flag("all-tags", BOOL, "a", help="Download all tagged images in the repository"),
    Flag("disable-content-trust", BOOL, default=True, help="Skip image verification"),
    Flag("platform", STR, help="Set platform if server is multi-platform capable"),
    Flag("quiet", BOOL, "q", help="Suppress verbose output"),
], min_args=1, max_args=1, help="Download an image from a registry")


def cmd_pull(ctx: Context, p: Parsed) -> int:
    from berth.cli.refs import _parse

    name = p.args[0]
    ref = _parse(name, default_tag=False)
    params: dict[str, Any] = {"platform": p.platform}
    if p.all_tags:
        if ref.tag or ref.digest:
            raise UsageError("tag can't be used with --all-tags/-a")
        params["fromImage"] = ref.familiar_name
    else:
        if not ref.tag and not ref.digest:
            if not p.quiet:
                ctx.print("Using default tag: latest")
            ref = ref.with_tag("latest")
        params["fromImage"] = ref.familiar_name
        params["tag"] = ref.digest or ref.tag   # as the docker CLI sends a digest
    resp = ctx.client.post("/images/create", params, headers=registry_auth_header(ctx, name), stream=True)
    _stream(ctx, resp, p.quiet)
    ctx.print(ref.name if p.all_tags else ref.full)
    return 0


# ------------------------------------------------------------------ push
PUSH = Spec("push", "[OPTIONS] NAME[:TAG]", [
    Flag("all-tags", BOOL, "a", help="Push all tags of an image to the repository"),
    Flag("disable-content-trust", BOOL, default=True, help="Skip image signing"),
    Flag("platform", STR, help="Push a platform-specific manifest"),
    Flag("quiet", BOOL, "q", help="Suppress verbose output"),
], min_args=1, max_args=1, help="Upload an image to a registry")


def cmd_push(ctx: Context, p: Parsed) -> int:
    from berth.cli.refs import _parse

    name = p.args[0]
    ref = _parse(name, default_tag=False)
    if p.all_tags and (ref.tag or ref.digest):
        raise UsageError("tag can't be used with --all-tags/-a")
    if ref.digest:
        raise CLIError("cannot push a digest reference")
    if not p.all_tags and not ref.tag:
        if not p.quiet:
            ctx.print("Using default tag: latest")
        ref = ref.with_tag("latest")
    from berth.registry.auth_config import encode_registry_auth

    headers = registry_auth_header(ctx, name) or {"X-Registry-Auth": encode_registry_auth({})}
    from berth.cli.client import path_part

    resp = ctx.client.post(f"/images/{path_part(ref.familiar_name)}/push",
                           {"tag": ref.tag if not p.all_tags else None, "platform": p.platform},
                           headers=headers, stream=True)
    _stream(ctx, resp, p.quiet)
    if p.quiet:
        ctx.print(ref.full if ref.tag else ref.name)
    return 0


# ------------------------------------------------------------------ search
SEARCH = Spec("search", "[OPTIONS] TERM", [
    Flag("filter", LIST, "f", shows="filter", help="Filter output based on conditions provided"),
    Flag("format", STR, help="Pretty-print search using a Go template"),
    Flag("limit", INT, help="Max number of search results"),
    Flag("no-trunc", BOOL, help="Don't truncate output"),
], min_args=1, max_args=1, help="Search a registry for images")

SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                  "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}


def search_rows(results: list[dict[str, Any]], trunc: bool) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        desc = (r.get("description") or "").replace("\n", " ").replace("\r", " ")
        if trunc:
            desc = fmt.ellipsis(desc, 45)
        rows.append({"Name": r.get("name", ""), "Description": desc,
                     "StarCount": str(r.get("star_count") or 0),
                     "IsOfficial": "[OK]" if r.get("is_official") else "",
                     "IsAutomated": "[OK]" if r.get("is_automated") else ""})
    return rows


def cmd_search(ctx: Context, p: Parsed) -> int:
    for f in p.filter:
        k, _, v = f.partition("=")
        if k not in ("is-official", "is-automated", "stars"):
            raise CLIError(f"Error response from daemon: invalid filter '{k}'")
        if k == "stars":
            try:
                int(v)
            except ValueError:
                raise CLIError(f"Error response from daemon: invalid filter 'stars={v}'") from None
    if p.limit is not None and not 1 <= p.limit <= 100:
        raise CLIError("Error response from daemon: limit 0 is outside the range of [1, 100]"
                       if p.limit == 0 else f"Error response from daemon: limit {p.limit} is outside the range of [1, 100]")
    term = p.args[0]
    results = ctx.client.get("/images/search", {"term": term, "limit": p.limit,
                                                "filters": filters_param(p.filter)},
                             headers=registry_auth_header(ctx, term)) or []
    rows = search_rows(results, not p.no_trunc)
    cols = ["Name", "Description", "StarCount", "IsOfficial"]
    ctx.out.write(fmt.listing(p.format, rows, SEARCH_HEADERS, cols))
    return 0


# ------------------------------------------------------------------ login / logout
LOGIN = Spec("login", "[OPTIONS] [SERVER]", [
    Flag("password", STR, "p", help="Password or Personal Access Token (PAT)"),
    Flag("password-stdin", BOOL, help="Take the Password or Personal Access Token (PAT) from stdin"),
    Flag("username", STR, "u", help="Username"),
], max_args=1, help="Log in to a registry (docker.io if no server is given)")


def _server_address(server: str | None) -> str:
    from berth.registry.auth_config import HUB_KEY, server_key

    return HUB_KEY if server_key(server) == HUB_KEY else (server or "").removeprefix("https://").removeprefix("http://").rstrip("/")


def cmd_login(ctx: Context, p: Parsed) -> int:
    server = p.args[0] if p.args else None
    address = _server_address(server)
    username = p.username or ""
    password = p.password or ""
    if p.password:
        ctx.warn("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if p.password_stdin:
        if p.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    store = _auth_store(ctx)
    if not username or not password:
        stored = None
        try:
            stored = store.get(address)
        except Exception:  # noqa: BLE001 - fall back to prompting
            stored = None
        if stored and not p.username and not p.password and (stored.get("password") or stored.get("identitytoken")):
            # Docker re-validates stored credentials first.
            try:
                res = ctx.client.post("/auth", body={**stored, "serveraddress": address}) or {}
                ctx.print(res.get("Status") or "Login Succeeded")
                return 0
            except CLIError:
                pass
        if not sys.stdin.isatty():
            raise CLIError("Error: Cannot perform an interactive login from a non TTY device")
        if not username:
            sys.stderr.write("Username: ")
            sys.stderr.flush()
            username = sys.stdin.readline().strip()
            if not username:
                raise CLIError("Error: Non-null Username Required")
        if not password:
            import getpass

            password = getpass.getpass("Password: ")
            if not password:
                raise CLIError("Error: Password Required")
    res = ctx.client.post("/auth", body={"username": username, "password": password,
                                         "serveraddress": address}) or {}
    token = res.get("IdentityToken") or ""
    store.store(address, username, password, identitytoken=token)
    ctx.warn(f"WARNING! Your password will be stored unencrypted in {store.path}.")
    ctx.print(res.get("Status") or "Login Succeeded")
    return 0


LOGOUT = Spec("logout", "[SERVER]", [], max_args=1,
              help="Log out from a registry (docker.io if no server is given)")


def cmd_logout(ctx: Context, p: Parsed) -> int:
    from berth.registry.auth_config import HUB_KEY

    server = p.args[0] if p.args else None
    address = _server_address(server)
    shown = address if address != HUB_KEY else HUB_KEY
    store = _auth_store(ctx)
    if store.erase(address):
        ctx.print(f"Removing login credentials for {shown}")
    else:
        ctx.print(f"Not logged in to {shown}")
    return 0


COMMANDS = {
    "pull": (PULL, cmd_pull), "push": (PUSH, cmd_push), "search": (SEARCH, cmd_search),
    "login": (LOGIN, cmd_login), "logout": (LOGOUT, cmd_logout),
}
