"""The build context as the docker CLI sends it: a tar of the context directory that honours
.dockerignore, with the Dockerfile added under a private name when it lives outside."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass

from berth.cli.client import CLIError


@dataclass
class Context:
    tar_path: str | None       # a temporary file holding the tar (removed by the caller)
    dockerfile: str            # the `dockerfile` query parameter (path inside the context)


def _private_name(dockerfile: bytes) -> str:
    """The name an outside Dockerfile travels under: from its content, so that the same
    Dockerfile gives the same context (and build cache hits) every time."""
    import hashlib

    return ".dockerfile." + hashlib.sha256(dockerfile).hexdigest()[:20]


def _read_ignore(context_dir: str) -> list[str]:
    from berth.build.dockerignore import read_dockerignore

    path = os.path.join(context_dir, ".dockerignore")
    try:
        with open(path, encoding="utf-8") as fh:
            return read_dockerignore(fh.read())
    except FileNotFoundError:
        return []


def _keep_build_files(patterns: list[str], dockerfile_rel: str | None) -> list[str]:
    """Docker never leaves the Dockerfile or .dockerignore out of the context."""
    from berth.build.dockerignore import PatternMatcher

    if not patterns:
        return patterns
    out = list(patterns)
    pm = PatternMatcher(patterns)
    for name in (".dockerignore", dockerfile_rel):
        if name and pm.matches(name):
            out.append("!" + name)
    return out


def _walk(context_dir: str, patterns: list[str]) -> list[str]:
    """Relative paths (directories before their contents) the context includes."""
    from berth.build.dockerignore import PatternMatcher

    pm = PatternMatcher(patterns) if patterns else None
    keep_walking = pm is not None and pm.exclusions
    out: list[str] = []
    for root, dirs, files in os.walk(context_dir):
        rel_root = os.path.relpath(root, context_dir)
        rel_root = "" if rel_root == "." else rel_root
        dirs.sort()
        kept_dirs = []
        for d in dirs:
            rel = os.path.join(rel_root, d) if rel_root else d
            if pm is not None and pm.matches(rel):
                if keep_walking:
                    kept_dirs.append(d)   # an exception below may re-include something
                continue
            out.append(rel)
            kept_dirs.append(d)
        dirs[:] = [d for d in kept_dirs if not os.path.islink(os.path.join(root, d))]
        for f in sorted(files):
            rel = os.path.join(rel_root, f) if rel_root else f
            if pm is not None and pm.matches(rel):
                continue
            out.append(rel)
    # directories that were walked only for exceptions: add the ones holding kept files
    if keep_walking:
        have = set(out)
        for p in list(out):
            parent = os.path.dirname(p)
            while parent and parent not in have:
                have.add(parent)
                out.append(parent)
                parent = os.path.dirname(parent)
        out.sort(key=lambda p: (p.count(os.sep), p))
    return out


def _tarinfo(tar: tarfile.TarFile, path: str, arcname: str) -> tarfile.TarInfo:
    ti = tar.gettarinfo(path, arcname=arcname)
    # like the docker CLI: no owner names, uid/gid 0, so builds do not depend on the host
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def make_context(context_dir: str, dockerfile: str | None, tmp_dir: str | None = None,
                 dockerfile_text: bytes | None = None) -> Context:
    """Tar context_dir into a temp file. dockerfile: the -f value (None = ./Dockerfile);
    dockerfile_text: the Dockerfile's bytes when it came from stdin (`-f -`)."""
    if not os.path.isdir(context_dir):
        raise CLIError(f'unable to prepare context: path "{context_dir}" not found')
    context_dir = os.path.abspath(context_dir)
    extra_name: str | None = None
    extra_bytes: bytes | None = None
    if dockerfile_text is not None:
        extra_name = _private_name(dockerfile_text)
        extra_bytes = dockerfile_text
        rel = extra_name
    else:
        df_path = dockerfile or os.path.join(context_dir, "Dockerfile")
        if dockerfile and not os.path.isabs(dockerfile):
            # docker resolves a relative -f against the current directory
            df_path = os.path.abspath(dockerfile)
        if not os.path.exists(df_path):
            if dockerfile is None:
                lower = os.path.join(context_dir, "dockerfile")
                if os.path.exists(lower):
                    df_path = lower
                else:
                    raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                                   f"lstat {df_path}: no such file or directory")
            else:
                raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                               f"lstat {df_path}: no such file or directory")
        real_ctx = os.path.realpath(context_dir)
        real_df = os.path.realpath(df_path)
        if os.path.commonpath([real_ctx, real_df]) == real_ctx:
            rel = os.path.relpath(real_df, real_ctx)
        else:
            with open(df_path, "rb") as fh:
                extra_bytes = fh.read()
            extra_name = _private_name(extra_bytes)
            rel = extra_name
    patterns = _keep_build_files(_read_ignore(context_dir), rel if extra_name is None else None)
    ignore_text: bytes | None = None
    if extra_name is not None:
        # As the docker CLI does: list the added Dockerfile in .dockerignore so the daemon
        # leaves it out of what COPY sees.
        try:
            with open(os.path.join(context_dir, ".dockerignore"), "rb") as fh:
                ignore_text = fh.read()
        except FileNotFoundError:
            ignore_text = b""
        ignore_text += b"\n" + extra_name.encode() + b"\n"
    import tempfile

    fd, tar_path = tempfile.mkstemp(prefix="berth-build-", suffix=".tar", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel_path in _walk(context_dir, patterns):
                if ignore_text is not None and rel_path == ".dockerignore":
                    continue
                full = os.path.join(context_dir, rel_path)
                try:
                    ti = _tarinfo(tar, full, rel_path.replace(os.sep, "/"))
                except OSError as exc:
                    raise CLIError(f"error checking context: can't stat '{full}': {exc.strerror}") from None
                if ti.isreg():
                    try:
                        with open(full, "rb") as fh:
                            tar.addfile(ti, fh)
                    except PermissionError:
                        raise CLIError(f"error checking context: can't open '{full}': permission denied") from None
                else:
                    tar.addfile(ti)
            if extra_name is not None and extra_bytes is not None and ignore_text is not None:
                for name, data in ((".dockerignore", ignore_text), (extra_name, extra_bytes)):
                    ti = tarfile.TarInfo(name)
                    ti.size = len(data)
                    ti.mode = 0o600
                    tar.addfile(ti, io.BytesIO(data))
    except BaseException:
        os.unlink(tar_path)
        raise
    return Context(tar_path, rel.replace(os.sep, "/"))
