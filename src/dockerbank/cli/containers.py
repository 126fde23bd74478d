"""Container commands: create, run, start, ps, stop, kill, restart, rm, logs, attach, inspect,
wait, rename, pause, unpause, top, stats and the ``container`` group.

Parsing and rendering only; the work is done by ``engine.containers`` (container.lifecycle).
"""

from __future__ import annotations

import json
import os
import sys
import time

import click

from dockerbank.cli.common import (
    engine_of,
    human_duration,
    human_size,
    parse_filters,
    print_formatted,
    print_table,
)
from dockerbank.container.views import (  # noqa: F401  (moved to the domain: the API shows the same)
    _command_text,
    _image_display,
    _ps_matches,
    _search,
    _since,
    inspect_container,
    status_text,
)
from dockerbank.errors import DockerbankError, InvalidArgument, NotFound, UsageError
from dockerbank.host.fs import tree_size

CONTEXT = {"help_option_names": ["--help"]}
RUN_CONTEXT = {"help_option_names": ["--help"], "allow_interspersed_args": False}

_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def ram_in_bytes(value: str | None, flag: str) -> int:
    """Docker's RAMInBytes: ``512m``, ``1g``, ``1024`` (bytes); ``-1`` means unlimited."""
    if value is None or value == "":
        return 0
    text = value.strip().lower()
    if text == "-1":
        return -1
    number, unit = text, "b"
    if text[-1:] == "b" and len(text) > 1 and text[-2] in _UNITS:
        text = text[:-1]
    if text[-1:] in _UNITS:
        number, unit = text[:-1], text[-1]
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError as exc:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: invalid size: \'{value}\'',
                              exit_code=125) from exc


def parse_env_file(path: str) -> list[str]:
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror.lower()}", exit_code=125) from exc
    result = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            if line in os.environ:
                result.append(f"{line}={os.environ[line]}")
            continue
        result.append(line)
    return result


def expand_env(values: tuple[str, ...]) -> list[str]:
    """``-e KEY=VALUE``, or ``-e KEY`` taking the value from this process's environment (dropped if unset)."""
    result = []
    for item in values:
        if "=" in item:
            if item.startswith("="):
                raise InvalidArgument(f"invalid environment variable: {item}", exit_code=125)
            result.append(item)
        elif item in os.environ:
            result.append(f"{item}={os.environ[item]}")
    return result


def parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, _, val = item.partition("=")
        labels[key] = val
    return labels


def create_options(func):
    """The flags shared by ``create`` and ``run``."""
    options = [
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--name", default=None, help="Assign a name to the container"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables"),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume"),
        click.option("--mount", multiple=True, help="Attach a filesystem mount to the container"),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory"),
        click.option("--volumes-from", multiple=True, help="Mount volumes from the specified container(s)"),
        click.option("-w", "--workdir", default=None, help="Working directory inside the container"),
        click.option("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-h", "--hostname", default=None, help="Container host name"),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("--security-opt", multiple=True, help="Security Options"),
        click.option("--device", multiple=True, help="Add a host device to the container"),
        click.option("--init", is_flag=True, help="Run an init inside the container"),
        click.option("--restart", default="no", help="Restart policy to apply when a container exits"),
        click.option("--rm", "auto_remove", is_flag=True, help="Automatically remove the container when it exits"),
        click.option("-m", "--memory", default=None, help="Memory limit"),
        click.option("--memory-swap", default=None, help="Swap limit equal to memory plus swap: '-1' for unlimited"),
        click.option("--cpus", default=None, help="Number of CPUs"),
        click.option("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)"),
        click.option("--pids-limit", type=int, default=0, help="Tune container pids limit (-1 for unlimited)"),
        click.option("--blkio-weight", type=int, default=0, help="Block IO (relative weight), 10 to 1000"),
        click.option("--network", "--net", "network", default="", help="Connect a container to a network"),
        click.option("--stop-signal", default=None, help="Signal to stop the container"),
        click.option("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container"),
        click.option("-a", "--attach", multiple=True, help="Attach to STDIN, STDOUT or STDERR"),
        click.option("--pull", "pull_policy", default="missing", type=click.Choice(["always", "missing", "never"]),
                     help='Pull image before running ("always"|"missing"|"never")'),
        click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
    ]
    for option in reversed(options):
        func = option(func)
    from dockerbank.cli.netflags import network_flags

    return network_flags(func)


