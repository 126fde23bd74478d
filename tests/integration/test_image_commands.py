"""The image commands as users run them: the CLI as a subprocess against a real store."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from dockerbank.oci import digest as dg


@pytest.fixture
def imported(cli, busybox_tar):
    """busybox imported through the CLI, with a CMD, a label and a message."""
    out = cli("import", "-c", 'CMD ["sh"]', "-c", "LABEL team=bio", "-m", "from test", str(busybox_tar), "busybox:1")
    image_id = out.stdout.decode().strip()
    assert dg.is_digest(image_id)
    return image_id


def test_import_variants(cli, busybox_tar, imported):
    again = cli("import", "-", input=busybox_tar.read_bytes()).stdout.decode().strip()
    assert dg.is_digest(again)
    url = cli("import", "http://example.com/rootfs.tar", check=False)
    assert url.returncode != 0 and "offline" in url.stderr.decode()
    missing = cli("import", "/nonexistent.tar", check=False)
    assert missing.returncode == 1 and missing.stderr.decode().startswith("Error: open /nonexistent.tar")
    bad = cli("import", "-c", "FROB x", str(busybox_tar), check=False)
    assert bad.returncode == 1 and "not a valid change command" in bad.stderr.decode()


def test_images_listing_filters_and_formats(cli, imported):
    cli("tag", "busybox:1", "localhost:5000/team/bb:2")
    table = cli("images").stdout.decode().splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    repos = sorted(line.split()[0] for line in table[1:])
    assert repos == ["busybox", "localhost:5000/team/bb"]
    assert cli("images", "-q").stdout.decode().split() == [dg.short_id(imported)] * 2
    assert cli("images", "-q", "--no-trunc", "busybox").stdout.decode().split() == [imported]
    ref = cli("images", "--filter", "reference=localhost:5000/*/*", "--format", "{{.Repository}}:{{.Tag}}")
    assert ref.stdout.decode().split() == ["localhost:5000/team/bb:2"]
    assert cli("images", "-f", "label=team=bio", "-q").stdout.decode().split() == [dg.short_id(imported)] * 2
    assert cli("images", "-f", "label=team=other", "-q").stdout.decode() == ""
    assert cli("images", "-f", "dangling=true", "-q").stdout.decode() == ""
    rows = [json.loads(line) for line in cli("images", "--format", "json").stdout.decode().splitlines()]
    assert {row["Tag"] for row in rows} == {"1", "2"} and all(row["Digest"] == "<none>" for row in rows)
    digests = cli("images", "--digests").stdout.decode().splitlines()[0]
    assert "DIGEST" in digests
    bad = cli("images", "--filter", "colour=red", check=False)
    assert bad.returncode == 1 and "invalid filter 'colour'" in bad.stderr.decode()


def test_inspect_history_and_tag_errors(cli, imported):
    [doc] = json.loads(cli("image", "inspect", "busybox:1").stdout)
    assert doc["Id"] == imported and doc["RepoTags"] == ["busybox:1"]
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Config"]["Labels"] == {"team": "bio"}
    assert set(doc) >= {"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                        "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size",
                        "VirtualSize", "GraphDriver", "RootFS", "Metadata"}
    assert doc["RootFS"]["Layers"] and doc["Size"] > 1_000_000
    assert cli("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", imported[7:19]).stdout.decode().startswith("linux/")
    missing = cli("image", "inspect", "busybox:1", "nope", check=False)
    assert missing.returncode == 1 and "No such image: nope" in missing.stderr.decode()
    assert len(json.loads(missing.stdout)) == 1
    history = cli("history", "busybox:1").stdout.decode().splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"] and "from test" in history[1]
    assert cli("history", "-q", "busybox:1").stdout.decode().split() == [dg.short_id(imported)]
    raw = cli("history", "--human=false", "--format", "{{.Size}}", "busybox:1").stdout.decode().strip()
    assert raw.isdigit()
    bad = cli("tag", "busybox:1", "Bad:Name", check=False)
    assert bad.returncode == 1 and "not a valid repository/tag" in bad.stderr.decode()
    gone = cli("tag", "nosuch", "x:1", check=False)
    assert gone.returncode == 1 and "No such image: nosuch" in gone.stderr.decode()


def _add_container(root, image_id: str, status: str) -> str:
    """A container row as the container service records it (the rmi rules only read image_id and state)."""
    cid = (status * 64)[:64].encode().hex()[:64]
    with sqlite3.connect(root / "state.db") as conn:
        conn.execute("INSERT INTO containers (id, name, image_id, created, config, state) VALUES (?,?,?,?,?,?)",
                     (cid, f"c-{status}", image_id, "2026-01-01T00:00:00Z", "{}", json.dumps({"Status": status})))
    return cid


def test_rmi_rules(cli, root, imported):
    cli("tag", "busybox:1", "busybox:2")
    by_id = cli("rmi", imported[7:19], check=False)
    assert by_id.returncode == 1
    assert "(must be forced) - image is referenced in multiple repositories" in by_id.stderr.decode()
    assert cli("rmi", "busybox:2").stdout.decode() == "Untagged: busybox:2\n"
    cid = _add_container(root, imported, "running")
    refused = cli("rmi", "busybox:1", check=False)
    assert refused.returncode == 1
    assert f'unable to remove repository reference "busybox:1" (must force) - container {cid[:12]}' in \
        refused.stderr.decode()
    hard = cli("rmi", "-f", imported, check=False)
    assert "(cannot be forced) - image is being used by running container" in hard.stderr.decode()
    # a forced untag of the last name leaves the image to its container
    assert cli("rmi", "-f", "busybox:1").stdout.decode() == "Untagged: busybox:1\n"
    assert cli("images", "-q").stdout.decode().split() == [dg.short_id(imported)]


def test_rmi_deletes_layers_and_blobs(cli, root, imported):
    layers_before = list((root / "layers").iterdir())
    assert layers_before
    out = cli("rmi", "busybox:1").stdout.decode().splitlines()
    assert out[0] == "Untagged: busybox:1" and out[1] == f"Deleted: {imported}"
    assert len(out) == 3 and out[2].startswith("Deleted: sha256:")
    assert [p for p in (root / "layers").iterdir()] == []
    assert list((root / "blobs" / "sha256").iterdir()) == []
    missing = cli("rmi", "busybox:1", check=False)
    assert missing.returncode == 1 and "No such image: busybox:1" in missing.stderr.decode()


def test_prune(cli, root, busybox_tar, imported):
    dangling = cli("import", str(busybox_tar), "-c", "ENV A=1").stdout.decode().strip()
    assert cli("images", "-f", "dangling=true", "-q", "--no-trunc").stdout.decode().split() == [dangling]
    assert cli("images", "-f", "since=busybox:1", "-q", "--no-trunc").stdout.decode().split() == [dangling]
    assert cli("images", "-f", f"before={dangling}", "-q", "--no-trunc").stdout.decode().split() == [imported]
    assert cli("image", "prune", "-f", "--filter", "until=1h").stdout.decode().strip() == "Total reclaimed space: 0B"
    no = cli("image", "prune", input=b"n\n")
    assert "WARNING! This will remove all dangling images." in no.stdout.decode()
    assert len(cli("images", "-q").stdout.decode().split()) == 2
    out = cli("image", "prune", "-f").stdout.decode()
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    assert cli("images", "-q", "--no-trunc").stdout.decode().split() == [imported]
    _add_container(root, imported, "exited")
    kept = cli("image", "prune", "-a", "-f").stdout.decode()
    assert kept.strip() == "Total reclaimed space: 0B"


def test_save_stdout_load_stdin_roundtrip(cli, tmp_path, imported):
    archive = cli("save", "busybox:1").stdout
    assert archive[:512].rstrip(b"\0")
    cli("rmi", "busybox:1")
    loaded = cli("load", input=archive).stdout.decode()
    assert loaded == "Loaded image: busybox:1\n"
    out = tmp_path / "oci.tar"
    cli("save", "--format", "oci-archive", "-o", str(out), imported)
    assert cli("load", "-q", "-i", str(out)).stdout.decode() == f"Loaded image ID: {imported}\n"
    broken = tmp_path / "broken.tar"
    broken.write_bytes(archive[: len(archive) // 2])
    failed = cli("load", "-i", str(broken), check=False)
    assert failed.returncode == 1 and failed.stderr.decode().startswith("Error: invalid archive")
    cli("save", "-o", "/dev/null", "busybox:1")  # written into, never renamed over
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    full = cli("save", "-o", "/dev/full", "busybox:1", check=False)
    assert full.returncode == 1 and full.stderr.decode() == "Error: save: No space left on device\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    isdir = cli("save", "-o", str(tmp_path), "busybox:1", check=False)
    assert isdir.returncode == 1 and "is a directory" in isdir.stderr.decode()
    nofile = cli("save", "-o", "/nonexistent/dir/x.tar", "busybox:1", check=False)
    assert nofile.returncode == 1 and "Traceback" not in nofile.stderr.decode()


def test_forced_rmi_keeps_layers_for_a_stopped_container(cli, root, imported):
    cid = _add_container(root, imported, "exited")
    refused = cli("rmi", imported, check=False)
    assert refused.returncode == 1
    assert f"(must be forced) - image is being used by stopped container {cid[:12]}" in refused.stderr.decode()
    out = cli("rmi", "-f", imported).stdout.decode().splitlines()
    assert out == ["Untagged: busybox:1", f"Deleted: {imported}"]  # its layer stays for the container
    assert len(list((root / "layers").iterdir())) == 1
    with sqlite3.connect(root / "state.db") as conn:
        conn.execute("DELETE FROM containers WHERE id = ?", (cid,))
    # the container service releases the image after removing the container...
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.image.remove import release_image

    engine = Engine(Config(root=root, run_root=Path(str(root) + "-run")))
    try:
        report = release_image(engine.images, imported)
    finally:
        engine.close()
    assert [kind for kind, _ in report.items] == ["Deleted"]
    assert list((root / "layers").iterdir()) == [] and list((root / "blobs" / "sha256").iterdir()) == []


def test_prune_sweeps_old_orphan_configs_only(cli, root, imported):
    cid = _add_container(root, imported, "exited")
    cli("rmi", "-f", imported)
    with sqlite3.connect(root / "state.db") as conn:
        conn.execute("DELETE FROM containers WHERE id = ?", (cid,))
    config_blob = root / "blobs" / "sha256" / imported.split(":")[1]
    # ...and without that call, prune collects the orphans once they are older than the grace period
    # (a writer that does not hold the store lock may be about to record young ones)
    [layer_dir] = list((root / "layers").iterdir())
    assert cli("image", "prune", "-f").stdout.decode() == "Total reclaimed space: 0B\n"
    assert config_blob.exists() and layer_dir.exists()
    old = config_blob.stat().st_mtime - 3600
    for path in (config_blob, layer_dir):
        os.utime(path, (old, old))
    pruned = cli("image", "prune", "-f").stdout.decode()
    assert "deleted: sha256:" in pruned and not layer_dir.exists()
    assert not config_blob.exists()
