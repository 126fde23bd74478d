"""The audit's part in ``build``: which components of a freshly built image have a license that
forbids redistribution (build then labels the image; see build.licensed). Transports hand
:func:`license_scan` to ``BuildOptions`` (build sits below the audit and cannot import it)."""

from __future__ import annotations

from collections.abc import Callable


def license_scan(engine) -> Callable[[str], list[str]]:
    """image ID -> "type name version" of each component licensed against redistribution.
    The scan is the audit's own (cached by image ID, so a later ``audit image`` costs nothing)."""

    def scan(image_id: str) -> list[str]:
        from dockerbank.audit.service import AuditService

        report = AuditService.of(engine).audit_image(image_id)
        return [f.where for f in report.findings if f.rule == "not-redistributable" and not f.where.startswith("config:")]

    return scan
