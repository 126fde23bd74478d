"""Networks as the docker SDK creates them: IPv6 (EnableIPv6), IPAM configs with Subnet/Gateway/
IPRange, labels, aliases and static IPv4/IPv6 addresses at create and connect, set up by netavark
and seen inside the containers. Expected shapes read from docker 20.10 on this machine."""

from __future__ import annotations

import pytest
from api_server import sdk_client

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat


def _remove_networks(sdk) -> None:
    for network in sdk.networks.list():
        if network.name != "bridge":
            network.remove()


@pytest.fixture
def client(tmp_path, busybox_tar):
    yield from sdk_client(tmp_path, busybox_tar, "1.41", after=_remove_networks)


def _pool(**kw):
    return docker.types.IPAMPool(**kw)


def test_ipv6_ipam_labels_aliases_and_static_addresses(client):
    ipam = docker.types.IPAMConfig(pool_configs=[_pool(subnet="10.77.0.0/16", gateway="10.77.0.1",
                                                       iprange="10.77.5.0/24"),
                                                 _pool(subnet="fd00:77::/64", gateway="fd00:77::1")])
    net = client.networks.create("dual", enable_ipv6=True, ipam=ipam, labels={"team": "bio"})
    assert net.attrs["EnableIPv6"] is True and net.attrs["Labels"] == {"team": "bio"}
    assert net.attrs["IPAM"]["Config"] == [
        {"Subnet": "10.77.0.0/16", "Gateway": "10.77.0.1", "IPRange": "10.77.5.0/24"},
        {"Subnet": "fd00:77::/64", "Gateway": "fd00:77::1"}]
    assert [n.name for n in client.networks.list(filters={"label": "team=bio"})] == ["dual"]
    target = client.containers.run("busybox", ["sleep", "60"], name="target", network="dual", detach=True)
    target.reload()
    settings = target.attrs["NetworkSettings"]["Networks"]["dual"]
    assert settings["IPAddress"] == "10.77.5.0"  # the first address of the IPRange, as dockerd hands out
    assert (settings["GlobalIPv6Address"], settings["GlobalIPv6PrefixLen"], settings["IPv6Gateway"]) == \
        ("fd00:77::2", 64, "fd00:77::1")
    api = client.api
    created = api.create_container(
        "busybox", ["sh", "-c", "ip addr show eth0 | grep -o 'inet6\\? [0-9a-f.:]*/[0-9]*'; ping -c1 -W2 target"],
        host_config=api.create_host_config(network_mode="dual"),
        networking_config=api.create_networking_config({"dual": api.create_endpoint_config(
            ipv4_address="10.77.9.50", ipv6_address="fd00:77::50", aliases=["db"])}))
    box = client.containers.get(created["Id"])
    endpoint = box.attrs["NetworkSettings"]["Networks"]["dual"]
    assert endpoint["IPAMConfig"] == {"IPv4Address": "10.77.9.50", "IPv6Address": "fd00:77::50"}
    assert endpoint["Aliases"] == ["db"]
    box.start()
    assert box.wait()["StatusCode"] == 0, box.logs()
    lines = box.logs().decode().splitlines()
    assert lines[:2] == ["inet 10.77.9.50/16", "inet6 fd00:77::50/64"]
    finder = client.containers.run("busybox", ["sleep", "60"], network="dual", detach=True)
    assert finder.exec_run(["ping", "-c1", "-W2", "target"])[0] == 0   # names resolve on the network
    net.reload()
    shown = net.attrs["Containers"][target.id]
    assert (shown["IPv4Address"], shown["IPv6Address"]) == ("10.77.5.0/16", "fd00:77::2/64")
    other = client.containers.run("busybox", ["sleep", "60"], network_mode="none", detach=True)
    client.networks.create("plain", ipam=docker.types.IPAMConfig(pool_configs=[_pool(subnet="10.79.0.0/24")]))
    plain_box = client.containers.run("busybox", ["sleep", "60"], network="plain", detach=True)
    net.connect(plain_box, aliases=["late"], ipv4_address="10.77.9.60", ipv6_address="fd00:77::60")
    plain_box.reload()
    joined = plain_box.attrs["NetworkSettings"]["Networks"]["dual"]
    assert (joined["IPAddress"], joined["GlobalIPv6Address"]) == ("10.77.9.60", "fd00:77::60")
    assert "late" in joined["Aliases"]
    assert other.status in ("created", "running")
    # networks cannot reach each other over IPv6 either (the isolation chain is in ip6tables too)
    client.networks.create("apart", ipam=docker.types.IPAMConfig(pool_configs=[_pool(subnet="fd00:78::/64")]))
    apart = client.containers.run("busybox", ["sleep", "60"], network="apart", detach=True)
    apart.reload()
    far = apart.attrs["NetworkSettings"]["Networks"]["apart"]["GlobalIPv6Address"]
    assert far.startswith("fd00:78::")
    assert finder.exec_run(["ping", "-c1", "-W1", far])[0] != 0
    assert finder.exec_run(["ping", "-c1", "-W1", "fd00:77::2"])[0] == 0  # its own network answers


