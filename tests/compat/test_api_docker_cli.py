"""The real docker CLI (Debian's /usr/bin/docker, and /usr/local/bin/docker where present) driving
``dockerbank system service`` over its unix socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from api_server import start_server
from conftest import require_binary

pytestmark = pytest.mark.compat

CLIENTS = [p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(p)]


@pytest.fixture(params=CLIENTS or ["docker"])
def docker(request, tmp_path, busybox_tar):
    binary = request.param if os.path.exists(request.param) else require_binary("docker")
    server = start_server(tmp_path, busybox_tar)

    def run(*args: str, input: bytes | None = None, check: bool = True, timeout: float = 60):
        done = subprocess.run([binary, *args], input=input, capture_output=True, timeout=timeout, env=server.env())
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.decode()}"
        return done

    run.server = server
    run.binary = binary
    try:
        yield run
    finally:
        try:
            left = run("ps", "-aq", check=False).stdout.split()
            if left:
                run("rm", "-f", *[c.decode() for c in left], check=False)
        finally:
            server.stop()


def out(done) -> str:
    return done.stdout.decode().strip()


def test_ping_version_info(docker):
    assert "Dockerbank" in out(docker("version"))
    assert out(docker("version", "--format", "{{.Server.APIVersion}}")) == "1.45"
    info = json.loads(out(docker("info", "--format", "{{json .}}")))
    assert info["Images"] == 1 and info["Driver"] == "overlay2"


def test_images_tag_save_load_rmi(docker, tmp_path):
    assert "busybox" in out(docker("images", "--format", "{{.Repository}}:{{.Tag}}"))
    docker("tag", "busybox", "mine/bb:v1")
    names = out(docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert sorted(names) == ["busybox:latest", "mine/bb:v1"]
    assert out(docker("image", "inspect", "-f", "{{.Config.Cmd}}", "mine/bb:v1")) == "[sh]"
    assert "Imported from tarball" in out(docker("history", "busybox"))
    saved = docker("save", "busybox", "mine/bb:v1").stdout
    assert len(saved) > 1_000_000
    removed = out(docker("rmi", "mine/bb:v1", "busybox"))
    assert "Untagged: mine/bb:v1" in removed and "Deleted: sha256:" in removed
    assert out(docker("images", "-q")) == ""
    loaded = out(docker("load", input=saved))
    assert "Loaded image: busybox:latest" in loaded and "Loaded image: mine/bb:v1" in loaded
    failed = docker("rmi", "nope", check=False)
    assert failed.returncode == 1 and "No such image" in failed.stderr.decode()


def test_import_and_volumes(docker, busybox_tar):
    image_id = out(docker("import", str(busybox_tar), "imported:1"))
    assert image_id.startswith("sha256:")
    docker("volume", "create", "--label", "k=v", "data")
    assert out(docker("volume", "ls", "--format", "{{.Name}}")) == "data"
    assert json.loads(out(docker("volume", "inspect", "data")))[0]["Labels"] == {"k": "v"}
    docker("volume", "rm", "data")
    assert out(docker("volume", "ls", "-q")) == ""
    gone = docker("volume", "inspect", "data", check=False)
    assert gone.returncode == 1


def test_run_attached_rm_and_exit_codes(docker):
    done = docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert done.returncode == 3
    assert out(done) == "out" and done.stderr.decode().strip() == "err"
    assert out(docker("ps", "-aq")) == ""  # --rm removed it
    piped = docker("run", "-i", "--rm", "busybox", "cat", input=b"through stdin\n")
    assert out(piped) == "through stdin"


def test_detached_lifecycle_logs_exec_top_stats(docker, tmp_path):
    host_dir = tmp_path / "bind"
    host_dir.mkdir()
    (host_dir / "in.txt").write_text("from host\n")
    cid = out(docker("run", "-d", "--name", "web", "-e", "GREETING=hi", "-v", f"{host_dir}:/data",
                     "-v", "named:/vol", "busybox", "sh", "-c",
                     "echo $GREETING; cat /data/in.txt; while true; do sleep 0.2; done"))
    assert len(cid) == 64
    ps = out(docker("ps", "--format", "{{.Names}} {{.Status}}"))
    assert ps.startswith("web Up")
    deadline = time.monotonic() + 10
    logs = ""
    while len(logs.splitlines()) < 2 and time.monotonic() < deadline:  # the shell may not have run `cat` yet
        time.sleep(0.1)
        logs = out(docker("logs", "web"))
    assert logs.splitlines()[:2] == ["hi", "from host"]
    assert out(docker("exec", "web", "sh", "-c", "echo $GREETING-exec")) == "hi-exec"
    assert docker("exec", "web", "sh", "-c", "exit 7", check=False).returncode == 7
    state = json.loads(out(docker("inspect", "web")))[0]
    assert state["State"]["Running"] and state["Config"]["Env"][-1] == "GREETING=hi"
    assert {m["Destination"] for m in state["Mounts"]} == {"/data", "/vol"}
    top = out(docker("top", "web"))
    assert top.startswith("UID") and "sh -c echo $GREETING" in top
    assert "web" in out(docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"))
    # docker cp both ways and export
    (tmp_path / "f.txt").write_text("copied in\n")
    docker("cp", str(tmp_path / "f.txt"), "web:/tmp/f.txt")
    assert out(docker("exec", "web", "cat", "/tmp/f.txt")) == "copied in"
    docker("cp", "web:/tmp/f.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "copied in\n"
    assert "A /tmp/f.txt" in out(docker("diff", "web"))
    exported = docker("export", "web").stdout
    assert b"bin/busybox" in exported
    docker("stop", "-t", "1", "web")
    assert out(docker("inspect", "-f", "{{.State.Status}}", "web")) == "exited"
    second_stop = docker("stop", "web")  # 304 from the API: the CLI still succeeds
    assert second_stop.returncode == 0
    docker("start", "web")
    docker("restart", "-t", "1", "web")
    assert out(docker("inspect", "-f", "{{.State.Running}}", "web")) == "true"
    docker("rename", "web", "web2")
    docker("rm", "-f", "web2")
    assert out(docker("ps", "-aq")) == ""
    missing = docker("inspect", "web2", check=False)
    assert missing.returncode == 1


def test_logs_follow_ends_with_the_container(docker):
    docker("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "for i in 1 2 3; do echo t$i; sleep 0.2; done")
    followed = docker("logs", "-f", "ticker", timeout=20)
    assert out(followed).split() == ["t1", "t2", "t3"]
    assert docker("wait", "ticker").stdout.strip() == b"0"


def test_exec_and_run_with_a_tty(docker):
    require_binary("script")
    docker("run", "-d", "--network", "none", "--name", "tt", "busybox", "sleep", "30")
    env = docker.server.env()
    done = subprocess.run(["script", "-qec", f"{docker.binary} exec -it tt sh -c 'tty; exit 4'",
                           "/dev/null"], capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 4
    assert b"/dev/pts/" in done.stdout
    done = subprocess.run(["script", "-qec", f"{docker.binary} run -it --rm --network none busybox "
                           "sh -c 'echo tty-run; exit 5'", "/dev/null"], capture_output=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)
    assert b"tty-run" in done.stdout and done.returncode == 5
    docker("rm", "-f", "tt")


def test_networks_ports_and_events(docker):
    require_binary("curl")
    since = str(int(time.time()) - 1)
    docker("network", "create", "apinet")
    assert "apinet" in out(docker("network", "ls", "--format", "{{.Name}}"))
    docker("run", "-d", "--name", "srv", "--network", "apinet", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
           "echo served > /tmp/index.html; httpd -f -p 80 -h /tmp")
    mapping = out(docker("port", "srv", "80"))
    host_port = mapping.rsplit(":", 1)[1]
    assert f"127.0.0.1:{host_port}->80/tcp" in out(docker("ps", "--format", "{{.Ports}}"))
    fetched = subprocess.run(["curl", "-sf", "--retry", "5", "--retry-connrefused", "--retry-delay", "0",
                              f"http://127.0.0.1:{host_port}/"], capture_output=True, timeout=30, check=False)
    assert fetched.stdout == b"served\n"
    by_name = docker("run", "--rm", "--network", "apinet", "busybox", "wget", "-qO-", "http://srv/")
    assert out(by_name) == "served"
    docker("rm", "-f", "srv")
    docker("network", "rm", "apinet")
    until = str(int(time.time()) + 1)
    events = out(docker("events", "--since", since, "--until", until, "--format",
                        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")).splitlines()
    assert "network create apinet" in events and "network destroy apinet" in events
    assert "container start srv" in events and "container destroy srv" in events
    only_starts = out(docker("events", "--since", since, "--until", until, "--filter", "event=start",
                             "--format", "{{.Action}}")).split()
    assert only_starts and set(only_starts) == {"start"}


def test_events_of_what_the_cli_and_conmon_did(docker):
    """Events come from the engine, not the API handlers: a container run, stopped and removed by
    Dockerbank's CLI, and a detached one whose exit only conmon saw, show in ``docker events``."""
    since = str(int(time.time()) - 1)
    cli = docker.server.dockerbank
    assert cli("run", "-d", "--name", "brief", "busybox", "sh", "-c", "exit 3").returncode == 0
    assert cli("run", "-d", "--name", "long", "-l", "team=lab", "busybox", "sleep", "60").returncode == 0
    assert cli("stop", "-t", "1", "long").returncode == 0
    deadline = time.time() + 30
    while "exited" not in out(docker("inspect", "-f", "{{.State.Status}}", "brief")) and time.time() < deadline:
        time.sleep(0.1)
    assert cli("rm", "brief", "long").returncode == 0
    until = str(int(time.time()) + 1)
    events = out(docker("events", "--since", since, "--until", until, "--format",
                        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")).splitlines()
    brief = [e for e in events if " brief" in e]
    assert [e.split()[0] for e in brief] == ["create", "start", "die", "destroy"]
    assert "die brief 3" in events
    long = [e.split()[0] for e in events if " long" in e]
    assert long[:2] == ["create", "start"] and long[-2:] == ["stop", "destroy"] and "die" in long
    labelled = out(docker("events", "--since", since, "--until", until, "--filter", "label=team=lab",
                          "--format", "{{.Actor.Attributes.name}}")).split()
    assert labelled and set(labelled) == {"long"}
    for args in (["volume", "create", "clidata"], ["volume", "rm", "clidata"], ["network", "create", "clinet"],
                 ["network", "rm", "clinet"]):
        assert cli(*args).returncode == 0
    until = str(int(time.time()) + 1)
    others = out(docker("events", "--since", since, "--until", until, "--filter", "type=volume", "--filter",
                        "type=network", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}{{.Actor.Attributes.name}}"))
    assert "volume create clidata" in others and "volume destroy clidata" in others
    assert "network create" in others and "network destroy" in others and others.count("clinet") == 2
    assert cli("tag", "busybox", "lab/bb:1").returncode == 0 and cli("rmi", "lab/bb:1").returncode == 0
    until = str(int(time.time()) + 1)
    images = out(docker("events", "--since", since, "--until", until, "--filter", "type=image", "--format",
                        "{{.Action}} {{.Actor.Attributes.name}}")).splitlines()
    assert "tag lab/bb:1" in images and "untag lab/bb:1" in images


def test_push_and_pull_with_dockerbanks_registry(docker, tmp_path):
    from dockerbank.registry.server.app import start_in_thread
    from dockerbank.registry.server.storage import RegistryStorage

    registry = start_in_thread(RegistryStorage(tmp_path / "registry"))
    try:
        name = f"{registry.address}/lab/bb:1"
        docker("tag", "busybox", name)
        pushed = out(docker("push", name, timeout=120))
        assert "digest: sha256:" in pushed
        docker("rmi", name)
        pulled = out(docker("pull", name, timeout=120))
        assert "Digest: sha256:" in pulled and name in out(docker("images", "--format",
                                                                   "{{.Repository}}:{{.Tag}}"))
        missing = docker("pull", f"{registry.address}/lab/none:1", check=False, timeout=60)
        assert missing.returncode != 0 and missing.stderr
    finally:
        registry.stop()


def test_build_commit_pause(docker, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN echo built > /built\nENV STAGE=one\nCMD ["cat", "/built"]\n')
    (ctx / ".dockerignore").write_text("secret\n")
    (ctx / "secret").write_text("never sent")
    env = dict(docker.server.env(), DOCKER_BUILDKIT="0")
    built = subprocess.run([docker.binary, "build", "-t", "built:1", str(ctx)], capture_output=True, timeout=120,
                           env=env)
    assert built.returncode == 0, built.stderr.decode()
    assert "Successfully tagged built:1" in built.stdout.decode()
    assert out(docker("run", "--rm", "built:1")) == "built"
    assert "STAGE=one" in json.loads(out(docker("image", "inspect", "-f", "{{json .Config.Env}}", "built:1")))
    docker("run", "-d", "--name", "snap-src", "busybox", "sh", "-c", "echo changed > /x; sleep 30")
    deadline = time.time() + 10
    while time.time() < deadline and docker("exec", "snap-src", "cat", "/x", check=False).returncode != 0:
        time.sleep(0.1)
    docker("pause", "snap-src")
    assert out(docker("inspect", "-f", "{{.State.Status}}", "snap-src")) == "paused"
    docker("unpause", "snap-src")
    image_id = out(docker("commit", "-m", "snapshot", "snap-src", "committed:1"))
    assert image_id.startswith("sha256:")
    assert out(docker("run", "--rm", "committed:1", "cat", "/x")) == "changed"
    assert out(docker("inspect", "-f", "{{.State.Status}}", "snap-src")) == "running"
    docker("rm", "-f", "snap-src")


def test_ps_follows_what_other_processes_and_conmon_exits_change(docker):
    """The service answers repeated lists from memory (engine.stateversion): a change made by
    another process (the dockerbank CLI) or a conmon killed outright shows in the next list."""
    first = out(docker("run", "-d", "--name", "one", "busybox", "sleep", "600"))
    second = out(docker("run", "-d", "--name", "two", "busybox", "sleep", "600"))

    def running() -> list[str]:
        return out(docker("ps", "--format", "{{.Names}}")).split()

    assert sorted(running()) == ["one", "two"] and running() == running()   # the second list: from memory
    server = docker.server
    assert server.dockerbank("rename", "one", "uno").returncode == 0
    assert sorted(running()) == ["two", "uno"]
    assert server.dockerbank("stop", "-t", "0", first).returncode == 0
    assert running() == ["two"]
    pid = int(out(docker("inspect", "-f", "{{.State.Pid}}", second)))
    conmon = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    assert Path(f"/proc/{conmon}/comm").read_text().strip() == "conmon"
    os.kill(conmon, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while running() and time.monotonic() < deadline:   # the exit handler's clean-up is in the background
        time.sleep(0.05)
    assert running() == []
    assert out(docker("ps", "-a", "--filter", "name=two", "--format", "{{.State}}")) == "exited"
