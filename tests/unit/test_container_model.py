"""Container model, names, users, logs parsing, start-error mapping and the store."""

from __future__ import annotations

import pytest

from dockerbank.container import logs, model, names
from dockerbank.container.model import Container, ContainerConfig, ContainerState
from dockerbank.container.store import ContainerStore
from dockerbank.container.users import resolve_user
from dockerbank.errors import AmbiguousReference, Conflict, InvalidArgument, NotFound
from dockerbank.runtime.oci import classify_start_error
from dockerbank.state.db import Database


def test_ids_and_names():
    cid = names.new_id()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    name = names.random_name(lambda n: False)
    adjective, surname = name.split("_", 1)
    assert adjective in names.ADJECTIVES and surname in names.SURNAMES
    assert names.validate_name("/web-1") == "web-1"
    with pytest.raises(InvalidArgument) as err:
        names.validate_name("a b")
    assert err.value.exit_code == 125


def test_state_machine():
    assert model.can_transition("created", "running")
    assert model.can_transition("running", "exited")
    assert not model.can_transition("removing", "running")
    state = ContainerState.from_dict({"status": "running", "unknown": 1})
    assert state.running and ContainerState.from_dict(state.to_dict()) == state


def test_resolve_user():
    passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
    group = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\n"
    # docker's AdditionalGids: the primary group first (``id`` inside shows it), an unknown uid gid 0
    assert resolve_user("app", passwd, group) == (1000, 1001, (1001, 50))
    assert resolve_user("1234:5", passwd, group) == (1234, 5, (5,))
    assert resolve_user("1234", passwd, group) == (1234, 0, (0,))
    assert resolve_user("app:root", passwd, group) == (1000, 0, (0, 50))
    with pytest.raises(InvalidArgument):
        resolve_user("nobody", passwd, group)


def test_log_lines_and_tail(tmp_path):
    path = tmp_path / "ctr.log"
    path.write_bytes(b"2026-01-01T00:00:00.000000001+00:00 stdout F one\n"
                     b"2026-01-01T00:00:01.5+00:00 stderr P tw\n"
                     b"2026-01-01T00:00:01.6+00:00 stderr F o\n"
                     b"2026-01-01T00:00:02+00:00 stdout F three\n")
    entries, offset = logs.read_entries(str(path))
    assert [(e.stream, e.data) for e in entries] == [("stdout", b"one\n"), ("stderr", b"tw"), ("stderr", b"o\n"),
                                                      ("stdout", b"three\n")]
    assert offset == path.stat().st_size
    tail, _ = logs.read_entries(str(path), tail=2)
    assert b"".join(e.data for e in tail) == b"two\nthree\n"
    since = logs.parse_time("2026-01-01T00:00:01Z")
    later, _ = logs.read_entries(str(path), since=since)
    assert later[0].data == b"tw"
    assert logs.format_entry(entries[0], True).startswith(b"2026-01-01T00:00:00.000000001Z one")
    assert logs.parse_since("10m", now=1000.0) == 400.0


def test_start_errors_map_to_docker_codes():
    err = classify_start_error("executable file `nosuch` not found in $PATH: No such file or directory", "nosuch")
    assert err.exit_code == 127 and 'exec: "nosuch": executable file not found in $PATH' in err.message
    err = classify_start_error("open executable: Permission denied", "/etc/passwd")
    assert err.exit_code == 126
    assert classify_start_error("something else", "x").exit_code == 125


def _container(name: str, cid: str | None = None) -> Container:
    return Container(cid or names.new_id(), name, "2026-01-01T00:00:00Z",
                     ContainerConfig(image="busybox", image_id="sha256:x", path="sh"), ContainerState())


def test_store_names_prefixes_and_state(tmp_path):
    store = ContainerStore(Database(tmp_path / "state.db"))
    first = _container("web", "abc" + "0" * 61)
    store.insert(first)
    store.insert(_container("db", "abd" + "0" * 61))
    with pytest.raises(Conflict) as err:
        store.insert(_container("web"))
    assert err.value.exit_code == 125
    assert f'"/web" is already in use by container "{first.id}"' in err.value.message
    assert store.find("web").id == first.id and store.find("/web").id == first.id
    assert store.find("abc").id == first.id
    with pytest.raises(AmbiguousReference):
        store.find("ab")
    with pytest.raises(NotFound):
        store.find("nothing")
    store.update_state(first.id, lambda s: setattr(s, "status", "running"))
    assert store.get(first.id).state.status == "running"
    store.rename(first.id, "web2")
    assert store.find("web2").id == first.id
    store.delete(first.id)
    assert [c.name for c in store.list()] == ["db"]


def test_a_drawn_name_taken_meanwhile_is_drawn_again(tmp_path):
    """Two concurrent creates may draw the same random name: the second draws again (as dockerd's
    reservation does) instead of failing with a Conflict nobody asked for."""
    store = ContainerStore(Database(tmp_path / "state.db"))
    store.insert(_container("eager_curie"))
    draws = iter(["eager_curie", "calm_noether"])
    late = _container("eager_curie")
    store.insert(late, rename=lambda: next(draws))
    assert late.name == "calm_noether" and store.find("calm_noether").id == late.id
    with pytest.raises(Conflict):  # a name the user gave is never changed
        store.insert(_container("calm_noether"))
