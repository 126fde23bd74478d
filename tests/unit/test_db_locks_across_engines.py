"""Opening a second Engine in a process must not drop the SQLite locks of the first: closing
any descriptor of a file releases every POSIX lock the process holds on it, and another
process then writes into a transaction in progress (a corrupt database)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from dockerbank.host.permissions import create_private_file


def test_create_private_file_keeps_the_locks_of_open_connections(tmp_path):
    path = tmp_path / "state.db"
    create_private_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO t VALUES (1)")
    create_private_file(path)  # what each new Engine does first
    other = subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0);"
                            " c.execute('INSERT INTO t VALUES (2)'); c.commit()", str(path)],
                           capture_output=True, timeout=30)
    assert other.returncode != 0 and b"locked" in other.stderr  # the lock still holds
    conn.execute("COMMIT")
    path.chmod(0o644)
    create_private_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
