"""The click-free parser of the hot commands (cli.flags) against click on the same flag tables:
whatever the fast path takes, it must read exactly as click does; what it declines goes to click."""

import pytest

from dockerbank.cli import container_flags as table
from dockerbank.cli import containers as click_commands
from dockerbank.cli.fastpath import _split
from dockerbank.cli.flags import Declined, parse

CASES = [
    ("run", table.RUN, click_commands.run_cmd, [
        ["busybox"],
        ["--rm", "busybox", "true"],
        ["-it", "--rm", "busybox", "sh", "-c", "echo $x"],
        ["-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "busybox", "httpd", "-f"],
        ["-e", "A=1", "-eB=2", "--env=C=3", "--env", "D", "busybox", "env"],
        ["--network=none", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20", "busybox"],
        ["-v", "/tmp:/data:ro", "--mount", "type=tmpfs,target=/t", "--tmpfs", "/run", "busybox", "ls", "-l"],
        ["--no-sig-proxy", "-a", "stdout", "--pull", "never", "busybox", "--", "-x"],
        ["--net", "mynet", "--network-alias", "db", "--dns", "1.1.1.1", "-P", "busybox"],
        ["--cpu-shares=512", "-c", "256", "--restart", "on-failure:3", "busybox"],
        ["-u", "1000:1000", "-w", "/srv", "-h", "box", "--entrypoint", "", "busybox"],
        ["--", "busybox", "ls"],
        ["busybox", "--rm"],  # after the image everything is the command's
        ["-l", "a=b", "--label", "c", "--read-only", "--init", "--privileged", "busybox"],
        ["--cap-add", "NET_ADMIN", "--cap-drop=ALL", "--security-opt", "no-new-privileges", "busybox"],
        ["--stop-timeout", "3", "--stop-signal", "SIGINT", "--device", "/dev/null", "busybox"],
    ]),
    ("ps", table.PS, click_commands.ps_cmd, [
        [], ["-a"], ["-aq"], ["-q", "--no-trunc"], ["-n", "3"], ["-n3"], ["--last=2", "-s"], ["-l"],
        ["-f", "name=web", "--filter", "label=a=b", "--format", "{{.Names}}"], ["--format=table {{.ID}}"],
    ]),
    ("exec", table.EXEC, click_commands.exec_cmd, [
        ["c1", "true"], ["-it", "c1", "sh"], ["-e", "A=1", "-u", "0", "-w", "/", "c1", "ls", "-la"],
        ["-d", "--privileged", "c1", "sleep", "1"], ["--env-file", "f", "c1", "--", "x"],
    ]),
    ("start", table.START, click_commands.start_cmd, [["a"], ["a", "b"], ["-ai", "a"], ["a", "-a"]]),
    ("rm", table.RM, click_commands.rm_cmd, [["a"], ["-f", "a", "b"], ["-fv", "a"], ["a", "--force"]]),
]


@pytest.mark.parametrize("name,command,click_command,args", [
    (name, command, click_command, args) for name, command, click_command, many in CASES for args in many
])
def test_fast_parser_reads_as_click_does(name, command, click_command, args):
    expected = click_command.make_context(name, list(args)).params
    assert parse(command, list(args)) == expected


@pytest.mark.parametrize("command,args", [
    (table.RUN, []),                             # the image is missing
    (table.RUN, ["--bogus", "busybox"]),         # unknown flag
    (table.RUN, ["--help"]),
    (table.RUN, ["--rm=maybe", "busybox"]),       # not a Go boolean: click words the error
    (table.RUN, ["--pull", "sometimes", "busybox"]),
    (table.RUN, ["--cpu-shares", "many", "busybox"]),
    (table.RUN, ["--name"]),                     # value missing
    (table.RUN, ["-e"]),
    (table.PS, ["extra"]),                       # ps takes no arguments
    (table.EXEC, ["c1"]),                        # no command
    (table.START, []),
    (table.RM, ["-x", "a"]),
])
def test_what_the_fast_parser_declines_goes_to_click(command, args):
    with pytest.raises(Declined):
        parse(command, list(args))


def test_boolean_flags_take_go_boolean_values():
    assert parse(table.RUN, ["--rm=true", "--detach=false", "busybox"])["auto_remove"] is True
    assert parse(table.RUN, ["--rm=0", "busybox"])["auto_remove"] is False
    assert parse(table.PS, ["--all=T"])["show_all"] is True


def test_global_options_before_the_command():
    assert _split(["--root", "/r", "--runroot=/x", "ps", "-a"]) == ({"--root": "/r", "--runroot": "/x"}, "ps", ["-a"])
    assert _split(["container", "cleanup", "abc"]) == ({}, "container cleanup", ["abc"])
    assert _split(["--help"]) is None
    assert _split(["--root"]) is None
    assert _split(["--version", "ps"]) is None
