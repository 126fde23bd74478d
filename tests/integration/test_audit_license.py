"""A REDCap-like build: a context with a licensed-source marker is labelled and its push to a public registry refused."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_licensed_source_is_labelled_shown_by_audit_and_kept_from_public_registries(cli, busybox, server, tmp_path):
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    ctx = tmp_path / "redcap"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "redcap14.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (ctx / "src" / ".dockerbank-license").write_text("REDCap end-user license: no redistribution\n")
    (ctx / ".dockerignore").write_text("**/.dockerbank-license\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY src/redcap14.zip /opt/redcap/\n")
    name = f"{server.address}/clinic/redcap:14"
    built = cli("build", "-t", name, str(ctx)).stdout.decode()
    assert "[LICENSE]: licensed source (src/.dockerbank-license)" in built
    labels = json.loads(cli("image", "inspect", "--format", "{{json .Config.Labels}}", name).stdout)
    assert labels["org.dockerbank.redistributable"] == "false"
    report = json.loads(cli("audit", "image", "--format", "json", name).stdout)
    assert [f["rule"] for f in report["Findings"] if f["rule"] == "not-redistributable"] == ["not-redistributable"]

    refused = cli("push", name, check=False, env=env)
    err = refused.stderr.decode()
    assert refused.returncode == 1 and "Traceback" not in err
    assert "org.dockerbank.redistributable=false" in err and f"{server.address} is not a private registry" in err

    # the same build without the marker is an ordinary image
    (ctx / "src" / ".dockerbank-license").unlink()
    plain = f"{server.address}/clinic/tool:1"
    cli("build", "-q", "-t", plain, str(ctx))
    labels = json.loads(cli("image", "inspect", "--format", "{{json .Config.Labels}}", plain).stdout) or {}
    assert "org.dockerbank.redistributable" not in labels
    cli("push", "-q", plain, env=env)


def test_a_component_licensed_against_redistribution_labels_the_build(cli, busybox, server, tmp_path):
    """No marker, but the image ships an npm package that is UNLICENSED (npm's "no rights
    granted"): the build labels the image itself, and the push policy keeps it in the house."""
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    ctx = tmp_path / "viewer"
    package = ctx / "node_modules" / "@lab" / "viewer"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@lab/viewer", "version": "2.0.1",
                                                      "license": "UNLICENSED"}))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY node_modules /usr/lib/node_modules\n")
    name = f"{server.address}/clinic/viewer:2"
    built = cli("build", "-t", name, str(ctx)).stdout.decode()
    assert "[LICENSE]: npm @lab/viewer 2.0.1: a license that forbids redistribution" in built
    labels = json.loads(cli("image", "inspect", "--format", "{{json .Config.Labels}}", name).stdout)
    assert labels["org.dockerbank.redistributable"] == "false"
    refused = cli("push", name, check=False, env=env)
    assert refused.returncode == 1 and "org.dockerbank.redistributable=false" in refused.stderr.decode()

    # the same package under MIT is an ordinary image, pushed as usual
    (package / "package.json").write_text(json.dumps({"name": "@lab/viewer", "version": "2.0.1", "license": "MIT"}))
    plain = f"{server.address}/clinic/viewer:2-mit"
    assert "[LICENSE]" not in cli("build", "-t", plain, str(ctx)).stdout.decode()
    labels = json.loads(cli("image", "inspect", "--format", "{{json .Config.Labels}}", plain).stdout) or {}
    assert "org.dockerbank.redistributable" not in labels
    cli("push", "-q", plain, env=env)
