"""``--log-driver``/``--log-opt`` (docker's ``HostConfig.LogConfig``): which drivers exist, which
options each takes, and what conmon is told (pure).

Every driver but ``none`` keeps the local k8s-file log that ``dockerbank logs`` reads: a remote
driver (``syslog``, ``gelf``) ships a copy from it (docker calls this dual logging), so an
unreachable endpoint never blocks the container and loses nothing locally. ``json-file`` and
``local`` are accepted as docker's names for the local log (its format is conmon's k8s-file);
``local`` has docker's defaults (max-size 20m, max-file 5, compress), and so has a remote
driver's local copy (docker's ``cache-max-size``, ``cache-max-file``, ``cache-compress``;
``cache-disabled`` is refused: the copy is what ``logs`` and the lost-message count rely on).

``max-size`` is conmon's ``--log-size-max``: past it conmon starts the file afresh; with
``max-file`` > 1 the replaced files are kept (``container.logrotate``), gzipped with ``compress``.
A root's ``config.json`` (``dockerbank.settings``) gives the default driver and options, as
docker's ``daemon.json`` does (:func:`with_default`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.container.logrotate import Rotation

from dockerbank.errors import InvalidArgument

LOCAL = ("k8s-file", "json-file", "local")
REMOTE = ("syslog", "gelf")
DRIVERS = (*LOCAL, "none", *REMOTE)
DEFAULT = "k8s-file"

_ATTRS = ("tag", "labels", "labels-regex", "env", "env-regex")
_CACHE = ("cache-max-size", "cache-max-file", "cache-compress")
OPTIONS: dict[str, tuple[str, ...]] = {
    "k8s-file": ("max-size", "max-file", "compress", *_ATTRS),
    "json-file": ("max-size", "max-file", "compress", *_ATTRS),
    "local": ("max-size", "max-file", "compress"),
    "none": (),
    "syslog": ("syslog-address", "syslog-facility", "syslog-format", "syslog-tls-ca-cert", "syslog-tls-cert",
               "syslog-tls-key", "syslog-tls-skip-verify", "max-size", *_CACHE, *_ATTRS),
    "gelf": ("gelf-address", "gelf-compression-type", "gelf-compression-level", "gelf-tcp-max-reconnect",
             "gelf-tcp-reconnect-delay", "max-size", *_CACHE, *_ATTRS),
}

FACILITIES = {name: code for code, name in enumerate(
    ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"))}
FACILITIES.update({f"local{i}": 16 + i for i in range(8)})
SYSLOG_SCHEMES = ("unix", "unixgram", "udp", "tcp", "tcp+tls")
SYSLOG_FORMATS = ("", "rfc5424", "rfc5424micro", "rfc3164")
DEFAULT_SYSLOG_ADDRESS = "unixgram:///dev/log"
#: docker's defaults of the ``local`` driver and of a remote driver's local copy (dual logging)
LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5", "compress": "true"}


@dataclass(frozen=True)
class LogConfig:
    """A container's log driver and its options (docker's ``{"Type", "Config"}``)."""

    type: str = DEFAULT
    config: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"Type": self.type, "Config": dict(self.config)}

    @classmethod
    def from_dict(cls, data: dict | None) -> LogConfig:
        data = data or {}
        return cls(data.get("Type") or DEFAULT, dict(data.get("Config") or {}))

    @property
    def remote(self) -> bool:
        return self.type in REMOTE

    @property
    def readable(self) -> bool:
        """Whether ``logs`` can read it (every driver but ``none`` keeps the local copy)."""
        return self.type != "none"

    @property
    def max_size(self) -> int:
        return self.rotation.max_size

    @property
    def rotation(self) -> Rotation:
        """How the local copy is bounded, docker's defaults applied (``local``, dual logging)."""
        from dockerbank.container.logrotate import Rotation

        opts = dict(self.config)
        if self.remote:   # docker's cache-* names; max-size (the older form here) still counts
            opts = {k.removeprefix("cache-"): v for k, v in opts.items() if k.startswith("cache-")} | (
                {"max-size": opts["max-size"]} if "max-size" in opts and "cache-max-size" not in opts else {})
        given = set(opts)
        if self.type == "local" or self.remote:
            opts = LOCAL_DEFAULTS | opts
        size = parse_size(opts["max-size"]) if opts.get("max-size") else 0
        files = int(opts.get("max-file") or 1)
        # a default compress gives way to a single file (an explicit one is refused by parse)
        compress = opts.get("compress") == "true" and (files > 1 or "compress" in given)
        return Rotation(size, files, compress)


