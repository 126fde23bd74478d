"""The Docker Engine API server: aiohttp on a unix socket (and, with TLS client certificates, TCP).

Why aiohttp: it serves unix sockets and TLS, streams request and response bodies without
buffering them, and lets a handler take over the connection for Docker's hijacked
``attach``/``exec`` streams (``Upgrade: tcp``, ``101 UPGRADED``); the registry server already
uses it, so it adds no new dependency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from dockerbank.api import errors as api_errors
from dockerbank.api.base import API_VERSION, CONFIG, EXECS, EXITS, HIJACKS, LISTS, STATE_VERSION, VersionedMemo
from dockerbank.config import Config
from dockerbank.errors import InvalidArgument, UsageError
from dockerbank.host.inflight import GRACE, IN_FLIGHT, InFlight, count_in_flight

log = logging.getLogger("dockerbank.api")


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every failure leaves as ``{"message": ...}`` with the status from the one table."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404 and not (exc.text or "").startswith("{"):
            return web.Response(status=404, content_type="application/json",
                                body=b'{"message":"page not found"}\n')
        raise
    except asyncio.CancelledError:
        raise
    except ConnectionResetError as exc:  # the client went away mid-stream: nobody to answer
        log.debug("%s %s: client gone: %s", request.method, request.path, exc)
        raise asyncio.CancelledError() from exc
    except Exception as exc:
        status = api_errors.status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc, exc_info=not hasattr(exc, "http_status"))
        if status == 304:
            return web.Response(status=304)
        if request.get("hijacked"):  # the status line is sent: close instead of a second response
            raise asyncio.CancelledError() from exc
        return web.Response(status=status, body=api_errors.body_of(exc), content_type="application/json")
    return response


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Api-Version", API_VERSION)
    response.headers.setdefault("Server", "Dockerbank (linux)")
    response.headers.setdefault("Docker-Experimental", "false")
    response.headers.setdefault("Ostype", "linux")


def make_app(config: Config) -> web.Application:
    """The application for one Dockerbank root."""
    from dockerbank.api.routes import add_routes
    from dockerbank.engine.workers import state_version

    app = web.Application(middlewares=[count_in_flight, error_middleware], client_max_size=0)
    app[CONFIG] = config
    app[IN_FLIGHT] = InFlight()   # what a stop lets finish (serve)
    # In-memory state of this server process only (what a restart may forget):
    app[HIJACKS] = {}   # container id -> attach connections waiting for the start (compat/containers.py)
    app[EXITS] = {}     # container id -> exit code seen by an attached stream (for wait?condition=removed)
    app[EXECS] = {}     # exec id -> exec instance (create and start are separate API calls)
    app[LISTS] = VersionedMemo()               # GET /containers/json answers by query (compat/containers.py)
    app[STATE_VERSION] = state_version(config)  # ... kept while this holds
    app.on_response_prepare.append(_headers)

    async def close_version(app: web.Application) -> None:
        app[STATE_VERSION].close()

    app.on_cleanup.append(close_version)
    add_routes(app)
    return app


@dataclass
class Listen:
    """One address to serve: ``unix:///path`` or ``tcp://host:port``."""

    url: str
    scheme: str = ""
    path: str = ""
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, url: str) -> Listen:
        parsed = urlparse(url)
        if parsed.scheme == "unix":
            return cls(url, "unix", path=parsed.path or parsed.netloc)
        if parsed.scheme == "tcp":
            if not parsed.hostname or not parsed.port:
                raise UsageError(f"invalid --host {url}: use tcp://HOST:PORT")
            return cls(url, "tcp", host=parsed.hostname, port=parsed.port)
        raise UsageError(f"invalid --host {url}: use unix:///path/to.sock or tcp://HOST:PORT")


@dataclass
class TlsFiles:
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        """A server context that demands a client certificate signed by ``cacert`` (dockerd's --tlsverify)."""
        if not (self.cacert and self.cert and self.key):
            raise UsageError("TCP needs --tlscacert, --tlscert and --tlskey (client certificates are required); "
                             "use --insecure-tcp to serve plain TCP anyway")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.cacert)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


@dataclass
class ServeOptions:
    hosts: list[str] = field(default_factory=list)
    tls: TlsFiles = field(default_factory=TlsFiles)
    insecure_tcp: bool = False
    metrics_addr: str | None = None        # HOST:PORT of /metrics for Prometheus (off when None)
    backup_repo: str | None = None         # the repository the metrics report on (default <root>/backups)
    backup_password_file: str | None = None  # its passphrase, when it is encrypted


def default_socket(config: Config) -> str:
    return "unix://" + str(config.run_root / "docker.sock")


