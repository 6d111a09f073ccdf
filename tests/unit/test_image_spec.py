"""Image spec structures, `--change` lines, and time parsing."""

from __future__ import annotations

import json

import pytest

from berth.engine.images import created_unix
from berth.errors import InvalidParameter
from berth.image import spec
from berth.image.changes import apply_changes
from berth.image.layers import chain_id, chain_ids

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_manifest_round_trip_both_media_types() -> None:
    for mt in (spec.OCI_MANIFEST, spec.DOCKER_MANIFEST):
        m = spec.Manifest(config=spec.Descriptor(spec.OCI_CONFIG, D1, 10),
                          layers=[spec.Descriptor(spec.OCI_LAYER_GZIP, D2, 20)], media_type=mt)
        back = spec.parse_manifest_or_index(m.to_bytes())
        assert isinstance(back, spec.Manifest)
        assert back.media_type == mt and back.config.digest == D1 and back.layers[0].size == 20


def test_index_and_platform() -> None:
    idx = spec.Index(manifests=[spec.Descriptor(spec.OCI_MANIFEST, D1, 5,
                                                platform={"os": "linux", "architecture": "arm64"}),
                                spec.Descriptor(spec.OCI_MANIFEST, D2, 5,
                                                platform={"os": "linux", "architecture": "amd64"})],
                     media_type=spec.DOCKER_MANIFEST_LIST)
    back = spec.parse_manifest_or_index(idx.to_bytes())
    assert isinstance(back, spec.Index) and back.media_type == spec.DOCKER_MANIFEST_LIST
    chosen = [m for m in back.manifests if spec.platform_matches(m.platform)]
    assert [m.digest for m in chosen] == [D2]


def test_canonical_json_is_sorted_and_compact() -> None:
    assert spec.canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


@pytest.mark.parametrize("bad", [b"[]", b"not json", b'{"schemaVersion": 1}',
                                 b'{"schemaVersion": 2, "config": {"size": 1}}'])
def test_bad_manifests_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        spec.parse_manifest_or_index(bad)


def test_media_type_compression() -> None:
    assert spec.compression_of(spec.DOCKER_LAYER_GZIP) == "gzip"
    assert spec.compression_of(spec.OCI_LAYER_ZSTD) == "zstd"
    assert spec.compression_of("application/vnd.docker.image.rootfs.diff.tar.zstd") == "zstd"
    assert spec.compression_of(spec.OCI_LAYER) == spec.compression_of(spec.DOCKER_LAYER) == ""
    assert spec.compression_of("application/octet-stream") == "?"


@pytest.mark.parametrize("bad", [None, "x", [], {}, {"size": 1}, {"digest": 5, "size": 1},
                                 {"digest": D1, "size": "1"}, {"digest": D1, "size": 1.0},
                                 {"digest": D1, "size": None}, {"digest": D1, "size": 1, "annotations": 5},
                                 {"digest": D1, "size": 1, "annotations": "ab"},
                                 {"digest": D1, "size": 1, "urls": 5}])
def test_descriptor_types_are_strict(bad: object) -> None:
    with pytest.raises(ValueError):
        spec.Descriptor.from_dict(bad)


def test_descriptor_fields() -> None:
    d = spec.Descriptor.from_dict({"digest": D1})
    assert (d.media_type, d.size, d.annotations, d.urls, d.foreign) == ("", 0, None, None, False)
    full = {"mediaType": spec.DOCKER_FOREIGN_LAYER, "digest": D1, "size": 3, "annotations": {"a": "b"},
            "platform": {"os": "windows"}, "urls": ["https://x"], "artifactType": "application/x-sig"}
    d = spec.Descriptor.from_dict(full)
    assert d.foreign and d.to_dict() == full
    assert spec.Descriptor(spec.OCI_LAYER_NONDIST_GZIP, D1, 1).foreign
    assert not spec.Descriptor(spec.OCI_LAYER_GZIP, D1, 1).foreign


@pytest.mark.parametrize(("doc", "problem"), [
    ({"schemaVersion": 2, "mediaType": spec.OCI_INDEX}, "'manifests' list"),
    ({"schemaVersion": 2, "manifests": "x"}, "'manifests' list"),
    ({"schemaVersion": 2, "config": {"digest": D1, "size": 1}, "layers": None}, "'layers' must be a list"),
    ({"schemaVersion": 2, "config": {"digest": D1, "size": 1}, "subject": {}}, "descriptor"),
])
def test_manifest_structure_is_checked(doc: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        spec.parse_manifest_or_index(json.dumps(doc).encode())


def test_document_annotations_that_are_no_object_are_ignored() -> None:
    m = spec.parse_manifest_or_index(json.dumps({"schemaVersion": 2, "mediaType": 5, "annotations": "x",
                                                 "config": {"digest": D1, "size": 1}}).encode())
    assert isinstance(m, spec.Manifest) and m.annotations is None and m.media_type == spec.OCI_MANIFEST


def test_chain_ids() -> None:
    assert chain_ids([]) == []
    assert chain_ids([D1]) == [D1]
    two = chain_ids([D1, D2])
    assert two[1] == chain_id(D1, D2) and two[1] not in (D1, D2)


def test_changes() -> None:
    cfg = apply_changes({"Env": ["A=0"]}, [
        'CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/run --flag", "ENV A=1 B=two",
        "EXPOSE 80 53/udp", 'LABEL a=b "c d"="e f"', "WORKDIR /srv", "USER nobody",
        "VOLUME /data /logs", "STOPSIGNAL SIGINT", "ONBUILD RUN true", "ENV C three words"])
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/run --flag"]
    assert cfg["Env"] == ["A=1", "B=two", "C=three words"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"a": "b", "c d": "e f"}
    assert (cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == ("/srv", "nobody", "SIGINT")
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}} and cfg["OnBuild"] == ["RUN true"]
    with pytest.raises(InvalidParameter, match="RUN is not a valid change command"):
        apply_changes({}, ["RUN rm -rf /"])


def test_created_unix() -> None:
    assert created_unix("2024-01-02T03:04:05Z") == 1704164645
    assert created_unix("2024-01-02T03:04:05.123456789Z") == 1704164645
    assert created_unix("2024-01-02T05:04:05.5+02:00") == 1704164645
    assert created_unix("") == 0 and created_unix("garbage") == 0


def test_new_image_config_shape() -> None:
    doc = spec.new_image_config([D1], {"Cmd": ["sh"]}, [{"created": "x"}], "2024-01-01T00:00:00Z")
    assert json.loads(json.dumps(doc))["rootfs"] == {"type": "layers", "diff_ids": [D1]}
    assert doc["os"] == "linux" and doc["config"]["Cmd"] == ["sh"]


def test_image_config_keeps_unknown_keys() -> None:
    raw = {"architecture": "arm64", "variant": "v8", "os": "linux", "config": {"Cmd": ["sh"]},
           "created": "2024-01-01T00:00:00Z", "container": "abc",
           "history": [{"created": "a", "created_by": "x"}, {"created": "b", "empty_layer": True}],
           "rootfs": {"type": "layers", "diff_ids": [D1]}}
    cfg = spec.ImageConfig.from_dict(raw)
    assert cfg.architecture == "arm64" and cfg.extra == {"variant": "v8", "container": "abc"}
    assert cfg.to_dict() == raw
    assert len(cfg.layer_history) == len(cfg.diff_ids) == 1
    assert spec.History.from_dict(raw["history"][1]).to_dict() == {"created": "b", "empty_layer": True}
