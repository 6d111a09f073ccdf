"""Recipe lookup and refusal messages of `berth bootstrap` (pure: no mmdebstrap)."""

from __future__ import annotations

import pytest

from berth.bootstrap.recipes import (
    list_recipes,
    lookup,
    split_reference,
    upstream_version,
    version_matches,
)
from berth.errors import InvalidParameter


@pytest.mark.parametrize("ref,name,tag", [
    ("python:3.11-slim", "python", "3.11-slim"),
    ("docker.io/library/python:3.11-slim", "python", "3.11-slim"),
    ("library/nginx", "nginx", "latest"),
    ("busybox", "busybox", "latest"),
    ("debian:12-slim", "debian", "12-slim"),
])
def test_lookup_finds_recipe(ref: str, name: str, tag: str) -> None:
    recipe, got_tag = lookup(ref)
    assert (recipe.name, got_tag) == (name, tag)
    assert got_tag in recipe.tags


def test_aliases_share_a_recipe() -> None:
    assert lookup("debian:12-slim")[0] is lookup("debian:bookworm-slim")[0]
    assert lookup("debian:12")[0] is lookup("debian:bookworm")[0]
    assert lookup("debian:bookworm")[0] is not lookup("debian:bookworm-slim")[0]
    assert lookup("debian:bookworm")[0].slim is False


def test_required_recipes_exist() -> None:
    refs = {f"{r.name}:{t}" for r in list_recipes() for t in r.tags}
    assert {"busybox:latest", "debian:bookworm-slim", "debian:12-slim", "debian:bookworm",
            "python:3.11-slim", "nginx:latest"} <= refs


@pytest.mark.parametrize("ref,wanted", [
    ("python:3.8-slim", ["python:3.8-slim", "bookworm ships Python 3.11", "not 3.8",
                         "python:3.11-slim", "nothing is substituted"]),
    ("python:3.12-slim", ["bookworm ships Python 3.11", "not 3.12"]),
    ("python:3-slim", ["newest 3.x", "Python 3.11"]),
    ("nginx:1.19", ["bookworm ships nginx 1.22", "not 1.19", "nginx:latest"]),
    ("debian:bullseye-slim", ["bullseye", "Debian 12 (bookworm)"]),
    ("debian:11", ["ships Debian 12 (bookworm)", "not 11"]),
    ("debian:latest", ["newest release", "Debian 12"]),
    ("python:3.11", ["no recipe for that tag", "python:3.11-slim"]),
])
def test_refusals_say_what_bookworm_ships(ref: str, wanted: list[str]) -> None:
    with pytest.raises(InvalidParameter) as exc:
        lookup(ref)
    msg = str(exc.value)
    for w in wanted:
        assert w in msg, (w, msg)


def test_unknown_image_lists_known_recipes() -> None:
    with pytest.raises(InvalidParameter) as exc:
        lookup("redis:7")
    msg = str(exc.value)
    assert "no recipe for 'redis'" in msg
    for ref in ("busybox:latest", "debian:bookworm-slim", "python:3.11-slim", "nginx:latest"):
        assert ref in msg


@pytest.mark.parametrize("bad", ["", "python@sha256:" + "a" * 64, "Python:3.11-slim", "python:bad tag"])
def test_invalid_references_refused(bad: str) -> None:
    with pytest.raises(InvalidParameter):
        split_reference(bad)


def test_upstream_version() -> None:
    assert upstream_version("1:1.35.0-4+deb12u1+b1") == "1.35.0"
    assert upstream_version("3.11.2-6+deb12u9") == "3.11.2"
    assert upstream_version("12.4+deb12u13") == "12.4"
    assert upstream_version("23.0.1+dfsg-1") == "23.0.1"
    assert version_matches("3.11", "3.11.2-6")
    assert not version_matches("3.1", "3.11.2-6")
    assert version_matches("12", "12.4+deb12u13")


def test_recipe_contents_match_the_brief() -> None:
    py = lookup("python:3.11-slim")[0]
    assert py.cmd == ("python3",)
    assert dict(py.env)["LANG"] == "C.UTF-8" and "PATH" in dict(py.env)
    assert ("PYTHON_VERSION", "python3.11") in py.version_env
    assert "usr/lib/python3.11/EXTERNALLY-MANAGED" in py.strip_globs()
    assert {p for p, _ in py.symlinks} >= {"/usr/local/bin/python", "/usr/local/bin/pip"}
    ngx = lookup("nginx:latest")[0]
    assert ngx.cmd == ("nginx", "-g", "daemon off;")
    assert ngx.exposed_ports == ("80/tcp",) and ngx.stop_signal == "SIGQUIT"
    assert dict(ngx.symlinks)["/var/log/nginx/access.log"] == "/dev/stdout"
    slim = lookup("debian:bookworm-slim")[0]
    assert any(f.startswith("path-exclude=/usr/share/doc") for f in slim.dpkg_filters())
    assert "var/lib/apt/lists/*" in slim.strip_globs()
    assert lookup("debian:bookworm")[0].dpkg_filters() == ()


def test_recipe_digest_is_stable_and_distinct() -> None:
    digests = [r.digest() for r in list_recipes()]
    assert digests == [r.digest() for r in list_recipes()]
    assert len(set(digests)) == len(digests)


def test_module_lists_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    from berth.bootstrap.__main__ import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in out] == [r.reference for r in list_recipes()]


def test_module_reports_refusals(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from berth.bootstrap.__main__ import main

    assert main(["-o", str(tmp_path), "nginx:1.19"]) == 1
    assert "bookworm ships nginx 1.22" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
