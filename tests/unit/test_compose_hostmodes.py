"""compose keys that reach the engine's namespace, placement and IPAM options (pure)."""

from __future__ import annotations

from dockerbank.compose.options import create_options
from tests.unit.test_compose_load import project_of

FILE = """
services:
  web:
    image: busybox
    pid: host
    cgroup: private
    isolation: default
    mac_address: 02:42:ac:11:00:09
    group_add: [audio, 100]
    cpuset: "0"
    shm_size: 128m
    ipc: host
    oom_score_adj: 200
    sysctls: ["net.core.somaxconn=1024"]
    ulimits: {nproc: 65535, nofile: {soft: 1024, hard: 2048}}
    networks:
      front: {ipv4_address: 10.77.0.5, ipv6_address: "fd00:77::5"}
  side:
    image: busybox
    pid: "service:web"
networks:
  front:
    enable_ipv6: true
    ipam:
      config: [{subnet: 10.77.0.0/16, ip_range: 10.77.5.0/24}, {subnet: "fd00:77::/64"}]
"""


def test_service_keys_become_create_options():
    project, _ = project_of({"/p/compose.yaml": FILE})
    opts = create_options(project, "web", 1, "d", network_ids={"front": "p_front"}, volume_names={})
    assert (opts.pid_mode, opts.cgroupns_mode, opts.isolation, opts.mac_address) == \
        ("host", "private", "default", "02:42:ac:11:00:09")
    assert (opts.group_add, opts.cpuset_cpus) == (["audio", "100"], "0")
    assert (opts.shm_size, opts.ipc_mode, opts.oom_score_adj) == (128 << 20, "host", 200)
    assert opts.sysctls == {"net.core.somaxconn": "1024"}
    assert opts.ulimits == [{"Name": "nproc", "Soft": 65535, "Hard": 65535},
                            {"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert (opts.network_options["ip"], opts.network_options["ip6"]) == ("10.77.0.5", "fd00:77::5")
    side = create_options(project, "side", 1, "d", network_ids={"default": "p_default"}, volume_names={},
                          container_of_service=lambda s: f"id-of-{s}")
    assert side.pid_mode == "container:id-of-web"
