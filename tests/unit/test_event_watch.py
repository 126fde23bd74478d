"""Event-driven waiting: the event log's appends wake a waiter (events.watch), ``wait`` with a
condition answers from them, and a long-lived engine hands its deferred work to a background
runner instead of doing it in the caller's request."""

from __future__ import annotations

import threading
import types
from pathlib import Path

from dockerbank.engine import workers
from dockerbank.engine.containers import _wait_for
from dockerbank.errors import NotFound
from dockerbank.events.log import EventLog
from dockerbank.events.watch import EventWatch


def _append_soon(run_root: Path, started: threading.Event, action: str = "destroy", before=None) -> threading.Thread:
    def append() -> None:
        started.wait(10)
        if before is not None:
            before()
        EventLog(run_root / "events.jsonl").record("container", action, "c1")

    thread = threading.Thread(target=append)
    thread.start()
    return thread


def test_an_append_by_another_writer_wakes_the_watch(tmp_path):
    with EventWatch(tmp_path / "events.jsonl") as watch:
        assert watch.fd >= 0, "inotify is available on Linux"
        assert watch.wait(0.0) is False  # nothing appended yet
        ready = threading.Event()
        thread = _append_soon(tmp_path, ready)
        ready.set()
        assert watch.wait(30) is True  # woken by the append, not by the 30 s timeout
        thread.join()
        watch.wait(0.0)  # the rest of that append (its file's creation and its write may wake apart)
        assert watch.wait(0.0) is False  # drained: one wake-up per batch


def test_appends_after_the_watch_opened_are_not_missed(tmp_path):
    with EventWatch(tmp_path / "events.jsonl") as watch:
        EventLog(tmp_path / "events.jsonl").record("container", "die", "c1")  # before anybody waits
        assert watch.wait(30) is True


def test_other_files_of_the_directory_wake_nothing(tmp_path):
    with EventWatch(tmp_path / "events.jsonl") as watch:
        (tmp_path / "state.db-wal").write_bytes(b"x" * 100)  # the database beside the log
        assert watch.wait(0.2) is False
        EventLog(tmp_path / "events.jsonl").record("container", "start", "c1")
        assert watch.wait(30) is True


def test_without_inotify_the_watch_polls(tmp_path):
    watch = EventWatch(tmp_path / "events.jsonl")
    watch.close()  # fd -1: the fallback sleeps a poll interval and reports no event
    assert watch.wait(5) is False


class _Store:
    """A fake container service: one exited container until ``remove`` is called."""

    def __init__(self, run_root: Path):
        self.config = types.SimpleNamespace(root=run_root, run_root=run_root)
        self.present = True
        self.reads = 0

    def get(self, cid: str):
        self.reads += 1
        if not self.present:
            raise NotFound(cid)
        state = types.SimpleNamespace(status="exited", exit_code=3, finished_at="t1", conmon_pid=0, conmon_start=0)
        return types.SimpleNamespace(id=cid, state=state)

    def dir(self, cid: str) -> Path:
        return self.config.run_root / cid


def test_wait_for_removed_answers_on_the_destroy_event(tmp_path):
    store = _Store(tmp_path)
    found = store.get("c1")
    ready = threading.Event()

    def removed() -> None:
        store.present = False

    thread = _append_soon(tmp_path, ready, before=removed)
    ready.set()
    assert _wait_for(store, found, "removed", lambda: False) is None  # removed before its exit was seen
    thread.join()
    assert store.reads <= 4  # woken by the event, not spinning


def test_wait_for_removed_gives_the_exit_code_its_die_event_recorded(tmp_path):
    """The client that cleaned up and removed it (an attached run --rm) may be faster than
    the waiter: the code comes from the die event, not from whoever else saw it."""
    store = _Store(tmp_path)
    found = store.get("c1")
    store.present = False
    log = EventLog(tmp_path / "events.jsonl")
    log.record("container", "die", "c10", {"exitCode": "9"})  # another container, an ID sharing the prefix
    log.record("container", "die", "c1", {"exitCode": "3"})
    log.record("container", "destroy", "c1")
    assert _wait_for(store, found, "removed", lambda: False) == 3


def test_wait_for_not_running_of_an_exited_container_is_immediate(tmp_path):
    store = _Store(tmp_path)
    assert _wait_for(store, store.get("c1"), "not-running", lambda: False) == 3


def test_a_long_lived_engine_defers_to_its_background_runner(tmp_path):
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    handed: list = []
    engine = Engine(Config(root=tmp_path / "root", run_root=tmp_path / "run"), background=handed.append)
    done: list = []
    engine.later(lambda: done.append(1))
    assert done == [] and len(handed) == 1  # not run in the caller's thread
    assert engine.sibling().background == handed.append
    handed[0]()
    assert done == [1]
    plain = Engine(Config(root=tmp_path / "root", run_root=tmp_path / "run"))
    plain.later(lambda: done.append(2))
    assert done == [1, 2]  # without a runner: at once, as before


def test_background_runs_work_in_another_thread_and_drains():
    ran: list = []
    workers.background(lambda: ran.append(threading.current_thread().name))
    workers.background(lambda: 1 / 0)  # logged, not raised into anybody
    workers.drain_background()
    assert len(ran) == 1 and ran[0].startswith("background")
