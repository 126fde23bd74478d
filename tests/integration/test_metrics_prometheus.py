"""Metrics read by the real Prometheus (Debian's ``prometheus``): it scrapes
``system service --metrics-addr`` and answers PromQL about a running container's CPU, its health
and a volume's backup age; ``promtool`` checks and unit-tests the example rules; an encrypted
backup repository is read with its passphrase only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_binary

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None):
    """Poll ``check()`` until it returns something truthy (its value), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited: {log.read_text() if log else ''}")
        try:
            last = check()
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"{what} not reached within {timeout:.0f} s (last: {last!r})")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def one(found: dict, metric: str, **labels) -> float:
    hits = [v for (n, ls), v in found.items() if n == metric and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, (metric, labels, hits)
    return hits[0]


def test_prometheus_scrapes_cpu_rate_and_backup_age(ctr, root, tmp_path):
    prometheus = require_binary("prometheus")
    ctr("volume", "create", "vdata")
    ctr("run", "--rm", "-v", "vdata:/data", "busybox", "sh", "-c", "echo results > /data/r.txt")
    cid = ctr("run", "-d", "--name", "busy", "--cpus", "0.2", "--label", "org.example.team=lab",
              "--health-cmd", "test -e /data/r.txt", "--health-interval", "1s",
              "-v", "vdata:/data", "busybox", "sh", "-c",
              "while :; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 0.05; done").stdout.decode().strip()
    ctr("backup", "create", "vdata", "-q")
    ctr("backup", "verify")

    # printed once by the CLI: cAdvisor's names and labels, Dockerbank's own, the backup
    found = samples(ctr("system", "metrics").stdout.decode())
    ident = {"id": f"/dockerbank/{cid}", "name": "busy", "image": "busybox",
             "container_label_org_example_team": "lab"}
    assert one(found, "container_cpu_usage_seconds_total", cpu="total", **ident) > 0
    assert one(found, "container_memory_usage_bytes", **ident) > 0
    assert one(found, "container_processes", **ident) >= 1
    assert one(found, "container_spec_cpu_quota", **ident) == 20000
    assert one(found, "dockerbank_container_state", name="busy", state="running") == 1
    assert one(found, "dockerbank_backup_last_size_bytes", kind="volume", name="vdata") > 0
    assert one(found, "dockerbank_backup_last_verify_timestamp_seconds", kind="volume", name="vdata") > 0
    assert one(found, "dockerbank_volume_size_bytes", volume="vdata") == len("results\n")

    metrics_port, prom_port = free_port(), free_port()
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    service_log = tmp_path / "service.log"
    service = subprocess.Popen(
        [sys.executable, "-m", "dockerbank", "system", "service", "-H", f"unix://{tmp_path}/api.sock",
         "--metrics-addr", f"127.0.0.1:{metrics_port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(service_log, "wb"))
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({   # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "dockerbank-rules.yml")],
        "scrape_configs": [{"job_name": "dockerbank",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    prom_log = tmp_path / "prometheus.log"
    prom = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=open(prom_log, "wb"))
    api = f"http://127.0.0.1:{prom_port}"

    def query(expr: str) -> list:
        url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def positive(expr: str):
        def check():
            result = query(expr)
            return result if result and float(result[0]["value"][1]) > 0 else None
        return check

    try:
        wait_for("the metrics endpoint", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status == 200, 30, service, service_log)
        wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{api}/-/ready", timeout=5).status == 200,
                 60, prom, prom_log)
        wait_for("the target up", positive('up{job="dockerbank"}'), 60, prom, prom_log)
        rate = wait_for("a CPU rate", positive(
            f'rate(container_cpu_usage_seconds_total{{name="busy",cpu="total",id="/dockerbank/{cid}"}}[5s])'),
            60, prom, prom_log)
        assert 0 < float(rate[0]["value"][1]) < 0.5   # --cpus 0.2 caps it (with a margin for the window)
        wait_for("the health status", positive('dockerbank_container_health_status{name="busy",status="healthy"}'),
                 60, prom, prom_log)
        age = wait_for("a backup age", lambda: query('dockerbank_volume_backup_age_seconds{volume="vdata"}'),
                       30, prom, prom_log)
        assert 0 <= float(age[0]["value"][1]) < 600
        since = query('time() - dockerbank_backup_last_success_timestamp_seconds{kind="volume",name="vdata"}')
        assert 0 <= float(since[0]["value"][1]) < 600
        # the example rules loaded into the real server, and nothing fires on this healthy host
        groups = json.load(urllib.request.urlopen(f"{api}/api/v1/rules", timeout=5))["data"]["groups"]
        assert {"dockerbank-alerts", "dockerbank-recording"} <= {g["name"] for g in groups}
        assert all(g["rules"] and all(r["health"] != "err" for r in g["rules"]) for g in groups)
    finally:
        stop(prom)
        stop(service)
        ctr("rm", "-f", "busy")


def test_example_rules_pass_promtool(tmp_path):
    promtool = require_binary("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES / "dockerbank-rules.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = subprocess.run([promtool, "test", "rules", "dockerbank-rules.test.yml"], cwd=RULES,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_encrypted_repository_needs_its_passphrase_and_is_never_prompted_for(cli, tmp_path):
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    repo = str(tmp_path / "enc")
    cli("volume", "create", "secret-data")
    cli("backup", "init", "--encrypt", "--repo", repo, "--password-file", str(password))
    cli("backup", "create", "secret-data", "--repo", repo, "--password-file", str(password), "-q")
    locked = samples(cli("system", "metrics", "--backup-repo", repo, input=b"").stdout.decode())
    assert one(locked, "dockerbank_backup_repository_up", repository=repo) == 0
    assert not [k for k in locked if k[0] == "dockerbank_backup_last_success_timestamp_seconds"]
    opened = samples(cli("system", "metrics", "--backup-repo", repo, "--backup-password-file",
                         str(password)).stdout.decode())
    assert one(opened, "dockerbank_backup_repository_up", repository=repo) == 1
    assert one(opened, "dockerbank_backup_last_success_timestamp_seconds", kind="volume", name="secret-data") > 0
    assert 0 <= one(opened, "dockerbank_volume_backup_age_seconds", volume="secret-data") < 600
    by_env = samples(cli("system", "metrics", "--backup-repo", repo,
                         env={"DOCKERBANK_BACKUP_PASSWORD": "correct horse"}).stdout.decode())
    assert one(by_env, "dockerbank_backup_repository_up", repository=repo) == 1
