"""The builder against an in-memory StepRunner: image config and history as Docker writes
them, expansion in exactly the instructions where Docker does it, ARG/ENV/SHELL/CMD/
ENTRYPOINT semantics, ONBUILD, multi-stage and --target, and the cache with its miss
reasons. Images are directories copied per step; RUN records what it was asked to run."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from berth.build.builder import BuildError, BuildOptions, ImageRef, RunRequest, StepFailed, run_build
from berth.build.cache import BuildCache
from berth.build.cachemounts import CacheMountStore
from berth.build.context import BuildContext
from berth.engine.db import Database
from berth.errors import InvalidParameter, NotFound

pytestmark = pytest.mark.root  # COPY chowns files to 0:0


class FakeRunner:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: dict[str, tuple[ImageRef, Path]] = {}
        self.runs: list[RunRequest] = []
        self.resolved: list[str] = []   # names asked of resolve, in order
        self.tags: dict[str, str] = {}
        self.n = 0
        base = root / "base"
        (base / "etc").mkdir(parents=True)
        (base / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        (base / "etc/group").write_text("root:x:0:\n")
        self.base = self._new(None, base, {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, {"created_by": "base"})
        self.tags["busybox:latest"] = self.base.id

    def _new(self, parent: ImageRef | None, fs: Path, cfg: dict[str, Any], hist: dict[str, Any]) -> ImageRef:
        self.n += 1
        doc = {"config": cfg, "history": [*((parent.config.get("history") or []) if parent else []), hist],
               "n": self.n}
        iid = "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        ref = ImageRef(id=iid, config=doc)
        self.images[iid] = (ref, fs)
        return ref

    def _fork(self, parent: ImageRef | None) -> Path:
        self.n += 1
        dst = self.root / f"fs{self.n}"
        if parent is None:
            dst.mkdir()
        else:
            shutil.copytree(self.images[parent.id][1], dst, symlinks=True)
        return dst

    def fs(self, image_id: str) -> Path:
        return self.images[image_id][1]

    async def resolve(self, name: str, *, pull: bool, platform: str | None, emit: Any) -> ImageRef:
        self.resolved.append(name)
        if name in self.tags:
            return self.images[self.tags[name]][0]
        if name + ":latest" in self.tags:
            return self.images[self.tags[name + ":latest"]][0]
        raise NotFound(f"No such image: {name}")

    async def exists(self, image_id: str) -> bool:
        return image_id in self.images

    async def get(self, image_id: str) -> ImageRef:
        return self.images[image_id][0]

    async def run(self, parent: ImageRef | None, req: RunRequest,
                  on_start: Callable[[str], Awaitable[None]],
                  on_output: Callable[[bytes], Awaitable[None]]) -> ImageRef:
        self.runs.append(req)
        await on_start("c" * 64)
        fs = self._fork(parent)
        if req.prepare:
            req.prepare(str(fs))
        script = req.cmd[-1]
        await on_output(f"ran: {script}\n".encode())
        if script.startswith("exit "):
            raise StepFailed(int(script.split()[1]))
        if req.cleanup:
            req.cleanup(str(fs))
        return self._new(parent, fs, req.config, req.history)

    async def fs_step(self, parent: ImageRef | None, apply: Callable[[str], None],
                      config: dict[str, Any], history: dict[str, Any]) -> ImageRef:
        fs = self._fork(parent)
        apply(str(fs))
        return self._new(parent, fs, config, history)

    async def commit_config(self, parent: ImageRef | None, config: dict[str, Any],
                            history: dict[str, Any]) -> ImageRef:
        fs = self.images[parent.id][1] if parent else self._fork(None)
        return self._new(parent, fs, config, history)

    @contextlib.asynccontextmanager
    async def mount_image(self, image: ImageRef) -> AsyncIterator[str]:
        yield str(self.fs(image.id))

    async def path_is_dir(self, image: ImageRef | None, path: str) -> bool:
        return image is not None and (self.fs(image.id) / path.lstrip("/")).is_dir()

    async def tag(self, image_id: str, tags: list[str]) -> list[str]:
        for t in tags:
            self.tags[t] = image_id
        return tags


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runner = FakeRunner(tmp / "images")
        self.db = Database(tmp / "db.sqlite")
        self.cache = BuildCache(self.db)
        self.cache_mounts = CacheMountStore(tmp / "cache-mounts", self.db)
        self.ctx = tmp / "ctx"
        self.ctx.mkdir()

    def write(self, files: dict[str, str]) -> None:
        for name, content in files.items():
            p = self.ctx / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)

    def build(self, dockerfile: str, **opts: Any) -> tuple[ImageRef, str, list[dict[str, Any]]]:
        self.write({"Dockerfile": dockerfile})
        msgs: list[dict[str, Any]] = []

        async def emit(m: dict[str, Any]) -> None:
            msgs.append(m)

        img = asyncio.run(run_build(self.runner, self.cache, BuildContext(str(self.ctx)),
                                    BuildOptions(**opts), emit, self.cache_mounts))
        return img, "".join(m.get("stream", "") for m in msgs), msgs


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path)
    yield e
    e.db.close()


def cfg(img: ImageRef) -> dict[str, Any]:
    return img.config["config"]


def history(img: ImageRef) -> list[str]:
    return [h["created_by"] for h in img.config["history"]][1:]


def test_hello_world_config_history_and_output(env: Env) -> None:
    env.write({"hello.py": "print('hi')\n"})
    img, text, msgs = env.build("FROM busybox\nWORKDIR /app\nCOPY hello.py /app\nCMD [\"python\", \"./hello.py\"]\n",
                                tags=["hello:latest"])
    assert cfg(img)["WorkingDir"] == "/app"
    assert cfg(img)["Cmd"] == ["python", "./hello.py"]
    h = history(img)
    assert h[0] == "/bin/sh -c #(nop) WORKDIR /app"
    assert h[1].startswith("/bin/sh -c #(nop) COPY file:") and h[1].endswith(" in /app ")
    assert h[2] == '/bin/sh -c #(nop)  CMD ["python" "./hello.py"]'
    assert img.config["history"][-1]["empty_layer"] is True
    assert (env.runner.fs(img.id) / "app/hello.py").read_text() == "print('hi')\n"
    assert "Step 1/4 : FROM busybox\n" in text and "Step 4/4 : CMD [\"python\", \"./hello.py\"]\n" in text
    assert msgs[-3] == {"aux": {"ID": img.id}}
    assert msgs[-2]["stream"] == f"Successfully built {img.id[7:19]}\n"
    assert msgs[-1]["stream"] == "Successfully tagged hello:latest\n"
    assert env.runner.tags["hello:latest"] == img.id


def test_expansion_happens_only_where_docker_does_it(env: Env) -> None:
    env.write({"f-1.txt": "x"})
    img, _, _ = env.build(
        "FROM busybox\nENV V=1 DIR=/opt NAME=web\nWORKDIR $DIR/sub\nCOPY f-${V}.txt ${DIR}/\n"
        "LABEL app=$NAME\nEXPOSE 80${V}\nUSER ${NAME}\nVOLUME $DIR/data\nSTOPSIGNAL SIG${NAME:+TERM}\n"
        "RUN echo $V\nCMD echo $V\nENTRYPOINT [\"echo\", \"$V\"]\n")
    c = cfg(img)
    assert c["WorkingDir"] == "/opt/sub"
    assert (env.runner.fs(img.id) / "opt/f-1.txt").exists()
    assert c["Labels"] == {"app": "web"}
    assert c["ExposedPorts"] == {"801/tcp": {}}
    assert c["User"] == "web"
    assert c["Volumes"] == {"/opt/data": {}}
    assert c["StopSignal"] == "SIGTERM"
    assert env.runner.runs[0].cmd == ["/bin/sh", "-c", "echo $V"]     # left to the shell
    assert c["Entrypoint"] == ["echo", "$V"]
    assert c["Cmd"] == ["/bin/sh", "-c", "echo $V"]  # set in this stage: ENTRYPOINT keeps it


def test_env_forms_and_simultaneous_substitution(env: Env) -> None:
    img, _, _ = env.build('FROM busybox\nENV A=old\nENV A=new B=$A C="two words"\nENV D the rest of it\n')
    e = cfg(img)["Env"]
    assert "A=new" in e and "B=old" in e and "C=two words" in e and "D=the rest of it" in e
    assert history(img)[1] == "/bin/sh -c #(nop)  ENV A=new B=old C=two words"


def test_args_defaults_build_args_proxies_and_history(env: Env) -> None:
    img, text, _ = env.build(
        "ARG TAG=latest\nFROM busybox:${TAG}\nARG TAG\nARG MODE=dev\nARG http_proxy\n"
        "RUN echo $MODE $TAG\nENV MODE=from-env\nRUN echo again\n",
        build_args={"MODE": "prod", "http_proxy": "http://proxy:3128", "UNUSED": "x"})
    first, second = env.runner.runs
    assert "MODE=prod" in first.env and "TAG=latest" in first.env
    assert "http_proxy=http://proxy:3128" in first.env
    assert first.history["created_by"] == "|2 MODE=prod TAG=latest /bin/sh -c echo $MODE $TAG"
    assert "proxy:3128" not in json.dumps(img.config["history"])  # proxy values stay out of history
    # an ENV of the same name wins over the ARG
    assert "MODE=from-env" in second.env and "MODE=prod" not in second.env
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in text
    assert not any(e.startswith(("MODE=", "TAG=")) for e in cfg(img)["Env"] if e != "MODE=from-env")


def test_shell_instruction_changes_run_and_cmd(env: Env) -> None:
    img, _, _ = env.build('FROM busybox\nSHELL ["/bin/bash", "-ec"]\nRUN echo a\nCMD echo b\n')
    assert env.runner.runs[0].cmd == ["/bin/bash", "-ec", "echo a"]
    assert cfg(img)["Cmd"] == ["/bin/bash", "-ec", "echo b"]
    assert cfg(img)["Shell"] == ["/bin/bash", "-ec"]
    assert history(img)[-1] == '/bin/bash -ec #(nop)  CMD ["/bin/bash" "-ec" "echo b"]'


def test_exec_form_run_has_no_shell(env: Env) -> None:
    env.build('FROM busybox\nRUN ["echo", "a b"]\n')
    assert env.runner.runs[0].cmd == ["echo", "a b"]
    assert env.runner.runs[0].history["created_by"] == "echo a b"


def test_entrypoint_resets_inherited_cmd_but_not_one_set_here(env: Env) -> None:
    img, _, _ = env.build('FROM busybox\nENTRYPOINT ["top"]\n')
    assert cfg(img)["Entrypoint"] == ["top"] and cfg(img)["Cmd"] is None
    img, _, _ = env.build('FROM busybox\nCMD ["-b"]\nENTRYPOINT top\n')
    assert cfg(img)["Entrypoint"] == ["/bin/sh", "-c", "top"] and cfg(img)["Cmd"] == ["-b"]


def test_metadata_instructions(env: Env) -> None:
    img, _, _ = env.build(
        "FROM busybox\nMAINTAINER someone@example.com\nEXPOSE 80 53/udp 8000-8001\n"
        "HEALTHCHECK --interval=30s --timeout=3s CMD wget -q localhost || exit 1\n"
        "ONBUILD RUN echo child\nUSER 1000:1000\n", labels={"extra": "yes"})
    c = cfg(img)
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                "Interval": 30_000_000_000, "Timeout": 3_000_000_000}
    assert c["OnBuild"] == ["RUN echo child"]
    assert c["User"] == "1000:1000"
    assert c["Labels"] == {"extra": "yes"}
    assert img.config["history"][1]["author"] == "someone@example.com"


def test_onbuild_triggers_run_in_the_child_build(env: Env) -> None:
    parent, _, _ = env.build("FROM busybox\nONBUILD RUN echo from-trigger\n", tags=["withtrigger:latest"])
    img, text, _ = env.build("FROM withtrigger\nCMD x\n")
    assert "# Executing 1 build trigger" in text
    assert env.runner.runs[-1].cmd[-1] == "echo from-trigger"
    assert cfg(img).get("OnBuild") is None
    del parent


def test_a_stage_only_a_base_images_trigger_names_is_built(env: Env) -> None:
    env.build("FROM busybox\nONBUILD COPY --from=builder /out /out\n"
              "ONBUILD RUN --mount=from=builder,source=/out,target=/m cat /m\n", tags=["ob-parent:latest"])
    env.write({"src.txt": "artifact"})
    df = ("FROM busybox AS builder\nRUN echo build\nCOPY src.txt /out\n"
          "FROM busybox AS other\nRUN echo other\n"
          "FROM ob-parent AS app\nCMD x\n"
          "FROM busybox\n")
    before = len(env.runner.resolved)
    img, text, _ = env.build(df, target="app")
    assert [r.cmd[-1] for r in env.runner.runs] == ["echo build", "cat /m"]  # not `other`
    assert (env.runner.fs(img.id) / "out").read_text() == "artifact"
    assert Path(env.runner.runs[-1].mounts[0]["Source"]).read_text() == "artifact"
    assert "Step 1/5 : FROM busybox AS builder" in text and "Step 5/5 : CMD x" in text
    # the base was looked at once, while planning, and not again at its step
    assert env.runner.resolved[before:] == ["ob-parent", "busybox"]


def test_triggers_of_a_stage_base_and_of_stages_added_by_triggers_are_planned(env: Env) -> None:
    env.write({"d.txt": "deep"})
    # ONBUILD in the Dockerfile: the stage FROM it runs it, and `dep` comes after the ONBUILD
    img, _, _ = env.build("FROM busybox AS base\nONBUILD COPY --from=dep /d /d\n"
                          "FROM busybox AS dep\nCOPY d.txt /d\nFROM base\n")
    assert (env.runner.fs(img.id) / "d").read_text() == "deep"
    # a stage a trigger adds runs triggers of its own that name another stage
    env.build("FROM busybox\nONBUILD COPY --from=deep /d /d\n", tags=["ob-a:latest"])
    env.build("FROM busybox\nONBUILD COPY --from=mid /d /via-mid\n", tags=["ob-b:latest"])
    runs = len(env.runner.runs)
    img, _, _ = env.build("FROM busybox AS deep\nCOPY d.txt /d\nFROM ob-a AS mid\n"
                          "FROM busybox AS unused\nRUN echo unused\nFROM ob-b\n")
    assert (env.runner.fs(img.id) / "via-mid").read_text() == "deep"
    assert len(env.runner.runs) == runs  # `unused` was not built


@pytest.mark.parametrize("trigger, df, error", [
    ("COPY --from=builder /out /out", "FROM ob-err AS builder\n",
     "invalid from flag value builder: refers to the current or a later stage"),
    ("COPY --from=builder /out /out", "FROM ob-err AS app\nFROM busybox AS builder\nRUN echo never\n",
     "invalid from flag value builder: refers to the current or a later stage"),
    ("RUN --mount=from=1,target=/m true", "FROM busybox AS a\nRUN echo never\nFROM ob-err\n",
     "--mount=from=1,target=/m: invalid from flag value 1: refers to the current or a later stage"),
])
def test_a_trigger_naming_the_current_or_a_later_stage_fails_when_it_runs(env: Env, trigger: str, df: str,
                                                                          error: str) -> None:
    env.build(f"FROM busybox\nONBUILD {trigger}\n", tags=["ob-err:latest"])
    with pytest.raises(InvalidParameter) as ei:
        env.build(df, target="app" if "AS app" in df else None)
    assert str(ei.value) == error
    assert env.runner.runs == [] and "builder" not in env.runner.resolved  # never taken for an image


def test_a_from_naming_a_stage_through_a_stage_variable_is_refused_not_pulled(env: Env) -> None:
    env.write({"x": "x"})
    with pytest.raises(InvalidParameter, match="^Dockerfile:6: invalid from flag value dep: that stage was not "
                                               "built: a --from names a stage through global ARGs only"):
        env.build("FROM busybox AS dep\nCOPY x /x\nFROM busybox AS other\n"
                  "FROM busybox\nENV SRC=dep\nCOPY --from=$SRC /x /x\n")
    assert "dep" not in env.runner.resolved


def test_run_heredocs(env: Env) -> None:
    env.build("FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\n")
    assert env.runner.runs[-1].cmd == ["/bin/sh", "-c", "echo one\necho two\n"]
    env.build("FROM busybox\nRUN cat <<'EOF' > /x\n$HOME\nEOF\n")
    assert env.runner.runs[-1].cmd == ["/bin/sh", "-c", "cat <<'EOF' > /x\n$HOME\nEOF\n"]
    env.build("FROM busybox\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
    assert env.runner.runs[-1].cmd == ["/.berth-heredoc-EOF"]


def test_copy_heredoc_expands_unless_quoted(env: Env) -> None:
    img, _, _ = env.build("FROM busybox\nENV WHO=world\nCOPY <<a.txt <<'b.txt' /greet/\nhello $WHO\na.txt\nhi $WHO\nb.txt\n")
    fs = env.runner.fs(img.id)
    assert (fs / "greet/a.txt").read_text() == "hello world\n"
    assert (fs / "greet/b.txt").read_text() == "hi $WHO\n"


def test_failing_run_raises_build_error_with_code(env: Env) -> None:
    with pytest.raises(BuildError) as ei:
        env.build("FROM busybox\nRUN exit 3\n", tags=["never:latest"])
    assert str(ei.value) == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert ei.value.code == 3
    assert "never:latest" not in env.runner.tags


def test_errors_name_the_line(env: Env) -> None:
    with pytest.raises(InvalidParameter, match="^Dockerfile:3: COPY failed: file not found"):
        env.build("FROM busybox\nRUN true\nCOPY missing.txt /\n")
    with pytest.raises(InvalidParameter, match="^Dockerfile:2: COPY failed: forbidden path outside the build context: ../x$"):
        env.build("FROM busybox\nCOPY ../x /\n")
    with pytest.raises(InvalidParameter, match="Dockerfile:2: Invalid signal: SIGNOPE"):
        env.build("FROM busybox\nSTOPSIGNAL SIGNOPE\n")


def test_multistage_target_skips_unneeded_stages(env: Env) -> None:
    df = ("FROM busybox AS build\nRUN echo build\nCOPY src.txt /out/\n"
          "FROM busybox AS other\nRUN echo other\n"
          "FROM busybox\nCOPY --from=build /out/src.txt /final.txt\nCOPY --from=0 /out /out2\n")
    env.write({"src.txt": "artifact"})
    img, text, _ = env.build(df)
    assert [r.cmd[-1] for r in env.runner.runs] == ["echo build"]
    assert (env.runner.fs(img.id) / "final.txt").read_text() == "artifact"
    assert (env.runner.fs(img.id) / "out2/src.txt").exists()
    assert "Step 1/6 : FROM busybox AS build" in text and "Step 6/6" in text
    img, _, _ = env.build(df, target="other")
    assert env.runner.runs[-1].cmd[-1] == "echo other"
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        env.build(df, target="nope")


def test_from_a_previous_stage(env: Env) -> None:
    img, _, _ = env.build("FROM busybox AS base\nENV FROM_BASE=1\nFROM base\nENV CHILD=1\n")
    assert "FROM_BASE=1" in cfg(img)["Env"] and "CHILD=1" in cfg(img)["Env"]


def test_rebuild_is_fully_cached_and_no_cache_rebuilds(env: Env) -> None:
    env.write({"a.txt": "1", "b.txt": "2"})
    df = "FROM busybox\nRUN echo x\nCOPY a.txt b.txt /d/\nENV K=v\nCMD [\"x\"]\n"
    img1, _, _ = env.build(df)
    runs = len(env.runner.runs)
    img2, text, _ = env.build(df)
    assert img2.id == img1.id and text.count("Using cache") == 4 and len(env.runner.runs) == runs
    img3, text, _ = env.build(df, no_cache=True)
    assert img3.id != img1.id and "Using cache" not in text and "Cache miss" not in text


def test_changed_file_misses_from_its_step_and_names_it(env: Env) -> None:
    env.write({"a.txt": "1", "b.txt": "2"})
    df = "FROM busybox\nRUN echo x\nCOPY a.txt b.txt /d/\nRUN echo y\n"
    env.build(df)
    os.utime(env.ctx / "a.txt", (1, 1))  # mtime alone changes nothing
    _, text, _ = env.build(df)
    assert text.count("Using cache") == 3
    (env.ctx / "b.txt").write_text("changed")
    _, text, _ = env.build(df)
    steps = text.split("Step ")
    assert "Using cache" in steps[2]
    assert " ---> Cache miss: file changed: b.txt\n" in steps[3]
    assert "Using cache" not in steps[3] + steps[4]
    assert "Cache miss" not in steps[4]  # explained once, at the first miss


def test_changed_instruction_and_build_arg_are_named(env: Env) -> None:
    env.build("FROM busybox\nARG V\nRUN echo one\n", build_args={"V": "1"})
    _, text, _ = env.build("FROM busybox\nARG V\nRUN echo two\n", build_args={"V": "1"})
    assert "Cache miss: instruction changed (was: /bin/sh -c echo one)" in text
    _, text, _ = env.build("FROM busybox\nARG V\nRUN echo two\n", build_args={"V": "2"})
    assert "Cache miss: build arg V changed from '1' to '2'" in text
    assert text.count("Using cache") == 1  # the ARG step itself stays cached


def test_cache_entry_of_a_deleted_image_is_a_miss(env: Env) -> None:
    img, _, _ = env.build("FROM busybox\nRUN echo x\n")
    del env.runner.images[img.id]
    img2, text, _ = env.build("FROM busybox\nRUN echo x\n")
    assert img2.id != img.id and "Using cache" not in text


def test_quiet_emits_only_the_id(env: Env) -> None:
    img, text, msgs = env.build("FROM busybox\nENV A=1\n", quiet=True)
    assert msgs == [{"stream": img.id + "\n"}]


def test_scratch_base(env: Env) -> None:
    env.write({"bin.txt": "b"})
    img, _, _ = env.build("FROM scratch\nCOPY bin.txt /\nCMD [\"/bin.txt\"]\n")
    assert (env.runner.fs(img.id) / "bin.txt").exists()
    assert cfg(img)["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert copy.deepcopy(img.config["history"][0]["created_by"]).startswith("/bin/sh -c #(nop) COPY file:")


def test_add_from_url_downloads_with_mode_0600_and_copy_refuses_urls(env: Env) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/files/tool.txt":
                self.send_error(404)
                return
            body = b"downloaded\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        img, text, _ = env.build(f"FROM busybox\nADD {base}/files/tool.txt /opt/\n")
        f = env.runner.fs(img.id) / "opt/tool.txt"
        assert f.read_text() == "downloaded\n"
        assert f.stat().st_mode & 0o777 == 0o600
        assert int(f.stat().st_mtime) == 1445412480
        _, text, _ = env.build(f"FROM busybox\nADD {base}/files/tool.txt /opt/\n")
        assert "Using cache" in text  # same content: cached
        good = "sha256:" + hashlib.sha256(b"downloaded\n").hexdigest()
        env.build(f"FROM busybox\nADD --checksum={good} {base}/files/tool.txt /opt/\n")
        with pytest.raises(InvalidParameter, match="Dockerfile:2: digest mismatch"):
            env.build(f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {base}/files/tool.txt /opt/\n")
        with pytest.raises(InvalidParameter, match="checksum can't be specified for non-HTTP"):
            env.build(f"FROM busybox\nADD --checksum={good} Dockerfile /x\n")
        with pytest.raises(InvalidParameter, match="status 404"):
            env.build(f"FROM busybox\nADD {base}/missing /x\n")
        with pytest.raises(InvalidParameter, match="source can't be a URL for COPY"):
            env.build(f"FROM busybox\nCOPY {base}/files/tool.txt /x\n")
        assert not [p for p in env.tmp.iterdir() if p.name.startswith(".berth-add-")]
    finally:
        srv.shutdown()
        srv.server_close()


def test_copy_from_an_image_and_lowercase_dockerfile(env: Env) -> None:
    (env.ctx / "dockerfile").write_text("FROM scratch\nCOPY --from=busybox:latest /etc/passwd /passwd\n")
    msgs: list[dict[str, Any]] = []

    async def emit(m: dict[str, Any]) -> None:
        msgs.append(m)

    img = asyncio.run(run_build(env.runner, env.cache, BuildContext(str(env.ctx)), BuildOptions(), emit))
    assert (env.runner.fs(img.id) / "passwd").read_text().startswith("root:")


def test_run_output_is_framed_like_the_legacy_builder(env: Env) -> None:
    _, text, _ = env.build("FROM busybox\nRUN echo hi\n")
    lines = text.splitlines()
    i = lines.index("Step 2/2 : RUN echo hi")
    assert lines[i + 1].startswith(" ---> Cache miss: ")
    assert lines[i + 2] == " ---> Running in cccccccccccc"
    assert lines[i + 3] == "ran: echo hi"
    assert lines[i + 4] == "Removing intermediate container cccccccccccc"
    assert lines[i + 5].startswith(" ---> ") and len(lines[i + 5]) == 6 + 12


def test_run_network_flag_and_build_network_mode(env: Env) -> None:
    env.build("FROM busybox\nRUN --network=none echo a\nRUN echo b\n")
    assert [r.network_mode for r in env.runner.runs[-2:]] == ["none", "bridge"]
    env.build("FROM busybox\nRUN echo c\n", network_mode="host")
    assert env.runner.runs[-1].network_mode == "host"
    assert env.runner.runs[-1].workdir == "/" and env.runner.runs[-1].user == ""


def test_quiet_build_shows_its_log_only_when_it_fails(env: Env) -> None:
    with pytest.raises(BuildError):
        env.build("FROM busybox\nRUN exit 4\n", quiet=True)
    msgs: list[dict[str, Any]] = []

    async def emit(m: dict[str, Any]) -> None:
        msgs.append(m)

    (env.ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
    with pytest.raises(BuildError):
        asyncio.run(run_build(env.runner, env.cache, BuildContext(str(env.ctx)), BuildOptions(quiet=True), emit))
    assert len(msgs) == 1 and "Step 2/2 : RUN exit 4" in msgs[0]["stream"] and "ran: exit 4" in msgs[0]["stream"]


def test_history_strings_match_the_legacy_builder(env: Env) -> None:
    img, _, _ = env.build('FROM busybox\nEXPOSE 80 53/udp\nVOLUME /data\nUSER app\nSTOPSIGNAL SIGINT\n'
                          'ENTRYPOINT ["top", "-b"]\nSHELL ["/bin/ash", "-c"]\nARG V=1\nONBUILD RUN x\n')
    assert history(img) == [
        "/bin/sh -c #(nop)  EXPOSE 80 53/udp",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  USER app",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGINT",
        '/bin/sh -c #(nop)  ENTRYPOINT ["top" "-b"]',
        "/bin/ash -c #(nop)  SHELL [/bin/ash -c]",  # the new shell already, as docker does
        "/bin/ash -c #(nop)  ARG V=1",
        "/bin/ash -c #(nop)  ONBUILD RUN x",
    ]


def test_syntax_directive_naming_another_frontend_is_reported(env: Env) -> None:
    _, text, _ = env.build("# syntax=docker/dockerfile:1.7\nFROM busybox\n")
    assert "[Warning] the syntax directive" not in text
    _, text, _ = env.build("# syntax=example.com/custom/frontend:2\nFROM busybox\n")
    assert "[Warning] the syntax directive (example.com/custom/frontend:2) is not used" in text


def test_rebuilt_source_stage_is_named_in_the_copy_from_miss(env: Env) -> None:
    env.write({"src.txt": "v1"})
    df = "FROM busybox AS build\nCOPY src.txt /out/\nFROM busybox\nCOPY --from=build /out/src.txt /final\n"
    env.build(df)
    (env.ctx / "src.txt").write_text("v2")
    _, text, _ = env.build(df)
    assert "Cache miss: file changed: --from=build:/out/src.txt" in text


# --- RUN --mount ------------------------------------------------------------------------

def test_run_mounts_reach_the_step(env: Env) -> None:
    env.write({"src/a.txt": "a", "req.txt": "r"})
    seen: dict[str, Any] = {}
    real_run = env.runner.run

    async def run(parent: Any, req: RunRequest, on_start: Any, on_output: Any) -> ImageRef:
        if req.mounts:
            by_target = {m["Target"]: m for m in req.mounts}
            seen["mounts"] = by_target
            seen["rw_copy"] = sorted(os.listdir(by_target["/app/src"]["Source"]))
        return await real_run(parent, req, on_start, on_output)

    env.runner.run = run  # type: ignore[method-assign]
    img, _, _ = env.build(
        "FROM busybox AS tools\nRUN echo tool\nFROM busybox\nWORKDIR /app\nENV CACHE=/root/.cache\n"
        "RUN --mount=type=cache,target=$CACHE,id=pip --mount=source=req.txt,target=req.txt "
        "--mount=type=tmpfs,target=/tmp,size=1m --mount=from=tools,source=/etc,target=/tools "
        "--mount=source=src,target=src,rw cat req.txt\n")
    m = seen["mounts"]
    assert m["/app/req.txt"] == {"Type": "bind", "Source": str(env.ctx / "req.txt"),
                                 "Target": "/app/req.txt", "ReadOnly": True}
    assert m["/tmp"] == {"Type": "tmpfs", "Target": "/tmp", "ReadOnly": False,
                         "TmpfsOptions": {"SizeBytes": 1 << 20}}
    assert m["/root/.cache"]["Source"].startswith(str(env.cache_mounts.root))
    assert m["/root/.cache"]["ReadOnly"] is False
    assert m["/tools"]["Source"].endswith("/etc") and m["/tools"]["ReadOnly"] is True
    # rw from the context: a copy of its own, gone after the step
    assert m["/app/src"]["ReadOnly"] is False and seen["rw_copy"] == ["a.txt"]
    assert not os.path.exists(m["/app/src"]["Source"])
    assert str(env.ctx) not in m["/app/src"]["Source"]
    # mount points were made in the rootfs before the start
    fs = env.runner.fs(img.id)
    assert (fs / "app/req.txt").is_file() and (fs / "root/.cache").is_dir()


def test_changed_bind_mounted_file_misses_the_cache(env: Env) -> None:
    env.write({"req.txt": "v1", "other.txt": "x"})
    df = "FROM busybox\nRUN --mount=source=req.txt,target=/r cat /r\n"
    first, _, _ = env.build(df)
    (env.ctx / "other.txt").write_text("y")          # not mounted: still cached
    again, text, _ = env.build(df)
    assert again.id == first.id and "Using cache" in text
    (env.ctx / "req.txt").write_text("v2")
    changed, text, _ = env.build(df)
    assert changed.id != first.id
    assert "Cache miss: file changed: req.txt" in text


def test_cache_mount_content_is_not_part_of_the_key(env: Env) -> None:
    df = "FROM busybox\nRUN --mount=type=cache,target=/c ls /c\n"
    first, _, _ = env.build(df)
    (d,) = os.listdir(env.cache_mounts.root)
    (env.cache_mounts.root / d / "new").write_text("x")
    again, text, _ = env.build(df)
    assert again.id == first.id and "Using cache" in text
    other, text, _ = env.build(df.replace("/c ", "/c,sharing=locked "))
    assert other.id != first.id and "instruction changed" in text


@pytest.mark.parametrize("mount, error", [
    ("from=nope,target=/x", "Dockerfile:3: --mount=from=nope,target=/x: from=nope names no build stage and no image"),
    ("source=missing,target=/x", "Dockerfile:3: --mount=source=missing,target=/x: source not found in the build context: missing"),
    ("source=../up,target=/x", "forbidden path outside the build context: ../up"),
    ("target=/,type=tmpfs", 'Dockerfile:3: --mount=target=/,type=tmpfs: invalid mount target "/"'),
    ("type=cache,target=$NOPE", "requires a target"),
])
def test_bad_mounts_fail_before_the_step_naming_the_line(env: Env, mount: str, error: str) -> None:
    with pytest.raises(InvalidParameter) as ei:
        env.build(f"FROM busybox\nENV A=1\nRUN --mount={mount} true\n")
    assert error in str(ei.value)
    assert str(ei.value).startswith("Dockerfile:3:")
    assert env.runner.runs == []


def test_mount_from_a_later_stage_is_refused_and_an_earlier_one_is_built(env: Env) -> None:
    with pytest.raises(InvalidParameter, match="refers to the current or a later stage"):
        env.build("FROM busybox AS a\nRUN --mount=from=b,target=/b true\nFROM busybox AS b\n")
    img, text, _ = env.build("FROM busybox AS dep\nRUN echo dep\nFROM busybox\n"
                             "RUN --mount=from=dep,target=/d,source=/ cat /d/x\n")
    assert "ran: echo dep" in text  # the final stage needs `dep` only through the mount
