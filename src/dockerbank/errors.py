"""The one error tree of Dockerbank.

Every failure a user can cause or meet is a ``DockerbankError``: it carries one clear
line of text, the cause (``__cause__`` via ``raise ... from``), the exit code the CLI ends
with and the HTTP status the API answers (``http_status``: this module is the one table;
``api.errors`` reads it from the class and keeps no table of its own).
"""

from __future__ import annotations


_ONE_LINE = {i: f"\\x{i:02x}" for i in range(32) if i != 9} | {10: "\\n", 13: "\\r"}


class DockerbankError(Exception):
    """Base of every error Dockerbank reports to a user.

    ``exit_code`` follows the docker CLI: 1 for a failed command, 125 for an error of
    the engine or of the command line when running a container.
    """

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, exit_code: int | None = None):
        # one line, whatever the user's input it quotes holds (a filter, a path with a newline)
        message = message.strip().translate(_ONE_LINE)
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(DockerbankError):
    """The command line or a request is malformed."""

    exit_code = 125
    http_status = 400


class InvalidArgument(DockerbankError):
    """A value given by the user cannot be used (bad reference, bad filter, bad option)."""

    http_status = 400


class NotFound(DockerbankError):
    """The named object (image, container, volume, network, blob) does not exist."""

    http_status = 404


class Conflict(DockerbankError):
    """The operation conflicts with the current state (name in use, image in use, ...)."""

    http_status = 409


class AmbiguousReference(InvalidArgument):
    """A short ID prefix matches more than one object."""


class CorruptData(DockerbankError):
    """Stored or received data fails verification (digest mismatch, broken archive)."""

    http_status = 400


class HostileArchive(CorruptData):
    """An archive tries to write outside its destination or to create what it must not."""


class RuntimeFailure(DockerbankError):
    """The OCI runtime, conmon or a kernel facility failed."""

    exit_code = 125


class NotSupported(DockerbankError):
    """The request is valid but this host or build cannot honour it."""

    http_status = 501


class Offline(DockerbankError):
    """The operation needs a network resource that cannot be reached."""


class PolicyRefused(DockerbankError):
    """An operation the license policy forbids (an image built from licensed source pushed to a
    registry that is not private)."""

    http_status = 403
