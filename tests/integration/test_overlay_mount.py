"""Real overlay mounts without chdir: the new mount API, the classic mount(2), the child process."""

from __future__ import annotations

import os
import threading

import pytest

from dockerbank.errors import RuntimeFailure
from dockerbank.host import overlay
from dockerbank.host.mounts import is_mounted, unmount

pytestmark = pytest.mark.integration


def _layers(root, count: int, name_len: int = 8):
    """``count`` lower dirs with long names; layer i holds file ``f<i>`` and its own ``top``."""
    layers = []
    for i in range(count):
        layer = root / "layers" / (f"{i:04d}" + "x" * name_len) / "diff"
        layer.mkdir(parents=True)
        (layer / f"f{i}").write_text(str(i))
        (layer / "top").write_text(str(i))
        layers.append(layer)
    return layers


@pytest.fixture
def dirs(tmp_path):
    for sub in ("upper", "work", "merged"):
        (tmp_path / sub).mkdir()
    yield tmp_path
    unmount(tmp_path / "merged", lazy=True)


def _mount_and_check(dirs, layers, **kw) -> None:
    cwd = os.getcwd()
    overlay.mount_overlay(dirs / "merged", layers, dirs / "upper", dirs / "work", layers_dir=dirs / "layers", **kw)
    assert os.getcwd() == cwd  # nothing process-wide changed
    merged = dirs / "merged"
    assert is_mounted(merged)
    assert (merged / "top").read_text() == "0"  # the first lower is the top one
    assert sorted(p.name for p in merged.iterdir() if p.name != "top") == sorted(f"f{i}" for i in range(len(layers)))
    (merged / "new").write_text("up")
    assert (dirs / "upper" / "new").read_text() == "up"


def test_many_long_layers_mount_with_the_new_api(dirs):
    if not overlay.kernel_has_lowerdir_plus(os.uname().release):
        pytest.fail("this host's kernel is older than 6.8: the new-API test needs one")  # never skip quietly
    layers = _layers(dirs, 120, name_len=60)  # ~10 KB of absolute lowerdirs: beyond one page
    assert len(overlay.options_string([str(p) for p in layers], "u", "w")) > overlay.PAGE_LIMIT
    _mount_and_check(dirs, layers)
    assert overlay._new_api_works is True


def test_classic_mount_and_child_process_fallbacks(dirs, monkeypatch):
    monkeypatch.setattr(overlay, "_new_api_works", False)  # as on a kernel without fsopen/lowerdir+
    _mount_and_check(dirs, _layers(dirs, 3))
    unmount(dirs / "merged", lazy=True)
    for sub in ("upper", "work"):  # a fresh upper layer for the second mount
        os.rename(dirs / sub, dirs / f"{sub}-1")
        (dirs / sub).mkdir()
    # too long as absolute paths, short enough relative to the layers dir: the child process mounts
    many = _layers(dirs, 60, name_len=40)
    absolute = overlay.options_string([str(p) for p in many], str(dirs / "upper"), str(dirs / "work"))
    assert len(absolute) >= overlay.PAGE_LIMIT
    _mount_and_check(dirs, many)


def test_mount_errors_are_one_line(dirs):
    with pytest.raises(RuntimeFailure) as info:
        overlay.mount_overlay(dirs / "merged", [dirs / "missing"], dirs / "upper", dirs / "work")
    assert "cannot mount the container's root filesystem" in info.value.message
    assert "\n" not in info.value.message


def test_mounts_from_threads_keep_the_working_directory(tmp_path):
    """Eight threads mount at once (as the API service's workers would): every mount is right."""
    layers = _layers(tmp_path, 4)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        base = tmp_path / f"c{i}"
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir(parents=True)
        try:
            overlay.mount_overlay(base / "merged", layers, base / "upper", base / "work")
            assert (base / "merged" / "top").read_text() == "0"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            unmount(base / "merged", lazy=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_start_over_a_stale_mount_leaves_one_overlay_and_the_stop_none(engine, busybox):
    """A mount no row records (a crash between a mount and its record) is replaced at the start,
    not stacked on; the stop leaves the container's root unmounted."""
    from dockerbank.container.options import CreateOptions
    from dockerbank.host.mounts import read_mounts

    def mounts_at(path) -> int:
        return sum(1 for m in read_mounts() if m.mount_point == str(path))

    service = engine.containers
    container = service.create(CreateOptions(image="busybox", command=["sleep", "60"], network="none"))
    merged = service.dir(container.id) / "merged"
    service._mount_rootfs(container)   # the crash: mounted, never recorded
    assert mounts_at(merged) == 1 and not service.store.get(container.id).state.mounted
    service.start(container.id)
    try:
        assert mounts_at(merged) == 1
    finally:
        service.stop(container.id, 0)
    assert mounts_at(merged) == 0
