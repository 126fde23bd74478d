"""Container and exec endpoints. Each handler parses the request, calls ``engine.container_ops``
(engine.containers: the same use cases the CLI calls) and shapes the answer; the views come from
container.views."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from aiohttp import web

from dockerbank.api.base import (EXECS, EXITS, HIJACKS, LISTS, STATE_VERSION, engine_call, qbool, qfilters, qint,
                                  read_json, reply)
from dockerbank.api.compat import bodies
from dockerbank.api.compat import hijack
from dockerbank.api.compat.streams import body_file, fd_response
from dockerbank.api.errors import NotModified
from dockerbank.errors import Conflict, DockerbankError, InvalidArgument, NotFound
from dockerbank.host.inflight import following

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
    from dockerbank.container.options import CreateOptions

    host = body.get("HostConfig") or {}
    _refuse_unsupported(host)
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
        "ip6": ((first.get("IPAMConfig") or {}).get("IPv6Address")) or None,
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
        links=list(host.get("Links") or []), pid_mode=host.get("PidMode") or "", uts_mode=host.get("UTSMode") or "",
        cgroupns_mode=host.get("CgroupnsMode") or "", group_add=list(host.get("GroupAdd") or []),
        device_cgroup_rules=list(host.get("DeviceCgroupRules") or []), cpuset_cpus=host.get("CpusetCpus") or "",
        cpuset_mems=host.get("CpusetMems") or "", isolation=host.get("Isolation") or "",
        mac_address=body.get("MacAddress") or first.get("MacAddress") or "",
        userns=host.get("UsernsMode") or "",
        ipc_mode=host.get("IpcMode") or "", shm_size=host.get("ShmSize") or 0, ulimits=list(host.get("Ulimits") or []),
        sysctls=dict(host.get("Sysctls") or {}), oom_score_adj=host.get("OomScoreAdj") or 0,
        cpu_period=host.get("CpuPeriod") or 0, cpu_quota=host.get("CpuQuota") or 0,
        memory_reservation=host.get("MemoryReservation") or 0,
    )


def _refuse_unsupported(host: dict) -> None:
    """HostConfig fields this engine cannot honour, refused when set (never dropped in silence)."""
    from dockerbank.errors import NotSupported

    if host.get("DeviceRequests"):
        first = host["DeviceRequests"][0] if isinstance(host["DeviceRequests"][0], dict) else {}
        caps = str(first.get("Capabilities") or []).replace("'", "").replace(", ", " ")
        raise InvalidArgument(f'could not select device driver "{first.get("Driver") or ""}" with capabilities: {caps}')
    if host.get("StorageOpt"):
        raise InvalidArgument("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    if host.get("CpuRealtimePeriod") or host.get("CpuRealtimeRuntime"):
        raise NotSupported("real-time CPU scheduling (CpuRealtimePeriod/Runtime) is not supported by Dockerbank")
    for key in ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                "BlkioDeviceWriteIOps"):
        if host.get(key):
            raise NotSupported(f"per-device block IO limits ({key}) are not supported by Dockerbank: use BlkioWeight")
    if host.get("KernelMemory") or host.get("KernelMemoryTCP"):
        raise NotSupported("kernel memory limits are not supported (deprecated by docker, gone from cgroup v2)")
    if host.get("CgroupParent"):
        raise NotSupported("CgroupParent is not supported: Dockerbank's containers live under /dockerbank")


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
    container = await engine_call(request, lambda e: e.container_ops.create(opts))
    return reply({"Id": container.id, "Warnings": []}, status=201)


# --- list, inspect ---------------------------------------------------------------------------

def summary(engine, c, size_rw: int | None = None, size_root_fs: int | None = None, net=None) -> dict:
    """One element of ``GET /containers/json``; ``net``: its (settings, port mappings) when the
    caller read them for the whole list (``NetworkService.settings_of``)."""
    from dockerbank.volume import mounts as mnt
    from dockerbank.container.logs import parse_time
    from dockerbank.container.views import status_text

    mounts = []
    for m in c.config.mounts:
        spec = mnt.MountSpec.from_dict(m)
        entry = mnt.inspect_mount(spec, "")
        if entry is not None:
            mounts.append(entry)
    ports, networks = [], {c.config.network_mode: {"NetworkID": "", "IPAddress": ""}}
    if (getattr(c.config, "network", None) or {}).get("kind") in ("bridge", "user", "container"):
        try:
            settings, mappings = net if net is not None else (engine.networks.settings(c.id),
                                                              engine.networks.port_mappings(c.id))
            ports = [{"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port, "PublicPort": p.host_port,
                      "Type": p.protocol} for p in mappings]
            networks = settings["Networks"] or networks
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
    if size_rw is not None:
        item["SizeRw"] = size_rw
        item["SizeRootFs"] = size_root_fs
    return item


async def list_containers(request: web.Request) -> web.Response:
    """``GET /containers/json``. While the state version holds (engine.stateversion), the
    containers and their items come from the last list with the same query, and only the
    Status texts (which move with the clock) are written anew."""
    from dockerbank.container.views import status_text
    from dockerbank.engine.containers import ListOptions

    opts = ListOptions(all=qbool(request, "all"), last=qint(request, "limit", -1) or -1, filters=qfilters(request),
                       size=qbool(request, "size"))

    def run(engine):
        entries = engine.container_ops.list(opts)
        nets = engine.networks.settings_of(e.container.id for e in entries) if entries else {}
        no_endpoints: tuple[dict, list] = ({"Networks": {}}, [])
        return [(entry.container, summary(engine, entry.container, entry.size_rw, entry.size_root_fs,
                                          nets.get(entry.container.id, no_endpoints))) for entry in entries]

    memo, key = request.app[LISTS], request.path_qs
    # sizes are read from the disk, which no version covers
    version = None if opts.size else request.app[STATE_VERSION].current()
    listed = memo.get(key, version)
    if listed is None:
        started = time.monotonic()
        listed = await engine_call(request, run)
        memo.put(key, version, listed, started)
    now = time.time()
    return reply([dict(item, Status=status_text(container, now)) for container, item in listed])


def _get(engine, ref: str):
    return engine.container_ops.get(ref)


def _single(reports) -> None:
    """One item's report as the API answers it: its error, 304 for nothing to do, else 204."""
    report = reports[0]
    if report.error is not None:
        raise report.error
    if report.not_modified:
        raise NotModified("")


