"""Pure parts: platform selection, search ranking, name grammar, endpoints, manifests."""

from __future__ import annotations

import json

import pytest

from berth.errors import InvalidParameter, NotFound
from berth.image import spec
from berth.registry import mediatypes as mt
from berth.registry.client.endpoints import endpoints, is_insecure, search_endpoint
from berth.registry.client.platform import Platform, parse_platform, select
from berth.registry.client.registry import registry_of_server, split_search_term
from berth.registry.names import name_problem
from berth.registry.server.search import Repo, rank, search_response


def _d(arch: str, os: str = "linux", variant: str | None = None, digest: str = "") -> spec.Descriptor:
    p = {"os": os, "architecture": arch}
    if variant:
        p["variant"] = variant
    return spec.Descriptor(mt.OCI_MANIFEST, digest or f"sha256:{arch}{variant or ''}{os}", 1, platform=p)


def test_platform_selection() -> None:
    entries = [_d("arm", variant="v6"), _d("arm", variant="v7"), _d("arm64", variant="v8"), _d("amd64"),
               _d("unknown", os="unknown")]
    assert select(entries, Platform("linux", "amd64")).digest == "sha256:amd64linux"
    assert select(entries, Platform("linux", "arm64")).digest == "sha256:arm64v8linux"
    assert select(entries, Platform("linux", "arm")).digest == "sha256:armv7linux"
    assert select(entries, Platform("linux", "arm", "v6")).digest == "sha256:armv6linux"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        select(entries, Platform("linux", "s390x"))
    with pytest.raises(NotFound):
        select([_d("amd64", os="windows")], Platform("linux", "amd64"))
    # attestation entries are never chosen
    with pytest.raises(NotFound):
        select([_d("unknown", os="unknown")], Platform("unknown", "unknown"))


def test_parse_platform() -> None:
    assert parse_platform("linux/amd64") == Platform("linux", "amd64")
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform("linux/x86_64") == Platform("linux", "amd64")
    assert parse_platform("").os == "linux"
    with pytest.raises(InvalidParameter):
        parse_platform("linux//")


def test_search_ranking() -> None:
    repos = [Repo("other/app", "runs behind nginx"), Repo("someone/nginx-proxy"), Repo("library/nginx"),
             Repo("x/my-nginx"), Repo("other/unrelated")]
    assert [r.name for r in rank(repos, "nginx")] == ["library/nginx", "someone/nginx-proxy", "x/my-nginx",
                                                      "other/app"]
    assert [r.name for r in rank(repos, "NGINX-PROXY")] == ["someone/nginx-proxy"]
    doc = search_response(repos, "nginx", n=2, page=2)
    assert doc["num_results"] == 4 and doc["num_pages"] == 2 and doc["page"] == 2
    assert [r["name"] for r in doc["results"]] == ["x/my-nginx", "other/app"]
    assert set(doc["results"][0]) == {"name", "description", "star_count", "is_official", "is_automated"}


@pytest.mark.parametrize("name,ok", [("a", True), ("library/busybox", True), ("a.b_c__d--e/f", True),
                                     ("a/../b", False), ("..", False), ("A", False), ("a//b", False),
                                     ("a_", False), ("-a", False), ("a" * 256, False), ("", False),
                                     ("a/./b", False), ("a...b", False)])
def test_repository_names(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok


def test_endpoints_mirrors_and_insecure() -> None:
    eps = endpoints("docker.io", ["https://mirror.example"], ["127.0.0.0/8"])
    assert [e.candidates for e in eps] == [["https://mirror.example"], ["https://registry-1.docker.io"]]
    assert eps[0].mirror and not eps[1].mirror
    assert [e.url for e in endpoints("docker.io", ["https://m"], [], push=True)] == ["https://registry-1.docker.io"]
    assert endpoints("docker.io", [], ["127.0.0.0/8"], hub_endpoint="127.0.0.1:5000")[0].candidates == [
        "https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    assert endpoints("127.0.0.1:5000", [], ["127.0.0.0/8"])[0].candidates == [
        "https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    assert endpoints("reg.example:443", [], ["127.0.0.0/8"])[0].candidates == ["https://reg.example:443"]
    assert endpoints("reg.example", [], ["reg.example"])[0].candidates[-1] == "http://reg.example"
    assert is_insecure("10.1.2.3:5000", ["10.0.0.0/8"]) and not is_insecure("11.1.2.3", ["10.0.0.0/8"])
    assert is_insecure("localhost:5000", [])
    assert search_endpoint("docker.io").url == "https://index.docker.io"


def test_server_names_and_search_terms() -> None:
    assert registry_of_server("https://index.docker.io/v1/") == "docker.io"
    assert registry_of_server("") == "docker.io"
    assert registry_of_server("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert split_search_term("127.0.0.1:5000/busy") == ("127.0.0.1:5000", "busy")
    assert split_search_term("library/busybox") == ("docker.io", "library/busybox")


def test_manifest_parsing() -> None:
    m = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                    "config": {"mediaType": mt.DOCKER_CONFIG, "digest": "sha256:" + "a" * 64, "size": 3},
                    "layers": [{"mediaType": mt.DOCKER_FOREIGN_LAYER, "digest": "sha256:" + "b" * 64,
                                "size": 1, "urls": ["https://x"]}]}).encode()
    pm = mt.parse_manifest(m, mt.DOCKER_MANIFEST)
    assert isinstance(pm, spec.Manifest) and pm.media_type == mt.DOCKER_MANIFEST and pm.layers[0].foreign
    with pytest.raises(ValueError, match="does not match"):
        mt.parse_manifest(m, mt.OCI_MANIFEST)
    with pytest.raises(ValueError, match="schema 1"):
        mt.parse_manifest(b'{"schemaVersion":1}')
    idx = mt.parse_manifest(json.dumps({"schemaVersion": 2, "manifests": []}).encode())
    assert isinstance(idx, spec.Index) and idx.media_type == mt.OCI_INDEX


@pytest.mark.parametrize(("doc", "content_type", "problem"), [
    ({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "sha256:" + "a" * 64, "size": 1}},
     mt.OCI_INDEX, "does not match"),
    ({"schemaVersion": 2, "mediaType": "application/x-foo"}, None, "unsupported manifest media type"),
    ({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}, None, "'manifests' list"),
    ({"schemaVersion": 2, "config": {"digest": "sha256:" + "a" * 64, "size": 1, "annotations": 5}}, None,
     "annotations"),
])
def test_registry_refuses(doc: dict[str, object], content_type: str | None, problem: str) -> None:
    # always a ValueError: the server answers it with 400 MANIFEST_INVALID, not a 500
    with pytest.raises(ValueError, match=problem):
        mt.parse_manifest(json.dumps(doc).encode(), content_type)


def test_registry_keeps_subject_and_artifact_type_of_an_index() -> None:
    d = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 7}
    idx = mt.parse_manifest(json.dumps({"schemaVersion": 2, "manifests": [d], "subject": d,
                                        "artifactType": "application/x-sig"}).encode())
    assert isinstance(idx, spec.Index) and idx.subject == spec.Descriptor.from_dict(d)
    assert idx.artifact_type == "application/x-sig"
    assert spec.parse_manifest_or_index(idx.to_bytes()) == idx
