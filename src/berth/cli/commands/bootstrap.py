"""`berth bootstrap NAME:TAG`: build a base image from Debian packages, then load it."""

from __future__ import annotations

import os
import shutil
import tempfile

from berth.cli.client import CLIError
from berth.cli.context import Context
from berth.cli.flags import BOOL, STR, Flag, Parsed, Spec

BOOTSTRAP = Spec("bootstrap", "[OPTIONS] NAME[:TAG]", [
    Flag("output", STR, "o", help="Also keep the docker-archive tar at this path"),
    Flag("quiet", BOOL, "q", help="Only print what was built"),
], min_args=1, max_args=1,
    help="Build a base image (busybox, debian:bookworm-slim, python:3.11-slim, nginx) from Debian packages")


def cmd_bootstrap(ctx: Context, p: Parsed) -> int:
    from berth.errors import BerthError

    try:
        from berth.bootstrap import build_image
    except ImportError as exc:
        raise CLIError(f"bootstrap is not available in this installation: {exc}") from None
    name = p.args[0]
    work = tempfile.mkdtemp(prefix="berth-bootstrap-")
    out_path = os.path.join(work, "image.tar")

    def log(message: str) -> None:
        if not p.quiet:
            ctx.warn(message.rstrip("\n"))
    try:
        try:
            result = build_image(name, out_path, log=log)
        except BerthError as exc:
            raise CLIError(str(exc)) from None
        from berth.cli.commands.images import load_tar

        with open(result.tar_path, "rb") as fh:
            load_tar(ctx, fh, quiet=p.quiet)
        if p.output:
            shutil.copyfile(result.tar_path, p.output)
        ctx.print(result.description)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


COMMANDS = {"bootstrap": (BOOTSTRAP, cmd_bootstrap)}
