"""The volume store against a real root as root: copy-up fidelity, in-use refusal, prune,
and many processes creating and removing volumes at once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockerbank.errors import Conflict

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("volume integration tests need root (owners, device nodes, trusted xattrs)")


def make_tree(src: Path) -> None:
    """An image directory with everything copy-up must keep."""
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "sub" / "deep" / "file").write_bytes(b"content" * 1000)
    os.chown(src / "sub", 999, 998)
    os.chmod(src / "sub", 0o2750)
    (src / "owned").write_text("postgres owns me")
    os.chown(src / "owned", 70, 71)
    os.chmod(src / "owned", 0o640)
    (src / "setuid").write_text("#!/bin/sh\n")
    os.chmod(src / "setuid", 0o4755)
    os.setxattr(src / "owned", "user.checksum", b"abc123")
    os.setxattr(src / "owned", "trusted.note", b"kept")
    os.link(src / "owned", src / "sub" / "hardlink")
    os.symlink("../owned", src / "sub" / "link")
    os.symlink("/nonexistent/abs", src / "dangling")
    os.lchown(src / "dangling", 5, 6)
    os.mkfifo(src / "fifo", 0o600)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.utime(src / "owned", ns=(1_000_000_000, 1_500_000_000_123))
    os.chown(src, 70, 71)
    os.chmod(src, 0o700)


def test_copy_up_keeps_owner_mode_xattrs_links(engine, tmp_path):
    src = tmp_path / "image-var-lib-pg"
    src.mkdir()
    make_tree(src)
    volumes = engine.volumes
    volumes.create("pgdata")
    assert volumes.populate_if_empty("pgdata", src) is True
    dst = volumes.data_dir("pgdata")

    root_st = dst.stat()
    assert (root_st.st_uid, root_st.st_gid, stat.S_IMODE(root_st.st_mode)) == (70, 71, 0o700)
    sub = (dst / "sub").stat()
    assert (sub.st_uid, sub.st_gid, stat.S_IMODE(sub.st_mode)) == (999, 998, 0o2750)
    assert (dst / "sub" / "deep" / "file").read_bytes() == b"content" * 1000
    owned = (dst / "owned").stat()
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (70, 71, 0o640)
    assert owned.st_mtime_ns == 1_500_000_000_123
    assert stat.S_IMODE((dst / "setuid").stat().st_mode) == 0o4755
    assert os.getxattr(dst / "owned", "user.checksum") == b"abc123"
    assert os.getxattr(dst / "owned", "trusted.note") == b"kept"
    assert (dst / "sub" / "hardlink").stat().st_ino == owned.st_ino and owned.st_nlink == 2
    assert os.readlink(dst / "sub" / "link") == "../owned"
    assert os.readlink(dst / "dangling") == "/nonexistent/abs"
    assert os.lstat(dst / "dangling").st_uid == 5
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert os.lstat(dst / "null").st_rdev == os.makedev(1, 3)
    assert not list((volumes.dir / "pgdata").glob("_copyup-*"))


def test_copy_up_only_into_an_empty_volume(engine, tmp_path):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "conf").write_text("image default")
    volumes = engine.volumes
    volumes.create("conf")
    (volumes.data_dir("conf") / "mine").write_text("user data")
    assert volumes.populate_if_empty("conf", src) is False
    assert sorted(os.listdir(volumes.data_dir("conf"))) == ["mine"]
    volumes.create("fresh")
    assert volumes.populate_if_empty("fresh", tmp_path / "missing") is False
    assert volumes.populate_if_empty("fresh", src / "etc" / "conf") is False  # not a directory
    assert volumes.populate_if_empty("fresh", src) is True
    assert volumes.populate_if_empty("fresh", src) is False  # second container: not empty any more


def test_copy_up_into_a_bind_device_volume(engine, tmp_path):
    device = tmp_path / "nas-share"
    device.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "seed.sql").write_text("create table t();")
    volumes = engine.volumes
    vol = volumes.create("nas", options={"type": "none", "o": "bind", "device": str(device)})
    assert volumes.populate_if_empty("nas", src) is True
    assert (device / "seed.sql").read_text() == "create table t();"
    from dockerbank.volume import mounts

    resolved = volumes.resolve(mounts.parse_volume("nas:/docker-entrypoint-initdb.d"))
    assert (resolved.type, resolved.source, resolved.volume) == ("bind", str(device), vol.name)
    volumes.remove("nas")
    assert (device / "seed.sql").exists()  # removing the volume never deletes the device's data


def test_copy_up_from_an_image_layer(engine, busybox):
    """The real case: /bin of the busybox image's unpacked layer into a volume."""
    layer_dir = engine.images.layers.lower_dirs(busybox.top_chain)[0]
    volumes = engine.volumes
    volumes.create("bins")
    assert volumes.populate_if_empty("bins", Path(layer_dir) / "bin") is True
    copied = volumes.data_dir("bins")
    assert os.access(copied / "busybox", os.X_OK)
    assert sorted(os.listdir(copied)) == sorted(os.listdir(Path(layer_dir) / "bin"))


