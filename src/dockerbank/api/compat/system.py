"""``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/auth``."""

from __future__ import annotations

import os
import platform

from aiohttp import web

from dockerbank.api.base import API_VERSION, MIN_API_VERSION, engine_call, read_json, reply


def _version() -> str:
    from dockerbank import __version__

    return __version__


async def ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    return web.Response(body=body, content_type="text/plain",
                        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"})


async def version(request: web.Request) -> web.Response:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    ver = _version()
    return reply({
        "Platform": {"Name": "Dockerbank"},
        "Components": [{"Name": "Engine", "Version": ver,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                                    "Arch": arch, "KernelVersion": os.uname().release}}],
        "Version": ver, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": arch,
        "KernelVersion": os.uname().release, "BuildTime": "",
    })


def _security_options() -> list[str]:
    """dockerd's list: ``name=rootless`` for an ordinary user's engine (``docker info`` shows it)."""
    from dockerbank.host.rootless import rootless

    return ["name=seccomp,profile=builtin", *(["name=rootless"] if rootless() else [])]


def info_of(engine) -> dict:
    """``docker info``'s object: host facts (host/system.py) plus counts of this root."""
    from dockerbank.host.system import collect, to_api
    from dockerbank.runtime.detect import detect
    from dockerbank.settings import default_log_driver

    try:
        runtime = detect(engine.config.run_root).name
    except Exception:  # no runtime works: info still answers, with the warning below
        runtime = None
    facts = collect(engine.config.root, default_runtime=runtime, with_versions=False)
    data = to_api(facts)
    containers = engine.containers.list()
    statuses = [c.state.status for c in containers]
    data.update({
        "ID": "", "Containers": len(containers), "ContainersRunning": statuses.count("running"),
        "ContainersPaused": statuses.count("paused"), "ContainersStopped":
        len(statuses) - statuses.count("running") - statuses.count("paused"),
        "Images": len(engine.images.list()), "ServerVersion": _version(), "Debug": False,
        "OomKillDisable": False, "IPv4Forwarding": True, "BridgeNfIptables": False, "BridgeNfIp6tables": False,
        "LoggingDriver": default_log_driver(engine.config.root), "Plugins": {"Authorization": None, "Volume": ["local"], "Network": ["bridge", "host", "none"],
                                                 "Log": ["k8s-file", "json-file", "local", "none",
                                                         "syslog", "gelf"]},
        "SecurityOptions": _security_options(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
        "Labels": [], "ExperimentalBuild": False, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                  "RemoteManagers": None},  # no swarm member (api/compat/swarm.py)
        "CPUSet": True, "GenericResources": None, "OSVersion": "", "NFd": 0, "NGoroutines": 0, "NEventsListener": 0,
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SystemTime": __import__("datetime").datetime.now().astimezone().isoformat(),
    })
    return data


async def info(request: web.Request) -> web.Response:
    return reply(await engine_call(request, info_of))


def _df(engine) -> dict:
    from dockerbank.image.inspect import image_summary

    containers = engine.containers.list()
    users: dict[str, int] = {}
    for c in containers:
        users[c.config.image_id] = users.get(c.config.image_id, 0) + 1
    images = [image_summary(engine.images, r, users.get(r.id, 0)) for r in engine.images.list()]
    volumes = []
    for v in engine.volumes.list():
        item = engine.volumes.inspect(v.name)
        item["UsageData"] = {"Size": engine.volumes.size(v.name), "RefCount": len(engine.volumes.users(v.name))}
        volumes.append(item)
    from dockerbank.api.compat.containers import summary

    return {"LayersSize": sum(i["Size"] for i in images), "Images": images,
            "Containers": [summary(engine, c) for c in containers], "Volumes": volumes, "BuildCache": []}


async def df(request: web.Request) -> web.Response:
    return reply(await engine_call(request, _df))


async def auth(request: web.Request) -> web.Response:
    body = await read_json(request)
    server = body.get("serveraddress") or "docker.io"
    server = server.removeprefix("https://").removeprefix("http://").split("/")[0]
    if server in ("index.docker.io", "registry-1.docker.io"):
        server = "docker.io"
    await engine_call(request, lambda e: e.registry.login(server, body.get("username", ""),
                                                          body.get("password", "")))
    return reply({"Status": "Login Succeeded", "IdentityToken": ""})
