"""Backups that restore, on real containers (crun/runc + conmon + overlayfs + cgroups):
a volume into a fresh root with every kind of metadata, pause during the read, a container's
top layer with its image, whole-host disaster recovery, and the dump mode.

The dump test here uses a fake "database" (a busybox container whose dump and restore
commands come from the ``org.dockerbank.backup.*`` labels); the built-in PostgreSQL recipe runs
against a real server in test_backup_postgres.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path

import pytest

from dockerbank.backup.create import CreateOptions, Progress, create
from dockerbank.backup.repository import Repository
from dockerbank.backup.restore import RestoreOptions, restore
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.errors import Conflict, DockerbankError
from tests.conftest import require_binary, run_cli


def _engine(root: Path) -> Engine:
    """An engine with the same run root the ``cli`` fixture uses, so both see the same containers."""
    return Engine(Config(root=root, run_root=Path(str(root) + "-run")))


@pytest.fixture
def eng(root, busybox):
    engine = _engine(root)
    yield engine
    for container in engine.containers.list():
        with contextlib.suppress(DockerbankError):
            engine.containers.remove(container.id, force=True)
    engine.close()


@pytest.fixture
def fresh(tmp_path):
    """The "other machine": another, empty root."""
    path = tmp_path / "other"
    path.mkdir()
    engine = _engine(path)
    yield engine
    for container in engine.containers.list():
        with contextlib.suppress(DockerbankError):
            engine.containers.remove(container.id, force=True)
    engine.close()


def _fill_volume(data: Path) -> None:
    (data / "sub").mkdir()
    (data / "sub" / "big").write_bytes(os.urandom(3 << 20))
    os.link(data / "sub" / "big", data / "hardlink")
    with open(data / "sparse", "wb") as fh:
        fh.truncate(64 << 20)
        fh.seek(40 << 20)
        fh.write(b"data in the middle")
    os.chown(data / "sub", 1234, 5678)
    os.chmod(data / "sub", 0o750)
    os.chown(data / "hardlink", 42, 43)
    os.chmod(data / "hardlink", 0o4751)
    os.setxattr(data / "hardlink", "user.project", b"dockerbank")
    os.symlink("sub/big", data / "link")
    os.mkfifo(data / "fifo")
    (data / "stamped").write_text("sub-second mtime")
    os.utime(data / "stamped", ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    os.chmod(data, 0o770)
    os.chown(data, 7, 8)


def _tree(path: Path) -> dict:
    """Everything that must survive: type, mode, owner, size, mtime (s), xattrs, content, links."""
    result = {}
    inodes: dict[int, str] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            full = Path(dirpath) / name
            st = full.lstat()
            rel = str(full.relative_to(path))
            entry = [stat.filemode(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)]
            if stat.S_ISREG(st.st_mode):
                entry += [st.st_size, hash(full.read_bytes()), os.listxattr(full, follow_symlinks=False),
                          inodes.setdefault(st.st_ino, rel)]
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(full))
            result[rel] = entry
    st = path.stat()
    result["."] = [stat.filemode(st.st_mode), st.st_uid, st.st_gid]
    return result


def test_volume_restores_on_another_machine_with_all_metadata(eng, fresh, tmp_path):
    eng.volumes.create("data", labels={"team": "bio"})
    src = eng.volumes.data_dir("data")
    _fill_volume(src)
    repo = Repository(tmp_path / "repo")
    report = create(eng, repo, CreateOptions(volumes=["data"], tags=["nightly"]))
    assert report.total.new_bytes >= 3 << 20
    # a second backup of unchanged data adds nothing
    again = create(eng, repo, CreateOptions(volumes=["data"]))
    assert again.total.new_bytes == 0 and again.total.dedup_bytes == again.total.size
    restore(fresh, repo, "nightly", RestoreOptions())
    dst = fresh.volumes.data_dir("data")
    assert _tree(dst) == _tree(src)
    assert os.getxattr(dst / "hardlink", "user.project") == b"dockerbank"
    assert (dst / "hardlink").stat().st_ino == (dst / "sub" / "big").stat().st_ino
    assert abs((dst / "stamped").stat().st_mtime_ns - 1_700_000_000_987_654_321) < 1000   # sub-second kept
    sparse = (dst / "sparse").stat()
    assert sparse.st_size == 64 << 20 and sparse.st_blocks * 512 < 1 << 20   # the holes are holes again
    assert fresh.volumes.inspect("data")["Labels"] == {"team": "bio"}
    # a non-empty volume is not overwritten without --force; a new name is fine
    with pytest.raises(Conflict):
        restore(fresh, repo, "latest", RestoreOptions(volumes=["data"]))
    restore(fresh, repo, "latest", RestoreOptions(volumes=["data:copy"]))
    assert _tree(fresh.volumes.data_dir("copy")) == _tree(src)
    (dst / "extra").write_text("x")
    restore(fresh, repo, "latest", RestoreOptions(volumes=["data"], force=True))
    assert _tree(dst) == _tree(src)
    # an unchanged tree is not even read again; any change (one byte, same size and mtime
    # second; or a chmod alone) is seen and saved
    with open(src / "sub" / "big", "r+b") as fh:
        fh.seek(100)
        fh.write(b"X")
    changed = create(eng, repo, CreateOptions(volumes=["data"]))
    assert 0 < changed.total.new_bytes < changed.total.size
    os.chmod(src / "sub", 0o700)
    create(eng, repo, CreateOptions(volumes=["data"]))
    restore(fresh, repo, "latest", RestoreOptions(volumes=["data:v3"]))
    assert _tree(fresh.volumes.data_dir("v3")) == _tree(src)


def _run(root: Path, *args: str) -> str:
    return run_cli(root, *args).stdout.decode().strip()


class _Watch(Progress):
    """Looks at the writer container while the backup reads (the progress callback runs then)."""

    def __init__(self, engine, name: str):
        from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout, freezer_state

        self.engine, self.name = engine, name
        cid = engine.containers.get(name).id
        self.cgroup = Cgroup(detect_layout(), container_cgroups_path(cid))
        self.freezer_state = freezer_state
        self.seen: list[tuple[str, str]] = []

    def task(self, description, total):
        def tick(_n):
            if description.startswith("volume"):
                self.seen.append((self.engine.containers.get(self.name).state.status,
                                  self.freezer_state(self.cgroup)))
        return tick


def test_running_writer_is_paused_while_its_volume_is_read_and_resumes(eng, root, tmp_path):
    require_binary("conmon")
    _run(root, "run", "--network", "none", "-d", "--name", "writer", "-v", "log:/data", "busybox", "sh", "-c",
         "while true; do date >> /data/log; usleep 20000; done")
    data = eng.volumes.data_dir("log")
    (data / "ballast").write_bytes(os.urandom(6 << 20))   # a few chunks, so the reader ticks several times
    _wait_until(lambda: (data / "log").exists() and (data / "log").stat().st_size > 0, "the writer's first line")
    watch = _Watch(eng, "writer")
    report = create(eng, Repository(tmp_path / "repo"), CreateOptions(volumes=["log"]), watch)
    assert watch.seen and all(s == ("paused", "FROZEN") for s in watch.seen), watch.seen
    assert eng.containers.get("writer").state.status == "running"
    size = (data / "log").stat().st_size
    _wait_until(lambda: (data / "log").stat().st_size > size, "the writer to write again after the backup")
    assert not [w for w in report.warnings if "not paused" in w]
    # --consistency none leaves it running and says so
    watch = _Watch(eng, "writer")
    report = create(eng, Repository(tmp_path / "repo"), CreateOptions(volumes=["log"], consistency="none"), watch)
    assert watch.seen and all(s[0] == "running" for s in watch.seen)
    assert any("writer uses volume log and was not paused" in w for w in report.warnings)


def test_container_top_layer_and_image_restore_into_fresh_root(eng, root, fresh, tmp_path):
    require_binary("conmon")
    script = ("cat /etc/app.conf 2>/dev/null; test -e /etc/group && echo group || echo no-group; "
              "test -d /srv/x && echo dir; echo made-in-container > /etc/app.conf; rm -f /etc/group; "
              "mkdir -p /srv/x; echo v > /data/v")
    assert _run(root, "run", "--network", "none", "--name", "app", "-v", "appdata:/data", "busybox", "sh", "-c", script) == "group"
    repo = Repository(tmp_path / "repo")
    report = create(eng, repo, CreateOptions(containers=["app"], with_images=True))
    kinds = sorted(p.kind for p in report.snapshot.parts)
    assert kinds == ["container", "image", "volume"]
    container_part = next(p for p in report.snapshot.parts if p.kind == "container")
    assert container_part.size < 1 << 20      # only the top layer, not the image's files
    assert not any("outside any volume" in w for w in report.warnings)   # a small top layer is no news
    restore(fresh, repo, "latest", RestoreOptions(containers=["app"]))
    other = fresh.config.root
    assert _run(other, "inspect", "-f", "{{.Name}} {{.State.Status}}", "app") == "/app created"
    out = _run(other, "run", "--network", "none", "--rm", "--volumes-from", "app", "busybox", "cat", "/data/v")
    assert out == "v"
    # the restored container runs with its own top layer: the files it changed are there
    assert _run(other, "start", "-a", "app").split() == ["made-in-container", "no-group", "dir"]


def test_report_warns_about_data_kept_outside_any_volume(eng, root, tmp_path):
    require_binary("conmon")
    _run(root, "run", "--network", "none", "--name", "hoarder", "-v", "small:/data", "busybox", "sh", "-c",
         "dd if=/dev/urandom of=/cache bs=1M count=3; echo v > /data/v")
    result = run_cli(root, "backup", "create", "--container", "hoarder", "--repo", str(tmp_path / "repo"))
    assert ("WARNING: container hoarder keeps 3.1 MB outside any volume; it is lost when the container is "
            "re-created") in result.stderr.decode()


def test_whole_host_disaster_recovery(eng, root, tmp_path):
    require_binary("conmon")
    _run(root, "volume", "create", "--label", "k=v", "keep")
    _run(root, "run", "--network", "none", "--name", "db", "-d", "--label", "com.docker.compose.project=lab",
         "-v", "keep:/data", "busybox", "sh", "-c",
         "echo top > /top; echo row1 >> /data/table; sleep 1000")
    _run(root, "run", "--network", "none", "--name", "one-shot", "busybox", "sh", "-c", "cat /greeting 2>/dev/null; echo hello > /greeting")
    table = root / "volumes" / "keep" / "_data" / "table"
    _wait_until(lambda: table.exists() and table.read_text() == "row1\n", "the db container's writes")  # /top first
    repo_dir = tmp_path / "repo"      # outside the root: the root is lost
    out = run_cli(root, "backup", "create", "--all", "--repo", str(repo_dir), "--tag", "dr").stdout.decode()
    assert "snapshot" in out
    listing = run_cli(root, "backup", "ls", "--repo", str(repo_dir)).stdout.decode()
    assert "dr" in listing
    assert "ok" in run_cli(root, "backup", "verify", "--repo", str(repo_dir)).stdout.decode()
    # a stack by its compose project: the container and its volume
    sid = run_cli(root, "backup", "create", "-q", "--stack", "lab", "--repo", str(repo_dir)).stdout.decode().strip()
    inspected = json.loads(run_cli(root, "backup", "inspect", sid, "--repo", str(repo_dir)).stdout)
    assert sorted(f"{p['kind']}:{p['name']}" for p in inspected[0]["parts"]) == ["container:db", "volume:keep"]
    # the host is lost: a fresh root elsewhere
    new_root = tmp_path / "rebuilt"
    new_root.mkdir()
    try:
        run_cli(new_root, "restore", "dr", "--repo", str(repo_dir))   # by tag
        assert "busybox" in _run(new_root, "images", "--format", "{{.Repository}}")
        assert _run(new_root, "volume", "inspect", "-f", "{{.Labels}}", "keep") == "map[k:v]"
        run_cli(new_root, "start", "db")
        assert _run(new_root, "exec", "db", "sh", "-c", "cat /data/table /top") == "row1\nrow1\ntop"
        assert _run(new_root, "start", "-a", "one-shot") == "hello"
    finally:
        run_cli(new_root, "rm", "-f", "db", "one-shot", check=False)


def test_dump_mode_with_a_label_recipe_replays_into_a_fresh_container(eng, root, fresh, tmp_path):
    require_binary("conmon")
    labels = ["--label", "org.dockerbank.backup.dump=cat /db/table",
              "--label", "org.dockerbank.backup.restore=cat > /db/table",
              "--label", "org.dockerbank.backup.ready=test -d /db"]
    _run(root, "run", "--network", "none", "-d", "--name", "fakedb", *labels, "-v", "dbdata:/db", "busybox", "sh", "-c",
         "test -e /db/table || printf 'id,name\\n' > /db/table; sleep 1000")   # "initdb" on first start
    _run(root, "exec", "fakedb", "sh", "-c", "printf '1,alice\\n2,bob\\n' >> /db/table; touch /db/raw-only")
    repo = Repository(tmp_path / "repo")
    report = create(eng, repo, CreateOptions(containers=["fakedb"], consistency="dump", with_images=True))
    kinds = sorted(p.kind for p in report.snapshot.parts)
    assert kinds == ["container", "dump", "image"]       # the dump replaces the volume's raw files
    dump = next(p for p in report.snapshot.parts if p.kind == "dump")
    assert repo.open_part(dump).read() == b"id,name\n1,alice\n2,bob\n"
    result = restore(fresh, repo, "latest", RestoreOptions(containers=["fakedb"]))
    assert ("dump", "fakedb (label: cat > /db/table)") in result.restored
    other = fresh.config.root
    assert _run(other, "exec", "fakedb", "ls", "/db") == "table"         # raw files are not restored
    assert _run(other, "exec", "fakedb", "cat", "/db/table") == "id,name\n1,alice\n2,bob"


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds (a loaded CI host may take seconds), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
