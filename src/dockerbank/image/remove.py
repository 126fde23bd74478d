"""``rmi`` and ``image prune``: docker's rules for untagging and deleting, then garbage collection.

Deleting an image removes its row and names first, then every layer and blob nothing
else needs: not another image, and not a container (a container keeps the layers of its
image even when a forced ``rmi`` removed the image, as in docker). Garbage collection
holds the store lock exclusively, so it never races a load that has stored layers but
not yet recorded their image.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dockerbank.errors import Conflict, InvalidArgument
from dockerbank.image.store import ImageRecord, ImageStore
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs

_RUNNING_STATES = {"running", "paused", "restarting"}


@dataclass
class Report:
    """What a removal did, in docker's order: ``("Untagged", name)`` and ``("Deleted", id)`` items."""

    items: list[tuple[str, str]] = field(default_factory=list)
    reclaimed: int = 0

    def untagged(self, name: str) -> None:
        self.items.append(("Untagged", name))

    def deleted(self, ident: str) -> None:
        self.items.append(("Deleted", ident))


def _is_running(state_json: str) -> bool:
    try:
        state = json.loads(state_json or "{}")
    except ValueError:
        return False
    if not isinstance(state, dict):
        return False
    status = str(state.get("Status") or state.get("status") or "").lower()
    return bool(state.get("Running") or state.get("running")) or status in _RUNNING_STATES


def containers_using(store: ImageStore, image_id: str) -> list[tuple[str, bool]]:
    """(container ID, running?) for every container created from ``image_id``."""
    rows = store.db.query(
        "SELECT id, state FROM containers WHERE image_id IN (?, ?) ORDER BY created",
        (image_id, dg.hex_of(image_id)),
    )
    return [(row["id"], _is_running(row["state"])) for row in rows]


def _references(record: ImageRecord) -> list[refs.Reference]:
    return [refs.parse(t) for t in record.tags] + [refs.parse(d) for d in record.repo_digests]


