"""The dashboard's aiohttp application: login, pages, actions and live streams over the engine.

Every engine call runs in a worker thread with its own Engine (SQLite connections are per
thread); the pages only render what the engine returns.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from dockerbank.config import Config
from dockerbank.dashboard import views
from dockerbank.dashboard.auth import LoginLimiter, Session, Sessions, Users, csrf_ok
from dockerbank.errors import DockerbankError, InvalidArgument, UsageError
from dockerbank.host.addresses import is_loopback
from dockerbank.host.inflight import GRACE, IN_FLIGHT, InFlight, count_in_flight, following

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import jinja2

    from dockerbank.dashboard.jobs import Jobs

# The application's state, typed (aiohttp warns about string keys: NotAppKeyWarning)
CONFIG: web.AppKey[Config] = web.AppKey("config")
OPTIONS: web.AppKey[Options] = web.AppKey("options")
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates")
JOBS: web.AppKey[Jobs] = web.AppKey("jobs")

COOKIE = "dockerbank_session"
HERE = Path(__file__).parent
PUBLIC = ("/login", "/static/")
CONTAINER_ACTIONS = ("start", "stop", "restart", "remove")
SECURITY_HEADERS = {
    # own scripts and styles only: nothing inline, nothing from elsewhere
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

@dataclass
class Options:
    """How one dashboard serves."""

    users: Users
    secure: bool = False                      # served over TLS: cookies get ``Secure``
    backup_repo: str | None = None            # where "back up now" writes (None: the button is hidden)
    clock: Callable[[], float] = time.monotonic
    sessions: Sessions = field(init=False)
    limiter: LoginLimiter = field(init=False)

    def __post_init__(self):
        self.sessions = Sessions(self.clock)
        self.limiter = LoginLimiter(self.clock)

def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8090`` for IPv6) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text}: expected HOST:PORT")
    return host, int(port)

def check_exposure(host: str, tls: bool) -> None:
    """Refuse to serve beyond this machine without TLS (passwords and cookies would travel in clear)."""
    if not tls and not is_loopback(host):
        raise UsageError(f"refusing to listen on {host} without TLS: give --tls-cert and --tls-key, "
                              "or listen on 127.0.0.1")

# --- plumbing -------------------------------------------------------------------------------

def engine_call(request: web.Request, fn: Callable[[Any], Any]) -> asyncio.Future[Any]:
    """Run ``fn(engine)`` in a worker thread with a fresh Engine for this root."""
    from dockerbank.engine.workers import in_worker

    return in_worker(request.app[CONFIG], fn)

def _templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

    env.filters["size"] = _human_size
    env.filters["short"] = lambda s: str(s)[:12]
    return env

def _human_size(n: int | float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)

def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """The page ``template`` with the session, its CSRF token and the flash message."""
    session: Session | None = request.get("session")
    html = request.app[TEMPLATES].get_template(template).render(
        session=session, csrf=session.csrf if session else "", path=request.path,
        message=request.query.get("msg", ""), error=request.query.get("err", ""),
        backup_repo=request.app[OPTIONS].backup_repo, **context)
    return web.Response(text=html, content_type="text/html", status=status)

def back(to: str, *, msg: str = "", err: str = "") -> web.HTTPSeeOther:
    query = f"?msg={quote(msg)}" if msg else f"?err={quote(err)}" if err else ""
    return web.HTTPSeeOther(to + query)

def record(request: web.Request, kind: str, verb: str, actor: str, name: str, **extra: str) -> None:
    """Put a dashboard action in the engine's event log with the user who did it."""
    from dockerbank.events.log import EventLog

    session: Session = request["session"]
    EventLog.of(request.app[CONFIG]).record(kind, f"dashboard:{verb}", actor,
                                              {"name": name, "user": session.user, **extra})

def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host

@web.middleware
async def guard(request: web.Request, handler):
    """Sessions, CSRF and security headers for every request."""
    options: Options = request.app[OPTIONS]
    public = request.path == "/login" or request.path.startswith("/static/")
    session = options.sessions.get(request.cookies.get(COOKIE))
    request["session"] = session
    if request.method not in ("GET", "HEAD"):
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin request refused")
        if session is not None and request.path != "/login":
            form = await request.post()
            sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
            if not csrf_ok(session, sent if isinstance(sent, str) else None):
                raise web.HTTPForbidden(text="missing or wrong CSRF token")
    if session is None and not public:
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(f"/login?next={quote(target)}")
    try:
        response = await handler(request)
    except DockerbankError as exc:  # one line for the user, as the CLI gives it
        response = render(request, "error.html", status=exc.http_status,
                          what=str(exc))
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response

