"""The same Dockerfiles built by Dockerbank and by docker's legacy builder (DOCKER_BUILDKIT=0)
on the same busybox base: the configs and the file trees match, and a Dockerbank-built image
loads and runs under docker.
"""

from __future__ import annotations

import hashlib
import io
import re
import os
import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from dockerbank.build import context as contexts
from dockerbank.build.executor import Builder, BuildOptions
from dockerbank.build.rootfs import MergedView
from dockerbank.build.run import run_step_for
from conftest import require_binary
from test_image_interop import PODMAN_RUN, PODMAN_RUN_OPTS, _run, docker_env  # noqa: F401  (docker_env: a dockerd)

CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "StopSignal", "Healthcheck", "OnBuild", "Shell")
# files docker adds to every exported container, not part of the image
CONTAINER_ONLY = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "proc", "sys", "etc/mtab"}

CASES = {
    "app": ("""\
FROM {base}
ENV APP_HOME=/srv/app \\
    GREETING="hello world" \\
    PATH=/srv/app/bin:$PATH
WORKDIR $APP_HOME
COPY app/ ./
COPY --chown=1000:1000 config.ini /etc/app/
ARG VERSION=0.1
LABEL org.opencontainers.image.version=$VERSION maintainer="ops team" \\
      description='single quoted $VERSION'
USER 1000:1000
EXPOSE 8080 9000-9001/udp
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING"]
""", {"VERSION": "2.0"}, None),
    "multistage": ("""\
ARG BASE={base}
ARG FLAVOUR=slim
FROM $BASE AS build
ARG FLAVOUR
WORKDIR /build
COPY app /build/src
COPY config.ini ./etc/
ENV BUILD_FLAVOUR=${{FLAVOUR:-none}} UNSET=${{NOPE:-fallback}} ALT=${{FLAVOUR:+set}}

FROM ${{BASE}} AS final
COPY --from=build /build /opt/build
COPY --from=0 /build/etc/config.ini /etc/
WORKDIR relative/dir
WORKDIR ../other
CMD exec echo shell form
""", {"FLAVOUR": "full"}, None),
    "ignore_user_workdir": ("""\
FROM {base}
USER nobody
WORKDIR /home/nobody/work
COPY . .
USER root
ENTRYPOINT echo shell entrypoint
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
ONBUILD COPY . /onbuild
MAINTAINER Jane Doe <jane@example.org>
""", {}, "*.log\nsecret*\n!secret.pub\ndocs\n!docs/keep.md\n"),
    "shell_and_cmd_reset": ("""\
FROM {base}
SHELL ["/bin/sh", "-ec"]
CMD echo first
ENTRYPOINT ["/bin/echo"]
EXPOSE 53/udp 80
HEALTHCHECK NONE
""", {}, None),
    "run_steps": ("""\
FROM {base}
ARG WHO=docker
ENV GREETING=hello
RUN mkdir -p /srv/data && echo "$GREETING $WHO" > /srv/data/greeting && rm /bin/vi && chmod 0700 /srv/data
WORKDIR /srv/work
COPY app/run.sh .
RUN ["sh", "-c", "./run.sh > out.txt; ln -s out.txt link"]
USER 65534
RUN true
""", {"WHO": "both"}, None),
}


def write_context(ctx: Path, ignore: str | None) -> None:
    files = {"app/run.sh": "#!/bin/sh\necho run\n", "app/lib/util.sh": "echo util\n", "app/bin/tool": "tool\n",
             "config.ini": "[app]\nkey=value\n", "debug.log": "log\n", "secret.key": "k", "secret.pub": "p",
             "docs/keep.md": "keep", "docs/drop.md": "drop"}
    for rel, content in files.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(content)
    os.chmod(ctx / "app/run.sh", 0o755)
    os.chmod(ctx / "app/bin/tool", 0o750)
    os.symlink("run.sh", ctx / "app/run-link")
    if ignore is not None:
        (ctx / ".dockerignore").write_text(ignore)


def tree_of_view(view: MergedView) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    stack = [""]
    while stack:
        directory = stack.pop()
        for name in view.listdir(directory):
            rel = f"{directory}/{name}" if directory else name
            host = view.locate(rel)
            st = os.lstat(host)
            out[rel] = _entry(st.st_mode, st.st_uid, st.st_gid,
                              os.readlink(host) if stat.S_ISLNK(st.st_mode) else None,
                              host.read_bytes() if stat.S_ISREG(st.st_mode) else None)
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)
    return out


def _entry(mode: int, uid: int, gid: int, link: str | None, data: bytes | None) -> tuple:
    kind = "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode) else "other"
    digest = hashlib.sha256(data).hexdigest()[:16] if data is not None else ""
    return (kind, oct(stat.S_IMODE(mode)) if kind != "link" else "", uid, gid, link or "", digest)