def _is_single_reference(references: list[refs.Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and every reference in one repository."""
    if len(references) <= 1:
        return len(references) == 1
    single = None
    repos = set()
    for ref in references:
        if ref.digest:
            repos.add(ref.repository)
        elif single is None:
            repos.add(ref.repository)
            single = ref
        else:
            return False
    single = single or references[0]
    return len(repos) == 1 and single.repository in repos


def _is_id_prefix(image_id: str, name: str) -> bool:
    return image_id.startswith(name) or image_id.split(":", 1)[1].startswith(name)


def _conflict(image_id: str, hard: bool, message: str) -> Conflict:
    forced = "cannot be forced" if hard else "must be forced"
    return Conflict(f"conflict: unable to delete {dg.short_id(image_id)} ({forced}) - {message}")


def _check_conflicts(store: ImageStore, record: ImageRecord, *, soft: bool, active_reference: bool) -> Conflict | None:
    users = containers_using(store, record.id)
    running = [cid for cid, is_running in users if is_running]
    if running:
        return _conflict(record.id, True, f"image is being used by running container {running[0][:12]}")
    if soft and active_reference and (record.tags or record.repo_digests):
        return _conflict(record.id, False, "image is referenced in multiple repositories")
    stopped = [cid for cid, is_running in users if not is_running]
    if soft and stopped:
        return _conflict(record.id, False, f"image is being used by stopped container {stopped[0][:12]}")
    return None


def _untag(store: ImageStore, ref: refs.Reference) -> None:
    with store.db.write() as conn:
        if ref.digest:
            conn.execute("DELETE FROM repo_digests WHERE repository = ? AND digest = ?", (ref.repository, ref.digest))
        else:
            conn.execute("DELETE FROM tags WHERE ref = ?", (ref.name_tag,))


def remove_image(store: ImageStore, name: str, force: bool = False) -> Report:
    """``rmi NAME``: untag a name, and delete the image once nothing names or uses it (docker's rules)."""
    report = _remove_image(store, name, force)
    for kind, value in report.items:
        store.event("untag" if kind == "Untagged" else "delete", value, value)
    return report


def _remove_image(store: ImageStore, name: str, force: bool) -> Report:
    with store.lock(exclusive=True):
        record = store.resolve(name)
        report = Report()
        if not _is_id_prefix(record.id, name):
            ref = refs.parse(name)
            if not force and _is_single_reference(_references(record)):
                users = containers_using(store, record.id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force) - container '
                        f"{users[0][0][:12]} is using its referenced image {dg.short_id(record.id)}"
                    )
            _untag(store, ref)
            report.untagged(ref.familiar())
            record = store.get(record.id)
            if not ref.digest and not any(refs.parse(t).repository == ref.repository for t in record.tags):
                # the last tag of a repository takes that repository's digest references with it
                for text in list(record.repo_digests):
                    other = refs.parse(text)
                    if other.repository == ref.repository:
                        _untag(store, other)
                        report.untagged(other.familiar())
                record = store.get(record.id)
            if record.tags or record.repo_digests:
                return report
            conflict = _check_conflicts(store, record, soft=not force, active_reference=True)
            if conflict is not None:
                if containers_using(store, record.id):
                    return report  # untagging finished the job; the image stays for its containers
                raise conflict
        else:
            if _is_single_reference(_references(record)):
                conflict = _check_conflicts(store, record, soft=not force, active_reference=False)
                if conflict is not None:
                    raise conflict
                for ref in _references(record):
                    _untag(store, ref)
                    report.untagged(ref.familiar())
                record = store.get(record.id)
            conflict = _check_conflicts(store, record, soft=not force, active_reference=True)
            if conflict is not None:
                raise conflict
        _delete(store, record, report)
        return report


def _delete(store: ImageStore, record: ImageRecord, report: Report) -> None:
    """Drop the image's names and row, then collect what it alone used (caller holds the lock)."""
    for ref in _references(record):
        report.untagged(ref.familiar())
    with store.db.write() as conn:
        conn.execute("DELETE FROM tags WHERE image_id = ?", (record.id,))
        conn.execute("DELETE FROM repo_digests WHERE image_id = ?", (record.id,))
        conn.execute("DELETE FROM images WHERE id = ?", (record.id,))
    report.deleted(record.id)
    collect(store, report, candidates=[record.id])


def release_image(store: ImageStore, image_id: str) -> Report:
    """Collect what a removed container kept alive: the layers and config of an image force-removed meanwhile.

    The container service calls this after deleting a container row; it does nothing while the
    image is still recorded or another container still uses it.
    """
    report = Report()
    with store.lock(exclusive=True):
        if store.db.query_one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is None:
            collect(store, report, candidates=[image_id])
    return report


ORPHAN_GRACE_SECONDS = 600


def _orphan_configs(store: ImageStore, configs: set[str]) -> list[str]:
    """Image config blobs no image and no container names, older than a grace period.

    The grace period spares a config that a concurrent writer stored a moment ago and is about
    to record; only JSON documents with ``rootfs.diff_ids`` count as image configs.
    """
    known = {row["blob"] for row in store.db.query("SELECT blob FROM layer_blobs")}
    now = time.time()
    found = []
    for digest in store.blobs.all_digests():
        if digest in configs or digest in known:
            continue
        try:
            info = store.blobs.path(digest).stat()
            if info.st_size > (1 << 20) or now - info.st_mtime < ORPHAN_GRACE_SECONDS:
                continue
            doc = json.loads(store.blobs.read(digest))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("rootfs"), dict) and "diff_ids" in doc["rootfs"]:
            found.append(digest)
    return found


def _needed_chains(store: ImageStore) -> tuple[set[str], set[str]]:
    """Chain IDs and config digests still needed by images and by containers."""
    configs = {row["id"] for row in store.db.query("SELECT id FROM images")}
    for row in store.db.query("SELECT DISTINCT image_id FROM containers"):
        image_id = row["image_id"] if row["image_id"].startswith("sha256:") else f"sha256:{row['image_id']}"
        if dg.is_digest(image_id):
            configs.add(image_id)
    chains: set[str] = set()
    for image_id in configs:
        if store.blobs.has(image_id):
            chains.update(dg.chain_ids(store.diff_ids(image_id)))
    return chains, configs


def collect(store: ImageStore, report: Report, candidates: list[str] | None = None) -> None:
    """Remove layers and layer blobs nothing needs, and the config blobs of ``candidates`` (deleted images).

    Only blobs the store knows as layer blobs or image configs are touched: blobs written by
    other components (manifests of the registry client) are not this function's to judge.
    """
    needed, configs = _needed_chains(store)
    # layers of the images just deleted go at once; any other unneeded layer only once it is older
    # than the grace period, since a writer that does not hold the store lock (an older pull or
    # build) may have added it a moment ago for an image it has not recorded yet
    mine: set[str] = set()
    for image_id in candidates or []:
        if store.blobs.has(image_id):
            mine.update(dg.chain_ids(store.diff_ids(image_id)))
    now = time.time()

    def old_enough(chain: str) -> bool:
        try:
            return now - (store.layers.dir / dg.hex_of(chain)).stat().st_mtime >= ORPHAN_GRACE_SECONDS
        except FileNotFoundError:
            return True

    rows = store.db.query("SELECT chain_id, parent, size FROM layers")
    children: dict[str, int] = {}
    for row in rows:
        if row["parent"]:
            children[row["parent"]] = children.get(row["parent"], 0) + 1
    doomed = [row for row in rows
              if row["chain_id"] not in needed and (row["chain_id"] in mine or old_enough(row["chain_id"]))]
    # remove tops first so a parent is only removed once its children are gone
    removed: set[str] = set()
    progress = True
    while progress:
        progress = False
        for row in doomed:
            chain = row["chain_id"]
            if chain in removed or children.get(chain, 0) > 0:
                continue
            store.layers.remove(chain)
            removed.add(chain)
            report.deleted(chain)
            report.reclaimed += row["size"]
            if row["parent"]:
                children[row["parent"]] -= 1
            progress = True
    live_diffs = {row["diff_id"] for row in store.db.query("SELECT DISTINCT diff_id FROM layers")}
    for row in store.db.query("SELECT diff_id, blob FROM layer_blobs"):
        if row["diff_id"] in live_diffs:
            continue
        with store.db.write() as conn:
            conn.execute("DELETE FROM layer_blobs WHERE diff_id = ? AND blob = ?", (row["diff_id"], row["blob"]))
        still_used = store.db.query_one("SELECT 1 FROM layer_blobs WHERE blob = ?", (row["blob"],))
        if still_used is None and row["blob"] not in configs:
            store.blobs.delete(row["blob"])
    for image_id in candidates or []:
        if image_id not in configs and store.db.query_one("SELECT 1 FROM layer_blobs WHERE blob = ?", (image_id,)) is None:
            store.blobs.delete(image_id)


_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_until(value: str, now: datetime) -> datetime:
    """docker's ``until=``: a Go duration (``24h``, ``1h30m``) before now, a Unix timestamp, or an RFC 3339 time."""
    from dockerbank.image.inspect import parse_time

    text = value.strip()
    if _DURATION_RE.match(text):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        return now - timedelta(seconds=seconds)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?", text):
        raise InvalidArgument(f"invalid filter 'until={value}': use a duration (24h), a Unix timestamp or a date")
    return parse_time(text)


def prune_images(store: ImageStore, all_images: bool, until: str | None = None,
                 labels: list[str] | None = None) -> Report:
    """``image prune``: delete dangling images (``-a``: every image no container uses), then collect."""
    from dockerbank.image.inspect import parse_time

    report = Report()
    limit = parse_until(until, datetime.now(UTC)) if until else None
    with store.lock(exclusive=True):
        for record in store.list():
            if not all_images and (record.tags or record.repo_digests):
                continue
            if containers_using(store, record.id):
                continue
            if limit is not None and not parse_time(record.created) < limit:
                continue
            if labels and not _labels_match(store, record, labels):
                continue
            _delete(store, record, report)
        collect(store, report)
        _, configs = _needed_chains(store)
        for digest in _orphan_configs(store, configs):
            store.blobs.delete(digest)
    return report


def _labels_match(store: ImageStore, record: ImageRecord, specs: list[str]) -> bool:
    found = (store.image_config(record.id).get("config") or {}).get("Labels") or {}
    for spec in specs:
        negate = spec.startswith("!")
        key, sep, value = spec.lstrip("!").partition("=")
        has = key in found and (not sep or found[key] == value)
        if has == negate:
            return False
    return True
