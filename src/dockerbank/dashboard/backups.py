"""The backups page: snapshots of the dashboard's repository; verify one, restore a volume of
one, each as a job whose progress the page shows. The work is the backup package's own."""

from __future__ import annotations

from aiohttp import web

from dockerbank.dashboard.jobs import Job, JobProgress
from dockerbank.dashboard.server import CONFIG, JOBS, OPTIONS, back, engine_call, record, render, require_admin
from dockerbank.errors import InvalidArgument


def _repo_or_refuse(request: web.Request) -> str:
    repo = request.app[OPTIONS].backup_repo
    if not repo:
        raise back("/backups", err="no backup repository: start the dashboard with --backup-repo")
    return repo


async def backups_page(request: web.Request) -> web.Response:
    repo = request.app[OPTIONS].backup_repo

    def gather(engine):
        from dockerbank.backup.repository import open_repository
        from dockerbank.monitor import verifylog

        repository = open_repository(engine, repo)
        if not repository.exists():
            return [], {}
        return list(reversed(repository.snapshots())), verifylog.load(engine.config.root, repository.url)

    snapshots, verified = ([], {}) if not repo else await engine_call(request, gather)
    return render(request, "backups.html", snapshots=snapshots, verified=verified,
                  jobs=[j for j in request.app[JOBS].recent() if not j.what.startswith("deploy ")],
                  focus=request.query.get("job", ""))


def _start(request: web.Request, what: str, work) -> web.HTTPSeeOther:
    """Start ``work(engine, job) -> message`` as a job and send the browser to its progress."""
    user = request["session"].user
    job = request.app[JOBS].start(what, user, lambda job: engine_call(request, lambda e: work(e, job)))
    return web.HTTPSeeOther(f"/backups?job={job.id}")


async def verify(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    repo = _repo_or_refuse(request)
    sid = request.match_info["id"]
    root = request.app[CONFIG].root
    record(request, "backup", "verify", sid, sid)

    def work(engine, job: Job) -> str:
        from dockerbank.backup.repository import open_repository
        from dockerbank.errors import CorruptData
        from dockerbank.monitor import verifylog

        repository = open_repository(engine, repo)
        snap = repository.get(sid)
        problems, unrecorded = verifylog.verify(root, repository, snap,
                                                JobProgress(job).task(f"verify {sid}", snap.size))
        if problems:
            raise CorruptData(f"snapshot {sid}: {'; '.join(problems)}")
        parts = f"{len(snap.parts)} part{'s' if len(snap.parts) != 1 else ''}"
        return f"snapshot {sid} verified: {parts} intact" + (f" ({unrecorded})" if unrecorded else "")

    raise _start(request, f"verify {sid}", work)


async def restore(request: web.Request) -> web.StreamResponse:
    """Restore one volume of a snapshot (under its own name or a new one; ``force`` replaces a
    volume that holds data, as ``restore --force`` does)."""
    require_admin(request)
    repo = _repo_or_refuse(request)
    sid = request.match_info["id"]
    form = await request.post()
    volume = str(form.get("volume", ""))
    target = str(form.get("target", "")).strip() or volume
    force = form.get("force") == "on"
    if not volume:
        raise back("/backups", err=str(InvalidArgument("choose a volume to restore")))
    record(request, "backup", "restore", sid, volume, target=target, force=str(force).lower())

    def work(engine, job: Job) -> str:
        from dockerbank.backup.repository import open_repository
        from dockerbank.backup.restore import RestoreOptions
        from dockerbank.backup.restore import restore as restore_snapshot

        spec = volume if target == volume else f"{volume}:{target}"
        report = restore_snapshot(engine, open_repository(engine, repo), sid,
                                  RestoreOptions(volumes=[spec], force=force), JobProgress(job))
        return f"volume {volume} of snapshot {sid} restored as {target}" + \
            "".join(f"; {w}" for w in report.warnings)

    raise _start(request, f"restore {volume} from {sid}", work)


async def job_status(request: web.Request) -> web.Response:
    job = request.app[JOBS].get(request.match_info["id"])
    if job is None:
        raise web.HTTPNotFound(text="no such job")
    return web.json_response(job.to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/backups", backups_page)
    app.router.add_post("/backups/{id}/verify", verify)
    app.router.add_post("/backups/{id}/restore", restore)
    app.router.add_get("/jobs/{id}", job_status)

