"""Builds without RUN against a real store: COPY/ADD/ENV/WORKDIR/multi-stage, the layer cache, history."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockerbank.build import context as contexts
from dockerbank.build.executor import Builder, BuildOptions
from dockerbank.build.rootfs import MergedView
from dockerbank.errors import DockerbankError, NotSupported, Offline


def write(root: Path, files: dict[str, str | bytes], mode: int | None = None) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        if mode is not None:
            os.chmod(path, mode)


def build(engine, ctx: Path, dockerfile: str | None = None, **opts) -> tuple[str, list[str]]:
    lines: list[str] = []
    if dockerfile is not None:
        (ctx / "Dockerfile").write_text(dockerfile)
    with contexts.from_directory(ctx) as context:
        image_id = Builder(engine, lines.append).build(context, BuildOptions(**opts))
    return image_id, lines


def view_of(engine, image_id: str) -> MergedView:
    return MergedView(engine.images.layers.lower_dirs(engine.images.get(image_id).top_chain))


def container_config(engine, image_id: str) -> dict:
    return engine.images.image_config(image_id)["config"]


APP = """\
FROM busybox
ENV APP_HOME=/srv/app \\
    GREETING="hello world"
WORKDIR $APP_HOME
COPY app/ ./
COPY --chown=1000:1000 config.ini /etc/app/
ARG VERSION=0.1
LABEL org.opencontainers.image.version=$VERSION maintainer="ops team"
USER 1000:1000
EXPOSE 8080 9000-9001/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING"]
"""


@pytest.fixture
def app_ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    write(ctx, {"app/main.sh": "echo main\n", "app/lib/util.sh": "echo util\n", "config.ini": "[app]\n"})
    os.chmod(ctx / "app/main.sh", 0o755)
    return ctx


def test_build_config_and_files(engine, busybox, app_ctx):
    image_id, lines = build(engine, app_ctx, APP, tags=["app:1"], build_args={"VERSION": "2.0"})
    assert engine.images.resolve("app:1").id == image_id
    cfg = container_config(engine, image_id)
    assert cfg["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "APP_HOME=/srv/app", "GREETING=hello world"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["User"] == "1000:1000"
    assert cfg["Labels"] == {"org.opencontainers.image.version": "2.0", "maintainer": "ops team"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9000/udp": {}, "9001/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo $GREETING"]
    view = view_of(engine, image_id)
    assert view.listdir("srv/app") == ["lib", "main.sh"]
    main = view.lstat("srv/app/main.sh")
    assert stat.S_IMODE(main.st_mode) == 0o755 and (main.st_uid, main.st_gid) == (0, 0)
    ini = view.lstat("etc/app/config.ini")
    assert (ini.st_uid, ini.st_gid) == (1000, 1000)
    assert view.read_text("srv/app/lib/util.sh") == "echo util\n"
    assert view.lstat("bin/busybox") is not None  # the base image's files are still there
    assert lines[0].startswith("Sending build context to Dockerbank")
    assert "Step 1/13 : FROM busybox" in lines
    assert "Step 5/13 : COPY --chown=1000:1000 config.ini /etc/app/" in lines
    assert lines[-2:] == [f"Successfully built {image_id[7:19]}", "Successfully tagged app:1"]


def test_history_created_by_like_docker(engine, busybox, app_ctx, cli):
    image_id, _ = build(engine, app_ctx, APP)
    history = engine.images.image_config(image_id)["history"]
    created_by = [h["created_by"] for h in history[1:]]
    assert created_by[0] == "/bin/sh -c #(nop)  ENV APP_HOME=/srv/app GREETING=hello world"
    assert created_by[1] == "/bin/sh -c #(nop) WORKDIR /srv/app"
    assert created_by[2].startswith("/bin/sh -c #(nop) COPY dir:") and created_by[2].endswith(" in ./ ")
    assert created_by[3].startswith("/bin/sh -c #(nop) COPY --chown=1000:1000file:") and created_by[3].endswith(" in /etc/app/ ")
    assert created_by[4] == "/bin/sh -c #(nop)  ARG VERSION=0.1"
    assert created_by[-1] == '/bin/sh -c #(nop)  CMD ["echo $GREETING"]'
    empty = [h.get("empty_layer", False) for h in history[1:]]
    assert empty == [True, False, False, False] + [True] * 8
    # WORKDIR created the directory, so it made a layer, as in docker
    assert len(engine.images.image_config(image_id)["rootfs"]["diff_ids"]) == 4
    out = cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", image_id).stdout.decode().splitlines()
    assert out[0] == '/bin/sh -c #(nop)  CMD ["echo $GREETING"]'
    assert "/bin/sh -c #(nop) WORKDIR /srv/app" in out


def test_cache_reused_and_invalidated(engine, busybox, app_ctx):
    first, _ = build(engine, app_ctx, APP)
    second, lines = build(engine, app_ctx, APP)
    assert second == first
    assert lines.count(" ---> Using cache") == 12
    # mtime alone does not invalidate (like docker's tarsum)
    os.utime(app_ctx / "config.ini", (1, 1))
    assert build(engine, app_ctx, APP)[0] == first
    # a changed content invalidates from that COPY on
    (app_ctx / "config.ini").write_text("[app]\nchanged=1\n")
    third, lines = build(engine, app_ctx, APP)
    assert third != first
    assert lines.count(" ---> Using cache") == 3  # ENV, WORKDIR, COPY app/
    # a changed mode invalidates too
    os.chmod(app_ctx / "app/main.sh", 0o700)
    fourth, lines = build(engine, app_ctx, APP)
    assert fourth not in (first, third)
    assert lines.count(" ---> Using cache") == 2
    assert stat.S_IMODE(view_of(engine, fourth).lstat("srv/app/main.sh").st_mode) == 0o700
    # --no-cache builds everything again
    _, lines = build(engine, app_ctx, APP, no_cache=True)
    assert " ---> Using cache" not in lines
    # a different build arg changes the steps that use it
    _, lines = build(engine, app_ctx, APP, build_args={"VERSION": "9"})
    assert lines.count(" ---> Using cache") == 5


def test_multi_stage_keeps_only_the_final_stage(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"src/big.bin": b"x" * 4096, "src/tool.sh": "echo tool\n"})
    dockerfile = """\