def _prepare_socket_path(path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_socket():
        target.unlink()  # a stale socket of an earlier run
    elif target.exists():
        raise InvalidArgument(f"{path} exists and is not a socket")


def _remove_socket(path: str, inode: int) -> None:
    """Remove the socket this server made (not one a later server made at the same path)."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass  # gone already: nothing to do


async def serve(config: Config, options: ServeOptions, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None, grace: float = GRACE) -> None:
    """Serve until ``stop`` is set (``run``: SIGINT/SIGTERM), then end cleanly within the grace;
    without ``stop``, until cancelled."""
    from concurrent.futures import ThreadPoolExecutor

    # Engine calls block (SQLite, subprocesses, following a log file): each runs in a worker thread.
    # Followers (logs -f, wait) hold a thread for long, so the pool is larger than asyncio's default.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64,
                                                                       thread_name_prefix="engine"))
    app = make_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=grace)
    await runner.setup()
    sites: list[web.BaseSite] = []
    unix_paths: list[tuple[str, int]] = []   # (path, inode) of the sockets this server made
    for url in options.hosts or [default_socket(config)]:
        where = Listen.parse(url)
        if where.scheme == "unix":
            _prepare_socket_path(where.path)
            site: web.BaseSite = web.UnixSite(runner, where.path)
            await site.start()
            unix_paths.append((where.path, os.stat(where.path).st_ino))
            os.chmod(where.path, 0o660)
            try:
                os.chown(where.path, 0, 0)
            except PermissionError:
                pass  # not root: the socket stays the caller's
        else:
            if options.insecure_tcp and not (options.tls.cacert or options.tls.cert):
                print(f"WARNING: serving the API on {url} WITHOUT TLS: anyone reaching this port is root "
                      "on this host", file=sys.stderr)
                ssl_ctx = None
            else:
                ssl_ctx = options.tls.context()
            site = web.TCPSite(runner, where.host, where.port, ssl_context=ssl_ctx)
            await site.start()
        sites.append(site)
        print(f"API listening on {url}", file=sys.stderr, flush=True)
    metrics_runner = None
    if options.metrics_addr:
        from dockerbank.api import metrics

        metrics_runner = await metrics.start(config, options.metrics_addr, options.backup_repo,
                                             options.backup_password_file)
        print(f"Metrics listening on http://{options.metrics_addr}/metrics", file=sys.stderr, flush=True)
    from dockerbank.engine.workers import start_exit_handler, stop_exit_handler

    start_exit_handler(config)  # detached containers' exits handled here, not by an interpreter each
    if ready is not None:
        ready.set()
    try:
        await (stop or asyncio.Event()).wait()
        for site in sites:
            await site.stop()   # no new connection from here on
        for path, inode in unix_paths:
            _remove_socket(path, inode)   # clients see "no such file", as after dockerd's stop
        # the exit handler still runs: a container a request starts now is watched as usual
        await app[IN_FLIGHT].settled(grace)
    finally:
        app[IN_FLIGHT].end_streams()
        stop_exit_handler()  # from here on their exit commands clean up
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


def check(options: ServeOptions) -> None:
    """Refuse a bad address or TLS set-up before anything starts."""
    if options.metrics_addr:
        from dockerbank.api.metrics import parse_addr

        parse_addr(options.metrics_addr)
    for url in options.hosts:
        Listen.parse(url)
        if url.startswith("tcp://") and not options.insecure_tcp:
            options.tls.context()


def run(config: Config, options: ServeOptions, *beside: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> str:
    """Blocking entry for the CLI: serve until SIGINT/SIGTERM, end cleanly (see host.inflight.GRACE) and
    return the signal's name. ``beside``: other servers of the same process (the dashboard) that
    run in the same loop, each given the event that tells it to stop; they end with this one."""
    from dockerbank.host.stopsignals import StopSignals

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    check(options)
    loop = asyncio.new_event_loop()

    async def main() -> str:
        stopping = asyncio.Event()
        with StopSignals() as stop:   # before listening: a SIGTERM right after the ready line is clean too
            async def on_signal() -> None:
                await stop.wait()
                stopping.set()

            watcher = asyncio.ensure_future(on_signal())
            servers = [asyncio.ensure_future(serve(config, options, stop=stopping)),
                       *(asyncio.ensure_future(start(stopping)) for start in beside)]
            try:
                done, _ = await asyncio.wait(servers, return_when=asyncio.FIRST_EXCEPTION)
                failed = [task for task in done if task.exception() is not None]
                if failed:   # one could not start (a port in use): the others stop as on a signal
                    stopping.set()
                    await asyncio.wait(servers)
                    raise failed[0].exception()  # type: ignore[misc]
            finally:
                watcher.cancel()
            return stop.name

    try:
        return loop.run_until_complete(main())
    except KeyboardInterrupt:   # a Ctrl-C before the handlers were in place
        return "SIGINT"
    finally:
        from dockerbank.engine.workers import drain_background

        loop.run_until_complete(loop.shutdown_default_executor())
        drain_background()  # teardowns handed over (an exited --rm container's network) complete
        loop.close()