def test_ipv6_without_a_subnet_and_refusals(client):
    auto = client.networks.create("auto6", enable_ipv6=True)
    v4, v6 = auto.attrs["IPAM"]["Config"]
    assert auto.attrs["EnableIPv6"] and v6["Subnet"].startswith("fd") and v6["Subnet"].endswith("::/64")
    for kwargs, message in [
        ({"ipam": docker.types.IPAMConfig(pool_configs=[_pool(subnet="10.81.0.0/24", iprange="10.82.0.0/25")])},
         "ip-range 10.82.0.0/25 is not within subnet 10.81.0.0/24"),
        ({"ipam": docker.types.IPAMConfig(pool_configs=[_pool(subnet="10.81.0.0/24"), _pool(subnet="10.81.1.0/24")])},
         "only one IPv4 subnet per network is supported"),
    ]:
        with pytest.raises(docker.errors.APIError) as refused:
            client.networks.create("bad", **kwargs)
        assert refused.value.status_code == 400 and message in refused.value.explanation
    client.networks.create("v4only")
    api = client.api
    with pytest.raises(docker.errors.APIError, match="does not belong to any of this network's subnets"):
        created = api.create_container("busybox", ["true"], host_config=api.create_host_config(network_mode="v4only"),
                                       networking_config=api.create_networking_config(
                                           {"v4only": api.create_endpoint_config(ipv6_address="fd00::5")}))
        api.start(created["Id"])


def test_network_removed_right_after_its_last_container(client):
    """``run --rm`` / ``rm -f`` then ``network rm``, as scripts do: the removed container's detached
    teardown is waited for (dockerd tears down before it answers)."""
    for attempt in range(2):
        net = client.networks.create(f"brief{attempt}")
        client.containers.run("busybox", ["true"], network=net.name, remove=True)
        net.remove()
        net = client.networks.create(f"auto{attempt}")  # the docker CLI's run --rm: the engine removes it
        box = client.containers.run("busybox", ["true"], network=net.name, auto_remove=True, detach=True)
        try:
            box.wait(condition="removed")
        except docker.errors.NotFound:
            pass  # removed before the wait arrived (`true` ends at once): dockerd answers 404 then too
        net.remove()
        net = client.networks.create(f"forced{attempt}")
        box = client.containers.run("busybox", ["sleep", "60"], network=net.name, detach=True)
        box.remove(force=True)
        net.remove()
    assert [n.name for n in client.networks.list()] == ["bridge"]
    busy = client.networks.create("busy")
    client.containers.run("busybox", ["sleep", "60"], network="busy", detach=True)
    with pytest.raises(docker.errors.APIError, match="has active endpoints"):
        busy.remove()
