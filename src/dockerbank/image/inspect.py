"""Docker's JSON shapes for images: ``image inspect``, ``history`` rows and ``images`` rows.

The shapes are built from the stored image config and the store's records; formatting
(human sizes, "2 hours ago", truncation) is done here too, as pure functions of the
data and of ``now``, so the CLI and the API server print the same thing.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime

from dockerbank.errors import InvalidArgument
from dockerbank.image.store import ImageRecord, ImageStore
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs
from dockerbank.units import human_duration, human_size, since  # noqa: F401  (API callers use them here)

NONE = "<none>"
MISSING = "<missing>"
ZERO_TIME = "0001-01-01T00:00:00Z"

# container.Config as docker marshals it: always-present keys with their zero values,
# then the keys docker omits when empty.
_CONFIG_ALWAYS = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("NetworkDisabled", None), ("MacAddress", None), ("OnBuild", None),
    ("Labels", None), ("StopSignal", None), ("StopTimeout", None), ("Shell", None),
)
_OMIT_EMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal",
               "StopTimeout", "Shell"}


def docker_container_config(cfg: dict | None) -> dict:
    """A container config in docker's shape: every field docker always prints, plus the set optional ones."""
    cfg = cfg or {}
    out: dict = {}
    for key, zero in _CONFIG_ALWAYS:
        value = cfg.get(key, zero)
        if key in _OMIT_EMPTY and not value:
            continue
        out[key] = value
    for key, value in cfg.items():  # anything newer docker versions add, kept as stored
        out.setdefault(key, value)
    return out


def parse_time(text: str | None) -> datetime:
    """RFC 3339 with up to nanoseconds (Go writes 9 digits; Python parses 6)."""
    if not text:
        return datetime(1970, 1, 1, tzinfo=UTC)
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_time_string(moment: datetime) -> str:
    """Go's time.Time.String() for a UTC time: ``2026-11-27 23:04:08 +0000 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def ellipsis(text: str, limit: int) -> str:
    """Docker's stringutils.Ellipsis: cut to ``limit`` characters, the last one an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def go_json(value) -> str:
    """JSON as Go's encoder writes it for the CLI: sorted keys, compact, ``<>&`` escaped."""
    from dockerbank.gotemplate import go_json as encode

    return encode(value, sort_keys=True)


# --- image inspect -----------------------------------------------------------------------


def inspect_record(store: ImageStore, record: ImageRecord) -> dict:
    """``docker image inspect`` for one stored image."""
    config = store.image_config(record.id)
    chains = dg.chain_ids(config.get("rootfs", {}).get("diff_ids", []))
    data = None
    if chains:
        dirs = [str(store.layers.diff_dir(c)) for c in reversed(chains)]
        top = store.layers.dir / dg.hex_of(chains[-1])
        data = {"MergedDir": str(top / "merged"), "UpperDir": dirs[0], "WorkDir": str(top / "work")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        data = dict(sorted(data.items()))
    graph = {"Data": data, "Name": "overlay"}
    return {
        "Id": record.id,
        "RepoTags": [refs.parse(t).familiar() for t in record.tags],
        "RepoDigests": [_familiar_digest_ref(d) for d in record.repo_digests],
        "Parent": store.parent_of(record.id) or config.get("parent", ""),
        "Comment": config.get("comment", ""),
        "Created": config.get("created") or record.created,
        "Container": config.get("container", ""),
        "ContainerConfig": docker_container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": docker_container_config(config.get("config")),
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": record.size,
        "VirtualSize": record.size,
        "GraphDriver": graph,
        "RootFS": {"Type": config.get("rootfs", {}).get("type", "layers"),
                   "Layers": list(config.get("rootfs", {}).get("diff_ids", []))},
        "Metadata": {"LastTagTime": record.added if record.tags else ZERO_TIME},
    }


def inspect_image(store: ImageStore, name: str) -> dict:
    """Resolve ``name`` (reference, ID or prefix) and return docker's inspect JSON; NotFound if absent.

    The container ``inspect`` command falls back to this for names that are not containers.
    """
    return inspect_record(store, store.resolve(name))


def _familiar_digest_ref(text: str) -> str:
    repo, _, digest = text.partition("@")
    return f"{refs.parse(repo).familiar_repository}@{digest}"


# --- history -----------------------------------------------------------------------------


def history_rows(store: ImageStore, record: ImageRecord) -> list[dict]:
    """One row per history entry, newest first, with the size of the layer each one made."""
    config = store.image_config(record.id)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    sizes = [store.layers.get(c).size for c in dg.chain_ids(diff_ids)]
    rows = []
    layer_index = 0
    for entry in config.get("history") or []:
        size = 0
        if not entry.get("empty_layer") and layer_index < len(sizes):
            size = sizes[layer_index]
            layer_index += 1
        rows.append({"id": MISSING, "created": entry.get("created"),
                     "created_by": entry.get("created_by", ""), "size": size, "comment": entry.get("comment", "")})
    rows.reverse()
    # entries made on this host have an image of their own: the chain of local parents
    current: str | None = record.id
    for row in rows:
        if current is None:
            break
        row["id"] = current
        current = store.parent_of(current)
    return rows


def history_view(row: dict, *, now: datetime, human: bool, trunc: bool) -> dict:
    """The fields of ``history --format``: ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment."""
    created = parse_time(row["created"])
    image_id = row["id"]
    if trunc and image_id.startswith("sha256:"):
        image_id = dg.short_id(image_id)
    created_by = row["created_by"].replace("\t", " ")
    return {
        "ID": image_id,
        "CreatedSince": since(created, now) if human else rfc3339_seconds(created),
        "CreatedAt": rfc3339_seconds(created),
        "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
        "Size": human_size(row["size"], 3) if human else str(row["size"]),
        "Comment": row["comment"],
    }


# --- images ------------------------------------------------------------------------------


IMAGE_FILTERS = {"reference", "label", "dangling", "before", "since"}


def _labels_of(config: dict) -> dict:
    return (config.get("config") or {}).get("Labels") or {}


def filter_images(store: ImageStore, records: list[ImageRecord], filters: dict[str, list[str]]) -> list[ImageRecord]:
    """Apply docker's ``images --filter`` keys; a reference filter also drops the tags that do not match."""
    for value in filters.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"Invalid filter 'dangling={value}'")
    bounds = {}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            bounds[key] = parse_time(store.resolve(value).created)
    out = []
    for record in records:
        created = parse_time(record.created)
        if "before" in bounds and not created < bounds["before"]:
            continue
        if "since" in bounds and not created > bounds["since"]:
            continue
        if "dangling" in filters:
            want = filters["dangling"][-1].lower() in ("true", "1")
            if want != (not record.tags):
                continue
        if "label" in filters:
            labels = _labels_of(store.image_config(record.id))
            if not all(_label_matches(labels, spec) for spec in filters["label"]):
                continue
        if "reference" in filters:
            tags = [t for t in record.tags if any(_reference_matches(p, t) for p in filters["reference"])]
            digests = [d for d in record.repo_digests if any(_reference_matches(p, d) for p in filters["reference"])]
            if not tags and not digests:
                continue
            record = ImageRecord(record.id, record.created, record.added, record.size, record.top_chain, tags, digests)
        out.append(record)
    return out


