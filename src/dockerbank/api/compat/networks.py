"""Network endpoints: create, list, inspect, remove, connect, disconnect, prune (engine.networks)."""

from __future__ import annotations

from aiohttp import web

from dockerbank.api.base import engine_call, qfilters, read_json, reply
from dockerbank.api.compat import bodies
from dockerbank.errors import InvalidArgument

LIST_FILTERS = {"name", "id", "label", "driver", "type", "dangling", "scope"}


async def create(request: web.Request) -> web.Response:
    body = bodies.check(await read_json(request), bodies.NETWORK_CREATE, "CreateRequest")
    name = body.get("Name") or ""
    if not name:
        raise InvalidArgument("network name is required")
    from dockerbank.network.ipam import create_arguments

    pools = create_arguments((body.get("IPAM") or {}).get("Config") or [], bool(body.get("EnableIPv6")))

    def run(engine):
        created = engine.networks.create(name, internal=bool(body.get("Internal")),
                                         labels=dict(body.get("Labels") or {}), driver=body.get("Driver") or "bridge",
                                         options=dict(body.get("Options") or {}), **pools)
        return created.id

    return reply({"Id": await engine_call(request, run), "Warning": ""}, status=201)


async def list_networks(request: web.Request) -> web.Response:
    filters = qfilters(request)
    unknown = set(filters) - LIST_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    filters.pop("scope", None)
    return reply(await engine_call(request, lambda e: [e.networks.inspect(n.id) for n in e.networks.list(filters)]))


async def inspect(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    return reply(await engine_call(request, lambda e: e.networks.inspect(ref)))


async def remove(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    def run(engine):
        engine.networks.remove(ref)

    await engine_call(request, run)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = qfilters(request)
    removed = await engine_call(request, lambda e: e.networks.prune(filters))
    return reply({"NetworksDeleted": removed or None})


async def connect(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    body = bodies.check(await read_json(request), bodies.NETWORK_CONNECT, "ConnectOptions")
    endpoint = body.get("EndpointConfig") or {}
    aliases = list(endpoint.get("Aliases") or [])
    ip = ((endpoint.get("IPAMConfig") or {}).get("IPv4Address")) or None
    ip6 = ((endpoint.get("IPAMConfig") or {}).get("IPv6Address")) or None

    def run(engine):
        from dockerbank.network.runtime import connect_container

        connect_container(engine, ref, body.get("Container") or "", aliases, ip, ip6)

    await engine_call(request, run)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    body = await read_json(request)

    def run(engine):
        from dockerbank.network.runtime import disconnect_container

        disconnect_container(engine, ref, body.get("Container") or "", bool(body.get("Force")))

    await engine_call(request, run)
    return web.Response(status=200)


ROUTES = [
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
