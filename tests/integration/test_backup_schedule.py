"""``backup schedule``: the installed cron job, run as cron would run it, backs up, prunes by the
keep rules and copies off-site; a wrong passphrase is refused when scheduling, not at night."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_cli


def _job(cron_file: Path) -> str:
    line = [x for x in cron_file.read_text().splitlines() if x[:1].isdigit()][0]
    command = line.split(None, 6)[6]            # after the five time fields and the user
    return command.replace("\\%", "%")           # what cron hands to /bin/sh


def test_scheduled_job_backs_up_prunes_and_copies(root, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("nightly\n")
    local, offsite = tmp_path / "local", tmp_path / "offsite"
    run_cli(root, "backup", "init", "--encrypt", "--repo", str(local), "--password-file", str(pw))
    run_cli(root, "volume", "create", "labdata")
    mount = Path(json.loads(run_cli(root, "volume", "inspect", "labdata").stdout)[0]["Mountpoint"])
    (mount / "a").write_text("first")

    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    refused = run_cli(root, "backup", "schedule", "labdata", "--repo", str(local), "--password-file", str(bad),
                      "--cron-dir", str(tmp_path / "cron.d"), check=False)
    assert refused.returncode == 1 and b"wrong passphrase" in refused.stderr
    assert not (tmp_path / "cron.d").exists()

    out = run_cli(root, "backup", "schedule", "labdata", "--repo", str(local), "--password-file", str(pw),
                  "--copy-to", str(offsite), "--keep-last", "1", "--name", "lab-nightly",
                  "--cron-dir", str(tmp_path / "cron.d"), "--log-dir", str(tmp_path / "log"))
    cron = tmp_path / "cron.d" / "lab-nightly"
    assert out.stdout.decode().strip() == f"installed {cron}"
    (tmp_path / "log").mkdir()
    for content in ("first", "second"):
        (mount / "a").write_text(content)
        subprocess.run(["sh", "-c", _job(cron)], check=True, timeout=120)
    env = {"DOCKERBANK_BACKUP_PASSWORD": "nightly"}
    kept = run_cli(root, "backup", "ls", "-q", "--repo", str(local), env=env).stdout.split()
    copied = run_cli(root, "backup", "ls", "-q", "--repo", str(offsite), env=env).stdout.split()
    assert len(kept) == 1 and len(copied) == 2 and kept[0] in copied, (kept, copied)
    assert "copied" in (tmp_path / "log" / "lab-nightly.log").read_text()
