"""``audit image`` on images built for real: each planted finding is reported with its rule; a clean image has none."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dockerbank.build import context as contexts
from dockerbank.build.executor import Builder, BuildOptions
from dockerbank.audit.service import AuditService
from dockerbank.build.run import run_step_for

pytestmark = pytest.mark.integration

PLANTED = """\
FROM busybox
ENV GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB
COPY id_rsa /root/.ssh/id_rsa
COPY tool /usr/local/bin/tool
RUN chmod 4755 /usr/local/bin/tool && mkdir -p -m 0777 /srv/shared
COPY creds.txt /opt/creds.txt
RUN rm /opt/creds.txt
EXPOSE 80
"""

CLEAN = """\
FROM busybox
COPY tool /usr/local/bin/tool
USER 1000:1000
EXPOSE 8080
HEALTHCHECK CMD ["true"]
"""


def build(engine, ctx: Path, dockerfile: str, tag: str) -> str:
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
                                "-----END OPENSSH PRIVATE KEY-----\n")
    (ctx / "tool").write_text("#!/bin/sh\necho tool\n")
    (ctx / "creds.txt").write_text("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n")
    with contexts.from_directory(ctx) as context:
        return Builder(engine, run_step=run_step_for(engine)).build(context, BuildOptions(tags=[tag]))


def by_rule(findings: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in findings:
        out.setdefault(f["rule"], []).append(f)
    return out


def test_planted_findings_are_reported_and_gate_ci(engine, busybox, cli, tmp_path):
    build(engine, tmp_path / "planted", PLANTED, "planted:1")
    result = cli("audit", "image", "--format", "json", "--fail-on", "high", "planted:1", check=False)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    found = by_rule(report["Findings"])
    assert [f["where"] for f in found["runs-as-root"]] == ["config: User"]
    assert [f["where"] for f in found["secret-in-env"]] == ["config: Env GITHUB_TOKEN"]
    secrets = {f["where"]: f for f in found["secret-in-file"]}
    assert set(secrets) == {"layer 2: /root/.ssh/id_rsa", "layer 5: /opt/creds.txt"}
    assert "deleted or replaced in layer 6 but still shipped in layer 5" in secrets["layer 5: /opt/creds.txt"]["detail"]
    assert [f["where"] for f in found["setuid-file"]] == ["layer 4: /usr/local/bin/tool"]
    assert [f["where"] for f in found["world-writable-dir"]] == ["layer 4: /srv/shared"]
    assert [f["where"] for f in found["deleted-file-shipped"]] == ["layer 6: /opt/creds.txt"]
    assert [f["where"] for f in found["privileged-port"]] == ["config: ExposedPorts 80/tcp"]
    assert "no-healthcheck" in found
    for f in report["Findings"]:
        assert f["severity"] in ("high", "medium", "low", "info") and f["fix"] and f["where"]
    table = cli("audit", "image", "planted:1").stdout.decode()
    assert "secret-in-file" in table and "WHAT TO DO" in table


def test_clean_image_has_no_findings_and_second_audit_is_cached(engine, busybox, cli, tmp_path):
    build(engine, tmp_path / "clean", CLEAN, "clean:1")
    first = AuditService.of(engine).audit_image("clean:1")
    assert first.findings == [] and first.complete and not first.cached
    started = time.perf_counter()
    again = cli("audit", "image", "--format", "json", "--fail-on", "low", "clean:1")
    assert time.perf_counter() - started < 5   # a subprocess; the ≤ 0.5 s figure is measured in bench/
    assert json.loads(again.stdout)["Findings"] == []
    assert AuditService.of(engine).audit_image("clean:1").cached
    cache = engine.config.root / "audit" / f"{first.image_id[7:]}.json"
    assert cache.exists()
    # the cached result of a removed image goes when the next result is stored
    cli("rmi", "clean:1")
    build(engine, tmp_path / "other", PLANTED, "other:1")
    cli("audit", "image", "other:1")
    assert not cache.exists()


def test_unknown_image_is_one_line_error(cli):
    result = cli("audit", "image", "nosuch:1", check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "Error: No such image: nosuch:1"
