"""The stacks page: compose projects with each service's state and health; deploy from a
Compose file pasted into the page; down. Every step is compose's own (``compose.service``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from dockerbank.dashboard import views
from dockerbank.dashboard.server import CONFIG, JOBS, back, engine_call, record, render, require_admin
from dockerbank.errors import DockerbankError, InvalidArgument

MAX_FILE = 256 * 1024
#: the catalog's entries once read (``_catalog``), under "entries"
CATALOG_CACHE: web.AppKey[dict[str, list]] = web.AppKey("catalog_cache")


def stack_dir(root: Path, name: str) -> Path:
    """Where the dashboard keeps the Compose file of a stack it deployed (inside the closed root,
    so its secrets stay as private as the rest of the root)."""
    return root / "dashboard" / "stacks" / name


def _rows(engine) -> list[dict[str, Any]]:
    from dockerbank.compose import plan as pl
    from dockerbank.compose.service import projects
    from dockerbank.container.views import status_text
    from dockerbank.engine.containers import ListOptions

    now = time.time()
    by_project: dict[str, list[dict[str, Any]]] = {}
    for entry in engine.container_ops.list(ListOptions(all=True)):
        c = entry.container
        name = c.config.labels.get(pl.LABEL_PROJECT)
        if name:
            by_project.setdefault(name, []).append({
                "service": c.config.labels.get(pl.LABEL_SERVICE, ""), "c": c, "status": status_text(c, now),
                "health": views.health_of(c)})
    return [{"name": p["Name"], "status": p["Status"], "files": p["ConfigFiles"],
             "services": sorted(by_project.get(p["Name"], []), key=lambda r: (r["service"], r["c"].name))}
            for p in projects(engine)]


async def _catalog(request: web.Request) -> list:
    """The catalog's entries, read and validated once per process in a worker thread (they are
    files shipped with Dockerbank: ~0.7 s of YAML and SPDX checks, too much for every page)."""
    import asyncio

    cache = request.app[CATALOG_CACHE]
    if "entries" not in cache:
        from dockerbank.catalog.model import Catalog

        cache["entries"] = await asyncio.get_running_loop().run_in_executor(None, lambda: Catalog().entries())
    return cache["entries"]


async def stacks_page(request: web.Request) -> web.Response:
    return render(request, "stacks.html", stacks=await engine_call(request, _rows), catalog=await _catalog(request),
                  jobs=[j for j in request.app[JOBS].recent() if j.what.startswith("deploy ")],
                  focus=request.query.get("job", ""))


def parse_settings(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of the deploy form (blank lines skipped) -> settings (pure)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"setting on line {number}: use KEY=VALUE, got {line!r}")
        out[key.strip()] = value.strip()
    return out


async def deploy_entry(request: web.Request) -> web.StreamResponse:
    """``catalog deploy NAME -p PROJECT --set ...`` as a job: the catalog builds what is missing,
    deploys and waits for health (or takes it all down again and says why)."""
    require_admin(request)
    name = request.match_info["name"]
    form = await request.post()
    project = str(form.get("project", "")).strip() or None
    try:
        sets = parse_settings(str(form.get("settings", "")))
    except DockerbankError as exc:
        raise back("/stacks", err=str(exc)) from None
    record(request, "stack", "catalog-deploy", project or name, project or name, entry=name)
    user = request["session"].user

    def work(engine, job) -> str:
        from dockerbank.catalog.service import CatalogService
        from dockerbank.compose.runner import ComposeRunner

        report = CatalogService(engine, runner=ComposeRunner(engine)).deploy(name, project, sets)
        return f"{report.entry.name} deployed as stack {report.project}"

    job = request.app[JOBS].start(f"deploy {name}" + (f" as {project}" if project else ""), user,
                                    lambda job: engine_call(request, lambda e: work(e, job)))
    raise web.HTTPSeeOther(f"/stacks?job={job.id}")


async def deploy(request: web.Request) -> web.StreamResponse:
    """Save the pasted file in the root and ``up -d`` it; a file that does not load is refused
    before anything is created (and is not kept)."""
    from dockerbank.compose.loader import normalize_project_name

    session = require_admin(request)
    form = await request.post()
    text = str(form.get("compose", ""))
    try:
        name = normalize_project_name(str(form.get("name", "")).strip())
        if not name:
            raise InvalidArgument("a stack needs a name")
        if not text.strip() or len(text) > MAX_FILE:
            raise InvalidArgument(f"paste a Compose file (at most {MAX_FILE // 1024} KiB)")
    except DockerbankError as exc:
        raise back("/stacks", err=str(exc)) from None
    root = request.app[CONFIG].root

    def up(engine):
        from dockerbank.compose.loader import LoadOptions, load
        from dockerbank.compose.model import normalize
        from dockerbank.compose.service import Stack, UpOptions

        folder = stack_dir(root, name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / "compose.yaml"
        previous = path.read_bytes() if path.exists() else None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        try:
            project = normalize(load(LoadOptions(files=[str(path)], project_name=name, cwd=str(folder))))
        except DockerbankError:
            if previous is None:
                path.unlink()
            else:
                path.write_bytes(previous)
            raise
        return Stack(engine, project).up(UpOptions())

    try:
        started = await engine_call(request, up)
    except DockerbankError as exc:
        raise back("/stacks", err=str(exc)) from None
    record(request, "stack", "deploy", name, name, services=",".join(started))
    raise back("/stacks", msg=f"stack {name} deployed by {session.user}: {', '.join(sorted(started))}")


async def down(request: web.Request) -> web.StreamResponse:
    """``compose down`` (``-v`` when the form asks) of a project, loaded from its own file."""
    require_admin(request)
    name = request.match_info["name"]
    form = await request.post()
    volumes = form.get("volumes") == "on"

    def run(engine):
        from dockerbank.compose.service import Stack, project_of

        return Stack(engine, project_of(engine, name)).down(volumes=volumes)

    try:
        failures = await engine_call(request, run)
    except DockerbankError as exc:
        raise back("/stacks", err=str(exc)) from None
    record(request, "stack", "down", name, name, volumes=str(volumes).lower())
    if failures:
        raise back("/stacks", err=f"stack {name}: {'; '.join(failures)}")
    raise back("/stacks", msg=f"stack {name} removed{' with its volumes' if volumes else ''}")


def add_routes(app: web.Application) -> None:
    app[CATALOG_CACHE] = {}
    app.router.add_get("/stacks", stacks_page)
    app.router.add_post("/stacks", deploy)
    app.router.add_post("/stacks/{name}/down", down)
    app.router.add_post("/catalog/{name}/deploy", deploy_entry)
