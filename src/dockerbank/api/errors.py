"""Dockerbank's errors as Docker Engine API answers: the status is the error class's own
``http_status`` (the one table is the error tree in ``dockerbank.errors``).

Bodies are ``{"message": ...}`` as dockerd sends them; streamed endpoints (pull, push, build,
load) report a failure after the headers as a JSON line with ``error`` and ``errorDetail``.
"""

from __future__ import annotations

import json

from dockerbank import errors as e

class NotModified(e.DockerbankError):
    """Start of a started container or stop of a stopped one: Docker answers 304, no body."""

    http_status = 304


def status_of(exc: BaseException) -> int:
    """The HTTP status for an exception: its class's own, 500 for anything outside the error tree."""
    return exc.http_status if isinstance(exc, e.DockerbankError) else 500


def message_of(exc: BaseException) -> str:
    if isinstance(exc, e.DockerbankError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def body_of(exc: BaseException) -> bytes:
    return json.dumps({"message": message_of(exc)}).encode() + b"\n"


def stream_error_line(exc: BaseException) -> bytes:
    """The JSON line a streamed endpoint ends with on failure."""
    message = message_of(exc)
    return json.dumps({"errorDetail": {"message": message}, "error": message}).encode() + b"\r\n"


class SwarmUnavailable(e.DockerbankError):
    """A swarm endpoint on an engine that is no swarm member: dockerd answers 503."""

    http_status = 503
