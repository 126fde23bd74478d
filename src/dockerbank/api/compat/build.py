"""``POST /build`` (the legacy builder) and ``POST /commit``.

A build runs the ``dockerbank build`` CLI as a child process on the spooled tar context: RUN
steps stream the build container's output to the process's own stdout/stderr (and ``-q``
redirects those descriptors), which inside a server would mix the output of concurrent builds.
The child's lines become docker's ``{"stream": ...}`` JSON lines, its failure ``error``/``errorDetail``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

from aiohttp import web

from dockerbank.api.base import engine_call, qbool, reply
from dockerbank.api.compat.streams import body_file
from dockerbank.errors import InvalidArgument


def build_argv(query, iidfile: str) -> list[str]:
    """The build endpoint's query -> ``dockerbank build`` arguments (pure)."""
    argv = ["build", "--iidfile", iidfile]
    for tag in query.getall("t", []):
        argv += ["-t", tag]
    if query.get("dockerfile"):
        argv += ["-f", query["dockerfile"]]
    if query.get("target"):
        argv += ["--target", query["target"]]
    if query.get("nocache", "").lower() in ("1", "true"):
        argv.append("--no-cache")
    if query.get("q", "").lower() in ("1", "true"):
        argv.append("-q")
    for key, value in _json_map(query.get("buildargs")).items():
        argv += ["--build-arg", f"{key}={value}" if value is not None else key]
    for key, value in _json_map(query.get("labels")).items():
        argv += ["--label", f"{key}={value}"]
    if query.get("remote"):
        argv.append(query["remote"])
    else:
        argv.append("-")
    return argv


def _json_map(text: str | None) -> dict:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON in query: {text}") from exc
    return data if isinstance(data, dict) else {}


async def build(request: web.Request) -> web.StreamResponse:
    config = request.app["config"]
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    iid_fd, iidfile = tempfile.mkstemp(prefix="build-iid-", dir=config.tmp_dir)
    os.close(iid_fd)
    argv = build_argv(request.query, iidfile)
    async with body_file(request) as context_path:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        with open(context_path, "rb") as stdin:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dockerbank", "--root", str(config.root), "--runroot", str(config.run_root),
                *argv, stdin=stdin, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        errors: list[str] = []

        async def read_err() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                errors.append(line.decode(errors="replace"))

        err_task = asyncio.ensure_future(read_err())
        assert proc.stdout is not None
        async for line in proc.stdout:
            await resp.write(json.dumps({"stream": line.decode(errors="replace")}).encode() + b"\r\n")
        await err_task
        code = await proc.wait()
        try:
            image_id = open(iidfile).read().strip()
        finally:
            os.unlink(iidfile)
        if code == 0 and image_id:
            await resp.write(json.dumps({"aux": {"ID": image_id}}).encode() + b"\r\n")
        else:
            message = "".join(errors).strip().removeprefix("Error: ") or f"the build failed with code {code}"
            await resp.write(json.dumps({"errorDetail": {"code": code, "message": message},
                                         "error": message}).encode() + b"\r\n")
        await resp.write_eof()
        return resp


async def commit(request: web.Request) -> web.Response:
    from dockerbank.container.commit import CommitOptions
    from dockerbank.container.commit import commit as do_commit

    q = request.query
    ref = q.get("container") or ""
    if not ref:
        raise InvalidArgument("container is required")
    repo, tag = q.get("repo", ""), q.get("tag", "")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    options = CommitOptions(reference=reference, pause=qbool(request, "pause", True),
                            changes=tuple(c for c in q.getall("changes", []) if c), message=q.get("comment", ""),
                            author=q.get("author", ""))
    record = await engine_call(request, lambda e: do_commit(e, ref, options))
    return reply({"Id": record.id}, status=201)


ROUTES = [("POST", "/build", build), ("POST", "/commit", commit)]
