"""Catalog entries: a directory per entry holding ``entry.yaml`` (what it is for, version, SPDX
license, redistributable, source, images to build, volumes and what they hold, settings) and
``compose.yaml`` (the stack: health checks, ports, backup recipes as ``x-dockerbank-backup`` and
``org.dockerbank.backup.*`` labels), plus one build context per image.

The compose file stays the one place for what compose already says (services, health, ports,
backup); the metadata adds what compose cannot say. Loading validates both and reads nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockerbank.errors import CorruptData, NotFound

ENTRIES_DIR = Path(__file__).with_name("entries")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SETTING = re.compile(r"^[A-Z][A-Z0-9_]*$")
BACKUP_KEY = "x-dockerbank-backup"
DUMP_LABEL = "org.dockerbank.backup.dump"


@dataclass(frozen=True)
class Setting:
    """A value a deployment needs: a default, a secret generated when not given, or neither
    (then the user must give it with ``--set``)."""

    key: str
    help: str
    default: str | None = None
    secret: bool = False
    port: bool = False        # a host port: deploy checks it is free before creating anything

    @property
    def required(self) -> bool:
        return self.default is None and not self.secret


@dataclass(frozen=True)
class UserFile:
    """A source the user must supply (a licensed release archive) for one image's build."""

    pattern: str              # glob of the file's name, e.g. ``redcap*.zip``
    what: str                 # what it is, for the message when it is missing
    origin: str               # where the user gets it
    target: str               # its name inside the build context


