"""Networks with the real stack: pinned netns, netavark, aardvark-dns, iptables, busybox.

Processes stand in for containers (``nsenter --net=<netns> busybox ...``), so these tests
prove the network layer alone. Only 127.0.0.1 and addresses inside our namespaces are used.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dockerbank.errors import Conflict
from dockerbank.network.model import bridge_name
from dockerbank.network.ports import parse_publish
from dockerbank.network.service import AttachRequest
from tests.conftest import require_binary


@pytest.fixture(autouse=True)
def _tools():
    for tool in ("nsenter", "busybox", "curl", "iptables-save", "ip"):
        require_binary(tool)


@pytest.fixture
def net(engine):
    """The engine's NetworkService; every container it attached is detached at the end."""
    service = engine.networks
    service.release_wait = 0  # endpoints here have no processes: never wait for them to be released
    yield service
    for row in service.db.query("SELECT DISTINCT container_id FROM network_endpoints"):
        service.detach(row["container_id"])


@pytest.fixture
def procs():
    """Processes started in namespaces; killed by pid at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def cid() -> str:
    return secrets.token_hex(32)


def attach(net, name: str, networks=("bridge",), ports=(), **kwargs) -> tuple[str, dict]:
    container_id = cid()
    requests = [r for spec in ports for r in parse_publish(spec)]
    settings = net.attach(AttachRequest(container_id, name, list(networks), requests, **kwargs))
    return container_id, settings


def in_ns(settings: dict, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={settings['SandboxKey']}", "busybox", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def fetch(settings: dict, url: str, timeout: int = 3) -> subprocess.CompletedProcess:
    """curl from inside a namespace (busybox-static's wget crashes on this Debian build)."""
    return subprocess.run(["nsenter", f"--net={settings['SandboxKey']}", "curl", "-sS", "--max-time", str(timeout), url],
                          capture_output=True, text=True, timeout=timeout + 5, check=False)


def httpd(procs, settings: dict, port: int, docroot: Path) -> None:
    procs.append(subprocess.Popen(["nsenter", f"--net={settings['SandboxKey']}", "busybox", "httpd", "-f",
                                   "-p", str(port), "-h", str(docroot)]))
    for _ in range(100):  # wait until it listens
        if f":{port} " in in_ns(settings, "netstat", "-ltn").stdout:
            return
        time.sleep(0.05)
    raise AssertionError("httpd did not start")


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("hello from the container\n")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def firewall_text() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def assert_no_traces(net, container_ids, networks) -> None:
    rules = firewall_text()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    for container_id in container_ids:
        assert f"id: {container_id}" not in rules
        assert not net.netns_path(container_id).exists()
    for network in networks:
        # netavark's chains are named after a hash of the name it gets (the network's id); other roots
        # on the host may use the same subnet, so the subnet alone does not say whose a rule is
        chain = "NETAVARK-" + hashlib.sha512(network.id.encode()).hexdigest()[:13].upper()
        assert chain not in rules, f"rules of {network.name} ({network.subnet}, chain {chain}) left behind"
        assert bridge_name(network.id) not in links, f"bridge/veth of {network.name} left behind"
    assert not net.db.query("SELECT * FROM network_endpoints")


def test_same_network_reach_by_ip_name_and_alias(net, procs, docroot):
    front = net.create("front")
    c1, s1 = attach(net, "web1", ["front"], aliases=["www"])
    c2, s2 = attach(net, "client", ["front"])
    assert s1["IPAddress"] != s2["IPAddress"]
    dns = s2["DnsServers"][0]
    assert dns == front.gateway
    for name in ("web1", "www", c1[:12]):
        out = in_ns(s2, "nslookup", name, dns)
        assert s1["IPAddress"] in out.stdout, out.stdout + out.stderr
    httpd(procs, s1, 80, docroot)
    got = fetch(s2, f"http://{s1['IPAddress']}/")
    assert got.stdout == "hello from the container\n", got.stderr
    net.detach(c1)
    net.detach(c2)
    assert_no_traces(net, [c1, c2], [front])


def test_networks_are_isolated_and_internal_has_no_way_out(net, procs, docroot):
    red, blue = net.create("red"), net.create("blue")
    closed = net.create("closed", internal=True)
    ca, sa = attach(net, "a", ["red"])
    cb, sb = attach(net, "b", ["blue"])
    cc, sc = attach(net, "c", ["closed"])
    httpd(procs, sa, 80, docroot)
    # a name of another network does not resolve, its address is not reachable
    assert sa["IPAddress"] not in in_ns(sb, "nslookup", "a", sb["DnsServers"][0]).stdout
    assert fetch(sb, f"http://{sa['IPAddress']}/", 2).returncode != 0
    assert fetch(sc, f"http://{sa['IPAddress']}/", 2).returncode != 0
    # internal: no default route, so nothing beyond its own subnet is even routable
    routes = subprocess.run(["nsenter", f"--net={sc['SandboxKey']}", "ip", "route"],
                            capture_output=True, text=True, check=True).stdout
    assert "default" not in routes and closed.subnet in routes
    assert "default" in subprocess.run(["nsenter", f"--net={sa['SandboxKey']}", "ip", "route"],
                                       capture_output=True, text=True, check=True).stdout
    for container_id in (ca, cb, cc):
        net.detach(container_id)
    assert_no_traces(net, [ca, cb, cc], [red, blue, closed])


def test_published_port_reachable_unpublished_not(net, procs, docroot):
    port = free_port()
    c1, s1 = attach(net, "pub", ports=[f"127.0.0.1:{port}:80"])
    assert s1["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    httpd(procs, s1, 80, docroot)
    httpd(procs, s1, 81, docroot)  # listening, but not published
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    assert body == b"hello from the container\n"
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:81/", timeout=3)
    net.detach(c1)
    with pytest.raises(OSError):  # the forward is gone with the container
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3)
    assert_no_traces(net, [c1], [net.get("bridge")])


def test_taken_port_fails_cleanly(net):
    port = free_port()
    other = net.create("other")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(Conflict, match=rf"Bind for 127.0.0.1:{port} failed: port is already allocated"):
            attach(net, "clash", ["other"], ports=[f"127.0.0.1:{port}:80"])
    assert_no_traces(net, [], [other])
    assert not list(net.netns_dir.iterdir()) if net.netns_dir.exists() else True
    # a port held by another container of the store (a DNAT rule binds no socket) clashes too
    c1, _ = attach(net, "first", ["other"], ports=[f"{port}:80"])
    with pytest.raises(Conflict, match="port is already allocated"):
        attach(net, "second", ["other"], ports=[f"127.0.0.1:{port}:80"])
    assert {r["container_id"] for r in net.db.query("SELECT container_id FROM network_endpoints")} == {c1}
    # a free port is chosen when none is given
    c2, s2 = attach(net, "any", ["other"], ports=["80"])
    assert int(s2["Ports"]["80/tcp"][0]["HostPort"]) >= 32768
    net.detach(c1)
    net.detach(c2)
    assert_no_traces(net, [c1, c2], [other])


def test_addresses_persist_and_are_never_shared(engine, config, net):
    from dockerbank.engine import Engine

    net.create("shared", subnet="10.123.45.0/24")
    c1, s1 = attach(net, "one", ["shared"], ip="10.123.45.10")
    second = Engine(config)  # another CLI invocation on the same root
    try:
        second.networks.release_wait = 0
        c2, s2 = attach(second.networks, "two", ["shared"])
        assert s2["IPAddress"] not in (s1["IPAddress"], "10.123.45.1")
        with pytest.raises(Conflict, match="Address already in use"):
            attach(second.networks, "three", ["shared"], ip="10.123.45.10")
        second.networks.detach(c2)
    finally:
        second.close()
    net.detach(c1)


def test_connect_and_disconnect_a_running_endpoint(net):
    net.create("one")
    two = net.create("two")
    c1, s1 = attach(net, "multi", ["one"])
    settings = net.connect("two", c1, "multi", aliases=["second"])
    assert set(settings["Networks"]) == {"one", "two"}
    addrs = subprocess.run(["nsenter", f"--net={s1['SandboxKey']}", "ip", "-o", "-4", "addr"],
                           capture_output=True, text=True, check=True).stdout
    assert settings["Networks"]["two"]["IPAddress"] in addrs
    # the list's bulk read (GET /containers/json) gives what one container's reads give
    c2, _ = attach(net, "single", ["one"], ports=["8089:80"])
    bulk = net.settings_of([c1, c2, "no-such-container"])
    assert set(bulk) == {c1, c2}
    for cid in (c1, c2):
        assert bulk[cid] == (net.settings(cid), net.port_mappings(cid))
    assert [p.host_port for p in bulk[c2][1]] == [8089]
    net.detach(c2)
    with pytest.raises(Conflict):
        net.remove("two")
    net.disconnect("two", c1)
    assert bridge_name(two.id) not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    net.remove("two")
    net.detach(c1)


def test_cleanup_repairs_what_a_crash_left(net):
    from dockerbank.network import netns

    crashed = net.create("crashed")
    c1, s1 = attach(net, "lost", ["crashed"], ports=[f"127.0.0.1:{free_port()}:80"])
    assert f"id: {c1}" in firewall_text()
    netns.remove(Path(s1["SandboxKey"]))  # the namespace vanished (reboot, crash) with rules left
    orphan = netns.create(net.netns_path(cid()))  # a namespace nobody recorded
    repairs = net.cleanup(live_containers=[])
    assert any(c1[:12] in line for line in repairs) and any(str(orphan) in line for line in repairs)
    assert not orphan.exists()
    assert_no_traces(net, [c1], [crashed])


def test_prepare_container_network_gives_namespace_and_files(net):
    from dockerbank.network.runtime import parse_mode, prepare_container_network

    app = net.create("app")
    container_id = cid()
    mode = parse_mode(["app"], ports=["127.0.0.1::80"], add_hosts=["db:10.1.2.3"])
    result = prepare_container_network(net, container_id, "api", mode, hostname="api-host",
                                       ports=["127.0.0.1::80"], aliases=["service"], add_hosts=["db:10.1.2.3"])
    assert result.namespace == {"type": "network", "path": str(net.netns_path(container_id))}
    ip = result.settings["Networks"]["app"]["IPAddress"]
    assert f"{ip}\tapi-host\n" in result.hosts and "10.1.2.3\tdb\n" in result.hosts
    assert result.resolv == f"nameserver {app.gateway}\n"
    port = int(result.settings["Ports"]["80/tcp"][0]["HostPort"])
    assert net.port_mappings(container_id)[0].host_port == port
    net.detach(container_id)
    assert_no_traces(net, [container_id], [app])
    none = prepare_container_network(net, cid(), "quiet", parse_mode(["none"]), hostname="q")
    assert none.namespace == {"type": "network"} and not net.db.query("SELECT 1 FROM network_endpoints")


_ATTACH_SCRIPT = """
import json, secrets, sys
from pathlib import Path
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.network.service import AttachRequest
engine = Engine(Config(Path(sys.argv[1]), Path(sys.argv[2])))
if sys.argv[3] == "attach":
    cid = secrets.token_hex(32)
    print(json.dumps([cid, engine.networks.attach(AttachRequest(cid, "c" + cid[:8], ["crowd"]))["IPAddress"]]))
else:
    engine.networks.detach(sys.argv[4])
"""


def test_concurrent_processes_get_distinct_addresses_and_leave_nothing(net, config):
    import json
    import sys

    crowd = net.create("crowd")

    def run_all(argvs):
        procs = [subprocess.Popen([sys.executable, "-c", _ATTACH_SCRIPT, str(config.root), str(config.run_root), *a],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argvs]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        return [o for o, _ in outs]

    results = [json.loads(out) for out in run_all([["attach"]] * 5)]
    addresses = [ip for _, ip in results]
    assert len(set(addresses)) == 5 and crowd.gateway not in addresses
    run_all([["detach", container_id] for container_id, _ in results])
    assert_no_traces(net, [c for c, _ in results], [crowd])


def test_idle_network_moves_off_a_subnet_the_host_took_meanwhile(net):
    """Roots are independent stores: while a network has no endpoint its bridge does not exist,
    so another root may take its subnet; the next attach moves it instead of clashing."""
    idle = net.create("idle")
    squatter = "dbksquat" + secrets.token_hex(3)
    subprocess.run(["ip", "link", "add", squatter, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{idle.gateway}/24", "dev", squatter], check=True)
        subprocess.run(["ip", "link", "set", squatter, "up"], check=True)  # its route exists only when up
        container_id, settings = attach(net, "mover", ["idle"])
        moved = net.get("idle")
        assert moved.subnet != idle.subnet
        assert settings["Networks"]["idle"]["IPAddress"].startswith(moved.subnet.rsplit(".", 2)[0])
        assert "_dockerbank" not in json.dumps(net.inspect("idle")["Options"])
        net.detach(container_id)
    finally:
        subprocess.run(["ip", "link", "delete", squatter], check=True)
    fixed = net.create("fixed", subnet="10.123.46.0/24")
    assert net.get("fixed").subnet == fixed.subnet  # a subnet the user chose never moves


def test_detach_survives_a_vanished_interface_and_two_roots_share_no_chains(net, tmp_path):
    """An eth0 deleted behind our back must not strand rules, rows or the netns; and another
    root's network of the same name (every root has a 'bridge') must keep its own chains."""
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    other = Engine(Config(tmp_path / "other-root", tmp_path / "other-run"))
    try:
        other.networks.release_wait = 0
        mine, _ = attach(net, "mine", ["bridge"], ports=[f"127.0.0.1:{free_port()}:80"])
        theirs, their_settings = attach(other.networks, "theirs", ["bridge"])
        subprocess.run(["nsenter", f"--net={net.netns_path(mine)}", "ip", "link", "delete", "eth0"], check=True)
        net.detach(mine)
        assert_no_traces(net, [mine], [])
        # the other root's network keeps its masquerade chain: it was not torn down with ours
        their_subnet = other.networks.get("bridge").subnet
        assert f"-s {their_subnet} -j NETAVARK-" in firewall_text()
        routes = subprocess.run(["nsenter", f"--net={their_settings['SandboxKey']}", "ip", "route"],
                                capture_output=True, text=True, check=True).stdout
        assert "default" in routes
        other.networks.detach(theirs)
        assert_no_traces(other.networks, [theirs], [other.networks.get("bridge")])
    finally:
        other.close()


PARALLEL_WORKER = """
import sys, secrets, subprocess
from pathlib import Path
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.network.ports import parse_publish
from dockerbank.network.service import AttachRequest

root, run_root, network, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
engine = Engine(Config(Path(root), Path(run_root)))
engine.networks.release_wait = 0
for i in range(rounds):
    cid = secrets.token_hex(32)
    print(cid, flush=True)
    # a host port chosen by the store (a fixed one may be some program's ephemeral port meanwhile)
    settings = engine.networks.attach(AttachRequest(cid, "w" + cid[:8], [network], parse_publish("127.0.0.1::80")))
    gateway = settings["Networks"][network]["Gateway"]
    # the namespace reaches its gateway over the bridge (the bridge was not deleted under it)
    ping = subprocess.run(["nsenter", f"--net={settings['SandboxKey']}", "busybox", "ping", "-c", "1", "-W", "5",
                           gateway], capture_output=True, text=True)
    if ping.returncode != 0:
        print("ping failed", ping.stdout, ping.stderr, flush=True)
        sys.exit(3)
    engine.networks.detach(cid)
engine.close()
"""


def test_parallel_starts_and_stops_on_one_network_are_race_free(net, engine):
    """Eight processes (as eight CLI calls) attach and detach on one network at once, three rounds
    each, so the bridge is created and deleted while others set up: every set-up works, nothing
    is left (bridge, chains, rules, rows), and no process waited on a host-wide lock."""
    import sys

    network = net.create("par")
    workers, rounds = 8, 3
    procs = [subprocess.Popen([sys.executable, "-c", PARALLEL_WORKER, str(engine.config.root),
                               str(engine.config.run_root), "par", str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(workers)]
    outputs = [(p.wait(timeout=180), p.stdout.read() if p.stdout else "") for p in procs]
    assert all(code == 0 for code, _ in outputs), outputs
    started = [line for _, out in outputs for line in out.split() if len(line) == 64]
    assert len(started) == workers * rounds
    assert_no_traces(net, started, [network])


def test_forwarding_out_of_the_host_with_dockerds_drop_policy(net, procs, docroot):
    """Traffic a container sends beyond its subnet crosses the host's FORWARD chain, whose policy
    dockerd sets to DROP: it must still get out (masqueraded), and the reply back in; a port published
    on all addresses must be reached from outside (DNAT'd, then forwarded). The "outside"
    is a namespace behind a veth of the host (a /30 of 198.18.0.0/15, the benchmarking range)."""
    from dockerbank.network import netns

    policy = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    outside = netns.create(net.netns_dir.parent / f"outside-{secrets.token_hex(4)}")
    host_end = f"nfo{secrets.token_hex(4)}"
    third = secrets.randbelow(250) + 1
    host_ip, far_ip = f"198.18.{third}.1", f"198.18.{third}.2"
    try:
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", str(outside)],
                       check=True)
        subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_end], check=True)
        subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{far_ip}/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", host_ip]):
            subprocess.run(["nsenter", f"--net={outside}", *cmd], check=True)
        httpd(procs, {"SandboxKey": str(outside)}, 80, docroot)
        web = net.create("out")
        port = free_port()
        c1, s1 = attach(net, "client", ["out"], ports=[f"{port}:80"])
        got = fetch(s1, f"http://{far_ip}/", 5)
        assert got.stdout == "hello from the container\n", (policy, got.stderr)
        # and the other way: from the outside to a port published on all addresses (DNAT, then FORWARD)
        httpd(procs, s1, 80, docroot)
        inbound = fetch({"SandboxKey": str(outside)}, f"http://{host_ip}:{port}/", 5)
        assert inbound.stdout == "hello from the container\n", (policy, inbound.stderr)
        net.detach(c1)
        assert_no_traces(net, [c1], [web])
    finally:
        subprocess.run(["ip", "link", "delete", host_end], capture_output=True, check=False)
        netns.remove(outside)


def test_ipv6_network_addresses_routes_and_names(net):
    dual = net.create("dual6", ipv6=True)
    c1, s1 = attach(net, "six1", ["dual6"])
    c2, s2 = attach(net, "six2", ["dual6"])
    assert s1["GlobalIPv6Address"] and s1["GlobalIPv6Address"] != s2["GlobalIPv6Address"]
    routes = subprocess.run(["nsenter", f"--net={s2['SandboxKey']}", "ip", "-6", "route"],
                            capture_output=True, text=True, check=True).stdout
    assert f"default via {dual.gateway6}" in routes
    ping = in_ns(s2, "ping", "-6", "-c", "1", "-W", "5", s1["GlobalIPv6Address"])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    names = in_ns(s2, "nslookup", "six1", s2["DnsServers"][0])
    assert s1["IPAddress"] in names.stdout and s1["GlobalIPv6Address"] in names.stdout, names.stdout + names.stderr
    net.detach(c1)
    net.detach(c2)
    assert_no_traces(net, [c1, c2], [dual])
    assert f"NETAVARK-{hashlib.sha512(dual.id.encode()).hexdigest()[:13].upper()}" not in subprocess.run(
        ["ip6tables-save"], capture_output=True, text=True, check=True).stdout


def test_a_setup_killed_at_any_moment_is_repaired_by_cleanup(net, engine):
    """SIGKILL an attach (its own process, as a CLI) at spread-out moments of its set-up: the
    rows, namespace, veth, rules and bridge it leaves are all repaired by ``cleanup`` (system check)."""
    import sys

    network = net.create("killed")
    worker = PARALLEL_WORKER.replace("engine.networks.detach(cid)", "import time; time.sleep(60)")
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", worker, str(engine.config.root), str(engine.config.run_root),
                                 "killed", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait until the worker's attach has begun (its reservation row), then a little more
        deadline = time.monotonic() + 30
        while not net.db.query("SELECT 1 FROM network_endpoints") and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.002)
        assert net.db.query("SELECT 1 FROM network_endpoints"), "the worker never began its attach"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        net.cleanup(live_containers=[])
        assert_no_traces(net, [], [network])


@pytest.mark.parametrize("first,then", [("netavark", "inprocess"), ("inprocess", "netavark")])
def test_an_endpoint_set_up_by_one_driver_is_torn_down_by_the_other(net, procs, docroot, monkeypatch, first, then):
    """An upgrade leaves containers whose network netavark set up (and DOCKERBANK_NETWORK_BACKEND may
    switch back): the other driver's teardown removes everything, and a container set up by the other
    driver beside it on the same network works meanwhile (same bridge, chains and aardvark-dns files)."""
    from dockerbank.network.service import make_driver

    monkeypatch.setenv("DOCKERBANK_NETWORK_BACKEND", first)
    net._driver = make_driver(net.config.run_root / "netavark")
    shared = net.create("mixed")
    port = free_port()
    old, s_old = attach(net, "old", ["mixed"], ports=[f"127.0.0.1:{port}:80"])
    monkeypatch.setenv("DOCKERBANK_NETWORK_BACKEND", then)
    net._driver = make_driver(net.config.run_root / "netavark")
    new, s_new = attach(net, "new", ["mixed"])
    httpd(procs, s_old, 80, docroot)
    assert s_old["IPAddress"] in in_ns(s_new, "nslookup", "old", s_new["DnsServers"][0]).stdout
    assert fetch(s_new, f"http://{s_old['IPAddress']}/").stdout == "hello from the container\n"
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"hello from the container\n"
    net.detach(old)
    assert s_old["IPAddress"] not in in_ns(s_new, "nslookup", "old", s_new["DnsServers"][0]).stdout
    net.detach(new)
    assert_no_traces(net, [old, new], [shared])
    # nor the one rule netavark does not write (the DNAT accept), whichever driver tore down last
    assert f"-d {shared.subnet} -m conntrack --ctstate DNAT" not in firewall_text()
