"""Volume endpoints: create, list, inspect, remove, prune."""

from __future__ import annotations

from aiohttp import web

from dockerbank.api.base import engine_call, qbool, qfilters, read_json, reply
from dockerbank.api.compat import bodies
from dockerbank.errors import InvalidArgument

LIST_FILTERS = {"name", "driver", "label", "dangling"}


async def create(request: web.Request) -> web.Response:
    body = bodies.check(await read_json(request), bodies.VOLUME_CREATE, "CreateOptions")
    name = body.get("Name") or None
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported: only 'local'")

    def run(engine):
        volume = engine.volumes.create(name, driver=driver, labels=body.get("Labels") or None,
                                       options=body.get("DriverOpts") or None)
        return engine.volumes.inspect(volume.name)

    return reply(await engine_call(request, run), status=201)


async def list_volumes(request: web.Request) -> web.Response:
    filters = qfilters(request)
    unknown = set(filters) - LIST_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    dangling = filters.pop("dangling", None)

    def run(engine):
        out = []
        for volume in engine.volumes.list(filters):
            if dangling is not None:
                unused = not engine.volumes.users(volume.name)
                if unused != (dangling[-1].lower() in ("true", "1")):
                    continue
            out.append(engine.volumes.inspect(volume.name))
        return {"Volumes": out, "Warnings": []}

    return reply(await engine_call(request, run))


async def inspect(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return reply(await engine_call(request, lambda e: e.volumes.inspect(name)))


async def remove(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    force = qbool(request, "force")
    def run(engine):
        engine.volumes.remove(name, force=force)

    await engine_call(request, run)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = qfilters(request)
    names, reclaimed = await engine_call(request, lambda e: e.volumes.prune(filters))
    return reply({"VolumesDeleted": names or None, "SpaceReclaimed": reclaimed})
