"""Shipping a container's log to syslog (RFC 5424) or GELF 1.1 (Graylog) from its local copy,
and keeping its rotated files.

One small detached process (the log keeper) per running container with a remote log driver, or
with rotated files to keep (``max-file`` > 1, container.logrotate), runs beside conmon
(``python -m dockerbank.container.logship <spec.json>``): it follows the k8s-file log conmon
writes, sends each line, keeps the rotated files, and ends when the container's conmon ends
(after the last lines). It never sits between the container and its output: conmon writes the
file whatever happens here, so an unreachable endpoint only loses remote copies; those are
counted in ``<bundle>/logship.json`` (``sent``/``lost``), which the metrics report (over UDP a
loss is seen only when the host answers "port unreachable", so there it is a lower bound).

The formatters are pure; :class:`Sender` objects hold the sockets.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

STATS_FILE = "logship.json"
GELF_CHUNK_SIZE = 1420          # docker's default for a WAN-safe datagram
GELF_MAX_CHUNKS = 128
GELF_MAGIC = b"\x1e\x0f"
SEVERITY = {"stdout": 6, "stderr": 3}   # info, err (docker's syslog driver)
MAX_LINE = 1 << 20                      # a longer line without newline is sent in pieces


@dataclass
class Source:
    """What a shipped message says about its container."""

    id: str
    name: str
    image: str
    image_id: str
    command: str = ""
    created: str = ""
    labels: dict | None = None

    def tag(self, template: str | None) -> str:
        """docker's ``tag`` log option (a Go template over ID, FullID, Name, ImageName, ImageID...)."""
        from dockerbank.gotemplate import render

        data = {"ID": self.id[:12], "FullID": self.id, "Name": self.name, "ImageName": self.image,
                "ImageID": self.image_id.split(":")[-1][:12], "ImageFullID": self.image_id,
                "DaemonName": "dockerbank"}
        return render(template, data) if template else data["ID"]


# ---------------------------------------------------------------- pure formatting

