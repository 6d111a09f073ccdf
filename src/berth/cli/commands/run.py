"""Commands that create containers or carry their stdio: run, create, start, attach, exec."""

from __future__ import annotations

import os
import sys

from berth import detachkeys
from berth.cli.client import CLIError, DaemonError, DaemonUnreachable, path_part
from berth.cli.commands.common import inspect_container, post_each, registry_auth_header
from berth.cli.context import Context
from berth.cli.flags import BOOL, LIST, STR, Flag, Parsed, Spec, UsageError
from berth.cli.runconfig import CONTAINER_FLAGS, RUN_ONLY_FLAGS, create_body, refuse_windows_only
from berth.cli.streams import parse_detach_keys, pump, terminal_size

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


# ------------------------------------------------------------------ exit codes of run/start
def start_error_status(message: str) -> int:
    """126/127 when the daemon says the command cannot be invoked / was not found, else 125."""
    m = message.lower()
    if ("executable file not found" in m or "no such file or directory" in m
            or "command not found" in m or "not found in $path" in m):
        return 127
    if "permission denied" in m or "is a directory" in m or "cannot be invoked" in m:
        return 126
    return 125


def _as_run_error(exc: CLIError) -> CLIError:
    if isinstance(exc, DaemonError):
        exc.status = start_error_status(exc.daemon_message)
    elif exc.status == 1:
        exc.status = 125
    return exc


# ------------------------------------------------------------------ pulling on demand
def pull_image(ctx: Context, image: str, out: Any = None, quiet: bool = False,
               platform: str | None = None) -> None:
    from berth.cli import progress
    from berth.cli.refs import normalized, split_for_pull

    repo, tag = split_for_pull(image)
    # as the docker CLI sends it: a digest travels in `tag` too
    params: dict[str, Any] = {"fromImage": repo, "tag": tag}
    if platform:
        params["platform"] = platform
    resp = ctx.client.post("/images/create", params, headers=registry_auth_header(ctx, image),
                           stream=True)
    stream = out or ctx.err
    try:
        msgs = resp.json_stream()
        if quiet:
            msgs = (m for m in msgs if m.get("error") or m.get("errorDetail"))
        progress.display(msgs, stream, terminal=_isatty(stream))
    finally:
        resp.close()
    if not quiet and out is not None:
        from berth.cli.refs import _parse

        out.write(f"{_parse(normalized(image)).full}\n")


def _isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _image_missing(exc: DaemonError) -> bool:
    if exc.http_status != 404:
        return False
    m = exc.daemon_message.lower()
    return "image" in m or "manifest" in m or "pull access" in m


def misplaced_options(spec: Spec, p: Parsed) -> tuple[int, list[str]] | None:
    """`berth run nginx -p 8001:80`: run options typed after the image. Returns (how many of
    the command's words are run options, the corrected argv), or None."""
    from berth.cli.flags import parse

    cmd = p.args[1:]
    if not cmd or not cmd[0].startswith("-") or cmd[0] == "-":
        return None
    try:
        tail = parse(Spec(spec.name, spec.usage, spec.flags, interspersed=False), cmd)
    except UsageError:
        return None
    n = len(cmd) - len(tail.args)
    if n <= 0:
        return None
    before = p.argv[:len(p.argv) - len(p.args)]
    return n, [*before, *cmd[:n], p.args[0], *cmd[n:]]


def check_misplaced_options(ctx: Context, spec: Spec, p: Parsed) -> None:
    """Refuse run options after the image when the image has no ENTRYPOINT to take them:
    they would become the command (`exec: "-p": not found`), never what was meant."""
    found = misplaced_options(spec, p)
    if found is None:
        return
    try:
        info = ctx.client.get(f"/images/{path_part(p.args[0])}/json")
    except DaemonError:
        return   # not here yet (it will be pulled): let the daemon judge
    if (info.get("Config") or {}).get("Entrypoint"):
        return   # an entrypoint takes its own flags: `berth run curlimages/curl -v URL`
    import shlex

    n, fixed = found
    words = " ".join(p.args[1:1 + n])
    raise UsageError(f'"{words}" comes after the image name, so it would be run as the container\'s '
                     f"command; options go before the image: berth {spec.name} {shlex.join(fixed)}")


