"""Image commands: images, tag, rmi, history, image inspect/prune, load, save, import."""

from __future__ import annotations

import os
import sys

from berth.cli import format as fmt
from berth.cli.client import CLIError, path_part
from berth.cli.commands.common import confirmed, filters_param, print_reclaimed, prune
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, Flag, Parsed, Spec

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

# ------------------------------------------------------------------ images / image ls
IMAGES = Spec("images", "[OPTIONS] [REPOSITORY[:TAG]]", [
    Flag("all", BOOL, "a", help="Show all images (default hides intermediate images)"),
    Flag("digests", BOOL, help="Show digests"),
    Flag("filter", LIST, "f", shows="filter", help="Filter output based on conditions provided"),
    Flag("format", STR, help="Format output using a custom template"),
    Flag("no-trunc", BOOL, help="Don't truncate output"),
    Flag("quiet", BOOL, "q", help="Only show image IDs"),
    Flag("tree", BOOL, hidden=True),
], max_args=1, help="List images")

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                 "VirtualSize": "VIRTUAL SIZE"}


def image_rows(images: list[dict[str, Any]], trunc: bool, digests: bool, now: float | None = None) -> list[dict[str, Any]]:
    """One row per (repository, tag) as `docker images` prints them; untagged as <none>."""
    import time as _time

    rows = []
    for im in images:
        iid = im.get("Id", "")
        shown_id = fmt.short_id(iid) if trunc else iid
        created = im.get("Created")
        base = {
            "ID": shown_id,
            "CreatedSince": fmt.ago(created, now) if created else "N/A",
            "CreatedAt": _time.strftime("%Y-%m-%d %H:%M:%S %z %Z", _time.localtime(int(created))) if created else "",
            "Size": fmt.human_size(im.get("Size") or 0, 3),
            "VirtualSize": fmt.human_size(im.get("VirtualSize") or im.get("Size") or 0, 3),
            "SharedSize": fmt.human_size(im["SharedSize"], 3) if (im.get("SharedSize") or -1) >= 0 else "N/A",
            "UniqueSize": "N/A",
            "Containers": str(im["Containers"]) if (im.get("Containers") or -1) >= 0 else "N/A",
        }
        digests_by_repo: dict[str, list[str]] = {}
        for rd in im.get("RepoDigests") or []:
            repo, _, dg = rd.rpartition("@")
            if repo and repo != "<none>":
                digests_by_repo.setdefault(repo, []).append(dg)
        tags = [t for t in (im.get("RepoTags") or []) if t and t != "<none>:<none>"]
        seen_repos: set[str] = set()
        for t in tags:
            slash, colon = t.rfind("/"), t.rfind(":")
            repo, tag = (t[:colon], t[colon + 1:]) if colon > slash else (t, "<none>")
            seen_repos.add(repo)
            ds = digests_by_repo.get(repo) or ["<none>"]
            rows.append({**base, "Repository": repo, "Tag": tag, "Digest": ds[0]})
        for repo, ds in digests_by_repo.items():
            if repo not in seen_repos:
                for dg in ds:
                    rows.append({**base, "Repository": repo, "Tag": "<none>", "Digest": dg})
        if not tags and not digests_by_repo:
            rows.append({**base, "Repository": "<none>", "Tag": "<none>", "Digest": "<none>"})
    return rows


def cmd_images(ctx: Context, p: Parsed) -> int:
    filters = list(p.filter)
    if p.args:
        filters.append(f"reference={p.args[0]}")
    images = ctx.client.get("/images/json", {"all": p.all or None, "digests": p.digests or None,
                                             "filters": filters_param(filters)}) or []
    rows = image_rows(images, not p.no_trunc, p.digests)
    if p.quiet:
        # one ID per row, as docker prints it: an image with two tags shows twice
        for r in rows:
            ctx.print(r["ID"])
        return 0
    cols = ["Repository", "Tag"] + (["Digest"] if p.digests else []) + ["ID", "CreatedSince", "Size"]
    ctx.out.write(fmt.listing(p.format, rows, IMAGE_HEADERS, cols))
    return 0