def rfc5424(message: bytes, stream: str, when: float, *, hostname: str, tag: str, facility: int,
            micro: bool = False) -> bytes:
    """One RFC 5424 message as docker's syslog driver sends it (``tag`` as APP-NAME and MSGID)."""
    pri = facility * 8 + SEVERITY.get(stream, 6)
    stamp = datetime.fromtimestamp(when, UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{stamp.microsecond:06d}" if micro else "") + "Z"
    header = f"<{pri}>1 {text} {hostname or '-'} {tag or '-'} {os.getpid()} {tag or '-'} - "
    return header.encode() + message.rstrip(b"\n")


def rfc3164(message: bytes, stream: str, when: float, *, hostname: str, tag: str, facility: int) -> bytes:
    """The old BSD format (``syslog-format=rfc3164``)."""
    pri = facility * 8 + SEVERITY.get(stream, 6)
    stamp = datetime.fromtimestamp(when, UTC).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
    return f"<{pri}>{stamp} {hostname} {tag}[{os.getpid()}]: ".encode() + message.rstrip(b"\n")


def gelf_message(message: bytes, stream: str, when: float, *, hostname: str, source: Source,
                 tag: str, labels: dict[str, str]) -> dict:
    """A GELF 1.1 message with docker's extra fields (``_container_name``, ``_image_name``, labels)."""
    data = {"version": "1.1", "host": hostname, "short_message": message.rstrip(b"\n").decode(errors="replace"),
            "timestamp": round(when, 6), "level": SEVERITY.get(stream, 6),
            "_container_id": source.id, "_container_name": source.name, "_image_id": source.image_id,
            "_image_name": source.image, "_command": source.command, "_tag": tag, "_created": source.created}
    for key, value in labels.items():
        name = "_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
        if name not in ("_id",):   # _id is reserved by the specification
            data.setdefault(name, value)
    return data


def gelf_payload(data: dict, compression: str = "gzip", level: int = 1) -> bytes:
    """The datagram payload: JSON, compressed with gzip (docker's default), zlib or not at all."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    if compression == "gzip":
        import gzip

        return gzip.compress(raw, compresslevel=9 if level < 0 else max(level, 1), mtime=0)
    if compression == "zlib":
        return zlib.compress(raw, level)
    return raw


def gelf_chunks(payload: bytes, message_id: bytes, size: int = GELF_CHUNK_SIZE) -> list[bytes]:
    """Split a payload into GELF chunks (``0x1e 0x0f``, 8-byte id, sequence, count) when it is too
    big for one datagram; a message needing more than 128 chunks cannot be sent (``[]``)."""
    if len(payload) <= size:
        return [payload]
    body = size - 12
    parts = [payload[i:i + body] for i in range(0, len(payload), body)]
    if len(parts) > GELF_MAX_CHUNKS:
        return []
    return [GELF_MAGIC + message_id + struct.pack("BB", n, len(parts)) + part for n, part in enumerate(parts)]


def frame(message: bytes, framing: str) -> bytes:
    """A message as a stream carries it (see :class:`Sender`)."""
    if framing == "octet":
        return b"%d " % len(message) + message
    if framing == "null":
        return message + b"\0"
    return message + b"\n"


def tls_context(opts: dict[str, str]):
    """The client context of ``syslog-tls-*`` (CA, client certificate and key, skip-verify)."""
    import ssl

    ctx = ssl.create_default_context(cafile=opts.get("syslog-tls-ca-cert") or None)
    if opts.get("syslog-tls-cert"):
        ctx.load_cert_chain(opts["syslog-tls-cert"], opts["syslog-tls-key"])
    if opts.get("syslog-tls-skip-verify") == "true":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- sending

class Sender:
    """One endpoint; ``send`` returns False when the message was lost (never raises, never blocks long).

    Stream endpoints frame each message: ``newline`` (syslog over TCP), ``octet`` (RFC 5425's
    ``LENGTH SP MESSAGE``, syslog over TLS) or ``null`` (GELF over TCP)."""

    def __init__(self, address: str, timeout: float = 2.0, framing: str = "newline", tls=None):
        url = urlparse(address)
        self.scheme = url.scheme
        self.framing = framing
        self.tls = tls                 # an ssl.SSLContext for tcp+tls://
        self.server_name = url.hostname
        self.target: str | tuple[str, int] = url.path if url.scheme.startswith("unix") else (url.hostname or "",
                                                                                              url.port or 514)
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.scheme == "unixgram":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        elif self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        elif self.scheme == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.create_connection(self.target, timeout=self.timeout)  # type: ignore[arg-type]
            sock.settimeout(self.timeout)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
            return sock
        sock.settimeout(self.timeout)
        sock.connect(self.target)
        return sock

    def send(self, datagrams: list[bytes]) -> bool:
        if not datagrams:
            return False
        for attempt in (1, 2):   # a stream endpoint that restarted: reconnect once
            try:
                if self.sock is None:
                    self.sock = self._connect()
                for data in datagrams:
                    if self.scheme in ("tcp", "tcp+tls", "unix"):
                        self.sock.sendall(frame(data, self.framing))
                    else:
                        self.sock.send(data)
                return True
            except ConnectionRefusedError:
                if self.scheme == "udp":
                    # the host said "port unreachable" for an earlier datagram; this one goes the
                    # same way: lost (UDP losses are only seen when the host answers so)
                    return False
                self.close()
            except OSError:
                self.close()
        return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------- the shipping process

def _alive(pid: int, start: int) -> bool:
    from dockerbank.runtime.conmon import alive

    return alive(pid, start)


def run(spec: dict) -> None:
    """Ship until the container's conmon ends: ``spec`` as written by :func:`spawn`."""
    from dockerbank.container.logconfig import FACILITIES, LogConfig
    from dockerbank.container.logs import LogEntry

    from dockerbank.container.logrotate import Keeper, keep
    from dockerbank.container.logs import follow

    config = LogConfig.from_dict(spec["log_config"])
    rotation = config.rotation
    keeper = Keeper(Path(spec["log_path"]), rotation) if rotation.keeps_history else None
    running = lambda: _alive(spec["conmon_pid"], spec["conmon_start"])  # noqa: E731
    if not config.remote:
        if spec.get("fd") is not None:
            os.close(spec["fd"])
        if keeper is not None:
            keep(keeper, running)
        return
    opts = config.config
    source = Source(**spec["source"])
    tag = source.tag(opts.get("tag"))
    hostname = socket.gethostname()
    labels = {k: v for k, v in (source.labels or {}).items()
              if k in [x for x in opts.get("labels", "").split(",") if x]}
    gelf_tcp = False
    if config.type == "syslog":
        address = opts.get("syslog-address") or "unixgram:///dev/log"
        fmt = opts.get("syslog-format", "")
        secure = address.startswith("tcp+tls://")
        # RFC 5425: octet counting over TLS (docker does the same for rfc5424 over tcp+tls)
        sender = Sender(address, framing="octet" if secure and fmt != "rfc3164" else "newline",
                        tls=tls_context(opts) if secure else None)
        facility = FACILITIES[opts.get("syslog-facility", "daemon")]
    else:
        gelf_tcp = opts["gelf-address"].startswith("tcp://")
        sender = Sender(opts["gelf-address"], framing="null")
        compression = opts.get("gelf-compression-type", "gzip")
        level = int(opts.get("gelf-compression-level", "1"))
    stats_path = Path(spec["bundle"]) / STATS_FILE
    counts = {"sent": 0, "lost": 0}
    written = 0.0

    def save() -> None:
        tmp = stats_path.with_name(STATS_FILE + ".tmp")
        tmp.write_text(json.dumps({"driver": config.type, **counts}))
        os.replace(tmp, stats_path)

    partial: dict[str, bytes] = {}
    handle = os.fdopen(spec["fd"], "rb") if spec.get("fd") is not None else None
    for entry in follow(Path(spec["log_path"]), spec["offset"], running, interval=0.05, handle=handle,
                        tick=keeper.step if keeper is not None else None):
        # conmon splits long lines into partial entries: one message per line, as docker sends
        data = partial.pop(entry.stream, b"") + entry.data
        if not data.endswith(b"\n") and len(data) < MAX_LINE:
            partial[entry.stream] = data
            continue
        entry = LogEntry(entry.time, entry.stream, data)
        when = entry.epoch
        if config.type == "syslog":
            if fmt == "rfc3164":
                datagrams = [rfc3164(entry.data, entry.stream, when, hostname=hostname, tag=tag, facility=facility)]
            else:
                datagrams = [rfc5424(entry.data, entry.stream, when, hostname=hostname, tag=tag, facility=facility,
                                     micro=fmt == "rfc5424micro")]
        else:
            message = gelf_message(entry.data, entry.stream, when, hostname=hostname, source=source, tag=tag,
                                   labels=labels)
            if gelf_tcp:   # one uncompressed JSON document per message, ended by a null byte
                datagrams = [gelf_payload(message, "none")]
            else:
                datagrams = gelf_chunks(gelf_payload(message, compression, level), os.urandom(8))
        counts["sent" if sender.send(datagrams) else "lost"] += 1
        if time.monotonic() - written > 1.0:
            save()
            written = time.monotonic()
    sender.close()
    save()
    if keeper is not None:
        keeper.step()
        keeper.close()


def spawn(bundle: Path, log_path: Path, log_config: dict, source: Source, conmon_pid: int, conmon_start: int,
          offset: int) -> None:
    """Start the log keeper process for a container that just started, detached from the caller
    (its own session, no terminal, nothing inherited), so it outlives a CLI like conmon does."""
    import subprocess
    from dataclasses import asdict

    # the log is opened here, now: lines written while the shipper's interpreter starts stay
    # readable even if conmon starts a new file meanwhile
    try:
        log_fd: int | None = os.open(log_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        log_fd = None
    spec_path = Path(bundle) / "logship-spec.json"
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"bundle": str(bundle), "log_path": str(log_path), "log_config": log_config,
                   "source": asdict(source), "conmon_pid": conmon_pid, "conmon_start": conmon_start,
                   "offset": offset, "fd": log_fd}, out)
    try:
        # setsid --fork: the shipper is the child of a process that exits at once, so it belongs to
        # init and never lingers as a zombie of a long-lived caller (the API service)
        subprocess.run(["setsid", "--fork", sys.executable, "-m", "dockerbank.container.logship", str(spec_path)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       pass_fds=[log_fd] if log_fd is not None else [], cwd="/", check=False)
    finally:
        if log_fd is not None:
            os.close(log_fd)


def read_stats(bundle: Path) -> dict | None:
    """The shipper's counters of a container (``None`` when it has none)."""
    try:
        return json.loads((Path(bundle) / STATS_FILE).read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
