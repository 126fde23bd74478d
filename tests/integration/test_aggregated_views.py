"""Aggregated views on real containers: ``logs`` of several containers at once (merged by time,
prefixed, --since/--until/--timestamps, -f until all have stopped), ``stats`` of all containers
(--no-stream, --all, --format), and ``events`` over the root's persisted history
(--since/--until/--filter/--format)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


def out(done) -> str:
    return done.stdout.decode()


def test_logs_of_several_containers_merged_and_prefixed(ctr, root):
    ctr("run", "--name", "alpha", "busybox", "sh", "-c", "echo a1; usleep 300000; echo a2 >&2")
    middle = time.time()
    ctr("run", "--name", "be", "busybox", "sh", "-c", "echo b1; usleep 300000; echo b2")
    assert out(ctr("logs", "alpha", "be")).splitlines() == ["alpha  | a1", "alpha  | a2", "be     | b1", "be     | b2"]
    assert out(ctr("logs", "--no-log-prefix", "alpha", "be")) == "a1\nb1\nb2\n"     # a2 went to stderr
    assert out(ctr("logs", "--since", f"{middle:.3f}", "alpha", "be")).splitlines() == ["be     | b1", "be     | b2"]
    assert out(ctr("logs", "--until", f"{middle:.3f}", "--tail", "1", "alpha", "be")).splitlines() == ["alpha  | a2"]
    stamped = out(ctr("logs", "-t", "alpha", "be")).splitlines()
    assert len(stamped) == 4 and all(line.split(" | ")[1][:4].isdigit() and "Z " in line for line in stamped)
    missing = ctr("logs", "alpha", "nosuch", check=False)
    assert missing.returncode == 1 and out(missing) == "" and "No such container: nosuch" in missing.stderr.decode()


def test_logs_follow_of_several_ends_when_all_have_stopped(ctr, root):
    ctr("run", "-d", "--name", "quick", "busybox", "sh", "-c", "echo q1; usleep 200000; echo q2")
    ctr("run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo s1; usleep 800000; echo s2")
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    done = subprocess.run([sys.executable, "-m", "dockerbank", "logs", "-f", "quick", "slow"], capture_output=True,
                          timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert sorted(lines) == ["quick  | q1", "quick  | q2", "slow   | s1", "slow   | s2"]
    assert lines[-1] == "slow   | s2"


def test_stats_of_all_containers(ctr):
    ctr("run", "-d", "--name", "busy1", "busybox", "sleep", "60")
    ctr("run", "-d", "--name", "busy2", "busybox", "sleep", "60")
    ctr("create", "--name", "idle", "busybox", "true")
    running = out(ctr("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}")).splitlines()
    assert sorted(running) == ["busy1 1", "busy2 1"]
    every = out(ctr("stats", "--no-stream", "--all", "--format", "table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}"))
    header, *rows = every.splitlines()
    assert header.split() == ["NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT"]
    assert sorted(row.split()[0] for row in rows) == ["busy1", "busy2", "idle"]
    assert [row.split()[1:] for row in rows if row.startswith("idle")] == [["0.00%", "0B", "/", "0B"]]
    table = out(ctr("stats", "--no-stream")).splitlines()
    assert table[0].startswith("CONTAINER ID   NAME") and len(table) == 3
    as_json = [json.loads(line) for line in out(ctr("stats", "--no-stream", "--format", "json", "busy1")).splitlines()]
    assert as_json[0]["Name"] == "busy1" and as_json[0]["Container"] == "busy1"
    ctr("rm", "-f", "busy1", "busy2")


def test_events_over_the_persisted_history(ctr, root):
    since = time.time()
    ctr("run", "--name", "evented", "--label", "team=lab", "busybox", "true")
    ctr("volume", "create", "evvol")
    until = time.time() + 0.5
    assert (root / "events.jsonl").exists()               # in the root: it survives a reboot
    lines = out(ctr("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}")).splitlines()
    actions = [line.split()[1:3] for line in lines]
    assert ["container", "create"] in actions and ["container", "start"] in actions and ["volume", "create"] in actions
    start = [line for line in lines if " container start " in line][0]
    assert "name=evented" in start and "team=lab" in start and start[:4].isdigit() and "Z container start " in start
    only = out(ctr("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "event=start",
                   "--filter", "label=team=lab", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"))
    assert only == "container start evented\n"
    as_json = [json.loads(line) for line in out(ctr("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                                                    "--filter", "type=volume", "--format", "json")).splitlines()]
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in as_json] == [("volume", "create", "evvol")]
    relative = out(ctr("system", "events", "--since", "5m", "--until", "0s", "--filter", "container=evented"))
    assert " container die " in relative
    bad = ctr("events", "--filter", "colour=red", check=False)
    assert bad.returncode == 1 and bad.stderr.decode().strip() == "Error: invalid filter 'colour'"   # as docker's
