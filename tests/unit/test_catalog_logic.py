"""The catalog's logic with fakes: every bundled entry loads and validates, settings resolve
(unknown, required, secrets generated or kept), and deploy refuses bad input before writing
anything and takes a failed ``up`` down again (no real engine, no containers)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from dockerbank.catalog.model import Catalog, load_entry
from dockerbank.catalog.service import CatalogService
from dockerbank.catalog.settings import parse_sets, resolve
from dockerbank.errors import Conflict, CorruptData, DockerbankError, InvalidArgument, NotFound, UsageError


def test_every_bundled_entry_loads_with_license_source_volumes_and_backup():
    catalog = Catalog()
    names = catalog.names()
    for wanted in ("postgresql", "mariadb", "orthanc", "redmine", "wordpress", "jupyter", "shiny", "redcap",
                   "nextcloud"):
        assert wanted in names
    for entry in catalog.entries():
        assert entry.license and entry.source and entry.purpose and entry.version
        assert entry.volumes, f"{entry.name} keeps its data in volumes"
        for service in entry.services():
            assert entry.health_of(service) != "none", f"{entry.name}/{service} has a health check"
            assert entry.backup_of(service) in ("pause", "stop", "none") or entry.backup_of(service).startswith("dump: ")
        assert catalog.images_for(entry)
    redcap = catalog.get("redcap")
    assert not redcap.redistributable and redcap.user_files()[0].pattern == "redcap*.zip"
    # an image borrowed from another entry comes with that entry's context
    assert ("postgresql", "dockerbank-catalog/postgresql:15") in {
        (owner.name, image.tag) for owner, image in catalog.images_for(catalog.get("orthanc"))}


def test_unknown_entry_and_broken_metadata_are_one_line(tmp_path):
    with pytest.raises(NotFound, match="no catalog entry 'nope'"):
        Catalog().get("nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "entry.yaml").write_text("name: bad\nlicense: Not-A-License-At-All\nredistributable: true\n")
    (bad / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(CorruptData, match="not an SPDX expression"):
        load_entry(bad)


def test_settings_resolve_unknown_required_secret_kept_and_port():
    entry = Catalog().get("postgresql")
    with pytest.raises(InvalidArgument, match="unknown setting NOPE for postgresql"):
        resolve(entry, {"NOPE": "1"})
    with pytest.raises(InvalidArgument, match="a port is a number"):
        resolve(entry, {"PORT": "http"})
    with pytest.raises(UsageError):
        parse_sets(["lower=1"])
    made = resolve(entry, {"PORT": "6000"}, generate=lambda: "s3cret")
    assert made.env["PORT"] == "6000" and made.env["POSTGRES_DB"] == "research"
    assert made.secrets == {"POSTGRES_PASSWORD": "s3cret"} and made.generated == ["POSTGRES_PASSWORD"]
    again = resolve(entry, {}, kept={"POSTGRES_PASSWORD": "old", "PORT": "6000"}, generate=lambda: "new")
    assert again.secrets["POSTGRES_PASSWORD"] == "old" and not again.generated and again.env["PORT"] == "6000"


class FakeRunner:
    """Compose's part: ``up`` fails with ``fail`` after making the project's volume, as a real
    up whose service never gets healthy does."""

    def __init__(self, engine, fail: str | None = None):
        self.engine = engine
        self.fail = fail
        self.calls: list[tuple] = []

    def up(self, directory: Path, project: str) -> None:
        self.calls.append(("up", project))
        assert (directory / "secrets" / "POSTGRES_PASSWORD").stat().st_mode & 0o777 == 0o600
        if self.fail:
            self.engine.volumes.made.add(f"{project}_data")
            raise DockerbankError(self.fail)

    def down(self, directory: Path, project: str, volumes: bool) -> list[str]:
        self.calls.append(("down", project, volumes))
        return []

    def projects(self) -> set[str]:
        return {"taken"}


class FakeVolumes:
    def __init__(self):
        self.made: set[str] = set()

    def list(self):
        return [SimpleNamespace(name=n) for n in sorted(self.made)]

    def exists(self, name):
        return name in self.made

    def remove(self, name):
        self.made.discard(name)


class FakeImages:
    def __init__(self, tags):
        self.tags = tags

    def resolve(self, ref):
        if ref not in self.tags:
            raise NotFound(f"no image {ref}")
        return SimpleNamespace(id="sha256:" + "a" * 64)


@pytest.fixture
def fake_engine(tmp_path):
    engine = SimpleNamespace()
    engine.config = SimpleNamespace(root=tmp_path / "root", tmp_dir=tmp_path / "root" / "tmp")
    engine.volumes = FakeVolumes()
    engine.images = FakeImages({"dockerbank-catalog/postgresql:15", "debian:latest"})
    return engine


def test_deploy_refuses_before_writing_anything(fake_engine):
    runner = FakeRunner(fake_engine)
    service = CatalogService(fake_engine, runner=runner)
    with pytest.raises(Conflict, match="project taken is already deployed"):
        service.deploy("postgresql", "taken", {})
    with pytest.raises(InvalidArgument, match="unknown setting"):
        service.deploy("postgresql", "lab", {"PASSWORD": "x"})
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Conflict, match=f"port {port} is in use on this host: choose another with --set PORT="):
            service.deploy("postgresql", "lab", {"PORT": str(port)})
    assert not (fake_engine.config.root / "catalog").exists() and runner.calls == []


def test_failed_up_is_taken_down_with_the_volumes_it_made(fake_engine):
    runner = FakeRunner(fake_engine, fail="container lab_db_1 is unhealthy")
    service = CatalogService(fake_engine, runner=runner)
    fake_engine.volumes.made.add("other_data")
    with pytest.raises(DockerbankError, match="deploy of postgresql as lab failed, nothing was left: "
                                              "container lab_db_1 is unhealthy"):
        service.deploy("postgresql", "lab", {"PORT": "25999"})
    assert runner.calls == [("up", "lab"), ("down", "lab", False)]
    assert fake_engine.volumes.made == {"other_data"}
    assert not service.project_dir("lab").exists()


def test_deploy_writes_private_secrets_and_keeps_them_for_a_redeploy(fake_engine):
    runner = FakeRunner(fake_engine)
    service = CatalogService(fake_engine, runner=runner)
    first = service.deploy("postgresql", "lab", {"PORT": "25998"})
    secret = service.project_dir("lab") / "secrets" / "POSTGRES_PASSWORD"
    assert secret.stat().st_mode & 0o777 == 0o600 and first.settings.generated == ["POSTGRES_PASSWORD"]
    assert "PORT='25998'" in (service.project_dir("lab") / ".env").read_text()
    assert service.rm("lab", volumes=True) == []
    second = service.deploy("postgresql", "lab", {})
    assert second.settings.secrets == first.settings.secrets and second.settings.env["PORT"] == "25998"
    service.rm("lab", volumes=True, purge=True)
    assert not service.project_dir("lab").exists()


def test_user_file_missing_wrong_checksum_or_ambiguous(fake_engine, tmp_path):
    service = CatalogService(fake_engine)
    entry = service.catalog.get("redcap")
    wanted = entry.user_files()[0]
    where = fake_engine.config.root / "catalog" / "sources" / "redcap"
    with pytest.raises(NotFound, match=f"redcap needs REDCap's release zip .*: put it into {where}/ or pass --source FILE"):
        service.build("redcap")
    where.mkdir(parents=True)
    zip_path = where / "redcap14.0.0.zip"
    zip_path.write_bytes(b"PK stand-in")
    assert service.user_file(entry, wanted, None, hashlib.sha256(b"PK stand-in").hexdigest()) == zip_path
    with pytest.raises(InvalidArgument, match="its SHA-256 is .* not 00ff: a damaged download"):
        service.user_file(entry, wanted, None, "00ff")
    (where / "redcap15.0.0.zip").write_bytes(b"PK")
    with pytest.raises(InvalidArgument, match="holds 2 files matching redcap\\*.zip"):
        service.user_file(entry, wanted, None, None)
    other = tmp_path / "x.tar"
    other.write_bytes(b"")
    with pytest.raises(InvalidArgument, match="does not look like"):
        service.user_file(entry, wanted, str(other), None)