API_SOCKET_TARGET = "/var/run/docker.sock"
CONFIG_IN_CONTAINER = "/run/secrets/docker/config.json"


def _stored_auths(ctx: Context) -> dict[str, Any]:
    """The stored registry credentials as a config.json `auths` (what --use-api-socket hands
    the container, as the docker CLI does)."""
    try:
        from berth.registry.auth_config import AuthConfigFile
    except ImportError:
        return {}
    import base64

    out: dict[str, Any] = {}
    for server, creds in AuthConfigFile(os.path.join(ctx.config_dir, "config.json")).all().items():
        entry = {"auth": base64.b64encode(f"{creds.get('username', '')}:{creds.get('password', '')}"
                                          .encode()).decode()}
        if creds.get("identitytoken"):
            entry["identitytoken"] = creds["identitytoken"]
        out[server] = entry
    return out


def _use_api_socket(ctx: Context, body: dict[str, Any]) -> bytes | None:
    """--use-api-socket: bind the daemon's socket at /var/run/docker.sock; with stored
    credentials, DOCKER_CONFIG points at a config.json copied in after create (returned as
    the tar to copy)."""
    hc = body["HostConfig"]
    hc["Mounts"] = [*(hc.get("Mounts") or []), {"Type": "bind", "Source": ctx.client.path,
                                                 "Target": API_SOCKET_TARGET, "BindOptions": {}}]
    auths = _stored_auths(ctx)
    if not auths:
        return None
    import io
    import tarfile

    from berth.cli import wirejson

    body["Env"] = [*body["Env"], f"DOCKER_CONFIG={os.path.dirname(CONFIG_IN_CONTAINER)}"]
    data = wirejson.dumps({"auths": auths}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(CONFIG_IN_CONTAINER.lstrip("/"))
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def create_container(ctx: Context, spec: Spec, p: Parsed, detach: bool) -> str:
    """What `create` and `run` do first: check the flags, create the container (pulling its
    image as --pull says); failures exit as `run`'s do (125, or the start error's status)."""
    check_misplaced_options(ctx, spec, p)
    refuse_windows_only(p)
    try:
        return _create(ctx, p, detach)
    except CLIError as exc:
        raise _as_run_error(exc) from None


def _create(ctx: Context, p: Parsed, detach: bool) -> str:
    image, cmd = p.args[0], p.args[1:]
    body = create_body(p, image, cmd, detach=detach)
    config_tar = _use_api_socket(ctx, body) if p.use_api_socket else None
    params: dict[str, Any] = {}
    if p.name:
        params["name"] = p.name
    if p.platform:
        params["platform"] = p.platform
    pull = (p.pull or "missing").lower()
    if pull not in ("missing", "always", "never"):
        raise UsageError(f'invalid pull option: \'{p.pull}\': must be one of "always", "missing" or "never"')
    if p.cidfile and os.path.exists(p.cidfile):
        raise CLIError(f"container ID file found, make sure the other container isn't running or delete {p.cidfile}")
    if pull == "always":
        pull_image(ctx, image, quiet=p.quiet, platform=p.platform)
    try:
        res = ctx.client.post("/containers/create", params, body)
    except DaemonError as exc:
        if pull != "missing" or not _image_missing(exc):
            raise
        from berth.cli.refs import normalized

        ctx.warn(f"Unable to find image '{normalized(image)}' locally")
        pull_image(ctx, image, quiet=p.quiet, platform=p.platform)
        res = ctx.client.post("/containers/create", params, body)
    cid = res["Id"]
    for w in res.get("Warnings") or []:
        ctx.warn(f"WARNING: {w}")
    if config_tar is not None:
        try:
            ctx.client.request("PUT", f"/containers/{cid}/archive", {"path": "/", "noOverwriteDirNonDir": True},
                               body=config_tar, headers={"Content-Type": "application/x-tar"})
        except CLIError as exc:
            raise CLIError(f"injecting docker config.json into container failed: copying config.json "
                           f"into container failed: {exc}") from None
    if p.cidfile:
        with open(p.cidfile, "w") as fh:
            fh.write(cid)
    return cid


# ------------------------------------------------------------------ run
RUN = Spec("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", CONTAINER_FLAGS + RUN_ONLY_FLAGS,
           min_args=1, interspersed=False, help="Create and run a new container from an image")
CREATE = Spec("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", CONTAINER_FLAGS, min_args=1,
              interspersed=False, help="Create a new container")


def cmd_create(ctx: Context, p: Parsed) -> int:
    # `create` attaches as a foreground `run` would (AttachStdout/Stderr), as docker's does
    ctx.print(create_container(ctx, CREATE, p, detach=False))
    return 0


class _Resizer:
    def __init__(self, ctx: Context, path: str) -> None:
        self.ctx = ctx
        self.path = path

    def __call__(self) -> None:
        size = terminal_size(sys.stdout.fileno()) or terminal_size(sys.stdin.fileno())
        if size is None:
            return
        try:
            self.ctx.client.post(self.path, {"h": size[0], "w": size[1]})
        except CLIError:
            pass


def _signal_proxy(ctx: Context, cid: str):  # type: ignore[no-untyped-def]
    def forward(signum: int) -> None:
        import signal  # only when a signal comes: its import costs every run ~0.5 ms

        try:
            ctx.client.post(f"/containers/{cid}/kill", {"signal": signal.Signals(signum).name})
        except CLIError:
            pass
    return forward


def _wait(ctx: Context, cid: str, condition: str = "not-running") -> int:
    return _wait_result(ctx, ctx.client.post(f"/containers/{cid}/wait", {"condition": condition}))


def _remove_quietly(ctx: Context, cid: str) -> None:
    try:
        ctx.client.delete(f"/containers/{cid}", {"force": True, "v": True})
    except DaemonError as exc:
        if exc.http_status not in (404, 409):
            ctx.warn(f"berth: {exc}")
    except CLIError:
        pass


def _detach_keys(p: Parsed) -> bytes:
    try:
        return parse_detach_keys(p.detach_keys or os.environ.get("BERTH_DETACH_KEYS") or detachkeys.DEFAULT)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(ctx: Context, p: Parsed) -> int:
    detach = p.detach
    if p.tty and p.interactive and not detach and not sys.stdin.isatty():
        ctx.warn("berth: the input device is not a TTY (use -i without -t to pipe data in)")
        return 1
    keys = _detach_keys(p)
    cid = create_container(ctx, RUN, p, detach=detach)
    if detach:
        try:
            ctx.client.post(f"/containers/{cid}/start")
        except CLIError as exc:
            if p.rm:
                _remove_quietly(ctx, cid)
            raise _as_run_error(exc) from None
        ctx.print(cid)
        return 0

    attach = [a.lower() for a in p.attach] or ["stdout", "stderr"]
    want_stdin = p.interactive     # -i attaches stdin whatever -a says (create_body's AttachStdin)
    # Register the wait before start (as docker does) so the exit status cannot be missed;
    # with --rm the daemon removes the container and the "removed" waiter reports the status.
    try:
        pending = ctx.client.begin("POST", f"/containers/{cid}/wait",
                                   {"condition": "removed" if p.rm else "next-exit"})
        stream = ctx.client.hijack(f"/containers/{cid}/attach", {
            "stream": True, "stdin": want_stdin, "stdout": "stdout" in attach,
            "stderr": "stderr" in attach})
    except CLIError as exc:
        if p.rm:
            _remove_quietly(ctx, cid)
        raise _as_run_error(exc) from None
    if _start_attached(ctx, cid, stream, pending, tty=p.tty, stdin=want_stdin, keys=keys, sig_proxy=p.sig_proxy,
                       on_failure=(lambda: _remove_quietly(ctx, cid)) if p.rm else None):
        return 0
    try:
        if pending is not None:
            return _wait_result(ctx, pending.first_json())
        status = _wait(ctx, cid)
    except DaemonError as exc:
        if exc.http_status == 404 and p.rm:
            return 0  # removed by the daemon before we could ask (no early wait head)
        raise _as_run_error(exc) from None
    except DaemonUnreachable as exc:
        raise _as_run_error(exc) from None
    if p.rm:
        _remove_quietly(ctx, cid)
    return status


def _wait_result(ctx: Context, res: Any) -> int:
    if isinstance(res, dict):
        err = res.get("Error") or {}
        if err and err.get("Message"):
            ctx.warn(f"berth: {err['Message']}")
        return int(res.get("StatusCode", 0))
    raise CLIError("the berth daemon's wait answer carried no exit status", 125)


def _start_attached(ctx: Context, cid: str, stream: Any, pending: Any, *, tty: bool, stdin: bool, keys: bytes,
                    sig_proxy: bool, on_failure: Callable[[], None] | None = None) -> bool:
    """Start the attached container and carry its stdio until its output ends; True if the
    user detached instead (the pending wait is then closed). A failed start closes the
    stream and the wait, calls `on_failure` and raises as `run` does."""
    try:
        try:
            ctx.client.post(f"/containers/{cid}/start")
        except CLIError as exc:
            stream.close()
            if pending is not None:
                pending.close()
            if on_failure is not None:
                on_failure()
            raise _as_run_error(exc) from None
        result = _carry_stdio(ctx, stream, tty=tty, stdin=stdin, keys=keys,
                              resize_path=f"/containers/{cid}/resize" if tty else None,
                              proxy=_signal_proxy(ctx, cid) if (sig_proxy and not tty) else None)
    finally:
        stream.close()
    if result == "detached" and pending is not None:
        pending.close()
    return result == "detached"


def _carry_stdio(ctx: Context, stream: Any, *, tty: bool, stdin: bool, keys: bytes,
                 resize_path: str | None, proxy: Any) -> str:
    from berth.cli.streams import RawTerminal

    resizer = _Resizer(ctx, resize_path) if resize_path else None
    raw = tty and stdin and sys.stdin.isatty()
    if resizer is not None:
        resizer()
    if raw:
        with RawTerminal(sys.stdin.fileno()):
            return pump(stream, tty=tty, stdin=stdin, detach_keys=keys, on_resize=resizer)
    return pump(stream, tty=tty, stdin=stdin, detach_keys=keys if tty and stdin else None,
                on_resize=resizer, on_signal=proxy)


# ------------------------------------------------------------------ start / attach
START = Spec("start", "[OPTIONS] CONTAINER [CONTAINER...]", [
    Flag("attach", BOOL, "a", help="Attach STDOUT/STDERR and forward signals"),
    Flag("interactive", BOOL, "i", help="Attach container's STDIN"),
    Flag("detach-keys", STR, help="Override the key sequence for detaching a container"),
], min_args=1, help="Start one or more stopped containers")


def cmd_start(ctx: Context, p: Parsed) -> int:
    if not (p.attach or p.interactive):
        return post_each(ctx, p.args, "start")
    if len(p.args) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    keys = _detach_keys(p)
    info = inspect_container(ctx, p.args[0])
    cid = info["Id"]
    tty = bool(info.get("Config", {}).get("Tty"))
    want_stdin = p.interactive and bool(info.get("Config", {}).get("OpenStdin"))
    pending = ctx.client.begin("POST", f"/containers/{cid}/wait", {"condition": "next-exit"})
    stream = ctx.client.hijack(f"/containers/{cid}/attach", {
        "stream": True, "stdin": want_stdin, "stdout": True, "stderr": True})
    if _start_attached(ctx, cid, stream, pending, tty=tty, stdin=want_stdin, keys=keys, sig_proxy=True):
        return 0
    if pending is not None:
        return _wait_result(ctx, pending.first_json())
    return _wait(ctx, cid)


ATTACH = Spec("attach", "[OPTIONS] CONTAINER", [
    Flag("detach-keys", STR, help="Override the key sequence for detaching a container"),
    Flag("no-stdin", BOOL, help="Do not attach STDIN"),
    Flag("sig-proxy", BOOL, default=True, help="Proxy all received signals to the process"),
], min_args=1, max_args=1, help="Attach local standard input, output, and error streams to a running container")


def cmd_attach(ctx: Context, p: Parsed) -> int:
    keys = _detach_keys(p)
    info = inspect_container(ctx, p.args[0])
    cid = info["Id"]
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first")
    tty = bool(info.get("Config", {}).get("Tty"))
    want_stdin = not p.no_stdin and bool(info.get("Config", {}).get("OpenStdin"))
    stream = ctx.client.hijack(f"/containers/{cid}/attach", {
        "stream": True, "stdin": want_stdin, "stdout": True, "stderr": True, "logs": False})
    try:
        result = _carry_stdio(ctx, stream, tty=tty, stdin=want_stdin, keys=keys,
                              resize_path=f"/containers/{cid}/resize" if tty else None,
                              proxy=_signal_proxy(ctx, cid) if (p.sig_proxy and not tty) else None)
    finally:
        stream.close()
    if result == "detached":
        return 0
    return _wait(ctx, cid)


# ------------------------------------------------------------------ exec
EXEC = Spec("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", [
    Flag("detach", BOOL, "d", help="Detached mode: run command in the background"),
    Flag("detach-keys", STR, help="Override the key sequence for detaching a container"),
    Flag("env", LIST, "e", help="Set environment variables"),
    Flag("env-file", LIST, help="Read in a file of environment variables"),
    Flag("interactive", BOOL, "i", help="Keep STDIN open even if not attached"),
    Flag("privileged", BOOL, help="Give extended privileges to the command"),
    Flag("tty", BOOL, "t", help="Allocate a pseudo-TTY"),
    Flag("user", STR, "u", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
    Flag("workdir", STR, "w", help="Working directory inside the container"),
], min_args=2, interspersed=False, help="Execute a command in a running container")


def cmd_exec(ctx: Context, p: Parsed) -> int:
    from berth.cli.flagvalues import env_list, parse_env_file

    if p.tty and p.interactive and not p.detach and not sys.stdin.isatty():
        ctx.warn("berth: the input device is not a TTY (use -i without -t to pipe data in)")
        return 1
    keys = _detach_keys(p)
    name, cmd = p.args[0], p.args[1:]
    env: list[str] = []
    for path in p.env_file:
        env += parse_env_file(path)
    env += env_list(p.env)
    body: dict[str, Any] = {
        "User": p.user or "", "Privileged": p.privileged, "Tty": p.tty,
        "AttachStdin": p.interactive and not p.detach, "AttachStdout": not p.detach,
        "AttachStderr": not p.detach, "Detach": p.detach, "Env": env or None,
        "WorkingDir": p.workdir or "", "Cmd": cmd,
    }
    if p.detach_keys:
        body["DetachKeys"] = p.detach_keys
    res = ctx.client.post(f"/containers/{path_part(name)}/exec", body=body)
    exec_id = res["Id"]
    if p.detach:
        ctx.client.post(f"/exec/{exec_id}/start", body={"Detach": True, "Tty": p.tty})
        return 0
    stream = ctx.client.hijack(f"/exec/{exec_id}/start", body={"Detach": False, "Tty": p.tty})
    try:
        result = _carry_stdio(ctx, stream, tty=p.tty, stdin=p.interactive, keys=keys,
                              resize_path=f"/exec/{exec_id}/resize" if p.tty else None, proxy=None)
    finally:
        stream.close()
    if result == "detached":
        return 0
    info = ctx.client.get(f"/exec/{exec_id}/json")
    if info.get("Running"):
        # the output ended just before the daemon saw the exit: ask again soon, then less
        # often (2 ms doubling to 50 ms, about 10 s in all)
        import time

        delay = 0.002
        deadline = time.monotonic() + 10
        while info.get("Running") and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            info = ctx.client.get(f"/exec/{exec_id}/json")
    code = info.get("ExitCode")
    return int(code) if code is not None else 0


COMMANDS = {
    "run": (RUN, cmd_run),
    "create": (CREATE, cmd_create),
    "start": (START, cmd_start),
    "attach": (ATTACH, cmd_attach),
    "exec": (EXEC, cmd_exec),
}