FROM busybox AS builder
COPY src/ /build/
ENV BUILT=yes

FROM busybox AS unused
COPY src/big.bin /never

FROM scratch
COPY --from=builder /build/tool.sh /bin/tool.sh
COPY --from=0 /bin/busybox /bin/busybox
CMD ["/bin/busybox", "sh", "/bin/tool.sh"]
"""
    image_id, lines = build(engine, ctx, dockerfile)
    assert not any("unused" in line or "/never" in line for line in lines)
    config = engine.images.image_config(image_id)
    assert len(config["rootfs"]["diff_ids"]) == 2
    view = view_of(engine, image_id)
    assert sorted(view.listdir("")) == ["bin"]
    assert view.listdir("bin") == ["busybox", "tool.sh"]
    assert "BUILT=yes" not in (config["config"].get("Env") or [])
    # --target builds the named stage and what it needs only
    target_id, lines = build(engine, ctx, dockerfile, target="unused")
    assert view_of(engine, target_id).read_text("never") == "x" * 4096
    assert not any("builder" in line for line in lines)


def test_arg_scope_in_from_and_stages(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile = """\
ARG BASE=busybox
ARG TAG=latest
FROM ${BASE}:${TAG}
ARG TAG
ARG LOCAL=default
ENV FROM_META=${BASE}-${TAG} LOCAL_SEEN=$LOCAL
ENV LOCAL=env-wins
LABEL local=$LOCAL
"""
    image_id, _ = build(engine, ctx, dockerfile, build_args={"LOCAL": "cli"})
    cfg = container_config(engine, image_id)
    # BASE was not redeclared: empty inside the stage; TAG was
    assert "FROM_META=-latest" in cfg["Env"] and "LOCAL_SEEN=cli" in cfg["Env"]
    assert cfg["Labels"] == {"local": "env-wins"}


def test_dockerignore_and_excluded_dockerfile(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"keep.txt": "k", "secret.key": "s", "logs/a.log": "l", "docs/README.md": "r", "docs/other.md": "o",
                ".dockerignore": "*.key\n**/*.log\ndocs\n!docs/README.md\nDockerfile\n.dockerignore\n"})
    image_id, _ = build(engine, ctx, "FROM busybox\nCOPY . /ctx/\n")
    view = view_of(engine, image_id)
    assert view.listdir("ctx") == ["docs", "keep.txt", "logs"]
    assert view.listdir("ctx/docs") == ["README.md"]
    assert view.listdir("ctx/logs") == []
    with pytest.raises(DockerbankError, match="Dockerfile:2: COPY failed: file not found in build context or excluded"):
        build(engine, ctx, "FROM busybox\nCOPY secret.key /\n")


def test_copy_rules(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"a.txt": "a", "b.txt": "b", "c.md": "c", "dir/x": "x", "dir/sub/y": "y"})
    os.symlink("a.txt", ctx / "link")
    dockerfile = """\
