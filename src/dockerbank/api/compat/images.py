"""Image endpoints: list, inspect, history, tag, delete, prune, save, load, import, pull, push."""

from __future__ import annotations

from aiohttp import web

from dockerbank.api.base import engine_call, qbool, qfilters, reply
from dockerbank.api.compat.streams import body_file, fd_response, streamed_job
from dockerbank.errors import InvalidArgument


def _counts(engine) -> dict[str, int]:
    users: dict[str, int] = {}
    for c in engine.containers.store.list():
        users[c.config.image_id] = users.get(c.config.image_id, 0) + 1
    return users


async def list_images(request: web.Request) -> web.Response:
    from dockerbank.image import inspect as ins

    filters = qfilters(request)
    if request.query.get("filter"):  # the pre-1.25 reference filter
        filters.setdefault("reference", []).append(request.query["filter"])

    def run(engine):
        store = engine.images
        unknown = set(filters) - set(ins.IMAGE_FILTERS)
        if unknown:
            raise InvalidArgument(f"invalid filter '{min(unknown)}'")
        records = ins.filter_images(store, store.list(), filters)
        records.sort(key=lambda r: ins.parse_time(r.created), reverse=True)
        users = _counts(engine)
        return [ins.image_summary(store, r, users.get(r.id, 0)) for r in records]

    return reply(await engine_call(request, run))


async def inspect_image(request: web.Request) -> web.Response:
    from dockerbank.image.inspect import inspect_image as ins

    name = request.match_info["name"]
    return reply(await engine_call(request, lambda e: ins(e.images, name)))


async def history(request: web.Request) -> web.Response:
    from dockerbank.image.inspect import history_api

    name = request.match_info["name"]
    return reply(await engine_call(request, lambda e: history_api(e.images, e.images.resolve(name))))


def tag_image(engine, source: str, repo: str, tag: str | None) -> None:
    from dockerbank.image import tagging

    tagging.tag_image(engine.images, source, f"{repo}:{tag}" if tag else repo)


async def tag(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    await engine_call(request, lambda e: tag_image(e, name, repo, request.query.get("tag")))
    return web.Response(status=201)


async def delete(request: web.Request) -> web.Response:
    from dockerbank.image.remove import remove_image

    name = request.match_info["name"]
    force = qbool(request, "force")
    def run(engine):
        return remove_image(engine.images, name, force=force)

    report = await engine_call(request, run)
    return reply([{kind: value} for kind, value in report.items])


async def prune(request: web.Request) -> web.Response:
    from dockerbank.image.remove import prune_images

    filters = qfilters(request)
    dangling = filters.get("dangling", ["true"])
    all_images = dangling[-1].lower() in ("false", "0")
    labels = filters.get("label", []) + ["!" + s for s in filters.get("label!", [])]
    until = filters["until"][-1] if filters.get("until") else None
    report = await engine_call(request, lambda e: prune_images(e.images, all_images, until, labels))
    return reply({"ImagesDeleted": [{k: v} for k, v in report.items] or None,
                  "SpaceReclaimed": report.reclaimed})


async def save(request: web.Request) -> web.StreamResponse:
    from dockerbank.image.save import plan, write_docker_archive

    names = request.query.getall("names", []) if "name" not in request.match_info else [request.match_info["name"]]
    if not names:
        raise InvalidArgument("no image names given")

    def produce(engine, fd):
        items = plan(engine.images, names)  # every name resolved before a byte goes out
        write_docker_archive(engine.images, items, fd)

    return await fd_response(request, produce, "application/x-tar")


async def load(request: web.Request) -> web.StreamResponse:
    from dockerbank.image.load import load_file

    async with body_file(request) as path:
        def job(engine, emit):
            for image in load_file(engine.images, path):
                for name, old in image.renamed:
                    emit({"stream": f"The image {name} already exists, renaming the old one with ID {old} "
                                    "to empty string\n"})
                for name in image.tags:
                    emit({"stream": f"Loaded image: {name}\n"})
                if not image.tags:
                    emit({"stream": f"Loaded image ID: {image.id}\n"})

        return await streamed_job(request, job)


async def create(request: web.Request) -> web.StreamResponse:
    """``POST /images/create``: ``fromSrc`` imports a tarball (the body, ``-``), ``fromImage`` pulls."""
    q = request.query
    if q.get("fromSrc"):
        return await _import(request)
    if q.get("fromImage"):
        return await _pull(request)
    raise InvalidArgument("fromImage or fromSrc is required")


async def _import(request: web.Request) -> web.StreamResponse:
    from dockerbank.image.importer import import_rootfs, refuse_url
    from dockerbank.oci import imageconfig
    from dockerbank.oci import reference as refs

    q = request.query
    source = q["fromSrc"]
    refuse_url(source)
    if source != "-":
        raise InvalidArgument("fromSrc must be '-' (the request body) or a URL")
    repo, tag = q.get("repo", ""), q.get("tag", "")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    if reference:
        refs.parse(reference)
    changes = tuple(q.getall("changes", []))
    for change in changes:
        imageconfig.apply_change({}, change)
    async with body_file(request) as path:
        def job(engine, emit):
            with open(path, "rb") as handle:
                record = import_rootfs(engine.images, handle, reference, changes, q.get("message", ""))
            emit({"status": record.id})

        return await streamed_job(request, job)


class _JsonProgress:
    """The registry client's Progress reporting as docker's JSON progress lines."""

    def __init__(self, emit):
        self.emit = emit
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def line(self, text: str) -> None:
        self.emit({"status": text})

    def status(self, item: str, text: str) -> None:
        self.emit({"status": text, "progressDetail": {}, "id": item})

    def start(self, item: str, total: int, text: str) -> None:
        self.totals[item], self.done[item] = total, 0
        self.emit({"status": text, "progressDetail": {"current": 0, "total": total}, "id": item})

    def advance(self, item: str, amount: int) -> None:
        self.done[item] = self.done.get(item, 0) + amount

    def close(self) -> None:
        pass


async def _pull(request: web.Request) -> web.StreamResponse:
    from dockerbank.oci import reference as refs
    from dockerbank.registry.client.progress import Progress

    q = request.query
    name = q["fromImage"]
    tag = q.get("tag", "")
    if tag:
        name = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
    ref = refs.parse(name)

    def job(engine, emit):
        progress = _JsonProgress(emit)
        progress.__class__ = type("P", (_JsonProgress, Progress), {})
        results = engine.registry.pull(name, platform=q.get("platform") or None, progress=progress)
        for result in results:
            emit({"status": f"Digest: {result.digest}"})
            verb = "Downloaded newer image" if result.downloaded else "Image is up to date"
            emit({"status": f"Status: {verb} for {result.reference.familiar()}"})

    del ref
    return await streamed_job(request, job)


async def push(request: web.Request) -> web.StreamResponse:
    from dockerbank.registry.client.progress import Progress

    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    target = f"{name}:{tag}" if tag else name

    def job(engine, emit):
        progress = _JsonProgress(emit)
        progress.__class__ = type("P", (_JsonProgress, Progress), {})
        results = engine.registry.push(target, all_tags=not tag, progress=progress)
        for result in results:
            tag_text = result.reference.tag or ""
            emit({"status": f"{tag_text}: digest: {result.digest} size: {result.size}"})
            emit({"progressDetail": {}, "aux": {"Tag": tag_text, "Digest": result.digest, "Size": result.size}})

    return await streamed_job(request, job)
