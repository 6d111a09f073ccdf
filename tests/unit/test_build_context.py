"""Context extraction safety, paths that cannot leave the context, globbing, hashing,
.dockerignore applied on the daemon side, and COPY/ADD's directory rules."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from berth.build.context import BuildContext, OutsideContext, extract_tar, glob_in, hash_tree, resolve_in_root
from berth.build.copier import Copier, Source, parse_chmod, parse_chown
from berth.errors import InvalidParameter


def tar_of(entries: list[tuple[str, str, str | bytes]]) -> io.BytesIO:
    """entries: (name, kind, data-or-linkname) with kind in file|dir|sym|hard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                raw = data.encode() if isinstance(data, str) else data
                ti.size = len(raw)
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(raw))
                continue
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
            else:
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data)
            tar.addfile(ti)
    buf.seek(0)
    return buf


def test_extract_keeps_files_modes_and_inside_symlinks(tmp_path: Path) -> None:
    extract_tar(tar_of([("a/b.txt", "file", "hi"), ("link", "sym", "a/b.txt"), ("abs", "sym", "/etc/passwd")]),
                tmp_path / "ctx")
    assert (tmp_path / "ctx/a/b.txt").read_text() == "hi"
    assert os.readlink(tmp_path / "ctx/abs") == "/etc/passwd"  # kept as a link, not followed


def test_extract_gzip_context(tmp_path: Path) -> None:
    import gzip
    raw = tar_of([("Dockerfile", "file", "FROM x\n")]).getvalue()
    extract_tar(io.BytesIO(gzip.compress(raw)), tmp_path / "ctx")
    assert (tmp_path / "ctx/Dockerfile").read_text() == "FROM x\n"


@pytest.mark.parametrize("entries", [
    [("../evil", "file", "x")],
    [("a/../../evil", "file", "x")],
    [("out", "sym", str(Path("/tmp"))), ("out/evil", "file", "x")],
    [("h", "hard", "../../etc/passwd")],
])
def test_extract_refuses_members_outside(tmp_path: Path, entries: list[tuple[str, str, str]]) -> None:
    with pytest.raises(OutsideContext):
        extract_tar(tar_of(entries), tmp_path / "ctx")
    assert not (Path("/tmp") / "evil").exists()
    assert not (tmp_path / "evil").exists()


def test_extract_rejects_garbage(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="not a valid tar"):
        extract_tar(io.BytesIO(b"this is no tar" * 100), tmp_path / "ctx")


def make_ctx(tmp_path: Path) -> BuildContext:
    root = tmp_path / "ctx"
    (root / "src/pkg").mkdir(parents=True)
    (root / "src/pkg/a.py").write_text("a")
    (root / "src/pkg/b.py").write_text("b")
    (root / "src/readme.md").write_text("r")
    (root / "top.txt").write_text("t")
    os.symlink("src/pkg", root / "inside-link")
    os.symlink("/etc", root / "abs-link")
    os.symlink("../pkg", root / "src/side-link")
    return BuildContext(str(root))


