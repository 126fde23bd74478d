"""RUN steps in real containers of the engine (runc/crun, overlayfs, conmon)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import require_binary
from dockerbank.build import context as contexts
from dockerbank.build.executor import Builder, BuildOptions
from dockerbank.build.rootfs import MergedView
from dockerbank.build.run import StepFailed, run_step_for
from dockerbank.errors import DockerbankError


@pytest.fixture(autouse=True)
def _runtime():
    require_binary("conmon")
    if not (shutil.which("runc") or shutil.which("crun")):
        pytest.fail("no OCI runtime (runc or crun): run scripts/setup.sh")


def build(engine, ctx: Path, dockerfile: str, **opts) -> tuple[str, list[str]]:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    lines: list[str] = []
    with contexts.from_directory(ctx) as context:
        image_id = Builder(engine, lines.append, run_step=run_step_for(engine), quiet=True).build(
            context, BuildOptions(**opts))
    return image_id, lines


def view_of(engine, image_id: str) -> MergedView:
    return MergedView(engine.images.layers.lower_dirs(engine.images.get(image_id).top_chain))


RUNS = """\
FROM busybox
ARG WHO=world
ENV GREETING=hello
RUN echo "$GREETING $WHO" > /greeting && mkdir -p /var/lib/app && echo data > /var/lib/app/d && rm /bin/vi
WORKDIR /srv
RUN ["sh", "-c", "pwd > /srv/pwd; id -u >> /srv/pwd"]
USER 65534:65534
RUN id -u > /dev/null
RUN <<EOF
echo from heredoc > /dev/null
EOF
"""


def test_run_layers_env_user_workdir_and_history(engine, busybox, tmp_path):
    image_id, lines = build(engine, tmp_path / "ctx", RUNS, build_args={"WHO": "dockerbank"})
    view = view_of(engine, image_id)
    assert view.read_text("greeting") == "hello dockerbank\n"
    assert view.read_text("var/lib/app/d") == "data\n"
    assert view.lstat("bin/vi") is None                      # deleted in a RUN: a whiteout in its layer
    assert view.read_text("srv/pwd") == "/srv\n0\n"
    # runtime mount points are not part of any layer
    base = view_of(engine, busybox.id)
    for stub in ("etc/hosts", "etc/resolv.conf", "etc/hostname", "proc", "sys", "dev"):
        assert (view.lstat(stub) is None) == (base.lstat(stub) is None), stub
    config = engine.images.image_config(image_id)
    history = [h["created_by"] for h in config["history"]]
    assert history[3].startswith('|1 WHO=dockerbank /bin/sh -c echo "$GREETING $WHO" > /greeting')
    assert history[5] == "|1 WHO=dockerbank sh -c pwd > /srv/pwd; id -u >> /srv/pwd"
    # a RUN that changes nothing makes no layer
    assert config["history"][-2].get("empty_layer") and config["history"][-1].get("empty_layer")
    assert len(config["rootfs"]["diff_ids"]) == 1 + 3
    assert any(line.startswith(" ---> Running in ") for line in lines)
    assert not engine.containers.list()                      # every build container is removed


def test_run_cache_and_build_args(engine, busybox, tmp_path):
    first, _ = build(engine, tmp_path / "ctx", RUNS)
    second, lines = build(engine, tmp_path / "ctx", RUNS)
    assert second == first and not any(line.startswith(" ---> Running in") for line in lines)
    third, lines = build(engine, tmp_path / "ctx", RUNS, build_args={"WHO": "other"})
    assert third != first
    assert view_of(engine, third).read_text("greeting") == "hello other\n"


def test_failing_run_names_the_line_and_leaves_nothing(engine, busybox, tmp_path, cli):
    dockerfile = "FROM busybox\nENV A=1\nRUN echo ok\nRUN exit 3\nRUN echo never\n"
    with pytest.raises(StepFailed) as info:
        build(engine, tmp_path / "ctx", dockerfile)
    assert str(info.value) == "Dockerfile:4: The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert info.value.exit_code == 3
    assert not engine.containers.list()
    # the failed step is not cached: the next build runs it again and fails again
    with pytest.raises(DockerbankError, match="returned a non-zero code: 3"):
        build(engine, tmp_path / "ctx", dockerfile)
    result = cli("build", str(tmp_path / "ctx"), check=False)
    assert result.returncode == 3
    assert "Error: Dockerfile:4: The command '/bin/sh -c exit 3' returned a non-zero code: 3" in result.stderr.decode()
    assert " ---> Using cache" in result.stdout.decode()


def test_heredoc_with_shebang_runs_by_its_interpreter(engine, busybox, tmp_path):
    dockerfile = "FROM busybox\nRUN <<EOF\n#!/usr/bin/awk -f\nBEGIN { print \"awk ran\" > \"/awk.txt\" }\nEOF\n"
    image_id, _ = build(engine, tmp_path / "ctx", dockerfile)
    assert view_of(engine, image_id).read_text("awk.txt") == "awk ran\n"