def build_create_options(image: str, command: tuple[str, ...], kw: dict):
    from dockerbank.cli.netflags import network_options_from
    from dockerbank.container import mounts as mnt
    from dockerbank.container.lifecycle import CreateOptions

    env: list[str] = []
    for path in kw["env_file"]:
        env += parse_env_file(path)
    env += expand_env(kw["env"])
    cpus = 0
    if kw["cpus"]:
        try:
            cpus = int(float(kw["cpus"]) * 1e9)
        except ValueError as exc:
            raise InvalidArgument(f'invalid argument "{kw["cpus"]}" for "--cpus" flag', exit_code=125) from exc
    if kw["blkio_weight"] and not 10 <= kw["blkio_weight"] <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000", exit_code=125)
    memory = ram_in_bytes(kw["memory"], "--memory")
    if memory and 0 < memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB", exit_code=125)
    swap = ram_in_bytes(kw["memory_swap"], "--memory-swap")
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage", exit_code=125)
    entrypoint = None
    if kw["entrypoint"] is not None:
        entrypoint = [kw["entrypoint"]] if kw["entrypoint"] else []
    specs = mnt.parse_all(volumes=kw["volume"], mounts=kw["mount"], tmpfs=kw["tmpfs"])
    pids = kw["pids_limit"]
    return CreateOptions(
        image=image, command=list(command), entrypoint=entrypoint, name=kw["name"], env=env,
        workdir=kw["workdir"], user=kw["user"], hostname=kw["hostname"], labels=parse_labels(kw["label"]),
        tty=kw["tty"], interactive=kw["interactive"], mounts=specs, volumes_from=list(kw["volumes_from"]),
        read_only=kw["read_only"], privileged=kw["privileged"], cap_add=list(kw["cap_add"]),
        cap_drop=list(kw["cap_drop"]), security_opt=list(kw["security_opt"]), devices=list(kw["device"]),
        init=kw["init"], restart=kw["restart"], auto_remove=kw["auto_remove"], memory=memory, memory_swap=swap,
        nano_cpus=cpus, cpu_shares=kw["cpu_shares"], pids_limit=max(0, pids),
        blkio_weight=kw["blkio_weight"], network=kw["network"], stop_signal=kw["stop_signal"],
        network_options=network_options_from(kw),
        stop_timeout=kw["stop_timeout"], attach=[a.upper() for a in kw["attach"]],
    )


def ensure_image(engine, image: str, policy: str, quiet: bool) -> None:
    """Docker's ``--pull`` for ``run``/``create``: pull a missing image (``missing``, the default)
    or always; ``Unable to find image 'x:latest' locally`` and the pull's progress go to stderr."""
    from dockerbank.errors import NotFound

    if policy == "never":
        return
    if policy == "missing":
        try:
            engine.images.resolve(image)
            return
        except NotFound:
            pass
    from dockerbank.oci import reference as refs

    if not refs.looks_like_reference(image):
        return  # an ID (prefix): create reports "No such image"
    from dockerbank.registry.client.progress import BarProgress, LineProgress, Progress

    if policy == "missing" and not quiet:
        click.echo(f"Unable to find image '{refs.parse(image).familiar()}' locally", err=True)
    progress = Progress() if quiet else BarProgress(sys.stderr) if sys.stderr.isatty() else LineProgress(sys.stderr)
    try:
        engine.registry.pull(image, progress=progress)
    finally:
        progress.close()


