"""Catalog locks with fakes: every bundled entry that installs Debian packages has a lock made for
exactly its packages; apt's resolution is read into pins; ``lock`` writes (and a refresh finding
the same versions leaves) the file; ``build`` installs exactly the pins with the lock's epoch and
labels the image with the lock's digest, and refuses with one line, before building anything,
a lock the mirror no longer satisfies. Plus the builder's SOURCE_DATE_EPOCH (pure parts)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from dockerbank.build.executor import source_date_epoch
from dockerbank.catalog import lock as locks
from dockerbank.catalog.model import ENTRIES_DIR, Catalog, load_entry
from dockerbank.catalog.service import LOCK_LABEL, CatalogService
from dockerbank.errors import CorruptData, DockerbankError, InvalidArgument, NotFound

BASE_ID = "sha256:" + "b" * 64
RESOLVED = """sources deb http://deb.debian.org/debian bookworm main
NOTE: This is only a simulation!
Inst libssl3 [3.0.15-1~deb12u1] (3.0.20-1~deb12u2 Debian:12.15/oldstable [amd64])
Inst libpq5 (15.18-0+deb12u1 Debian:12.15/oldstable [amd64])
Inst postgresql-15 (15.18-0+deb12u1 Debian:12.15/oldstable [amd64])
Conf postgresql-15 (15.18-0+deb12u1 Debian:12.15/oldstable [amd64])
"""
PINS = [("libssl3", "3.0.20-1~deb12u2"), ("libpq5", "15.18-0+deb12u1"), ("postgresql-15", "15.18-0+deb12u1")]


def test_every_entry_that_installs_packages_has_a_lock_for_exactly_them():
    catalog = Catalog()
    service = CatalogService(SimpleNamespace())
    for entry in catalog.entries():
        image = entry.apt_image()
        if image is None:
            assert not entry.packages and not entry.lock_file.exists(), entry.name
            continue
        found = service.locked(entry)
        assert found is not None
        lock, digest = found
        assert lock.requested == entry.packages, f"refresh: dockerbank catalog lock {entry.name}"
        assert lock.base == "debian:latest" and lock.base_id.startswith("sha256:") and digest.startswith("sha256:")
        names = {name for name, _ in lock.pins}
        assert set(entry.packages) <= names, entry.name       # none of them comes with the base
        assert len(names) == len(lock.pins)
    # Nextcloud builds only from the user's archive: its Debian packages are REDCap's and MariaDB's locks
    nextcloud = catalog.get("nextcloud")
    assert nextcloud.apt_image() is None
    assert {o.name for o, i in catalog.images_for(nextcloud) if i.apt} == {"redcap", "mariadb"}


def test_resolution_is_read_into_pins_and_a_lock_round_trips():
    sources, pins = locks.parse_resolution(RESOLVED)
    assert sources == ["deb http://deb.debian.org/debian bookworm main"] and pins == PINS
    lock = locks.Lock("debian:latest", BASE_ID, 1700000000, ["postgresql-15"], pins, sources)
    text = lock.text("postgresql")
    assert "\nlibssl3=3.0.20-1~deb12u2\n" in text and "\nepoch 1700000000\n" in text
    assert locks.parse(text, "x.lock") == lock
    assert lock.pinned()[0] == "libssl3=3.0.20-1~deb12u2"
    assert locks.digest(text) == locks.digest(lock.text("postgresql")) != locks.digest(text + "#\n")
    assert locks.parse("base d:l sha256:1\nepoch 1\nrequested a\na=1:2.0~x+y\n", "f").pins == [("a", "1:2.0~x+y")]
    with pytest.raises(CorruptData, match="x.lock:3: expected NAME=VERSION"):
        locks.parse("base d:l sha256:1\nepoch 1\nBad=\n", "x.lock")
    with pytest.raises(CorruptData, match="x.lock:1: unknown line 'frobnicate 3'"):
        locks.parse("frobnicate 3\n", "x.lock")
    with pytest.raises(CorruptData, match="incomplete lock"):
        locks.parse("base d:l sha256:1\n", "x.lock")


def test_apt_failures_are_one_line_naming_the_package_and_the_refresh():
    lock = locks.Lock("debian:latest", BASE_ID, 1, ["postgresql-15"], PINS)
    stderr = "E: Version '15.13-0+deb12u1' for 'postgresql-15' was not found\n"
    assert locks.failure("postgresql", stderr, 100, lock) == (
        "the lock of postgresql pins postgresql-15=15.13-0+deb12u1, which the mirror no longer has: "
        "refresh the lock with `dockerbank catalog lock postgresql` (and commit it)")
    assert locks.failure("x", "E: Unable to locate package nosuch\n", 100) == (
        "x: the mirror has no package nosuch: check the entry's packages and the base's sources")
    assert locks.failure("x", "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease\n", 100) == (
        "x: apt-get update failed on the base image (is the mirror reachable?): "
        "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease")
    assert locks.unpinned(lock, PINS) is None
    assert locks.unpinned(lock, PINS + [("libnew1", "1.0")]) == ("libnew1", "1.0")


class FakeResolver:
    """apt on the base: resolves names to RESOLVED; pins of versions in ``gone`` are not found."""

    def __init__(self, stdout: str = RESOLVED, gone: tuple[str, ...] = ()):
        self.stdout, self.gone = stdout, gone
        self.calls: list[tuple[str, list[str]]] = []

    def resolve(self, base: str, packages: list[str]) -> tuple[int, str, str]:
        self.calls.append((base, packages))
        for item in packages:
            name, _, version = item.partition("=")
            if version and version in self.gone:
                return 100, "", f"E: Version '{version}' for '{name}' was not found\n"
        return 0, self.stdout, ""


class FakeImages:
    def __init__(self, ids: dict[str, str]):
        self.ids = ids

    def resolve(self, ref):
        if ref not in self.ids:
            raise NotFound(f"no image {ref}")
        return SimpleNamespace(id=self.ids[ref])


@pytest.fixture
def lab(tmp_path):
    """A catalog of one entry (a copy of postgresql, its lock removed) over a fake engine whose
    builder records what it is asked to build."""
    entries = tmp_path / "entries"
    shutil.copytree(ENTRIES_DIR / "postgresql", entries / "postgresql")
    (entries / "postgresql" / locks.FILE_NAME).unlink()
    engine = SimpleNamespace(builds=[])
    engine.config = SimpleNamespace(root=tmp_path / "root", tmp_dir=tmp_path / "root" / "tmp")
    engine.images = FakeImages({"debian:latest": BASE_ID})

    def build(context, options, out, quiet):
        mtimes = {os.stat(p).st_mtime for p in Path(context.root).rglob("*")}
        engine.builds.append((options, mtimes))
        return "sha256:" + "c" * 64

    engine.container_ops = SimpleNamespace(build=build)
    notes: list[str] = []
    resolver = FakeResolver()
    service = CatalogService(engine, Catalog(entries), out=notes.append, resolver=resolver)
    return SimpleNamespace(service=service, engine=engine, notes=notes, resolver=resolver, entries=entries)


def test_lock_writes_the_pins_and_a_refresh_with_the_same_versions_changes_nothing(lab):
    with pytest.raises(NotFound, match=r"postgresql has no lock \(.*packages.lock\): make it with "
                                       "`dockerbank catalog lock postgresql`"):
        lab.service.build("postgresql")
    [report] = lab.service.lock(["postgresql"])
    assert report.changed and lab.resolver.calls == [("debian:latest", ["postgresql-15"])]
    text = report.path.read_text()
    assert locks.parse(text, report.path) == report.lock and report.lock.base_id == BASE_ID
    lab.engine.images.ids["debian:latest"] = "sha256:" + "d" * 64     # a new base, the same versions
    [again] = lab.service.lock(None)
    assert again.lock.epoch == report.lock.epoch and again.lock.base_id != BASE_ID
    lab.resolver.stdout = RESOLVED.replace("15.18-0+deb12u1", "15.19-0+deb12u1")
    [newer] = lab.service.lock(["postgresql"])
    assert newer.changed and ("postgresql-15", "15.19-0+deb12u1") in newer.lock.pins
    lab.resolver.stdout = ""
    with pytest.raises(DockerbankError, match="postgresql: apt could not resolve its packages: exit code 0"):
        lab.service.lock(["postgresql"])


def test_build_installs_exactly_the_pins_reproducibly_and_labels_the_lock(lab):
    [report] = lab.service.lock(["postgresql"])
    lab.service.build("postgresql", force=True)
    [(options, mtimes)] = lab.engine.builds
    assert options.build_args == {"PACKAGES": " ".join(report.lock.pinned()),
                                  "SOURCE_DATE_EPOCH": str(report.lock.epoch)}
    assert options.labels[LOCK_LABEL] == locks.digest(report.path.read_text())
    assert options.no_cache and mtimes == {report.lock.epoch}      # the context's times are the lock's
    assert lab.resolver.calls[-1] == ("debian:latest", report.lock.pinned()) and lab.notes[-1].startswith("Building")
    # another base: built, with a note that the image ID will not be the lock base's
    lab.engine.images.ids["debian:latest"] = "sha256:" + "e" * 64
    lab.service.build("postgresql", force=True)
    assert any(n.startswith("note: postgresql's lock was made on debian:latest sha256:bbbbbbbbbbbb") for n in lab.notes)


def test_build_refuses_a_lock_the_mirror_no_longer_satisfies_before_building(lab):
    lab.service.lock(["postgresql"])
    lab.resolver.gone = ("15.18-0+deb12u1",)
    with pytest.raises(DockerbankError) as caught:
        lab.service.build("postgresql")
    assert caught.value.exit_code == 1 and caught.value.message == (
        "the lock of postgresql pins libpq5=15.18-0+deb12u1, which the mirror no longer has: "
        "refresh the lock with `dockerbank catalog lock postgresql` (and commit it)")
    lab.resolver.gone = ()
    lab.resolver.stdout = RESOLVED + "Inst libnew1 (1.0 Debian:12.15/oldstable [amd64])\n"
    with pytest.raises(DockerbankError, match="apt now also installs libnew1=1.0, which the lock does not pin"):
        lab.service.build("postgresql")
    entry_yaml = lab.entries / "postgresql" / "entry.yaml"
    entry_yaml.write_text(entry_yaml.read_text().replace("packages: [postgresql-15]", "packages: [postgresql-16]"))
    with pytest.raises(DockerbankError, match="the lock of postgresql was made for postgresql-15, entry.yaml lists "
                                              "postgresql-16: refresh the lock"):
        lab.service.build("postgresql")
    assert lab.engine.builds == []


def test_an_apt_image_needs_arg_packages_and_the_entry_its_packages(lab):
    directory = lab.entries / "postgresql"
    dockerfile = directory / "image" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG PACKAGES\n", ""))
    with pytest.raises(CorruptData, match="declares ARG PACKAGES"):
        load_entry(directory)
    with pytest.raises(InvalidArgument, match="nextcloud installs no Debian packages of its own"):
        CatalogService(lab.engine, resolver=lab.resolver).lock(["nextcloud"])


def test_source_date_epoch_is_a_number_and_clamps_a_layers_mtimes(tmp_path):
    from dockerbank.image.pack import pack_dir

    assert source_date_epoch({}) is None and source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    with pytest.raises(InvalidArgument, match="SOURCE_DATE_EPOCH='yesterday'"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "new").write_text("made by the step")
    (tree / "old").write_text("from the package")
    os.utime(tree / "old", (1000, 1000))
    out = io.BytesIO()
    pack_dir(tree, out, clamp_mtime=5000)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        assert {m.name: m.mtime for m in archive.getmembers()} == {"d": 5000, "d/new": 5000, "old": 1000}


def test_an_image_from_the_users_file_takes_the_time_of_its_packages_lock(lab, tmp_path):
    lab.engine.images.ids.update({"dockerbank-catalog/php-apache:8.2": BASE_ID,
                                  "dockerbank-catalog/mariadb:10.11": BASE_ID})
    service = CatalogService(lab.engine, resolver=lab.resolver)
    standin = tmp_path / "redcap1.zip"
    standin.write_bytes(b"PK stand-in")
    service.build("redcap", source=str(standin))
    [(options, mtimes)] = lab.engine.builds
    found = service.locked(service.catalog.get("redcap"))
    assert found is not None
    assert options.build_args == {"SOURCE_DATE_EPOCH": str(found[0].epoch)} and mtimes == {found[0].epoch}
    assert LOCK_LABEL not in options.labels and lab.resolver.calls == []   # its base carries the lock's label
