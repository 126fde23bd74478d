"""Networks with real containers (``dockerbank run`` as a subprocess): names, isolation, ports, cleanup."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_binary

GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("hello from web\n")
    return root


def endpoints(root: Path) -> list:
    import sqlite3

    with sqlite3.connect(root / "state.db") as conn:
        return conn.execute("SELECT container_id FROM network_endpoints").fetchall()


def test_user_network_names_isolation_ports_and_cleanup(cli, busybox, root, www):
    require_binary("iptables-save")
    port = free_port()
    cli("network", "create", "app")
    cli("network", "create", "other")
    cli("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "-p", f"127.0.0.1:{port}:80",
        "-v", f"{www}:/www:ro", "busybox", "httpd", "-f", "-p", "80", "-h", "/www")
    try:
        ip = json.loads(cli("network", "inspect", "app").stdout)[0]["Containers"]
        ip = next(iter(ip.values()))["IPv4Address"].split("/")[0]
        # same network: by name, alias and IP; /etc/resolv.conf points to aardvark-dns
        out = cli("run", "--rm", "--network", "app", "busybox", "sh", "-c",
                  "cat /etc/resolv.conf; nslookup web; nslookup www; " + GET.format(ip="www")).stdout.decode()
        assert out.count(f"Address: {ip}") == 2 and "hello from web" in out and "nameserver 10." in out
        # another network: neither the name nor the address answers
        other = cli("run", "--rm", "--network", "other", "busybox", "sh", "-c",
                    "nslookup web; " + GET.format(ip=ip), check=False).stdout.decode()
        assert f"Address: {ip}" not in other and "hello from web" not in other
        # published port on 127.0.0.1, and what docker port says
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"hello from web\n"
        assert cli("port", "web").stdout == f"80/tcp -> 127.0.0.1:{port}\n".encode()
        assert cli("ps", "--format", "{{.Ports}}").stdout == f"127.0.0.1:{port}->80/tcp\n".encode()
        doc = json.loads(cli("inspect", "web").stdout)[0]
        assert doc["NetworkSettings"]["Networks"]["app"]["IPAddress"] == ip
        assert doc["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert doc["HostConfig"]["NetworkMode"] == "app"
        with pytest.raises(OSError):  # the container also listens on nothing else published
            urllib.request.urlopen(f"http://127.0.0.1:{free_port()}/", timeout=2)
        # the same host port again: docker's message, exit 125, nothing half set up
        deadline = time.monotonic() + 20   # the run --rm above is torn down in the background: wait for it
        while len(endpoints(root)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(endpoints(root))
        clash = cli("run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False)
        assert clash.returncode == 125
        assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in clash.stderr.decode()
        assert len(endpoints(root)) == before
    finally:
        cli("rm", "-f", "web")
    assert endpoints(root) == []
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert f"--dport {port} " not in rules
    netns_dir = Path(str(root) + "-run") / "netns"
    assert not netns_dir.exists() or not list(netns_dir.iterdir())


def test_default_bridge_none_and_host(cli, busybox):
    bridge = cli("run", "--rm", "busybox", "ip", "-4", "-o", "addr").stdout.decode()
    assert "eth0" in bridge
    none = cli("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout.decode()
    assert "eth0" not in none and "lo" in none
    hosts = cli("run", "--rm", "--add-host", "db:10.1.2.3", "--dns", "10.9.9.9", "busybox", "sh", "-c",
                "cat /etc/hosts /etc/resolv.conf").stdout.decode()
    assert "10.1.2.3\tdb" in hosts and "nameserver 10.9.9.9" in hosts
    bad = cli("run", "--rm", "--network", "nope", "busybox", "true", check=False)
    assert bad.returncode == 125 and b"No such network: nope" in bad.stderr
    bad_ip = cli("run", "--rm", "--ip", "10.1.1.1", "busybox", "true", check=False)
    assert bad_ip.returncode == 125 and b"user defined networks only" in bad_ip.stderr


def test_connect_and_disconnect_from_the_cli_running_or_not(cli, busybox):
    """A container that does not run is connected at its next start (docker's behaviour); a
    running one at once; both through the same engine call the API uses."""
    cli("network", "create", "lab")
    cli("create", "--name", "later", "--network", "none", "busybox", "sh", "-c", "ip -4 -o addr; sleep 30")
    cli("network", "connect", "--alias", "db", "lab", "later")
    assert cli("inspect", "-f", "{{.HostConfig.NetworkMode}}", "later").stdout.decode().strip() == "lab"
    again = cli("network", "connect", "lab", "later", check=False)
    assert again.returncode == 1 and b"already exists in network lab" in again.stderr
    cli("start", "later")
    deadline = time.time() + 10
    while b"eth0" not in cli("logs", "later").stdout and time.time() < deadline:
        time.sleep(0.1)
    assert b"eth0" in cli("logs", "later").stdout
    cli("network", "connect", "bridge", "later")  # running: a second interface now
    links = cli("exec", "later", "ip", "-o", "link").stdout.decode()
    assert "eth0" in links and "eth1" in links
    cli("network", "disconnect", "bridge", "later")
    assert "eth1" not in cli("exec", "later", "ip", "-o", "link").stdout.decode()
    cli("rm", "-f", "later")
    cli("create", "--name", "idle", "--network", "lab", "busybox", "true")
    cli("network", "disconnect", "lab", "idle")
    assert cli("inspect", "-f", "{{.HostConfig.NetworkMode}}", "idle").stdout.decode().strip() == "none"
    missing = cli("network", "disconnect", "lab", "idle", check=False)
    assert missing.returncode == 1 and b"is not connected to network lab" in missing.stderr
    cli("rm", "idle")
    cli("network", "rm", "lab")


def test_parallel_runs_on_one_network_resolve_each_other_and_leave_nothing(cli, busybox, root):
    """Six containers started at once on one user network (a compose up), each reaching another by
    name, then removed at once: no lock queue breaks them, and no rule, bridge, netns or row stays."""
    from concurrent.futures import ThreadPoolExecutor

    require_binary("iptables-save")
    cli("network", "create", "swarm6")
    names = [f"p{i}" for i in range(6)]

    def start(name: str) -> subprocess.CompletedProcess:
        return cli("run", "-d", "--name", name, "--network", "swarm6", "busybox", "sleep", "300", check=False)

    try:
        with ThreadPoolExecutor(len(names)) as pool:
            started = list(pool.map(start, names))
        assert all(r.returncode == 0 for r in started), [r.stderr for r in started]
        with ThreadPoolExecutor(len(names)) as pool:
            pings = list(pool.map(lambda i: cli("exec", names[i], "ping", "-c", "1", "-W", "5",
                                                names[(i + 1) % len(names)], check=False), range(len(names))))
        assert all(r.returncode == 0 for r in pings), [r.stdout + r.stderr for r in pings]
        with ThreadPoolExecutor(len(names)) as pool:
            removed = list(pool.map(lambda n: cli("rm", "-f", n, check=False), names))
        assert all(r.returncode == 0 for r in removed), [r.stderr for r in removed]
    finally:
        cli("rm", "-f", *names, check=False)
    network_id = json.loads(cli("network", "inspect", "swarm6").stdout)[0]["Id"]
    deadline = time.monotonic() + 20   # teardowns of rm -f may finish in the background
    while endpoints(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert endpoints(root) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert f"dbk{network_id[:12]}" not in links
    import hashlib

    chain = "NETAVARK-" + hashlib.sha512(network_id.encode()).hexdigest()[:13].upper()
    assert chain not in subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    cli("network", "rm", "swarm6")