def _engine_error_125(exc: DockerbankError) -> DockerbankError:
    """``run``/``create`` end with 125 for engine errors other than 126/127 (docker's rule)."""
    if exc.exit_code not in (125, 126, 127):
        exc.exit_code = 125
    return exc


@click.command("create", context_settings=RUN_CONTEXT)
@create_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create_cmd(ctx, image, command, **kw):
    """Create a new container."""
    engine = engine_of(ctx)
    try:
        opts = build_create_options(image, command, kw)
        ensure_image(engine, image, kw["pull_policy"], kw["quiet"])
        container = engine.containers.create(opts)
    except DockerbankError as exc:
        raise _engine_error_125(exc) from exc
    click.echo(container.id)


@click.command("run", context_settings=RUN_CONTEXT)
@create_options
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy received signals to the process")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_cmd(ctx, image, command, detach, sig_proxy, **kw):
    """Create and run a new container from an image."""
    engine = engine_of(ctx)
    if detach and kw["auto_remove"] is False and False:
        pass
    try:
        opts = build_create_options(image, command, kw)
        ensure_image(engine, image, kw["pull_policy"], kw["quiet"])
        service = engine.containers
        container = service.create(opts)
    except DockerbankError as exc:
        raise _engine_error_125(exc) from exc
    if detach:
        try:
            service.start(container.id)
        except DockerbankError as exc:
            _remove_after_failure(service, container, opts)
            raise _engine_error_125(exc) from exc
        click.echo(container.id)
        return
    try:
        attachment = service.start(container.id, attached=True, stdin=opts.interactive)
    except DockerbankError as exc:
        _remove_after_failure(service, container, opts)
        raise _engine_error_125(exc) from exc
    code = attachment.run(proxy_signals=sig_proxy)
    ctx.exit(code if code is not None else 0)


def _remove_after_failure(service, container, opts) -> None:
    if opts.auto_remove:
        try:
            service.remove(container.id, force=True)
        except DockerbankError:
            pass


