"""Crash safety (issue 20.1): each multi-step operation killed with SIGKILL at each of its steps
(dockerbank.faults' named points, found by tracing the operation once) and at random times; after
each kill ``system check`` repairs and the whole root is checked: every image's config and layers
present and matching their digests, no container half-present, the data of a volume unchanged,
every backup in the repository verifying, and a container that ran before still running.

CI runs a bounded subset (``FAULT_POINTS`` per operation, default 3, spread over its steps, and
``FAULT_RANDOM`` random-time kills, default 1); ``scripts/faults.sh`` runs every step of every
operation and more random kills, and writes the counts (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import require_binary, run_cli, wait_for_network_teardown
from tests.registry_checks import check_storage

pytestmark = pytest.mark.integration

POINTS = int(os.environ.get("FAULT_POINTS", "3"))       # 0: every step
RANDOM_KILLS = int(os.environ.get("FAULT_RANDOM", "1"))
REPORT: Counter[str] = Counter()
STEPS: dict[str, list[str]] = {}   # operation -> the names of the points it passes (the report's coverage)


def write_report() -> None:
    """The counts and the points covered per operation, as JSON to ``FAULT_REPORT`` (scripts/faults.sh)."""
    report = os.environ.get("FAULT_REPORT")
    if report:
        steps = {f"steps {name}": sorted({p.rsplit(":", 1)[0] for p in points}) for name, points in STEPS.items()}
        Path(report).write_text(json.dumps(dict(REPORT) | steps, indent=2, sort_keys=True))


def env_of(root: Path, **extra: str) -> dict[str, str]:
    # in-process (no warm helper): kill_group must reach the killed command's own children, and a
    # command the helper runs is in a session of its own (tests/integration/test_warm.py kills there)
    return dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run",
                DOCKERBANK_WARM="0", **extra)


def kill_group(pgid: int, timeout: float = 30.0) -> None:
    """The whole killed command goes, as when the OOM killer or a power loss takes it: its own
    children (a tar, a runtime call) must not race the repair that follows. Containers and their
    conmon live in sessions of their own and stay."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = False
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    alive = True
                    break
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"the killed command's process group {pgid} did not end")


def cli_quiet(root: Path, *args: str) -> None:
    run_cli(root, *args, check=False)


