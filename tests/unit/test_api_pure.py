"""Pure parts of the Engine API service: the error table, request -> engine options, framing,
build arguments, events shape and filters."""

from __future__ import annotations

import json
import struct

import pytest
from multidict import MultiDict

from dockerbank import errors as e
from dockerbank.api import errors as api_errors
from dockerbank.api.compat.build import build_query
from dockerbank.api.compat.containers import _mount_text, create_options, port_flags
from dockerbank.api.compat.hijack import frame
from dockerbank.api.server import Listen, TlsFiles
from dockerbank.events.log import EventLog, event, matches


@pytest.mark.parametrize(("exc", "status"), [
    (e.NotFound("x"), 404), (e.Conflict("x"), 409), (e.InvalidArgument("x"), 400), (e.UsageError("x"), 400),
    (e.AmbiguousReference("x"), 400), (e.HostileArchive("x"), 400), (e.RuntimeFailure("x"), 500),
    (e.NotSupported("x"), 501), (e.DockerbankError("x"), 500), (api_errors.NotModified("x"), 304),
    (e.CorruptData("x"), 400), (e.Offline("x"), 500), (e.PolicyRefused("x"), 403), (ValueError("x"), 500),
])
def test_one_table_maps_the_error_tree(exc, status):
    assert api_errors.status_of(exc) == status
    if isinstance(exc, e.DockerbankError):  # the API reads the class's own status: no second table
        assert type(exc).http_status == status


def test_error_bodies():
    assert json.loads(api_errors.body_of(e.NotFound("No such image: x"))) == {"message": "No such image: x"}
    line = json.loads(api_errors.stream_error_line(e.Offline("registry down")))
    assert line == {"errorDetail": {"message": "registry down"}, "error": "registry down"}


def test_create_body_to_engine_options():
    body = {
        "Image": "busybox", "Cmd": ["sh", "-c", "true"], "Env": ["A=1"], "Tty": True, "OpenStdin": True,
        "AttachStdout": True, "Labels": {"k": "v"}, "Volumes": {"/anon": {}}, "StopTimeout": 3,
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {
            "Binds": ["/srv:/data:ro", "named:/vol"], "Memory": 64 << 20, "NanoCpus": 500_000_000,
            "CpuShares": 512, "PidsLimit": 50, "Privileged": False, "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"],
            "SecurityOpt": ["no-new-privileges"], "ReadonlyRootfs": True, "AutoRemove": True, "Init": True,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}, "NetworkMode": "default",
            "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rw"}],
            "Tmpfs": {"/run": "size=1m"}, "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Mounts": [{"Type": "volume", "Source": "m", "Target": "/m", "ReadOnly": True}],
        },
    }
    opts = create_options(body, "web")
    assert (opts.image, opts.name, opts.command, opts.env, opts.tty, opts.interactive) == \
        ("busybox", "web", ["sh", "-c", "true"], ["A=1"], True, True)
    assert opts.entrypoint is None and opts.attach == ["STDOUT"]
    assert (opts.memory, opts.nano_cpus, opts.cpu_shares, opts.pids_limit) == (64 << 20, 500_000_000, 512, 50)
    assert opts.restart == "on-failure:2" and opts.auto_remove and opts.init and opts.read_only
    assert opts.devices == ["/dev/null:/dev/n:rw"] and opts.network == ""
    targets = {m.target: m for m in opts.mounts}
    assert set(targets) == {"/data", "/vol", "/m", "/run", "/anon"}
    assert targets["/data"].read_only and targets["/m"].read_only and targets["/anon"].anonymous
    assert opts.network_options["ports"] == ["8080:80"] and opts.network_options["expose"] == ["80/tcp"]


def test_entrypoint_string_and_empty():
    assert create_options({"Image": "x", "Entrypoint": ""}, None).entrypoint == []
    assert create_options({"Image": "x", "Entrypoint": "/bin/sh"}, None).entrypoint == ["/bin/sh"]
    with pytest.raises(e.InvalidArgument):
        create_options({}, None)


def test_port_flags_and_mount_text():
    assert port_flags({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}], "80/tcp": [{"HostPort": ""}],
                       "443/tcp": None}) == ["127.0.0.1:5353:53/udp", "80", "443"]
    assert _mount_text({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}) == \
        "type=bind,source=/a,target=/b,readonly"


def test_multiplexed_frame():
    data = frame(2, b"oops")
    assert data[:8] == struct.pack(">BxxxL", 2, 4) and data[8:] == b"oops"


def test_build_query_to_engine_options():
    query = MultiDict([("t", "a:1"), ("t", "b:2"), ("dockerfile", "Dockerfile.dev"), ("nocache", "1"),
                       ("buildargs", '{"V": "3", "N": null}'), ("labels", '{"l": "x"}'), ("target", "final")])
    parsed = build_query(query)
    assert (parsed.tags, parsed.dockerfile, parsed.target, parsed.no_cache, parsed.quiet) == \
        (["a:1", "b:2"], "Dockerfile.dev", "final", True, False)
    assert (parsed.build_args, parsed.labels, parsed.remote) == ({"V": "3"}, {"l": "x"}, None)


def test_listen_addresses_and_tls_required():
    assert Listen.parse("unix:///run/x.sock").path == "/run/x.sock"
    tcp = Listen.parse("tcp://127.0.0.1:2376")
    assert (tcp.host, tcp.port) == ("127.0.0.1", 2376)
    with pytest.raises(e.UsageError):
        Listen.parse("http://x")
    with pytest.raises(e.UsageError, match="tlscacert"):
        TlsFiles().context()


def test_event_shape_filters_and_log(tmp_path):
    item = event("container", "start", "abc", {"image": "busybox", "name": "web"}, now_ns=5_000_000_000)
    assert item["time"] == 5 and item["status"] == "start" and item["from"] == "busybox"
    assert matches(item, {"type": ["container"], "event": ["start"], "container": ["web"]})
    assert not matches(item, {"type": ["image"]})
    assert not matches(item, {"event": ["die"]})
    assert matches(item, {"image": ["busybox"]})
    log = EventLog(tmp_path / "events.jsonl")
    log.record("volume", "create", "v1", {"driver": "local"})
    stored, offset = log.read(0)
    assert [s["Actor"]["ID"] for s in stored] == ["v1"] and offset > 0
    follow = log.follow(offset)
    assert next(follow) == []
    log.record("volume", "destroy", "v1")
    assert [i["Action"] for i in next(follow)] == ["destroy"]


def test_a_memo_answers_only_at_the_same_version_and_age(monkeypatch):
    from dockerbank.api import base

    clock = [100.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    memo = base.VersionedMemo(max_age=2.0, size=2)
    memo.put("/containers/json", (1, 2), ["a"], computed_at=100.0)
    assert memo.get("/containers/json", (1, 2)) == ["a"]
    assert memo.get("/containers/json", (1, 3)) is None       # something changed
    assert memo.get("/containers/json?all=1", (1, 2)) is None  # another query
    assert memo.get("/containers/json", None) is None          # no version: never from memory
    memo.put("/x", None, ["b"], computed_at=100.0)
    assert memo.get("/x", None) is None
    clock[0] = 102.5                                            # older than max_age
    assert memo.get("/containers/json", (1, 2)) is None
    memo.put("/one", (1,), 1, computed_at=102.5)
    memo.put("/two", (1,), 2, computed_at=102.5)                # full: the old answers go
    assert memo.get("/one", (1,)) is None and memo.get("/two", (1,)) == 2
