"""The few rtnetlink requests a bridge network needs, over the standard library's socket.

Why not pyroute2: importing it costs 140-550 ms here (``python -X importtime``, pyroute2 0.9.7;
the whole ``run --rm`` is ~170 ms), and a bridge network needs six message kinds: create a
bridge, create a veth pair with its peer in a namespace, delete a link, add an address, add a
route, look a link up. Each is one request and one acknowledgement on a NETLINK_ROUTE socket.

A socket belongs to the network namespace of the thread that opened it: :func:`in_netns` runs
work in a short-lived thread that joined the container's namespace (network namespace
membership is per thread, so the rest of the process stays in the host's).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_F_NODAD = 1, 2, 0x02
RTA_DST, RTA_GATEWAY, RTA_PRIORITY = 1, 5, 6
IFF_UP = 0x1
NLA_F_NESTED = 0x8000
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


class NetlinkError(OSError):
    """A request the kernel refused (``errno`` is the kernel's answer)."""


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def name_attr(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` as 6 bytes."""
    return bytes(int(part, 16) for part in mac.split(":"))


def random_mac() -> str:
    """A random locally administered unicast MAC (what the kernel gives a veth without one)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """rtattrs of a message body (the first of each kind; nested flag stripped)."""
    found: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found.setdefault(kind & ~NLA_F_NESTED, data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return found


class Netlink:
    """A NETLINK_ROUTE socket in the namespace of the thread that made it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request with an ACK wanted; returns the (type, body) replies before the ACK,
        raises NetlinkError with the kernel's errno."""
        self.seq += 1
        header = struct.pack("=LHHLL", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0)
        self.sock.send(header + body)
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _flags, seq, _pid = struct.unpack_from("=LHHLL", data, offset)
                payload = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return replies
                if mtype == NLMSG_DONE:
                    return replies
                replies.append((mtype, payload))

    # -- links -------------------------------------------------------------------------
    def link(self, name: str) -> tuple[int, dict[int, bytes]] | None:
        """(index, attributes) of a link by name, None when there is none."""
        try:
            replies = self.request(RTM_GETLINK, 0, ifinfomsg() + name_attr(name))
        except NetlinkError as exc:
            if exc.errno == _errno.ENODEV:
                return None
            raise
        for mtype, payload in replies:
            if mtype == RTM_NEWLINK:
                index = struct.unpack_from("=i", payload, 4)[0]
                return index, parse_attrs(payload[16:])
        return None

    def link_kind(self, attrs: dict[int, bytes]) -> str:
        info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
        return info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()

    def create_bridge(self, name: str) -> None:
        """A new bridge (down); EEXIST when one of that name exists."""
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg() + name_attr(name) + linkinfo)

    def create_veth(self, host_name: str, master: int, peer_name: str, peer_netns_fd: int, peer_mac: str) -> None:
        """A veth pair: ``host_name`` up and enslaved to ``master`` here, ``peer_name`` (with
        ``peer_mac``) created directly in the namespace of ``peer_netns_fd``."""
        peer = (ifinfomsg() + name_attr(peer_name) + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
                + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                          nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)))
        body = ifinfomsg(flags=IFF_UP, change=IFF_UP) + name_attr(host_name) \
            + attr(IFLA_MASTER, struct.pack("=I", master)) + linkinfo
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, ifinfomsg(index, IFF_UP, IFF_UP))

    def delete(self, name: str) -> bool:
        """Delete a link by name; False when there was none."""
        try:
            self.request(RTM_DELLINK, 0, ifinfomsg() + name_attr(name))
        except NetlinkError as exc:
            if exc.errno == _errno.ENODEV:
                return False
            raise
        return True

    # -- addresses and routes -------------------------------------------------------------
    def add_address(self, index: int, address: str, prefix: int) -> None:
        """Add ``address/prefix`` (IPv6 without duplicate address detection, as netavark)."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        packed = socket.inet_pton(family, address)
        flags = IFA_F_NODAD if family == socket.AF_INET6 else 0
        body = struct.pack("=BBBBI", family, prefix, flags, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, gateway: str, metric: int = 100) -> None:
        """The default route (0.0.0.0/0 or ::/0) via ``gateway`` in the main table."""
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        body = struct.pack("=BBBBBBBBI", family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0)
        body += attr(RTA_GATEWAY, socket.inet_pton(family, gateway)) + attr(RTA_PRIORITY, struct.pack("=I", metric))
        # no NLM_F_EXCL, as netavark: a second network's default route joins the first one's
        self.request(RTM_NEWROUTE, NLM_F_CREATE, body)


def in_netns(path: Path, work: Callable[[Netlink], Any]) -> Any:
    """Run ``work(netlink)`` in a thread that joined the network namespace pinned at ``path``,
    with a netlink socket opened there; its result is returned, its exception raised here."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise NetlinkError(code, f"setns {path}: {os.strerror(code)}")
            finally:
                os.close(fd)
            with Netlink() as nl:
                result.append(work(nl))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="netns-config")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def write_sysctl(path: str, value: str) -> None:
    """Write a /proc/sys file unless it already holds ``value`` (a read is cheaper than a write
    that may take a lock in the kernel)."""
    try:
        with open(path) as handle:
            if handle.read().strip() == value:
                return
    except OSError:
        pass
    with open(path, "w") as handle:
        handle.write(value)
