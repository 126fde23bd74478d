"""Pure parsing of ``-p``/``-P`` and the rules of port allocation.

``-p [ip:][hostPort:]containerPort[/proto]`` with ranges (``8000-8002:80-82``), Docker's
semantics: a missing host port is chosen from the ephemeral range, a host range with one
container port means "any one free port of this range".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dockerbank.errors import Conflict, InvalidArgument
from dockerbank.network.model import PortMapping

PROTOCOLS = ("tcp", "udp", "sctp")
EPHEMERAL_RANGE = (32768, 60999)  # Linux's default ip_local_port_range, which Docker also uses


@dataclass(frozen=True)
class PortRequest:
    """One container port to publish; host_ports empty = any free port, several = any one of them."""

    host_ip: str
    host_ports: tuple[int, ...]
    container_port: int
    protocol: str = "tcp"


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidArgument(f"invalid port {text!r} in {spec!r}: ports are numbers 1-65535")
    return int(text)


def _range(text: str, spec: str) -> list[int]:
    start, sep, end = text.partition("-")
    if not sep:
        return [_port(text, spec)]
    first, last = _port(start, spec), _port(end, spec)
    if last < first:
        raise InvalidArgument(f"invalid range {text!r} in {spec!r}: end is below start")
    return list(range(first, last + 1))


def parse_publish(spec: str) -> list[PortRequest]:
    """Parse one ``-p`` value into one request per container port."""
    body, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {proto!r} in {spec!r} (tcp, udp or sctp)")
    host_ip = ""
    if body.startswith("["):  # [v6addr]:host:container
        end = body.find("]")
        if end < 0:
            raise InvalidArgument(f"invalid IP address in {spec!r}")
        host_ip, body = body[1:end], body[end + 1:].lstrip(":")
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise InvalidArgument(f"invalid publish spec {spec!r}: too many colons")
    if host_ip:
        try:
            import ipaddress  # only for -p with a host IP: every other run skips the module

            ipaddress.ip_address(host_ip)
        except ValueError as exc:
            raise InvalidArgument(f"invalid IP address {host_ip!r} in {spec!r}") from exc
        if host_ip == "0.0.0.0":
            host_ip = ""
    if len(parts) == 1:
        host_text, container_text = "", parts[0]
    else:
        host_text, container_text = parts
    if not container_text:
        raise InvalidArgument(f"no port specified: {spec!r}")
    container_ports = _range(container_text, spec)
    if not host_text:
        return [PortRequest(host_ip, (), port, proto) for port in container_ports]
    host_ports = _range(host_text, spec)
    if len(container_ports) == 1 and len(host_ports) > 1:
        return [PortRequest(host_ip, tuple(host_ports), container_ports[0], proto)]
    if len(host_ports) != len(container_ports):
        raise InvalidArgument(f"invalid ranges specified for container and host ports: {spec!r}")
    return [PortRequest(host_ip, (h,), c, proto) for h, c in zip(host_ports, container_ports)]


def parse_exposed(exposed: Iterable[str]) -> list[PortRequest]:
    """``-P``: every ExposedPorts key of the image ("80/tcp", "53/udp", "8000-8002/tcp") on a free port."""
    requests: list[PortRequest] = []
    for key in exposed:
        port_text, _, proto = key.partition("/")
        proto = proto or "tcp"
        for port in _range(port_text, key):
            requests.append(PortRequest("", (), port, proto))
    return requests


def overlaps(a: PortMapping, b: PortMapping) -> bool:
    """Two mappings clash when protocol and host port match and one address covers the other."""
    if a.protocol != b.protocol or a.host_port != b.host_port:
        return False
    return not a.host_ip or not b.host_ip or a.host_ip == b.host_ip


def bind_error(mapping: PortMapping) -> Conflict:
    """Docker's wording for a host port that cannot be had."""
    return Conflict(f"Bind for {mapping.host_ip or '0.0.0.0'}:{mapping.host_port} failed: port is already allocated")


def assign_ports(requests: Iterable[PortRequest], taken: Iterable[PortMapping],
                 is_free: Callable[[str, int, str], bool],
                 ephemeral: tuple[int, int] = EPHEMERAL_RANGE) -> list[PortMapping]:
    """Turn requests into concrete mappings.

    ``taken`` are the mappings other containers of this store hold (DNAT rules bind no socket,
    so the kernel alone cannot tell); ``is_free(ip, port, proto)`` probes the host for any
    other program holding the port. A fixed port that is not free raises Docker's
    "port is already allocated"; an open choice takes the first free one.
    """
    chosen: list[PortMapping] = list(taken)
    result: list[PortMapping] = []

    def usable(candidate: PortMapping) -> bool:
        return not any(overlaps(candidate, other) for other in chosen) and is_free(
            candidate.host_ip, candidate.host_port, candidate.protocol)

    for req in requests:
        if len(req.host_ports) == 1:
            mapping = PortMapping(req.host_ip, req.host_ports[0], req.container_port, req.protocol)
            if not usable(mapping):
                raise bind_error(mapping)
        else:
            candidates = req.host_ports or range(ephemeral[0], ephemeral[1] + 1)
            found = next((m for m in (PortMapping(req.host_ip, p, req.container_port, req.protocol)
                                      for p in candidates) if usable(m)), None)
            if found is None:
                first = req.host_ports[0] if req.host_ports else ephemeral[0]
                raise bind_error(PortMapping(req.host_ip, first, req.container_port, req.protocol))
            mapping = found
        chosen.append(mapping)
        result.append(mapping)
    return result


def format_port_line(mapping: PortMapping) -> str:
    """One line of ``docker port``: ``80/tcp -> 0.0.0.0:8080``."""
    host_ip = mapping.host_ip or "0.0.0.0"
    if ":" in host_ip:
        host_ip = f"[{host_ip}]"
    return f"{mapping.container_port}/{mapping.protocol} -> {host_ip}:{mapping.host_port}"


def format_ps_ports(mappings: Iterable[PortMapping]) -> str:
    """The PORTS column of ``docker ps``: ``0.0.0.0:8080->80/tcp, ...``."""
    return ", ".join(f"{m.host_ip or '0.0.0.0'}:{m.host_port}->{m.container_port}/{m.protocol}" for m in mappings)