# ------------------------------------------------------------------ tag / rmi
TAG = Spec("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", [], min_args=2, max_args=2,
           help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")


def cmd_tag(ctx: Context, p: Parsed) -> int:
    from berth.cli.refs import _parse

    src, target = p.args
    ref = _parse(target, default_tag=True)
    if ref.digest:
        raise CLIError("refusing to create a tag with a digest reference")
    ctx.client.post(f"/images/{path_part(src)}/tag", {"repo": ref.familiar_name, "tag": ref.tag})
    return 0


RMI = Spec("rmi", "[OPTIONS] IMAGE [IMAGE...]", [
    Flag("force", BOOL, "f", help="Force removal of the image"),
    Flag("no-prune", BOOL, help="Do not delete untagged parents"),
], min_args=1, help="Remove one or more images")


def cmd_rmi(ctx: Context, p: Parsed) -> int:
    def rmi(name: str) -> str | None:
        res = ctx.client.delete(f"/images/{path_part(name)}", {"force": p.force or None,
                                                               "noprune": p.no_prune or None}) or []
        lines = []
        for item in res:
            if item.get("Untagged"):
                lines.append(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                lines.append(f"Deleted: {item['Deleted']}")
        return "\n".join(lines) if lines else None
    return ctx.for_each(p.args, rmi)


# ------------------------------------------------------------------ history / inspect / prune
HISTORY = Spec("history", "[OPTIONS] IMAGE", [
    Flag("format", STR, help="Format output using a custom template"),
    Flag("human", BOOL, "H", default=True, help="Print sizes and dates in human readable format"),
    Flag("no-trunc", BOOL, help="Don't truncate output"),
    Flag("quiet", BOOL, "q", help="Only show image IDs"),
    Flag("platform", STR, help="Show history for the given platform"),
], min_args=1, max_args=1, help="Show the history of an image")

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def cmd_history(ctx: Context, p: Parsed) -> int:
    import time as _time

    entries = ctx.client.get(f"/images/{path_part(p.args[0])}/history",
                             {"platform": p.platform}) or []
    trunc = not p.no_trunc
    rows = []
    for e in entries:
        iid = e.get("Id") or "<missing>"
        if iid != "<missing>" and trunc:
            iid = fmt.short_id(iid)
        created_by = (e.get("CreatedBy") or "").replace("\t", " ")
        if trunc:
            created_by = fmt.ellipsis(created_by, 45)
        created = e.get("Created")
        rows.append({
            "ID": iid,
            "CreatedSince": fmt.ago(created) if (p.human and created) else
            (_time.strftime("%Y-%m-%dT%H:%M:%S%z", _time.localtime(int(created))) if created else "N/A"),
            "CreatedAt": _time.strftime("%Y-%m-%dT%H:%M:%S%z", _time.localtime(int(created))) if created else "",
            "CreatedBy": created_by,
            "Size": fmt.human_size(e.get("Size") or 0, 3) if p.human else str(e.get("Size") or 0),
            "Comment": e.get("Comment") or "",
        })
    if p.quiet:
        for r in rows:
            ctx.print(r["ID"])
        return 0
    cols = ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
    ctx.out.write(fmt.listing(p.format, rows, HISTORY_HEADERS, cols))
    return 0


INSPECT = Spec("image inspect", "[OPTIONS] IMAGE [IMAGE...]", [
    Flag("format", STR, "f", help="Format output using a custom template"),
], min_args=1, help="Display detailed information on one or more images")


def cmd_inspect(ctx: Context, p: Parsed) -> int:
    from berth.cli.commands.system import inspect_each

    return inspect_each(ctx, p.args, lambda name: (f"/images/{path_part(name)}/json", None), p.format)


PRUNE = Spec("image prune", "[OPTIONS]", [
    Flag("all", BOOL, "a", help="Remove all unused images, not just dangling ones"),
    Flag("filter", LIST, shows="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", BOOL, "f", help="Do not prompt for confirmation"),
], max_args=0, help="Remove unused images")


def cmd_prune(ctx: Context, p: Parsed) -> int:
    import json

    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if p.all else "WARNING! This will remove all dangling images.")
    if not confirmed(ctx, p.force, warning):
        return 0
    f = filters_param(p.filter)
    filters = json.loads(f) if f else {}
    filters["dangling"] = {"false" if p.all else "true": True}
    print_reclaimed(ctx, prune(ctx, "images", {"filters": json.dumps(filters)}))
    return 0


# ------------------------------------------------------------------ load / save / import
LOAD = Spec("load", "[OPTIONS]", [
    Flag("input", STR, "i", help="Read from tar archive file, instead of STDIN"),
    Flag("quiet", BOOL, "q", help="Suppress the load output"),
    Flag("platform", LIST, hidden=True),
], max_args=0, help="Load an image from a tar archive or STDIN")


def load_tar(ctx: Context, fileobj: Any, quiet: bool = False) -> list[str]:
    """POST a docker-archive tar to /images/load; print what it says; return loaded names."""
    from berth.cli import progress

    loaded: list[str] = []
    resp = ctx.client.post("/images/load", {"quiet": quiet or None}, body=fileobj,
                           headers={"Content-Type": "application/x-tar"}, stream=True)
    try:
        def messages() -> Any:
            for m in resp.json_stream():
                s = m.get("stream") or ""
                for line in s.splitlines():
                    for prefix in ("Loaded image: ", "Loaded image ID: "):
                        if line.startswith(prefix):
                            loaded.append(line[len(prefix):].strip())
                yield m
        progress.display(messages(), ctx.out, terminal=ctx.out.isatty() and not quiet)
    finally:
        resp.close()
    return loaded


def cmd_load(ctx: Context, p: Parsed) -> int:
    if p.input:
        try:
            fh = open(p.input, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CLIError(f"open {p.input}: {exc.strerror.lower() if exc.strerror else exc}") from None
    else:
        if sys.stdin.isatty():
            raise CLIError("requested load from stdin, but stdin is empty")
        fh = sys.stdin.buffer
    try:
        load_tar(ctx, fh, p.quiet)
    finally:
        if p.input:
            fh.close()
    return 0


SAVE = Spec("save", "[OPTIONS] IMAGE [IMAGE...]", [
    Flag("output", STR, "o", help="Write to a file, instead of STDOUT"),
    Flag("platform", LIST, hidden=True),
], min_args=1, help="Save one or more images to a tar archive (streamed to STDOUT by default)")


def cmd_save(ctx: Context, p: Parsed) -> int:
    if not p.output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = ctx.client.get("/images/get", {"names": list(p.args)}, stream=True)
    try:
        if p.output:
            out_dir = os.path.dirname(os.path.abspath(p.output))
            if not os.path.isdir(out_dir):
                raise CLIError(f'failed to save image: invalid output path: directory "{out_dir}" does not exist')
            tmp = f"{p.output}.berth-save-{os.getpid()}"
            try:
                with open(tmp, "wb") as fh:
                    for chunk in resp.chunks():
                        fh.write(chunk)
                os.replace(tmp, p.output)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        else:
            for chunk in resp.chunks():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    finally:
        resp.close()
    return 0


IMPORT = Spec("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", [
    Flag("change", LIST, "c", help="Apply Dockerfile instruction to the created image"),
    Flag("message", STR, "m", help="Set commit message for imported image"),
    Flag("platform", STR, help="Set platform if server is multi-platform capable"),
], min_args=1, max_args=2, help="Import the contents from a tarball to create a filesystem image")


def cmd_import(ctx: Context, p: Parsed) -> int:
    src = p.args[0]
    params: dict[str, Any] = {"message": p.message, "changes": p.change or None, "platform": p.platform}
    if len(p.args) > 1:
        from berth.cli.refs import _parse

        ref = _parse(p.args[1])
        params["repo"] = ref.familiar_name
        params["tag"] = ref.tag
    body: Any = None
    fh = None
    if src == "-":
        params["fromSrc"] = "-"
        body = sys.stdin.buffer
    elif "://" in src:
        params["fromSrc"] = src
    else:
        try:
            fh = open(src, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CLIError(f"open {src}: {(exc.strerror or str(exc)).lower()}") from None
        params["fromSrc"] = "-"
        body = fh
    try:
        resp = ctx.client.post("/images/create", params, body=body,
                               headers={"Content-Type": "application/x-tar"}, stream=True)
        from berth.cli import progress

        last: list[str] = []

        def messages() -> Any:
            for m in resp.json_stream():
                if m.get("status") and not m.get("progressDetail"):
                    last.append(m["status"])
                    continue
                yield m
        try:
            progress.display(messages(), ctx.out, terminal=ctx.out.isatty())
        finally:
            resp.close()
        for line in last:
            ctx.print(line)
    finally:
        if fh is not None:
            fh.close()
    return 0


COMMANDS = {
    "images": (IMAGES, cmd_images), "tag": (TAG, cmd_tag), "rmi": (RMI, cmd_rmi),
    "history": (HISTORY, cmd_history), "inspect": (INSPECT, cmd_inspect), "prune": (PRUNE, cmd_prune),
    "load": (LOAD, cmd_load), "save": (SAVE, cmd_save), "import": (IMPORT, cmd_import),
}