FROM busybox
COPY a.txt /file-as-name
COPY a.txt /into/
COPY *.txt /globbed/
COPY dir /dircontents
COPY link /links/
COPY --chmod=0600 b.txt /modes/b
WORKDIR /rel
COPY c.md .
COPY ["dir/x", "with space/"]
"""
    image_id, _ = build(engine, ctx, dockerfile)
    view = view_of(engine, image_id)
    assert view.read_text("file-as-name") == "a"
    assert view.listdir("into") == ["a.txt"]
    assert view.listdir("globbed") == ["a.txt", "b.txt"]
    assert view.listdir("dircontents") == ["sub", "x"] and view.read_text("dircontents/sub/y") == "y"
    assert os.readlink(view.locate("links/link")) == "a.txt"
    assert stat.S_IMODE(view.lstat("modes/b").st_mode) == 0o600
    assert view.read_text("rel/c.md") == "c"
    assert view.read_text("rel/with space/x") == "x"
    with pytest.raises(DockerbankError, match="must be a directory and end with a /"):
        build(engine, ctx, "FROM busybox\nCOPY a.txt b.txt /nodir\n")
    with pytest.raises(DockerbankError, match="no source files were specified"):
        build(engine, ctx, "FROM busybox\nCOPY *.none /x/\n")


def test_copy_heredoc_expansion(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile = 'FROM busybox\nENV NAME=world\nCOPY <<EOF /greeting\nhello $NAME\nEOF\nCOPY <<"EOF" /raw\nhello $NAME\nEOF\n' \
                 "COPY <<one <<two /multi/\n1\none\n2\ntwo\n"
    image_id, _ = build(engine, ctx, dockerfile)
    view = view_of(engine, image_id)
    assert view.read_text("greeting") == "hello world\n"
    assert view.read_text("raw") == "hello $NAME\n"
    assert view.listdir("multi") == ["one", "two"] and view.read_text("multi/two") == "2\n"


def test_add_extracts_local_tar_and_refuses_urls(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("pkg/data.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"data"))
    (ctx / "pkg.tar.gz").write_bytes(buffer.getvalue())
    (ctx / "plain.txt").write_text("p")
    image_id, _ = build(engine, ctx, "FROM busybox\nADD pkg.tar.gz /opt/\nADD plain.txt /opt/\nCOPY pkg.tar.gz /kept/\n")
    view = view_of(engine, image_id)
    assert view.read_text("opt/pkg/data.txt") == "data"
    assert view.read_text("opt/plain.txt") == "p"
    assert view.listdir("kept") == ["pkg.tar.gz"]
    with pytest.raises(Offline, match="Dockerfile:2: ADD failed: downloading https://example.org/x.tgz"):
        build(engine, ctx, "FROM busybox\nADD https://example.org/x.tgz /x\n")


def test_onbuild_triggers_run_in_the_child(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"payload": "p"})
    parent, _ = build(engine, ctx, "FROM busybox\nONBUILD COPY payload /from-trigger\nONBUILD ENV TRIGGERED=1\n", tags=["parent:1"])
    assert container_config(engine, parent)["OnBuild"] == ["COPY payload /from-trigger", "ENV TRIGGERED=1"]
    child, lines = build(engine, ctx, "FROM parent:1\nLABEL child=yes\n")
    assert "# Executing 2 build triggers" in lines
    assert view_of(engine, child).read_text("from-trigger") == "p"
    cfg = container_config(engine, child)
    assert "TRIGGERED=1" in cfg["Env"] and not cfg.get("OnBuild")


def test_errors_name_the_line_and_store_nothing_new(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    before = {r.id for r in engine.images.list()}
    with pytest.raises(DockerbankError, match="^Dockerfile:3: unknown instruction: RUNN$"):
        build(engine, ctx, "FROM busybox\nENV A=1\nRUNN echo\n")
    with pytest.raises(DockerbankError, match="no build stage"):
        build(engine, ctx, "ENV A=1\n")
    with pytest.raises(DockerbankError, match="Dockerfile:1: pull access denied or image not found"):
        build(engine, ctx, "FROM no-such-image:1\n")
    assert {r.id for r in engine.images.list()} == before
    with pytest.raises(NotSupported, match="Dockerfile:2: RUN --mount needs BuildKit"):
        build(engine, ctx, "FROM busybox\nRUN --mount=type=cache,target=/c true\n")


def test_cli_build_quiet_iidfile_stdin_and_tar_context(busybox, cli, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY hello /hello\nLABEL via=dir\n", "hello": "hi"})
    result = cli("build", "-q", "--iidfile", str(tmp_path / "iid"), "-t", "q:1", "-t", "q:2", str(ctx))
    image_id = result.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert (tmp_path / "iid").read_text() == image_id
    out = cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.decode()
    assert f"q:1 {image_id[7:19]}" in out and f"q:2 {image_id[7:19]}" in out
    # the Dockerfile from stdin, the context from the directory
    result = cli("build", "-f", "-", "-t", "stdin:1", str(ctx), input=b"FROM busybox\nCOPY hello /from-stdin\n")
    assert "Successfully tagged stdin:1" in result.stdout.decode()
    # a tar context on stdin
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(ctx / "Dockerfile", "Dockerfile")
        archive.add(ctx / "hello", "hello")
    result = cli("build", "-t", "tarctx:1", "--label", "extra=1", "-", input=buffer.getvalue())
    assert "Successfully tagged tarctx:1" in result.stdout.decode()
    inspect = json.loads(cli("image", "inspect", "tarctx:1").stdout)
    assert inspect[0]["Config"]["Labels"] == {"via": "dir", "extra": "1"}
    # errors: one line, exit code 1
    (ctx / "Dockerfile").write_text("FROM busybox\nBOGUS x\n")
    result = cli("build", str(ctx), check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == "Error: Dockerfile:2: unknown instruction: BOGUS"


def test_copy_follows_symlinked_directories_of_the_image(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"usr/lib/base.so": "b", "tool": "t", "dir/inner": "i"})
    os.symlink("usr/lib", ctx / "lib")
    # like Debian's merged /usr: /lib is a symlink to usr/lib
    image_id, _ = build(engine, ctx, "FROM busybox\nCOPY usr /usr\nCOPY lib /lib\nCOPY tool /lib/\nCOPY dir /lib/sub/\n")
    view = view_of(engine, image_id)
    assert os.readlink(view.locate("lib")) == "usr/lib"
    assert view.listdir("usr/lib") == ["base.so", "sub", "tool"]
    assert view.read_text("usr/lib/sub/inner") == "i"


def test_intermediate_images_are_known(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"f": "x"})
    image_id, _ = build(engine, ctx, "FROM busybox\nENV A=1\nCOPY f /f\nLABEL l=1\n", tags=["final:1"])
    hidden = engine.images.intermediate_ids()
    history_parents = {r.id for r in engine.images.list()} - {image_id, busybox.id}
    assert hidden == history_parents and len(hidden) == 2
    assert busybox.id not in hidden and image_id not in hidden


def test_large_file_digests_are_cached_but_follow_changes(engine, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"big.bin": os.urandom(2 << 20)})
    dockerfile = "FROM busybox\nCOPY big.bin /big.bin\n"
    first, _ = build(engine, ctx, dockerfile)
    assert engine.db.query_one("SELECT COUNT(*) AS n FROM build_cache WHERE key LIKE 'file:%'")["n"] == 1
    assert build(engine, ctx, dockerfile)[0] == first
    # same size, new content: the ctime/mtime change makes it hash again
    with open(ctx / "big.bin", "r+b") as handle:
        handle.write(b"changed!")
    second, lines = build(engine, ctx, dockerfile)
    assert second != first and " ---> Using cache" not in lines
    assert view_of(engine, second).locate("big.bin").read_bytes()[:8] == b"changed!"


def test_parents_for_history(engine, busybox, tmp_path):
    from dockerbank.image.inspect import MISSING, history_rows, inspect_image

    ctx = tmp_path / "ctx"
    write(ctx, {"f": "x"})
    image_id, _ = build(engine, ctx, "FROM busybox\nENV A=1\nCOPY f /f\n")
    middle = engine.images.parent_of(image_id)
    assert middle is not None and engine.images.parent_of(middle) == busybox.id
    ids = [row["id"] for row in history_rows(engine.images, engine.images.get(image_id))]
    assert ids == [image_id, middle, busybox.id] + [MISSING] * (len(ids) - 3)
    assert inspect_image(engine.images, image_id)["Parent"] == middle


def test_from_platform(engine, busybox, tmp_path):
    from dockerbank.oci.imageconfig import host_arch

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    assert build(engine, ctx, f"FROM --platform=linux/{host_arch()} busybox\n")[0] == busybox.id
    with pytest.raises(NotSupported, match="Dockerfile:1: FROM --platform=linux/s390x"):
        build(engine, ctx, "FROM --platform=linux/s390x busybox\n")


def test_images_hides_intermediates_unless_all(cli, busybox_tar, tmp_path):
    cli("import", str(busybox_tar), "busybox:latest")
    ctx = tmp_path / "ctx"
    write(ctx, {"f": "x", "Dockerfile": "FROM busybox\nENV A=1\nCOPY f /f\nLABEL l=1\n"})
    final = cli("build", "-q", "-t", "final:1", str(ctx)).stdout.decode().strip()
    shown = cli("images", "-q", "--no-trunc").stdout.decode().split()
    everything = cli("images", "-a", "-q", "--no-trunc").stdout.decode().split()
    assert final in shown and len(shown) == 2
    assert set(shown) < set(everything) and len(everything) == 4
