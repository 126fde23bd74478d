"""Container and exec endpoints. Each handler parses the request, calls ``engine.containers`` (the
same ContainerService the CLI calls) and shapes the answer; the views come from container.views."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time

from aiohttp import web

from dockerbank.api.base import engine_call, qbool, qfilters, qint, read_json, reply
from dockerbank.api.compat import bodies
from dockerbank.api.compat import hijack
from dockerbank.api.compat.streams import body_file, fd_response
from dockerbank.api.errors import NotModified
from dockerbank.errors import Conflict, DockerbankError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

ACTIVE = ("running", "paused")


# --- create ----------------------------------------------------------------------------------

def _mount_text(m: dict) -> str:
    """A HostConfig.Mounts entry as a ``--mount`` value, so one parser (volume.mounts) reads both."""
    parts = [f"type={m.get('Type') or 'volume'}"]
    if m.get("Source"):
        parts.append(f"source={m['Source']}")
    parts.append(f"target={m.get('Target', '')}")
    if m.get("ReadOnly"):
        parts.append("readonly")
    bind = m.get("BindOptions") or {}
    if bind.get("Propagation"):
        parts.append(f"bind-propagation={bind['Propagation']}")
    vol = m.get("VolumeOptions") or {}
    if vol.get("NoCopy"):
        parts.append("volume-nocopy")
    for key, value in (vol.get("Labels") or {}).items():
        parts.append(f'"volume-label={key}={value}"')
    for key, value in ((vol.get("DriverConfig") or {}).get("Options") or {}).items():
        parts.append(f'"volume-opt={key}={value}"')
    tmpfs = m.get("TmpfsOptions") or {}
    if tmpfs.get("SizeBytes"):
        parts.append(f"tmpfs-size={tmpfs['SizeBytes']}")
    if tmpfs.get("Mode"):
        parts.append(f"tmpfs-mode={tmpfs['Mode']:o}")
    return ",".join(parts)


def create_options(body: dict, name: str | None):
    """The Docker API's create body -> the engine's CreateOptions (pure)."""
    from dockerbank.volume import mounts as mnt
    from dockerbank.container.lifecycle import CreateOptions

    host = body.get("HostConfig") or {}
    image = body.get("Image") or ""
    if not image:
        raise InvalidArgument("Config cannot be empty in order to create a container")
    entrypoint = body.get("Entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint] if entrypoint else []
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    specs = [mnt.parse_volume(b) for b in host.get("Binds") or []]
    specs += [mnt.parse_mount(_mount_text(m)) for m in host.get("Mounts") or []]
    specs += [mnt.parse_tmpfs(f"{path}:{opts}" if opts else path) for path, opts in (host.get("Tmpfs") or {}).items()]
    taken = {s.target for s in specs}
    specs += [mnt.parse_volume(path) for path in (body.get("Volumes") or {}) if path not in taken]
    restart = host.get("RestartPolicy") or {}
    restart_text = restart.get("Name") or "no"
    if restart_text == "on-failure" and restart.get("MaximumRetryCount"):
        restart_text += f":{restart['MaximumRetryCount']}"
    devices = [f"{d['PathOnHost']}:{d.get('PathInContainer') or d['PathOnHost']}:{d.get('CgroupPermissions') or 'rwm'}"
               for d in host.get("Devices") or []]
    network = host.get("NetworkMode") or ""
    if network == "default":
        network = ""
    attach = [s for s, key in (("STDIN", "AttachStdin"), ("STDOUT", "AttachStdout"), ("STDERR", "AttachStderr"))
              if body.get(key)]
    pids = host.get("PidsLimit") or 0
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    first = endpoints.get(network) or (next(iter(endpoints.values())) if endpoints else {}) or {}
    network_options = {
        "ports": port_flags(host.get("PortBindings") or {}), "publish_all": bool(host.get("PublishAllPorts")),
        "expose": list(body.get("ExposedPorts") or {}),
        "ip": ((first.get("IPAMConfig") or {}).get("IPv4Address")) or None,
        "aliases": list(first.get("Aliases") or []), "dns": list(host.get("Dns") or []),
        "dns_search": list(host.get("DnsSearch") or []), "dns_options": list(host.get("DnsOptions") or []),
        "add_hosts": list(host.get("ExtraHosts") or []),
    }
    return CreateOptions(
        image=image, command=list(cmd or []), entrypoint=list(entrypoint) if entrypoint is not None else None,
        name=name or None, env=list(body.get("Env") or []), workdir=body.get("WorkingDir") or None,
        user=body.get("User") or None, hostname=body.get("Hostname") or None, labels=dict(body.get("Labels") or {}),
        tty=bool(body.get("Tty")), interactive=bool(body.get("OpenStdin")), mounts=specs,
        volumes_from=list(host.get("VolumesFrom") or []), read_only=bool(host.get("ReadonlyRootfs")),
        privileged=bool(host.get("Privileged")), cap_add=list(host.get("CapAdd") or []),
        cap_drop=list(host.get("CapDrop") or []), security_opt=list(host.get("SecurityOpt") or []),
        devices=devices, init=bool(host.get("Init")), restart=restart_text, auto_remove=bool(host.get("AutoRemove")),
        memory=host.get("Memory") or 0, memory_swap=host.get("MemorySwap") or 0, nano_cpus=host.get("NanoCpus") or 0,
        cpu_shares=host.get("CpuShares") or 0, pids_limit=max(0, pids),
        blkio_weight=host.get("BlkioWeight") or 0, network=network, stop_signal=body.get("StopSignal") or None,
        stop_timeout=body.get("StopTimeout"), attach=attach, network_options=network_options,
        healthcheck=body.get("Healthcheck") or None,
        log_driver=(host.get("LogConfig") or {}).get("Type") or None,
        log_opts=dict((host.get("LogConfig") or {}).get("Config") or {}),
    )


def port_flags(bindings: dict) -> list[str]:
    """HostConfig.PortBindings -> ``-p`` values, so the one ``-p`` parser (network/) reads both (pure)."""
    flags = []
    for port, hosts in bindings.items():
        number, _, proto = port.partition("/")
        suffix = f"/{proto}" if proto and proto != "tcp" else ""
        for host in hosts or [{}]:
            ip, host_port = (host or {}).get("HostIp") or "", (host or {}).get("HostPort") or ""
            if ip:
                flags.append(f"{ip}:{host_port}:{number}{suffix}")
            elif host_port:
                flags.append(f"{host_port}:{number}{suffix}")
            else:
                flags.append(f"{number}{suffix}")
    return flags


async def create(request: web.Request) -> web.Response:
    body = bodies.check(await read_json(request), bodies.CONTAINER_CREATE, "CreateRequest")
    opts = create_options(body, request.query.get("name"))
    container = await engine_call(request, lambda e: e.containers.create(opts))
    return reply({"Id": container.id, "Warnings": []}, status=201)


# --- list, inspect ---------------------------------------------------------------------------

def summary(engine, c, with_size: bool = False) -> dict:
    """One element of ``GET /containers/json``."""
    from dockerbank.volume import mounts as mnt
    from dockerbank.container.logs import parse_time
    from dockerbank.container.views import status_text
    from dockerbank.host.fs import tree_size

    mounts = []
    for m in c.config.mounts:
        spec = mnt.MountSpec.from_dict(m)
        entry = mnt.inspect_mount(spec, "")
        if entry is not None:
            mounts.append(entry)
    ports, networks = [], {c.config.network_mode: {"NetworkID": "", "IPAddress": ""}}
    if (getattr(c.config, "network", None) or {}).get("kind") in ("bridge", "user", "container"):
        try:
            ports = [{"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port, "PublicPort": p.host_port,
                      "Type": p.protocol} for p in engine.networks.port_mappings(c.id)]
            networks = engine.networks.settings(c.id)["Networks"] or networks
        except DockerbankError:
            pass
    item = {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.config.image, "ImageID": c.config.image_id,
        "Command": " ".join([c.config.path, *c.config.args]), "Created": int(parse_time(c.created)),
        "Ports": ports, "Labels": c.config.labels, "State": c.state.status, "Status": status_text(c, time.time()),
        "HostConfig": {"NetworkMode": c.config.network_mode},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    }
    if with_size:
        item["SizeRw"] = tree_size(engine.containers.dir(c.id) / "upper")
    return item


async def list_containers(request: web.Request) -> web.Response:
    from dockerbank.container.views import _ps_matches

    filters = qfilters(request)
    unknown = set(filters) - {"name", "label", "status", "ancestor", "id", "exited", "health"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    if "health" in filters:
        from dockerbank.container.health import check_filter

        check_filter(filters)
    show_all, limit, size = qbool(request, "all"), qint(request, "limit", -1), qbool(request, "size")

    def run(engine):
        containers = engine.containers.list()
        if limit and limit > 0:
            containers = containers[:limit]
        elif not show_all and "status" not in filters and "exited" not in filters:
            containers = [c for c in containers if c.state.status in ("running", "paused", "restarting")]
        image_ids = {}
        for ref in filters.get("ancestor", []):
            try:
                image_ids[ref] = engine.images.resolve(ref).id
            except DockerbankError:
                pass
        return [summary(engine, c, size) for c in containers if _ps_matches(c, filters, image_ids)]

    return reply(await engine_call(request, run))


def _get(engine, ref: str):
    try:
        return engine.containers.get(ref)
    except NotFound as exc:
        raise NotFound(f"No such container: {ref}") from exc


async def inspect(request: web.Request) -> web.Response:
    from dockerbank.container.views import inspect_container

    ref, size = request.match_info["id"], qbool(request, "size")
    data = await engine_call(request, lambda e: inspect_container(e, _get(e, ref), size))
    # docker-py's containers.run() reads the output only from "json-file"/"journald" containers; the
    # logs endpoint serves conmon's k8s-file log the same way, so the API names the driver json-file.
    if data["HostConfig"]["LogConfig"]["Type"] in ("k8s-file", "local"):
        data["HostConfig"]["LogConfig"]["Type"] = "json-file"
    return reply(data)


# --- lifecycle -------------------------------------------------------------------------------

async def start(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    hijacks = request.app["hijacks"]

    def run(engine):
        container = _get(engine, ref)
        if container.state.status in ACTIVE:
            raise NotModified("container already started")
        waiting = hijacks.get(container.id)
        attachment = None
        if waiting:
            attachment = engine.containers.start(container.id, attached=True)
        else:
            engine.containers.start(container.id)
        return waiting, attachment

    waiting, attachment = await engine_call(request, run)
    if waiting:
        future = waiting.pop(0)
        if not future.done():
            future.set_result(attachment)
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], qint(request, "t")

    def run(engine):
        container = _get(engine, ref)
        if container.state.status not in ACTIVE:
            raise NotModified("container already stopped")
        engine.containers.stop(container.id, timeout)

    await engine_call(request, run)
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    ref, sig = request.match_info["id"], request.query.get("signal") or "KILL"

    def run(engine):
        container = _get(engine, ref)
        if container.state.status not in ACTIVE:
            raise Conflict(f"Container {container.id} is not running")
        engine.containers.kill(container.id, sig)

    await engine_call(request, run)
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], qint(request, "t")
    def run(engine):
        container = _get(engine, ref)
        engine.containers.restart(container.id, timeout)

    await engine_call(request, run)
    return web.Response(status=204)


def _plain_action(method: str):
    """A handler for an action that takes only the container (pause, unpause): call, record, 204."""

    async def handler(request: web.Request) -> web.Response:
        ref = request.match_info["id"]

        def run(engine):
            container = _get(engine, ref)
            getattr(engine.containers, method)(container.id)

        await engine_call(request, run)
        return web.Response(status=204)

    handler.__name__ = method
    return handler


pause = _plain_action("pause")
unpause = _plain_action("unpause")


async def remove(request: web.Request) -> web.Response:
    ref, force, volumes = request.match_info["id"], qbool(request, "force"), qbool(request, "v")
    def run(engine):
        container = _get(engine, ref)
        engine.containers.remove(container.id, force=force, volumes=volumes)

    await engine_call(request, run)
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    ref, name = request.match_info["id"], request.query.get("name", "")
    def run(engine):
        container = _get(engine, ref)
        engine.containers.rename(container.id, name)

    await engine_call(request, run)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    from dockerbank.host.fs import tree_size
    from dockerbank.labels import match_label

    filters = qfilters(request)

    def run(engine):
        deleted, reclaimed = [], 0
        for c in engine.containers.list():
            if c.state.status in ACTIVE or c.state.status == "restarting":
                continue
            if not all(match_label(c.config.labels, f) for f in filters.get("label", [])):
                continue
            reclaimed += tree_size(engine.containers.dir(c.id) / "upper")
            engine.containers.remove(c.id)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    return reply(await engine_call(request, run))


# --- wait --------------------------------------------------------------------------------------

async def wait(request: web.Request) -> web.StreamResponse:
    """Headers at once, the body when the condition is met (``not-running``, ``next-exit``, ``removed``)."""
    from dockerbank.runtime import conmon

    ref = request.match_info["id"]
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition}")
    first = await engine_call(request, lambda e: _get(e, ref))
    cid, initial_finished = first.id, first.state.finished_at
    exits = request.app["exits"]
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    seen_exit: int | None = None
    last_code = first.state.exit_code
    while True:
        if request.transport is None or request.transport.is_closing():
            return resp

        def step(engine):
            try:
                return engine.containers.get(cid)
            except NotFound:
                return None

        container = await engine_call(request, step)
        if container is None:
            code = seen_exit if seen_exit is not None else exits.get(cid, last_code)
            break
        state = container.state
        if state.status in ACTIVE or state.status == "restarting":
            base = request.app["config"].containers_dir / cid
            code = await asyncio.get_running_loop().run_in_executor(
                None, conmon.wait_exit, base, state.conmon_pid, state.conmon_start, 0.5)
            if code is not None:
                seen_exit = code
            continue
        last_code = state.exit_code
        if condition == "not-running":
            code = state.exit_code
            break
        if condition == "next-exit" and (seen_exit is not None or state.finished_at != initial_finished):
            code = state.exit_code
            break
        await asyncio.sleep(0.1)
    await resp.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
    await resp.write_eof()
    return resp


# --- attach ------------------------------------------------------------------------------------

async def attach(request: web.Request) -> web.StreamResponse:
    from dockerbank.runtime import conmon

    ref = request.match_info["id"]
    want_stdin, want_out, want_err = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    container = await engine_call(request, lambda e: _get(e, ref))
    cid, tty = container.id, container.config.tty
    base = request.app["config"].containers_dir / cid
    attachment = None
    future = None
    running = container.state.status in ACTIVE
    if running:
        sock = None  # connected after the 101: output must not arrive with the headers (docker-py)
    elif container.state.status == "created" or qbool(request, "stream"):
        # The client attaches before it starts the container: the start hands over the socket
        # conmon opened before the process ran, so no early output is lost.
        future = asyncio.get_running_loop().create_future()
        request.app["hijacks"].setdefault(cid, []).append(future)
        sock = None
    else:
        raise Conflict("You cannot attach to a stopped container, start it first")
    resp, feed = await hijack.upgrade(request, tty)
    try:
        if running:
            sock = await asyncio.get_running_loop().run_in_executor(None, conmon.connect_attach, base)
        if future is not None:
            attachment = await future
            sock = attachment.sock
            if sock is None:
                return resp
        assert sock is not None, "connected above, or handed over by the start"
        await hijack.pump(request, resp, feed, sock, tty=tty, stdin=want_stdin, stdout=want_out, stderr=want_err)
        if attachment is not None:  # this connection started it: record the exit (conmon has no exit command)
            def finish(engine):
                code = conmon.wait_exit(attachment.work, attachment.conmon_pid, attachment.conmon_start)
                if code is not None:
                    request.app["exits"][cid] = code
                engine.containers.cleanup(cid)

            await engine_call(request, finish)
    finally:
        if future is not None:
            waiting = request.app["hijacks"].get(cid, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                request.app["hijacks"].pop(cid, None)
        hijack.close(request)
    return resp


async def resize(request: web.Request) -> web.Response:
    from dockerbank.runtime import conmon

    ref, h, w = request.match_info["id"], qint(request, "h", 0), qint(request, "w", 0)

    def run(engine):
        container = _get(engine, ref)
        if container.state.status not in ACTIVE:
            raise Conflict(f"Container {container.id} is not running")
        conmon.resize(engine.containers.dir(container.id), h, w)

    await engine_call(request, run)
    return web.Response(status=200)


# --- logs ----------------------------------------------------------------------------------------

async def logs(request: web.Request) -> web.StreamResponse:
    from dockerbank.container import logs as lg
    from dockerbank.runtime.conmon import alive

    ref = request.match_info["id"]
    follow, timestamps = qbool(request, "follow"), qbool(request, "timestamps")
    want = {"stdout": qbool(request, "stdout"), "stderr": qbool(request, "stderr")}
    if not want["stdout"] and not want["stderr"]:
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_text = request.query.get("tail", "all")
    tail = None if tail_text in ("all", "") or int(tail_text) < 0 else int(tail_text)
    since = float(request.query["since"]) if request.query.get("since") not in (None, "", "0") else None
    until = float(request.query["until"]) if request.query.get("until") not in (None, "", "0") else None
    container = await engine_call(request, lambda e: _get(e, ref))
    tty = container.config.tty
    path = str(request.app["config"].containers_dir / container.id / "ctr.log")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = False

    def encode(entry) -> bytes | None:
        if not want.get(entry.stream, False):
            return None
        data = lg.format_entry(entry, timestamps)
        return data if tty else hijack.frame(2 if entry.stream == "stderr" else 1, data)

    def produce() -> None:
        try:
            entries, offset = lg.read_entries(path, tail=tail, since=since, until=until)
            for entry in entries:
                loop.call_soon_threadsafe(queue.put_nowait, encode(entry))
            if follow and container.state.status in ACTIVE:
                state = container.state
                for entry in lg.follow(path, offset, lambda: not stop and alive(state.conmon_pid, state.conmon_start),
                                       until=until):
                    if since is None or entry.epoch >= since:
                        loop.call_soon_threadsafe(queue.put_nowait, encode(entry))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, StopIteration)

    resp = web.StreamResponse(headers={"Content-Type": "application/vnd.docker.raw-stream" if tty else
                                       "application/vnd.docker.multiplexed-stream"})
    await resp.prepare(request)
    work = loop.run_in_executor(None, produce)
    try:
        while True:
            item = await queue.get()
            if item is StopIteration:
                break
            if item:
                await resp.write(item)
    except (ConnectionResetError, asyncio.CancelledError):
        stop = True
        raise
    finally:
        stop = True
    await work
    await resp.write_eof()
    return resp


# --- top, stats, changes -----------------------------------------------------------------------

async def top(request: web.Request) -> web.Response:
    from dockerbank.container.top import run_top
    from dockerbank.host.cgroups import container_cgroups_path, pids_of

    ref, ps_args = request.match_info["id"], request.query.get("ps_args") or None

    def run(engine):
        found = _get(engine, ref)
        if found.state.status not in ACTIVE:
            raise Conflict(f"Container {found.id} is not running")
        pids = pids_of(container_cgroups_path(found.id)) or [found.state.pid]
        return run_top(pids, ps_args.split() if ps_args else None).to_api()

    return reply(await engine_call(request, run))


async def stats(request: web.Request) -> web.StreamResponse:
    from dockerbank.container import stats as st
    from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

    ref = request.match_info["id"]
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    container = await engine_call(request, lambda e: _get(e, ref))
    cgroup = Cgroup(detect_layout(), container_cgroups_path(container.id))
    loop = asyncio.get_running_loop()
    running = container.state.status in ACTIVE

    def sample():
        try:
            return st.read_sample(cgroup, container.state.pid)
        except DockerbankError:
            return None

    def empty() -> dict:
        return {"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z", "id": container.id,
                "name": "/" + container.name, "pids_stats": {}, "blkio_stats": {}, "num_procs": 0,
                "storage_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0,
                                                   "throttling_data": {}},
                "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}, "memory_stats": {}}

    if not stream:
        if not running:
            return reply(empty())
        if one_shot:
            current = await loop.run_in_executor(None, sample)
            return reply(st.api_stats(container.id, container.name, current) if current else empty())
        previous = await loop.run_in_executor(None, sample)
        await asyncio.sleep(1.0)
        current = await loop.run_in_executor(None, sample)
        return reply(st.api_stats(container.id, container.name, current, previous) if current else empty())
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    previous = None
    while request.transport is not None and not request.transport.is_closing():
        current = await loop.run_in_executor(None, sample) if running else None
        data = st.api_stats(container.id, container.name, current, previous) if current else empty()
        await resp.write(json.dumps(data).encode() + b"\n")
        if current is None:
            break
        previous = current
        await asyncio.sleep(1.0)
    await resp.write_eof()
    return resp


async def changes(request: web.Request) -> web.Response:
    from dockerbank.container import fileops

    ref = request.match_info["id"]
    found = await engine_call(request, lambda e: [c.to_api() for c in fileops.diff(e.containers, _get(e, ref).id)])
    return reply(found or None)


# --- export, archive ---------------------------------------------------------------------------

async def export(request: web.Request) -> web.StreamResponse:
    from dockerbank.container import fileops

    ref = request.match_info["id"]

    def produce(engine, fd):
        with os.fdopen(os.dup(fd), "wb") as out:
            fileops.export(engine.containers, _get(engine, ref).id, out)

    return await fd_response(request, produce, "application/x-tar")


def _stat_header(st) -> str:
    data = {"name": st.name, "size": st.size, "mode": st.go_mode, "mtime": st.mtime_rfc3339,
            "linkTarget": st.link_target}
    return base64.b64encode(json.dumps(data).encode()).decode()


def _path_stat(engine, ref: str, path: str):
    from dockerbank.container import fileops
    from dockerbank.image.pack import stat_in_root

    with fileops.mounted_rootfs(engine.containers, _get(engine, ref).id) as (_c, rootfs):
        try:
            return stat_in_root(rootfs, path)
        except NotFound as exc:
            raise NotFound(f"Could not find the file {path} in container {ref}") from exc


async def archive_head(request: web.Request) -> web.Response:
    ref, path = request.match_info["id"], request.query.get("path", "")
    st = await engine_call(request, lambda e: _path_stat(e, ref, path))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    from dockerbank.container import fileops
    from dockerbank.image.pack import pack_path

    ref, path = request.match_info["id"], request.query.get("path", "")
    if not path.startswith("/"):
        path = "/" + path
    st = await engine_call(request, lambda e: _path_stat(e, ref, path))

    def produce(engine, fd):
        with os.fdopen(os.dup(fd), "wb") as out:
            with fileops.mounted_rootfs(engine.containers, _get(engine, ref).id) as (_c, rootfs):
                pack_path(rootfs, path, out)

    return await fd_response(request, produce, "application/x-tar",
                             {"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_put(request: web.Request) -> web.Response:
    from dockerbank.container import fileops
    from dockerbank.image.unpack import extract_into

    ref, path = request.match_info["id"], request.query.get("path", "")
    if not path.startswith("/"):
        path = "/" + path
    owner = None if qbool(request, "copyUIDGID") else (0, 0)
    async with body_file(request) as tar_path:
        def run(engine):
            with fileops.mounted_rootfs(engine.containers, _get(engine, ref).id) as (_c, rootfs):
                with open(tar_path, "rb") as handle:
                    extract_into(handle, rootfs, path, owner=owner)

        await engine_call(request, run)
    return web.Response(status=200)


# --- exec --------------------------------------------------------------------------------------

async def exec_create(request: web.Request) -> web.Response:
    from dockerbank.container.names import new_id

    ref = request.match_info["id"]
    body = bodies.check(await read_json(request), bodies.EXEC_CREATE, "ExecConfig")
    if not body.get("Cmd"):
        raise InvalidArgument("No exec command specified")

    def run(engine):
        found = _get(engine, ref)
        if found.state.status != "running":
            raise Conflict(f"Container {found.id} is not running")
        return found.id

    cid = await engine_call(request, run)
    exec_id = new_id()
    request.app["execs"][exec_id] = {
        "ID": exec_id, "ContainerID": cid, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout", True)),
        "OpenStderr": bool(body.get("AttachStderr", True)), "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": body["Cmd"][0], "arguments": body["Cmd"][1:],
                          "privileged": bool(body.get("Privileged")), "user": body.get("User") or ""},
        "_env": list(body.get("Env") or []), "_workdir": body.get("WorkingDir") or None, "_work": None,
    }
    return reply({"Id": exec_id}, status=201)


def _exec_of(request: web.Request) -> dict:
    found = request.app["execs"].get(request.match_info["id"])
    if found is None:
        raise NotFound(f"No such exec instance: {request.match_info['id']}")
    return found


async def exec_start(request: web.Request) -> web.StreamResponse:
    from dockerbank.runtime import conmon

    info = _exec_of(request)
    body = await read_json(request)
    if info["Running"] or info["ExitCode"] is not None:
        raise Conflict(f"Exec {info['ID']} has already been started")
    detach = bool(body.get("Detach"))
    tty = bool(body.get("Tty", info["ProcessConfig"]["tty"]))
    proc = info["ProcessConfig"]
    command = [proc["entrypoint"], *proc["arguments"]]

    def run(engine):
        return engine.containers.exec(info["ContainerID"], command, interactive=info["OpenStdin"], tty=tty,
                                      detach=detach, env=info["_env"], user=proc["user"] or None,
                                      workdir=info["_workdir"], privileged=proc["privileged"])

    if detach:
        await engine_call(request, run)
        info["Running"] = True
        return web.Response(status=200)

    def check(engine):
        found = _get(engine, info["ContainerID"])
        if found.state.status != "running":
            raise Conflict(f"Container {found.id} is not running")

    await engine_call(request, check)
    # The 101 goes out before the process starts: docker-py reads the raw socket after parsing the
    # headers, so output arriving with them would sit unread in its header buffer.
    resp, feed = await hijack.upgrade(request, tty)
    try:
        try:
            attachment = await engine_call(request, run)
        except DockerbankError as exc:
            message = (exc.message + "\n").encode()
            if request.transport is not None:  # None when the client went away meanwhile
                request.transport.write(message if tty else hijack.frame(hijack.STREAM_STDERR, message))
            info["ExitCode"] = exc.exit_code if exc.exit_code in (126, 127) else 126
            return resp
        info["Running"] = True
        info["_work"] = attachment.work
        await hijack.pump(request, resp, feed, attachment.sock, tty=tty, stdin=info["OpenStdin"],
                          stdout=info["OpenStdout"], stderr=info["OpenStderr"])

        def finish():
            code = conmon.wait_exit(attachment.work, attachment.conmon_pid, attachment.conmon_start)
            shutil.rmtree(attachment.work, ignore_errors=True)
            return code

        code = await asyncio.get_running_loop().run_in_executor(None, finish)
        info["ExitCode"] = code if code is not None else 255
    finally:
        info["Running"] = False
        if info["ExitCode"] is None:
            info["ExitCode"] = 255
        hijack.close(request)
    return resp


async def exec_resize(request: web.Request) -> web.Response:
    from dockerbank.runtime import conmon

    info = _exec_of(request)
    if info["_work"] is not None:
        conmon.resize(info["_work"], qint(request, "h", 0), qint(request, "w", 0))
    return web.Response(status=200)


async def exec_inspect(request: web.Request) -> web.Response:
    info = _exec_of(request)
    return reply({k: v for k, v in info.items() if not k.startswith("_")})


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_containers),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause),
    ("POST", "/containers/{id}/wait", wait),
    ("POST", "/containers/{id}/attach", attach),
    ("POST", "/containers/{id}/resize", resize),
    ("POST", "/containers/{id}/rename", rename),
    ("GET", "/containers/{id}/logs", logs),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/stats", stats),
    ("GET", "/containers/{id}/changes", changes),
    ("GET", "/containers/{id}/export", export),
    ("HEAD", "/containers/{id}/archive", archive_head),
    ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put),
    ("DELETE", "/containers/{id}", remove),
    ("POST", "/containers/{id}/exec", exec_create),
    ("POST", "/exec/{id}/start", exec_start),
    ("POST", "/exec/{id}/resize", exec_resize),
    ("GET", "/exec/{id}/json", exec_inspect),
]
