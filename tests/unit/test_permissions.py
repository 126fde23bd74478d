"""The closed-root rules (host/permissions.py) on a scratch directory."""

import os
import stat
from pathlib import Path

from dockerbank.config import Config
from dockerbank.host.permissions import close_root, findings, open_to_others, private_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_open_to_others_names_the_extra_bits():
    assert open_to_others(0o40700, 0o700) == 0
    assert open_to_others(0o40755, 0o700) == 0o055
    assert open_to_others(0o100644, 0o600) == 0o044
    assert open_to_others(0o100400, 0o600) == 0


def test_private_dir_creates_and_tightens(tmp_path):
    made = private_dir(tmp_path / "a" / "b")
    assert mode(made) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    private_dir(loose)
    assert mode(loose) == 0o700


def test_write_private_is_0600_even_over_a_loose_leftover(tmp_path):
    target = tmp_path / "config.json"
    leftover = tmp_path / "config.json.tmp"
    leftover.write_text("old")
    os.chmod(leftover, 0o666)
    write_private(target, '{"env": ["PASSWORD=x"]}')
    assert mode(target) == 0o600 and target.read_text() == '{"env": ["PASSWORD=x"]}'
    assert not leftover.exists()


def test_a_loose_root_is_closed_with_its_files(tmp_path):
    config = Config(root=tmp_path / "root", run_root=tmp_path / "run")
    close_root(config)
    assert mode(config.root) == 0o700 and mode(config.run_root) == 0o700
    ctr = config.containers_dir / ("a" * 64)
    ctr.mkdir(parents=True)
    (ctr / "config.json").write_text("{}")
    os.chmod(ctr / "config.json", 0o644)
    config.db_path.write_text("")
    os.chmod(config.db_path, 0o644)
    report = findings(config, repair=False)
    assert any(str(ctr / "config.json") in line for line in report)
    assert any(str(config.db_path) in line for line in report)
    assert mode(config.db_path) == 0o644, "reporting changes nothing"
    os.chmod(config.root, 0o755)
    close_root(config)
    assert mode(config.root) == 0o700 and mode(config.db_path) == 0o600 and mode(ctr / "config.json") == 0o600
    assert findings(config, repair=False) == []