@dataclass(frozen=True)
class ImageSpec:
    """One image of an entry: built from a context of this entry, or borrowed from another entry."""

    key: str
    tag: str
    context: str | None = None
    entry: str | None = None
    user_file: UserFile | None = None
    # an image of Debian packages only under an entry built from licensed source (REDCap's
    # Apache+PHP base) says its own license, source and redistributability
    license: str | None = None
    source: str | None = None
    redistributable: bool | None = None
    # the image that installs the entry's Debian packages, pinned by the entry's packages.lock (its
    # Dockerfile takes them as ARG PACKAGES: NAME=VERSION ... from the lock)
    apt: bool = False


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    purpose: str
    version: str
    license: str
    redistributable: bool
    source: str
    packages: list[str]
    images: list[ImageSpec]
    volumes: dict[str, str]
    settings: dict[str, Setting]
    resources: dict[str, str]
    directory: Path
    compose: dict[str, Any] = field(repr=False)

    @property
    def compose_file(self) -> Path:
        return self.directory / "compose.yaml"

    def services(self) -> dict[str, dict[str, Any]]:
        return dict(self.compose.get("services") or {})

    def backup_of(self, service: str) -> str:
        """The backup recipe of a service: its mode, with the dump command when it dumps."""
        svc = self.services()[service]
        mode = svc.get(BACKUP_KEY, "pause")
        labels = svc.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(item.split("=", 1) for item in labels)
        if mode == "dump" and labels.get(DUMP_LABEL):
            return f"dump: {labels[DUMP_LABEL]}"
        return mode

    def health_of(self, service: str) -> str:
        test = (self.services()[service].get("healthcheck") or {}).get("test")
        if not test:
            return "none"
        if isinstance(test, list):
            return " ".join(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else " ".join(test)
        return str(test)

    def ports_of(self, service: str) -> list[str]:
        return [str(p) for p in self.services()[service].get("ports") or []]

    @property
    def lock_file(self) -> Path:
        from dockerbank.catalog.lock import FILE_NAME

        return self.directory / FILE_NAME

    def apt_image(self) -> ImageSpec | None:
        """The entry's own image that installs its Debian packages (locked), if any."""
        return next((i for i in self.images if i.apt), None)

    def user_files(self) -> list[UserFile]:
        return [i.user_file for i in self.images if i.user_file is not None]


def _fail(path: Path, what: str) -> CorruptData:
    return CorruptData(f"catalog entry {path}: {what}")


def _str(data: dict, key: str, path: Path, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _fail(path, f"{key} must be a string")
    return str(value)


def load_entry(directory: Path) -> Entry:
    """Read and validate one entry directory."""
    import yaml

    meta_path, compose_path = directory / "entry.yaml", directory / "compose.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text()) or {}
        compose = yaml.safe_load(compose_path.read_text()) or {}
    except OSError as exc:
        raise _fail(directory, f"cannot read {exc.filename}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise _fail(directory, "invalid YAML: " + " ".join(str(exc).split())) from None
    name = _str(meta, "name", meta_path)
    if name != directory.name or not NAME.match(name):
        raise _fail(meta_path, f"name {name!r} must be the directory's name in lower case")
    license_ = _str(meta, "license", meta_path)
    _check_spdx(license_, meta_path)
    redistributable = meta.get("redistributable")
    if not isinstance(redistributable, bool):
        raise _fail(meta_path, "redistributable must be true or false")
    services = compose.get("services") or {}
    images = []
    for key, spec in (meta.get("images") or {}).items():
        spec = spec or {}
        user = spec.get("user_file")
        user_file = UserFile(_str(user, "pattern", meta_path), _str(user, "what", meta_path),
                             _str(user, "origin", meta_path), _str(user, "target", meta_path)) if user else None
        image = ImageSpec(key, _str(spec, "tag", meta_path), spec.get("context"), spec.get("entry"), user_file,
                          spec.get("license"), spec.get("source"), spec.get("redistributable"), bool(spec.get("apt")))
        if image.license is not None:
            _check_spdx(image.license, meta_path)
        if (image.context is None) == (image.entry is None):
            raise _fail(meta_path, f"image {key}: give either context (a directory here) or entry (another entry)")
        if image.context is not None and not (directory / image.context / "Dockerfile").is_file():
            raise _fail(meta_path, f"image {key}: {image.context}/Dockerfile is missing")
        if image.apt and (image.context is None or not re.search(
                r"^ARG PACKAGES\s*$", (directory / image.context / "Dockerfile").read_text(), re.M)):
            raise _fail(meta_path, f"image {key}: an apt image is built here from a Dockerfile that declares "
                        "ARG PACKAGES (the lock's NAME=VERSION list)")
        images.append(image)
    packages = [str(p) for p in meta.get("packages") or []]
    if sum(i.apt for i in images) > 1:
        raise _fail(meta_path, "only one image of an entry installs its packages (apt: true)")
    if bool(packages) != any(i.apt for i in images):
        raise _fail(meta_path, "packages are what the entry's apt image (apt: true) installs: give both or neither")
    tags = {i.tag for i in images}
    for service, svc in services.items():
        if (svc or {}).get("image") not in tags:
            raise _fail(compose_path, f"service {service}: its image must be one of the entry's images")
        if (svc or {}).get(BACKUP_KEY, "pause") not in ("dump", "pause", "stop", "none"):
            raise _fail(compose_path, f"service {service}: {BACKUP_KEY} must be dump, pause, stop or none")
    settings: dict[str, Setting] = {}
    for key, spec in (meta.get("settings") or {}).items():
        if not SETTING.match(str(key)):
            raise _fail(meta_path, f"setting {key}: names are upper case (A-Z, 0-9, _)")
        spec = spec or {}
        default = spec.get("default")
        settings[key] = Setting(key, _str(spec, "help", meta_path), None if default is None else str(default),
                                bool(spec.get("secret")), bool(spec.get("port")))
    volumes = {str(k): str(v) for k, v in (meta.get("volumes") or {}).items()}
    declared = set(compose.get("volumes") or {})
    if set(volumes) != declared:
        raise _fail(meta_path, f"volumes must describe exactly the compose file's volumes ({', '.join(sorted(declared))})")
    return Entry(name=name, title=_str(meta, "title", meta_path), purpose=_str(meta, "purpose", meta_path),
                 version=_str(meta, "version", meta_path), license=license_, redistributable=redistributable,
                 source=_str(meta, "source", meta_path), packages=packages,
                 images=images, volumes=volumes, settings=settings,
                 resources={str(k): str(v) for k, v in (meta.get("resources") or {}).items()},
                 directory=directory, compose=compose)


def _check_spdx(expression: str, path: Path) -> None:
    """The license must be an SPDX expression (LicenseRef-... for a proprietary one)."""
    from license_expression import get_spdx_licensing

    info = get_spdx_licensing().validate(expression)
    # LicenseRef-... names a license SPDX does not list (REDCap's): valid, though unknown to the library
    unknown = [s for s in info.invalid_symbols if not re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", str(s))]
    syntax = [e for e in info.errors if not e.startswith("Unknown license key")]
    if unknown or syntax:
        raise _fail(path, f"license {expression!r} is not an SPDX expression")


class Catalog:
    """The entries of one directory (the package's own by default)."""

    def __init__(self, directory: Path = ENTRIES_DIR):
        self.directory = directory

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if (p / "entry.yaml").is_file())

    def get(self, name: str) -> Entry:
        if not NAME.match(name) or not (self.directory / name / "entry.yaml").is_file():
            raise NotFound(f"no catalog entry {name!r}: see `dockerbank catalog ls`")
        return load_entry(self.directory / name)

    def entries(self) -> list[Entry]:
        return [self.get(name) for name in self.names()]

    def images_for(self, entry: Entry) -> list[tuple[Entry, ImageSpec]]:
        """The images a deployment of ``entry`` needs in build order, each with the entry whose
        context builds it; a borrowed image comes with the images its entry lists before it
        (its bases: an entry lists its images in build order)."""
        out: list[tuple[Entry, ImageSpec]] = []
        for image in entry.images:
            if image.entry is None:
                pairs = [(entry, image)]
            else:
                other = self.get(image.entry)
                pairs = []
                for pair in self.images_for(other):
                    pairs.append(pair)
                    if pair[1].tag == image.tag:
                        break
                else:
                    raise _fail(entry.directory, f"image {image.key}: entry {other.name} builds no {image.tag}")
            for pair in pairs:
                if all(pair[1].tag != have[1].tag for have in out):
                    out.append(pair)
        return out
