"""What Dockerbank does not have, answered as a docker engine without it answers: the swarm
endpoints (``/swarm``, ``/services``, ``/nodes``, ``/tasks``, ``/secrets``, ``/configs``) as a node
outside any swarm (503), plugins as an engine with none installed (an empty list, 404 for a name).

A swarm cannot be created or joined here: stacks run with ``compose`` and scale out through
Kubernetes (``kube generate``), so ``swarm init``/``join``, plugin installs, checkpoints and image
search are refused (501).
"""

from __future__ import annotations

from aiohttp import web

from dockerbank.api.base import reply
from dockerbank.api.errors import SwarmUnavailable
from dockerbank.errors import NotFound, NotSupported

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 'this node to swarm and try again.')


async def not_a_manager(request: web.Request) -> web.Response:
    raise SwarmUnavailable(NOT_A_MANAGER)


async def leave(request: web.Request) -> web.Response:
    raise SwarmUnavailable("This node is not part of a swarm")


async def no_swarm_mode(request: web.Request) -> web.Response:
    raise NotSupported("Dockerbank has no swarm mode: run stacks with compose, and scale out through Kubernetes "
                       "(kube generate)")


async def plugins(request: web.Request) -> web.Response:
    return reply([])


async def plugin(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')


async def no_plugins(request: web.Request) -> web.Response:
    raise NotSupported("Dockerbank has no plugins: volumes use the local driver, networks netavark's bridge")


async def no_checkpoints(request: web.Request) -> web.Response:
    raise NotSupported("checkpoints are not supported: Dockerbank has no CRIU checkpoint/restore")


async def no_search(request: web.Request) -> web.Response:
    raise NotSupported("image search is not supported: registries speak the OCI distribution API, which has no "
                       "search; list a registry's repositories with its own catalog")


_SWARM_PREFIXES = ("/swarm", "/services", "/nodes", "/tasks", "/secrets", "/configs")

ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/swarm/init", no_swarm_mode), ("POST", "/swarm/join", no_swarm_mode), ("POST", "/swarm/leave", leave),
    *[("*", prefix + "{tail:(/.*)?}", not_a_manager) for prefix in _SWARM_PREFIXES],
    ("GET", "/plugins", plugins), ("GET", "/plugins/privileges", plugins),
    ("POST", "/plugins/pull", no_plugins), ("POST", "/plugins/create", no_plugins),
    ("GET", "/plugins/{name:.+}/json", plugin), ("DELETE", "/plugins/{name:.+}", plugin),
    ("POST", "/plugins/{name:.+}/{action:enable|disable|upgrade|push|set}", plugin),
    ("*", "/containers/{id}/checkpoints{tail:(/.*)?}", no_checkpoints), ("GET", "/images/search", no_search),
]