@click.command("start", context_settings=CONTEXT)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start_cmd(ctx, attach, interactive, containers):
    """Start one or more stopped containers."""
    service = engine_of(ctx).containers
    if (attach or interactive) and len(containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    if attach or interactive:
        attachment = service.start(containers[0], attached=True, stdin=interactive)
        if attachment is None:
            return
        code = attachment.run()
        ctx.exit(code if code is not None else 0)
    failed = _each(containers, lambda ref: service.start(ref), echo=True)
    if failed:
        ctx.exit(1)


def _each(refs, action, echo: bool = True) -> bool:
    """Run ``action`` for each reference; errors are printed like docker's (one line each), return failed."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except DockerbankError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
            continue
        if echo:
            click.echo(ref)
    return failed


@click.command("stop", context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop_cmd(ctx, timeout, containers):
    """Stop one or more running containers."""
    service = engine_of(ctx).containers
    if _each(containers, lambda ref: service.stop(ref, timeout)):
        ctx.exit(1)


@click.command("kill", context_settings=CONTEXT)
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill_cmd(ctx, sig, containers):
    """Kill one or more running containers."""
    service = engine_of(ctx).containers
    from dockerbank.container.lifecycle import parse_signal

    parse_signal(sig)
    if _each(containers, lambda ref: service.kill(ref, sig)):
        ctx.exit(1)


@click.command("restart", context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart_cmd(ctx, timeout, containers):
    """Restart one or more containers."""
    service = engine_of(ctx).containers
    if _each(containers, lambda ref: service.restart(ref, timeout)):
        ctx.exit(1)


@click.command("rm", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container")
@click.option("-l", "--link", is_flag=True, hidden=True)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm_cmd(ctx, force, volumes, link, containers):
    """Remove one or more containers."""
    service = engine_of(ctx).containers
    if _each(containers, lambda ref: service.remove(ref, force=force, volumes=volumes)):
        ctx.exit(1)


@click.command("pause", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause_cmd(ctx, containers):
    """Pause all processes within one or more containers."""
    service = engine_of(ctx).containers
    if _each(containers, service.pause):
        ctx.exit(1)


@click.command("unpause", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause_cmd(ctx, containers):
    """Unpause all processes within one or more containers."""
    service = engine_of(ctx).containers
    if _each(containers, service.unpause):
        ctx.exit(1)


@click.command("wait", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait_cmd(ctx, containers):
    """Block until one or more containers stop, then print their exit codes."""
    service = engine_of(ctx).containers
    failed = False
    for ref in containers:
        try:
            click.echo(service.wait(ref))
        except DockerbankError as exc:
            click.echo(f"Error response from daemon: {exc.message}", err=True)
            failed = True
    if failed:
        ctx.exit(1)


@click.command("rename", context_settings=CONTEXT)
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename_cmd(ctx, container, new_name):
    """Rename a container."""
    engine_of(ctx).containers.rename(container, new_name)


@click.command("cleanup", context_settings=CONTEXT, hidden=True)
@click.argument("containers", nargs=-1)
@click.pass_context
def cleanup_cmd(ctx, containers):
    """(internal) conmon's exit command: record the exit, unmount, remove --rm containers."""
    service = engine_of(ctx).containers
    for cid in containers:
        try:
            service.cleanup(cid)
        except DockerbankError:
            pass


@click.command("exec", context_settings=RUN_CONTEXT)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--env-file", multiple=True, help="Read in a file of environment variables")
@click.option("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_cmd(ctx, interactive, tty, detach, env, env_file, user, workdir, privileged, container, command):
    """Execute a command in a running container."""
    service = engine_of(ctx).containers
    variables: list[str] = []
    for path in env_file:
        variables += parse_env_file(path)
    variables += expand_env(env)
    try:
        attachment = service.exec(container, list(command), interactive=interactive, tty=tty, detach=detach,
                                  env=variables, user=user, workdir=workdir, privileged=privileged)
    except DockerbankError as exc:
        if exc.exit_code not in (126, 127):
            exc.exit_code = 126 if "permission denied" in exc.message else exc.exit_code
        raise
    if attachment is None:
        return
    code = attachment.run()
    ctx.exit(code if code is not None else 0)


@click.command("top", context_settings=RUN_CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top_cmd(ctx, container, ps_args):
    """Display the running processes of a container."""
    from dockerbank.container.top import render_top, run_top
    from dockerbank.host.cgroups import container_cgroups_path, pids_of

    service = engine_of(ctx).containers
    found = service.get(container)
    if found.state.status not in ("running", "paused"):
        raise DockerbankError(f"Container {found.id} is not running")
    pids = pids_of(container_cgroups_path(found.id)) or [found.state.pid]
    result = run_top(pids, list(ps_args) or None)
    click.echo(render_top(result), nl=False)


@click.command("stats", context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--format", "fmt", default=None, help="Pretty-print images using a Go template")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats_cmd(ctx, show_all, no_stream, no_trunc, fmt, containers):
    """Display a live stream of container(s) resource usage statistics."""
    from dockerbank.container import stats as st
    from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

    service = engine_of(ctx).containers
    layout = detect_layout()
    if containers:
        chosen = [service.get(ref) for ref in containers]
    else:
        chosen = [c for c in service.list() if show_all or c.state.status in ("running", "paused")]
    previous: dict[str, object] = {}

    def sample(c):
        if c.state.status not in ("running", "paused"):
            return None
        try:
            return st.read_sample(Cgroup(layout, container_cgroups_path(c.id)), c.state.pid)
        except DockerbankError:
            return None

    def render() -> None:
        rows = []
        for c in chosen:
            current = sample(c)
            rows.append(st.stats_row(c.id, c.name, current, previous.get(c.id), no_trunc=no_trunc))
            if current is not None:
                previous[c.id] = current
        if fmt:
            print_formatted(rows, fmt, lambda items: None)
        else:
            click.echo(st.render_stats_table(rows), nl=False)

    for c in chosen:
        current = sample(c)
        if current is not None:
            previous[c.id] = current
    time.sleep(1.0 if chosen else 0)
    if no_stream:
        render()
        return
    try:
        while True:
            click.echo("\033[2J\033[H", nl=False)
            render()
            time.sleep(1.0)
    except KeyboardInterrupt:
        return


@click.command("cp", context_settings=CONTEXT)
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.argument("src")
@click.argument("dest")
@click.pass_context
def cp_cmd(ctx, archive, follow_link, quiet, src, dest):
    """Copy files/folders between a container and the local filesystem."""
    from dockerbank.container import fileops

    service = engine_of(ctx).containers
    src_ctr, src_path = fileops.split_cp_arg(src)
    dest_ctr, dest_path = fileops.split_cp_arg(dest)
    if src_ctr and dest_ctr:
        raise UsageError("copying between containers is not supported")
    if not src_ctr and not dest_ctr:
        raise UsageError("must specify at least one container source")
    if src_ctr:
        fileops.copy_from(service, src_ctr, src_path, dest_path, follow_link=follow_link,
                          out=sys.stdout.buffer if dest_path == "-" else None)
    else:
        fileops.copy_to(service, dest_ctr, src_path, dest_path, follow_link=follow_link, archive=archive,
                        stdin=sys.stdin.buffer if src_path == "-" else None)


@click.command("diff", context_settings=CONTEXT)
@click.argument("container")
@click.pass_context
def diff_cmd(ctx, container):
    """Inspect changes to files or directories on a container's filesystem."""
    from dockerbank.container import fileops

    for change in fileops.diff(engine_of(ctx).containers, container):
        click.echo(str(change))


@click.command("export", context_settings=CONTEXT)
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT")
@click.argument("container")
@click.pass_context
def export_cmd(ctx, output, container):
    """Export a container's filesystem as a tar archive."""
    from dockerbank.container import fileops

    service = engine_of(ctx).containers
    if output is None:
        if sys.stdout.isatty():
            raise DockerbankError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        fileops.export(service, container, sys.stdout.buffer)
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            fileops.export(service, container, handle)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- logs and attach ---------------------------------------------------------------------

@click.command("logs", context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help='Number of lines to show from the end of the logs (default "all")')
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", default=None, help="Show logs since timestamp or relative (e.g. 42m)")
@click.option("--until", default=None, help="Show logs before a timestamp or relative (e.g. 42m)")
@click.option("--details", is_flag=True, hidden=True)
@click.argument("container")
@click.pass_context
def logs_cmd(ctx, follow, tail, timestamps, since, until, details, container):
    """Fetch the logs of a container."""
    from dockerbank.container import logs

    service = engine_of(ctx).containers
    found = service.get(container)
    tail_n = None
    if tail not in ("all", ""):
        try:
            tail_n = int(tail)
        except ValueError as exc:
            raise InvalidArgument(f'invalid value for "tail": {tail}') from exc
        if tail_n < 0:
            tail_n = None
    path = str(service.log_path(found.id))
    entries, offset = logs.read_entries(path, tail=tail_n, since=logs.parse_since(since),
                                        until=logs.parse_since(until))
    for entry in entries:
        logs.write_entry(entry, timestamps)
    if follow and found.state.status in ("running", "paused"):
        from dockerbank.runtime.conmon import alive

        state = found.state
        for entry in logs.follow(path, offset, lambda: alive(state.conmon_pid, state.conmon_start),
                                 until=logs.parse_since(until)):
            if since is None or entry.epoch >= logs.parse_since(since):
                logs.write_entry(entry, timestamps)
        service.reconcile(found)


@click.command("attach", context_settings=CONTEXT)
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.option("--detach-keys", default=None, hidden=True)
@click.argument("container")
@click.pass_context
def attach_cmd(ctx, no_stdin, sig_proxy, detach_keys, container):
    """Attach local standard input, output, and error streams to a running container."""
    from dockerbank.container.lifecycle import Attachment
    from dockerbank.runtime import conmon

    service = engine_of(ctx).containers
    found = service.get(container)
    if found.state.status not in ("running", "paused"):
        raise DockerbankError("You cannot attach to a stopped container, start it first")
    work = service.dir(found.id)
    sock = conmon.connect_attach(work)
    attachment = Attachment(service, found.id, work, sock, found.state.conmon_pid, found.state.conmon_start,
                            found.config.tty, found.config.open_stdin and not no_stdin)
    code = attachment.run(proxy_signals=sig_proxy)
    ctx.exit(code if code is not None else 0)


# --- ps ------------------------------------------------------------------------------------

@click.command("ps", context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default=None, help="Pretty-print containers using a Go template")
@click.pass_context
def ps_cmd(ctx, show_all, quiet, size, last, latest, no_trunc, filters, fmt):
    """List containers."""
    engine = engine_of(ctx)
    service = engine.containers
    wanted = parse_filters(filters, {"name", "label", "status", "ancestor", "id", "exited"})
    containers = service.list()
    if latest:
        last = 1
    if last > 0:
        containers = containers[:last]
        show_all = True
    if not show_all and "status" not in wanted and "exited" not in wanted:
        containers = [c for c in containers if c.state.status in ("running", "paused", "restarting")]
    image_ids = {}
    if "ancestor" in wanted:
        for ref in wanted["ancestor"]:
            try:
                image_ids[ref] = engine.images.resolve(ref).id
            except DockerbankError:
                pass
    containers = [c for c in containers if _ps_matches(c, wanted, image_ids)]
    if quiet:
        for c in containers:
            click.echo(c.id if no_trunc else c.short_id)
        return
    now = time.time()
    truncate = not no_trunc
    from dockerbank.network.runtime import ps_ports

    rows = []
    for c in containers:
        row = {
            "ID": c.id if no_trunc else c.short_id,
            "Image": _image_display(c, truncate),
            "Command": _command_text(c, truncate),
            "CreatedAt": c.created,
            "RunningFor": human_duration(_since(c.created, now)) + " ago",
            "Ports": ps_ports(engine, c),
            "State": c.state.status,
            "Status": status_text(c, now),
            "Names": c.name,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(c.config.labels.items())),
            "Mounts": ",".join(m.get("source") or m.get("target", "") for m in c.config.mounts),
            "Networks": c.config.network_mode,
            "Size": "",
        }
        if size or (fmt and ".Size" in fmt):
            upper = tree_size(service.dir(c.id) / "upper")
            try:
                virtual = engine.images.get(c.config.image_id).size + upper
            except DockerbankError:
                virtual = upper
            row["Size"] = f"{human_size(upper)} (virtual {human_size(virtual)})"
        rows.append(row)

    def table(items):
        headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        if size:
            headers.append("SIZE")
            keys.append("Size")
        print_table(headers, [[r[k] for k in keys] for r in items])

    print_formatted(rows, fmt, table)


# --- inspect --------------------------------------------------------------------------------

def _image_inspect(engine, name: str) -> dict | None:
    """The images helper's inspect (image.inspect.inspect_image) for names that are not containers."""
    from dockerbank.image.inspect import inspect_image

    return inspect_image(engine.images, name)


@click.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None, help="Format the output using the given Go template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container")
@click.option("--type", "kind", default=None, type=click.Choice(["container", "image"]), help="Return JSON for specified type")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect_cmd(ctx, fmt, size, kind, names):
    """Return low-level information on Docker objects."""
    _inspect(ctx, fmt, size, kind, names)


def _inspect(ctx, fmt, size, kind, names) -> None:
    from dockerbank.cli.common import render_template

    engine = engine_of(ctx)
    results, errors = [], []
    for name in names:
        try:
            if kind != "image":
                try:
                    results.append(inspect_container(engine, engine.containers.get(name), size))
                    continue
                except NotFound:
                    if kind == "container":
                        raise
            found = _image_inspect(engine, name)
            if found is None:
                raise NotFound(f"No such object: {name}")
            results.append(found)
        except (NotFound, InvalidArgument):
            errors.append(f"Error: No such {'container' if kind == 'container' else 'object'}: {name}")
    if fmt:
        for item in results:
            click.echo(render_template(fmt, item))
    else:
        click.echo(json.dumps(results, indent=4))
    for line in errors:
        click.echo(line, err=True)
    if errors:
        ctx.exit(1)


@click.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None, help="Format the output using the given Go template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def container_inspect_cmd(ctx, fmt, size, names):
    """Display detailed information on one or more containers."""
    _inspect(ctx, fmt, size, "container", names)


@click.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. 'until=<timestamp>')")
@click.pass_context
def prune_cmd(ctx, force, filters):
    """Remove all stopped containers."""
    from dockerbank.container.logs import parse_since
    from dockerbank.volume.store import match_label

    wanted = parse_filters(filters, {"until", "label"})
    if not force:
        click.echo("WARNING! This will remove all stopped containers.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    engine = engine_of(ctx)
    service = engine.containers
    until = parse_since(wanted["until"][0]) if wanted.get("until") else None
    removed, reclaimed = [], 0
    for c in service.list():
        if c.state.status in ("running", "paused", "restarting"):
            continue
        if until is not None and _since(c.created, 0) and __import__(
                "dockerbank.container.logs", fromlist=["parse_time"]).parse_time(c.created) > until:
            continue
        if "label" in wanted and not all(match_label(c.config.labels, v) for v in wanted["label"]):
            continue
        reclaimed += tree_size(service.dir(c.id) / "upper")
        try:
            service.remove(c.id)
            removed.append(c.id)
        except DockerbankError as exc:
            click.echo(f"Error: {exc.message}", err=True)
    if removed:
        click.echo("Deleted Containers:")
        for cid in removed:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


@click.command("ls", context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("-s", "--size", is_flag=True)
@click.option("-n", "--last", type=int, default=-1)
@click.option("-l", "--latest", is_flag=True)
@click.option("--no-trunc", is_flag=True)
@click.option("-f", "--filter", "filters", multiple=True)
@click.option("--format", "fmt", default=None)
@click.pass_context
def ls_cmd(ctx, **kw):
    """List containers."""
    ctx.invoke(ps_cmd, **kw)


COMMANDS: dict[str, click.Command] = {
    "create": create_cmd, "run": run_cmd, "start": start_cmd, "ps": ps_cmd, "stop": stop_cmd, "kill": kill_cmd,
    "restart": restart_cmd, "rm": rm_cmd, "logs": logs_cmd, "attach": attach_cmd, "inspect": inspect_cmd,
    "wait": wait_cmd, "rename": rename_cmd, "pause": pause_cmd, "unpause": unpause_cmd, "exec": exec_cmd,
    "top": top_cmd, "stats": stats_cmd, "cp": cp_cmd, "diff": diff_cmd, "export": export_cmd,
}


@click.group("container", context_settings=CONTEXT)
def container_group():
    """Manage containers."""


for _name, _command in list(COMMANDS.items()):
    if _name != "inspect":
        container_group.add_command(_command, _name)
container_group.add_command(container_inspect_cmd, "inspect")
container_group.add_command(ls_cmd, "ls")
container_group.add_command(ls_cmd, "list")
container_group.add_command(prune_cmd, "prune")
container_group.add_command(cleanup_cmd, "cleanup")
COMMANDS["container"] = container_group
