"""Parsing and validation of -v, --mount, --tmpfs, --volumes-from; OCI mount entries (pure)."""

from __future__ import annotations

import pytest

from dockerbank.volume import mounts as m
from dockerbank.errors import InvalidArgument


def error_of(func, *args) -> str:
    with pytest.raises(InvalidArgument) as info:
        func(*args)
    assert info.value.exit_code == 125
    return info.value.message


# --- -v ---------------------------------------------------------------------------------------


def test_volume_forms():
    anon = m.parse_volume("/data")
    assert (anon.type, anon.source, anon.target, anon.anonymous) == ("volume", "", "/data", True)
    named = m.parse_volume("pgdata:/var/lib/postgresql/data")
    assert (named.type, named.source, named.read_only, named.anonymous) == ("volume", "pgdata", False, False)
    bind = m.parse_volume("/srv/www/:/usr/share/html:ro")
    assert (bind.type, bind.source, bind.target, bind.read_only) == ("bind", "/srv/www", "/usr/share/html", True)
    assert bind.propagation == "rprivate" and bind.create_source
    nocopy = m.parse_volume("cache:/cache:nocopy,rw")
    assert nocopy.nocopy and not nocopy.read_only
    shared = m.parse_volume("/mnt:/mnt:rshared,z")
    assert shared.propagation == "rshared" and shared.options == ("rshared", "z")
    assert m.parse_volume("a:/x").source == "a"  # dockerd takes one-letter names from -v
    assert m.parse_volume("data:/srv//x/").target == "/srv/x"


