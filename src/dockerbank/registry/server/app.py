"""The registry's HTTP app: OCI distribution spec v1.1 over ``RegistryStorage``.

aiohttp was chosen on purpose: request bodies stream in (a 200 MB layer never sits in
memory), blob GETs go out by ``sendfile`` with Range support (``FileResponse``), and one
event loop serves many concurrent layer transfers without a thread per connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from dockerbank.host.inflight import GRACE, IN_FLIGHT, InFlight, count_in_flight
from dockerbank.registry import mediatypes as mt
from dockerbank.registry.server.auth import Htpasswd
from dockerbank.registry.server.storage import (
    RegistryError,
    RegistryStorage,
    check_digest,
    check_name,
    name_unknown,
)

REALM = "Dockerbank Registry"
CHUNK = 1 << 20
_ROUTE = re.compile(
    r"^(?P<name>.+)/(?:blobs/uploads/(?P<upload>[^/]*)|blobs/(?P<digest>[^/]+)|manifests/(?P<reference>[^/]+)"
    r"|(?P<tags>tags/list)|referrers/(?P<subject>[^/]+))$"
)
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")
STORAGE_KEY = web.AppKey("storage", RegistryStorage)
AUTH_KEY: web.AppKey[Htpasswd | None] = web.AppKey("auth")


def _error_response(error: RegistryError) -> web.Response:
    headers = {"Docker-Distribution-API-Version": "registry/2.0", **error.headers}
    return web.json_response(error.body(), status=error.status, headers=headers)


@web.middleware
async def _middleware(request: web.Request, handler):
    auth: Htpasswd | None = request.app[AUTH_KEY]
    if auth is not None and auth.check(request.headers.get("Authorization")) is None:
        return _error_response(RegistryError(
            "UNAUTHORIZED", 401, "authentication required", None,
            {"WWW-Authenticate": f'Basic realm="{REALM}"'},
        ))
    storage: RegistryStorage = request.app[STORAGE_KEY]
    if storage.read_only and request.method not in ("GET", "HEAD"):
        return _error_response(RegistryError("UNSUPPORTED", 405, "the registry is in read-only mode"))
    try:
        response = await handler(request)
    except RegistryError as error:
        return _error_response(error)
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    return response


def _location(name: str, kind: str, item: str) -> str:
    return f"/v2/{name}/{kind}/{item}"


async def _base(request: web.Request) -> web.Response:
    return web.json_response({})


async def _catalog(request: web.Request) -> web.Response:
    storage = request.app[STORAGE_KEY]
    items, link = _paginate(storage.repositories(), request, "/v2/_catalog")
    return web.json_response({"repositories": items}, headers=link)


def _paginate(items: list[str], request: web.Request, path: str) -> tuple[list[str], dict]:
    return paginate(items, request.query.get("n"), request.query.get("last"), path)


def paginate(items: list[str], n: str | None, last: str | None, path: str) -> tuple[list[str], dict]:
    """Apply ``n``/``last`` to a sorted list; build ``Link: <...>; rel="next"`` when more remain."""
    if last:
        items = [item for item in items if item > last]
    if n is None:
        return items, {}
    try:
        count = int(n)
        if count < 0:
            raise ValueError
    except ValueError as exc:
        raise RegistryError("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested", {"n": n}) from exc
    page = items[:count]
    headers = {}
    if len(items) > count and page:
        headers["Link"] = f'<{path}?{urlencode({"n": count, "last": page[-1]})}>; rel="next"'
    return page, headers


async def _dispatch(request: web.Request) -> web.StreamResponse:
    tail = request.match_info["tail"]
    if tail == "":
        return await _base(request)
    if tail == "_catalog":
        if request.method != "GET":
            raise _unsupported(request)
        return await _catalog(request)
    match = _ROUTE.match(tail)
    if not match:
        raise RegistryError("NOT_FOUND", 404, "no such route", {"path": request.path})
    name = check_name(match["name"])
    method = request.method
    if match["upload"] is not None:
        upload = match["upload"]
        if upload == "":
            if method == "POST":
                return await _start_upload(request, name)
        elif method == "PATCH":
            return await _patch_upload(request, name, upload)
        elif method == "PUT":
            return await _put_upload(request, name, upload)
        elif method == "GET":
            return _upload_status(request, name, upload)
        elif method == "DELETE":
            storage = request.app[STORAGE_KEY]
            storage.cancel_upload(storage.get_upload(name, upload))
            return web.Response(status=204)
    elif match["digest"] is not None:
        if method in ("GET", "HEAD"):
            return _get_blob(request, name, match["digest"])
        if method == "DELETE":
            request.app[STORAGE_KEY].delete_blob(name, check_digest(match["digest"]))
            return web.Response(status=202)
    elif match["reference"] is not None:
        if method in ("GET", "HEAD"):
            return _get_manifest(request, name, match["reference"])
        if method == "PUT":
            return await _put_manifest(request, name, match["reference"])
        if method == "DELETE":
            request.app[STORAGE_KEY].delete_manifest(name, match["reference"])
            return web.Response(status=202)
    elif match["tags"] is not None:
        if method == "GET":
            storage = request.app[STORAGE_KEY]
            tags, link = _paginate(storage.tags(name), request, f"/v2/{name}/tags/list")
            return web.json_response({"name": name, "tags": tags}, headers=link)
    elif match["subject"] is not None and method == "GET":
        return _referrers(request, name, match["subject"])
    raise _unsupported(request)


def _unsupported(request: web.Request) -> RegistryError:
    return RegistryError("UNSUPPORTED", 405, f"method {request.method} not allowed on {request.path}")


# --- blobs ---------------------------------------------------------------------------------


def _get_blob(request: web.Request, name: str, digest: str) -> web.StreamResponse:
    storage = request.app[STORAGE_KEY]
    if not storage.repo_exists(name):
        raise RegistryError("BLOB_UNKNOWN", 404, "blob unknown to registry", {"digest": digest})
    path = storage.blob_in_repo(name, check_digest(digest))
    headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes", "Cache-Control": "max-age=31536000"}
    # FileResponse: sendfile, HEAD, Range -> 206 with Content-Range, unsatisfiable -> 416
    return web.FileResponse(path, headers=headers)


async def _stream_into(request: web.Request, storage: RegistryStorage, upload) -> int:
    """Append the request body to an upload session; return the number of bytes written."""
    written = 0
    loop = asyncio.get_running_loop()
    pending = bytearray()
    with storage.open_upload(upload) as handle:
        async for chunk in request.content.iter_any():
            pending += chunk
            if len(pending) >= CHUNK:
                # hashing and writing off the loop, a MiB at a time: sha256 releases the GIL,
                # so concurrent uploads use both cores and the loop keeps reading sockets
                data, pending = bytes(pending), bytearray()
                await loop.run_in_executor(None, _write_and_hash, storage, upload, handle, data)
                written += len(data)
        if pending:
            await loop.run_in_executor(None, _write_and_hash, storage, upload, handle, bytes(pending))
            written += len(pending)
    return written


def _write_and_hash(storage: RegistryStorage, upload, handle, chunk: bytes) -> None:
    handle.write(chunk)
    storage.uploaded(upload, chunk)


def _upload_headers(name: str, upload) -> dict:
    return {
        "Location": _location(name, "blobs/uploads", upload.id),
        "Range": f"0-{max(upload.size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
        "Content-Length": "0",
    }


async def _start_upload(request: web.Request, name: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    mount, source = request.query.get("mount"), request.query.get("from")
    if mount and source and storage.mount_blob(name, check_digest(mount), source):
        return web.Response(status=201, headers={
            "Location": _location(name, "blobs", mount), "Docker-Content-Digest": mount, "Content-Length": "0",
        })
    digest = request.query.get("digest")
    upload = storage.start_upload(name)
    if digest:
        check_digest(digest)
        try:
            await _stream_into(request, storage, upload)
            final = storage.finish_upload(upload, digest)
        except BaseException:
            storage.cancel_upload(upload)
            raise
        return web.Response(status=201, headers={
            "Location": _location(name, "blobs", final), "Docker-Content-Digest": final, "Content-Length": "0",
        })
    return web.Response(status=202, headers=_upload_headers(name, upload))


def _upload_status(request: web.Request, name: str, upload_id: str) -> web.Response:
    upload = request.app[STORAGE_KEY].get_upload(name, upload_id)
    headers = _upload_headers(name, upload)
    return web.Response(status=204, headers=headers)


def _check_range(request: web.Request, upload) -> None:
    """A chunk must start where the session ends (Content-Range ``start-end``, inclusive)."""
    header = request.headers.get("Content-Range")
    if not header:
        return
    match = _CONTENT_RANGE.match(header.strip())
    if not match:
        raise RegistryError("BLOB_UPLOAD_INVALID", 400, "invalid Content-Range", {"Content-Range": header})
    start, end = int(match[1]), int(match[2])
    length = request.content_length
    if start != upload.size or end < start or (length is not None and end - start + 1 != length):
        raise RegistryError("BLOB_UPLOAD_INVALID", 416, "chunk out of order or of the wrong length",
                            {"Content-Range": header, "expected_start": upload.size},
                            {"Location": _location(request.match_info["tail"].split("/blobs/")[0], "blobs/uploads",
                                                   upload.id),
                             "Range": f"0-{max(upload.size - 1, 0)}"})


async def _patch_upload(request: web.Request, name: str, upload_id: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    upload = storage.get_upload(name, upload_id)
    _check_range(request, upload)
    await _stream_into(request, storage, upload)
    return web.Response(status=202, headers=_upload_headers(name, upload))


async def _put_upload(request: web.Request, name: str, upload_id: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    upload = storage.get_upload(name, upload_id)
    digest = request.query.get("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", 400, "the digest query parameter is required")
    check_digest(digest)
    if request.can_read_body:
        _check_range(request, upload)
        await _stream_into(request, storage, upload)
    final = storage.finish_upload(upload, digest)
    return web.Response(status=201, headers={
        "Location": _location(name, "blobs", final), "Docker-Content-Digest": final, "Content-Length": "0",
    })


# --- manifests -----------------------------------------------------------------------------


def _get_manifest(request: web.Request, name: str, reference: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    if not storage.repo_exists(name):
        raise name_unknown(name)
    path, media_type, digest = storage.get_manifest(name, reference)
    body = path.read_bytes()
    headers = {"Docker-Content-Digest": digest, "Content-Type": media_type, "ETag": f'"{digest}"'}
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return web.Response(status=200, headers=headers)
    return web.Response(status=200, body=body, headers=headers)


async def _put_manifest(request: web.Request, name: str, reference: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > (4 << 20):
            raise RegistryError("SIZE_INVALID", 413, "manifest too large")
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip() or None
    digest, subject = storage.put_manifest(name, reference, bytes(body), content_type)
    headers = {"Location": _location(name, "manifests", digest), "Docker-Content-Digest": digest,
               "Content-Length": "0"}
    if subject:
        headers["OCI-Subject"] = subject
    return web.Response(status=201, headers=headers)


def _referrers(request: web.Request, name: str, subject: str) -> web.Response:
    storage = request.app[STORAGE_KEY]
    check_digest(subject)
    artifact_type = request.query.get("artifactType")
    manifests = storage.referrers(name, subject, artifact_type) if storage.repo_exists(name) else []
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests})
    return web.Response(status=200, text=body, content_type=mt.OCI_INDEX, headers=headers)


# --- app and serving -----------------------------------------------------------------------


def make_app(storage: RegistryStorage, htpasswd: Path | None = None) -> web.Application:
    """The aiohttp application serving ``storage`` (with Basic auth when ``htpasswd`` is given)."""
    app = web.Application(middlewares=[count_in_flight, _middleware], client_max_size=4 << 20)
    app[STORAGE_KEY] = storage
    app[IN_FLIGHT] = InFlight()
    app[AUTH_KEY] = Htpasswd(htpasswd) if htpasswd else None
    app.router.add_route("*", "/v2/{tail:.*}", _dispatch)
    app.router.add_route("*", "/v2", _base)
    return app


def ssl_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server TLS context from --tls-cert/--tls-key, or None for plain HTTP."""
    if not cert and not key:
        return None
    if not cert or not key:
        from dockerbank.errors import UsageError

        raise UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[::1]:port`` -> (host, port)."""
    from dockerbank.errors import InvalidArgument

    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidArgument(f"invalid --listen address {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve_forever(storage: RegistryStorage, host: str, port: int, htpasswd: Path | None = None,
                  tls: ssl.SSLContext | None = None, on_ready=None, grace: float = GRACE) -> str:
    """Serve until SIGTERM or SIGINT (the CLI's ``registry serve``); return the signal's name.

    On the signal the listening socket closes at once; handlers still running get ``grace``
    seconds to finish (an upload whose body is still arriving completes), then aiohttp's shutdown
    closes idle connections and gives the responses still going out ``grace`` seconds more before
    it cancels what is left. A cut chunked upload stays a session on disk (a client may resume it
    after a restart, ``registry gc`` removes it when stale), a cut monolithic one is dropped.
    Nothing half-written is ever visible as a blob: a blob enters the store by rename after its
    digest was checked (the same as after a SIGKILL, see tests/integration/test_fault_injection.py)."""
    from dockerbank.host.stopsignals import StopSignals

    app = make_app(storage, htpasswd)

    async def main() -> str:
        with StopSignals() as stop:   # before listening: a SIGTERM right after the ready line is clean too
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=grace)
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, port, ssl_context=tls, backlog=512)
                await site.start()
                if on_ready:
                    on_ready()
                await stop.wait()
                await site.stop()     # no new connection from here on
                await app[IN_FLIGHT].settled(grace)
            finally:
                await runner.cleanup()
            return stop.name

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:   # a Ctrl-C before the handlers were in place
        return "SIGINT"


@dataclass
class RunningServer:
    """A server running in a background thread of this process (tests, benchmarks)."""

    host: str
    port: int
    storage: RegistryStorage
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runner: web.AppRunner

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def start_in_thread(storage: RegistryStorage, host: str = "127.0.0.1", port: int = 0,
                    htpasswd: Path | None = None, tls: ssl.SSLContext | None = None) -> RunningServer:
    """Start the server on its own event loop in a daemon thread; port 0 picks a free port."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(storage, htpasswd), access_log=None)
    ready = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port, ssl_context=tls)
            loop.run_until_complete(site.start())
            box["port"] = runner.addresses[0][1]  # the port the OS chose
        except BaseException as exc:  # noqa: BLE001 -- reported to the starting thread
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="registry-server", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if "error" in box:
        raise box["error"]
    return RunningServer(host, box["port"], storage, loop, thread, runner)
