"""engine.stateversion over a plain SQLite file and a fake exit handler: when there is a
version, what moves it and what does not."""

from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

from dockerbank.engine.stateversion import StateVersion


def _commit(path, value: int) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    conn.close()


def test_the_version_moves_with_commits_exits_and_a_replaced_file(tmp_path):
    db = tmp_path / "db.sqlite"
    handler = SimpleNamespace(guard=None, seen_exits=0)
    version = StateVersion(db, lambda: handler)
    assert version.current() is None                    # the handler does not hold its lock
    handler.guard = tmp_path / "lock"
    assert version.current() is None                    # no database yet (and none is created)
    assert not db.exists()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.close()
    first = version.current()
    assert first is not None and version.current() == first   # nothing changed: the same
    _commit(db, 1)
    second = version.current()
    assert second != first and version.current() == second
    handler.seen_exits += 1                             # a conmon exit, no row changed yet
    third = version.current()
    assert third != second
    replacement = tmp_path / "new.sqlite"
    conn = sqlite3.connect(replacement)
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.close()
    os.replace(replacement, db)                        # a restored database file
    assert version.current() not in (None, third)
    version.close()


def test_no_version_without_a_handler(tmp_path):
    assert StateVersion(tmp_path / "db", lambda: None).current() is None