async def inspect(request: web.Request) -> web.Response:
    ref, size = request.match_info["id"], qbool(request, "size")
    data = await engine_call(request, lambda e: e.container_ops.inspect(ref, size=size))
    # docker-py's containers.run() reads the output only from "json-file"/"journald" containers; the
    # logs endpoint serves conmon's k8s-file log the same way, so the API names the driver json-file.
    if data["HostConfig"]["LogConfig"]["Type"] in ("k8s-file", "local"):
        data["HostConfig"]["LogConfig"]["Type"] = "json-file"
    return reply(data)


# --- lifecycle -------------------------------------------------------------------------------

async def start(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    hijacks = request.app[HIJACKS]

    def run(engine):
        container = _get(engine, ref)
        if container.state.status in ACTIVE:
            raise NotModified("container already started")
        waiting = hijacks.get(container.id)
        attachment = None
        if waiting:  # an attach came first: it streams from the start (no early output lost)
            attachment = engine.container_ops.start_attached(container.id)
        else:
            _single(engine.container_ops.start([container.id]))
        return waiting, attachment

    waiting, attachment = await engine_call(request, run)
    if waiting:
        future = waiting.pop(0)
        if not future.done():
            future.set_result(attachment)
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], qint(request, "t")
    await engine_call(request, lambda e: _single(e.container_ops.stop([ref], timeout)))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    ref, sig = request.match_info["id"], request.query.get("signal") or "KILL"
    await engine_call(request, lambda e: _single(e.container_ops.kill([ref], sig)))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    ref, timeout = request.match_info["id"], qint(request, "t")
    await engine_call(request, lambda e: _single(e.container_ops.restart([ref], timeout)))
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    await engine_call(request, lambda e: _single(e.container_ops.pause([ref])))
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    await engine_call(request, lambda e: _single(e.container_ops.unpause([ref])))
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    ref, force, volumes = request.match_info["id"], qbool(request, "force"), qbool(request, "v")
    await engine_call(request, lambda e: _single(e.container_ops.remove([ref], force=force, volumes=volumes)))
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    ref, name = request.match_info["id"], request.query.get("name", "")
    await engine_call(request, lambda e: e.container_ops.rename(ref, name))
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    """``POST /containers/{id}/update``: resources and restart policy (docker's UpdateConfig)."""
    from dockerbank.engine.container_options import UpdateOptions

    ref, body = request.match_info["id"], await read_json(request)
    restart = None
    if body.get("RestartPolicy"):
        policy = body["RestartPolicy"]
        restart = policy.get("Name") or "no"
        if restart == "on-failure" and policy.get("MaximumRetryCount"):
            restart += f":{policy['MaximumRetryCount']}"

    def given(key: str) -> int | None:
        value = body.get(key)
        return None if value is None or (value == 0 and key not in ("PidsLimit",)) else int(value)

    opts = UpdateOptions(memory=given("Memory"), memory_swap=given("MemorySwap"), nano_cpus=given("NanoCpus"),
                         cpu_shares=given("CpuShares"), pids_limit=given("PidsLimit"),
                         blkio_weight=given("BlkioWeight"), restart=restart)
    await engine_call(request, lambda e: _single(e.container_ops.update([ref], opts)))
    return reply({"Warnings": []})


