"""ONBUILD triggers that take files from a stage of the Dockerfile being built (COPY --from,
RUN --mount from=): that stage is built even when nothing else in the build needs it, as the
legacy builder (which builds every stage up to the target) and BuildKit since Dockerfile 1.11
do; a trigger naming the current or a later stage fails without taking the name for an
image; and the same Dockerfile gives the same files under Debian's dockerd (classic builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_build_api import build, error_of, run_output
from test_build_params import docker_build

pytestmark = [pytest.mark.root]

PARENT = "FROM busybox\nONBUILD COPY --from=builder /out /from-image\n"

# `other` is needed by nothing; `dep` only by the ONBUILD of `base`, run in `mid`; `builder`
# only by the trigger of the image `app` is FROM
CHILD = """FROM busybox AS base
ONBUILD COPY --from=dep /dep /from-stage
FROM busybox AS builder
RUN echo built > /out
FROM busybox AS dep
RUN echo dep > /dep
FROM busybox AS other
RUN echo other > /other
FROM base AS mid
FROM {parent} AS app
COPY --from=mid /from-stage /from-stage
CMD cat /from-image /from-stage
"""


def rmi(daemon: Any, *refs: str) -> None:
    for ref in refs:
        daemon.docker("rmi", "-f", ref)


def test_stages_only_triggers_name_are_built(daemon: Any, busybox_image: str) -> None:
    parent = "onbuild-parent:api"
    try:
        msgs, _ = build(daemon, {"Dockerfile": PARENT + "ONBUILD RUN --mount=from=builder,target=/b "
                                                        "cp /b/out /mounted\n"}, t=parent)
        assert error_of(msgs) is None, msgs
        msgs, text = build(daemon, {"Dockerfile": CHILD.format(parent=parent)}, t="onbuild-child:api",
                           target="app")
        assert error_of(msgs) is None, text
        assert run_output(daemon, "onbuild-child:api") == "built\ndep\n"
        assert run_output(daemon, "onbuild-child:api", "cat", "/mounted") == "built\n"
        assert "FROM busybox AS other" not in text  # the stage nothing needs is skipped
        # a trigger naming the stage it runs in, or a later one, is refused, not pulled
        msgs, text = build(daemon, {"Dockerfile": f"FROM {parent} AS app\nFROM busybox AS builder\n"},
                           target="app")
        assert error_of(msgs) == "invalid from flag value builder: refers to the current or a later stage"
        assert "Pulling" not in text and "# Executing 2 build triggers" in text
    finally:
        rmi(daemon, "onbuild-child:api", parent)


def test_same_files_as_dockerds_classic_builder(daemon: Any, busybox_image: str, dockerd: Any,
                                                tmp_path: Path) -> None:
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent/Dockerfile").write_text(PARENT)
    (tmp_path / "child").mkdir()
    (tmp_path / "child/Dockerfile").write_text(CHILD.format(parent="onbuild-parent:cli"))
    for engine in (daemon, dockerd):
        # the classic builder keeps the other stages' step images: remove every image made here
        images_before = set(engine.docker("images", "-aq", "--no-trunc").stdout.split())
        try:
            p = docker_build(engine, tmp_path / "parent", "-t", "onbuild-parent:cli")
            assert p.returncode == 0, p.stdout + p.stderr
            p = docker_build(engine, tmp_path / "child", "--target", "app", "-t", "onbuild-child:cli")
            assert p.returncode == 0, p.stdout + p.stderr
            out = engine.docker("run", "--rm", "onbuild-child:cli")
            assert (out.returncode, out.stdout) == (0, "built\ndep\n"), (engine, out.stderr)
        finally:
            rmi(engine, "onbuild-child:cli", "onbuild-parent:cli")
            made = set(engine.docker("images", "-aq", "--no-trunc").stdout.split()) - images_before
            rmi(engine, *made)
