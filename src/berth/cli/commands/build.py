"""`berth build`: send the context tar to POST /build and show the daemon's progress."""

from __future__ import annotations

import base64
import json
import os
import sys

from berth.cli.client import CLIError
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, Flag, Parsed, Spec, UsageError

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from typing import Any

BUILD = Spec("build", "[OPTIONS] PATH | URL | -", [
    Flag("add-host", LIST, help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("build-arg", LIST, help="Set build-time variables"),
    Flag("cache-from", LIST, help="Images to consider as cache sources"),
    Flag("cgroup-parent", STR, help="Set the parent cgroup for the RUN instructions during build"),
    Flag("compress", BOOL, help="Compress the build context using gzip"),
    Flag("cpu-shares", "int", "c", help="CPU shares (relative weight)"),
    Flag("file", STR, "f", help="Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
    Flag("force-rm", BOOL, help="Always remove intermediate containers"),
    Flag("iidfile", STR, help="Write the image ID to the file"),
    Flag("label", LIST, help="Set metadata for an image"),
    Flag("memory", STR, "m", help="Memory limit"),
    Flag("network", STR, default="default", help="Set the networking mode for the RUN instructions during build"),
    Flag("no-cache", BOOL, help="Do not use cache when building the image"),
    Flag("platform", STR, help="Set platform if server is multi-platform capable"),
    Flag("pull", BOOL, help="Always attempt to pull a newer version of the image"),
    Flag("quiet", BOOL, "q", help="Suppress the build output and print image ID on success"),
    Flag("rm", BOOL, default=True, help="Remove intermediate containers after a successful build"),
    Flag("shm-size", STR, help="Size of /dev/shm"),
    Flag("tag", LIST, "t", help="Name and optionally a tag in the \"name:tag\" format"),
    Flag("target", STR, help="Set the target build stage to build"),
    Flag("ulimit", LIST, help="Ulimit options"),
], min_args=1, max_args=1, help="Build an image from a Dockerfile")


def build_params(p: Parsed, dockerfile: str) -> dict[str, Any]:
    from berth.cli.refs import _parse
    from berth.cli.runconfig import ram_in_bytes

    tags = []
    for t in p.tag:
        try:
            tags.append(_parse(t).familiar)
        except CLIError:
            raise UsageError(f'invalid argument "{t}" for "-t, --tag" flag: invalid reference format') from None
    buildargs: dict[str, str | None] = {}
    for a in p.build_arg:
        k, eq, v = a.partition("=")
        if eq:
            buildargs[k] = v
        elif k in os.environ:
            buildargs[k] = os.environ[k]
        else:
            buildargs[k] = None
    labels = {}
    for lab in p.label:
        k, _, v = lab.partition("=")
        labels[k] = v
    params: dict[str, Any] = {
        "t": tags or None, "dockerfile": dockerfile,
        "buildargs": json.dumps(buildargs) if buildargs else None,
        "labels": json.dumps(labels) if labels else None,
        "nocache": p.no_cache or None, "target": p.target, "q": p.quiet or None,
        "rm": p.rm, "forcerm": p.force_rm or None, "pull": p.pull or None,
        "networkmode": p.network if p.network and p.network != "default" else None,
        "platform": p.platform, "cpushares": p.cpu_shares,
        "memory": ram_in_bytes(p.memory, "-m, --memory") if p.memory else None,
        "shmsize": ram_in_bytes(p.shm_size, "--shm-size") if p.shm_size else None,
        "cgroupparent": p.cgroup_parent,
        "cachefrom": json.dumps(p.cache_from) if p.cache_from else None,
        "extrahosts": ",".join(p.add_host) if p.add_host else None,
    }
    if p.ulimit:
        from berth.cli.runconfig import parse_ulimit

        params["ulimits"] = json.dumps([parse_ulimit(u) for u in p.ulimit])
    return params


def _registry_config(ctx: Context) -> dict[str, str]:
    """X-Registry-Config: every stored credential, as the docker CLI sends for FROM pulls."""
    try:
        from berth.registry.auth_config import AuthConfigFile
    except ImportError:
        return {}
    try:
        auths = AuthConfigFile(os.path.join(ctx.config_dir, "config.json")).all()
    except Exception:  # noqa: BLE001 - building without credentials beats failing here
        return {}
    if not auths:
        return {}
    return {"X-Registry-Config": base64.urlsafe_b64encode(json.dumps(auths).encode()).decode()}


def cmd_build(ctx: Context, p: Parsed) -> int:
    from berth.cli import buildcontext, progress

    source = p.args[0]
    tar_path: str | None = None
    body: Any = None
    params: dict[str, Any]
    if source == "-":
        if p.file == "-":
            raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
        data = sys.stdin.buffer.read()
        if _looks_like_tar(data):
            body = data
            params = build_params(p, p.file or "Dockerfile")
        else:
            # stdin held a Dockerfile: an empty context with that Dockerfile in it
            import io
            import tarfile

            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                ti = tarfile.TarInfo("Dockerfile")
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            body = buf.getvalue()
            params = build_params(p, "Dockerfile")
    elif "://" in source or source.startswith("git@") or source.startswith("github.com/"):
        params = build_params(p, p.file or "Dockerfile")
        params["remote"] = source
    else:
        df_text = sys.stdin.buffer.read() if p.file == "-" else None
        bc = buildcontext.make_context(source, None if p.file == "-" else p.file, dockerfile_text=df_text)
        tar_path = bc.tar_path
        params = build_params(p, bc.dockerfile)
    image_id: list[str] = []
    quiet_text: list[str] = []

    def on_aux(aux: Any) -> None:
        if isinstance(aux, dict) and aux.get("ID"):
            image_id.append(aux["ID"])
    fh = None
    try:
        if tar_path is not None:
            fh = open(tar_path, "rb")  # noqa: SIM115 - closed below
            body = fh
            size = os.path.getsize(tar_path)
            headers = {"Content-Type": "application/x-tar", "Content-Length": str(size)}
        else:
            headers = {"Content-Type": "application/x-tar"}
        headers.update(_registry_config(ctx))
        resp = ctx.client.post("/build", params, body=body, headers=headers, stream=True)
        try:
            out = ctx.err if p.quiet else ctx.out
            msgs = resp.json_stream()
            if p.quiet:
                def quiet_filter(src: Any) -> Any:
                    for m in src:
                        if m.get("stream") and not (m.get("error") or m.get("errorDetail")):
                            quiet_text.append(m["stream"])
                            continue
                        if m.get("error") or m.get("errorDetail") or "aux" in m:
                            yield m
                msgs = quiet_filter(msgs)
            progress.display(msgs, out, terminal=out.isatty(), on_aux=on_aux)
        finally:
            resp.close()
    finally:
        if fh is not None:
            fh.close()
        if tar_path is not None:
            try:
                os.unlink(tar_path)
            except OSError:
                pass
    ident = image_id[-1] if image_id else ""
    if not ident and quiet_text:
        # with q=1 the daemon may answer only with the ID as a stream line
        lines = "".join(quiet_text).split()
        ident = next((w for w in reversed(lines) if w.startswith("sha256:")), "")
    if p.quiet and ident:
        ctx.print(ident)
    if p.iidfile:
        if not ident:
            raise CLIError("the daemon did not report an image ID to write to --iidfile")
        with open(p.iidfile, "w") as f:
            f.write(ident)
    return 0


def _looks_like_tar(data: bytes) -> bool:
    if len(data) >= 262 and data[257:262] == b"ustar":
        return True
    return data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00" or data[:4] == b"\x28\xb5\x2f\xfd"


COMMANDS = {"build": (BUILD, cmd_build)}
