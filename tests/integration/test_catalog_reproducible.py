"""Locked, reproducible catalog builds on the real engine and Debian's mirror, with a small entry
(one package, ``hello``, on the debootstrap Debian; the real entries take minutes each):
``lock`` pins what apt installs, two builds from the same lock and base without the build cache
give the same image ID, the image is labelled with the lock's digest and records the lock's time,
and a lock whose version the mirror no longer has refuses with one line and builds nothing.
The full entries' double build was measured by hand (docs/catalog.md)."""

from __future__ import annotations

import time

import pytest

from dockerbank.catalog import lock as locks
from dockerbank.catalog.model import Catalog
from dockerbank.catalog.service import LOCK_LABEL, CatalogService
from dockerbank.errors import DockerbankError
from dockerbank.image.importer import import_rootfs

pytestmark = pytest.mark.integration

DOCKERFILE = """FROM debian
ARG PACKAGES
RUN apt-get update && apt-get install -y --no-install-recommends $PACKAGES \\
 && rm -rf /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old \\
      /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache /var/lib/apt/lists/* /var/cache/apt/*
COPY greeting /etc/greeting
CMD ["hello"]
"""
ENTRY = """name: tiny
title: Tiny
purpose: the reproducibility test's entry
version: "1"
license: GPL-3.0-or-later
redistributable: true
source: Debian 12 package hello
packages: [hello]
images:
  app:
    tag: dockerbank-test/tiny:1
    context: image
    apt: true
"""


@pytest.fixture
def tiny(engine, debian_tar, tmp_path):
    from tests.conftest import require_binary

    require_binary("conmon")
    with open(debian_tar, "rb") as handle:
        import_rootfs(engine.images, handle, "debian:latest", ('CMD ["bash"]',))
    directory = tmp_path / "entries" / "tiny"
    (directory / "image").mkdir(parents=True)
    (directory / "entry.yaml").write_text(ENTRY)
    (directory / "compose.yaml").write_text("services:\n  app:\n    image: dockerbank-test/tiny:1\n")
    (directory / "image" / "Dockerfile").write_text(DOCKERFILE)
    (directory / "image" / "greeting").write_text("hello\n")
    return CatalogService(engine, Catalog(directory.parent))


def test_same_lock_and_base_give_the_same_image_and_a_stale_lock_builds_nothing(engine, tiny):
    [report] = tiny.lock(["tiny"])
    assert dict(report.lock.pins)["hello"] and report.lock.base_id == engine.images.resolve("debian:latest").id
    first = tiny.build("tiny", force=True).built[0][1]
    second = tiny.build("tiny", force=True).built[0][1]
    assert first == second
    config = engine.images.image_config(first)
    assert config["config"]["Labels"][LOCK_LABEL] == locks.digest(report.path.read_text())
    epoch = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(report.lock.epoch))
    assert config["created"] == epoch and config["history"][-2]["created"] == epoch
    # the version apt installed is the pinned one
    layers = engine.images.layers.lower_dirs(engine.images.get(first).top_chain)
    status = next(d / "var/lib/dpkg/status" for d in layers if (d / "var/lib/dpkg/status").exists()).read_text()
    assert "Package: hello\nStatus: install ok installed" in status
    assert f"Version: {dict(report.lock.pins)['hello']}\n" in status
    # a pin the mirror does not have: one line, nothing built
    report.path.write_text(report.path.read_text().replace(f"hello={dict(report.lock.pins)['hello']}",
                                                           "hello=0.0-gone"))
    images = {r.id for r in engine.images.list()}
    with pytest.raises(DockerbankError) as caught:
        tiny.build("tiny", force=True)
    assert caught.value.message == ("the lock of tiny pins hello=0.0-gone, which the mirror no longer has: "
                                    "refresh the lock with `dockerbank catalog lock tiny` (and commit it)")
    assert {r.id for r in engine.images.list()} == images
