"""Healthchecks with real containers (crun/runc + conmon), run by the root's health scheduler
while no CLI runs: passing, failing after retries, timeout, start period, the image's HEALTHCHECK
and ``--no-healthcheck``, ps/inspect/events, and the scheduler's life (killed, restarted, gone)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from dockerbank.container.healthscheduler import running

pytestmark = pytest.mark.integration

FAST = ("--health-interval", "1s", "--network", "none")


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy (returned), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def state_of(engine, ref: str):
    return engine.containers.store.find(ref).state


def health_of(engine, ref: str) -> dict:
    return state_of(engine, ref).health or {}


def status_is(engine, ref: str, status: str):
    return lambda: health_of(engine, ref).get("Status") == status


def run_root(root: Path) -> Path:
    return Path(str(root) + "-run")  # the cli fixture's run root


def events(root: Path) -> list[dict]:
    path = root / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_passing_failing_and_timed_out_checks(ctr, engine, root):
    ctr("run", "-d", "--name", "good", *FAST, "--health-cmd", "echo ok", "busybox", "sleep", "300")
    ctr("run", "-d", "--name", "bad", *FAST, "--health-retries", "2", "--health-cmd", "echo broken >&2; exit 1",
        "busybox", "sleep", "300")
    ctr("run", "-d", "--name", "slow", *FAST, "--health-retries", "1", "--health-timeout", "1s",
        "--health-cmd", "sleep 20", "busybox", "sleep", "300")
    assert "(health: starting)" in ctr("ps", "--filter", "name=good").stdout.decode() or \
        health_of(engine, "good")["Status"] == "healthy"  # the first check may already have run
    wait_for(status_is(engine, "good", "healthy"), what="good healthy")
    wait_for(status_is(engine, "bad", "unhealthy"), what="bad unhealthy")
    wait_for(status_is(engine, "slow", "unhealthy"), what="slow unhealthy")

    inspect = json.loads(ctr("inspect", "good").stdout)[0]
    assert inspect["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo ok"], "Interval": 1_000_000_000}
    good = inspect["State"]["Health"]
    assert set(good) == {"Status", "FailingStreak", "Log"} and good["FailingStreak"] == 0
    assert good["Log"][-1]["ExitCode"] == 0 and good["Log"][-1]["Output"] == "ok\n"
    assert set(good["Log"][-1]) == {"Start", "End", "ExitCode", "Output"}

    bad = health_of(engine, "bad")
    assert bad["FailingStreak"] >= 2 and all(e["ExitCode"] == 1 and e["Output"] == "broken\n" for e in bad["Log"])
    slow = health_of(engine, "slow")["Log"][0]
    assert slow["ExitCode"] == -1 and slow["Output"] == "Health check exceeded timeout (1s)"

    lines = ctr("ps", "--format", "{{.Names}} {{.Status}}").stdout.decode().splitlines()
    assert any(line.startswith("good Up ") and line.endswith("(healthy)") for line in lines), lines
    assert any(line.startswith("bad Up ") and line.endswith("(unhealthy)") for line in lines), lines
    assert ctr("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}").stdout.decode().split() \
        in (["slow", "bad"], ["bad", "slow"])
    assert ctr("ps", "--filter", "health=healthy", "-q").stdout.decode().split() == [inspect["Id"][:12]]
    refused = ctr("ps", "--filter", "health=fine", check=False)
    assert refused.returncode != 0 and "Unrecognised filter value for health: fine" in refused.stderr.decode()

    actions = [(e["Actor"]["Attributes"]["name"], e["Action"]) for e in events(root)
               if e["Action"].startswith("health_status")]
    assert ("good", "health_status: healthy") in actions and ("bad", "health_status: unhealthy") in actions
    assert actions.count(("good", "health_status: healthy")) == 1  # only changes are events

    ctr("pause", "good")  # docker stops probing a paused container and calls it unhealthy
    assert health_of(engine, "good")["Status"] == "unhealthy"
    assert ctr("ps", "--filter", "name=good", "--format", "{{.Status}}").stdout.decode().strip().endswith("(Paused)")
    ctr("unpause", "good")
    wait_for(status_is(engine, "good", "healthy"), what="good healthy again after unpause")

    ctr("stop", "-t", "0", "good")
    stopped = json.loads(ctr("inspect", "good").stdout)[0]["State"]["Health"]
    assert stopped["Status"] == "unhealthy"  # docker's view of a stopped container's health
    assert ctr("ps", "-a", "--filter", "name=good", "--format", "{{.Status}}").stdout.decode().startswith(
        "Exited (137) ") and "health" not in ctr("ps", "-a", "--filter", "name=good").stdout.decode()


def test_start_period_keeps_starting_until_the_check_passes(ctr, engine, root):
    ctr("run", "-d", "--name", "db", "--network", "none", "--health-cmd", "test -f /tmp/ready",
        "--health-retries", "1", "--health-interval", "30s", "--health-start-period", "60s",
        "--health-start-interval", "1s", "busybox", "sh", "-c", "sleep 3; touch /tmp/ready; sleep 300")
    seen = set()

    def healthy():
        current = health_of(engine, "db")
        seen.add(current.get("Status"))
        return current.get("Status") == "healthy" and current

    final = wait_for(healthy, timeout=40, what="db healthy")
    assert "unhealthy" not in seen
    assert [e["ExitCode"] for e in final["Log"]][-1] == 0 and 1 in [e["ExitCode"] for e in final["Log"]]
    assert not any(e["Action"] == "health_status: unhealthy" for e in events(root))


def test_image_healthcheck_and_no_healthcheck(ctr, engine, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD [\"true\"]\n")
    ctr("build", "-q", "-t", "checked", str(context))
    ctr("run", "-d", "--name", "from-image", "--network", "none", "checked", "sleep", "300")
    ctr("run", "-d", "--name", "unchecked", "--network", "none", "--no-healthcheck", "checked", "sleep", "300")
    ctr("create", "--name", "shorter", "--health-interval", "2s", "checked", "sleep", "300")
    wait_for(status_is(engine, "from-image", "healthy"), what="the image's check passing")
    unchecked = json.loads(ctr("inspect", "unchecked").stdout)[0]
    # docker merges the image's other fields under NONE too (checked against dockerd 20.10)
    assert unchecked["Config"]["Healthcheck"] == {"Test": ["NONE"], "Interval": 1_000_000_000, "Retries": 1}
    assert "Health" not in unchecked["State"]
    assert "(" not in ctr("ps", "--filter", "name=unchecked", "--format", "{{.Status}}").stdout.decode()
    assert ctr("ps", "--filter", "health=none", "--format", "{{.Names}}").stdout.decode().split() == ["unchecked"]
    shorter = json.loads(ctr("inspect", "shorter").stdout)[0]["Config"]["Healthcheck"]
    assert shorter == {"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Retries": 1}
    conflict = ctr("create", "--no-healthcheck", "--health-cmd", "true", "checked", check=False)
    assert conflict.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in \
        conflict.stderr.decode()


def test_scheduler_killed_comes_back_and_leaves_when_unneeded(ctr, engine, root):
    ctr("run", "-d", "--name", "watched", *FAST, "--health-cmd", "true", "busybox", "sleep", "300")
    wait_for(status_is(engine, "watched", "healthy"), what="first check")
    pid = running(run_root(root))
    assert pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid_gone(pid), what="the scheduler's end")
    killed_at = time.time()
    assert running(run_root(root)) == 0
    ctr("ps")  # the next command notices and starts it again
    new_pid = wait_for(lambda: running(run_root(root)), timeout=10, what="a new scheduler")
    assert new_pid != pid

    def checked_after_kill():
        from dockerbank.container.health import epoch

        log = health_of(engine, "watched")["Log"]
        return len([e for e in log if epoch(e["Start"]) > killed_at]) >= 2

    wait_for(checked_after_kill, what="checks after the restart")
    ctr("rm", "-f", "watched")
    wait_for(lambda: pid_gone(new_pid) and running(run_root(root)) == 0, timeout=15,
             what="the scheduler to exit once no container needs it")
