"""The docker SDK on files, exit codes, commits and exec terminals: archives in and out of volumes
and bind mounts (where the container sees them), a killed container's 137, the commit of a stopped
container, exec with a TTY translating newlines as a terminal does. Expected values read from
docker 20.10 on this machine with the same calls."""

from __future__ import annotations

import io
import tarfile

import pytest
from api_server import sdk_client

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat


@pytest.fixture
def client(tmp_path, busybox_tar):
    yield from sdk_client(tmp_path, busybox_tar, "1.41")


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _names(stream) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return tar.getnames()


def test_archives_in_and_out_of_volumes_and_binds(client, tmp_path):
    bound = tmp_path / "bound.txt"
    bound.write_text("from the host\n")
    box = client.containers.run("busybox", ["sleep", "60"], network_mode="none", detach=True, volumes={
        "data": {"bind": "/data", "mode": "rw"}, "ro": {"bind": "/ro", "mode": "ro"},
        str(bound): {"bind": "/etc/bound", "mode": "rw"}})
    assert box.put_archive("/data", _tar("f.txt", b"abc"))
    assert box.exec_run(["cat", "/data/f.txt"]) == (0, b"abc")  # where the container sees it
    for path, name, names in [("/data", "data", ["data", "data/f.txt"]), ("/data/", "data", ["data", "data/f.txt"]),
                              ("/data/.", ".", [".", "./f.txt"]), ("/data/f.txt", "f.txt", ["f.txt"]),
                              ("/etc/bound", "bound", ["bound"])]:
        stream, stat = client.api.get_archive(box.id, path)
        assert (stat["name"], _names(stream)) == (name, names), path
    with pytest.raises(docker.errors.APIError, match="mounted volume is marked read-only"):
        box.put_archive("/ro", _tar("f.txt", b"x"))
    box.exec_run(["sh", "-c", "echo written inside > /data/in.txt"])
    box.stop(timeout=0)
    stream, stat = box.get_archive("/data/in.txt")  # a stopped container: the volume still answers
    assert stat["size"] == len(b"written inside\n")
    assert box.put_archive("/data", _tar("later.txt", b"later"))
    assert client.containers.run("busybox", ["cat", "/data/later.txt"], volumes=["data:/data"], remove=True,
                                 network_mode="none") == b"later"
    locked = client.containers.run("busybox", ["sleep", "60"], read_only=True, network_mode="none", detach=True)
    with pytest.raises(docker.errors.APIError, match="container rootfs is marked read-only"):
        locked.put_archive("/tmp", _tar("f.txt", b"x"))


def test_kill_exit_code_commit_of_a_stopped_container_and_exec_tty(client):
    box = client.containers.run("busybox", ["sh", "-c", "echo c > /c; exec sleep 60"], network_mode="none",
                                detach=True)
    assert box.exec_run(["sh", "-c", "echo a; echo b"], tty=True) == (0, b"a\r\nb\r\n")  # onlcr, as docker
    assert box.exec_run(["sh", "-c", "echo a; echo b"]) == (0, b"a\nb\n")
    # users and groups as docker hands them to the runtime (read from docker 20.10 with the same image)
    assert box.exec_run(["id"]).output == b"uid=0(root) gid=0(root) groups=0(root)\n"
    assert box.exec_run(["id"], user="1000").output == b"uid=1000 gid=0(root) groups=0(root)\n"
    assert client.containers.run("busybox", ["id"], user="nobody:100", group_add=["0"], remove=True,
                                 network_mode="none") == b"uid=65534(nobody) gid=100 groups=0(root),100\n"
    box.kill()
    assert box.wait()["StatusCode"] == 137
    box.reload()
    assert (box.status, box.attrs["State"]["ExitCode"]) == ("exited", 137)
    image = box.commit("stopped", "1", changes=['CMD ["cat", "/c"]'])
    assert client.containers.run(image.id, remove=True, network_mode="none") == b"c\n"
    box.reload()
    assert box.status == "exited"  # the commit left it as it was


def test_build_cache_pruned_by_the_sdk_and_both_clis(client):
    import os
    import subprocess

    context = io.BytesIO(_tar("Dockerfile", b"FROM busybox\nRUN echo step > /s\n"))

    def build() -> list[str]:
        context.seek(0)
        _image, logs = client.images.build(fileobj=context, custom_context=True, tag="cached:1")
        return [line.get("stream", "") for line in logs]

    build()
    assert any("Using cache" in line for line in build())
    pruned = client.api.prune_builds(all=True)
    assert pruned["CachesDeleted"] and pruned["SpaceReclaimed"] == 0
    assert not any("Using cache" in line for line in build())  # every step runs again
    assert client.api.prune_builds()["CachesDeleted"] is None   # nothing dangling left
    for binary in [p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(p)]:
        done = subprocess.run([binary, "system", "prune", "-f"], capture_output=True, text=True, timeout=60,
                              env=client.server.env())
        assert done.returncode == 0 and "Total reclaimed space" in done.stdout, done.stderr
    with pytest.raises(docker.errors.APIError, match="image search is not supported"):
        client.images.search("busybox")


def test_attach_over_a_websocket(client):
    """``/containers/{id}/attach/ws`` (Portainer's console): stdin in, stdout and stderr out as raw
    binary messages; the socket closes when the container ends."""
    import asyncio

    import aiohttp

    box = client.containers.run("busybox", ["sh", "-c", "read l; echo got:$l; echo err:$l >&2"], stdin_open=True,
                                detach=True, network_mode="none")
    sock_path = client.server.sock

    async def talk() -> tuple[bytes, set]:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock_path))) as session:
            url = f"http://x/v1.41/containers/{box.id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
            async with session.ws_connect(url) as ws:
                await ws.send_str("hello\n")
                got, kinds = b"", set()
                async for message in ws:
                    kinds.add(message.type)
                    got += message.data
                    if message.type != aiohttp.WSMsgType.BINARY:
                        break
                return got, kinds

    got, kinds = asyncio.run(asyncio.wait_for(talk(), 30))
    assert b"got:hello\n" in got and b"err:hello\n" in got and kinds == {aiohttp.WSMsgType.BINARY}
    assert box.wait()["StatusCode"] == 0
