"""Pure parts of container/top.py: filtering ps output the way dockerd does."""

from __future__ import annotations

import pytest

from dockerbank.container.top import (
    TopResult,
    parse_ps_output,
    ps_args_of,
    render_top,
    validate_ps_args,
)
from dockerbank.errors import InvalidArgument, RuntimeFailure

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 22:56 ?        00:00:01 /sbin/init
root        9388       1  0 23:05 ?        00:00:00 /usr/bin/containerd-shim-runc-v2 -namespace moby
root        9409    9388  1 23:05 ?        00:00:00 sleep 300
root        9500    9409  0 23:06 ?        00:00:00 sh -c echo  two   spaces
"""

# `docker top cgtest` on this machine (dockerd 20.10, docker CLI 28).
DOCKER_TOP = (
    "UID                 PID                 PPID                C                   STIME"
    "               TTY                 TIME                CMD\n"
    "root                9409                9388                1                   23:05"
    "               ?                   00:00:00            sleep 300\n"
)


def test_keeps_header_and_container_rows_only():
    result = parse_ps_output(PS_EF, [9409, 9500])
    assert result.titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [row[1] for row in result.processes] == ["9409", "9500"]
    # cells beyond the titles are joined into the last one (runs of spaces collapse, as in Docker)
    assert result.processes[1][-1] == "sh -c echo two spaces"
    assert all(len(row) == len(result.titles) for row in result.processes)


def test_render_is_dockers_table():
    result = parse_ps_output(PS_EF, [9409])
    assert render_top(result) == DOCKER_TOP
    assert result.to_api() == {"Titles": result.titles, "Processes": result.processes}


def test_custom_columns_and_no_pid_column():
    result = parse_ps_output("  PID COMMAND\n 9409 sleep\n   12 other\n", [9409])
    assert result.processes == [["9409", "sleep"]]
    with pytest.raises(InvalidArgument, match="^Couldn't find PID field in ps output$"):
        parse_ps_output("COMMAND\nsleep\n", [1])


def test_thread_rows_follow_their_process():
    out = ("  PID   TID CMD\n"
           "  10     - a\n"
           "    -    10 -\n"
           "    -    11 -\n"
           "  20     - b\n"
           "    -    20 -\n")
    result = parse_ps_output(out, [10])
    assert [row[:2] for row in result.processes] == [["10", "-"], ["-", "10"], ["-", "11"]]


def test_garbage_pid_is_an_error():
    with pytest.raises(RuntimeFailure, match="Unexpected pid 'abc'"):
        parse_ps_output("PID CMD\nabc x\n", [1])


def test_ps_args_like_docker():
    assert ps_args_of(None) == ["-ef"]
    assert ps_args_of(()) == ["-ef"]
    assert ps_args_of(["-o", "pid,comm"]) == ["-o", "pid,comm"]
    assert ps_args_of("aux") == ["aux"]
    validate_ps_args(["-o", "pid=PID,comm"])
    with pytest.raises(InvalidArgument, match='specifying "user=PID" is not allowed'):
        validate_ps_args(["-o", "user=PID"])


def test_empty_result_renders_header_only():
    assert render_top(TopResult(["PID", "CMD"], [])) == "PID                 CMD\n"