def test_in_use_volume_refuses_removal_with_dockers_words(engine):
    volumes = engine.volumes
    cid = "f" * 64
    volumes.ensure("appdata", attach_to=cid)
    (volumes.data_dir("appdata") / "db.sqlite").write_text("patients")
    with pytest.raises(Conflict, match=rf"^remove appdata: volume is in use - \[{cid}\]$"):
        volumes.remove("appdata", force=True)
    assert volumes.prune({"all": ["true"]}) == ([], 0)
    assert (volumes.data_dir("appdata") / "db.sqlite").read_text() == "patients"
    volumes.detach(cid)  # the container is removed (without -v): the data stays
    assert (volumes.data_dir("appdata") / "db.sqlite").read_text() == "patients"
    names, reclaimed = volumes.prune({})
    assert names == [] and volumes.exists("appdata")  # named: only `prune --all` takes it
    names, reclaimed = volumes.prune({"all": ["true"]})
    assert names == ["appdata"] and reclaimed == len("patients")


def _run_workers(script: str, root: Path, run_root: Path, count: int = 8) -> list[dict]:
    """Start ``count`` Python processes that wait at a gate, then run ``script`` at once."""
    gate = root.parent / "gate"
    program = textwrap.dedent(f"""
        import json, os, sys, time
        from pathlib import Path
        from dockerbank.config import Config
        from dockerbank.engine import Engine
        gate = Path({str(gate)!r})
        while not gate.exists():
            time.sleep(0.001)
        engine = Engine(Config(Path({str(root)!r}), Path({str(run_root)!r})))
        worker = int(sys.argv[1])
        result = {{}}
    """) + textwrap.dedent(script) + "\nprint(json.dumps(result))\n"
    procs = [subprocess.Popen([sys.executable, "-c", program, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(count)]
    gate.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    gate.unlink()
    return results


def test_concurrent_ensure_creates_once(engine, config):
    _ = engine.db  # schema in place before the workers start
    results = _run_workers("""
        vol, created = engine.volumes.ensure("shared", attach_to=f"{worker:064x}")
        result = {"created": created, "name": vol.name}
    """, config.root, config.run_root)
    assert sum(r["created"] for r in results) == 1
    assert {r["name"] for r in results} == {"shared"}
    assert len(engine.volumes.users("shared")) == 8


def test_concurrent_create_remove_never_leaves_a_row_without_data(engine, config):
    _ = engine.db
    _run_workers("""
        from dockerbank.errors import Conflict, NotFound
        cid = f"{worker:064x}"
        counts = {"removed": 0, "conflicts": 0}
        for i in range(10):
            name = f"vol{i % 3}"
            vol, _ = engine.volumes.ensure(name, attach_to=cid)
            (engine.volumes.data_dir(name) / f"w{worker}").write_text("x")
            engine.volumes.detach(cid)
            try:
                engine.volumes.remove(name)
                counts["removed"] += 1
            except (Conflict, NotFound):
                counts["conflicts"] += 1
            anon = engine.volumes.create(anonymous=True, attach_to=cid)
            assert engine.volumes.remove_anonymous_of(cid) == [anon.name]
        result = counts
    """, config.root, config.run_root)
    for vol in engine.volumes.list():
        assert Path(vol.mountpoint).is_dir(), f"row {vol.name} without its data directory"
    assert [v.name for v in engine.volumes.list({"label": ["com.docker.volume.anonymous"]})] == []
    leftovers = [p.name for p in config.tmp_dir.iterdir()] if config.tmp_dir.exists() else []
    assert leftovers == []


def test_concurrent_copy_up_copies_once(engine, config, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(200):
        (src / f"f{i}").write_bytes(os.urandom(512))
    engine.volumes.create("seeded")
    results = _run_workers(f"""
        result = {{"copied": engine.volumes.populate_if_empty("seeded", Path({str(src)!r}))}}
    """, config.root, config.run_root)
    assert sum(r["copied"] for r in results) == 1
    assert sorted(os.listdir(engine.volumes.data_dir("seeded"))) == sorted(os.listdir(src))