def _label_matches(labels: dict, spec: str) -> bool:
    key, sep, value = spec.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _reference_matches(pattern: str, stored: str) -> bool:
    """reference.FamiliarMatch: glob against ``name:tag``, then against the bare name."""
    ref = refs.parse(stored)
    candidates = [ref.familiar(), ref.familiar_repository]
    return any(fnmatch.fnmatchcase(c, pattern) and _same_segments(c, pattern) for c in candidates)


def _same_segments(name: str, pattern: str) -> bool:
    # path.Match's '*' does not cross '/': require the same number of path segments
    return name.count("/") == pattern.count("/")


def image_rows(records: list[ImageRecord], *, digests: bool) -> list[tuple[ImageRecord, str, str, str]]:
    """(image, repository, tag, digest) rows exactly as docker's image formatter expands them."""
    rows = []
    for record in records:
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for text in record.tags:
            ref = refs.parse(text)
            repo_tags.setdefault(ref.familiar_repository, []).append(ref.tag or refs.DEFAULT_TAG)
        for text in record.repo_digests:
            repo, _, digest = text.partition("@")
            repo_digests.setdefault(refs.parse(repo).familiar_repository, []).append(digest)
        for repo, tags in repo_tags.items():
            shown = repo_digests.pop(repo, [])  # digests of a tagged repository never get their own row
            if not digests:
                shown = []
            for tag in tags:
                if not shown:
                    rows.append((record, repo, tag, NONE))
                for digest in shown:
                    rows.append((record, repo, tag, digest))
        for repo, found in repo_digests.items():
            if digests:
                rows.extend((record, repo, NONE, d) for d in found)
            else:
                rows.append((record, repo, NONE, NONE))
        if not repo_tags and not repo_digests:
            rows.append((record, NONE, NONE, NONE))
    return rows


def image_view(record: ImageRecord, repo: str, tag: str, digest: str, *, now: datetime, trunc: bool) -> dict:
    """The fields of ``images --format`` for one row (and the JSON docker prints for ``--format json``)."""
    created = parse_time(record.created)
    return {
        "Containers": "N/A",
        "CreatedAt": go_time_string(created),
        "CreatedSince": since(created, now),
        "Digest": digest,
        "ID": dg.short_id(record.id) if trunc else record.id,
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": human_size(record.size, 3),
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(record.size, 4),
    }


# --- Docker Engine API shapes (for the API server) -----------------------------------------


def unix_seconds(text: str | None) -> int:
    return int(parse_time(text).timestamp())


def image_summary(store: ImageStore, record: ImageRecord, containers: int = -1) -> dict:
    """One element of ``GET /images/json``."""
    config = store.image_config(record.id)
    return {
        "Id": record.id,
        "ParentId": store.parent_of(record.id) or config.get("parent", ""),
        "RepoTags": [refs.parse(t).familiar() for t in record.tags] or ["<none>:<none>"],
        "RepoDigests": [_familiar_digest_ref(d) for d in record.repo_digests] or
        (["<none>@<none>"] if not record.tags else []),
        "Created": unix_seconds(record.created),
        "Size": record.size,
        "VirtualSize": record.size,
        "SharedSize": -1,
        "Labels": (config.get("config") or {}).get("Labels"),
        "Containers": containers,
    }


def history_api(store: ImageStore, record: ImageRecord) -> list[dict]:
    """``GET /images/{name}/history``: newest first, ``<missing>`` for entries without their own image."""
    tags = [refs.parse(t).familiar() for t in record.tags]
    out = []
    for index, row in enumerate(history_rows(store, record)):
        out.append({"Id": row["id"], "Created": unix_seconds(row["created"]), "CreatedBy": row["created_by"],
                    "Tags": tags if index == 0 else None, "Size": row["size"], "Comment": row["comment"]})
    return out