def test_resolve_follows_inside_links_and_refuses_outside(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    os.symlink("../..", tmp_path / "ctx/src/up-link")
    assert ctx.resolve("inside-link/a.py") == str(tmp_path / "ctx/src/pkg/a.py")
    for bad in ("../x", "abs-link/passwd", "abs-link", "src/up-link/x", "src/../../x"):
        with pytest.raises(OutsideContext, match="outside the build context"):
            ctx.resolve(bad)
    # an image rootfs clamps instead: absolute links stay inside the root
    assert resolve_in_root(ctx.root, "abs-link/passwd", clamp=True) == str(tmp_path / "ctx/etc/passwd")
    assert resolve_in_root(ctx.root, "../../top.txt", clamp=True) == str(tmp_path / "ctx/top.txt")


def test_glob_per_component(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    assert ctx.glob("src/pkg/*.py") == ["src/pkg/a.py", "src/pkg/b.py"]
    assert ctx.glob("src/*") == ["src/pkg", "src/readme.md", "src/side-link"]
    os.symlink("../..", tmp_path / "ctx/src/up-link")
    with pytest.raises(OutsideContext, match="src/up-link"):
        ctx.glob("src/*")
    assert ctx.glob("*.txt") == ["top.txt"]
    assert ctx.glob("src/pkg/[a].py") == ["src/pkg/a.py"]
    assert ctx.glob("nothing*") == []
    assert ctx.glob("/top.txt") == ["top.txt"]
    assert ctx.glob(".") == ["."]
    with pytest.raises(OutsideContext):
        ctx.glob("../*")


def test_hash_tree_ignores_mtime_but_sees_content_and_mode(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    p = tmp_path / "ctx/src"
    h1 = hash_tree(str(p), "src")
    assert set(h1) >= {"src", "src/pkg/a.py", "src/readme.md", "src/side-link"}
    os.utime(p / "pkg/a.py", (1, 1))
    assert hash_tree(str(p), "src") == h1
    (p / "pkg/a.py").write_text("changed")
    h2 = hash_tree(str(p), "src")
    assert [k for k in h1 if h1[k] != h2.get(k)] == ["src/pkg/a.py"]
    os.chmod(p / "readme.md", 0o600)
    assert hash_tree(str(p), "src")["src/readme.md"] != h2["src/readme.md"]
    del ctx


def test_dockerignore_applied_to_extracted_context(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    (Path(ctx.root) / ".dockerignore").write_text("src/pkg\n*.txt\n!keep.txt\n")
    (Path(ctx.root) / "keep.txt").write_text("k")
    (Path(ctx.root) / "Dockerfile").write_text("FROM x")
    ctx.apply_dockerignore(preload=("Dockerfile",))
    root = Path(ctx.root)
    assert not (root / "src/pkg/a.py").exists()
    assert not (root / "top.txt").exists()
    assert (root / "keep.txt").exists() and (root / "src/readme.md").exists()
    assert (root / "Dockerfile").exists() and (root / ".dockerignore").exists()
    # an excluded Dockerfile (and .dockerignore) is read first, then gone from the context
    (root / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    ctx.apply_dockerignore(preload=("Dockerfile",))
    assert not (root / "Dockerfile").exists() and not (root / ".dockerignore").exists()
    assert ctx.read_text("Dockerfile") == "FROM x" and ctx.has("Dockerfile")


# --- copier: Docker's directory rules -------------------------------------------------

@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (r / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    (r / "usr/bin").mkdir(parents=True)
    os.symlink("usr/bin", r / "bin")
    (r / "existing").mkdir()
    return r


def src(ctx: BuildContext, rel: str) -> Source:
    return Source(root=ctx.root, rel=rel)


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_file_to_new_path_and_into_existing_dir(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    c = Copier(str(rootfs))
    c.copy([src(ctx, "top.txt")], "/new/name.txt")
    assert (rootfs / "new/name.txt").read_text() == "t"
    c.copy([src(ctx, "top.txt")], "/existing")
    assert (rootfs / "existing/top.txt").read_text() == "t"
    c.copy([src(ctx, "top.txt")], "/made/dir/")
    assert (rootfs / "made/dir/top.txt").read_text() == "t"


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_directory_source_copies_its_contents(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    Copier(str(rootfs)).copy([src(ctx, "src")], "/app")
    assert (rootfs / "app/pkg/a.py").read_text() == "a"
    assert (rootfs / "app/readme.md").exists()
    assert not (rootfs / "app/src").exists()
    assert os.readlink(rootfs / "app/side-link") == "../pkg"  # links inside are copied as links


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_relative_dest_uses_workdir_and_links_resolve_inside_rootfs(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    Copier(str(rootfs)).copy([src(ctx, "top.txt")], "sub/", workdir="/work")
    assert (rootfs / "work/sub/top.txt").exists()
    Copier(str(rootfs)).copy([src(ctx, "top.txt")], "/bin/tool")
    assert (rootfs / "usr/bin/tool").read_text() == "t"


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_several_sources_need_a_directory_destination(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    with pytest.raises(InvalidParameter, match="must be a directory and end with a /"):
        Copier(str(rootfs)).copy([src(ctx, "top.txt"), src(ctx, "src/readme.md")], "/d")
    Copier(str(rootfs)).copy([src(ctx, "top.txt"), src(ctx, "src/readme.md")], "/d/")
    assert sorted(os.listdir(rootfs / "d")) == ["readme.md", "top.txt"]


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_ownership_and_mode(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    os.chmod(Path(ctx.root) / "top.txt", 0o640)
    Copier(str(rootfs)).copy([src(ctx, "top.txt")], "/plain")
    st = os.stat(rootfs / "plain")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o640)
    uid, gid = parse_chown("app:staff", str(rootfs))
    assert (uid, gid) == (1000, 50)
    assert parse_chown("7", str(rootfs)) == (7, 7)
    Copier(str(rootfs), uid, gid, parse_chmod("755")).copy([src(ctx, "src")], "/owned/")
    for p in (rootfs / "owned", rootfs / "owned/pkg/a.py"):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 50, 0o755)
    with pytest.raises(InvalidParameter, match="can't find"):
        parse_chown("nobody-here", str(rootfs))
    with pytest.raises(InvalidParameter):
        parse_chmod("9z")


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_add_extracts_local_archives_but_copy_does_not(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_ctx(tmp_path)
    arch = tar_of([("pkg/x.txt", "file", "from-tar")]).getvalue()
    import gzip
    (Path(ctx.root) / "a.tar.gz").write_bytes(gzip.compress(arch))
    Copier(str(rootfs), 7, 8).copy([src(ctx, "a.tar.gz")], "/opt/", is_add=True)
    assert (rootfs / "opt/pkg/x.txt").read_text() == "from-tar"
    st = os.stat(rootfs / "opt/pkg/x.txt")
    assert (st.st_uid, st.st_gid) == (7, 8)
    Copier(str(rootfs)).copy([src(ctx, "a.tar.gz")], "/copied/")
    assert (rootfs / "copied/a.tar.gz").exists()


@pytest.mark.root  # files are chowned to 0:0 or --chown's owner
def test_inline_heredoc_source(rootfs: Path) -> None:
    Copier(str(rootfs)).copy([Source(root="", rel="conf", inline=b"k=v\n")], "/etc/app/")
    assert (rootfs / "etc/app/conf").read_text() == "k=v\n"
    Copier(str(rootfs)).copy([Source(root="", rel="conf", inline=b"x\n")], "/exact")
    assert (rootfs / "exact").read_text() == "x\n"


def test_glob_in_image_rootfs(rootfs: Path) -> None:
    (rootfs / "usr/bin/a1").write_text("")
    (rootfs / "usr/bin/a2").write_text("")
    assert glob_in(str(rootfs), "/bin/a*", clamp=True) == ["bin/a1", "bin/a2"]


def test_extract_accepts_a_last_member_without_padding(tmp_path: Path) -> None:
    # what the docker CLI sends when -f names a Dockerfile outside the context
    raw = tar_of([("f", "file", "data\n"), (".dockerfile.abc", "file", "FROM x\n")]).getvalue()
    cut = 512 + 512 + 512 + len("FROM x\n")  # no padding, no end blocks
    extract_tar(io.BytesIO(raw[:cut]), tmp_path / "ctx")
    assert (tmp_path / "ctx/.dockerfile.abc").read_text() == "FROM x\n"
    assert (tmp_path / "ctx/f").read_text() == "data\n"
