"""The route table: every endpoint under ``/v1.NN/...`` and as a plain path, like dockerd."""

from __future__ import annotations

from aiohttp import web

VERSION_PREFIX = r"/v{api_version:1\.[0-9]+}"


def table():
    """(method, path, handler) for every endpoint, imported here so the server stays small."""
    from dockerbank.api.compat import images, system, volumes

    routes = [
        ("GET", "/_ping", system.ping), ("HEAD", "/_ping", system.ping),
        ("GET", "/version", system.version), ("GET", "/info", system.info),
        ("GET", "/system/df", system.df), ("POST", "/auth", system.auth),
        # images
        ("GET", "/images/json", images.list_images),
        ("POST", "/images/create", images.create),
        ("POST", "/images/load", images.load),
        ("GET", "/images/get", images.save),
        ("POST", "/images/prune", images.prune),
        ("GET", "/images/{name:.+}/json", images.inspect_image),
        ("GET", "/images/{name:.+}/history", images.history),
        ("GET", "/images/{name:.+}/get", images.save),
        ("POST", "/images/{name:.+}/tag", images.tag),
        ("POST", "/images/{name:.+}/push", images.push),
        ("DELETE", "/images/{name:.+}", images.delete),
        # volumes
        ("GET", "/volumes", volumes.list_volumes),
        ("POST", "/volumes/create", volumes.create),
        ("POST", "/volumes/prune", volumes.prune),
        ("GET", "/volumes/{name}", volumes.inspect),
        ("DELETE", "/volumes/{name}", volumes.remove),
    ]
    from dockerbank.api.compat import build, containers, events, networks, swarm

    return routes + containers.ROUTES + networks.ROUTES + build.ROUTES + events.ROUTES + swarm.ROUTES


def add_routes(app: web.Application) -> None:
    for method, path, handler in table():
        app.router.add_route(method, path, handler)
        app.router.add_route(method, VERSION_PREFIX + path, handler)
