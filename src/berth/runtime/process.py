"""The container process: environment, working directory, user and groups, executable lookup."""

from __future__ import annotations

import errno
import os
import stat

from berth import kernel
from berth.runtime.errors import ExecNotFound, ExecNotPermitted

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        if key:
            out[key] = value if sep else ""
    return out


def lookup(arg0: str, env: dict[str, str]) -> str:
    """Find the executable as Go's exec.LookPath does, inside the current root; errors are
    worded as runc words them (Docker maps 'not found' to 127, 'permission denied' to 126)."""
    if not arg0:
        raise ExecNotFound('exec: "": executable file not found in $PATH')
    if "/" in arg0:
        _check(arg0, arg0)
        return arg0
    denied = None
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", arg0)
        try:
            _check(cand, arg0)
            return cand
        except ExecNotPermitted as exc:
            denied = denied or exc
        except ExecNotFound:
            continue
    if denied is not None:
        raise denied
    raise ExecNotFound(f'exec: "{arg0}": executable file not found in $PATH')


def _check(path: str, arg0: str) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ExecNotFound(f'exec: "{arg0}": stat {path}: no such file or directory') from None
        raise ExecNotPermitted(f'exec: "{arg0}": stat {path}: {exc.strerror.lower()}') from None
    if stat.S_ISDIR(st.st_mode) or not os.access(path, os.X_OK):
        raise ExecNotPermitted(f'exec: "{arg0}": permission denied')


def set_user(uid: int, gid: int, additional_gids: list[int] | None, keep_caps: bool) -> None:
    """setgroups/setgid/setuid; with `keep_caps` permitted capabilities survive a non-root uid."""
    os.setgroups(sorted(set(additional_gids or [])))
    if keep_caps:
        kernel.prctl(kernel.PR_SET_KEEPCAPS, 1)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if keep_caps:
        kernel.prctl(kernel.PR_SET_KEEPCAPS, 0)


def home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def final_env(env: list[str] | None, uid: int, terminal: bool) -> list[str]:
    """The spec's env, plus PATH/HOME/TERM when missing (as runc does)."""
    d = env_dict(env)
    out = list(env or [])
    if "PATH" not in d:
        out.append("PATH=" + DEFAULT_PATH)
    if "HOME" not in d:
        out.append("HOME=" + home_of(uid))
    if terminal and "TERM" not in d:
        out.append("TERM=xterm")
    return out
