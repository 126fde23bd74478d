"""The console: ``exec -it`` in the browser. xterm.js (from the npm registry, see
``frontend/package.json``) talks over a WebSocket; the process is the engine's exec session with a
TTY, its terminal sized by the browser.

Frames: the browser sends JSON text (``{"t": "i", "d": "keys"}`` input, ``{"t": "r", "rows": R,
"cols": C}`` resize); the server sends the terminal's output as binary frames and, when the
process ended, ``{"exit": CODE}``. Admins only; the socket checks the origin and the session's
CSRF token, since browsers send cookies on cross-site WebSocket requests of the same site.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
from pathlib import Path

from aiohttp import WSMsgType, web

from dockerbank.dashboard.auth import csrf_ok
from dockerbank.dashboard.server import SECURITY_HEADERS, engine_call, record, render, require_admin
from dockerbank.errors import DockerbankError

FRONTEND = Path(__file__).parent / "frontend" / "node_modules" / "@xterm"
DEFAULT_COMMAND = "/bin/sh"
# xterm.js styles its rows with style elements it creates: this page alone allows inline styles
CONSOLE_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def installed() -> bool:
    """Whether ``npm ci`` put xterm.js in place (scripts/setup.sh does)."""
    return (FRONTEND / "xterm" / "lib" / "xterm.js").is_file()


async def console_page(request: web.Request) -> web.Response:
    require_admin(request)
    ref = request.match_info["id"]
    data = await engine_call(request, lambda e: e.container_ops.inspect(ref))
    response = render(request, "console.html", data=data, name=str(data.get("Name", "")).lstrip("/"),
                      command=request.query.get("cmd", DEFAULT_COMMAND), installed=installed())
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


def _same_origin(request: web.Request) -> bool:
    from urllib.parse import urlsplit

    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc == request.host


async def console_socket(request: web.Request) -> web.StreamResponse:
    """One exec session with a TTY, streamed both ways until the process ends or the page closes."""
    from dockerbank.engine.containers import ExecOptions
    from dockerbank.runtime.conmon import output_frames

    session = require_admin(request)
    if not _same_origin(request) or not csrf_ok(session, request.query.get("csrf")):
        raise web.HTTPForbidden(text="console refused: wrong origin or CSRF token")
    ref = request.match_info["id"]
    command = shlex.split(request.query.get("cmd") or DEFAULT_COMMAND)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    opts = ExecOptions(command, interactive=True, tty=True)
    try:
        found, attachment = await engine_call(request, lambda e: (e.container_ops.get(ref),
                                                                  e.container_ops.exec(ref, opts)))
    except DockerbankError as exc:
        await ws.send_json({"error": str(exc)})
        await ws.close()
        return ws
    record(request, "container", "console", found.id, found.name, command=shlex.join(command))
    sock: socket.socket = attachment.sock
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def keys() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
                if frame.get("t") == "i":
                    await loop.sock_sendall(sock, str(frame.get("d", "")).encode())
                elif frame.get("t") == "r":
                    rows, cols = int(frame["rows"]), int(frame["cols"])
                    if 0 < rows < 1000 and 0 < cols < 1000:
                        await engine_call(request, lambda e: e.container_ops.resize_session(attachment.work, rows, cols))
            except (ValueError, KeyError, TypeError, OSError, DockerbankError):
                continue  # a bad frame or a resize after the end: the session goes on

    typing = asyncio.ensure_future(keys())
    try:
        async for _stderr, payload in output_frames(sock):  # a TTY has one stream
            if ws.closed:
                break
            await ws.send_bytes(payload)
    finally:
        typing.cancel()
    if ws.closed:  # the page went away first: end the shell, as closing a terminal would
        try:
            sock.sendall(b"\x03exit\r\x04")
        except OSError:
            pass
    sock.close()
    code = await engine_call(request, lambda e: attachment.finish(e.containers))
    if not ws.closed:
        await ws.send_json({"exit": code})
        await ws.close()
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/containers/{id}/console", console_page)
    app.router.add_get("/containers/{id}/console/socket", console_socket)
    if installed():
        app.router.add_static("/vendor/xterm/", FRONTEND / "xterm", show_index=False)
        app.router.add_static("/vendor/addon-fit/", FRONTEND / "addon-fit", show_index=False)
