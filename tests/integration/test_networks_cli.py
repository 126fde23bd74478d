"""The network CLI as users run it (a subprocess per command): docker's output and exit codes."""

from __future__ import annotations

import json


def test_network_lifecycle_through_the_cli(cli):
    net_id = cli("network", "create", "--subnet", "10.124.0.0/24", "--gateway", "10.124.0.254",
                 "--label", "team=lab", "--internal", "lab").stdout.decode().strip()
    assert len(net_id) == 64
    listing = cli("network", "ls").stdout.decode().splitlines()
    assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert {line.split()[1] for line in listing[1:]} == {"bridge", "lab"}
    assert cli("network", "ls", "-q", "--filter", "label=team=lab").stdout.decode().split() == [net_id[:12]]
    assert cli("network", "ls", "--format", "{{.Name}} {{.Internal}}", "--filter", "name=lab").stdout == b"lab true\n"
    doc = json.loads(cli("network", "inspect", "lab").stdout)[0]
    assert doc["Id"] == net_id and doc["Internal"] is True and doc["Labels"] == {"team": "lab"}
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.124.0.0/24", "Gateway": "10.124.0.254"}]
    assert cli("network", "inspect", "-f", "{{.Driver}}", net_id[:6]).stdout == b"bridge\n"

    dup = cli("network", "create", "lab", check=False)
    assert dup.returncode == 1 and dup.stderr == b"Error: network with name lab already exists\n"
    overlap = cli("network", "create", "--subnet", "10.124.0.128/25", "other", check=False)
    assert overlap.returncode == 1 and b"Pool overlaps" in overlap.stderr
    bad = cli("network", "create", "--subnet", "10.124.1.0/24", "--gateway", "10.9.9.9", "bad", check=False)
    assert bad.returncode == 1 and b"gateway 10.9.9.9" in bad.stderr
    builtin = cli("network", "rm", "bridge", check=False)
    assert builtin.returncode == 1 and b"pre-defined network" in builtin.stderr

    missing = cli("network", "rm", "lab", "nope", check=False)
    assert missing.returncode == 1 and missing.stdout == b"lab\n"
    assert missing.stderr == b"Error: No such network: nope\n"
    cli("network", "create", "spare")
    assert cli("network", "prune", "-f").stdout == b"Deleted Networks:\nspare\n"
    assert cli("network", "ls", "-q").stdout.decode().split() == [json.loads(
        cli("network", "inspect", "bridge").stdout)[0]["Id"][:12]]
    no_container = cli("port", "ghost", check=False)
    assert no_container.returncode == 1 and no_container.stderr == b"Error: No such container: ghost\n"
