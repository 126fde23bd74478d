"""``tag SOURCE TARGET``: the name checked as docker checks it, the tag, and its event."""

from __future__ import annotations

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.image.store import ImageRecord, ImageStore


def tag_image(store: ImageStore, source: str, target: str) -> ImageRecord:
    """Give the image ``source`` names the name ``target`` (docker's errors for bad names)."""
    from dockerbank.oci import reference as refs
    from dockerbank.oci.digest import is_full_hex

    try:
        ref = refs.parse(target)
    except InvalidArgument as exc:
        raise InvalidArgument(f'Error parsing reference: "{target}" is not a valid repository/tag: {exc.message}') \
            from exc
    if is_full_hex(ref.familiar_repository):  # would read as an image ID later
        raise InvalidArgument(f"invalid repository name ({ref.familiar_repository}), "
                              "cannot specify 64-byte hexadecimal strings")
    record = store.resolve(source)
    store.tag(record.id, target)
    store.event("tag", record.id, ref.familiar())
    return record
