"""``dockerbank catalog`` on real stacks: PostgreSQL deployed, healthy, queried by the host's psql
over its published port with the generated password, backed up, removed with its volumes,
restored and queried again; Orthanc (index in PostgreSQL) stores a DICOM file made here with
pydicom through its REST API and finds it again after backup, ``rm -v`` and restore; REDCap's
build says which zip is missing, refuses a wrong checksum, builds from a stand-in zip, is
labelled non-redistributable and cannot be pushed to a public registry.

The entries' images (Debian by debootstrap + apt in ``dockerbank build``) are built once into a
``save`` archive cached under CACHE_DIR by the hash of their build contexts; the module shares one
root loaded from it, each test deploying its own project.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import stat
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, require_binary, run_cli

pytestmark = pytest.mark.integration

ENTRIES = Path(__file__).resolve().parents[2] / "src" / "dockerbank" / "catalog" / "entries"
# the images the tests need, by the build contexts that make them
CONTEXTS = ["postgresql/image", "mariadb/image", "orthanc/image", "redcap/php-apache", "redmine/image",
            "wordpress/image", "jupyter/image", "shiny/image"]
IMAGES = ["dockerbank-catalog/postgresql:15", "dockerbank-catalog/mariadb:10.11", "dockerbank-catalog/orthanc:1.10",
          "dockerbank-catalog/php-apache:8.2", "dockerbank-catalog/redmine:5.0", "dockerbank-catalog/wordpress:6.1",
          "dockerbank-catalog/jupyter:6.4", "dockerbank-catalog/shiny:1.7"]


def _standin_zip(path: Path, text: str = "REDCap stand-in") -> Path:
    """A zip shaped like REDCap's release (``redcap/index.php`` at its top)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("redcap/index.php", f'<?php echo "{text}";\n')
    return path


