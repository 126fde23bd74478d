"""network connect/disconnect of a container that does not run: its stored network (pure)."""

import pytest

from dockerbank.errors import Conflict, NotFound
from dockerbank.network.runtime import rewire


def test_connect_to_none_then_more_then_back():
    net, mode = rewire({"kind": "none", "networks": []}, "lab", "c1", connect=True, aliases=["db"], ip="10.1.0.9")
    assert (net["kind"], net["networks"], net["aliases"], net["ip"], mode) == ("user", ["lab"], ["db"], "10.1.0.9", "lab")
    net, mode = rewire(net, "bridge", "c1", connect=True)
    assert net["networks"] == ["lab", "bridge"] and net["kind"] == "user" and mode == "lab"
    net, mode = rewire(net, "lab", "c1", connect=False)
    assert (net["kind"], net["networks"], mode) == ("bridge", ["bridge"], "default")
    net, mode = rewire(net, "bridge", "c1", connect=False)
    assert (net["kind"], net["networks"], mode) == ("none", [], "none")


def test_refusals_name_the_container_and_network():
    with pytest.raises(Conflict, match="endpoint with name c1 already exists in network lab"):
        rewire({"kind": "user", "networks": ["lab"]}, "lab", "c1", connect=True)
    with pytest.raises(NotFound, match="c1 is not connected to network lab"):
        rewire({"kind": "bridge", "networks": ["bridge"]}, "lab", "c1", connect=False)
    with pytest.raises(Conflict, match="network mode is host"):
        rewire({"kind": "host"}, "lab", "c1", connect=True)
