"""The ONE table from Dockerbank's error tree to the Docker Engine API's status codes.

Bodies are ``{"message": ...}`` as dockerd sends them; streamed endpoints (pull, push, build,
load) report a failure after the headers as a JSON line with ``error`` and ``errorDetail``.
"""

from __future__ import annotations

import json

from dockerbank import errors as e

# Most specific class first; the first isinstance match wins.
STATUS_TABLE: tuple[tuple[type[e.DockerbankError], int], ...] = (
    (e.HostileArchive, 400),
    (e.CorruptData, 400),
    (e.AmbiguousReference, 400),
    (e.UsageError, 400),
    (e.InvalidArgument, 400),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.NotSupported, 501),
    (e.Offline, 500),
    (e.RuntimeFailure, 500),
    (e.DockerbankError, 500),
)


class NotModified(e.DockerbankError):
    """Start of a started container or stop of a stopped one: Docker answers 304, no body."""

    http_status = 304


def status_of(exc: BaseException) -> int:
    """The HTTP status for an exception (500 for anything outside the error tree)."""
    if isinstance(exc, NotModified):
        return 304
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    return 500


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