def _contexts_key() -> str:
    digest = hashlib.sha256()
    for context in CONTEXTS:
        for path in sorted((ENTRIES / context).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(ENTRIES)).encode() + b"\0" + path.read_bytes())
    digest.update((ENTRIES / "redcap" / "entry.yaml").read_bytes())   # the base image's labels
    for lock in sorted(ENTRIES.glob("*/packages.lock")):                # the pinned versions
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def catalog_archive(tmp_path_factory) -> Path:
    """A ``save`` archive of the catalog images the tests use, built once (minutes) and cached."""
    import fcntl

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"catalog-{_contexts_key()}.tar"
    with open(CACHE_DIR / "catalog.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        work = tmp_path_factory.mktemp("catalog-images")
        build_root = work / "root"
        build_root.mkdir()
        run_cli(build_root, "base-image", "debian", "--cache", str(CACHE_DIR), timeout=1800)
        for name in ("postgresql", "mariadb", "orthanc", "redmine", "wordpress", "jupyter", "shiny"):
            run_cli(build_root, "catalog", "build", "-q", name, timeout=1800)
        # REDCap's Apache+PHP base comes with a stand-in build; the stand-in itself is not kept
        run_cli(build_root, "catalog", "build", "-q", "redcap", "--source", str(_standin_zip(work / "redcap0.zip")),
                timeout=1800)
        run_cli(build_root, "rmi", "dockerbank-catalog/redcap:local")
        partial = path.with_name(path.name + ".partial")
        run_cli(build_root, "save", "-o", str(partial), *IMAGES, timeout=600)
        os.replace(partial, path)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, catalog_archive):
    """A root holding the catalog's images (shared by this module's tests) and a CLI on it."""
    require_binary("conmon")
    root = tmp_path_factory.mktemp("catalog") / "root"
    root.mkdir()
    run_cli(root, "load", "-i", str(catalog_archive), timeout=600)

    def cli(*args: str, **kwargs):
        return run_cli(root, *args, **kwargs)

    cli.root = root
    yield cli
    left = run_cli(root, "ps", "-aq", "--no-trunc", check=False).stdout.decode().split()
    if left:
        run_cli(root, "rm", "-f", "-v", *left, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _error(result) -> str:
    """The one line a failed command printed."""
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode != 0 and lines, result
    return lines[-1]


def _health(cli, name: str) -> str:
    return json.loads(cli("inspect", name).stdout)[0]["State"]["Health"]["Status"]


def _snapshot(cli, repo: Path) -> str:
    return cli("backup", "ls", "--repo", str(repo)).stdout.decode().strip().splitlines()[-1].split()[0]


def _psql(port: int, password: str, query: str) -> str:
    import subprocess

    done = subprocess.run([require_binary("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "research",
                           "-d", "research", "-qAt", "-c", query], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5"))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_postgresql_deploys_answers_sql_and_comes_back_from_its_backup(lab, tmp_path):
    listing = lab("catalog", "ls").stdout.decode()
    assert "postgresql" in listing and "redcap" in listing and "LicenseRef-REDCap" in listing
    shown = lab("catalog", "show", "postgresql").stdout.decode()
    assert "license:          PostgreSQL (redistributable)" in shown and "dump: pg_dumpall -U postgres" in shown
    # the exact versions, from the lock the image was built from (its digest is the image's label)
    lock = (ENTRIES / "postgresql" / "packages.lock").read_text()
    version = next(line.split("=", 1)[1] for line in lock.splitlines() if line.startswith("postgresql-15="))
    assert "pinned (dockerbank-catalog/postgresql:15): " in shown and f"\n    postgresql-15={version}\n" in shown
    labels = json.loads(lab("image", "inspect", "dockerbank-catalog/postgresql:15").stdout)[0]["Config"]["Labels"]
    assert labels["org.dockerbank.catalog.lock"] == "sha256:" + hashlib.sha256(lock.encode()).hexdigest()
    port = _free_port()
    # bad input refuses with one line and creates nothing
    assert _error(lab("catalog", "deploy", "postgresql", "-p", "lab", "--set", "PASWORD=x", check=False)) == (
        "Error: unknown setting PASWORD for postgresql (its settings: PORT, POSTGRES_USER, POSTGRES_DB, "
        "POSTGRES_PASSWORD; see `dockerbank catalog show postgresql`)")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert _error(lab("catalog", "deploy", "postgresql", "-p", "lab", "--set", f"PORT={taken}", check=False)) == (
            f"Error: port {taken} is in use on this host: choose another with --set PORT=PORT")
    assert not lab("ps", "-aq").stdout.strip() and not lab("volume", "ls", "-q").stdout.strip()
    assert not (lab.root / "catalog" / "projects" / "lab").exists()

    started = time.monotonic()
    assert lab("catalog", "deploy", "postgresql", "-p", "lab", "--set", f"PORT={port}").stdout.decode() == "lab\n"
    assert time.monotonic() - started < 60
    assert _health(lab, "lab_db_1") == "healthy"
    secret = lab.root / "catalog" / "projects" / "lab" / "secrets" / "POSTGRES_PASSWORD"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text()
    assert "POSTGRES_PASSWORD" not in json.dumps(json.loads(lab("inspect", "lab_db_1").stdout)[0]["Config"]["Env"])
    _psql(port, password, "create table samples (id text primary key, taken date)")
    _psql(port, password, "insert into samples values ('S-001', '2026-01-02'), ('S-002', '2026-01-03')")
    assert _error(lab("catalog", "deploy", "postgresql", "-p", "lab", check=False)).startswith(
        "Error: project lab is already deployed")
    # a normal compose project
    assert "(healthy)" in lab("compose", "-p", "lab", "-f", str(secret.parents[1] / "compose.yaml"),
                              "ps").stdout.decode()

    repo = tmp_path / "repo"
    lab("backup", "create", "--stack", "lab", "--repo", str(repo))
    deployed = lab("catalog", "ls", "--deployed").stdout.decode().splitlines()
    assert [line.split() for line in deployed[1:]] == [["lab", "postgresql", "15", "deployed"]]
    lab("catalog", "rm", "-v", "lab")
    assert "lab_data" not in lab("volume", "ls", "-q").stdout.decode()
    assert "removed (settings kept)" in lab("catalog", "ls", "--deployed").stdout.decode()
    restored = lab("restore", "--repo", str(repo), _snapshot(lab, repo)).stdout.decode()
    assert "restored dump lab_db_1" in restored and "restored network lab_default" in restored
    assert _psql(port, password, "select string_agg(id, ',' order by id) from samples") == "S-001,S-002"
    lab("catalog", "rm", "-v", "--purge", "lab")
    assert not secret.parent.exists()


def _mariadb(lab, container: str, password: str, query: str) -> str:
    """A query as the entry's application user, over TCP inside the container (the host has no client)."""
    return lab("exec", container, "mariadb", "-h", "127.0.0.1", "-u", "research", f"-p{password}", "research",
               "-N", "-B", "-e", query).stdout.decode().strip()


def test_mariadb_deploys_answers_sql_and_comes_back_from_its_backup(lab, tmp_path):
    port = _free_port()
    assert lab("catalog", "deploy", "mariadb", "-p", "mlab", "--set", f"PORT={port}").stdout.decode() == "mlab\n"
    assert _health(lab, "mlab_db_1") == "healthy"
    secret = lab.root / "catalog" / "projects" / "mlab" / "secrets" / "MARIADB_PASSWORD"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text()
    _mariadb(lab, "mlab_db_1", password, "create table samples (id varchar(16) primary key); "
                                         "insert into samples values ('S-001'), ('S-002')")
    repo = tmp_path / "repo"
    lab("backup", "create", "--stack", "mlab", "--repo", str(repo))
    lab("catalog", "rm", "-v", "mlab")
    assert "mlab_data" not in lab("volume", "ls", "-q").stdout.decode()
    restored = lab("restore", "--repo", str(repo), _snapshot(lab, repo)).stdout.decode()
    assert "restored dump mlab_db_1" in restored
    assert _mariadb(lab, "mlab_db_1", password, "select group_concat(id order by id) from samples") == "S-001,S-002"
    lab("catalog", "rm", "-v", "--purge", "mlab")


def _orthanc(port: int, password: str, method: str, path: str, data: bytes | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
    with urllib.request.urlopen(request, timeout=15) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


def _dicom() -> tuple[bytes, str]:
    """A small secondary-capture DICOM file made here, and its SOP instance UID."""
    from pydicom import dcmwrite
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "Catalog^Test", "CAT-0001", "OT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation, ds.PixelData = 7, 0, bytes([0, 64, 128, 255])
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue(), str(ds.SOPInstanceUID)


def test_orthanc_stores_a_dicom_file_and_finds_it_after_backup_and_restore(lab, tmp_path):
    http, dicom = _free_port(), _free_port()
    lab("catalog", "deploy", "orthanc", "-p", "pacs", "--set", f"HTTP_PORT={http}", "--set", f"DICOM_PORT={dicom}")
    assert _health(lab, "pacs_orthanc_1") == "healthy" and _health(lab, "pacs_index_1") == "healthy"
    project = lab.root / "catalog" / "projects" / "pacs"
    password = (project / "secrets" / "ORTHANC_PASSWORD").read_text()
    data, uid = _dicom()
    stored = _orthanc(http, password, "POST", "/instances", data)
    assert stored["Status"] == "Success"
    query = json.dumps({"Level": "Instance", "Query": {"SOPInstanceUID": uid}}).encode()
    assert _orthanc(http, password, "POST", "/tools/find", query) == [stored["ID"]]
    # the index really is in PostgreSQL
    assert lab("exec", "pacs_index_1", "psql", "-qAt", "-U", "postgres", "-d", "orthanc", "-c",
               "select count(*) from resources").stdout.decode().strip() == "4"   # patient, study, series, instance

    repo = tmp_path / "repo"
    lab("backup", "create", "--stack", "pacs", "--repo", str(repo))
    lab("catalog", "rm", "-v", "pacs")
    lab("restore", "--repo", str(repo), _snapshot(lab, repo))
    # the restored stack is a compose project: up converges it (the index runs already, Orthanc starts)
    lab("compose", "-p", "pacs", "-f", str(project / "compose.yaml"), "up", "-d", "--wait")
    assert _orthanc(http, password, "POST", "/tools/find", query) == [stored["ID"]]
    assert _orthanc(http, password, "GET", f"/instances/{stored['ID']}/file") == data
    lab("catalog", "rm", "-v", "--purge", "pacs")


def test_redcap_build_needs_its_zip_and_its_image_stays_private(lab, tmp_path):
    sources = lab.root / "catalog" / "sources" / "redcap"
    assert _error(lab("catalog", "build", "redcap", check=False)) == (
        f"Error: redcap needs REDCap's release zip (redcap*.zip, from https://projectredcap.org (your "
        f"institution's REDCap license)): put it into {sources}/ or pass --source FILE")
    sources.mkdir(parents=True)
    zip_path = _standin_zip(sources / "redcap14.5.0.zip")
    assert "its SHA-256 is" in _error(lab("catalog", "build", "redcap", "--sha256", "0" * 64, check=False))
    assert lab("images", "-q", "dockerbank-catalog/redcap:local").stdout.strip() == b""
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    built = lab("catalog", "build", "-q", "redcap", "--sha256", digest).stdout.decode()
    assert "dockerbank-catalog/redcap:local" in built and "(built)" in built
    assert "dockerbank-catalog/php-apache:8.2" in built and "(present)" in built
    labels = json.loads(lab("image", "inspect", "dockerbank-catalog/redcap:local").stdout)[0]["Config"]["Labels"]
    assert labels["org.dockerbank.redistributable"] == "false"
    assert labels["org.opencontainers.image.licenses"] == "LicenseRef-REDCap"
    # the zip's content is in the image
    assert lab("run", "--rm", "--network", "none", "dockerbank-catalog/redcap:local", "cat",
               "/var/www/html/redcap/index.php").stdout.decode().startswith("<?php")
    audit = lab("audit", "image", "dockerbank-catalog/redcap:local", check=False).stdout.decode()
    assert "not-redistributable" in audit and "org.dockerbank.redistributable=false" in audit
    lab("tag", "dockerbank-catalog/redcap:local", "docker.io/mylab/redcap:14.5.0")
    refused = _error(lab("push", "docker.io/mylab/redcap:14.5.0", check=False))
    assert "refusing to push" in refused and "org.dockerbank.redistributable=false" in refused
    lab("rmi", "docker.io/mylab/redcap:14.5.0", "dockerbank-catalog/redcap:local")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:   # follows redirects
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# entry, its port setting, the path of its front page, what the page must show, its service
FRONT_PAGES = [
    ("wordpress", "HTTP_PORT", "/", "WordPress &rsaquo; Installation", "wordpress"),   # install page: the DB answers
    ("redmine", "HTTP_PORT", "/", "<title>Redmine</title>", "redmine"),           # after migrations on PostgreSQL
    ("jupyter", "HTTP_PORT", "/api", '"version": "6.4', "notebook"),
    ("shiny", "HTTP_PORT", "/", "Dockerbank catalog: Shiny", "shiny"),             # the example app runs in R
]


@pytest.mark.parametrize("name,setting,path,shows,service", FRONT_PAGES, ids=[f[0] for f in FRONT_PAGES])
def test_web_entry_deploys_healthy_and_answers_its_front_page(lab, name, setting, path, shows, service):
    port = _free_port()
    project = f"web{name}"
    lab("catalog", "deploy", name, "-p", project, "--set", f"{setting}={port}", timeout=600)
    try:
        assert _health(lab, f"{project}_{service}_1") == "healthy"
        status, body = _get(f"http://127.0.0.1:{port}{path}")
        assert status == 200 and shows in body, body[:300]
        if name == "jupyter":   # the API beyond /api wants the generated token
            token = (lab.root / "catalog" / "projects" / project / "secrets" / "TOKEN").read_text()
            assert _get(f"http://127.0.0.1:{port}/api/contents")[0] == 403
            assert _get(f"http://127.0.0.1:{port}/api/contents?token={token}")[0] == 200
    finally:
        lab("catalog", "rm", "-v", "--purge", project)
