"""Docker shapes built from a real store: inspect, history and the Engine API summaries."""

from __future__ import annotations

import pytest

from dockerbank.errors import NotFound
from dockerbank.image import inspect as ins


def test_inspect_image_by_name_id_and_prefix(engine, busybox):
    for name in ("busybox", "busybox:latest", busybox.id, busybox.id[7:19]):
        doc = ins.inspect_image(engine.images, name)
        assert doc["Id"] == busybox.id and doc["RepoTags"] == ["busybox:latest"]
    assert doc["GraphDriver"]["Data"]["UpperDir"].endswith("/diff")
    with pytest.raises(NotFound, match="No such image: nothere:latest"):
        ins.inspect_image(engine.images, "nothere")


def test_api_shapes(engine, busybox):
    summary = ins.image_summary(engine.images, busybox)
    assert summary["Id"] == busybox.id and summary["RepoTags"] == ["busybox:latest"]
    assert isinstance(summary["Created"], int) and summary["Size"] == busybox.size
    [entry] = ins.history_api(engine.images, busybox)
    assert entry["Id"] == busybox.id and entry["Tags"] == ["busybox:latest"] and entry["Size"] == busybox.size
