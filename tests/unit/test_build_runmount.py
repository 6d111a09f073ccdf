"""RUN --mount: the spec parser (BuildKit's keys, defaults and errors), the instruction's
flag handling (repeatable, errors naming the line), the mount points kept out of the
layer, and the cache-mount store (persistence, sharing, seeding, prune)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from berth.build import mountpoints
from berth.build.cachemounts import CacheMountStore, CacheSpec
from berth.build.instructions import Run, parse_stages
from berth.build.parser import DockerfileSyntaxError, parse
from berth.build.runmount import Mount, parse_mount
from berth.engine.db import Database
from berth.errors import InvalidParameter

# --- parse_mount ---------------------------------------------------------------------------


def test_cache_defaults_and_aliases() -> None:
    m = parse_mount("type=cache,dst=/root/.cache/pip")
    assert m == Mount(type="cache", target="/root/.cache/pip", readonly=False)
    assert m.cache_id == "/root/.cache/pip"
    m = parse_mount("type=cache,destination=/c,id=pip,sharing=LOCKED,mode=0700,uid=1000,gid=100,ro")
    assert (m.target, m.id, m.sharing, m.mode, m.uid, m.gid, m.readonly) == \
        ("/c", "pip", "locked", 0o700, 1000, 100, True)


def test_bind_is_the_default_type_and_read_only_by_default() -> None:
    m = parse_mount("target=/src,src=app,from=build")
    assert (m.type, m.target, m.source, m.from_, m.readonly) == ("bind", "/src", "app", "build", True)
    assert parse_mount("target=/src,rw").readonly is False
    assert parse_mount("target=/src,readwrite=true").readonly is False
    assert parse_mount("target=/src,readonly=false").readonly is False


def test_tmpfs_size_in_go_units() -> None:
    assert parse_mount("type=tmpfs,target=/t,size=64m").size == 64 << 20
    assert parse_mount("type=tmpfs,target=/t,size=1.5g").size == int(1.5 * (1 << 30))
    assert parse_mount("type=tmpfs,target=/t").readonly is False


@pytest.mark.parametrize("spec, error", [
    ("type=foo,target=/x", 'unsupported mount type "foo"'),
    ("source=a", "requires a target"),
    ("type=cache", "requires a target"),
    ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
    ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
    ("type=cache,target=/x,sharing=sometimes", 'unsupported sharing value "sometimes"'),
    ("target=/x,uid=1", 'uid not allowed for "bind" type mounts'),
    ("target=/x,sharing=locked", 'sharing not allowed for "bind" type mounts'),
    ("target=/x,size=1m", "unexpected key 'size' for mount type 'bind'"),
    ("type=tmpfs,target=/x,size=lots", "invalid value for size: lots"),
    ("type=tmpfs,target=/x,source=a", "tmpfs mounts take no source"),
    ("target=/x,bogus=1", "unexpected key 'bogus'"),
    ("target=/x,ro=maybe", "invalid value for readonly: maybe"),
    ("target=/x,oops", "invalid field 'oops' must be a key=value pair"),
    ("target=/x,from=$STAGE", "'from' doesn't support variable expansion"),
    ("type=secret,id=npmrc", "needs a BuildKit session"),
    ("type=ssh", "needs a BuildKit session"),
])
def test_bad_specs_are_refused(spec: str, error: str) -> None:
    with pytest.raises(InvalidParameter) as ei:
        parse_mount(spec)
    assert error in str(ei.value)


def test_variables_are_checked_once_expanded() -> None:
    raw = "type=cache,target=$DIR,uid=$UID"
    assert parse_mount(raw).target == ""          # the parse leaves it for the dispatch
    values = {"$DIR": "/cache", "$UID": "7"}
    m = parse_mount(raw, lambda v: values.get(v, v))
    assert (m.target, m.uid) == ("/cache", 7)
    with pytest.raises(InvalidParameter, match="invalid value x for uid"):
        parse_mount(raw, lambda v: {"$DIR": "/c", "$UID": "x"}.get(v, v))


def test_flag_is_one_spelling_of_the_spec() -> None:
    a = parse_mount("type=cache,dst=/c,mode=0700")
    b = parse_mount("target=/c,type=cache,mode=700,rw")
    assert a.flag() == b.flag() == "type=cache,rw,target=/c,mode=700"
    assert parse_mount("target=/c,rw").flag() != parse_mount("target=/c").flag()


# --- the RUN instruction ----------------------------------------------------------------


def test_mount_may_repeat_and_other_flags_may_not() -> None:
    df = parse("FROM x\nRUN --mount=type=cache,target=/a --mount=target=/b,source=b "
               "--network=none cat /b\n")
    run = parse_stages(df)[1][0].instructions[0]
    assert isinstance(run, Run)
    assert run.mounts == ["type=cache,target=/a", "target=/b,source=b"]
    assert run.network == "none"
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: Duplicate flag specified: network"):
        parse_stages(parse("FROM x\nRUN --network=none --network=host true\n"))


@pytest.mark.parametrize("flag, error", [
    ("--mount=type=nope,target=/x", 'unsupported mount type "nope"'),
    ("--mount=type=cache", "requires a target"),
    ("--mount=type=secret,id=x,target=/x", "BuildKit session"),
    ("--mount", "missing a value on flag: mount"),
])
def test_bad_mounts_name_the_line(flag: str, error: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse_stages(parse(f"FROM x\nENV A=1\nRUN {flag} true\n"))
    assert str(ei.value).startswith("Dockerfile:3: ")
    assert error in str(ei.value)


# --- mount points -----------------------------------------------------------------------


def test_made_mount_points_are_scrubbed_from_the_upper_dir(tmp_path: Path) -> None:
    """The rootfs stands in for the merged view, `upper` for what the step changed."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "root").mkdir(parents=True)
    os.chmod(rootfs / "root", 0o700)
    (rootfs / "etc").mkdir()
    (rootfs / "etc/motd").write_text("hi\n")
    mp = mountpoints.make(str(rootfs), [("/root/.cache/pip", True), ("/etc/conf", False),
                                        ("/srv/data", True), ("/etc/motd", False)])
    assert mp.made == ["root/.cache", "root/.cache/pip", "etc/conf", "srv", "srv/data"]
    assert (rootfs / "etc/conf").is_file() and (rootfs / "srv/data").is_dir()
    # the upper dir as overlayfs leaves it: copied-up parents, the made paths, and a file
    # the step wrote beside a made directory
    upper = tmp_path / "upper"
    for d in ("root/.cache/pip", "etc", "srv/data"):
        (upper / d).mkdir(parents=True)
    os.chmod(upper / "root", 0o700)
    (upper / "etc/conf").write_bytes(b"")
    (upper / "srv/kept").write_text("x")
    mp.scrub(str(upper))
    left = sorted(str(p.relative_to(upper)) for p in upper.rglob("*"))
    assert left == ["srv", "srv/kept"]


