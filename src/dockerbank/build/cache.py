"""Queries over the build cache table for other commands (``images``, ``history``, ``rmi``).

Every build step records ``key -> image_id`` with the image the step started from
(``parent``), like docker's parent links between a build's intermediate images.
"""

from __future__ import annotations


def intermediate_image_ids(db) -> set[str]:
    """Untagged images a build step made and another step built on: what ``images`` hides without ``-a``."""
    rows = db.query(
        "SELECT DISTINCT c.parent AS id FROM build_cache c WHERE c.parent IS NOT NULL "
        "AND c.parent IN (SELECT image_id FROM build_cache) "
        "AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.image_id = c.parent)"
    )
    return {row["id"] for row in rows}


def parent_of(db, image_id: str) -> str | None:
    """The image a build step started from to make ``image_id`` (docker's ``Parent``), or None."""
    row = db.query_one(
        "SELECT parent FROM build_cache WHERE image_id = ? AND parent IS NOT NULL ORDER BY created DESC LIMIT 1",
        (image_id,),
    )
    return row["parent"] if row else None


def history_ids(db, image_id: str, count: int) -> list[str | None]:
    """Image IDs for ``count`` history rows, newest first, as far as build parents are known
    (docker's ``history`` shows them; rows before the first built step stay None = ``<missing>``)."""
    ids: list[str | None] = [image_id]
    current = image_id
    while len(ids) < count:
        current = parent_of(db, current)
        if current is None:
            break
        ids.append(current)
    return ids + [None] * (count - len(ids))
