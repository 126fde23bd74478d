"""Cost of giving one container a network: netavark vs an in-process prototype (pyroute2 + nft).

Rows, median of N, steady state (the network's bridge already up because one other endpoint
is attached), one published port each:

- netavark setup / teardown alone (the subprocess Dockerbank runs),
- Dockerbank's whole attach / detach (pin netns, isolation check, SQLite, netavark),
- a prototype of the in-process road Docker's libnetwork takes: netlink via pyroute2 (veth pair,
  addresses, routes) and ONE ``nft -f`` transaction for masquerade + DNAT, no DNS server.

    /opt/dockerbank-venv/bin/python bench/network_setup_cost.py [--runs 20]

The prototype lives here only, to measure the alternative; it is not product code.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


class InProcessBridge:
    """Bridge + veth + addresses over netlink, nat/forward rules in one nft table."""

    TABLE = "dockerbank_proto"

    def __init__(self, bridge: str, subnet: str, gateway: str):
        from pyroute2 import IPRoute

        self.ipr = IPRoute()
        self.bridge, self.subnet, self.gateway = bridge, subnet, gateway
        self.prefix = int(subnet.split("/")[1])
        if not self.ipr.link_lookup(ifname=bridge):
            self.ipr.link("add", ifname=bridge, kind="bridge")
            index = self.ipr.link_lookup(ifname=bridge)[0]
            self.ipr.addr("add", index=index, address=gateway, prefixlen=self.prefix)
            self.ipr.link("set", index=index, state="up")
        self.bridge_index = self.ipr.link_lookup(ifname=bridge)[0]
        self._nft(f"""table ip {self.TABLE} {{
  chain postrouting {{ type nat hook postrouting priority 100; ip saddr {subnet} ip daddr != {subnet} masquerade; }}
  chain prerouting {{ type nat hook prerouting priority -100; }}
  chain output {{ type nat hook output priority -100; }}
}}""")

    def _nft(self, script: str) -> str:
        done = subprocess.run(["nft", "-e", "-a", "-f", "-"], input=script, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

    def _in_namespace(self, path: Path, work) -> None:
        """Run ``work(ipr)`` in a thread that joined the namespace, with a netlink socket made
        (and used) there: pyroute2 opens its socket lazily, so both must happen in that thread."""
        from pyroute2 import IPRoute

        libc = ctypes.CDLL(None, use_errno=True)
        errors: list[BaseException] = []

        def run() -> None:
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                with IPRoute() as ipr:
                    work(ipr)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
            finally:
                os.close(fd)

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        if errors:
            raise errors[0]

    def setup(self, path: Path, host_veth: str, ip: str, host_port: int, container_port: int) -> list[str]:
        # the peer gets a name no host interface has, and is renamed eth0 only inside the namespace
        peer = "p" + host_veth[-14:]
        fd = os.open(path, os.O_RDONLY)
        try:
            self.ipr.link("add", ifname=host_veth, kind="veth", peer={"ifname": peer, "net_ns_fd": fd})
        finally:
            os.close(fd)
        index = self.ipr.link_lookup(ifname=host_veth)[0]
        self.ipr.link("set", index=index, master=self.bridge_index, state="up")

        def configure(ns) -> None:
            found = ns.link_lookup(ifname=peer)
            if not found:
                raise RuntimeError(f"{peer} is not in {path}: refusing to touch any other namespace")
            eth0 = found[0]
            ns.link("set", index=eth0, ifname="eth0")
            ns.addr("add", index=eth0, address=ip, prefixlen=self.prefix)
            ns.link("set", index=eth0, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=self.gateway)

        self._in_namespace(path, configure)
        out = self._nft(
            f"add rule ip {self.TABLE} prerouting ip daddr 127.0.0.1 tcp dport {host_port} dnat to {ip}:{container_port}\n"
            f"add rule ip {self.TABLE} output ip daddr 127.0.0.1 tcp dport {host_port} dnat to {ip}:{container_port}\n")
        return [line.rsplit("# handle ", 1)[1].strip() for line in out.splitlines() if "# handle" in line]

    def teardown(self, host_veth: str, handles: list[str]) -> None:
        self.ipr.link("del", index=self.ipr.link_lookup(ifname=host_veth)[0])
        chains = ("prerouting", "output")
        self._nft("".join(f"delete rule ip {self.TABLE} {c} handle {h}\n" for c, h in zip(chains, handles)))

    def close(self) -> None:
        subprocess.run(["nft", "delete", "table", "ip", self.TABLE], capture_output=True, check=False)
        for link in self.ipr.get_links():
            if link.get_attr("IFLA_IFNAME", "").startswith("vproto"):
                self.ipr.link("del", index=link["index"])
        if self.ipr.link_lookup(ifname=self.bridge):
            self.ipr.link("del", index=self.ipr.link_lookup(ifname=self.bridge)[0])
        self.ipr.close()


def measure_inprocess(work: Path, runs: int) -> tuple[list[float], list[float]]:
    from dockerbank.network import netns

    proto = InProcessBridge("dbkproto0", "10.254.77.0/24", "10.254.77.1")
    setups, teardowns = [], []
    keeper = work / "proto-keep"
    try:
        netns.create(keeper)
        keep_handles = proto.setup(keeper, "vproto-keep", "10.254.77.2", 39001, 80)
        for i in range(runs):
            path = work / f"proto-{i}"
            start = time.perf_counter()
            netns.create(path)
            handles = proto.setup(path, f"vproto{i}", "10.254.77.3", 39002, 80)
            setups.append(time.perf_counter() - start)
            start = time.perf_counter()
            proto.teardown(f"vproto{i}", handles)
            netns.remove(path)
            teardowns.append(time.perf_counter() - start)
        proto.teardown("vproto-keep", keep_handles)
    finally:
        for leftover in work.glob("proto-*"):
            netns.remove(leftover)
        proto.close()
    return setups, teardowns


def measure_dockerbank(work: Path, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.network.netavark import build_options
    from dockerbank.network.ports import parse_publish
    from dockerbank.network.service import AttachRequest

    engine = Engine(Config(work / "root", work / "run"))
    service = engine.networks
    service.create("bench")
    keeper = secrets.token_hex(32)
    service.attach(AttachRequest(keeper, "keeper", ["bench"]))
    whole_up, whole_down, raw_up, raw_down = [], [], [], []
    try:
        for i in range(runs):
            cid = secrets.token_hex(32)
            start = time.perf_counter()
            service.attach(AttachRequest(cid, f"c{i}", ["bench"], parse_publish("127.0.0.1:39003:80")))
            whole_up.append(time.perf_counter() - start)
            # the same container's teardown + setup by netavark alone
            pairs = service._attached(cid)
            options = build_options(cid, f"c{i}", None, pairs, [p for _, ep in pairs for p in ep.ports])
            path = service.netns_path(cid)
            start = time.perf_counter()
            service.driver.teardown(path, options)
            raw_down.append(time.perf_counter() - start)
            start = time.perf_counter()
            service.driver.setup(path, options)
            raw_up.append(time.perf_counter() - start)
            start = time.perf_counter()
            service.detach(cid)
            whole_down.append(time.perf_counter() - start)
    finally:
        service.detach(keeper)
        engine.close()
    return {"netavark alone": (raw_up, raw_down), "Dockerbank attach/detach (netavark)": (whole_up, whole_down)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    rows: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dockerbank-netcost-") as tmp:
        work = Path(tmp)
        rows.update(measure_dockerbank(work, args.runs))
        try:
            rows["in-process prototype (pyroute2 + 1 nft transaction, no DNS)"] = measure_inprocess(work, args.runs)
        except ImportError:
            rows["in-process prototype: pyroute2 not installed"] = ([], [])
    lines = [f"Network set-up cost of one container, 1 published port, median of {args.runs}", "",
             "| path | setup | teardown |", "|---|---|---|"]
    for label, (up, down) in rows.items():
        lines.append(f"| {label} | {_ms(up) if up else 'n/a'} | {_ms(down) if down else 'n/a'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
