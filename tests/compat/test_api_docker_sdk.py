"""The ``docker`` Python SDK (docker-py, from PyPI) driving ``dockerbank system service``."""

from __future__ import annotations

import io
import tarfile
import time

import pytest
from api_server import sdk_client

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat


@pytest.fixture
def client(tmp_path, busybox_tar):
    yield from sdk_client(tmp_path, busybox_tar, "1.45")


def test_images_volumes_networks(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.45"
    image = client.images.get("busybox")
    assert "busybox:latest" in image.tags
    image.tag("sdk/bb", "v2")
    assert {t for i in client.images.list() for t in i.tags} == {"busybox:latest", "sdk/bb:v2"}
    client.images.remove("sdk/bb:v2")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("sdk/bb:v2")
    volume = client.volumes.create("sdkvol", labels={"team": "bio"})
    assert client.volumes.get("sdkvol").attrs["Labels"] == {"team": "bio"}
    volume.remove()
    network = client.networks.create("sdknet")
    assert "sdknet" in [n.name for n in client.networks.list()]
    network.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("sdknet")


def test_containers_run_exec_logs_archive(client):
    assert client.containers.run("busybox", ["echo", "sdk-hello"], remove=True, network_mode="none") == \
        b"sdk-hello\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 4"], network_mode="none")
    assert failed.value.exit_status == 4 and b"bad" in failed.value.stderr
    failed.value.container.remove()
    box = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 60"], detach=True, name="sdkbox",
                                environment={"K": "v"}, labels={"app": "sdk"}, network_mode="none")
    box.reload()
    assert box.status == "running" and box.labels == {"app": "sdk"}
    assert [c.name for c in client.containers.list(filters={"label": "app=sdk"})] == ["sdkbox"]
    code, output = box.exec_run(["sh", "-c", "echo $K; exit 2"])
    assert (code, output) == (2, b"v\n")
    deadline = time.monotonic() + 10
    while not box.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert box.logs().startswith(b"started")
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = b"in via put_archive\n"
        info = tarfile.TarInfo("put.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert box.put_archive("/tmp", payload.getvalue())
    stream, stat = box.get_archive("/tmp/put.txt")
    assert stat["name"] == "put.txt" and stat["size"] == 19
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("put.txt").read() == b"in via put_archive\n"
    assert box.top()["Titles"][0] == "UID"
    assert box.stats(stream=False)["memory_stats"]["usage"] > 0
    box.stop(timeout=1)
    assert box.wait()["StatusCode"] == 137
    box.remove()
    assert client.containers.list(all=True) == []


def test_build_and_commit(client):
    dockerfile = b'FROM busybox\nRUN echo from-build > /b\nCMD ["cat", "/b"]\n'
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    _image, logs = client.images.build(fileobj=context, custom_context=True, tag="sdkbuilt:1")
    assert any("Successfully built" in line.get("stream", "") for line in logs)
    assert client.containers.run("sdkbuilt:1", remove=True, network_mode="none") == b"from-build\n"
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tar:
        text = b"FROM busybox\nRUN exit 9\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    bad.seek(0)
    with pytest.raises(docker.errors.BuildError) as failed:
        client.images.build(fileobj=bad, custom_context=True)
    assert "non-zero code: 9" in str(failed.value)
    box = client.containers.run("busybox", ["sh", "-c", "echo c > /c; sleep 60"], detach=True, network_mode="none")
    committed = box.commit("sdkcommit", "1", changes=['CMD ["cat", "/c"]'])
    assert client.containers.run(committed.id, remove=True, network_mode="none") == b"c\n"


def test_license_policy_refusal_answers_403(client):
    """A push the license policy refuses is refused before any output: the status says so (dockerd
    answers an error before its first line the same way), and nothing is sent anywhere."""
    box = client.containers.create("busybox", ["true"], network_mode="none")
    box.commit("registry.example.org/redcap", "14", changes=["LABEL org.dockerbank.redistributable=false"])
    with pytest.raises(docker.errors.APIError) as refused:
        client.images.push("registry.example.org/redcap", tag="14")
    assert refused.value.status_code == 403, refused.value
    assert "licensed source" in str(refused.value)
    with pytest.raises(docker.errors.NotFound):  # an unknown tag: 404 before any output, too
        client.images.push("registry.example.org/redcap", tag="nope")
