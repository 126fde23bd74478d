"""``POST /build`` (the legacy builder) and ``POST /commit``.

A build runs in-process through the engine's build method (``engine.container_ops.build``, the
one the CLI calls) in a worker thread: its progress lines and the RUN steps' output go to a sink
that makes docker's ``{"stream": ...}`` JSON lines, the image ID ends as ``aux``, a failure as
``error``/``errorDetail``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from dockerbank.api.base import CONFIG, LineQueue, engine_call, qbool, reply
from dockerbank.api.compat.streams import body_file
from dockerbank.errors import DockerbankError, InvalidArgument, Offline


@dataclass
class BuildQuery:
    """The build endpoint's query (pure parse)."""

    tags: list[str] = field(default_factory=list)
    dockerfile: str | None = None
    target: str | None = None
    no_cache: bool = False
    quiet: bool = False
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    remote: str | None = None


def build_query(query) -> BuildQuery:
    """``t``, ``dockerfile``, ``target``, ``nocache``, ``q``, ``buildargs``, ``labels``, ``remote`` (pure)."""
    def flag(name: str) -> bool:
        return query.get(name, "").lower() in ("1", "true")

    return BuildQuery(
        tags=list(query.getall("t", [])), dockerfile=query.get("dockerfile") or None,
        target=query.get("target") or None, no_cache=flag("nocache"), quiet=flag("q"),
        build_args={k: v for k, v in _json_map(query.get("buildargs")).items() if v is not None},
        labels={k: str(v) for k, v in _json_map(query.get("labels")).items()}, remote=query.get("remote") or None)


def _json_map(text: str | None) -> dict:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON in query: {text}") from exc
    return data if isinstance(data, dict) else {}


async def build(request: web.Request) -> web.StreamResponse:
    from dockerbank.build import context as contexts
    from dockerbank.build.executor import BuildOptions
    from dockerbank.engine.containers import check_tags
    from dockerbank.engine.sinks import CallbackSink

    parsed = build_query(request.query)
    if parsed.remote:
        raise Offline(f"unable to prepare context: remote contexts ({parsed.remote}) are not supported offline")
    check_tags(parsed.tags)
    options = BuildOptions(parsed.tags, parsed.build_args, parsed.target, parsed.no_cache, parsed.labels)
    config = request.app[CONFIG]
    lines = LineQueue(asyncio.get_running_loop())
    out = CallbackSink(lambda data: lines.put({"stream": data.decode(errors="replace")}))
    async with body_file(request) as context_path:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)

        def job(engine) -> str:
            from dataclasses import replace

            from dockerbank.audit.buildcheck import license_scan

            with open(context_path, "rb") as handle:
                context = contexts.from_stdin(handle, config.tmp_dir, parsed.dockerfile)
            return engine.container_ops.build(context, replace(options, license_scan=license_scan(engine)), out,
                                              quiet=parsed.quiet)

        try:
            image_id = await lines.drain_into(resp, engine_call(request, job))
        except Exception as exc:  # the headers went out: the error is the stream's last line
            from dockerbank.api.errors import message_of

            message = message_of(exc)
            detail: dict = {"message": message}
            if isinstance(exc, DockerbankError) and exc.exit_code not in (1, 125):
                detail["code"] = exc.exit_code  # a RUN step's own exit code, as docker reports it
            await resp.write(json.dumps({"errorDetail": detail, "error": message}).encode() + b"\r\n")
        else:
            if parsed.quiet:
                await resp.write(json.dumps({"stream": image_id + "\n"}).encode() + b"\r\n")
            await resp.write(json.dumps({"aux": {"ID": image_id}}).encode() + b"\r\n")
        await resp.write_eof()
        return resp


async def commit(request: web.Request) -> web.Response:
    from dockerbank.container.commit import CommitOptions

    q = request.query
    ref = q.get("container") or ""
    if not ref:
        raise InvalidArgument("container is required")
    repo, tag = q.get("repo", ""), q.get("tag", "")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    options = CommitOptions(reference=reference, pause=qbool(request, "pause", True),
                            changes=tuple(c for c in q.getall("changes", []) if c), message=q.get("comment", ""),
                            author=q.get("author", ""))
    record = await engine_call(request, lambda e: e.container_ops.commit(ref, options))
    return reply({"Id": record.id}, status=201)


async def prune(request: web.Request) -> web.Response:
    """``POST /build/prune`` (``docker builder prune``, ``docker system prune``): the step cache."""
    everything = qbool(request, "all")
    keys = await engine_call(request, lambda e: e.prune_build_cache(everything))
    return reply({"CachesDeleted": keys or None, "SpaceReclaimed": 0})


ROUTES = [("POST", "/build", build), ("POST", "/commit", commit), ("POST", "/build/prune", prune)]