def parse_size(text: str) -> int:
    """docker's ``max-size``: a number with an optional k/m/g unit (1024-based)."""
    value = text.strip().lower().rstrip("b")
    scale = 1
    if value and value[-1] in "kmg":
        scale = 1024 ** ("kmg".index(value[-1]) + 1)
        value = value[:-1]
    try:
        size = int(float(value) * scale)
    except ValueError as exc:
        raise InvalidArgument(f"invalid max-size {text!r}: use a size such as 10m", exit_code=125) from exc
    if size <= 0:
        raise InvalidArgument(f"invalid max-size {text!r}: must be positive", exit_code=125)
    return size


def _address(driver: str, value: str, schemes: tuple[str, ...]) -> None:
    url = urlparse(value)
    if url.scheme not in schemes:
        raise InvalidArgument(f"invalid {driver}-address {value!r}: use {' | '.join(s + '://' for s in schemes)}",
                              exit_code=125)
    if url.scheme.startswith("unix"):
        if not url.path:
            raise InvalidArgument(f"invalid {driver}-address {value!r}: no socket path", exit_code=125)
        return
    try:
        port = url.port
    except ValueError:
        port = None
    if not url.hostname or (driver == "gelf" and not port):
        raise InvalidArgument(f"invalid {driver}-address {value!r}: use {url.scheme}://HOST:PORT", exit_code=125)


