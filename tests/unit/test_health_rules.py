"""Healthchecks' pure logic (container.health): config merge and validation, docker's result
handling (streak, retries, start period, log of 5, output of 4096 bytes), the schedule, views."""

from __future__ import annotations

import pytest

from dockerbank.container import health
from dockerbank.errors import InvalidArgument

S = health.SECOND
T0 = "2026-01-01T00:00:00.000000Z"


def at(seconds: float) -> float:
    return health.epoch(T0) + seconds


def test_merge_takes_the_images_fields_the_create_leaves_empty():
    image = {"Test": ["CMD-SHELL", "true"], "Interval": 5 * S, "Retries": 2}
    assert health.merge(None, image) == image
    assert health.merge({"Interval": 1 * S, "Test": []}, image) == {"Test": ["CMD-SHELL", "true"], "Interval": S,
                                                                    "Retries": 2}
    assert health.merge({"Test": ["NONE"]}, image)["Test"] == ["NONE"]
    assert health.merge(None, None) is None
    assert not health.enabled(health.merge({"Test": ["NONE"]}, image))


def test_flags_as_the_docker_cli_reads_them():
    assert health.from_flags(None, None, None, None, None, None, False) is None
    assert health.from_flags("curl -f x", "1s", "500ms", "1m30s", "2s", 4, False) == {
        "Test": ["CMD-SHELL", "curl -f x"], "Interval": S, "Timeout": S // 2, "StartPeriod": 90 * S,
        "StartInterval": 2 * S, "Retries": 4}
    assert health.from_flags(None, "2s", None, None, None, None, False) == {"Test": [], "Interval": 2 * S}
    assert health.from_flags(None, None, None, None, None, None, True) == {"Test": ["NONE"]}
    with pytest.raises(InvalidArgument, match="--no-healthcheck conflicts with --health-\\* options"):
        health.from_flags("true", None, None, None, None, None, True)
    with pytest.raises(InvalidArgument, match="--health-interval cannot be negative"):
        health.from_flags("true", "-1s", None, None, None, None, False)
    with pytest.raises(InvalidArgument, match="--health-retries cannot be negative"):
        health.from_flags("true", None, None, None, None, -1, False)
    with pytest.raises(InvalidArgument, match='invalid argument "soon" for "--health-timeout" flag'):
        health.from_flags("true", None, "soon", None, None, None, False)


def test_validate_as_the_daemon():
    health.validate({"Test": ["CMD", "true"], "Interval": 10**6})
    with pytest.raises(InvalidArgument, match="Interval in Healthcheck cannot be less than 1ms"):
        health.validate({"Test": ["CMD", "true"], "Interval": 10})
    with pytest.raises(InvalidArgument, match="Retries in Healthcheck cannot be negative"):
        health.validate({"Test": ["CMD", "true"], "Retries": -1})
    with pytest.raises(InvalidArgument, match="unknown healthcheck type"):
        health.validate({"Test": ["SHELL", "true"]})


def test_probe_argv_and_defaults():
    assert health.probe_argv({"Test": ["CMD", "pg_isready", "-q"]}) == ["pg_isready", "-q"]
    assert health.probe_argv({"Test": ["CMD-SHELL", "exit 0"]}) == ["/bin/sh", "-c", "exit 0"]
    assert health.timing({"Test": ["CMD", "x"]}) == (30.0, 30.0, 0.0, 5.0, 3)
    assert health.go_duration(30) == "30s" and health.go_duration(1.5) == "1.5s" and health.go_duration(90) == "1m30s"


def entry(start: float, code: int, output: str = "") -> dict:
    return health.result(at(start), at(start + 0.1), code, output)


def test_one_success_makes_healthy_and_retries_failures_unhealthy():
    config = {"Test": ["CMD", "x"], "Retries": 2}
    state, changed = health.record(health.started(None), entry(1, 0), config, T0)
    assert (state["Status"], state["FailingStreak"], changed) == ("healthy", 0, "healthy")
    state, changed = health.record(state, entry(2, 1), config, T0)
    assert (state["Status"], state["FailingStreak"], changed) == ("healthy", 1, None)
    state, changed = health.record(state, entry(3, 1), config, T0)
    assert (state["Status"], state["FailingStreak"], changed) == ("unhealthy", 2, "unhealthy")
    state, changed = health.record(state, entry(4, 0), config, T0)
    assert (state["Status"], state["FailingStreak"], changed) == ("healthy", 0, "healthy")


def test_failures_in_the_start_period_do_not_count():
    config = {"Test": ["CMD", "x"], "Retries": 1, "StartPeriod": 10 * S}
    state = health.started(None)
    for second in range(1, 9):
        state, changed = health.record(state, entry(second, 1), config, T0)
        assert (state["Status"], state["FailingStreak"], changed) == ("starting", 0, None)
    state, changed = health.record(state, entry(11, 1), config, T0)  # past the start period: it counts
    assert (state["Status"], changed) == ("unhealthy", "unhealthy")
    # once healthy, the start period no longer shields a failure
    healthy, _ = health.record(health.started(None), entry(1, 0), config, T0)
    state, changed = health.record(healthy, entry(2, 1), config, T0)
    assert (state["Status"], changed) == ("unhealthy", "unhealthy")