def test_a_changed_parent_stays_in_the_upper_dir(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "opt").mkdir(parents=True)
    mp = mountpoints.make(str(rootfs), [("/opt/x", True)])
    upper = tmp_path / "upper"
    (upper / "opt/x").mkdir(parents=True)
    os.chmod(upper / "opt", 0o711)  # the step chmod'ed /opt
    mp.scrub(str(upper))
    assert sorted(p.name for p in upper.rglob("*")) == ["opt"]


# --- cache-mount store ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> CacheMountStore:
    db = Database(tmp_path / "db.sqlite")
    yield CacheMountStore(tmp_path / "mounts", db)
    db.close()


def test_a_cache_persists_and_is_keyed_by_id_and_base(store: CacheMountStore) -> None:
    async def scenario() -> tuple[str, str, str, str]:
        async with store.acquire(CacheSpec("pip")) as d1:
            Path(d1, "wheel").write_text("w")
        async with store.acquire(CacheSpec("pip")) as d2:
            seen = os.listdir(d2)
        async with store.acquire(CacheSpec("pip", uid=1000, mode=0o700)) as d3:
            st = os.stat(d3)
        return d1, d2, d3, f"{seen}:{st.st_uid}:{st.st_mode & 0o777:o}"

    d1, d2, d3, info = asyncio.run(scenario())
    assert d1 == d2 != d3
    assert info == "['wheel']:1000:700"


def test_locked_waits_shared_shares_private_branches(store: CacheMountStore) -> None:
    async def scenario() -> list[str]:
        order: list[str] = []
        first = store.acquire(CacheSpec("c", sharing="locked"))
        d = await first.__aenter__()

        async def locked() -> None:
            async with store.acquire(CacheSpec("c", sharing="locked")):
                order.append("locked")

        async def private() -> str:
            async with store.acquire(CacheSpec("c", sharing="private")) as p:
                order.append("private")
                return p

        waiter = asyncio.ensure_future(locked())
        other = await private()          # does not wait: a new instance of its own
        for _ in range(10):
            await asyncio.sleep(0)     # the locked waiter gets every chance to (wrongly) run
        order.append("release")
        await first.__aexit__(None, None, None)
        await waiter
        assert other != d
        async with store.acquire(CacheSpec("c")) as s1, store.acquire(CacheSpec("c")) as s2:
            assert s1 == s2 == d       # shared users use the first instance together
        return order

    assert asyncio.run(scenario()) == ["private", "release", "locked"]


def test_a_failed_seed_leaves_nothing_and_prune_spares_caches_in_use(store: CacheMountStore) -> None:
    def bad_seed(d: str) -> None:
        Path(d, "half").write_text("x")
        raise OSError("seed failed")

    async def scenario() -> tuple[list[str], list[str]]:
        with pytest.raises(OSError):
            async with store.acquire(CacheSpec("s", seed="img:/"), bad_seed):
                pass
        assert os.listdir(store.root) == []
        assert store.db.execute("SELECT * FROM build_cache_mounts") == []
        async with store.acquire(CacheSpec("gone")) as d:
            Path(d, "f").write_bytes(b"x" * 10000)
        async with store.acquire(CacheSpec("busy")) as busy:
            gone, freed = await asyncio.to_thread(store.prune)
            assert freed >= 10000
            assert os.listdir(store.root) == [os.path.basename(busy)]
        return gone, store.in_use()

    gone, in_use = asyncio.run(scenario())
    assert len(gone) == 1 and in_use == []


def test_a_mount_point_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(InvalidParameter, match="cannot make the mount point /etc/passwd/x: Not a directory"):
        mountpoints.make(str(tmp_path), [("/etc/passwd/x", True)])
