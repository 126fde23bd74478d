"""``audit container`` and ``audit host`` through the CLI on a real root."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def rules(cli, *args: str) -> set[str]:
    return {f["rule"] for f in json.loads(cli("audit", *args, "--format", "json").stdout)["Findings"]}


def test_container_configuration_is_audited_with_cis_numbers(cli, busybox):
    cli("create", "--name", "bad", "--privileged", "--network", "host", "--cap-add", "NET_ADMIN",
        "-v", "/etc:/host-etc:ro", "-v", "/var/run/docker.sock:/var/run/docker.sock", "busybox", "true")
    cli("create", "--name", "open", "-p", "8080:80", "busybox", "true")
    cli("create", "--name", "good", "--read-only", "--memory", "64m", "--pids-limit", "100", "--health-cmd", "true",
        "--security-opt", "no-new-privileges", "-p", "127.0.0.1:8081:80", "busybox", "true")
    assert rules(cli, "container", "bad") >= {"privileged", "host-namespace", "added-capabilities",
                                              "api-socket-mounted", "sensitive-mount", "no-memory-limit"}
    assert "ports-all-interfaces" in rules(cli, "container", "open")
    assert rules(cli, "container", "good") == set()
    table = cli("audit", "container", "bad", "--fail-on", "high", check=False)
    assert table.returncode == 1 and "(CIS 5.4)" in table.stdout.decode()
    missing = cli("audit", "container", "nosuch", check=False)
    assert missing.returncode == 1 and missing.stderr.decode().startswith("Error: ") and b"Traceback" not in missing.stderr


def test_host_audit_reports_open_socket_insecure_registry_and_open_files(cli, busybox, root, tmp_path):
    run_root = Path(str(root) + "-run")
    assert rules(cli, "host") == {"userns-not-default"}   # CIS 2.8: a new root runs containers as host root
    cli("system", "userns-default", "auto")
    assert rules(cli, "host") == set()
    (root / "registries.json").write_text(json.dumps({"insecure": ["10.0.0.5:5000"]}))
    cli("volume", "create", "data")
    os.chmod(root / "volumes" / "data", 0o755)   # research data open to every local user
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(run_root / "docker.sock"))
    os.chmod(run_root / "docker.sock", 0o666)
    try:
        found = json.loads(cli("audit", "host", "--format", "json").stdout)["Findings"]
    finally:
        server.close()
    assert {(f["rule"], f["where"]) for f in found} == {
        ("insecure-registry", "registries.json insecure"),
        ("root-dir-perms", str(root / "volumes" / "data")),
        ("api-socket-perms", str(run_root / "docker.sock")),
    }
    # a volume older than the allowed age without a backup is overdue, until it is backed up
    def overdue(max_age: str) -> list[tuple[str, str]]:
        found = json.loads(cli("audit", "host", "--format", "json", "--backup-max-age", max_age).stdout)["Findings"]
        return [(f["where"], f["detail"]) for f in found if f["rule"] == "backup-overdue"]

    assert [(where, detail.split(" (")[0]) for where, detail in overdue("0s")] == [("volume data", "never backed up")]
    cli("backup", "create", "data")
    assert overdue("1h") == []
    assert overdue("0s")[0][1].startswith("last backup 0 hours ago (repository ")
