"""Isolation between Dockerbank networks, which netavark 1.4 does not provide.

netavark 1.4 accepts every forwarded packet whose source is one of its subnets, so a
container on network A could reach one on network B through the host. Docker closes that
with its DOCKER-ISOLATION chains; we add one static chain ahead of netavark's rules:

    -A DOCKERBANK-ISOLATION -m physdev --physdev-is-bridged -j RETURN   # same bridge: allowed
    -A DOCKERBANK-ISOLATION -i dbk+ -o dbk+ -j DROP                     # bridge to bridge: never

It names no network, so it never needs rewriting and serves every root on the host.
"""

from __future__ import annotations

import subprocess

from dockerbank.errors import RuntimeFailure
from dockerbank.network.model import BRIDGE_PREFIX

CHAIN = "DOCKERBANK-ISOLATION"
RULES = (
    f"-A {CHAIN} -m physdev --physdev-is-bridged -j RETURN",
    f"-A {CHAIN} -i {BRIDGE_PREFIX}+ -o {BRIDGE_PREFIX}+ -j DROP",
)
JUMP = f"-A FORWARD -j {CHAIN}"


def plan(filter_rules: str) -> str | None:
    """The iptables-restore script that brings ``iptables -S`` output to the wanted state, or None."""
    lines = [line.strip() for line in filter_rules.splitlines()]
    chain = [line for line in lines if line.startswith(f"-A {CHAIN} ")]
    forward = [line for line in lines if line.startswith("-A FORWARD ")]
    if tuple(chain) == RULES and forward and forward[0] == JUMP and forward.count(JUMP) == 1:
        return None
    script = ["*filter", f":{CHAIN} - [0:0]", *RULES]
    script += [f"-D FORWARD -j {CHAIN}"] * forward.count(JUMP)
    script += [f"-I FORWARD 1 -j {CHAIN}", "COMMIT", ""]
    return "\n".join(script)


def ensure_isolation(ipv6: bool = False) -> None:
    """Install the isolation chain first in FORWARD (one read; one atomic write when needed); with
    ``ipv6`` in ip6tables' FORWARD as well (networks with an IPv6 subnet route through it)."""
    if ipv6:
        _ensure("ip6tables")
    _ensure("iptables")


def _ensure(tool: str) -> None:
    from dockerbank.host.rootless import net_prefix

    prefix = net_prefix()   # rootless: the user's network namespace
    try:
        current = subprocess.run([*prefix, tool, "-w", "-t", "filter", "-S"], capture_output=True, text=True, timeout=30, check=False)
        if current.returncode != 0:
            raise RuntimeFailure(f"{tool} -S failed: {current.stderr.strip()}")
        script = plan(current.stdout)
        if script is None:
            return
        done = subprocess.run([*prefix, f"{tool}-restore", "-w", "--noflush"], input=script, capture_output=True,
                              text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeFailure(f"cannot install network isolation rules: {done.stderr.strip()}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"cannot install network isolation rules: {exc}") from exc
