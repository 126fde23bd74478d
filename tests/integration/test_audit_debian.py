"""Inventory and SBOM of a debootstrap Debian image: exactly the packages dpkg-query lists, OSV matching."""

from __future__ import annotations

import json
import subprocess

import pytest

from dockerbank.image.importer import import_rootfs

pytestmark = pytest.mark.integration


@pytest.fixture
def debian(engine, debian_tar):
    with open(debian_tar, "rb") as handle:
        return import_rootfs(engine.images, handle, "debian:bookworm", ('CMD ["bash"]',))


def dpkg_query(engine, image) -> dict[str, str]:
    """What Debian's own dpkg-query lists from the image's dpkg database (host dpkg, --admindir)."""
    from tests.conftest import require_binary

    top = engine.images.layers.diff_dir(engine.images.get(image.id).top_chain)
    out = subprocess.run([require_binary("dpkg-query"), f"--admindir={top}/var/lib/dpkg", "-W",
                          "-f", "${Package}\t${Version}\n"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("\t") for line in out.splitlines())


def test_sbom_lists_what_dpkg_query_lists_and_osv_matches_versions(engine, debian, cli, tmp_path):
    expected = dpkg_query(engine, debian)
    assert len(expected) > 50
    cdx = json.loads(cli("sbom", "debian:bookworm", "--format", "cyclonedx-json").stdout)
    assert {c["name"]: c["version"] for c in cdx["components"]} == expected
    assert all(c["purl"].startswith("pkg:deb/debian/") for c in cdx["components"])
    spdx = json.loads(cli("sbom", "debian:bookworm", "--format", "spdx-json").stdout)
    assert {p["name"]: p["versionInfo"] for p in spdx["packages"] if p["SPDXID"] != "SPDXRef-Image"} == expected
    assert any(p.get("licenseDeclared", "NOASSERTION") != "NOASSERTION" for p in spdx["packages"])

    db = tmp_path / "osv"
    db.mkdir()
    installed = expected["libzstd1"]

    def entry(ident: str, version: str) -> dict:
        return {"id": ident, "summary": "planted", "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "libzstd"}, "versions": [version]}]}

    (db / "hit.json").write_text(json.dumps(entry("DSA-PLANTED-1", installed)))
    (db / "miss.json").write_text(json.dumps(entry("DSA-PLANTED-2", installed + "+other1")))
    report = json.loads(cli("audit", "image", "--format", "json", "--vuln-db", str(db), "debian:bookworm").stdout)
    vulns = [f for f in report["Findings"] if f["rule"] == "vulnerability"]
    assert [(f["where"], f["detail"].split(":")[0]) for f in vulns] == [
        (f"deb libzstd1 {installed}", "DSA-PLANTED-1")]
    without = json.loads(cli("audit", "image", "--format", "json", "debian:bookworm").stdout)
    assert not [f for f in without["Findings"] if f["rule"] == "vulnerability"]


def test_corrupt_dpkg_status_is_a_finding_and_refuses_the_sbom(engine, busybox, cli, tmp_path):
    from dockerbank.build import context as contexts
    from dockerbank.build.executor import Builder, BuildOptions

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "status").write_bytes(b"Package: a\n\x00\x01 binary garbage \xff\xfe\n" * 10)
    (ctx / "big.txt").write_bytes(b"harmless line of text\n" * (300_000))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY status /var/lib/dpkg/status\nCOPY big.txt /srv/big.txt\n")
    with contexts.from_directory(ctx) as context:
        Builder(engine).build(context, BuildOptions(tags=["broken:1"]))
    report = cli("audit", "image", "--format", "json", "broken:1")
    data = json.loads(report.stdout)
    assert data["Complete"] is False
    unreadable = [f for f in data["Findings"] if f["rule"] == "unreadable"]
    assert [f["where"] for f in unreadable] == ["/var/lib/dpkg/status"]
    assert "binary content" in unreadable[0]["detail"]
    assert [f["rule"] for f in data["Findings"] if "big.txt" in f["detail"]] == ["unscanned-file"]
    refused = cli("sbom", "broken:1", check=False)
    assert refused.returncode == 1 and b"Traceback" not in refused.stderr
    assert refused.stderr.decode().startswith("Error: cannot produce a complete SBOM of")
