"""The rpm inventory: a database made by the real rpm (rpmbuild + rpm --justdb) is read as rpm -qa lists it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import require_binary

pytestmark = pytest.mark.integration

SPEC = """Name: hello-audit
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: a package for the audit test
License: MIT and GPLv2+
BuildArch: noarch
%description
test
%files
"""


def test_rpm_sqlite_database_is_inventoried(engine, busybox, cli, tmp_path):
    from dockerbank.build import context as contexts
    from dockerbank.build.executor import Builder, BuildOptions

    rpmbuild, rpm = require_binary("rpmbuild"), require_binary("rpm")
    top = tmp_path / "rpmtop"
    (top / "SPECS").mkdir(parents=True)
    (top / "SPECS" / "hello.spec").write_text(SPEC)
    subprocess.run([rpmbuild, "--define", f"_topdir {top}", "-bb", str(top / "SPECS" / "hello.spec")],
                   check=True, capture_output=True)
    ctx = tmp_path / "ctx"
    db = ctx / "rpm"
    db.mkdir(parents=True)
    subprocess.run([rpm, "--dbpath", str(db), "--initdb"], check=True, capture_output=True)
    [package] = (top / "RPMS" / "noarch").iterdir()
    subprocess.run([rpm, "--dbpath", str(db), "-i", "--justdb", "--nodeps", str(package)], check=True,
                   capture_output=True)
    listed = subprocess.run([rpm, "--dbpath", str(db), "-qa", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n"],
                            check=True, capture_output=True, text=True).stdout.split()
    (ctx / "os-release").write_text('ID=rocky\nVERSION_ID="9.3"\n')
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY rpm/ /var/lib/rpm/\nCOPY os-release /etc/os-release\n")
    with contexts.from_directory(ctx) as context:
        Builder(engine).build(context, BuildOptions(tags=["rocky-like:1"]))
    cdx = json.loads(cli("sbom", "--format", "cyclonedx-json", "rocky-like:1").stdout)
    assert [[c["name"], c["version"]] for c in cdx["components"]] == [listed]
    [component] = cdx["components"]
    assert component["purl"] == "pkg:rpm/rocky/hello-audit@2:1.2.3-4.el9?arch=noarch&distro=rocky-9.3"
    assert component["licenses"] == [{"expression": "MIT AND GPL-2.0-or-later"}]
