"""aardvark-dns's per-network files and its process, as netavark 1.4 keeps them.

Format (netavark 1.4, ``src/dns/aardvark.rs``): one file per network, named after the network,
in ``<config>/aardvark-dns/``. Its first line is the network's gateways joined by ``,`` (the
addresses aardvark-dns listens on; `` <servers>`` after them when the network has its own DNS
servers); then one line per container::

    <container id> <ipv4s joined by ,> <ipv6s joined by ,> <names joined by ,>[ <dns servers>]

A container's line goes when it is torn down; a file left with its first line only is deleted.
aardvark-dns re-reads the directory on SIGHUP (its pid in ``aardvark.pid``) and exits when no
file is left. Writes happen under ``<config>/aardvark.lock`` (flock), the lock netavark takes, so
both drivers may write the same directory.

The text functions are pure; :class:`AardvarkFiles` does the file and process work.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import RuntimeFailure
from dockerbank.host.fs import flocked


@dataclass(frozen=True)
class Entry:
    """One container on one DNS-enabled network."""

    network: str                 # the file name (netavark: the network's name; ours get the id)
    gateways: tuple[str, ...]
    container_id: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    names: tuple[str, ...]       # the container's name, then its aliases
    dns_servers: tuple[str, ...] = ()


def header_line(gateways: Iterable[str], network_dns: Iterable[str] = ()) -> str:
    """The first line of a network's file."""
    servers = ",".join(network_dns)
    return ",".join(gateways) + (f" {servers}" if servers else "") + "\n"


def entry_line(entry: Entry) -> str:
    """A container's line."""
    servers = ",".join(entry.dns_servers)
    return (f"{entry.container_id} {','.join(entry.ipv4)} {','.join(entry.ipv6)} {','.join(entry.names)}"
            + (f" {servers}" if servers else "") + "\n")


def without_container(text: str, container_id: str) -> str | None:
    """A file's text without the container's lines; None when only the header would be left
    (netavark's rule: the file is deleted)."""
    kept = [line for line in text.split("\n") if line and container_id not in line]
    if len(kept) <= 1:
        return None
    return "\n".join(kept) + "\n"


class AardvarkFiles:
    """The ``aardvark-dns`` directory of one root (``<config>/aardvark-dns``) and its server."""

    def __init__(self, config_dir: Path, binary: str, port: int = 53):
        self.config_dir = config_dir
        self.dir = config_dir / "aardvark-dns"
        self.binary = binary
        self.port = port

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with flocked(self.config_dir / "aardvark.lock"):
            yield

    def add(self, entries: Iterable[Entry]) -> None:
        """Append the containers' lines (creating each network's file with its header), then
        SIGHUP the server or start it; all under the lock, so two set-ups never start two servers."""
        entries = list(entries)
        if not entries:
            return
        with self.locked():
            for entry in entries:
                path = self.dir / entry.network
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    os.write(fd, header_line(entry.gateways).encode())
                except FileExistsError:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, entry_line(entry).encode())
                finally:
                    os.close(fd)
            self._notify(start=True, gateways={gw for entry in entries for gw in entry.gateways})

    def remove(self, container_id: str, networks: Iterable[str]) -> None:
        """Drop the container's lines from these networks' files and tell the server (if it runs)."""
        networks = list(networks)
        if not networks:
            return
        with self.locked():
            changed = False
            kept: set[str] = set()
            for network in networks:
                path = self.dir / network
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    continue
                rest = without_container(text, container_id)
                if rest is None:
                    path.unlink(missing_ok=True)
                else:
                    if rest != text:
                        path.write_text(rest)
                    kept.update(text.split("\n", 1)[0].split(" ")[0].split(","))
                changed = True
            if changed:
                self._notify(start=False, gateways=kept)

    def _pid(self) -> int | None:
        """The running server's pid; None when the file is missing or names another process
        (a pid reused after a reboot or a crash must not get our SIGHUP)."""
        try:
            pid = int((self.dir / "aardvark.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"aardvark-dns" in cmdline else None

    def _notify(self, start: bool, gateways: set[str]) -> None:
        """SIGHUP the server (or start it), then wait until it serves again: aardvark-dns 1.4
        answers a SIGHUP by closing every socket and binding anew, and a second SIGHUP that
        arrives in that gap is lost (a container's name never loaded); a container that resolves
        a name at once would also meet the gap. So the next change (this lock) and the container's
        start come after the new sockets on ``gateways`` exist (at most RELOAD_WAIT; never an error)."""
        pid = self._pid()
        if pid is not None and pid > 0:
            before = dns_sockets(gateways, self.port)
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            else:
                if not gateways:
                    return  # no file left: it exits
                if self._await_reload(pid, gateways, before):
                    return
                # it was exiting (a teardown had just removed its last file): a new one below
        if start:
            before = dns_sockets(gateways, self.port)
            self._start()
            # its "ready" comes before it binds and installs its SIGHUP handler (a SIGHUP before
            # that would end it): wait for its sockets too
            pid = self._pid()
            if pid is not None and gateways:
                self._await_reload(pid, gateways, before)

    def _await_reload(self, pid: int, gateways: set[str], before: dict[str, set[int]]) -> bool:
        """True once new sockets serve ``gateways`` (or after RELOAD_WAIT), False when the
        process ended instead."""
        deadline = time.monotonic() + RELOAD_WAIT
        while time.monotonic() < deadline:
            now = dns_sockets(gateways, self.port)
            if all(now.get(gw, set()) - before.get(gw, set()) for gw in gateways):
                return True
            if not _alive(pid):
                return False
            time.sleep(0.002)
        return True

    def _start(self) -> None:
        # netavark runs it under ``systemd-run --scope`` only where systemd is the init (sd_booted)
        argv = [self.binary, "--config", str(self.dir), "-p", str(self.port), "run"]
        if Path("/run/systemd/system").exists() and _which("systemd-run"):
            argv = ["systemd-run", "-q", "--scope", *argv]
        import tempfile

        # stderr to a file, not a pipe: the daemon inherits it and would hold a pipe open
        with tempfile.TemporaryFile() as errors:
            try:
                # the parent returns once the daemon it forks serves (aardvark-dns PR 148)
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                      timeout=30, check=False,
                                      env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RuntimeFailure(f"cannot start aardvark-dns: {exc}") from exc
            if done.returncode != 0:
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                raise RuntimeFailure(f"cannot start aardvark-dns: {lines[-1] if lines else done.returncode}")


RELOAD_WAIT = 2.0


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _proc_address(ip: str, port: int) -> str:
    """An address as /proc/net/udp{,6} prints it (32-bit words in host order, here little-endian)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    packed = socket.inet_pton(family, ip)
    words = "".join(f"{struct.unpack('<I', packed[i:i + 4])[0]:08X}" for i in range(0, len(packed), 4))
    return f"{words}:{port:04X}"


def dns_sockets(addresses: set[str], port: int = 53) -> dict[str, set[int]]:
    """Inodes of the UDP sockets bound to each address and port (the host's namespace)."""
    wanted = {_proc_address(ip, port): ip for ip in addresses if ip}
    found: dict[str, set[int]] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if len(fields) > 9 and fields[1] in wanted:
                        found.setdefault(wanted[fields[1]], set()).add(int(fields[9]))
        except OSError:
            continue
    return found


def _which(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None