def require_admin(request: web.Request) -> Session:
    session: Session = request["session"]
    if not session.admin:
        raise web.HTTPForbidden(text=f"{session.user} is a viewer: read-only access")
    return session

# --- login ----------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"

async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next")))

async def login(request: web.Request) -> web.StreamResponse:
    options: Options = request.app[OPTIONS]
    form = await request.post()
    user, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    keys = (f"addr:{request.remote}", f"user:{user}")
    if options.limiter.blocked(*keys):
        return render(request, "login.html", status=429, next=target,
                      login_error="Too many failed logins: wait a minute and try again.")
    role = await asyncio.get_running_loop().run_in_executor(None, options.users.check, user, password)
    if role is None:
        options.limiter.failed(*keys)
        return render(request, "login.html", status=401, next=target, login_error="Wrong user name or password.")
    options.limiter.succeeded(*keys)
    options.sessions.drop(request.cookies.get(COOKIE))
    token, _session = options.sessions.create(user, role)
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=options.secure, path="/")
    raise response

async def logout(request: web.Request) -> web.StreamResponse:
    request.app[OPTIONS].sessions.drop(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response

# --- pages ----------------------------------------------------------------------------------

def _container_rows(engine) -> list[dict[str, Any]]:
    from dockerbank.container.views import status_text
    from dockerbank.engine.containers import ListOptions
    from dockerbank.network.ports import format_ps_ports

    now = time.time()
    rows = []
    for entry in engine.container_ops.list(ListOptions(all=True)):
        c = entry.container
        rows.append({"c": c, "status": status_text(c, now), "health": views.health_of(c),
                     "ports": format_ps_ports(engine.networks.port_mappings(c.id))})
    return rows

def _backed_up(engine, repo: str | None) -> set[str] | None:
    """Volumes in a snapshot of the last 24 hours (None: no repository to ask)."""
    if not repo:
        return None
    from datetime import datetime, timedelta, timezone

    from dockerbank.backup.repository import open_repository

    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    try:
        snapshots = open_repository(engine, repo).snapshots()
    except DockerbankError:
        return None
    return {p.name for s in snapshots if s.created[:19] >= since for p in s.parts if p.kind == "volume"}

async def overview(request: web.Request) -> web.Response:
    repo = request.app[OPTIONS].backup_repo

    def gather(engine):
        from dockerbank.audit.service import AuditService

        containers = [e.container for e in engine.container_ops.list(_all())]
        volumes = [v.name for v in engine.volumes.list()]
        audits = AuditService.of(engine)
        images = [(views.familiar(r.tags[0]) if r.tags else r.short_id, audits.cached_findings(r.id))
                  for r in engine.images.list()]
        return containers, volumes, _backed_up(engine, repo), images

    from dockerbank.dashboard import hostinfo

    containers, volumes, backed_up, images = await engine_call(request, gather)
    host = hostinfo.read(request.app[CONFIG].root, repo)
    attention = views.attention(containers, volumes, backed_up) + views.image_attention(images)
    return render(request, "overview.html", states=views.states(containers), total=len(containers),
                  attention=attention, volumes=len(volumes), recent=_recent_events(request, 10), host=host)


def _recent_events(request: web.Request, count: int) -> list[dict[str, str]]:
    """The newest ``count`` events of the last day, newest first."""
    from dockerbank.events.log import EventLog

    items, _ = EventLog.of(request.app[CONFIG]).read(since_ns=time.time_ns() - 24 * 3600 * 10**9)
    return [views.event_line(i) for i in reversed(items[-count:])]

def _all():
    from dockerbank.engine.containers import ListOptions

    return ListOptions(all=True)

async def containers_page(request: web.Request) -> web.Response:
    rows = await engine_call(request, _container_rows)
    return render(request, "containers.html", rows=rows)

async def container_page(request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    try:
        data = await engine_call(request, lambda e: e.container_ops.inspect(ref))
    except DockerbankError as exc:
        return render(request, "error.html", status=404, what=str(exc))
    name = str(data.get("Name", "")).lstrip("/")
    return render(request, "container.html", data=data, name=name, summary=views.inspect_summary(data),
                  state=(data.get("State") or {}).get("Status", ""))

async def container_action(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    ref, action = request.match_info["id"], request.match_info["action"]
    if action not in CONTAINER_ACTIONS:
        raise web.HTTPNotFound()

    def act(engine):
        found = engine.container_ops.get(ref)
        ops = engine.container_ops
        reports = {"start": lambda: ops.start([found.id]), "stop": lambda: ops.stop([found.id]),
                   "restart": lambda: ops.restart([found.id]),
                   "remove": lambda: ops.remove([found.id], force=True)}[action]()
        return found, reports[0]

    try:
        found, report = await engine_call(request, act)
    except DockerbankError as exc:
        raise back("/containers", err=str(exc)) from None
    record(request, "container", action, found.id, found.name, ok="true" if report.ok else "false")
    where = "/containers" if action == "remove" else f"/containers/{found.id}"
    if not report.ok:
        raise back(where, err=str(report.error))
    raise back(where, msg=f"{action}: {found.name} done")

async def images_page(request: web.Request) -> web.Response:
    def gather(engine):
        from dockerbank.audit.service import AuditService
        from dockerbank.registry.policy import LABEL, labels_of

        audits = AuditService.of(engine)
        rows = []
        for record_ in engine.images.list():
            try:
                labels = labels_of(engine.images.image_config(record_.id))
            except DockerbankError:
                labels = {}
            rows.append({"r": record_, "redistributable": labels.get(LABEL, ""),
                         "audit": views.severity_counts(audits.cached_findings(record_.id))})
        return rows

    return render(request, "images.html", rows=await engine_call(request, gather))

async def image_audit(request: web.Request) -> web.StreamResponse:
    """``audit image`` now (cached by image ID afterwards): the counts come back as the message."""
    require_admin(request)
    ref = request.match_info["id"]

    def run(engine):
        from dockerbank.audit.service import AuditService

        found = engine.images.resolve(ref)
        return AuditService.of(engine).audit_image(found.tags[0] if found.tags else found.id)

    try:
        report = await engine_call(request, run)
    except DockerbankError as exc:
        raise back("/images", err=str(exc)) from None
    record(request, "image", "audit", report.image_id, report.name, findings=str(len(report.findings)))
    counts = views.severity_counts(report.findings) or {}
    summary = ", ".join(f"{n} {severity}" for severity, n in counts.items()) or "no findings"
    raise back("/images", msg=f"audit of {views.familiar(report.name)}: {summary}")

async def volumes_page(request: web.Request) -> web.Response:
    repo = request.app[OPTIONS].backup_repo

    def gather(engine):
        backed_up = _backed_up(engine, repo)
        return [{"v": v, "users": engine.volumes.users(v.name),
                 "backed_up": None if backed_up is None else v.name in backed_up}
                for v in engine.volumes.list()]

    return render(request, "volumes.html", rows=await engine_call(request, gather))

async def volume_backup(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    repo = request.app[OPTIONS].backup_repo
    name = request.match_info["name"]
    if not repo:
        raise back("/volumes", err="no backup repository: start the dashboard with --backup-repo")
    user = request["session"].user

    def run(engine):
        from dockerbank.backup.create import CreateOptions, Progress, create
        from dockerbank.backup.repository import open_repository

        engine.volumes.get(name)
        return create(engine, open_repository(engine, repo), CreateOptions(volumes=[name], tags=[f"dashboard:{user}"]),
                      Progress())

    try:
        report = await engine_call(request, run)
    except DockerbankError as exc:
        raise back("/volumes", err=str(exc)) from None
    record(request, "volume", "backup", name, name, snapshot=report.snapshot.id)
    raise back("/volumes", msg=f"volume {name} saved in snapshot {report.snapshot.id}")

async def networks_page(request: web.Request) -> web.Response:
    def gather(engine):
        names = {e.container.id: e.container.name for e in engine.container_ops.list(_all())}
        return [{"n": n, "containers": sorted(names.get(ep.container_id, ep.container_id[:12])
                                              for ep in engine.networks.endpoints(network_id=n.id))}
                for n in engine.networks.list()]

    return render(request, "networks.html", rows=await engine_call(request, gather))

async def events_page(request: web.Request) -> web.Response:
    return render(request, "events.html", lines=_recent_events(request, 200))

# --- live streams (server-sent events) ------------------------------------------------------

async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
                                           **SECURITY_HEADERS})
    await response.prepare(request)
    following(request)   # open as long as the page is: a stop ends it rather than waiting
    return response

def _sse_data(text: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n").encode()

async def logs_stream(request: web.Request) -> web.StreamResponse:
    """The container's last 200 log lines, then new ones as they come, until it stops."""
    from dockerbank.engine.container_options import LogsOptions

    ref = request.match_info["id"]
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    stop = threading.Event()

    class QueueSink:
        def write(self, data: bytes) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

        def close(self) -> None:
            pass

    sink = QueueSink()

    def follow(engine):
        try:
            engine.container_ops.logs(ref, LogsOptions(tail=200, follow=True), sink, sink, cancelled=stop.is_set)
        except DockerbankError as exc:
            sink.write(f"[{exc}]\n".encode())
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    response = await _sse(request)
    task = engine_call(request, follow)
    pending = b""
    try:
        while True:
            data = await queue.get()
            if data is None:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                await response.write(_sse_data(line.decode("utf-8", "replace").rstrip("\r")))
        if pending:
            await response.write(_sse_data(pending.decode("utf-8", "replace")))
        await response.write(_sse_data("", "end"))
    except (ConnectionResetError, asyncio.CancelledError):
        stop.set()
        raise
    finally:
        stop.set()
        await asyncio.shield(task)
    return response

async def events_stream(request: web.Request) -> web.StreamResponse:
    """Events as they are recorded (the log file is polled twice a second)."""
    import json

    from dockerbank.events.log import EventLog

    log = EventLog.of(request.app[CONFIG])
    _, offset = log.read(since_ns=time.time_ns())
    response = await _sse(request)
    await response.write(b": connected\n\n")
    for batch in log.follow(offset):
        for item in batch:
            await response.write(_sse_data(json.dumps(views.event_line(item))))
        await asyncio.sleep(0.5)
    return response

# --- the application ------------------------------------------------------------------------

def make_app(config: Config, options: Options) -> web.Application:
    """The dashboard of one Dockerbank root."""
    app = web.Application(middlewares=[count_in_flight, guard], client_max_size=64 * 1024)
    app[IN_FLIGHT] = InFlight()   # what a stop lets finish (serve)
    app[CONFIG] = config
    app[OPTIONS] = options
    app[TEMPLATES] = _templates()
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", overview)
    app.router.add_get("/containers", containers_page)
    app.router.add_get("/containers/{id}", container_page)
    app.router.add_get("/containers/{id}/logs", logs_stream)
    app.router.add_post("/containers/{id}/{action}", container_action)
    app.router.add_get("/images", images_page)
    app.router.add_post("/images/{id}/audit", image_audit)
    app.router.add_get("/volumes", volumes_page)
    app.router.add_post("/volumes/{name}/backup", volume_backup)
    app.router.add_get("/networks", networks_page)
    app.router.add_get("/events", events_page)
    app.router.add_get("/events/stream", events_stream)
    app.router.add_static("/static/", HERE / "static", show_index=False)
    from dockerbank.dashboard import backups, console, stacks
    from dockerbank.dashboard.jobs import Jobs

    app[JOBS] = Jobs()
    for module in (stacks, backups, console):
        module.add_routes(app)
    return app

def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return context


async def serve(config: Config, options: Options, host: str, port: int, ssl_context: ssl.SSLContext | None,
                stop: asyncio.Event | None = None, grace: float = GRACE) -> None:
    """Serve until ``stop`` is set (then end as the API service does: stop listening, let requests
    in flight finish within ``grace``, end the live streams); without ``stop``, until cancelled."""
    from concurrent.futures import ThreadPoolExecutor

    # log followers hold a worker thread each for as long as a page is open
    loop = asyncio.get_running_loop()
    if stop is None:   # beside the API service, the loop's executor is the service's
        loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="dash"))
    app = make_app(config, options)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=grace)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise InvalidArgument(f"dashboard: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    scheme = "https" if ssl_context else "http"
    print(f"Dashboard listening on {scheme}://{host if ':' not in host else f'[{host}]'}:{port}/",
          file=sys.stderr, flush=True)
    try:
        await (stop or asyncio.Event()).wait()
        await site.stop()   # no new connection from here on
        await app[IN_FLIGHT].settled(grace)
    finally:
        app[IN_FLIGHT].end_streams()
        await runner.cleanup()


def prepare(options: Options, listen: str, tls_cert: str | None,
            tls_key: str | None) -> tuple[str, int, ssl.SSLContext | None]:
    """Check the address and TLS set-up before anything starts: (host, port, TLS context)."""
    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    check_exposure(host, bool(tls_cert))
    ssl_context = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    options.secure = ssl_context is not None
    return host, port, ssl_context


def run(config: Config, options: Options, listen: str, tls_cert: str | None, tls_key: str | None) -> str:
    """Blocking entry for the CLI: serve until SIGINT/SIGTERM, end cleanly; the signal's name."""
    from concurrent.futures import ThreadPoolExecutor

    from dockerbank.host.stopsignals import StopSignals

    host, port, ssl_context = prepare(options, listen, tls_cert, tls_key)

    async def main() -> str:
        # log followers hold a worker thread each for as long as a page is open
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64,
                                                                           thread_name_prefix="dash"))
        stopping = asyncio.Event()
        with StopSignals() as stop:
            async def on_signal() -> None:
                await stop.wait()
                stopping.set()

            watcher = asyncio.ensure_future(on_signal())
            try:
                await serve(config, options, host, port, ssl_context, stopping)
            finally:
                watcher.cancel()
            return stop.name

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:   # a Ctrl-C before the handlers were in place
        return "SIGINT"
    except OSError as exc:
        raise InvalidArgument(f"cannot listen on {listen}: {exc.strerror or exc}") from None
