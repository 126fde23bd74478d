"""``build --lint``: the real hadolint's findings printed as warnings; ``--lint=error`` fails the build."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_hadolint_warns_by_default_and_fails_with_lint_error(cli, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN cd /tmp && echo hi > x\n")
    warned = cli("build", "-q", "-t", "linted:1", str(ctx))
    err = warned.stderr.decode()
    assert "[LINT] Dockerfile:1 DL3006 warning:" in err and "[LINT] Dockerfile:2 DL3003 warning:" in err
    failed = cli("build", "--lint=error", "-t", "linted:2", str(ctx), check=False)
    assert failed.returncode == 1 and b"Traceback" not in failed.stderr
    assert "Error: Dockerfile: --lint=error and hadolint found 2 problem(s)" in failed.stderr.decode()
    assert cli("images", "-q", "linted:2").stdout.strip() == b""

    cli("tag", "busybox:latest", "busybox:1.36")
    (ctx / "Dockerfile").write_text("FROM busybox:1.36\nWORKDIR /tmp\nRUN echo hi > x\n")
    clean = cli("build", "--lint=error", "-q", "-t", "linted:3", str(ctx))
    assert b"[LINT]" not in clean.stderr
    off = cli("build", "--lint=off", "-q", "-t", "linted:4", str(ctx))
    assert b"[LINT]" not in off.stderr
