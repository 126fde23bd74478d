"""Rootless Dockerbank: an ordinary user (made here with useradd, which gives it subordinate IDs)
runs the engine in its own root under ~/.local/share/dockerbank, runtime state under
$XDG_RUNTIME_DIR (issue 21, item 2). What cannot work rootless yet fails in one line.

The user runs the host's python of the suite's version with the suite's sources and packages on
PYTHONPATH (the suite's own interpreter may live where other users cannot read).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import dockerbank
from tests.conftest import require_binary

pytestmark = pytest.mark.integration

SOURCES = str(Path(dockerbank.__file__).resolve().parents[1])
PACKAGES = sysconfig.get_paths()["purelib"]
PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


class User:
    """An ordinary user of the host and the CLI run as it."""

    def __init__(self, name: str, system: bool = False):
        self.name = name
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", *(["-r"] if system else []), name], check=True)
        entry = pwd.getpwnam(name)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)
        self.runtime = Path(f"/tmp/{name}-xdg")   # what a login session's /run/user/UID is
        self.runtime.mkdir(mode=0o700)
        os.chown(self.runtime, self.uid, self.gid)

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "XDG_RUNTIME_DIR": str(self.runtime), "PYTHONPATH": f"{SOURCES}:{PACKAGES}", **extra}

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen([PYTHON, "-m", "dockerbank", *args], user=self.uid, group=self.gid,
                                extra_groups=[], cwd=self.home, env=self.env(), **kwargs)

    def db(self, *args: str, check: bool = True, input: bytes | None = None, env: dict | None = None,
           timeout: int = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([PYTHON, "-m", "dockerbank", *args], user=self.uid, group=self.gid, extra_groups=[],
                              cwd=self.home, env=env or self.env(), input=input, capture_output=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"dockerbank {' '.join(args)} as {self.name} exited {done.returncode}: "
                                 f"{done.stderr.decode(errors='replace')}")
        return done

    def remove(self) -> None:
        pause = self.runtime / "dockerbank" / "pause.pid"
        if pause.exists():  # the namespace holder, and with it whatever still runs in the namespace
            pid = int(pause.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["pkill", "-KILL", "-U", str(self.uid)], check=False)   # this test user's own processes
        subprocess.run(["userdel", "-r", "-f", self.name], check=False, capture_output=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


@pytest.fixture
def user():
    if not os.path.exists(PYTHON):
        pytest.fail(f"{PYTHON} is missing: the rootless test runs the host's python of the suite's version")
    for tool in ("newuidmap", "newgidmap", "conmon", "slirp4netns"):
        require_binary(tool)
    person = User(f"dbrl{uuid.uuid4().hex[:6]}")
    try:
        yield person
    finally:
        person.remove()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_an_ordinary_user_builds_runs_serves_pulls_and_backs_up(user, tmp_path):
    subids = Path("/etc/subuid").read_text()
    assert f"\n{user.name}:" in "\n" + subids, "useradd gave the user no subordinate IDs"
    db = user.db
    db("base-image", "busybox")
    context = user.home / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text('FROM busybox\nRUN echo built > /built && id -u > /uid\nCMD ["cat", "/built"]\n')
    os.chown(context / "Dockerfile", user.uid, user.gid)
    db("build", "-q", "--lint=off", "-t", "mine:1", str(context))
    assert db("run", "--rm", "mine:1").stdout == b"built\n"
    # a volume: the container's root is the user itself on the host
    assert db("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c",
              "id -u; cat /proc/self/uid_map; echo kept > /data/f").stdout.split()[:4] == [b"0", b"0",
                                                                                      str(user.uid).encode(), b"1"]
    root = user.home / ".local" / "share" / "dockerbank"
    assert os.stat(root / "volumes" / "data" / "_data" / "f").st_uid == user.uid
    assert (user.runtime / "dockerbank" / "pause.pid").exists()       # runtime state under $XDG_RUNTIME_DIR
    # a published port: slirp4netns forwards it into the user's network namespace, netavark to the container
    port = _free_port()
    db("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
       "mkdir -p /www && echo hello > /www/index.html && httpd -f -p 80 -h /www")
    assert _wait_http(f"http://127.0.0.1:{port}/index.html") == b"hello\n"
    db("rm", "-f", "web")
    db("run", "-d", "--name", "web2", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60")   # the port was let go
    db("rm", "-f", "web2")
    # a user network: two containers find each other by name (aardvark-dns in the user's namespace)
    db("network", "create", "lab")
    db("run", "-d", "--name", "server", "--network", "lab", "busybox", "sh", "-c",
       "mkdir -p /www && echo from-server > /www/index.html && httpd -f -p 8000 -h /www")
    fetched = db("run", "--rm", "--network", "lab", "busybox", "sh", "-c",
                 "for i in $(seq 50); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 server 8000 "
                 "| tail -1 | grep . && exit 0; sleep 0.1; done; exit 1").stdout
    assert fetched == b"from-server\n"
    db("rm", "-f", "server")
    db("network", "rm", "lab")
    assert b"lab" not in subprocess.run(["ip", "link"], capture_output=True).stdout   # nothing on the host's side
    # Dockerbank's registry, served and used by the user
    reg_port = _free_port()
    server = user.popen("registry", "serve", "--listen", f"127.0.0.1:{reg_port}", stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{reg_port}/v2/")
        ref = f"127.0.0.1:{reg_port}/mine:1"
        db("tag", "mine:1", ref)
        db("push", ref)
        db("rmi", ref, "mine:1")
        db("pull", ref)
        assert db("run", "--rm", ref).stdout == b"built\n"
    finally:
        server.kill()
        server.wait()
    # back up a volume, lose it, restore it
    db("backup", "init")
    db("backup", "create", "-q", "data")
    db("volume", "rm", "data")
    db("restore", "--volume", "data")
    assert db("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f").stdout == b"kept\n"
    import json

    audit = {f["rule"] for f in json.loads(db("audit", "host", "--format", "json").stdout)["Findings"]}
    assert "rootless-limits" in audit and "root-dir-perms" not in audit and "userns-not-default" not in audit
    info = db("info").stdout.decode()
    assert "Rootless: true" in info and f"Dockerbank Root Dir: {root}" in info
    # this host is cgroup v1/hybrid: nothing can be delegated, and info says so and why
    assert " Rootless Limits: rootless Dockerbank cannot limit resources: this host has cgroup v1/hybrid" in info
    assert " Cgroup Driver: none" in info
    # what cannot work rootless says why, in one line, and creates nothing
    before = db("ps", "-aq").stdout
    for args in (["run", "--rm", "--memory", "64m", "busybox", "true"], ["run", "--rm", "--userns=auto", "busybox", "true"]):
        done = db(*args, check=False)
        err = done.stderr.decode()
        assert done.returncode in (1, 125) and len(err.strip().splitlines()) == 1 and "root" in err, (args, err)
        assert "--memory" not in args or "cgroup v1/hybrid" in err, err   # the refusal says why
    assert db("ps", "-aq").stdout == before


def test_bad_input_of_a_user_is_one_line_and_creates_nothing():
    person = User(f"dbns{uuid.uuid4().hex[:6]}", system=True)   # system users get no subordinate IDs
    try:
        assert f"\n{person.name}:" not in "\n" + Path("/etc/subuid").read_text()
        done = person.db("ps", check=False)
        err = done.stderr.decode().strip()
        assert done.returncode == 125 and len(err.splitlines()) == 1
        assert f"'{person.name}:<start>:65536'" in err and "/etc/subuid" in err
        assert not (person.home / ".local").exists() and not (person.runtime / "dockerbank").exists()
        # newuidmap missing (here: not on PATH): what to install, nothing created
        done = person.db("ps", check=False, env=person.env(PATH="/nonexistent"))
        assert done.returncode == 125 and "apt-get install uidmap" in done.stderr.decode()
        assert not (person.runtime / "dockerbank").exists()
    finally:
        person.remove()


STACK = """\
services:
  server:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; mkdir -p /www && echo from-server > /www/index.html; httpd -f -p 8000 -h /www'
    networks: [lab]
  client:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    depends_on: [server]
    networks: [lab]
    volumes: [data:/data]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /data/got http://server:8000/index.html"]
      interval: 1s
      start_interval: 100ms
      start_period: 20s
      retries: 30
