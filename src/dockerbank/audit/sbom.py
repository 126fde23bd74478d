"""SBOM documents of an audited image: CycloneDX 1.6 JSON (cyclonedx-python-lib) and SPDX 2.3 JSON (spdx-tools).

Both libraries validate what they write. An inventory that could not be read completely is
refused: a partial SBOM must never be presented as complete.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

from dockerbank.errors import CorruptData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockerbank.audit.service import ImageAudit

FORMATS = ("cyclonedx-json", "spdx-json")
TOOL = "dockerbank"


def render(report: ImageAudit, fmt: str) -> str:
    """The SBOM of ``report`` in ``fmt`` (one of FORMATS)."""
    if not report.complete:
        unread = [f.detail for f in report.findings if f.rule == "unreadable"]
        raise CorruptData(f"cannot produce a complete SBOM of {report.name}: {'; '.join(unread)[:400]}")
    if fmt == "cyclonedx-json":
        return cyclonedx_json(report)
    if fmt == "spdx-json":
        return spdx_json(report)
    raise CorruptData(f"unknown SBOM format {fmt!r} (use {' or '.join(FORMATS)})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dockerbank")
    except PackageNotFoundError:
        return "0"


def _refs(report: ImageAudit) -> list[str]:
    """A unique reference per package: its purl, suffixed where two databases list the same one."""
    seen: dict[str, int] = {}
    out = []
    for pkg in report.packages:
        ref = pkg.purl
        seen[ref] = seen.get(ref, 0) + 1
        out.append(ref if seen[ref] == 1 else f"{ref}#{seen[ref]}")
    return out


def cyclonedx_json(report: ImageAudit) -> str:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    image = Component(name=report.name, version=report.image_id, type=ComponentType.CONTAINER, bom_ref="image")
    bom.metadata.component = image
    bom.metadata.properties.add(Property(name="dockerbank:version", value=_version()))
    components = []
    for pkg, ref in zip(report.packages, _refs(report)):
        component = Component(
            name=pkg.name, version=pkg.version, type=ComponentType.LIBRARY, bom_ref=ref,
            purl=PackageURL.from_string(pkg.purl),
            licenses=[LicenseExpression(pkg.license)] if pkg.license else [],
            properties=[Property(name="dockerbank:location", value=pkg.location)] if pkg.location else [],
        )
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(image, components)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:  # our bug, never the user's: say what the schema refused
        raise CorruptData(f"the CycloneDX document does not validate: {error}")
    return text


def _spdx_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def spdx_json(report: ImageAudit) -> str:
    from license_expression import get_spdx_licensing
    from spdx_tools.spdx.model import (
        Actor, ActorType, CreationInfo, Document, ExternalPackageRef, ExternalPackageRefCategory,
        ExtractedLicensingInfo, Package, PackagePurpose, Relationship, RelationshipType, SpdxNoAssertion,
    )
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    licensing = get_spdx_licensing()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    hex_id = report.image_id.removeprefix("sha256:")
    info = CreationInfo(
        spdx_version="SPDX-2.3", spdx_id="SPDXRef-DOCUMENT", name=f"{report.name}",
        document_namespace=f"https://dockerbank.invalid/spdx/{hex_id}/{now.strftime('%Y%m%dT%H%M%SZ')}",
        creators=[Actor(ActorType.TOOL, f"{TOOL}-{_version()}")], created=now,
    )
    image = Package(spdx_id="SPDXRef-Image", name=report.name, download_location=SpdxNoAssertion(),
                    version=report.image_id, files_analyzed=False,
                    primary_package_purpose=PackagePurpose.CONTAINER)
    packages = [image]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image")]
    refs: set[str] = set()
    for number, (pkg, purl) in enumerate(zip(report.packages, _refs(report)), start=1):
        declared = SpdxNoAssertion()
        if pkg.license:
            declared = licensing.parse(pkg.license)
            refs.update(k for k in licensing.license_keys(declared) if k.startswith("LicenseRef-"))
        spdx_id = f"SPDXRef-Package-{_spdx_id(pkg.type)}-{_spdx_id(pkg.name)}-{number}"
        packages.append(Package(
            spdx_id=spdx_id, name=pkg.name, download_location=SpdxNoAssertion(), version=pkg.version,
            files_analyzed=False, license_declared=declared, license_concluded=SpdxNoAssertion(),
            copyright_text=SpdxNoAssertion(), source_info=f"read from {pkg.location}" if pkg.location else None,
            external_references=[ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
                                                    purl.split("#", 1)[0])],
        ))
        relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, spdx_id))
    extracted = [ExtractedLicensingInfo(license_id=ref, extracted_text=f"{ref[len('LicenseRef-'):]}: a license "
                                        "named so in the package's copyright or metadata, with no SPDX id",
                                        license_name=ref[len("LicenseRef-"):]) for ref in sorted(refs)]
    document = Document(info, packages=packages, relationships=relationships, extracted_licensing_info=extracted)
    stream = io.StringIO()
    try:
        write_document_to_stream(document, stream, validate=True)
    except ValueError as exc:  # spdx-tools validates on write
        raise CorruptData(f"the SPDX document does not validate: {str(exc)[:400]}") from exc
    return stream.getvalue()
