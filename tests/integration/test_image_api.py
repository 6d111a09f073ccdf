"""Image endpoints of berthd, through the raw Engine API and the real docker CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]


def _import(daemon, busybox_tar: str, repo: str, tag: str = "latest", **params):  # type: ignore[no-untyped-def]
    r = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": repo, "tag": tag, **params},
                   body=Path(busybox_tar).read_bytes(), headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, r.text
    status = json.loads(r.text.splitlines()[0])["status"]
    assert status.startswith("sha256:") and len(status) == 71
    return status


def test_import_list_inspect_history(daemon, busybox_tar: str) -> None:  # type: ignore[no-untyped-def]
    image_id = _import(daemon, busybox_tar, "apitest/bb", "one", message="hello",
                       changes="CMD [\"echo\", \"hi\"]")
    r = daemon.api("GET", "/v1.41/images/json")
    assert r.status == 200
    entry = next(x for x in r.json() if x["Id"] == image_id)
    assert entry["RepoTags"] == ["apitest/bb:one"]
    assert entry["Size"] > 1_000_000 and entry["Created"] > 1_600_000_000
    r = daemon.api("GET", "/images/apitest/bb:one/json")
    assert r.status == 200, r.text
    info = r.json()
    assert info["Id"] == image_id and info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Config"]["Cmd"] == ["echo", "hi"] and info["Comment"] == "hello"
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    r = daemon.api("GET", "/images/apitest/bb:one/history")
    assert r.status == 200 and r.json()[0]["Id"] == image_id and r.json()[0]["Comment"] == "hello"
    r = daemon.api("GET", "/images/json", params={"filters": json.dumps({"reference": ["apitest/*"]})})
    assert [x["Id"] for x in r.json()] == [image_id]
    r = daemon.api("GET", "/images/nosuch:thing/json")
    assert r.status == 404 and r.json()["message"] == "No such image: nosuch:thing"
    r = daemon.api("GET", "/images/json", params={"filters": json.dumps({"bogus": ["x"]})})
    assert r.status == 400


def test_tag_and_remove(daemon, busybox_tar: str) -> None:  # type: ignore[no-untyped-def]
    image_id = _import(daemon, busybox_tar, "apitest/rm")
    r = daemon.api("POST", "/images/apitest/rm/tag", params={"repo": "localhost:5000/apitest/rm", "tag": "x"})
    assert r.status == 201, r.text
    r = daemon.api("POST", "/images/apitest/rm/tag", params={"repo": "Bad", "tag": "x"})
    assert r.status == 400 and "must be lowercase" in r.json()["message"]
    r = daemon.api("DELETE", "/images/apitest/rm")
    assert r.status == 200 and r.json() == [{"Untagged": "apitest/rm:latest"}]
    r = daemon.api("DELETE", "/images/localhost:5000/apitest/rm:x")
    assert r.status == 200
    assert {"Deleted": image_id} in r.json()
    assert daemon.api("GET", f"/images/{image_id}/json").status == 404
    assert daemon.api("DELETE", "/images/apitest/rm").status == 404


def test_bad_import_is_refused_and_leaves_nothing(daemon) -> None:  # type: ignore[no-untyped-def]
    before = daemon.api("GET", "/images/json").json()
    r = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": "apitest/bad"},
                   body=b"\x1f\x8bnot really gzip" * 10)
    assert r.status == 400, r.text
    r = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": "Bad/Name"}, body=b"")
    assert r.status == 400
    assert daemon.api("GET", "/images/json").json() == before
    tmp = daemon.names.data_root / "tmp"
    assert [p for p in tmp.iterdir()] == []


def test_save_and_load_through_api(daemon, busybox_tar: str) -> None:  # type: ignore[no-untyped-def]
    image_id = _import(daemon, busybox_tar, "apitest/save", "v1")
    r = daemon.api("GET", "/images/get", params={"names": "apitest/save:v1"})
    assert r.status == 200 and r.headers["content-type"] == "application/x-tar"
    archive = r.body
    assert daemon.api("DELETE", "/images/apitest/save:v1").status == 200
    r = daemon.api("POST", "/images/load", params={"quiet": "1"}, body=archive)
    assert r.status == 200, r.text
    assert json.loads(r.text.splitlines()[0]) == {"stream": "Loaded image: apitest/save:v1\n"}
    assert daemon.api("GET", "/images/apitest/save:v1/json").json()["Id"] == image_id
    r = daemon.api("POST", "/images/load", body=b"garbage" * 100)
    assert r.status == 400


def test_docker_cli_image_verbs(daemon, busybox_tar: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image_id = _import(daemon, busybox_tar, "apitest/cli")
    r = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert r.returncode == 0, r.stderr
    assert f"apitest/cli:latest {image_id[7:19]}" in r.stdout
    assert daemon.docker("tag", "apitest/cli", "apitest/cli:two").returncode == 0
    r = daemon.docker("image", "inspect", "--format", "{{.Id}} {{json .RepoTags}}", "apitest/cli:two")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == image_id and "apitest/cli:two" in r.stdout
    r = daemon.docker("history", "apitest/cli")
    assert r.returncode == 0 and "Imported from -" in r.stdout
    out = tmp_path / "cli.tar"
    r = daemon.docker("save", "-o", str(out), "apitest/cli:two")
    assert r.returncode == 0, r.stderr
    assert daemon.docker("rmi", "apitest/cli:two").returncode == 0
    r = daemon.docker("load", "-i", str(out))
    assert r.returncode == 0, r.stderr
    assert "Loaded image: apitest/cli:two" in r.stdout
    r = daemon.docker("rmi", "-f", image_id)
    assert r.returncode == 0, r.stderr
    assert "Deleted: " + image_id in r.stdout
    r = daemon.docker("image", "inspect", "apitest/cli")
    assert r.returncode != 0 and "No such image" in r.stderr
    r = daemon.docker("import", "-c", "ENV K=v", "-m", "via cli", busybox_tar, "apitest/imp:v3")
    assert r.returncode == 0, r.stderr
    imported = r.stdout.strip()
    r = daemon.docker("image", "inspect", "--format", "{{.Id}} {{json .Config.Env}} {{.Comment}}", "apitest/imp:v3")
    assert r.stdout.strip() == f'{imported} ["K=v"] via cli', r.stderr
    assert daemon.docker("rmi", "apitest/imp:v3").returncode == 0
    r = daemon.docker("image", "prune", "-f")
    assert r.returncode == 0, r.stderr


def test_commit_container_and_run_result(daemon, busybox_image: str) -> None:  # type: ignore[no-untyped-def]
    name = "apitest-commit"
    r = daemon.docker("run", "--name", name, busybox_image, "sh", "-c", "echo made > /made; rm /etc/group")
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.docker("commit", "-c", "CMD [\"cat\", \"/made\"]", "-m", "my change", name,
                          "apitest/committed:1")
        assert r.returncode == 0, r.stderr
        image_id = r.stdout.strip()
        info = daemon.api("GET", "/images/apitest/committed:1/json").json()
        assert info["Id"] == image_id and info["Config"]["Cmd"] == ["cat", "/made"]
        assert info["Comment"] == "my change" and len(info["RootFS"]["Layers"]) == 2
        base_id = daemon.api("GET", f"/images/{busybox_image}/json").json()["Id"]
        assert info["Parent"] == base_id  # docker records the container's image as parent
        r = daemon.docker("run", "--rm", "apitest/committed:1")
        assert r.returncode == 0 and r.stdout == "made\n", r.stderr
        r = daemon.docker("run", "--rm", "apitest/committed:1", "ls", "/etc")
        assert "group" not in r.stdout.split() and "passwd" in r.stdout.split()
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("rmi", "apitest/committed:1")


def test_rmi_refuses_image_in_use(daemon, busybox_tar: str) -> None:  # type: ignore[no-untyped-def]
    image_id = _import(daemon, busybox_tar, "apitest/used")
    r = daemon.docker("create", "--name", "apitest-used", "apitest/used", "true")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        r = daemon.api("DELETE", "/images/apitest/used")
        assert r.status == 409
        assert r.json()["message"] == (
            'conflict: unable to remove repository reference "apitest/used" (must force) - '
            f"container {cid[:12]} is using its referenced image {image_id[7:19]}")
        assert daemon.api("GET", "/images/apitest/used/json").status == 200
    finally:
        daemon.docker("rm", "-f", "apitest-used")
    r = daemon.api("DELETE", "/images/apitest/used")
    assert r.status == 200 and {"Deleted": image_id} in r.json()


def test_pull_route_streams_progress(daemon, busybox_tar: str, berth_registry) -> None:  # type: ignore[no-untyped-def]
    """POST /images/create?fromImage= hands over to the registry service and streams its
    progress as JSON lines; an unknown repository fails with a clear error."""
    image_id = _import(daemon, busybox_tar, f"{berth_registry.host}/apitest/pull", "p1")
    login = daemon.docker("login", "-u", berth_registry.user, "--password-stdin", berth_registry.host,
                          input=berth_registry.password)
    assert login.returncode == 0, login.stderr
    r = daemon.docker("push", f"{berth_registry.host}/apitest/pull:p1")
    assert r.returncode == 0, r.stderr
    assert daemon.api("DELETE", f"/images/{berth_registry.host}/apitest/pull:p1").status == 200
    r = daemon.docker("pull", f"{berth_registry.host}/apitest/pull:p1")
    assert r.returncode == 0, r.stderr
    assert "Digest: sha256:" in r.stdout
    info = daemon.api("GET", f"/images/{berth_registry.host}/apitest/pull:p1/json").json()
    assert info["Id"] == image_id
    assert info["RepoDigests"] and info["RepoDigests"][0].startswith(f"{berth_registry.host}/apitest/pull@sha256:")
    r = daemon.api("POST", "/images/create", params={"fromImage": "Bad..Name"})
    assert r.status == 400
    r = daemon.docker("pull", f"{berth_registry.host}/apitest/nothing:here")
    assert r.returncode != 0 and r.stderr.strip()
    daemon.api("DELETE", f"/images/{berth_registry.host}/apitest/pull:p1", params={"force": True})


def test_docker_py_images(daemon, busybox_tar: str) -> None:  # type: ignore[no-untyped-def]
    import docker
    image_id = _import(daemon, busybox_tar, "apitest/py", "1")
    client = docker.DockerClient(base_url=daemon.host)
    try:
        img = client.images.get("apitest/py:1")
        assert img.id == image_id and img.tags == ["apitest/py:1"]
        assert image_id in [i.id for i in client.images.list()]
        assert img.tag("apitest/py", "2")
        assert client.images.get("apitest/py:2").id == image_id
        assert img.history()[0]["Id"] == image_id
        data = b"".join(img.save(named=True))
        client.images.remove("apitest/py:1")
        client.images.remove("apitest/py:2")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("apitest/py:1")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [image_id]
        client.images.remove(image_id, force=True)
    finally:
        client.close()


def test_save_missing_image_is_404(daemon) -> None:  # type: ignore[no-untyped-def]
    r = daemon.api("GET", "/images/get", params={"names": "apitest/none:here"})
    assert r.status == 404 and r.json()["message"] == "No such image: apitest/none:here"
    assert list((daemon.names.data_root / "tmp").iterdir()) == []


def _build_untagged(daemon) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A settings-only two-step build without a tag: (intermediate id, top id)."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        df = b"FROM busybox\nENV LIST_A=1\nENV LIST_B=2\n"
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(df)
        tar.addfile(ti, io.BytesIO(df))
    r = daemon.api("POST", "/build", params={"nocache": "1"}, body=buf.getvalue(),
                   headers={"Content-Type": "application/x-tar"}, timeout=60)
    assert r.status == 200, r.text
    text = "".join(json.loads(x).get("stream", "") for x in r.text.splitlines() if x.strip())
    ids = [line.split()[1] for line in text.splitlines() if line.startswith(" ---> ") and len(line.split()) == 2]
    return ids[-2], ids[-1]


def test_list_all_digests_and_api_versions(daemon, busybox_image: str, berth_registry) -> None:  # type: ignore[no-untyped-def]
    from berth.registry.auth_config import encode_registry_auth
    mid, top = _build_untagged(daemon)
    repo = f"{berth_registry.host}/apitest/digests"
    assert daemon.api("POST", f"/images/{busybox_image}/tag", params={"repo": repo, "tag": "v1"}).status == 201
    auth = {"username": berth_registry.user, "password": berth_registry.password,
            "serveraddress": berth_registry.host}
    r = daemon.api("POST", f"/images/{repo}/push", params={"tag": "v1"},
                   headers={"X-Registry-Auth": encode_registry_auth(auth)}, timeout=120)
    assert r.status == 200 and '"error"' not in r.text, r.text
    try:
        def listing(path: str, **params: str) -> dict[str, dict]:  # type: ignore[type-arg]
            r = daemon.api("GET", path, params=params)
            assert r.status == 200, r.text
            return {i["Id"][7:19]: i for i in r.json()}

        new = listing("/v1.45/images/json")
        assert top in new and mid not in new                    # intermediate: only with all
        assert new[top]["RepoTags"] == [] and new[top]["RepoDigests"] == []
        assert "VirtualSize" not in new[top] and new[top]["SharedSize"] == -1
        every = listing("/v1.45/images/json", all="1")
        assert mid in every and every[top]["ParentId"][7:19] == mid
        # RepoDigests are answered whether or not digests= is given, as dockerd does
        for flag in ("1", "0"):
            bb = next(i for i in listing("/v1.45/images/json", digests=flag).values()
                      if f"{repo}:v1" in i["RepoTags"])
            assert any(d.startswith(f"{repo}@sha256:") for d in bb["RepoDigests"]), bb
        old = listing("/v1.41/images/json", all="true")
        assert old[mid]["RepoTags"] == ["<none>:<none>"] and old[mid]["RepoDigests"] == ["<none>@<none>"]
        assert old[top]["VirtualSize"] == old[top]["Size"]
        # shared-size: busybox's one layer is shared with the images built on it
        shared = listing("/v1.45/images/json", **{"shared-size": "1"})
        assert shared[top]["SharedSize"] == shared[top]["Size"] > 0
        # the legacy filter= applies before API 1.41 only
        assert set(listing("/v1.40/images/json", filter=repo[:-1] + "*")) == {
            i for i, x in new.items() if any(t.startswith(repo) for t in x["RepoTags"])}
        assert top in listing("/v1.45/images/json", filter=repo[:-1] + "*")
        d = daemon.docker("images", "--digests", "--format", "{{.Repository}} {{.Digest}}", repo)
        assert d.returncode == 0 and d.stdout.split()[0] == repo and d.stdout.split()[1].startswith("sha256:"), d
        qa = daemon.docker("images", "-a", "-q")
        assert mid in qa.stdout.split() and mid not in daemon.docker("images", "-q").stdout.split()
    finally:
        daemon.api("DELETE", f"/images/{repo}:v1")
        daemon.api("DELETE", f"/images/{top}")


def test_rmi_of_a_running_and_of_a_stopped_containers_image(daemon, busybox_image: str) -> None:  # type: ignore[no-untyped-def]
    """As dockerd: a running container's image cannot be deleted by id, even with -f (by
    tag, -f only untags); a stopped container's image is deleted with -f, the container
    still runs from its layers, which go when the container is removed."""
    from berth.image.layers import chain_ids
    ctx_files = {"Dockerfile": b"FROM busybox\nRUN echo only-here > /only-here\nCMD [\"cat\", \"/only-here\"]\n"}
    import io
    import tarfile

    def build(tag: str) -> str:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for n, data in ctx_files.items():
                ti = tarfile.TarInfo(n)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
        r = daemon.api("POST", "/build", params={"t": tag}, body=buf.getvalue(),
                       headers={"Content-Type": "application/x-tar"}, timeout=60)
        assert r.status == 200 and '"error"' not in r.text, r.text
        return daemon.api("GET", f"/images/{tag}/json").json()["Id"]

    image_id = build("rmi-used:1")
    run = daemon.docker("run", "-d", "--name", "rmi-running", "--network", "none", "rmi-used:1", "sleep", "60")
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        for args in (("rmi", image_id), ("rmi", "-f", image_id)):
            r = daemon.docker(*args)
            assert r.returncode != 0
            assert (f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - image is being used "
                    f"by running container {cid[:12]}") in r.stderr
        r = daemon.docker("rmi", "-f", "rmi-used:1")
        assert r.returncode == 0 and r.stdout.split("\n")[0] == "Untagged: rmi-used:1" and "Deleted" not in r.stdout
        assert daemon.api("GET", f"/images/{image_id}/json").status == 200
    finally:
        daemon.docker("rm", "-f", "rmi-running")
    assert build("rmi-used:1") == image_id  # cached: the same image, tagged again
    diff_ids = daemon.api("GET", "/images/rmi-used:1/json").json()["RootFS"]["Layers"]
    top_layer = Path(daemon.names.data_root) / "layers" / chain_ids(diff_ids)[-1].removeprefix("sha256:")
    assert daemon.docker("create", "--name", "rmi-stopped", "--network", "none", "rmi-used:1").returncode == 0
    try:
        r = daemon.docker("rmi", "rmi-used:1")
        assert r.returncode != 0 and "must force" in r.stderr
        r = daemon.docker("rmi", "-f", "rmi-used:1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["Untagged: rmi-used:1", f"Deleted: {image_id}"]
        assert daemon.api("GET", f"/images/{image_id}/json").status == 404
        assert top_layer.is_dir()  # the container still stands on it
        out = daemon.docker("start", "-a", "rmi-stopped")
        assert out.returncode == 0 and out.stdout == "only-here\n", out.stderr
    finally:
        daemon.docker("rm", "-f", "rmi-stopped")
    assert not top_layer.exists()
