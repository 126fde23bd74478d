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
        "i=0; while true; do i=$((i+1)); echo $i > /c.new; mv /c.new /counter; sleep 0.01; done")
    # a loaded host may not have run the loop yet; the rename keeps a frozen moment from
    # catching the file truncated
    _wait_for_first_write(cli, "busy", "/counter")
    cli("commit", "busy", "busy:snap")
    assert cli("inspect", "--format", "{{.State.Status}}", "busy").stdout.decode().strip() == "running"
    value = cli("run", "--rm", "busy:snap", "cat", "/counter").stdout.decode().strip()
    assert value.isdigit() and int(value) >= 1
    cli("rm", "-f", "busy")


def _wait_for_first_write(cli, container: str, path: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.time() + timeout
    while cli("exec", container, "test", "-s", path, check=False).returncode != 0:
        assert time.time() < deadline, f"{path} never written in {container}"
        time.sleep(0.05)


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


def _counter(path, wait: float = 0.0):
    """The writer's counter, or -1 when caught between its truncate and its write."""
    import time

    deadline = time.time() + wait
    while True:
        text = path.read_text().strip()
        if text or time.time() >= deadline:
            return int(text) if text else -1
        time.sleep(0.001)


def _wait_for_counter_above(path, seen: int, timeout: float = 60.0) -> None:
    """Wait until the writer's counter passes ``seen`` (it runs again after a thaw, when the
    scheduler gives it CPU: on a loaded host that is not at once)."""
    import time

    deadline = time.time() + timeout
    while _counter(path) <= seen:
        assert time.time() < deadline, f"the writer did not write again after the commit (counter {seen})"
        time.sleep(0.01)


def _watch_commit(cli_args, root, cid, counter):
    """Run ``commit`` as users do and sample the container's freezer state and its write counter."""
    import os
    import subprocess
    import sys
    import time

    from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

    cgroup = Cgroup(detect_layout(), container_cgroups_path(cid))
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    proc = subprocess.Popen([sys.executable, "-m", "dockerbank", "commit", *cli_args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples = []
    while proc.poll() is None:
        samples.append((cgroup.freezer_state(), _counter(counter)))
        time.sleep(0.005)
    assert proc.wait() == 0, proc.stderr.read()
    return samples


def test_pause_freezes_writes_while_the_layer_is_read(cli, root, busybox_tar, tmp_path):
    import time

    cli("import", str(busybox_tar), "busybox:latest")
    out = tmp_path / "out"
    out.mkdir()
    counter = out / "counter"
    # a big top layer makes the capture last long enough to watch; then a writer that never rests
    cid = cli("run", "-d", "-v", f"{out}:/out", "busybox", "sh", "-c",
              "dd if=/dev/zero of=/big bs=1M count=120 2>/dev/null; i=0; "
              "while :; do i=$((i+1)); echo $i > /out/counter; done").stdout.decode().strip()
    deadline = time.time() + 60
    while not counter.exists() and time.time() < deadline:
        time.sleep(0.05)
    frozen_run = _watch_commit([cid, "paused:1"], root, cid, counter)
    frozen = [value for state, value in frozen_run if state == "FROZEN"]
    assert len(frozen) >= 3, frozen_run[:20]
    assert len(set(frozen)) == 1  # no write lands while frozen (-1: frozen between truncate and write)
    seen = max(value for _, value in frozen_run)
    _wait_for_counter_above(counter, seen)  # and writes resume afterwards
    live_run = _watch_commit(["--pause=false", cid, "live:1"], root, cid, counter)
    # without -p the container is never frozen (whether the writer got CPU during the capture
    # depends on the host's load, so that is not asserted)
    assert len(live_run) >= 3 and all(state != "FROZEN" for state, _ in live_run), live_run[:20]
    cli("rm", "-f", cid)
