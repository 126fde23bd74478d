"""Mount specifications of a container: parsing ``-v``, ``--mount``, ``--tmpfs`` and
``--volumes-from``, merging the image's ``VOLUME`` paths, and OCI runtime-spec mounts.

Pure: no I/O. Whether a bind source exists is asked through a callable, so the caller
decides what "exists" means (the host, or a fake in unit tests). Messages follow dockerd's
volume/mounts/linux_parser.go and the docker CLI's opts/mount.go, so that scripts grepping
docker's errors keep working.

Flow used by the containers code at ``create``::

    specs = parse_all(volumes=opts.volume, mounts=opts.mount, tmpfs=opts.tmpfs)
    validate(specs, exists=os.path.exists)
    for each --volumes-from: container_ref, mode = parse_volumes_from(value)
        specs = merge_volumes_from(specs, other_container_specs, mode)
    specs = merge_image_volumes(specs, image_config["config"].get("Volumes"))
    # then for each volume spec: engine.volumes.ensure(name, attach_to=cid) or
    # create(anonymous=True, attach_to=cid) (then replace(spec, source=volume.name));
    # unless spec.nocopy: engine.volumes.populate_from_image(name, merged_rootfs, spec.target);
    # resolve via engine.volumes.resolve(spec), resolve_bind(spec) or resolve_tmpfs(spec)
    oci = to_oci_mounts(resolved)
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dockerbank.errors import InvalidArgument

BIND = "bind"
VOLUME = "volume"
TMPFS = "tmpfs"
MOUNT_TYPES = (BIND, VOLUME, TMPFS)

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
_CONSISTENCY_MODES = ("consistent", "cached", "delegated", "default")

# docker's names.RestrictedNameChars, used by the local volume driver
VOLUME_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# tmpfs data options the kernel's tmpfs accepts (docker's mount.validFlags)
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
# tmpfs flag options; options in one group override each other (later wins, like MergeTmpfsOptions)
_TMPFS_FLAG_GROUPS = {
    "ro": "rdonly", "rw": "rdonly",
    "exec": "noexec", "noexec": "noexec",
    "suid": "nosuid", "nosuid": "nosuid",
    "dev": "nodev", "nodev": "nodev",
    "sync": "sync", "async": "sync",
    "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime",
    "relatime": "relatime", "norelatime": "relatime",
    "strictatime": "strictatime", "nostrictatime": "strictatime",
    "mand": "mand", "nomand": "mand",
    "dirsync": "dirsync",
    "remount": "remount",
    **{p: "propagation" for p in PROPAGATIONS},
    "unbindable": "propagation", "runbindable": "propagation",
}
TMPFS_DEFAULT_OPTIONS = ("noexec", "nosuid", "nodev")  # docker's defaults for every tmpfs mount


def _error(message: str) -> InvalidArgument:
    # docker run/create end with 125 for every mount error (daemon or CLI side)
    return InvalidArgument(message, exit_code=125)


@dataclass(frozen=True)
class MountSpec:
    """One requested mount, as the user asked for it (before volumes exist).

    ``source``: host path for ``bind``; volume name for ``volume`` ("" = anonymous, a name is
    chosen at create); "" for ``tmpfs``. ``create_source``: a ``-v`` bind whose host directory
    is created when missing (docker's -v does, ``--mount`` refuses). ``options``: the raw mode
    words of ``-v`` (``ro``, ``z``, ``nocopy``...) or the raw tmpfs options of ``--tmpfs``.
    ``volume_options``/``labels``/``driver``: used when the volume is created by this mount.
    ``from_container``: set when the mount was inherited by ``--volumes-from``.
    """

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    options: tuple[str, ...] = ()
    propagation: str = ""
    nocopy: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    volume_options: Mapping[str, str] = field(default_factory=dict)
    driver: str = "local"
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    create_source: bool = False
    from_container: str = ""
    origin: str = ""  # "volume" (-v), "mount" (--mount), "tmpfs" (--tmpfs), "image" (VOLUME), for inspect
    raw: str = ""     # the flag's value as given (HostConfig.Binds shows it)

    @property
    def anonymous(self) -> bool:
        """A volume mount without a name: a new anonymous volume is created for it."""
        return self.type == VOLUME and not self.source

    def to_dict(self) -> dict:
        """JSON-able form for storing in the container's config."""
        return {
            "type": self.type, "target": self.target, "source": self.source,
            "read_only": self.read_only, "options": list(self.options), "propagation": self.propagation,
            "nocopy": self.nocopy, "labels": dict(self.labels), "volume_options": dict(self.volume_options),
            "driver": self.driver, "tmpfs_size": self.tmpfs_size, "tmpfs_mode": self.tmpfs_mode,
            "create_source": self.create_source, "from_container": self.from_container,
            "origin": self.origin, "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> MountSpec:
        """Inverse of ``to_dict``."""
        return cls(
            type=data["type"], target=data["target"], source=data.get("source", ""),
            read_only=bool(data.get("read_only")), options=tuple(data.get("options", ())),
            propagation=data.get("propagation", ""), nocopy=bool(data.get("nocopy")),
            labels=dict(data.get("labels", {})), volume_options=dict(data.get("volume_options", {})),
            driver=data.get("driver", "local"), tmpfs_size=data.get("tmpfs_size"),
            tmpfs_mode=data.get("tmpfs_mode"), create_source=bool(data.get("create_source")),
            from_container=data.get("from_container", ""), origin=data.get("origin", ""),
            raw=data.get("raw", ""),
        )


@dataclass(frozen=True)
class ResolvedMount:
    """A mount ready for the runtime: ``source`` is an absolute host path (``bind``) or
    ``"tmpfs"``; ``data`` holds the tmpfs data options (``size=..``, ``mode=..``).
    ``volume`` names the volume behind it (for inspect's Mounts), "" for binds and tmpfs."""

    type: str
    source: str
    target: str
    read_only: bool = False
    propagation: str = DEFAULT_PROPAGATION
    data: tuple[str, ...] = ()
    volume: str = ""


# --- names ----------------------------------------------------------------------------------


def valid_volume_name(name: str, min_length: int = 2) -> bool:
    """Whether ``name`` is allowed for a local volume (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``).

    dockerd refuses one-character names in ``volume create`` but takes them from ``-v n:/d``;
    ``min_length=1`` is that second rule.
    """
    if min_length == 1 and len(name) == 1:
        return name.isascii() and name.isalnum()
    return bool(_VOLUME_NAME_RE.match(name))


def volume_name_error(name: str) -> str:
    """dockerd's message for a name the local driver refuses."""
    if len(name) == 1 and name.isalnum():
        return "volume name is too short, names should be at least two alphanumeric characters"
    return (f'"{name}" includes invalid characters for a local volume name, only "{VOLUME_NAME_CHARS}" '
            "are allowed. If you intended to pass a host directory, use absolute path")


# --- -v / --volume --------------------------------------------------------------------------


def valid_mount_mode(mode: str) -> bool:
    """docker's ValidateMountMode: comma-separated words, at most one of each kind."""
    if not mode:
        return True
    counts = {"rw": 0, "label": 0, "prop": 0, "copy": 0, "consistency": 0}
    for word in mode.split(","):
        if word in _RW_MODES:
            counts["rw"] += 1
        elif word in _LABEL_MODES:
            counts["label"] += 1
        elif word in PROPAGATIONS:
            counts["prop"] += 1
        elif word in _COPY_MODES:
            counts["copy"] += 1
        elif word in _CONSISTENCY_MODES:
            counts["consistency"] += 1
        else:
            return False
    return all(count <= 1 for count in counts.values())


def _clean_target(target: str, mount_type: str, raw: str | None = None, bare: bool = False) -> str:
    def fail(reason: str) -> InvalidArgument:
        message = reason if bare else f'invalid mount config for type "{mount_type}": {reason}'
        return _error(f"invalid volume specification: '{raw}': {message}" if raw is not None else message)

    if not target:
        raise fail("field Target must not be empty")
    if not target.startswith("/"):
        raise fail(f"invalid mount path: '{target}' mount path must be absolute")
    cleaned = posixpath.normpath(target)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise fail("invalid specification: destination can't be '/'")
    return cleaned


def parse_volume(raw: str) -> MountSpec:
    """Parse one ``-v``/``--volume`` value: ``/ctr``, ``name:/ctr[:mode]``, ``/host:/ctr[:mode]``.

    A source starting with ``/`` is a bind mount (the host directory is created at start when
    missing, as docker does for -v); anything else is a named volume.
    """
    return replace(_parse_volume(raw), origin="volume", raw=raw)


def _parse_volume(raw: str) -> MountSpec:
    parts = raw.split(":")
    if any(not part for part in parts):
        raise _error(f"invalid volume specification: '{raw}'")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if valid_mount_mode(parts[1]):  # "/foo:rw": a mode without a destination
            raise _error(f"invalid volume specification: '{raw}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise _error(f"invalid volume specification: '{raw}'")
    if not valid_mount_mode(mode):
        raise _error(f"invalid mode: {mode}")
    words = tuple(mode.split(",")) if mode else ()
    mount_type = BIND if source.startswith("/") else VOLUME
    target = _clean_target(target, mount_type, raw)
    propagation = next((w for w in words if w in PROPAGATIONS), "")
    if mount_type == BIND:
        source = posixpath.normpath(source)
        if source.startswith("//"):
            source = "/" + source.lstrip("/")
        return MountSpec(type=BIND, source=source, target=target, read_only="ro" in words, options=words,
                         propagation=propagation or DEFAULT_PROPAGATION, create_source=True)
    if source and not valid_volume_name(source, min_length=1):
        raise _error(f"create {source}: {volume_name_error(source)}")
    if propagation:
        raise _error(f"invalid volume specification: '{raw}': invalid mount config for type \"volume\": "
                     "field BindOptions must not be specified")
    return MountSpec(type=VOLUME, source=source, target=target, read_only="ro" in words, options=words,
                     nocopy="nocopy" in words)


# --- --mount --------------------------------------------------------------------------------

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _parse_bool(key: str, value: str, raw: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _mount_flag_error(raw, f"invalid value for {key}: {value}")


def _mount_flag_error(raw: str, reason: str) -> InvalidArgument:
    return _error(f'invalid argument "{raw}" for "--mount" flag: {reason}')


def parse_size(value: str) -> int:
    """docker's units.RAMInBytes: ``64m``, ``1g``, ``512k``, ``100`` (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?\s*", value)
    if not match:
        raise ValueError(f"invalid size: '{value}'")
    number = float(match.group(1))
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(number * (1024 ** power))


def parse_mount(raw: str) -> MountSpec:
    """Parse one ``--mount`` value (CSV with quoting, like docker's opts/mount.go)."""
    return replace(_parse_mount(raw), origin="mount", raw=raw)


def _parse_mount(raw: str) -> MountSpec:
    import csv  # only --mount needs it

    try:
        fields = next(csv.reader([raw]))
    except (csv.Error, StopIteration) as exc:
        raise _mount_flag_error(raw, str(exc)) from exc
    mount_type = VOLUME
    source = target = ""
    read_only = nocopy = False
    propagation = ""
    driver = "local"
    labels: dict[str, str] = {}
    volume_opts: dict[str, str] = {}
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    groups: set[str] = set()  # which option families were given: volume, bind, tmpfs
    for item in fields:
        key, sep, value = item.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                read_only = True
                continue
            if key == "volume-nocopy":
                nocopy = True
                groups.add(VOLUME)
                continue
            raise _mount_flag_error(raw, f"invalid field '{item}' must be a key=value pair")
        if key == "type":
            mount_type = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            read_only = _parse_bool(key, value, raw)
        elif key == "consistency":
            if value not in _CONSISTENCY_MODES:
                raise _mount_flag_error(raw, f"invalid value for {key}: {value}")
        elif key == "bind-propagation":
            propagation = value.lower()
            groups.add(BIND)
        elif key == "volume-driver":
            driver = value
            groups.add(VOLUME)
        elif key == "volume-label":
            name, _, val = value.partition("=")
            labels[name] = val
            groups.add(VOLUME)
        elif key == "volume-opt":
            name, _, val = value.partition("=")
            volume_opts[name] = val
            groups.add(VOLUME)
        elif key == "volume-nocopy":
            nocopy = _parse_bool(key, value, raw)
            groups.add(VOLUME)
        elif key == "tmpfs-size":
            try:
                tmpfs_size = parse_size(value)
            except ValueError as exc:
                raise _mount_flag_error(raw, f"invalid value for {key}: {value}") from exc
            groups.add(TMPFS)
        elif key == "tmpfs-mode":
            try:
                tmpfs_mode = int(value, 8)
            except ValueError as exc:
                raise _mount_flag_error(raw, f"invalid value for {key}: {value}") from exc
            groups.add(TMPFS)
        else:
            raise _mount_flag_error(raw, f"unexpected key '{key}' in '{item}'")
    if not mount_type:
        raise _mount_flag_error(raw, "type is required")
    if not target:
        raise _mount_flag_error(raw, "target is required")
    for group in (VOLUME, BIND, TMPFS):
        if group in groups and mount_type != group:
            raise _mount_flag_error(raw, f"cannot mix '{group}-*' options with mount type '{mount_type}'")
    # from here on dockerd's validation (errors without the flag prefix)
    if mount_type not in MOUNT_TYPES:
        raise _error(f'invalid mount config for type "{mount_type}": mount type unknown')
    target = _clean_target(target, mount_type)
    if mount_type == BIND:
        if not source:
            raise _error('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise _error(f"invalid mount config for type \"bind\": invalid mount path: '{source}' "
                         "mount path must be absolute")
        if propagation and propagation not in PROPAGATIONS:
            raise _error(f"invalid mount config for type \"bind\": invalid propagation mode: {propagation}")
        return MountSpec(type=BIND, source=posixpath.normpath(source), target=target, read_only=read_only,
                         propagation=propagation or DEFAULT_PROPAGATION)
    if mount_type == VOLUME:
        if not source and read_only:
            raise _error('invalid mount config for type "volume": must not set ReadOnly mode when using '
                         "anonymous volumes")
        if source and not valid_volume_name(source, min_length=1):
            raise _error(f"create {source}: {volume_name_error(source)}")
        return MountSpec(type=VOLUME, source=source, target=target, read_only=read_only, nocopy=nocopy,
                         labels=labels, volume_options=volume_opts, driver=driver)
    if source:
        raise _error('invalid mount config for type "tmpfs": field Source must not be specified')
    return MountSpec(type=TMPFS, target=target, read_only=read_only, tmpfs_size=tmpfs_size,
                     tmpfs_mode=tmpfs_mode)


# --- --tmpfs --------------------------------------------------------------------------------


def parse_tmpfs(raw: str) -> MountSpec:
    """Parse one ``--tmpfs /path[:opt,opt=val]`` value; options are checked like MergeTmpfsOptions."""
    target, _, data = raw.partition(":")
    target = _clean_target(target, TMPFS, bare=True)
    options = tuple(o for o in data.split(",") if o) if data else ()
    merge_tmpfs_options(options)  # validates
    return MountSpec(type=TMPFS, target=target, options=options, read_only="ro" in options, origin="tmpfs", raw=raw)


def merge_tmpfs_options(options: Sequence[str]) -> list[str]:
    """docker's MergeTmpfsOptions: later options override earlier ones of the same kind.

    ``["noexec", "nosuid", "nodev", "exec", "size=1m"]`` -> ``["nosuid", "nodev", "exec", "size=1m"]``.
    """
    seen_flags: set[str] = set()
    seen_data: set[str] = set()
    merged: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        group = _TMPFS_FLAG_GROUPS.get(option)
        if group is not None:
            if group not in seen_flags:
                merged.insert(0, option)
                seen_flags.add(group)
            continue
        key, sep, _ = option.partition("=")
        if not sep or key not in _TMPFS_DATA:
            raise _error(f'Invalid tmpfs option ["{option}"]' if not sep else f'Invalid tmpfs option ["{key}" "{option[len(key) + 1:]}"]')
        if key not in seen_data:
            merged.insert(0, option)
            seen_data.add(key)
    return merged


def format_tmpfs_size(size: int) -> str:
    """The largest binary suffix dividing ``size`` evenly (docker's ConvertTmpfsOptions)."""
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


# --- the whole set ---------------------------------------------------------------------------


def parse_all(volumes: Iterable[str] = (), mounts: Iterable[str] = (), tmpfs: Iterable[str] = ()) -> list[MountSpec]:
    """Parse every ``-v``, ``--mount`` and ``--tmpfs`` value; refuse a mount point given twice."""
    specs = [parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts] + [parse_tmpfs(t) for t in tmpfs]
    check_duplicates(specs)
    return specs


def check_duplicates(specs: Iterable[MountSpec]) -> None:
    """``Duplicate mount point: /data`` when two mounts share a target."""
    seen: set[str] = set()
    for spec in specs:
        if spec.target in seen:
            raise _error(f"Duplicate mount point: {spec.target}")
        seen.add(spec.target)


def validate(specs: Iterable[MountSpec], exists: Callable[[str], bool]) -> None:
    """Checks that need the host: a ``--mount type=bind`` source must exist (a ``-v`` one is
    created instead). ``exists(path)`` answers for the host."""
    for spec in specs:
        if spec.type == BIND and not spec.create_source and not exists(spec.source):
            raise _error(f'invalid mount config for type "bind": bind source path does not exist: {spec.source}')


def parse_volumes_from(raw: str) -> tuple[str, str]:
    """``CONTAINER[:ro|rw]`` -> (container, mode); propagation and copy modes are refused."""
    if not raw:
        raise _error("volumes-from specification cannot be an empty string")
    container, sep, mode = raw.partition(":")
    if not sep:
        return container, "rw"
    words = mode.split(",") if mode else []
    if (not valid_mount_mode(mode) or any(w in PROPAGATIONS for w in words)
            or any(w in _COPY_MODES for w in words)):
        raise _error(f"invalid mode: {mode}")
    return container, mode


def merge_volumes_from(specs: Sequence[MountSpec], other: Iterable[MountSpec], mode: str = "rw",
                       container: str = "") -> list[MountSpec]:
    """Add the mounts of another container (``--volumes-from``), as dockerd does.

    Its volumes and binds are shared (same source; anonymous volumes must already have their
    generated names in ``other``), read-only when ``mode`` has ``ro`` or the original was; no
    copy-up. tmpfs mounts are not inherited. A mount given on this command line for the same
    target wins.
    """
    own = {spec.target for spec in specs}
    read_only = "ro" in mode.split(",")
    inherited: list[MountSpec] = []
    for spec in other:
        if spec.type == TMPFS or spec.target in own:
            continue
        if spec.type == VOLUME and not spec.source:
            raise _error(f"volumes-from: the volume at {spec.target} has no name yet")
        inherited.append(replace(spec, read_only=spec.read_only or read_only, nocopy=True, create_source=False,
                                 from_container=container or spec.from_container))
        own.add(spec.target)
    return inherited + list(specs)


def merge_image_volumes(specs: Sequence[MountSpec], image_volumes: Mapping[str, object] | Iterable[str] | None) -> list[MountSpec]:
    """Add an anonymous volume for each image ``VOLUME`` path not already covered by a mount."""
    result = list(specs)
    covered = {spec.target for spec in specs}
    for path in sorted(image_volumes or ()):
        if not path.startswith("/"):
            continue
        target = posixpath.normpath(path)
        if target in covered or target == "/":
            continue
        result.append(MountSpec(type=VOLUME, target=target, origin="image"))
        covered.add(target)
    return result


# --- resolution and the OCI spec ---------------------------------------------------------------


def resolve_bind(spec: MountSpec) -> ResolvedMount:
    """A bind spec as a runtime mount (its source is already an absolute host path)."""
    return ResolvedMount(type=BIND, source=spec.source, target=spec.target, read_only=spec.read_only,
                         propagation=spec.propagation or DEFAULT_PROPAGATION)


def resolve_tmpfs(spec: MountSpec) -> ResolvedMount:
    """A tmpfs spec (``--tmpfs`` or ``--mount type=tmpfs``) as a runtime mount."""
    data = [o for o in spec.options if o not in ("ro", "rw")]
    if spec.tmpfs_mode is not None:
        data.append(f"mode={spec.tmpfs_mode:o}")
    if spec.tmpfs_size:
        data.append(f"size={format_tmpfs_size(spec.tmpfs_size)}")
    return ResolvedMount(type=TMPFS, source="tmpfs", target=spec.target, read_only=spec.read_only,
                         propagation="", data=tuple(data))


def resolve_volume(spec: MountSpec, name: str, data_dir: str, volume_options: Mapping[str, str] | None = None) -> ResolvedMount:
    """A volume spec as a runtime mount, given the volume's name, data dir and driver options.

    Local-driver options act at use time like docker's: ``type=tmpfs`` gives the container a
    tmpfs (``o=`` kept as data); ``o=bind,device=/path`` binds ``/path``; otherwise the volume's
    ``_data`` directory is bound. ``ro`` in ``o=`` makes every use read-only, as a read-only
    mount of the device on ``_data`` would in docker. (Unlike docker, a tmpfs volume is one tmpfs
    per container, not one shared by the containers using it at the same time.)
    """
    opts = dict(volume_options or {})
    o_words = [o for o in opts.get("o", "").split(",") if o]
    read_only = spec.read_only or "ro" in o_words
    if opts.get("type") == TMPFS:
        data = tuple(o for o in o_words if o not in ("ro", "rw"))
        return ResolvedMount(type=TMPFS, source="tmpfs", target=spec.target, read_only=read_only,
                             propagation="", data=data, volume=name)
    source = data_dir
    if opts.get("device") and {"bind", "rbind"} & set(o_words):
        source = opts["device"]
    return ResolvedMount(type=BIND, source=source, target=spec.target, read_only=read_only,
                         propagation=spec.propagation or DEFAULT_PROPAGATION, volume=name)


def to_oci_mounts(resolved: Iterable[ResolvedMount]) -> list[dict]:
    """OCI runtime-spec ``mounts`` entries, in docker's option order.

    bind/volume: ``rbind``, ``ro`` when read-only, the propagation. tmpfs: docker's defaults
    ``noexec,nosuid,nodev`` merged with the user's options (the kernel's tmpfs mode is 1777).
    Sorted by target depth so a parent mount never hides a child one.
    """
    entries: list[dict] = []
    for mount in sorted(resolved, key=lambda m: (m.target.rstrip("/").count("/"), m.target)):
        if mount.type == TMPFS:
            options = list(TMPFS_DEFAULT_OPTIONS) + (["ro"] if mount.read_only else []) + list(mount.data)
            entries.append({"destination": mount.target, "type": "tmpfs", "source": "tmpfs",
                            "options": merge_tmpfs_options(options)})
        else:
            options = ["rbind"] + (["ro"] if mount.read_only else []) + [mount.propagation or DEFAULT_PROPAGATION]
            entries.append({"destination": mount.target, "type": "bind", "source": mount.source, "options": options})
    return entries


# --- docker's inspect shapes -----------------------------------------------------------------


def inspect_mount(spec: MountSpec, source: str = "") -> dict | None:
    """One entry of a container's ``Mounts`` in ``docker inspect``; None for ``--tmpfs`` (docker
    lists those only in ``HostConfig.Tmpfs``). ``source``: a volume's Mountpoint."""
    if spec.origin == "tmpfs":
        return None
    if spec.type == VOLUME:
        if spec.origin == "mount":
            mode = "z"  # what dockerd records for --mount volumes
        else:
            mode = ",".join(spec.options)
        return {"Type": "volume", "Name": spec.source, "Source": source, "Destination": spec.target,
                "Driver": spec.driver, "Mode": mode, "RW": not spec.read_only, "Propagation": ""}
    if spec.type == BIND:
        return {"Type": "bind", "Source": spec.source, "Destination": spec.target,
                "Mode": ",".join(spec.options) if spec.origin == "volume" else "", "RW": not spec.read_only,
                "Propagation": spec.propagation or DEFAULT_PROPAGATION}
    return {"Type": "tmpfs", "Source": "", "Destination": spec.target, "Mode": "", "RW": not spec.read_only,
            "Propagation": ""}


def host_config_fields(specs: Iterable[MountSpec]) -> dict:
    """``HostConfig.Binds``, ``.Mounts`` and ``.Tmpfs`` and ``Config.Volumes`` as docker shows them
    for the flags given (``-v`` with a source, ``--mount``, ``--tmpfs``, ``-v /path`` and image VOLUMEs)."""
    binds: list[str] = []
    api_mounts: list[dict] = []
    tmpfs: dict[str, str] = {}
    volumes: dict[str, dict] = {}
    for spec in specs:
        if spec.from_container:
            continue
        if spec.origin == "tmpfs":
            tmpfs[spec.target] = ",".join(spec.options)
        elif spec.origin == "mount":
            entry: dict = {"Type": spec.type, "Target": spec.target}
            if spec.source:
                entry["Source"] = spec.source
            if spec.read_only:
                entry["ReadOnly"] = True
            if spec.type == BIND and spec.propagation and spec.propagation != DEFAULT_PROPAGATION:
                entry["BindOptions"] = {"Propagation": spec.propagation}
            if spec.type == VOLUME and (spec.nocopy or spec.labels or spec.volume_options or spec.driver != "local"):
                options: dict = {"DriverConfig": {}}
                if spec.nocopy:
                    options["NoCopy"] = True
                if spec.labels:
                    options["Labels"] = dict(spec.labels)
                if spec.driver != "local":
                    options["DriverConfig"]["Name"] = spec.driver
                if spec.volume_options:
                    options["DriverConfig"]["Options"] = dict(spec.volume_options)
                entry["VolumeOptions"] = options
            if spec.type == TMPFS and (spec.tmpfs_size or spec.tmpfs_mode is not None):
                entry["TmpfsOptions"] = {k: v for k, v in (("SizeBytes", spec.tmpfs_size),
                                                            ("Mode", spec.tmpfs_mode)) if v}
            api_mounts.append(entry)
        elif spec.origin == "volume" and ":" in spec.raw:
            binds.append(spec.raw)
        elif spec.origin in ("volume", "image"):  # -v /path alone, and the image's VOLUMEs
            volumes[spec.target] = {}
    return {"Binds": binds or None, "Mounts": api_mounts or None, "Tmpfs": tmpfs or None,
            "Volumes": volumes or None}
