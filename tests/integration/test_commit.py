"""``commit`` of real containers: only the top layer, frozen while captured, metadata and changes."""

import json

from dockerbank.container import model
from dockerbank.container.commit import CommitOptions, _capture_upper


def test_commit_captures_only_the_top_layer(cli, busybox_tar):
    cli("import", str(busybox_tar), "busybox:latest")
    cli("run", "--name", "src", "-e", "GREETING=hello", "-w", "/srv", "busybox", "sh", "-c",
        "echo data > /srv/file; rm /bin/vi; mkdir -p /etc/app && echo x > /etc/app/conf")
    image_id = cli("commit", "-m", "snapshot", "-a", "Ann <ann@example.org>", "-c", "EXPOSE 8080",
                   "-c", 'CMD ["cat", "/srv/file"]', "src", "snap:1").stdout.decode().strip()
    inspect = json.loads(cli("image", "inspect", "snap:1").stdout)[0]
    assert inspect["Id"] == image_id
    base = json.loads(cli("image", "inspect", "busybox").stdout)[0]
    assert inspect["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(inspect["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    assert "GREETING=hello" in inspect["Config"]["Env"]
    assert inspect["Config"]["WorkingDir"] == "/srv"
    assert inspect["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert inspect["Author"] == "Ann <ann@example.org>"
    history = json.loads(cli("history", "--format", "json", "--no-trunc", "snap:1").stdout.decode().splitlines()[0])
    assert history["Comment"] == "snapshot"
    # the new image runs with the container's changes, including the deletion
    assert cli("run", "--rm", "snap:1").stdout == b"data\n"
    out = cli("run", "--rm", "snap:1", "sh", "-c", "test -e /bin/vi && echo present || echo gone; cat /etc/app/conf")
    assert out.stdout == b"gone\nx\n"


def test_commit_of_a_running_container_leaves_it_running(cli, busybox_tar):
    cli("import", str(busybox_tar), "busybox:latest")
    cli("run", "-d", "--name", "busy", "busybox", "sh", "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /counter; sleep 0.01; done")
    cli("commit", "busy", "busy:snap")
    assert cli("inspect", "--format", "{{.State.Status}}", "busy").stdout.decode().strip() == "running"
    value = cli("run", "--rm", "busy:snap", "cat", "/counter").stdout.decode().strip()
    assert value.isdigit() and int(value) >= 1
    cli("rm", "-f", "busy")


def test_bad_change_is_refused_before_anything_is_frozen(cli, busybox_tar):
    cli("import", str(busybox_tar), "busybox:latest")
    cli("run", "-d", "--name", "c1", "busybox", "sleep", "30")
    result = cli("commit", "-c", "RUN rm -rf /", "c1", check=False)
    assert result.returncode == 1
    assert b"not a valid change command" in result.stderr
    assert cli("inspect", "--format", "{{.State.Status}}", "c1").stdout.decode().strip() == "running"
    cli("rm", "-f", "c1")


class _RecordingContainers:
    """Stands in for the container service to observe the order of pause, read and unpause."""

    def __init__(self, upper, calls):
        self.upper, self.calls = upper, calls

    def dir(self, cid):
        return self.upper.parent

    def pause(self, cid):
        self.calls.append("pause")

    def unpause(self, cid):
        self.calls.append("unpause")


def test_capture_freezes_around_the_read_and_thaws_on_error(tmp_path, monkeypatch):
    (tmp_path / "upper").mkdir()
    calls: list[str] = []

    class Engine:
        containers = _RecordingContainers(tmp_path / "upper", calls)

    container = model.Container("c" * 64, "x", "now", model.ContainerConfig("img", "sha256:" + "0" * 64, "sh"),
                                model.ContainerState(status=model.RUNNING))
    monkeypatch.setattr("dockerbank.container.commit.pack_dir", lambda *a, **k: calls.append("read"))
    _capture_upper(Engine(), container, None, pause=True)
    assert calls == ["pause", "read", "unpause"]

    def broken(*_a, **_k):
        calls.append("read")
        raise OSError("disk full")

    calls.clear()
    monkeypatch.setattr("dockerbank.container.commit.pack_dir", broken)
    try:
        _capture_upper(Engine(), container, None, pause=True)
    except OSError:
        pass
    assert calls == ["pause", "read", "unpause"]
    calls.clear()
    monkeypatch.setattr("dockerbank.container.commit.pack_dir", lambda *a, **k: calls.append("read"))
    _capture_upper(Engine(), container, None, pause=False)
    assert calls == ["read"]
    assert CommitOptions().pause is True