def tree_of_docker(image: str, env: dict) -> dict[str, tuple]:
    name = f"dbcmp-{uuid.uuid4().hex[:8]}"
    _run(["docker", "create", "--name", name, image, "x"], env)
    try:
        data = subprocess.run(["docker", "export", name], capture_output=True, env=env, check=True, timeout=120).stdout
    finally:
        _run(["docker", "rm", "-f", name], env, check=False)
    out: dict[str, tuple] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            rel = member.name.strip("/").removeprefix("./")
            if not rel:
                continue
            mode = member.mode | (stat.S_IFDIR if member.isdir() else stat.S_IFLNK if member.issym() else
                                  stat.S_IFREG if member.isreg() else 0)
            content = archive.extractfile(member).read() if member.isreg() else None
            out[rel] = _entry(mode, member.uid, member.gid, member.linkname if member.issym() else None, content)
    return out


def _no_hash(created_by: str) -> str:
    """COPY/ADD history names content by a hash each builder computes its own way."""
    return re.sub(r"(COPY|ADD) (--chown=\S*?)?(file|dir|multi):[0-9a-f]{64}", r"\1 \2\3:<hash>", created_by)


def comparable(tree: dict[str, tuple]) -> dict[str, tuple]:
    return {k: v for k, v in tree.items()
            if k not in CONTAINER_ONLY and not any(k.startswith(p + "/") for p in ("dev", "proc", "sys"))}


@pytest.fixture(scope="module")
def bases(docker_env, busybox_tar):  # noqa: F811
    tag = f"dockerbank-cmp-busybox:{uuid.uuid4().hex[:8]}"
    _run(["docker", "import", "-c", 'CMD ["sh"]', str(busybox_tar), tag], docker_env)
    yield tag
    _run(["docker", "rmi", "-f", tag], docker_env, check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_config_and_tree_as_docker(case, engine, busybox, bases, docker_env, tmp_path):  # noqa: F811
    template, build_args, ignore = CASES[case]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    write_context(ctx, ignore)
    docker_tag = f"dockerbank-cmp-{case}:{uuid.uuid4().hex[:8]}"
    (ctx / "Dockerfile").write_text(template.format(base=bases))
    env = dict(docker_env, DOCKER_BUILDKIT="0")
    args = [a for k, v in build_args.items() for a in ("--build-arg", f"{k}={v}")]
    _run(["docker", "build", "-q", "-t", docker_tag, *args, str(ctx)], env, timeout=300)
    try:
        docker_config = __import__("json").loads(_run(["docker", "image", "inspect", docker_tag], env).stdout)[0]["Config"]
        docker_tree = comparable(tree_of_docker(docker_tag, env))
        docker_history = _run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", docker_tag],
                              env).stdout.splitlines()
    finally:
        _run(["docker", "rmi", "-f", docker_tag], env, check=False)
    # the very same Dockerfile: our busybox (same content) gets docker's base name too
    engine.images.tag(busybox.id, bases)
    with contexts.from_directory(ctx) as context:
        image_id = Builder(engine, run_step=run_step_for(engine), quiet=True).build(
            context, BuildOptions(build_args=dict(build_args)))
    ours = engine.images.image_config(image_id)["config"]
    for key in CONFIG_KEYS:
        assert (ours.get(key) or None) == (docker_config.get(key) or None), key
    ours_history = [h.get("created_by", "") for h in reversed(engine.images.image_config(image_id)["history"])]
    assert [_no_hash(h) for h in ours_history] == [_no_hash(h) for h in docker_history]
    our_tree = comparable(tree_of_view(MergedView(engine.images.layers.lower_dirs(engine.images.get(image_id).top_chain))))
    assert our_tree == docker_tree


def test_built_image_loads_and_runs_under_docker_and_podman(engine, busybox, docker_env, tmp_path, cli):  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    write_context(ctx, None)
    (ctx / "Dockerfile").write_text('FROM busybox\nCOPY app /app\nENV WHO=dockerbank\nCMD ["sh", "-c", "/app/run.sh; echo $WHO"]\n')
    tag = f"dockerbank-built:{uuid.uuid4().hex[:8]}"
    cli("build", "-q", "-t", tag, str(ctx))
    archive = tmp_path / "img.tar"
    cli("save", "-o", str(archive), tag)
    try:
        _run(["docker", "load", "-i", str(archive)], docker_env)
        out = _run(["docker", "run", "--rm", "--network", "none", tag], docker_env).stdout
        assert out.split() == ["run", "dockerbank"]
        history = _run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag], docker_env).stdout
        assert "/bin/sh -c #(nop)  ENV WHO=dockerbank" in history
        require_binary("podman")
        _run(["podman", "load", "-i", str(archive)])
        out = _run(["podman", *PODMAN_RUN, "run", "--rm", *PODMAN_RUN_OPTS, tag]).stdout
        assert out.split() == ["run", "dockerbank"]
    finally:
        _run(["docker", "rmi", "-f", tag], docker_env, check=False)
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True)