@pytest.mark.parametrize("raw, message", [
    ("/x:rw", "invalid volume specification: '/x:rw'"),
    ("a::/b", "invalid volume specification: 'a::/b'"),
    ("a:/b:c:d", "invalid volume specification: 'a:/b:c:d'"),
    ("/x:/y:foo", "invalid mode: foo"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("x1:data", ("invalid volume specification: 'x1:data': invalid mount config for type \"volume\": "
                "invalid mount path: 'data' mount path must be absolute")),
    ("/:/", ("invalid volume specification: '/:/': invalid mount config for type \"bind\": "
            "invalid specification: destination can't be '/'")),
    ("x1:/d:shared", ("invalid volume specification: 'x1:/d:shared': invalid mount config for type \"volume\": "
                     "field BindOptions must not be specified")),
    ("bad@x:/d", ('create bad@x: "bad@x" includes invalid characters for a local volume name, only '
                 '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')),
])
def test_volume_errors_are_dockers(raw, message):
    assert error_of(m.parse_volume, raw) == message


# --- --mount ----------------------------------------------------------------------------------


def test_mount_volume_with_options():
    spec = m.parse_mount('type=volume,source=db,target=/var/lib/db,volume-label=team=bio,volume-label=x,'
                         'volume-opt=type=tmpfs,volume-opt=o=size=1m,volume-nocopy')
    assert spec.type == "volume" and spec.source == "db" and spec.target == "/var/lib/db"
    assert dict(spec.labels) == {"team": "bio", "x": ""}
    assert dict(spec.volume_options) == {"type": "tmpfs", "o": "size=1m"}
    assert spec.nocopy and not spec.read_only


def test_mount_defaults_to_volume_and_csv_quoting():
    spec = m.parse_mount('dst=/d,"volume-opt=o=size=1m,uid=1000",src=vol1,ro=true')
    assert spec.type == "volume" and dict(spec.volume_options) == {"o": "size=1m,uid=1000"} and spec.read_only
    assert m.parse_mount("src=vol1,dst=/d,readonly").read_only
    assert not m.parse_mount("src=vol1,dst=/d,ro=0").read_only


def test_mount_bind_and_tmpfs():
    bind = m.parse_mount("type=bind,src=/etc,dst=/host-etc,readonly,bind-propagation=rslave")
    assert (bind.type, bind.source, bind.read_only, bind.propagation, bind.create_source) == \
        ("bind", "/etc", True, "rslave", False)
    tmp = m.parse_mount("type=tmpfs,destination=/scratch,tmpfs-size=64m,tmpfs-mode=1770")
    assert (tmp.tmpfs_size, tmp.tmpfs_mode) == (64 << 20, 0o1770)


@pytest.mark.parametrize("raw, message", [
    ("src=a,tmpfs-size=1m,dst=/d", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
    ("type=volume,dst=/d,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
    ("dst=/d,foo", "invalid field 'foo' must be a key=value pair"),
    ("dst=/d,foo=1", "unexpected key 'foo' in 'foo=1'"),
    ("src=a", "target is required"),
    ("type=tmpfs,dst=/d,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,dst=/d,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
    ("dst=/d,src=a,ro=maybe", "invalid value for ro: maybe"),
])
def test_mount_flag_errors(raw, message):
    assert error_of(m.parse_mount, raw) == f'invalid argument "{raw}" for "--mount" flag: {message}'


@pytest.mark.parametrize("raw, message", [
    ("type=bind,src=rel,dst=/d", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("type=volume,dst=/d,ro", 'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ("type=tmpfs,src=x,dst=/d", 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("type=foo,dst=/d", 'invalid mount config for type "foo": mount type unknown'),
    ("type=bind,dst=/d", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,src=/tmp,dst=/d,bind-propagation=bogus", 'invalid mount config for type "bind": invalid propagation mode: bogus'),
    ("type=volume,dst=rel", "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
])
def test_mount_daemon_errors(raw, message):
    assert error_of(m.parse_mount, raw) == message


# --- --tmpfs, duplicates, validation ---------------------------------------------------------


def test_tmpfs_options_merge_like_docker():
    spec = m.parse_tmpfs("/run:exec,size=1m,mode=700")
    assert spec.target == "/run" and spec.options == ("exec", "size=1m", "mode=700")
    assert m.merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "size=2m"]) == \
        ["nosuid", "nodev", "rprivate", "exec", "size=2m"]
    assert error_of(m.parse_tmpfs, "/d:foo") == 'Invalid tmpfs option ["foo"]'
    assert error_of(m.parse_tmpfs, "d") == "invalid mount path: 'd' mount path must be absolute"


def test_duplicate_mount_points():
    for volumes, mounts, tmpfs in ((["x1:/d", "x2:/d/"], [], []), (["x1:/d"], ["type=volume,dst=/d"], []),
                                   (["x1:/d"], [], ["/d"])):
        assert error_of(m.parse_all, volumes, mounts, tmpfs) == "Duplicate mount point: /d"
    assert len(m.parse_all(["x1:/a"], ["dst=/b"], ["/c"])) == 3


def test_validate_bind_source_exists_only_for_mount_flag():
    specs = m.parse_all(["/nonexist-v:/a"], ["type=bind,src=/nonexist,dst=/d"])
    message = error_of(m.validate, specs, lambda path: path == "/")
    assert message == 'invalid mount config for type "bind": bind source path does not exist: /nonexist'
    m.validate(specs[:1], lambda path: False)  # -v creates its host directory instead


# --- merging ----------------------------------------------------------------------------------


def test_image_volumes_add_anonymous_volumes_for_uncovered_paths():
    specs = m.parse_all(["pg:/var/lib/postgresql/data"])
    merged = m.merge_image_volumes(specs, {"/var/lib/postgresql/data": {}, "/logs/": {}, "relative": {}})
    assert [(s.target, s.source) for s in merged] == [("/var/lib/postgresql/data", "pg"), ("/logs", "")]
    assert merged[1].anonymous
    assert m.merge_image_volumes(specs, None) == specs


def test_volumes_from():
    other = [m.MountSpec(type="volume", source="abc123", target="/data"),
             m.MountSpec(type="bind", source="/srv", target="/srv", read_only=True),
             m.MountSpec(type="tmpfs", target="/tmp")]
    own = m.parse_all(["/host:/srv"])
    merged = m.merge_volumes_from(own, other, "ro", container="datacontainer")
    by_target = {s.target: s for s in merged}
    assert set(by_target) == {"/data", "/srv"}
    assert by_target["/srv"].source == "/host"  # our own mount wins
    assert by_target["/data"].read_only and by_target["/data"].nocopy
    assert by_target["/data"].from_container == "datacontainer"
    assert not m.merge_volumes_from([], other[:1], "rw")[0].read_only
    assert m.parse_volumes_from("db") == ("db", "rw")
    assert m.parse_volumes_from("db:ro") == ("db", "ro")
    for bad in ("db:shared", "db:nocopy", "db:bogus"):
        assert error_of(m.parse_volumes_from, bad).startswith("invalid mode: ")
    with pytest.raises(InvalidArgument):
        m.merge_volumes_from([], [m.MountSpec(type="volume", target="/x")])


def test_spec_round_trips_through_dict():
    for spec in m.parse_all(["/a:/b:ro", "n1:/c:nocopy"], ["type=tmpfs,dst=/t,tmpfs-size=1k",
                                                           "dst=/v,volume-label=a=b,volume-opt=type=tmpfs"]):
        assert m.MountSpec.from_dict(spec.to_dict()) == spec


# --- OCI ---------------------------------------------------------------------------------------


def test_oci_mounts():
    specs = m.parse_all(["/srv/data:/data:ro", "/srv/data/sub:/data/sub"],
                        ["type=tmpfs,dst=/scratch,tmpfs-size=64m,tmpfs-mode=1770"], ["/run:exec,size=1m"])
    resolved = [m.resolve_bind(s) if s.type == "bind" else m.resolve_tmpfs(s) for s in specs]
    resolved.append(m.resolve_volume(m.parse_volume("pg:/var/lib/pg"), "pg", "/root/volumes/pg/_data"))
    entries = {e["destination"]: e for e in m.to_oci_mounts(resolved)}
    assert entries["/data"] == {"destination": "/data", "type": "bind", "source": "/srv/data",
                                "options": ["rbind", "ro", "rprivate"]}
    assert entries["/var/lib/pg"]["source"] == "/root/volumes/pg/_data"
    assert entries["/var/lib/pg"]["options"] == ["rbind", "rprivate"]
    assert entries["/scratch"] == {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["noexec", "nosuid", "nodev", "mode=1770", "size=64m"]}
    assert entries["/run"]["options"] == ["nosuid", "nodev", "exec", "size=1m"]
    order = [e["destination"] for e in m.to_oci_mounts(resolved)]
    assert order.index("/data") < order.index("/data/sub")


def test_volume_driver_options_at_use_time():
    spec = m.parse_volume("fast:/fast:ro")
    tmpfs = m.resolve_volume(spec, "fast", "/v/fast/_data", {"type": "tmpfs", "device": "tmpfs", "o": "size=10m"})
    assert (tmpfs.type, tmpfs.data, tmpfs.read_only, tmpfs.volume) == ("tmpfs", ("size=10m",), True, "fast")
    bound = m.resolve_volume(spec, "fast", "/v/fast/_data", {"type": "none", "o": "bind", "device": "/srv/x"})
    assert (bound.type, bound.source) == ("bind", "/srv/x")
    ro_device = m.resolve_volume(m.parse_volume("fast:/fast"), "fast", "/d", {"type": "none", "o": "bind,ro",
                                                                              "device": "/srv/x"})
    assert ro_device.read_only and ro_device.source == "/srv/x"
    entry = m.to_oci_mounts([tmpfs])[0]
    assert entry["options"] == ["noexec", "nosuid", "nodev", "ro", "size=10m"]


def test_sizes():
    assert m.parse_size("64m") == 64 << 20 and m.parse_size("1g") == 1 << 30 and m.parse_size("100") == 100
    assert m.format_tmpfs_size(64 << 20) == "64m" and m.format_tmpfs_size(1536) == "1536"
    assert m.format_tmpfs_size(3 << 30) == "3g"
    with pytest.raises(ValueError):
        m.parse_size("big")


def test_inspect_shapes_match_dockerd():
    """Compared with dockerd 20.10's inspect of: -v dbtestvol:/data:z -v /tmp/hostdir:/ctr:ro -v /anon
    --mount type=tmpfs,dst=/scratch,tmpfs-size=1m --mount type=volume,src=mvol,dst=/m,volume-nocopy
    --tmpfs /run --mount type=bind,src=/tmp,dst=/t2"""
    from dataclasses import replace

    specs = m.parse_all(["dbtestvol:/data:z", "/tmp/hostdir:/ctr:ro", "/anon"],
                        ["type=tmpfs,dst=/scratch,tmpfs-size=1m", "type=volume,src=mvol,dst=/m,volume-nocopy",
                         "type=bind,src=/tmp,dst=/t2"], ["/run"])
    specs = [replace(s, source="f834") if s.anonymous else s for s in specs]
    entries = {s.target: m.inspect_mount(s, f"/v/{s.source}/_data") for s in specs}
    assert entries["/ctr"] == {"Type": "bind", "Source": "/tmp/hostdir", "Destination": "/ctr", "Mode": "ro",
                               "RW": False, "Propagation": "rprivate"}
    assert entries["/data"] == {"Type": "volume", "Name": "dbtestvol", "Source": "/v/dbtestvol/_data",
                                "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    assert entries["/scratch"] == {"Type": "tmpfs", "Source": "", "Destination": "/scratch", "Mode": "",
                                   "RW": True, "Propagation": ""}
    assert entries["/m"]["Mode"] == "z" and entries["/t2"]["Mode"] == "" and entries["/anon"]["Mode"] == ""
    assert entries["/anon"]["Name"] == "f834" and entries["/run"] is None
    fields = m.host_config_fields(specs)
    assert fields["Binds"] == ["dbtestvol:/data:z", "/tmp/hostdir:/ctr:ro"]
    assert fields["Mounts"] == [{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576}},
                                {"Type": "volume", "Target": "/m", "Source": "mvol",
                                 "VolumeOptions": {"DriverConfig": {}, "NoCopy": True}},
                                {"Type": "bind", "Target": "/t2", "Source": "/tmp"}]
    assert fields["Tmpfs"] == {"/run": ""} and fields["Volumes"] == {"/anon": {}}
    assert m.host_config_fields([]) == {"Binds": None, "Mounts": None, "Tmpfs": None, "Volumes": None}
