"""``backup schedule``: the cron file (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockerbank.backup.schedule import ScheduleOptions, cron_file, install
from dockerbank.errors import InvalidArgument


def _opts(**kw) -> ScheduleOptions:
    base = dict(name="nightly", cron="15 3 * * *", what=["pgdata", "--all"], repo="/mnt/backup",
                password_file="/root/pw", copy_to="oci://reg:5000/bk/host1", keep_daily=7)
    base.update(kw)
    return ScheduleOptions(**base)


def test_cron_line_runs_create_then_prune_then_copy_under_flock():
    text = cron_file(_opts(), Path("/var/lib/db"), Path("/run/db"), python="/opt/venv/bin/python")
    line = [x for x in text.splitlines() if x and not x.startswith("#") and "=" not in x.split()[0]]
    assert len(line) == 1
    assert line[0].startswith("15 3 * * * root flock -n /run/lock/nightly.lock sh -c ")
    job = line[0]
    create, prune, copy = job.index("backup create pgdata --all"), job.index("backup prune"), job.index("backup copy")
    assert create < prune < copy and job.count(" && ") == 2
    assert "--keep-daily 7" in job and "--from-password-file /root/pw" in job and "--password-file /root/pw" in job
    assert "--root /var/lib/db --runroot /run/db" in job and job.endswith(">> /var/log/nightly.log 2>&1")


def test_percent_signs_are_escaped_for_cron():
    text = cron_file(_opts(repo="/mnt/100%"), Path("/r"), Path("/run"))
    assert "100\\%" in text and "100%" not in text.replace("100\\%", "")


@pytest.mark.parametrize("bad", [dict(cron="* * *"), dict(cron="1 2 3 4 5; rm"), dict(name="a.b"),
                                 dict(repo=""), dict(what=[]), dict(keep_last=-1)])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(InvalidArgument):
        cron_file(_opts(**bad), Path("/r"), Path("/run"))


def test_install_writes_a_file_cron_accepts(tmp_path):
    path = install("x\n", "nightly", tmp_path / "cron.d")
    assert path.read_text() == "x\n" and (path.stat().st_mode & 0o777) == 0o644
