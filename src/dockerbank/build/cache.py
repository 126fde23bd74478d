"""The legacy builder's step cache (the ``build_cache`` table): pruned by ``docker builder prune``
and ``docker system prune`` (``POST /build/prune``).

The cache rows name images, which hold the space; the rows themselves hold none. A prune drops
the rows whose image is gone (``all``: every row, so the next build runs each step again); the
images go with ``image prune`` as in docker's legacy builder.
"""

from __future__ import annotations


def prune(db, all_entries: bool = False) -> list[str]:
    """Drop cache entries (``all_entries``: every one, else those whose image is gone); their keys."""
    with db.write() as conn:
        if all_entries:
            rows = conn.execute("SELECT key FROM build_cache WHERE key NOT LIKE 'file:%'").fetchall()
        else:
            rows = conn.execute("SELECT key FROM build_cache WHERE key NOT LIKE 'file:%' AND image_id NOT IN "
                                "(SELECT id FROM images)").fetchall()
        keys = [r["key"] for r in rows]
        conn.executemany("DELETE FROM build_cache WHERE key = ?", [(k,) for k in keys])
    return keys