def test_log_keeps_five_and_output_is_cut_at_4096_bytes():
    config = {"Test": ["CMD", "x"]}
    state = health.started(None)
    for second in range(8):
        state, _ = health.record(state, entry(second, 0, str(second)), config, T0)
    assert [e["Output"] for e in state["Log"]] == ["3", "4", "5", "6", "7"]
    assert len(health.result(0, 1, 0, b"x" * 10000)["Output"]) == 4096
    again = health.started(state)  # a restart: starting, streak reset, log kept (docker)
    assert again["Status"] == "starting" and again["FailingStreak"] == 0 and len(again["Log"]) == 5
    assert health.stopped(state)["Status"] == "unhealthy"


def test_schedule_start_interval_during_the_start_period_then_interval():
    config = {"Test": ["CMD", "x"], "Interval": 10 * S, "StartPeriod": 30 * S, "StartInterval": 2 * S}
    assert health.next_due(config, health.started(None), T0) == pytest.approx(at(2))
    starting = {"Status": "starting", "FailingStreak": 0, "Log": [entry(5, 1)]}
    assert health.next_due(config, starting, T0) == pytest.approx(at(5.1 + 2))
    healthy = {"Status": "healthy", "FailingStreak": 0, "Log": [entry(5, 0)]}
    assert health.next_due(config, healthy, T0) == pytest.approx(at(5.1 + 10))
    late = {"Status": "starting", "FailingStreak": 0, "Log": [entry(40, 1)]}
    assert health.next_due(config, late, T0) == pytest.approx(at(40.1 + 10))
    # without a start period the start interval never applies; an earlier run's log is ignored
    plain = {"Test": ["CMD", "x"], "Interval": 10 * S}
    old = {"Status": "starting", "FailingStreak": 0, "Log": [health.result(at(-100), at(-99), 0, "")]}
    assert health.next_due(plain, old, T0) == pytest.approx(at(10))


def test_views():
    assert health.status_suffix(None) == ""
    assert health.status_suffix({"Status": "starting"}) == " (health: starting)"
    assert health.status_suffix({"Status": "healthy"}) == " (healthy)"
    assert health.filter_value(None) == "none"
    health.check_filter({"health": ["healthy", "none"]})
    with pytest.raises(InvalidArgument, match="Unrecognised filter value for health: ok"):
        health.check_filter({"health": ["ok"]})
    assert health.epoch("2026-01-01T00:00:01.5Z") - health.epoch(T0) == pytest.approx(1.5)
    assert health.epoch("2026-01-01T00:00:01.123456789Z") - health.epoch(T0) == pytest.approx(1.123456789)


def test_batch_waits_within_the_slack_for_probes_due_soon():
    # alone: starts when due, never later
    assert health.batch({"a": (10.0, 1.0)}, 9.0) == ([], 10.0)
    assert health.batch({"a": (10.0, 1.0)}, 10.0) == (["a"], None)
    # b is due 0.5 s after a, within a's slack: both start at 10.5 in one worker
    dues = {"a": (10.0, 1.0), "b": (10.5, 1.0), "c": (20.0, 1.0)}
    assert health.batch(dues, 10.0) == ([], 10.5)
    assert health.batch(dues, 10.5) == (["a", "b"], 20.0)
    # a long-overdue probe (a restarted scheduler) runs at once, with whatever else is due
    assert health.batch({"a": (1.0, 0.1), "b": (2.0, 0.1), "c": (50.0, 0.1)}, 5.0) == (["a", "b"], 50.0)
    assert health.slack({"Test": ["CMD", "x"], "Interval": 1 * S}) == pytest.approx(0.1)
    assert health.slack({"Test": ["CMD", "x"]}) == 0.5  # default start interval 5 s


def test_scheduler_round_reads_the_database_and_starts_what_is_due(tmp_path):
    import json
    import sqlite3
    import time

    from dockerbank.container.healthscheduler import Scheduler

    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE containers (id TEXT, config TEXT, state TEXT)")
    now = time.time()
    check = {"Test": ["CMD", "true"], "Interval": 10 * S}
    long_ago = health.rfc3339(now - 60)

    def add(cid, config, status, started_at=long_ago, health_state=None):
        conn.execute("INSERT INTO containers VALUES (?,?,?)", (cid, json.dumps({"healthcheck": config}), json.dumps(
            {"status": status, "started_at": started_at, "health": health_state})))
        conn.commit()

    add("due", check, "running")
    add("stopped", check, "exited")
    add("disabled", {"Test": ["NONE"]}, "running")
    add("later", check, "running", started_at=health.rfc3339(now - 2))
    scheduler = Scheduler(str(db), "/root", str(tmp_path / "run"), "python")
    started = []
    scheduler.spawn = lambda cids: (started.append(cids), scheduler.busy.update({c: 1 for c in cids}))
    wait = scheduler.step()
    assert started == [["due"]]
    assert 7 < wait < 8.5  # "later" is due 10 s after its start, 2 s ago
    assert scheduler.step() > 7 and started == [["due"]]  # a busy container is not started twice
    conn.execute("DELETE FROM containers")
    conn.commit()
    scheduler.busy.clear()
    assert scheduler.step() is None  # nothing left: the scheduler may go