volumes:
  data: {}
networks:
  lab: {}
"""


def test_an_ordinary_users_api_service_serves_the_docker_cli_and_compose_runs_a_stack(user):
    db = user.db
    db("base-image", "busybox")
    sock = user.runtime / "dockerbank" / "docker.sock"
    service = user.popen("system", "service", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert service.poll() is None, service.stderr.read().decode() if service.stderr else ""
            assert time.monotonic() < deadline, "the user's API socket never appeared"
            time.sleep(0.05)
        assert os.stat(sock).st_uid == user.uid        # the user's own socket, under $XDG_RUNTIME_DIR

        def docker(*args: str) -> subprocess.CompletedProcess:
            done = subprocess.run(["docker", "-H", f"unix://{sock}", *args], user=user.uid, group=user.gid,
                                  extra_groups=[], cwd=user.home, capture_output=True, timeout=60,
                                  env=user.env(DOCKER_CONFIG=str(user.home / ".docker")))
            assert done.returncode == 0, (args, done.stderr.decode(errors="replace"))
            return done

        assert docker("run", "--rm", "busybox", "sh", "-c", "echo hi; id -u").stdout == b"hi\n0\n"
        docker("run", "-d", "--name", "idle", "busybox", "sleep", "60")
        assert docker("ps", "--format", "{{.Names}}").stdout == b"idle\n"
        docker("rm", "-f", "idle")
        assert "name=rootless" in docker("info", "--format", "{{json .SecurityOptions}}").stdout.decode()
        import json

        cgroup = json.loads(docker("info", "--format", "{{json .}}").stdout)
        assert cgroup["CgroupDriver"] == "none" and cgroup["CgroupVersion"] == "1"
        assert any("rootless-mode without cgroups" in w and "v1/hybrid" in w for w in cgroup["Warnings"]), cgroup
        # no cgroups delegated on this host: a limit is refused in one line (saying why), nothing created
        limited = subprocess.run(["docker", "-H", f"unix://{sock}", "run", "--rm", "-m", "64m", "busybox", "true"],
                                 user=user.uid, group=user.gid, extra_groups=[], capture_output=True, timeout=60,
                                 env=user.env(DOCKER_CONFIG=str(user.home / ".docker")))
        err = limited.stderr.decode().strip()
        assert limited.returncode == 125 and "cannot limit resources" in err and len(err.splitlines()) <= 2, err
        assert "cgroup v1/hybrid" in err, err
        assert docker("ps", "-aq").stdout == b""
        # compose (the user's CLI, same root) while the service runs
        project = user.home / "stack"
        project.mkdir()
        (project / "compose.yaml").write_text(STACK)
        os.chown(project, user.uid, user.gid)
        compose = ("compose", "-f", str(project / "compose.yaml"), "-p", "lab")
        db(*compose, "up", "-d", "--wait", timeout=90)
        assert db("exec", "lab_client_1", "cat", "/data/got").stdout == b"from-server\n"   # DNS on the user network
        names = docker("ps", "--format", "{{.Names}}").stdout.decode().split()
        assert sorted(names) == ["lab_client_1", "lab_server_1"]
        db(*compose, "down", "-v")
        assert db("ps", "-aq").stdout == b"" and b"lab_data" not in db("volume", "ls", "-q").stdout
        assert b"lab_lab" not in db("network", "ls").stdout
    finally:
        service.terminate()
        service.wait(timeout=20)
