"""--userns: parsing, allocation of subordinate IDs without overlap, /etc/subuid handling (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockerbank.container import userns
from dockerbank.errors import InvalidArgument
from dockerbank.host import subids
from dockerbank.host.subids import Range
from dockerbank.oci.idmapping import to_container, to_host


def test_parse_modes():
    assert userns.parse("") == userns.Mode("host")
    assert userns.parse("host") == userns.Mode("host")
    assert userns.parse("auto") == userns.Mode("auto", 65536)
    assert userns.parse("auto:size=2048") == userns.Mode("auto", 2048)
    for bad in ("keep-id", "auto:size=12", "auto:uidmapping=0:1:2", "auto:size=x", "private"):
        with pytest.raises(InvalidArgument) as err:
            userns.parse(bad)
        assert err.value.exit_code == 125 and "\n" not in str(err.value)


def test_a_malformed_mode_is_refused_in_dockers_words():
    with pytest.raises(InvalidArgument) as err:
        userns.parse("bogus")
    assert str(err.value).startswith("--userns: invalid USER mode 'bogus'") and err.value.exit_code == 125


def test_allocate_first_fit_without_overlap():
    ranges = [Range("dockerbank", 1000, 300), Range("dockerbank", 5000, 100)]
    assert userns.allocate(ranges, [], 100) == 1000
    assert userns.allocate(ranges, [(1000, 100)], 100) == 1100
    assert userns.allocate(ranges, [(1100, 100)], 100) == 1000          # a hole left by a removed container
    assert userns.allocate(ranges, [(1000, 100), (1200, 100)], 100) == 1100
    assert userns.allocate(ranges, [(1000, 250)], 100) == 5000          # the rest of the first range is too small
    assert userns.allocate(ranges, [(1000, 300), (5000, 100)], 100) is None   # full
    assert userns.allocate(ranges, [], 400) is None                      # larger than any range


def test_many_allocations_never_overlap():
    ranges = [Range("dockerbank", 2 ** 31, 65536 * 8)]
    held: list[tuple[int, int]] = []
    for _ in range(8):
        start = userns.allocate(ranges, held, 65536)
        assert start is not None
        assert all(start + 65536 <= s or s + n <= start for s, n in held)
        held.append((start, 65536))
    assert userns.allocate(ranges, held, 65536) is None


def test_mapping_record_round_trips_ids():
    record = userns.mapping(2 ** 31, 2 ** 31 + 65536, 65536)
    assert userns.host_root(record) == (2 ** 31, 2 ** 31 + 65536)
    assert userns.host_root(None) == (0, 0)
    assert to_host(record["uid"], 1000) == 2 ** 31 + 1000
    assert to_container(record["uid"], 2 ** 31 + 1000) == 1000
    assert to_container(record["uid"], 0) is None and to_host(record["uid"], 70000) is None
    assert userns.held([record], "gid") == [(2 ** 31 + 65536, 65536)]


def test_subuid_parse_skips_junk_and_finds_a_free_range():
    text = "alice:100000:65536\n# comment\nbroken\nbob:165536:65536\ndockerbank:x:1\n"
    ranges = subids.parse(text)
    assert [(r.owner, r.start, r.count) for r in ranges] == [("alice", 100000, 65536), ("bob", 165536, 65536)]
    assert subids.free_start(ranges, subids.DEFAULT_COUNT) == subids.DEFAULT_START
    taken = [Range("other", subids.DEFAULT_START - 5, 10)]
    start = subids.free_start(taken, 65536)
    assert start is not None and start >= subids.DEFAULT_START + 5 and start % 65536 == 0
    assert subids.free_start([Range("x", 0, subids.ID_MAX)], 10) is None


def test_first_use_adds_one_range_to_both_files(tmp_path):
    uid_file, gid_file = tmp_path / "subuid", tmp_path / "subgid"
    uid_file.write_text("alice:100000:65536\n")
    gid_file.write_text("alice:100000:65536")   # no final newline: the added line must not join it
    uids, gids, added = subids.ensure_user_ranges("dbtest", uid_file=uid_file, gid_file=gid_file)
    assert added and uids == gids == [Range("dbtest", subids.DEFAULT_START, subids.DEFAULT_COUNT)]
    assert gid_file.read_text().splitlines() == ["alice:100000:65536", f"dbtest:{subids.DEFAULT_START}:{subids.DEFAULT_COUNT}"]
    again = subids.ensure_user_ranges("dbtest", uid_file=uid_file, gid_file=gid_file)
    assert again[2] is False and uid_file.read_text().count("dbtest") == 1


def test_a_range_in_one_file_only_is_one_line_and_nothing_written(tmp_path):
    uid_file, gid_file = tmp_path / "subuid", tmp_path / "subgid"
    uid_file.write_text("dbtest:300000:65536\n")
    gid_file.write_text("")
    with pytest.raises(InvalidArgument) as err:
        subids.ensure_user_ranges("dbtest", uid_file=uid_file, gid_file=gid_file)
    assert str(gid_file) in str(err.value) and "dbtest:<start>:<count>" in str(err.value)
    assert gid_file.read_text() == "" and uid_file.read_text() == "dbtest:300000:65536\n"


def test_an_unwritable_second_file_leaves_the_first_as_it_was(tmp_path):
    uid_file = tmp_path / "subuid"
    uid_file.write_text("alice:100000:65536\n")
    gid_file = tmp_path / "missing-dir" / "subgid"   # cannot be created
    with pytest.raises(InvalidArgument) as err:
        subids.ensure_user_ranges("dbtest", uid_file=uid_file, gid_file=gid_file)
    assert "add the line 'dbtest:" in str(err.value) and "\n" not in str(err.value)
    assert uid_file.read_text() == "alice:100000:65536\n"


def test_mode_lines_say_what_runs_and_what_cannot():
    ranges = [Range("dockerbank", 2 ** 31, 2 ** 30)]
    from dockerbank.host.idmaproad import COPY, IDMAPPED, Road

    mapped = Road(IDMAPPED, "kernel probe").describe()
    root = subids.ModeFacts(False, ranges, mapped, "auto", True).lines()
    assert root[0] == " Rootless: false (root's engine)"
    assert "default --userns=auto" in root[1] and "2147483648-3221225471" in root[1] and "ID-mapped" in root[1]
    old = subids.ModeFacts(False, [], Road(COPY, "DOCKERBANK_IDMAP=off").describe(), "host", False).lines()[1]
    assert "none yet" in old and "copied per mapping" in old and "DOCKERBANK_IDMAP=off" in old
    assert "unshare(1) missing" in old
    from dockerbank.host.cgdelegation import V1, Delegation

    limits = Delegation(why=V1, reason="cgroup v1/hybrid").statement()
    rootless = subids.ModeFacts(True, [Range("u", 100000, 65536)], "", "host", True, True, limits).lines()
    assert rootless[0].startswith(" Rootless: true") and "100000-165535" in rootless[0]
    assert "user networks (DNS)" in rootless[1] and rootless[2] == f" Rootless Limits: {limits}"
    assert "cannot limit resources: cgroup v1/hybrid" in rootless[2]
    assert "apt-get install slirp4netns" in subids.ModeFacts(True, [], "", "host", True, False).lines()[1]


def test_the_idmap_road_is_forced_by_the_environment_or_read_from_the_cache():
    from dockerbank.errors import InvalidArgument
    from dockerbank.host import idmaproad as r

    assert r.forced(None) is None and r.forced("auto") is None
    assert r.forced("off") == r.COPY and r.forced("on") == r.IDMAPPED
    with pytest.raises(InvalidArgument) as err:
        r.forced("maybe")
    assert "DOCKERBANK_IDMAP" in str(err.value) and err.value.exit_code == 125
    assert r.parse_cache("6.18.44 idmapped kernel probe\n", "6.18.44") == r.Road(r.IDMAPPED, "kernel probe")
    assert r.parse_cache("5.15.0 copy the kernel refused\n", "5.15.0").name == r.COPY
    assert r.parse_cache("5.15.0 copy x\n", "6.1.0") is None      # another kernel: asked again
    assert r.parse_cache("", "6.1.0") is None and r.parse_cache("6.1.0 bogus", "6.1.0") is None
    assert r.road(Path("/nonexistent"), {"DOCKERBANK_IDMAP": "off"}) == r.Road(r.COPY, "DOCKERBANK_IDMAP=off")


def test_layer_copies_are_named_by_mapping_and_layer():
    from dockerbank.container import mappedlayers as m
    from dockerbank.container import userns

    record = userns.mapping(2 ** 31, 2 ** 31 + 5, 65536)
    assert m.mapping_key(record) == "u2147483648-g2147483653-65536"
    odd = {"uid": [{"containerID": 0, "hostID": 1, "size": 1}, {"containerID": 1, "hostID": 9, "size": 9}],
           "gid": [{"containerID": 0, "hostID": 1, "size": 10}]}
    assert m.mapping_key(odd).startswith("m") and m.mapping_key(odd) != m.mapping_key(record)
    assert m.copy_name(Path("/r/layers/abc/diff"), Path("/r/layers")) == "abc"
    assert m.copy_name(Path("/r/containers/c/init"), Path("/r/layers")) is None
    assert m.live_users(["a", "b", "c"], {"b"}.__contains__) == ["b"]


def test_shifted_owners_and_namespaced_capabilities():
    import struct

    from dockerbank.host.layercopy import namespaced_caps, shifted

    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert shifted(maps, 0) == 100000 and shifted(maps, 1000) == 101000
    assert shifted(maps, 70000) == 100000 + 65534          # unmapped: the mapping's nobody
    v2 = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)   # cap_net_bind_service, effective
    v3 = namespaced_caps(v2, 100000)
    assert len(v3) == 24 and struct.unpack("<IIIIII", v3) == (0x03000001, 1 << 10, 0, 0, 0, 100000)
    assert namespaced_caps(b"short", 1) == b"short"


def test_rootless_paths_follow_xdg_and_fall_back_like_podman():
    from dockerbank.config import user_paths

    assert user_paths(1000, {"HOME": "/home/a"}) == ("/home/a/.local/share/dockerbank", "/tmp/dockerbank-run-1000")
    assert user_paths(1000, {"HOME": "/home/a", "XDG_DATA_HOME": "/d", "XDG_RUNTIME_DIR": "/run/user/1000"}) == (
        "/d/dockerbank", "/run/user/1000/dockerbank")


def test_config_of_a_rootless_engine_uses_the_users_paths(monkeypatch):
    from dockerbank.config import USER_ENV, Config

    monkeypatch.setenv(USER_ENV, "1234")
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    monkeypatch.delenv("DOCKERBANK_ROOT", raising=False)
    monkeypatch.delenv("DOCKERBANK_RUNROOT", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    config = Config.from_env()
    assert (str(config.root), str(config.run_root)) == ("/home/u/.local/share/dockerbank", "/run/user/1234/dockerbank")
    other = Config.from_env("/srv/x")
    assert str(other.run_root).startswith("/run/user/1234/dockerbank/")


def test_identity_map_tells_the_host_namespace_apart():
    from dockerbank.host.rootless import identity_map

    assert identity_map("         0          0 4294967295\n")
    assert not identity_map("0 1001 1\n1 100000 65536\n")


def test_rootless_refuses_what_it_cannot_do_in_one_line(monkeypatch):
    import shutil

    from dockerbank.container.lifecycle import _rootless_network
    from dockerbank.container.options import CreateOptions
    from dockerbank.errors import NotSupported

    from dockerbank.host import cgdelegation

    monkeypatch.setattr(cgdelegation, "current", lambda: cgdelegation.Delegation(why=cgdelegation.V1, reason="v1"))
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert _rootless_network(CreateOptions(image="x")) == "bridge"
    assert _rootless_network(CreateOptions(image="x", network="host")) == "host"
    assert _rootless_network(CreateOptions(image="x", network="mynet")) == "mynet"
    assert _rootless_network(CreateOptions(image="x", network_options={"ports": ["8080:80"]})) == "bridge"
    for opts in (CreateOptions(image="x", memory=1 << 26), CreateOptions(image="x", pids_limit=10),
                 CreateOptions(image="x", userns="auto")):
        with pytest.raises(NotSupported) as err:
            _rootless_network(opts)
        assert err.value.exit_code == 125 and ("rootless" in str(err.value) or "root's" in str(err.value))
    monkeypatch.setattr(shutil, "which", lambda name: None)   # no slirp4netns: no way out, no -p
    assert _rootless_network(CreateOptions(image="x")) == "none"
    with pytest.raises(NotSupported) as err:
        _rootless_network(CreateOptions(image="x", network_options={"ports": ["8080:80"]}))
    assert "apt-get install slirp4netns" in str(err.value)


def test_system_check_removes_layer_copies_no_container_holds(tmp_path):
    from dockerbank.config import Config
    from dockerbank.container.mappedlayers import MappedLayers

    config = Config(tmp_path / "root", tmp_path / "run")
    layers = MappedLayers(config)
    for key, cid in (("u1-g1-65536", "a" * 64), ("u2-g2-65536", "b" * 64)):
        (layers.base / key / "users").mkdir(parents=True)
        (layers.base / key / "users" / cid).touch()
    (config.containers_dir / ("b" * 64)).mkdir(parents=True)     # b's container still exists
    assert layers.check(repair=False, grace=600) == []          # too young: a start may be copying
    assert layers.check(repair=True, grace=0) == [
        "image layer copies of ID mapping u1-g1-65536 that no container uses: removed"]
    assert sorted(p.name for p in layers.base.iterdir() if p.is_dir()) == ["u2-g2-65536"]
    layers.release("b" * 64)                                     # b's rm (its directory may remain a moment)
    assert not (layers.base / "u2-g2-65536").exists()            # the last user gone, the copies go with it
