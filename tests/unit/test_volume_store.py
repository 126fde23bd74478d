"""The volume store's rules: names, options, filters, in-use tracking, remove and prune (temp root, no root needed)."""

from __future__ import annotations

import os
import re

import pytest

from dockerbank.errors import Conflict, InvalidArgument, NotFound, NotSupported
from dockerbank.volume.store import ANONYMOUS_LABEL, match_label


@pytest.fixture
def volumes(engine):
    return engine.volumes


def test_create_get_inspect(volumes):
    vol = volumes.create("pgdata", labels={"project": "redcap"})
    assert volumes.data_dir("pgdata").is_dir()
    assert vol.mountpoint == str(volumes.data_dir("pgdata"))
    info = volumes.inspect("pgdata")
    assert set(info) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert info["Driver"] == "local" and info["Scope"] == "local" and info["Name"] == "pgdata"
    assert info["Labels"] == {"project": "redcap"} and info["Options"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["CreatedAt"])
    assert volumes.get("pgdata") == vol


def test_existing_name_returns_the_existing_volume(volumes):
    first = volumes.create("data", labels={"a": "1"})
    (volumes.data_dir("data") / "keep").write_text("user data")
    again = volumes.create("data", labels={"b": "2"})
    assert again == first
    assert (volumes.data_dir("data") / "keep").read_text() == "user data"
    vol, created = volumes.ensure("data")
    assert vol == first and not created
    vol, created = volumes.ensure("other")
    assert created and vol.name == "other" and not vol.anonymous


def test_random_names_and_anonymous_label(volumes):
    plain = volumes.create()
    assert re.fullmatch(r"[0-9a-f]{64}", plain.name) and not plain.anonymous
    anon = volumes.create(anonymous=True)
    assert anon.anonymous and anon.labels == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("name, message", [
    ("bad/name", 'create bad/name: "bad/name" includes invalid characters for a local volume name'),
    (".hidden", 'create .hidden: ".hidden" includes invalid characters'),
    ("x", "create x: volume name is too short, names should be at least two alphanumeric characters"),
])
def test_invalid_names(volumes, name, message):
    with pytest.raises(InvalidArgument) as info:
        volumes.create(name)
    assert info.value.message.startswith(message)
    assert volumes.list() == []


def test_one_letter_name_from_a_mount(volumes):
    vol, created = volumes.ensure("a")
    assert created and vol.name == "a"


