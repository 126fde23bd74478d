"""``GET /metrics`` for Prometheus: its own aiohttp site, apart from the Engine API.

Apart, because the Engine API gives root on the host to whoever reaches it, while the metrics
are read-only and meant to be scraped over TCP (loopback by default, docker's port 9323);
the same process and event loop serve both.
"""

from __future__ import annotations

import asyncio

from dockerbank.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9323   # dockerd's --metrics-addr port
PASSWORD_ENV = "DOCKERBANK_BACKUP_PASSWORD"   # as ``backup`` reads it


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[v6]:PORT`` -> (host, port); loopback when no host is given."""
    host, port = DEFAULT_HOST, str(DEFAULT_PORT)
    text = text.strip()
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        host, port = inner, rest.lstrip(":") or port
    elif ":" in text:
        given, _, port = text.rpartition(":")
        host = given or DEFAULT_HOST
    elif text:
        port = text
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise UsageError(f"invalid --metrics-addr {text!r}: use HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT})")
    return host, int(port)


def make_collector(config, backup_repository: str | None = None, password_file: str | None = None):
    """The collector of ``config``'s root, reporting on ``backup_repository`` (``--repo`` of
    ``backup``: a directory or a URL; default ``<root>/backups``). An encrypted repository is
    opened with the passphrase in ``password_file`` or ``$DOCKERBANK_BACKUP_PASSWORD``; without
    one it is reported unreadable (``dockerbank_backup_repository_up 0``), never prompted for."""
    from dockerbank.backup.repository import open_repository
    from dockerbank.engine import Engine
    from dockerbank.monitor.collector import DockerbankCollector

    def passphrase() -> bytes:
        import os
        from pathlib import Path

        from dockerbank.errors import InvalidArgument

        if password_file:
            try:
                return Path(password_file).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise InvalidArgument(f"cannot read the password file {password_file}: {exc.strerror}") from exc
        if os.environ.get(PASSWORD_ENV):
            return os.environ[PASSWORD_ENV].encode()
        raise InvalidArgument(f"the backup repository is encrypted: give --backup-password-file or {PASSWORD_ENV}")

    # the engine only resolves the repository (an oci:// one goes through its registry client)
    repository = open_repository(Engine(config), backup_repository, passphrase)
    return DockerbankCollector(config, repository)


def make_app(collector):
    """An application answering ``/metrics`` from ``collector`` (one scrape at a time: its caches
    are not shared between threads, and parallel scrapes would only read the same files twice)."""
    from aiohttp import web

    from dockerbank.monitor.collector import CONTENT_TYPE, render

    lock = asyncio.Lock()

    async def metrics(_request: web.Request) -> web.Response:
        async with lock:
            body = await asyncio.get_running_loop().run_in_executor(None, render, collector)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text='<html><body><a href="/metrics">Metrics</a></body></html>',
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    return app


async def start(config, addr: str, backup_repository: str | None = None, password_file: str | None = None):
    """Serve ``/metrics`` on ``addr``; the caller cleans the returned ``web.AppRunner`` up."""
    from aiohttp import web

    host, port = parse_addr(addr)
    runner = web.AppRunner(make_app(make_collector(config, backup_repository, password_file)), access_log=None,
                           handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