def _rootfs_tar(path: Path, marker: str, size: int = 300_000) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in (("etc/marker", marker.encode()), ("data.bin", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class World:
    """A root with an image, a running container, a volume of precious data and a backup of it."""

    def __init__(self, root: Path, work: Path, registry: str):
        self.root, self.work, self.registry = root, work, registry
        self.repo = work / "repo"
        run_cli(root, "base-image", "busybox")
        run_cli(root, "volume", "create", "precious")
        data = root / "volumes" / "precious" / "_data"
        for i in range(20):
            (data / f"f{i}").write_bytes(os.urandom(5000))
        self.precious = self.digest_of(data)
        run_cli(root, "run", "-d", "--name", "runner", "--network", "none", "busybox", "sleep", "3600")
        run_cli(root, "backup", "create", "--repo", str(self.repo), "precious")
        other = work / "other-root"
        run_cli(other, "import", str(_rootfs_tar(work / "other.tar", "other")), "other:1")
        self.archive = work / "other-image.tar"
        run_cli(other, "save", "-o", str(self.archive), "other:1")
        self.rootfs = _rootfs_tar(work / "imp.tar", "imported")
        self.context = work / "ctx"
        self.context.mkdir()
        (self.context / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\nCOPY x /x\n")
        (self.context / "x").write_text("x\n")
        run_cli(root, "tag", "busybox", f"{registry}/team/bb:1")

    @staticmethod
    def digest_of(path: Path) -> str:
        h = hashlib.sha256()
        for file in sorted(path.rglob("*")):
            h.update(str(file.relative_to(path)).encode())
            if file.is_file():
                h.update(file.read_bytes())
        return h.hexdigest()

    def check(self, what: str) -> None:
        """The whole root after a crash and a repair."""
        repaired = run_cli(self.root, "system", "check", check=False)
        assert repaired.returncode == 0, f"{what}: {repaired.stderr.decode()}"
        again = run_cli(self.root, "system", "check", "--dry-run", check=False)
        lines = again.stdout.decode().splitlines()
        if again.returncode != 0 and lines and all("directory of unknown container" in line for line in lines):
            # a directory an earlier killed create left is the repair's only after 10 minutes: it may
            # cross that age between the repair and this check; a second repair must take it
            run_cli(self.root, "system", "check", check=False)
            again = run_cli(self.root, "system", "check", "--dry-run", check=False)
        assert again.returncode == 0, f"{what}: check finds what it did not repair: {again.stdout.decode()}"
        self._images(what)
        ps = run_cli(self.root, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}").stdout.decode()
        for line in ps.splitlines():
            cid, name, _state = line.split()
            assert (self.root / "containers" / cid).is_dir(), f"{what}: container {name} has no directory"
            run_cli(self.root, "inspect", cid)
        assert "runner running" in ps, f"{what}: the running container was disturbed: {ps}"
        data = self.root / "volumes" / "precious" / "_data"
        assert self.digest_of(data) == self.precious, f"{what}: the precious volume changed"
        verify = run_cli(self.root, "backup", "verify", "--repo", str(self.repo), check=False)
        assert verify.returncode == 0, f"{what}: {verify.stdout.decode()} {verify.stderr.decode()}"

    def _images(self, what: str) -> None:
        from dockerbank.config import Config
        from dockerbank.engine import Engine
        from dockerbank.oci import digest as dg

        engine = Engine(Config(root=self.root, run_root=Path(str(self.root) + "-run")))
        try:
            for image in engine.images.list():
                blob = engine.images.blobs.path(image.id).read_bytes()
                assert dg.of_bytes(blob) == image.id, f"{what}: config of {image.id} does not match its digest"
                for layer_dir in engine.images.layers.lower_dirs(image.top_chain):
                    assert layer_dir.is_dir(), f"{what}: layer {layer_dir} of {image.id[:19]} is missing"
        finally:
            engine.close()


def operations(world: World) -> dict[str, tuple]:
    """name -> (prepare, argv, undo): each operation starts from the same state and is undone."""
    root = world.root
    reg = world.registry
    return {
        "load": (None, ["load", "-i", str(world.archive)], lambda: cli_quiet(root, "rmi", "-f", "other:1")),
        "import": (None, ["import", str(world.rootfs), "imp:1"], lambda: cli_quiet(root, "rmi", "-f", "imp:1")),
        "create": (None, ["create", "--name", "kk", "--network", "none", "-e", "PW=x", "busybox", "true"],
                   lambda: cli_quiet(root, "rm", "-f", "kk")),
        "start": (lambda: cli_quiet(root, "create", "--name", "ss", "--network", "none", "busybox", "sleep", "60"),
                  ["start", "ss"], lambda: cli_quiet(root, "rm", "-f", "ss")),
        "run --rm": (None, ["run", "--rm", "--network", "none", "busybox", "true"], None),
        "rm": (lambda: cli_quiet(root, "create", "--name", "rr", "--network", "none", "busybox", "true"),
               ["rm", "rr"], lambda: cli_quiet(root, "rm", "-f", "rr")),
        "commit": (lambda: cli_quiet(root, "run", "-d", "--name", "cm", "--network", "none", "busybox", "sh", "-c",
                                     "echo x > /f; exec sleep 60"),
                   ["commit", "cm", "cm:1"], lambda: (cli_quiet(root, "rm", "-f", "cm"),
                                                       cli_quiet(root, "rmi", "-f", "cm:1"))),
        "build": (None, ["build", "-q", "-t", "b:1", str(world.context)],
                  lambda: cli_quiet(root, "rmi", "-f", "b:1")),
        "volume rm": (lambda: (cli_quiet(root, "volume", "create", "tmpv"),
                               (root / "volumes" / "tmpv" / "_data" / "f").write_text("y")),
                      ["volume", "rm", "tmpv"], lambda: cli_quiet(root, "volume", "rm", "tmpv")),
        # fresh data each time: chunks already in the repository are skipped, and the chunk writes
        # (backup.chunks) must be killed too, not only the snapshot's
        "backup create": (lambda: (cli_quiet(root, "volume", "create", "fresh"),
                                   (root / "volumes" / "fresh" / "_data" / "f").write_bytes(os.urandom(4 << 20))),
                          ["backup", "create", "--repo", str(world.repo), "precious", "fresh"], None),
        "restore": (None, ["restore", "--repo", str(world.repo), "--volume", "precious:restored"],
                    lambda: cli_quiet(root, "volume", "rm", "restored")),
        "push": (None, ["push", f"{reg}/team/bb:1"], None),
        "pull": (lambda: cli_quiet(root, "rmi", f"{reg}/team/bb:1"), ["pull", f"{reg}/team/bb:1"],
                 lambda: cli_quiet(root, "tag", "busybox", f"{reg}/team/bb:1")),
    }


def _trace(world: World, name: str, argv: list[str]) -> list[str]:
    trace = world.work / f"trace-{name.replace(' ', '_')}"
    trace.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", "dockerbank", *argv], capture_output=True, timeout=300,
                          env=env_of(world.root, DOCKERBANK_FAULT_TRACE=str(trace)))
    assert done.returncode == 0, f"{name}: {done.stderr.decode()}"
    return trace.read_text().split() if trace.exists() else []


def _chosen(points: list[str]) -> list[str]:
    if POINTS <= 0 or len(points) <= POINTS:
        return points
    step = len(points) / POINTS
    return [points[int(i * step + step / 2)] for i in range(POINTS)]  # spread over the operation


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_binary("conmon")
    from dockerbank.registry.server.app import start_in_thread
    from dockerbank.registry.server.storage import RegistryStorage

    work = tmp_path_factory.mktemp("faults")
    registry = start_in_thread(RegistryStorage(work / "registry"))
    # a cgroup parent of its own: `system check` judges this root's cgroups alone, not those that
    # other roots' containers (other tests, other users of a shared host) leave while they end
    parent = f"/dockerbank-faults-{os.getpid()}"
    os.environ["DOCKERBANK_CGROUP_PARENT"] = parent
    try:
        world = World(work / "root", work, registry.address)
        yield world
        run_cli(world.root, "rm", "-f", "runner", check=False)
        left = run_cli(world.root, "ps", "-aq", "--no-trunc", check=False).stdout.decode().split()
        if left:
            run_cli(world.root, "rm", "-f", *left, check=False)
        wait_for_network_teardown(Path(str(world.root) + "-run"))
    finally:
        os.environ.pop("DOCKERBANK_CGROUP_PARENT", None)
        for hierarchy in Path("/sys/fs/cgroup").glob("*/" + parent.strip("/")):
            for sub in sorted(hierarchy.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
        try:
            Path("/sys/fs/cgroup" + parent).rmdir()   # a pure cgroup v2 host
        except OSError:
            pass
    registry.stop()
    write_report()


OPERATION_NAMES = ["load", "import", "create", "start", "run --rm", "rm", "commit", "build", "volume rm",
                   "backup create", "restore", "push", "pull"]


@pytest.mark.parametrize("name", OPERATION_NAMES)
def test_killed_at_each_step_loses_nothing(world, name):
    prepare, argv, undo = operations(world)[name]
    points: list[str] = []
    for _ in range(2):  # the second run's steps: the first may do once-only work (caches, rows)
        if prepare:
            prepare()
        points = _trace(world, name, argv)
        if undo:
            undo()
    assert points, f"{name} passes no injection point: the test would prove nothing"
    duration = 0.0
    killed_at = 0
    for point in _chosen(points):
        if prepare:
            prepare()
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "dockerbank", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env_of(world.root, DOCKERBANK_FAULT=point),
                                start_new_session=True)
        out, err = proc.communicate(timeout=300)
        kill_group(proc.pid)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        duration = max(duration, time.monotonic() - started)
        if done.returncode == -signal.SIGKILL:
            killed_at += 1
            REPORT[f"kills {name}"] += 1
            REPORT["kills"] += 1
        else:  # this run took another path (a retry, a cache): it must still have succeeded
            assert done.returncode == 0, f"{name} with {point}: {done.stderr.decode()}"
            REPORT["points not reached"] += 1
        world.check(f"{name} killed at {point}")
        if undo:
            undo()
    assert killed_at, f"{name}: no kill landed on any of its steps {_chosen(points)}"
    REPORT[f"points {name}"] = len(points)
    STEPS[name] = points
    for _ in range(RANDOM_KILLS):
        if prepare:
            prepare()
        proc = subprocess.Popen([sys.executable, "-m", "dockerbank", *argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env_of(world.root), start_new_session=True)
        time.sleep(random.uniform(0.05, max(0.1, duration)))  # the kill's moment is random by design
        proc.send_signal(signal.SIGKILL)
        killed = proc.wait() == -signal.SIGKILL
        kill_group(proc.pid)
        REPORT["random kills"] += int(killed)
        REPORT["kills"] += int(killed)
        world.check(f"{name} killed at a random time")
        if undo:
            undo()


# --- the registry server's own operations: `registry serve` killed while it takes a push, `registry gc` ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RegistryWorld:
    """A registry served by its own process (``registry serve``, the fault plan in its environment)
    over a storage directory, a Dockerbank root that pushes to it, and an image pushed at the start
    that every kill must leave whole and served."""

    def __init__(self, work: Path):
        self.work = work
        self.storage = work / "registry-storage"
        self.root = work / "registry-client"
        self.address = f"127.0.0.1:{_free_port()}"
        self.server: subprocess.Popen | None = None
        self.serial = 0
        self.took = 0.0   # how long the last operation ran (the range of the random kills' moments)
        self.start()
        self.keep = self.new_image("keep/img")
        run_cli(self.root, "push", self.keep)
        self.stop()

    # --- the server process

    def start(self, **plan: str) -> subprocess.Popen:
        """Start ``registry serve`` (with ``plan``: DOCKERBANK_FAULT or _TRACE) and wait until it answers."""
        with open(self.work / "registry-server.log", "ab") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "dockerbank", "registry", "serve", "--listen", self.address,
                 "--storage", str(self.storage)],
                stdout=subprocess.DEVNULL, stderr=log, env=env_of(self.root, **plan), start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.server.poll() is not None:
                raise AssertionError(f"registry serve exited {self.server.returncode} at start "
                                     f"(see {self.work / 'registry-server.log'})")
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=5) as response:
                    response.read()
                return self.server
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("registry serve did not answer within 60 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """End a running server as an operator or systemd would (SIGTERM); one killed already is reaped.
        Not SIGINT: a run started in the background of a shell inherits SIGINT ignored (the server
        then outlived every stop by the 30 s below, which made the full run take hours)."""
        server, self.server = self.server, None
        if server is None:
            return
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        kill_group(server.pid)

    def server_died(self, timeout: float = 10.0) -> bool:
        """Whether the server ended by SIGKILL (its fault point), waiting a moment for it."""
        assert self.server is not None
        try:
            return self.server.wait(timeout=timeout) == -signal.SIGKILL
        except subprocess.TimeoutExpired:
            return False

    # --- HTTP without Dockerbank's client (the check must not share the code it checks)

    def http(self, method: str, path: str, accept: str = "") -> tuple[int, bytes, dict]:
        request = urllib.request.Request(f"http://{self.address}{path}", method=method)
        request.add_header("Accept", accept or ", ".join([
            "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json"]))
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    # --- images

    def new_image(self, repo: str) -> str:
        """A fresh image (a 2.5 MB layer of random bytes: several chunks) tagged for the registry."""
        self.serial += 1
        ref = f"{self.address}/{repo}:{self.serial}"
        tar = _rootfs_tar(self.work / "registry-image.tar", f"image {self.serial}", size=2_500_000)
        run_cli(self.root, "import", str(tar), ref)
        return ref

    def image_id(self, ref: str) -> str:
        return run_cli(self.root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.decode().strip()

    def delete_remote(self, ref: str) -> None:
        """Delete the manifest ``ref`` names from the registry (its blobs become garbage for gc)."""
        path, tag = ref.split("/", 1)[1].rsplit(":", 1)
        status, _body, headers = self.http("HEAD", f"/v2/{path}/manifests/{tag}")
        if status == 200:
            status, body, _ = self.http("DELETE", f"/v2/{path}/manifests/{headers['Docker-Content-Digest']}")
            assert status == 202, f"DELETE of {ref}: {status} {body!r}"

    def served_whole(self, what: str, ref: str) -> bool:
        """``ref``'s manifest and every blob it names as served: each matches its digest. False if absent."""
        path, tag = ref.split("/", 1)[1].rsplit(":", 1)
        status, body, headers = self.http("GET", f"/v2/{path}/manifests/{tag}")
        if status == 404:
            return False
        assert status == 200, f"{what}: GET manifest {ref}: {status} {body!r}"
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        assert headers.get("Docker-Content-Digest") == digest, f"{what}: manifest {ref} served with another digest"
        doc = json.loads(body)
        for descriptor in [doc["config"], *doc["layers"]]:
            status, blob, _ = self.http("GET", f"/v2/{path}/blobs/{descriptor['digest']}")
            assert status == 200, f"{what}: {ref} names blob {descriptor['digest']}, served {status}"
            assert "sha256:" + hashlib.sha256(blob).hexdigest() == descriptor["digest"], \
                f"{what}: blob {descriptor['digest']} of {ref} is served with other bytes (a half upload?)"
            assert len(blob) == descriptor["size"], f"{what}: blob {descriptor['digest']} of {ref} has another size"
        return True

    # --- the storage, read as files

    def check_storage(self, what: str, after_gc: bool) -> None:
        """See tests/registry_checks.py."""
        check_storage(self.storage, what, after_gc)

    def gc(self, what: str) -> None:
        done = run_cli(self.root, "registry", "gc", "--storage", str(self.storage), check=False)
        assert done.returncode == 0, f"{what}: registry gc after the kill: {done.stderr.decode()}"

    def check(self, what: str, ref: str | None) -> None:
        """After a kill: the storage as files, a completed gc, a restarted server serving whole images,
        and a new push and pull (of ``ref``, the image the killed push carried, else a new one)."""
        assert self.server is None or self.server.poll() is not None, f"{what}: the server still runs"
        self.server = None
        self.check_storage(what, after_gc=False)
        self.gc(what)
        self.check_storage(what, after_gc=True)
        self.start()
        try:
            assert self.served_whole(what, self.keep), f"{what}: the image pushed before is gone"
            if ref is None:
                ref = self.new_image("after/img")
            pushed = run_cli(self.root, "push", ref, check=False)
            assert pushed.returncode == 0, f"{what}: a new push after the kill: {pushed.stderr.decode()}"
            assert self.served_whole(what, ref), f"{what}: {ref} pushed but not served"
            image = self.image_id(ref)
            run_cli(self.root, "rmi", ref)
            pulled = run_cli(self.root, "pull", ref, check=False)
            assert pulled.returncode == 0, f"{what}: a pull after the kill: {pulled.stderr.decode()}"
            assert self.image_id(ref) == image, f"{what}: {ref} pulled back as another image"
            # a second client, skopeo, reads the image pushed before (it verifies every digest)
            copied = subprocess.run([require_binary("skopeo"), "copy", "--quiet", "--src-tls-verify=false",
                                     f"docker://{self.keep}", f"dir:{self.work / 'skopeo-copy'}"],
                                    capture_output=True, timeout=120)
            assert copied.returncode == 0, f"{what}: skopeo reads {self.keep}: {copied.stderr.decode()}"
            self.delete_remote(ref)   # garbage for the next gc: the store stays small
            run_cli(self.root, "rmi", ref)
        finally:
            self.stop()
            subprocess.run(["rm", "-rf", str(self.work / "skopeo-copy")], check=False)

    # --- the two operations: (run with a plan) -> (killed, ref to push again after the kill)

    def upload(self, plan: dict[str, str], kill_after: float | None = None) -> tuple[bool, str]:
        """Push a fresh image to a server started with ``plan``; with ``kill_after``, SIGKILL the server
        that many seconds into the push (a random time) instead."""
        ref = self.new_image("up/img")
        self.start(**plan)
        if kill_after is None:
            started = time.monotonic()
            pushed = run_cli(self.root, "push", ref, check=False)
            self.took = time.monotonic() - started
            # the server dies at its point before it answers: a push that succeeded was not cut
            killed = pushed.returncode != 0 and self.server_died()
            if not killed:
                assert pushed.returncode == 0, f"push with {plan}: {pushed.stderr.decode()}"
                self.stop()
            else:
                self._failed_in_one_line(pushed)
            return killed, ref
        push = subprocess.Popen([sys.executable, "-m", "dockerbank", "push", ref], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env_of(self.root))
        time.sleep(kill_after)   # the kill's moment is random by design
        during = push.poll() is None
        assert self.server is not None
        self.server.kill()
        self.server.wait()
        _out, err = push.communicate(timeout=120)
        self._failed_in_one_line(subprocess.CompletedProcess(push.args, push.returncode, b"", err))
        return during, ref

    @staticmethod
    def _failed_in_one_line(pushed: subprocess.CompletedProcess) -> None:
        if pushed.returncode != 0:   # the push the kill interrupted fails as a user sees it: one line
            lines = pushed.stderr.decode().strip().splitlines()
            assert lines and "Traceback" not in pushed.stderr.decode() and pushed.returncode in (1, 125), \
                f"the interrupted push: exit {pushed.returncode}: {pushed.stderr.decode()}"

    def garbage(self) -> None:
        """Garbage for gc: an image pushed, then its manifest deleted (3 blobs and 2 links to sweep)."""
        ref = self.new_image("gc/img")
        self.start()
        try:
            run_cli(self.root, "push", ref)
            self.delete_remote(ref)
        finally:
            self.stop()
        run_cli(self.root, "rmi", ref)

    def collect(self, plan: dict[str, str], kill_after: float | None = None) -> tuple[bool, None]:
        """``registry gc`` (the server stopped, as its help says) with ``plan``, or killed at a random time."""
        self.garbage()
        argv = [sys.executable, "-m", "dockerbank", "registry", "gc", "--storage", str(self.storage)]
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env_of(self.root, **plan), start_new_session=True)
        if kill_after is not None:
            time.sleep(kill_after)   # the kill's moment is random by design
            proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        self.took = time.monotonic() - started
        kill_group(proc.pid)
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, f"registry gc with {plan}: {err.decode()}"
        return proc.returncode == -signal.SIGKILL, None


@pytest.fixture(scope="module")
def registry_world(tmp_path_factory):
    require_binary("skopeo")
    world = RegistryWorld(tmp_path_factory.mktemp("registry-faults"))
    yield world
    world.stop()
    write_report()


REGISTRY_OPERATIONS = ["registry upload", "registry gc"]


@pytest.mark.parametrize("name", REGISTRY_OPERATIONS)
def test_registry_killed_at_each_step_loses_nothing(registry_world, name):
    world = registry_world
    operation = world.upload if name == "registry upload" else world.collect
    trace = world.work / "trace-registry"
    points: list[str] = []
    for _ in range(2):  # the second run's steps: the first may do once-only work (a repository's folders)
        trace.unlink(missing_ok=True)
        killed, ref = operation({"DOCKERBANK_FAULT_TRACE": str(trace)})
        duration = world.took
        assert not killed
        points = trace.read_text().split() if trace.exists() else []
        world.check(f"{name} traced", ref)
    assert points, f"{name} passes no injection point: the test would prove nothing"
    killed_at = 0
    for point in _chosen(points):
        what = f"{name} killed at {point}"
        killed, ref = operation({"DOCKERBANK_FAULT": point})
        if killed:
            killed_at += 1
            REPORT[f"kills {name}"] += 1
            REPORT["kills"] += 1
        else:  # this run took another path: it succeeded (asserted by the operation)
            REPORT["points not reached"] += 1
        world.check(what, ref)
    assert killed_at, f"{name}: no kill landed on any of its steps {_chosen(points)}"
    REPORT[f"points {name}"] = len(points)
    STEPS[name] = points
    for _ in range(RANDOM_KILLS):
        killed, ref = operation({}, kill_after=random.uniform(0.05, max(0.1, duration)))
        REPORT["random kills"] += int(killed)
        REPORT["kills"] += int(killed)
        world.check(f"{name} killed at a random time", ref)