def parse(driver: str | None, options: list[str] | tuple[str, ...] | dict[str, str] = ()) -> LogConfig:
    """Validate a driver and its ``KEY=VALUE`` options; one-line ``InvalidArgument`` (exit 125)
    naming the unknown driver or option, before anything is created."""
    driver = driver or DEFAULT
    if driver not in DRIVERS:
        raise InvalidArgument(f"unknown log driver {driver!r}: use one of {', '.join(DRIVERS)}", exit_code=125)
    if isinstance(options, dict):
        pairs = dict(options)
    else:
        pairs = {}
        for item in options:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise InvalidArgument(f"invalid log opt {item!r}: use KEY=VALUE", exit_code=125)
            pairs[key] = value
    for key in pairs:
        if key not in OPTIONS[driver]:
            raise InvalidArgument(f"unknown log opt {key!r} for {driver} log driver", exit_code=125)
    config = LogConfig(driver, pairs)
    for prefix in ("", "cache-"):
        if prefix + "max-size" in pairs:
            parse_size(pairs[prefix + "max-size"])
        files = pairs.get(prefix + "max-file")
        if files is not None and not (files.isdigit() and int(files) >= 1):
            raise InvalidArgument(f"invalid {prefix}max-file {files!r}: a whole number of at least 1", exit_code=125)
        if pairs.get(prefix + "compress", "false") not in ("true", "false"):
            raise InvalidArgument(f"invalid {prefix}compress {pairs[prefix + 'compress']!r}: true or false",
                                  exit_code=125)
    rotation = config.rotation
    if rotation.compress and (rotation.max_files < 2 or not rotation.max_size):
        # docker's json-file refuses the same
        raise InvalidArgument("compress cannot be true when max-file is less than 2 or max-size is not set",
                              exit_code=125)
    if driver == "syslog":
        _address("syslog", pairs.get("syslog-address") or DEFAULT_SYSLOG_ADDRESS, SYSLOG_SCHEMES)
        if pairs.get("syslog-facility", "daemon") not in FACILITIES:
            raise InvalidArgument(f"invalid syslog-facility {pairs['syslog-facility']!r}", exit_code=125)
        if pairs.get("syslog-format", "") not in SYSLOG_FORMATS:
            raise InvalidArgument(f"invalid syslog-format {pairs['syslog-format']!r}: use one of "
                                  f"{', '.join(f for f in SYSLOG_FORMATS if f)}", exit_code=125)
        tls = [k for k in pairs if k.startswith("syslog-tls")]
        if tls and urlparse(pairs.get("syslog-address", "")).scheme != "tcp+tls":
            raise InvalidArgument(f"{tls[0]} needs a tcp+tls:// syslog-address", exit_code=125)
        if ("syslog-tls-cert" in pairs) != ("syslog-tls-key" in pairs):
            raise InvalidArgument("syslog-tls-cert and syslog-tls-key go together", exit_code=125)
        if pairs.get("syslog-tls-skip-verify", "false") not in ("true", "false"):
            raise InvalidArgument("syslog-tls-skip-verify is true or false", exit_code=125)
    if driver == "gelf":
        if "gelf-address" not in pairs:
            raise InvalidArgument("gelf needs --log-opt gelf-address=udp://HOST:PORT", exit_code=125)
        _address("gelf", pairs["gelf-address"], ("udp", "tcp"))
        if urlparse(pairs["gelf-address"]).scheme == "tcp":
            compressed = [k for k in pairs if k.startswith("gelf-compression")]
            if compressed:   # GELF over TCP is plain JSON ended by a null byte
                raise InvalidArgument(f"{compressed[0]} is for gelf over udp only", exit_code=125)
        elif any(k.startswith("gelf-tcp") for k in pairs):
            raise InvalidArgument("gelf-tcp-* options are for a tcp:// gelf-address", exit_code=125)
        if pairs.get("gelf-compression-type", "gzip") not in ("gzip", "zlib", "none"):
            raise InvalidArgument(f"invalid gelf-compression-type {pairs['gelf-compression-type']!r}: "
                                  "use gzip, zlib or none", exit_code=125)
        level = pairs.get("gelf-compression-level", "1")
        if not (level.lstrip("-").isdigit() and -1 <= int(level) <= 9):
            raise InvalidArgument(f"invalid gelf-compression-level {level!r}: -1 to 9", exit_code=125)
    return config


def with_default(driver: str | None, options: list[str] | tuple[str, ...] | dict[str, str],
                 default: LogConfig | None) -> tuple[str | None, list[str] | tuple[str, ...] | dict[str, str]]:
    """docker's rule for the daemon's default: a container that names no driver gets the default
    driver, and the default options too when it gives none of its own (pure)."""
    if default is None or driver:
        return driver, options
    return default.type, (options if options else dict(default.config))


def root_default(settings: dict, where: str = "config.json") -> LogConfig | None:
    """The default log driver of a root's settings (``dockerbank.settings``), validated; None
    when it names none. A bad one is one line naming the file and the driver or option."""
    if not settings.get("log-driver") and not settings.get("log-opts"):
        return None
    try:
        return parse(settings.get("log-driver") or DEFAULT, settings.get("log-opts") or {})
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}", exit_code=125) from None


def needs_keeper(config: LogConfig) -> bool:
    """Whether a log keeper process runs beside conmon (shipping, or rotated files to keep)."""
    return config.readable and (config.remote or config.rotation.keeps_history)


def conmon_log_args(config: LogConfig, log_path: str) -> list[str]:
    """conmon's log arguments: the local k8s-file (with its size limit) or no log at all."""
    if not config.readable:
        return ["-l", "none:"]
    args = ["-l", f"k8s-file:{log_path}"]
    if config.max_size:
        args += ["--log-size-max", str(config.max_size)]
    return args
