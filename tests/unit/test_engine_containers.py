"""The container use-case layer's own logic with fakes: batch reports, tail parsing, sinks,
the resources of ``update``."""

from __future__ import annotations

import threading
import time

import pytest

from dockerbank.container.lifecycle import _resources_update
from dockerbank.engine.containers import ContainerEngine, check_filters, parse_tail
from dockerbank.engine.sinks import BufferSink, LineSink
from dockerbank.errors import Conflict, InvalidArgument, NotFound


class FakeService:
    """Stops take 0.2 s; ``bad`` is running but refuses; anything else unknown is not found."""

    def __init__(self, log: list):
        self.log = log

    def get(self, ref: str):
        if ref.startswith("missing"):
            raise NotFound(f"no container {ref}")
        state = type("S", (), {"status": "exited" if ref.startswith("done") else "running"})()
        return type("C", (), {"id": f"id-{ref}", "state": state})()

    def stop(self, cid: str, timeout):
        if cid == "id-bad":
            raise Conflict("cannot stop bad")
        time.sleep(0.2)
        self.log.append((cid, threading.current_thread().name))


class FakeEngine:
    def __init__(self, log: list, deferred: list):
        self.containers, self.deferred, self.closed = FakeService(log), deferred, 0

    def sibling(self) -> FakeEngine:
        return FakeEngine(self.containers.log, [])

    def close(self, defer_to=None) -> None:
        self.closed += 1
        if defer_to is not None:
            defer_to.deferred.extend(self.deferred)


def test_batch_runs_items_in_parallel_and_reports_each_in_order():
    log: list = []
    ops = ContainerEngine(FakeEngine(log, []))  # type: ignore[arg-type]
    began = time.monotonic()
    reports = ops.stop(["a", "missing-1", "b", "bad", "done-c", "d"])
    took = time.monotonic() - began
    assert [r.ref for r in reports] == ["a", "missing-1", "b", "bad", "done-c", "d"]
    assert [r.ok for r in reports] == [True, False, True, False, True, True]
    assert "No such container: missing-1" == reports[1].error.message  # one wording for every transport
    assert reports[3].error.message == "cannot stop bad"
    assert reports[4].not_modified and not reports[0].not_modified
    assert sorted(cid for cid, _ in log) == ["id-a", "id-b", "id-d"]
    assert took < 0.5, f"three 0.2 s stops took {took:.2f} s"
    assert len({thread for _, thread in log}) == 3


def test_a_single_item_runs_in_the_callers_thread():
    log: list = []
    ops = ContainerEngine(FakeEngine(log, []))  # type: ignore[arg-type]
    assert ops.stop(["a"])[0].ok
    assert log == [("id-a", threading.current_thread().name)]


def test_tail_is_all_or_a_number():
    assert parse_tail(None) is None and parse_tail("all") is None and parse_tail("") is None
    assert parse_tail("-1") is None and parse_tail("0") == 0 and parse_tail("12") == 12
    with pytest.raises(InvalidArgument, match="failed to parse tail 1x") as refused:
        parse_tail("1x")
    assert refused.value.http_status == 400


def test_unknown_filters_are_refused_by_name():
    check_filters({"label": ["a"]}, frozenset({"label"}))
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        check_filters({"label": ["a"], "colour": ["red"]}, frozenset({"label"}))


def test_line_sink_splits_chunks_into_lines():
    lines: list[str] = []
    sink = LineSink(lines.append)
    for chunk in (b"Step 1", b"/2\nrun", b"-out\n", b"tail"):
        sink.write(chunk)
    sink.close()
    assert lines == ["Step 1/2", "run-out", "tail"]
    buffer = BufferSink()
    buffer.write(b"a")
    buffer.write(b"b")
    assert buffer.getvalue() == b"ab"


def test_update_resources_only_name_what_changes():
    assert _resources_update({"pids_limit": 50}, 0, 0) == {"pids": {"limit": 50}}
    assert _resources_update({"memory": 64 << 20}, 64 << 20, 0) == \
        {"memory": {"limit": 64 << 20, "swap": 128 << 20}}
    assert _resources_update({"nano_cpus": 500_000_000, "cpu_shares": 512}, 0, 0) == \
        {"cpu": {"period": 100000, "quota": 50000, "shares": 512}}
    assert _resources_update({"pids_limit": -1, "blkio_weight": 300}, 0, 0) == \
        {"pids": {"limit": -1}, "blockIO": {"weight": 300}}
