"""The engine's event stream over the persisted history (engine.events): since/until/filters,
following new events, docker's line format, and the history's bound."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from dockerbank.engine.events import EventsOptions, render, stream
from dockerbank.errors import InvalidArgument
from dockerbank.events import log as evlog


def write(root, *items) -> None:
    with open(root / "events.jsonl", "a") as out:
        for kind, action, actor, attrs, nano in items:
            out.write(json.dumps(evlog.event(kind, action, actor, attrs, now_ns=nano)) + "\n")


def test_since_until_filters_then_follow(tmp_path):
    config = SimpleNamespace(root=tmp_path)
    write(tmp_path, ("container", "create", "c1", {"name": "web"}, 10 * 10**9),
          ("container", "start", "c1", {"name": "web"}, 20 * 10**9),
          ("volume", "create", "v1", {}, 30 * 10**9))
    past = stream(config, EventsOptions(since=15, until=40))
    assert [e["Action"] for e in next(past)] == ["start", "create"]
    assert list(past) == []                                   # until has passed: no following
    only = stream(config, EventsOptions(since=0, until=40, filters={"type": ["volume"]}))
    assert [e["Actor"]["ID"] for e in next(only)] == ["v1"]
    clock = iter(range(50 * 10**9, 100 * 10**9, 10**9))
    live = stream(config, EventsOptions(since=45, until=60, interval=0), now=lambda: next(clock))
    assert next(live) == []
    write(tmp_path, ("container", "die", "c1", {"name": "web"}, 55 * 10**9),
          ("container", "destroy", "c1", {"name": "web"}, 70 * 10**9))
    assert [e["Action"] for e in next(live)] == ["die"]       # 70 s is past until: the stream ends
    assert list(live) == []
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        next(stream(config, EventsOptions(filters={"colour": ["red"]})))


def test_docker_line_format():
    item = evlog.event("container", "start", "abc", {"name": "web", "image": "busybox"}, now_ns=1_733_377_830_120_000_000)
    assert render(item) == "2024-12-05T05:50:30.12Z container start abc (image=busybox, name=web)"
    assert render(evlog.event("volume", "create", "v", {}, now_ns=10**9)) == "1970-01-01T00:00:01Z volume create v"


def test_history_is_bounded_to_two_generations(tmp_path, monkeypatch):
    monkeypatch.setattr(evlog, "MAX_BYTES", 2000)
    history = evlog.EventLog(tmp_path / "events.jsonl")
    for n in range(200):
        history.record("volume", "create", f"v{n}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1"]
    assert all(p.stat().st_size <= 2000 + 400 for p in tmp_path.iterdir())
    kept = [e["Actor"]["ID"] for e in history.read()[0]]
    assert kept[-1] == "v199" and kept == [f"v{n}" for n in range(200 - len(kept), 200)]