def test_driver_options(volumes, tmp_path):
    tmpfs = volumes.create("fast", options={"type": "tmpfs", "device": "tmpfs", "o": "size=10m"})
    assert tmpfs.is_tmpfs and volumes.inspect("fast")["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}
    bound = volumes.create("nas", options={"type": "none", "o": "bind", "device": str(tmp_path)})
    assert bound.bind_device == str(tmp_path)
    with pytest.raises(InvalidArgument, match='create v2: invalid option: "foo"'):
        volumes.create("v2", options={"foo": "bar"})
    with pytest.raises(InvalidArgument, match="does not exist"):
        volumes.create("v3", options={"type": "none", "o": "bind", "device": str(tmp_path / "missing")})
    with pytest.raises(NotSupported, match="type=nfs"):
        volumes.create("v4", options={"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"})
    with pytest.raises(InvalidArgument, match="Invalid tmpfs option"):
        volumes.create("v5", options={"type": "tmpfs", "o": "bogus"})
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        volumes.create("v6", driver="nfs")
    assert [v.name for v in volumes.list()] == ["fast", "nas"]


def test_get_missing(volumes):
    with pytest.raises(NotFound, match="^get nope: no such volume$"):
        volumes.get("nope")


def test_list_filters(volumes):
    volumes.create("alpha", labels={"project": "redcap", "tier": "db"})
    volumes.create("beta", labels={"project": "omero"})
    anon = volumes.create(anonymous=True)
    volumes.attach("c" * 64, ["beta"])

    def names(**filters):
        return [v.name for v in volumes.list(filters)]

    assert names() == sorted(["alpha", "beta", anon.name])
    assert names(dangling=["true"]) == sorted(["alpha", anon.name])
    assert names(dangling=["0"]) == ["beta"]
    assert names(name=["al"]) == ["alpha"]
    # the anonymous volume's random hex name starts with a or b one time in eight
    assert names(name=["^b", "^a"]) == sorted(n for n in ["alpha", "beta", anon.name] if n[0] in "ab")
    assert names(label=["project"]) == ["alpha", "beta"]
    assert names(label=["project=redcap"]) == ["alpha"]
    assert names(label=["project", "tier=db"]) == ["alpha"]
    assert names(label=[ANONYMOUS_LABEL]) == [anon.name]
    assert names(driver=["local"]) == sorted(["alpha", "beta", anon.name])
    assert names(driver=["nfs"]) == []
    with pytest.raises(InvalidArgument, match=r"^Invalid filter 'dangling=\[maybe\]'$"):
        volumes.list({"dangling": ["maybe"]})
    with pytest.raises(InvalidArgument, match="^Invalid filter 'color'$"):
        volumes.list({"color": ["red"]})


def test_match_label():
    labels = {"a": "1", "b": ""}
    assert match_label(labels, "a") and match_label(labels, "a=1") and match_label(labels, "b=")
    assert not match_label(labels, "a=2") and not match_label(labels, "c") and not match_label(labels, "b=x")


def test_in_use_tracking_and_remove(volumes):
    volumes.create("shared")
    ids = ["a" * 64, "b" * 64]
    volumes.attach(ids[1], ["shared"])
    volumes.attach(ids[0], ["shared"])
    volumes.attach(ids[0], ["shared"])  # idempotent
    assert volumes.users("shared") == ids
    assert volumes.volumes_of(ids[0]) == ["shared"]
    for force in (False, True):  # force does not override "in use", as in docker
        with pytest.raises(Conflict) as info:
            volumes.remove("shared", force=force)
        assert info.value.message == f"remove shared: volume is in use - [{ids[0]} {ids[1]}]"
    assert volumes.detach(ids[0]) == ["shared"]
    assert volumes.detach(ids[1]) == ["shared"]
    assert volumes.remove("shared") is True
    assert not volumes.exists("shared") and not (volumes.dir / "shared").exists()
    with pytest.raises(NotFound):
        volumes.remove("shared")
    assert volumes.remove("shared", force=True) is False


def test_attach_missing_volume_changes_nothing(volumes):
    volumes.create("there")
    with pytest.raises(NotFound):
        volumes.attach("c" * 64, ["there", "missing"])
    assert volumes.users("there") == []


def test_create_with_attach_is_in_use_at_once(volumes):
    anon = volumes.create(anonymous=True, attach_to="c" * 64)
    _named, created = volumes.ensure("named", attach_to="c" * 64)
    assert created and volumes.users(anon.name) == ["c" * 64] and volumes.users("named") == ["c" * 64]
    assert volumes.prune({"all": ["true"]}) == ([], 0)


def test_remove_anonymous_of_keeps_named_and_shared(volumes):
    cid, other = "1" * 64, "2" * 64
    own = volumes.create(anonymous=True, attach_to=cid)
    shared_anon = volumes.create(anonymous=True, attach_to=cid)
    volumes.attach(other, [shared_anon.name])
    volumes.ensure("named", attach_to=cid)
    assert volumes.remove_anonymous_of(cid) == [own.name]
    assert not volumes.exists(own.name) and not (volumes.dir / own.name).exists()
    assert volumes.exists("named") and volumes.users("named") == []
    assert volumes.exists(shared_anon.name) and volumes.users(shared_anon.name) == [other]


def test_prune_anonymous_only_unless_all(volumes):
    anon = volumes.create(anonymous=True)
    (volumes.data_dir(anon.name) / "f").write_bytes(b"x" * 1500)
    used_anon = volumes.create(anonymous=True, attach_to="c" * 64)
    volumes.create("named", labels={"keep": "yes"})
    volumes.create("scratch", labels={"keep": "no"})
    names, reclaimed = volumes.prune({})
    assert names == [anon.name] and reclaimed == 1500
    assert volumes.prune({"label": ["keep=yes"]}) == ([], 0)  # named ones need --all
    assert volumes.prune({"all": ["true"], "label!": ["keep=yes"]})[0] == ["scratch"]
    assert volumes.prune({"all": ["true"], "label": ["keep"]})[0] == ["named"]
    assert [v.name for v in volumes.list()] == [used_anon.name]
    with pytest.raises(InvalidArgument, match="Invalid filter 'dangling'"):
        volumes.prune({"dangling": ["true"]})


def test_removed_name_can_be_created_fresh(volumes):
    volumes.create("again")
    (volumes.data_dir("again") / "old").write_text("old")
    volumes.remove("again")
    volumes.create("again")
    assert list(volumes.data_dir("again").iterdir()) == []


def test_orphan_directory_is_not_adopted(volumes):
    # a crash between deleting the row and moving the directory away leaves an orphan directory
    orphan = volumes.dir / "ghost" / "_data"
    orphan.mkdir(parents=True)
    (orphan / "stale").write_text("stale")
    volumes.create("ghost")
    assert list(volumes.data_dir("ghost").iterdir()) == []


def test_scoped_path_never_leaves_the_rootfs(tmp_path):
    from dockerbank.host.fs import scoped_path

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "run").mkdir()
    (rootfs / "var").mkdir()
    os.symlink("/etc", rootfs / "data")           # absolute: inside the rootfs, not the host
    os.symlink("../../../../../etc", rootfs / "up")
    os.symlink("../run", rootfs / "var" / "run")
    os.symlink("loop2", rootfs / "loop1")
    os.symlink("loop1", rootfs / "loop2")
    assert scoped_path(rootfs, "/data") == rootfs / "etc"
    assert scoped_path(rootfs, "/up/passwd") == rootfs / "etc" / "passwd"
    assert scoped_path(rootfs, "/var/run/app") == rootfs / "run" / "app"
    assert scoped_path(rootfs, "/../../srv//x/.") == rootfs / "srv" / "x"
    with pytest.raises(InvalidArgument, match="too many levels"):
        scoped_path(rootfs, "/loop1")


def test_populate_from_image_follows_links_inside_the_image(volumes, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "image-only").write_text("from the image")
    os.symlink("/etc", rootfs / "data")
    volumes.create("cfg")
    assert volumes.populate_from_image("cfg", rootfs, "/data") is True
    assert os.listdir(volumes.data_dir("cfg")) == ["image-only"]


def test_check_finds_and_repairs_crash_leftovers(volumes, engine):
    volumes.create("healthy")
    volumes.create("lost")
    os.rmdir(volumes.data_dir("lost"))
    (volumes.dir / "orphan" / "_data").mkdir(parents=True)
    (volumes.dir / "healthy" / "_copyup-1234").mkdir()
    volumes.attach("d" * 64, ["healthy"])  # no such container row
    engine.config.tmp_dir.mkdir(exist_ok=True)
    (engine.config.tmp_dir / "volume-rm-old-abcd").mkdir()
    problems = volumes.check()
    assert len(problems) == 5, problems
    assert volumes.check(repair=True) == problems
    assert volumes.check() == []
    assert sorted(os.listdir(volumes.dir)) == [".lock", "healthy", "lost"]
    assert volumes.data_dir("lost").is_dir() and volumes.users("healthy") == []
