"""Import of a rootfs tarball into a real store, and the CLI's base-image command."""

import gzip
import io
import json

import pytest

from dockerbank.errors import CorruptData
from dockerbank.image.importer import import_rootfs
from dockerbank.oci import digest as dg


def test_concurrent_adds_of_one_layer_all_get_it_whole(engine, busybox_tar, monkeypatch):
    """The pods of one kube play each made the pause image at once: a second adder removed the
    first one's freshly moved layer as a crash's leftover, under its feet (ENOENT mid-rmtree)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from dockerbank import faults
    from dockerbank.engine import Engine

    first = threading.Lock()
    step = faults.point

    def slow_record(name: str) -> None:   # the first mover lingers between its move and its row
        if name == "layer.moved" and first.acquire(blocking=False):
            time.sleep(0.3)
        step(name)

    monkeypatch.setattr(faults, "point", slow_record)

    def add(_):
        own = Engine(engine.config)   # a connection per thread, as the engine's callers have
        try:
            with open(busybox_tar, "rb") as handle:
                return own.images.layers.add(None, handle).chain_id
        finally:
            own.close()

    for _ in range(3):
        if first.locked():
            first.release()
        with ThreadPoolExecutor(6) as pool:
            chains = set(pool.map(add, range(6)))
        assert len(chains) == 1
        layer_dir = engine.images.layers.diff_dir(chains.pop())
        assert (layer_dir / "bin" / "busybox").is_file()
        assert len(engine.db.query("SELECT * FROM layers")) == 1
        engine.images.layers.remove(engine.db.query("SELECT chain_id FROM layers")[0]["chain_id"])
    assert list(engine.config.layers_dir.iterdir()) == []   # no temporary directory, no lock file


def test_busybox_import_is_deterministic_and_shared(engine, busybox_tar):
    with open(busybox_tar, "rb") as handle:
        first = import_rootfs(engine.images, handle, "busybox:latest", ('CMD ["sh"]',))
    diff_id = engine.images.diff_ids(first.id)[0]
    assert diff_id == dg.of_bytes(busybox_tar.read_bytes())
    layer_dir = engine.images.layers.diff_dir(diff_id)
    assert (layer_dir / "bin" / "busybox").is_file()
    assert (layer_dir / "bin" / "sh").is_symlink()
    # the same rootfs compressed gives the same layer: unpacked once, shared
    compressed = gzip.compress(busybox_tar.read_bytes())
    second = import_rootfs(engine.images, io.BytesIO(compressed), "other:1")
    assert engine.images.diff_ids(second.id) == [diff_id]
    assert len(engine.db.query("SELECT * FROM layers")) == 1
    assert engine.images.resolve("busybox").id == first.id
    assert engine.images.resolve("docker.io/library/other:1").id == second.id
    assert engine.images.resolve(first.id[7:19]).id == first.id


def test_truncated_import_leaves_nothing(engine, busybox_tar):
    data = busybox_tar.read_bytes()
    with pytest.raises(CorruptData):
        import_rootfs(engine.images, io.BytesIO(gzip.compress(data)[:5000]), "broken:1")
    with pytest.raises(CorruptData):
        import_rootfs(engine.images, io.BytesIO(data[: len(data) // 2]), "broken:2")
    assert engine.db.query("SELECT * FROM images") == []
    assert engine.db.query("SELECT * FROM layers") == []
    assert engine.images.blobs.all_digests() == []
    leftovers = list(engine.config.layers_dir.iterdir()) if engine.config.layers_dir.exists() else []
    assert leftovers == []


def test_base_image_command(cli):
    image_id = cli("base-image", "busybox").stdout.decode().strip()
    assert dg.is_digest(image_id)
    again = cli("base-image", "busybox", "--tag", "bb:2").stdout.decode().strip()
    assert again == image_id  # deterministic rootfs: same image ID
    listed = cli("image", "inspect", "--format", "{{json .RepoTags}}", image_id)
    assert sorted(json.loads(listed.stdout)) == ["bb:2", "busybox:latest"]