async def prune(request: web.Request) -> web.Response:
    from dockerbank.engine.container_options import PruneOptions

    opts = PruneOptions(qfilters(request))
    report = await engine_call(request, lambda e: e.container_ops.prune(opts))
    return reply({"ContainersDeleted": report.deleted or None, "SpaceReclaimed": report.space_reclaimed})


# --- wait --------------------------------------------------------------------------------------

async def wait(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine.containers import WAIT_CONDITIONS

    """Headers at once, the body when the condition is met (``not-running``, ``next-exit``, ``removed``)."""
    ref = request.match_info["id"]
    condition = request.query.get("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise InvalidArgument(f"invalid condition: {condition}")
    first = await engine_call(request, lambda e: _get(e, ref))  # 404 before the headers
    exits = request.app[EXITS]
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    following(request)   # a stop does not wait for the container: the client sees the stream end
    transport = request.transport

    def gone() -> bool:
        return transport is None or transport.is_closing()

    report = (await engine_call(request, lambda e: e.container_ops.wait([first.id], condition, gone)))[0]
    if report.error is not None:
        if gone():
            return resp
        code = exits.get(first.id, first.state.exit_code)
        error = {"Message": report.error.message}
    else:
        code = report.exit_code if report.exit_code is not None else exits.get(first.id, first.state.exit_code)
        error = None
    await resp.write(json.dumps({"StatusCode": code, "Error": error}).encode() + b"\n")
    await resp.write_eof()
    return resp


# --- attach ------------------------------------------------------------------------------------

async def attach(request: web.Request) -> web.StreamResponse:
    ref = request.match_info["id"]
    want_stdin, want_out, want_err = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    container = await engine_call(request, lambda e: _get(e, ref))
    cid, tty = container.id, container.config.tty
    attachment = None
    future = None
    running = container.state.status in ACTIVE
    if running:
        sock = None  # connected after the 101: output must not arrive with the headers (docker-py)
    elif container.state.status == "created" or qbool(request, "stream"):
        # The client attaches before it starts the container: the start hands over the socket
        # conmon opened before the process ran, so no early output is lost.
        future = asyncio.get_running_loop().create_future()
        request.app[HIJACKS].setdefault(cid, []).append(future)
        sock = None
    else:
        raise Conflict("You cannot attach to a stopped container, start it first")
    resp, feed = await hijack.upgrade(request, tty)
    try:
        if running:
            sock = (await engine_call(request, lambda e: e.container_ops.attach(cid, stdin=want_stdin))).sock
        if future is not None:
            attachment = await future
            sock = attachment.sock
            if sock is None:
                return resp
        assert sock is not None, "connected above, or handed over by the start"
        await hijack.pump(request, resp, feed, sock, tty=tty, stdin=want_stdin, stdout=want_out, stderr=want_err)
        if attachment is not None:  # this connection started it: record the exit (conmon has no exit command)
            def finish(engine):
                def exited(code: int) -> None:
                    request.app[EXITS][cid] = code

                exited(attachment.finish(engine.containers, exited))

            await engine_call(request, finish)
    finally:
        if future is not None:
            waiting = request.app[HIJACKS].get(cid, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                request.app[HIJACKS].pop(cid, None)
        hijack.close(request)
    return resp


async def attach_ws(request: web.Request) -> web.WebSocketResponse:
    """``GET /containers/{id}/attach/ws``: attach over a websocket (Portainer's console, web UIs)."""
    ref = request.match_info["id"]
    want_stdin, want_out, want_err = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    if not (want_out or want_err or want_stdin):  # dockerd's default for a bare ws attach: everything
        want_stdin = want_out = want_err = True
    attachment = await engine_call(request, lambda e: e.container_ops.attach(ref, stdin=want_stdin))
    ws = web.WebSocketResponse()
    try:
        await ws.prepare(request)
        await hijack.pump_websocket(ws, attachment.sock, stdin=want_stdin, stdout=want_out, stderr=want_err)
    finally:
        attachment.sock.close()
        if not ws.closed:
            await ws.close()
    return ws


async def resize(request: web.Request) -> web.Response:
    ref, h, w = request.match_info["id"], qint(request, "h", 0), qint(request, "w", 0)
    await engine_call(request, lambda e: e.container_ops.resize(ref, h or 0, w or 0))
    return web.Response(status=200)


# --- logs ----------------------------------------------------------------------------------------

async def logs(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine.container_options import LogsOptions
    from dockerbank.engine.containers import parse_tail
    from dockerbank.engine.sinks import CallbackSink

    ref = request.match_info["id"]
    opts = LogsOptions(tail=parse_tail(request.query.get("tail")), since=_epoch(request, "since"),
                       until=_epoch(request, "until"), follow=qbool(request, "follow"),
                       timestamps=qbool(request, "timestamps"), stdout=qbool(request, "stdout"),
                       stderr=qbool(request, "stderr"))
    if not opts.stdout and not opts.stderr:
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    container = await engine_call(request, lambda e: _get(e, ref))
    tty = container.config.tty
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = False

    def sink(stream: int) -> CallbackSink:
        def write(data: bytes) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, data if tty else hijack.frame(stream, data))

        return CallbackSink(write)

    def produce(engine) -> None:
        try:
            engine.container_ops.logs(container.id, opts, sink(hijack.STREAM_STDOUT), sink(hijack.STREAM_STDERR),
                                      cancelled=lambda: stop)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, StopIteration)

    resp = web.StreamResponse(headers={"Content-Type": "application/vnd.docker.raw-stream" if tty else
                                       "application/vnd.docker.multiplexed-stream"})
    await resp.prepare(request)
    if opts.follow:
        following(request)   # until the container stops: a stop of the service ends it
    work = engine_call(request, produce)
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
    try:
        await work
    except DockerbankError:
        pass  # the headers went out: the short stream tells
    await resp.write_eof()
    return resp


def _epoch(request: web.Request, name: str) -> float | None:
    """``since``/``until``: Unix seconds (``0``: unset), parsed as the CLI's flags are."""
    from dockerbank.container.logs import parse_since

    value = request.query.get(name)
    return None if value in (None, "", "0") else parse_since(value)


# --- top, stats, changes -----------------------------------------------------------------------

async def top(request: web.Request) -> web.Response:
    ref, ps_args = request.match_info["id"], request.query.get("ps_args") or None
    return reply(await engine_call(request, lambda e: e.container_ops.top(ref, ps_args).to_api()))


async def stats(request: web.Request) -> web.StreamResponse:
    from dockerbank.container import stats as st

    ref = request.match_info["id"]
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    container = await engine_call(request, lambda e: _get(e, ref))
    running = container.state.status in ACTIVE

    async def sample():
        return await engine_call(request, lambda e: e.container_ops.stats(container).sample)

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
            current = await sample()
            return reply(st.api_stats(container.id, container.name, current) if current else empty())
        previous = await sample()
        await asyncio.sleep(1.0)
        current = await sample()
        return reply(st.api_stats(container.id, container.name, current, previous) if current else empty())
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    following(request)   # a sample a second until the client leaves: a stop ends it
    previous = None
    while request.transport is not None and not request.transport.is_closing():
        current = await sample() if running else None
        data = st.api_stats(container.id, container.name, current, previous) if current else empty()
        await resp.write(json.dumps(data).encode() + b"\n")
        if current is None:
            break
        previous = current
        await asyncio.sleep(1.0)
    await resp.write_eof()
    return resp


async def changes(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    found = await engine_call(request, lambda e: [c.to_api() for c in e.container_ops.diff(ref)])
    return reply(found or None)


# --- export, archive ---------------------------------------------------------------------------

async def export(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine.sinks import FdSink

    ref = request.match_info["id"]
    return await fd_response(request, lambda engine, fd: engine.container_ops.export(ref, FdSink(fd)),
                             "application/x-tar")


def _stat_header(st) -> str:
    data = {"name": st.name, "size": st.size, "mode": st.go_mode, "mtime": st.mtime_rfc3339,
            "linkTarget": st.link_target}
    return base64.b64encode(json.dumps(data).encode()).decode()


async def archive_head(request: web.Request) -> web.Response:
    ref, path = request.match_info["id"], request.query.get("path", "")
    st = await engine_call(request, lambda e: e.container_ops.archive_stat(ref, path))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine.sinks import FdSink

    ref, path = request.match_info["id"], request.query.get("path", "")
    st = await engine_call(request, lambda e: e.container_ops.archive_stat(ref, path))
    return await fd_response(request, lambda engine, fd: engine.container_ops.archive_get(ref, path, FdSink(fd)),
                             "application/x-tar", {"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_put(request: web.Request) -> web.Response:
    ref, path = request.match_info["id"], request.query.get("path", "")
    copy_uid_gid = qbool(request, "copyUIDGID")
    async with body_file(request) as tar_path:
        def run(engine):
            with open(tar_path, "rb") as handle:
                engine.container_ops.archive_put(ref, path, handle, copy_uid_gid=copy_uid_gid)

        await engine_call(request, run)
    return web.Response(status=200)


# --- exec --------------------------------------------------------------------------------------

async def exec_create(request: web.Request) -> web.Response:
    from dockerbank.container.names import new_id

    ref = request.match_info["id"]
    body = bodies.check(await read_json(request), bodies.EXEC_CREATE, "ExecConfig")
    if not body.get("Cmd"):
        raise InvalidArgument("No exec command specified")

    cid = (await engine_call(request, lambda e: e.container_ops.check_running(ref))).id
    exec_id = new_id()
    request.app[EXECS][exec_id] = {
        "ID": exec_id, "ContainerID": cid, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout", True)),
        "OpenStderr": bool(body.get("AttachStderr", True)), "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": body["Cmd"][0], "arguments": body["Cmd"][1:],
                          "privileged": bool(body.get("Privileged")),
                          **({"user": body["User"]} if body.get("User") else {})},  # omitted when empty
        "_env": list(body.get("Env") or []), "_workdir": body.get("WorkingDir") or None, "_work": None,
    }
    return reply({"Id": exec_id}, status=201)


def _exec_of(request: web.Request) -> dict:
    found = request.app[EXECS].get(request.match_info["id"])
    if found is None:
        raise NotFound(f"No such exec instance: {request.match_info['id']}")
    return found


async def exec_start(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine.containers import ExecOptions

    info = _exec_of(request)
    body = await read_json(request)
    if info["Running"] or info["ExitCode"] is not None:
        raise Conflict(f"Exec {info['ID']} has already been started")
    detach = bool(body.get("Detach"))
    tty = bool(body.get("Tty", info["ProcessConfig"]["tty"]))
    proc = info["ProcessConfig"]
    command = [proc["entrypoint"], *proc["arguments"]]

    opts = ExecOptions(command, interactive=info["OpenStdin"], tty=tty, detach=detach, env=info["_env"],
                       user=proc.get("user") or None, workdir=info["_workdir"], privileged=proc["privileged"])

    def run(engine):
        return engine.container_ops.exec(info["ContainerID"], opts)

    if detach:
        await engine_call(request, run)
        info["Running"] = True
        return web.Response(status=200)

    await engine_call(request, lambda e: e.container_ops.check_running(info["ContainerID"]))
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

        info["ExitCode"] = await engine_call(request, lambda e: attachment.finish(e.containers))
    finally:
        info["Running"] = False
        if info["ExitCode"] is None:
            info["ExitCode"] = 255
        hijack.close(request)
    return resp


async def exec_resize(request: web.Request) -> web.Response:
    info = _exec_of(request)
    if info["_work"] is not None:
        h, w = qint(request, "h", 0) or 0, qint(request, "w", 0) or 0
        await engine_call(request, lambda e: e.container_ops.resize_session(info["_work"], h, w))
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
    ("GET", "/containers/{id}/attach/ws", attach_ws),
    ("POST", "/containers/{id}/resize", resize),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/update", update),
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
