import io
import multiprocessing

import pytest

from dockerbank.errors import CorruptData
from dockerbank.image.blobs import BlobStore
from dockerbank.oci import digest as dg
from dockerbank.state.db import MIGRATIONS, Database


def test_schema_is_migrated_once(tmp_path):
    db = Database(tmp_path / "state.db")
    assert db.query_one("PRAGMA user_version")[0] == len(MIGRATIONS)
    db.close()
    again = Database(tmp_path / "state.db")
    assert again.query_one("PRAGMA journal_mode")[0] == "wal"
    again.close()


def test_failed_write_transaction_rolls_back(tmp_path):
    db = Database(tmp_path / "state.db")
    with pytest.raises(RuntimeError):
        with db.write() as conn:
            conn.execute("INSERT INTO volumes (name, created) VALUES ('v', 'now')")
            raise RuntimeError("boom")
    assert db.query("SELECT * FROM volumes") == []


def _open_concurrently(path):
    Database(path).close()


def test_concurrent_first_open_migrates_without_error(tmp_path):
    path = tmp_path / "state.db"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_open_concurrently, [path] * 8)
    assert Database(path).query_one("PRAGMA user_version")[0] == len(MIGRATIONS)


def test_blob_store_verifies_and_leaves_nothing_on_mismatch(tmp_path):
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    digest, size = store.put_stream(io.BytesIO(b"hello"))
    assert digest == dg.of_bytes(b"hello") and size == 5
    assert store.read(digest) == b"hello"
    with pytest.raises(CorruptData):
        store.put_stream(io.BytesIO(b"other"), expected=dg.of_bytes(b"not other"))
    assert store.all_digests() == [digest]
    assert list((tmp_path / "tmp").iterdir()) == []
