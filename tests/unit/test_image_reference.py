"""Docker's reference grammar: normalisation, familiar form, and refusals."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.image import reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, full, familiar", [
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("index.docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("docker.io/library/nginx:alpine", "docker.io/library/nginx:alpine", "nginx:alpine"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app/sub:v1", "docker.io/user/app/sub:v1", "user/app/sub:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app:v2", "localhost:5000/app:v2", "localhost:5000/app:v2"),
    ("registry.example.com/team/app", "registry.example.com/team/app:latest",
     "registry.example.com/team/app:latest"),
    ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
    ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
    ("my-host:443/x", "my-host:443/x:latest", "my-host:443/x:latest"),
    ("a_b/c__d/e--f.g:T_1.x-y", "docker.io/a_b/c__d/e--f.g:T_1.x-y", "a_b/c__d/e--f.g:T_1.x-y"),
    (f"nginx@{D}", f"docker.io/library/nginx@{D}", f"nginx@{D}"),
    (f"nginx:1@{D}", f"docker.io/library/nginx:1@{D}", f"nginx:1@{D}"),
    (f"host:5000/n@{D}", f"host:5000/n@{D}", f"host:5000/n@{D}"),
    ("Upper.Host/app", "Upper.Host/app:latest", "Upper.Host/app:latest"),
])
def test_valid(text: str, full: str, familiar: str) -> None:
    ref = reference.parse(text)
    assert ref.full == full
    assert ref.familiar == familiar


def test_fields_and_forms() -> None:
    ref = reference.parse(f"localhost:5000/ns/repo:tag@{D}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "ns/repo", "tag", D)
    assert ref.name == "localhost:5000/ns/repo"
    assert ref.familiar_name == "localhost:5000/ns/repo"
    assert reference.parse("busybox").repo_tag == "busybox:latest"
    assert reference.parse("busybox", default_tag=False).tag is None
    assert reference.parse(f"busybox@{D}").tag is None  # no :latest next to a digest
    assert str(reference.parse("docker.io/library/busybox:1")) == "busybox:1"


@pytest.mark.parametrize("text, message", [
    ("", "repository name must have at least one component"),
    ("UPPER", "invalid reference format: repository name must be lowercase"),
    ("user/UPPER", "invalid reference format: repository name must be lowercase"),
    ("localhost:5000/Repo", "invalid reference format: repository name must be lowercase"),
    ("a..b", "invalid reference format"),
    ("a/../b", "invalid reference format"),
    ("../etc", "invalid reference format"),
    ("-leading", "invalid reference format"),
    ("trailing-", "invalid reference format"),
    ("a/", "invalid reference format"),
    ("/a", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a:", "invalid reference format"),
    ("a:-tag", "invalid reference format"),
    ("a:" + "t" * 129, "invalid reference format"),
    ("a@sha256:abc", "invalid reference format"),
    ("a@sha256:" + "A" * 64, "invalid reference format"),
    ("a@", "invalid reference format"),
    ("a b", "invalid reference format"),
    ("a___b", "invalid reference format"),
    ("host:port/a", "invalid reference format"),
    ("x" * 256, "must not be more than 255 characters"),
    ("ab" * 32, "cannot specify 64-byte hexadecimal strings"),
])
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        reference.parse(text)
    assert message in str(exc.value)
    assert exc.value.status == 400


def test_tag_and_digest_validation() -> None:
    assert reference.validate_tag("v1.0-rc_1") == "v1.0-rc_1"
    with pytest.raises(InvalidParameter, match="invalid tag format"):
        reference.validate_tag(".hidden")
    with pytest.raises(InvalidParameter, match="invalid digest format"):
        reference.validate_digest("sha256:1234")
    assert reference.validate_digest(D) == D


def test_repository_only() -> None:
    assert reference.parse_repository("localhost:5000/app").name == "localhost:5000/app"
    with pytest.raises(InvalidParameter):
        reference.parse_repository("app:tag")


def test_looks_like_id() -> None:
    assert reference.looks_like_id("abc123")
    assert reference.looks_like_id("sha256:" + "a" * 64)
    assert not reference.looks_like_id("busybox")
