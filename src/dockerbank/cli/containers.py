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

from dockerbank.cli import container_commands as commands
from dockerbank.cli.clickflags import click_options
from dockerbank.cli.common import engine_of, human_size, parse_filters, print_formatted
from dockerbank.cli.container_commands import each
from dockerbank.cli.container_flags import CREATE_FLAGS, EXEC_FLAGS, PS_FLAGS, RM_FLAGS, RUN_FLAGS, START_FLAGS
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


@click.command("create", context_settings=RUN_CONTEXT)
@click_options(CREATE_FLAGS)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create_cmd(ctx, **kw):
    """Create a new container."""
    ctx.exit(commands.create(engine_of(ctx), kw))


@click.command("run", context_settings=RUN_CONTEXT)
@click_options(RUN_FLAGS)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_cmd(ctx, **kw):
    """Create and run a new container from an image."""
    ctx.exit(commands.run(engine_of(ctx), kw))


@click.command("start", context_settings=CONTEXT)
@click_options(START_FLAGS)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start_cmd(ctx, **kw):
    """Start one or more stopped containers."""
    ctx.exit(commands.start(engine_of(ctx), kw))


@click.command("stop", context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop_cmd(ctx, timeout, containers):
    """Stop one or more running containers."""
    service = engine_of(ctx).containers
    if each(containers, lambda ref: service.stop(ref, timeout)):
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
    if each(containers, lambda ref: service.kill(ref, sig)):
        ctx.exit(1)


@click.command("restart", context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart_cmd(ctx, timeout, containers):
    """Restart one or more containers."""
    service = engine_of(ctx).containers
    if each(containers, lambda ref: service.restart(ref, timeout)):
        ctx.exit(1)


@click.command("rm", context_settings=CONTEXT)
@click_options(RM_FLAGS)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm_cmd(ctx, **kw):
    """Remove one or more containers."""
    ctx.exit(commands.remove(engine_of(ctx), kw))


@click.command("pause", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause_cmd(ctx, containers):
    """Pause all processes within one or more containers."""
    service = engine_of(ctx).containers
    if each(containers, service.pause):
        ctx.exit(1)


@click.command("unpause", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause_cmd(ctx, containers):
    """Unpause all processes within one or more containers."""
    service = engine_of(ctx).containers
    if each(containers, service.unpause):
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
            click.echo(f"Error: {exc.message}", err=True)
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
def cleanup_cmd(ctx, **kw):
    """(internal) conmon's exit command: record the exit, unmount, remove --rm containers."""
    ctx.exit(commands.cleanup(engine_of(ctx), kw))


@click.command("exec", context_settings=RUN_CONTEXT)
@click_options(EXEC_FLAGS)
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_cmd(ctx, **kw):
    """Execute a command in a running container."""
    ctx.exit(commands.exec_in(engine_of(ctx), kw))


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
    previous: dict[str, st.StatsSample] = {}

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
    elif dest_ctr:  # always: one side is a container (checked above)
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
    if (found.config.log_config or {}).get("Type") == "none":
        from dockerbank.errors import NotSupported

        raise NotSupported("configured logging driver does not support reading")
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
        since_epoch = logs.parse_since(since)  # once: a duration counts back from when the command started
        for entry in logs.follow(path, offset, lambda: alive(state.conmon_pid, state.conmon_start),
                                 until=logs.parse_since(until)):
            if since_epoch is None or entry.epoch >= since_epoch:
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
@click_options(PS_FLAGS)
@click.pass_context
def ps_cmd(ctx, **kw):
    """List containers."""
    ctx.exit(commands.ps(engine_of(ctx), kw))


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
    from dockerbank.labels import match_label

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
@click_options(PS_FLAGS)
@click.pass_context
def ls_cmd(ctx, **kw):
    """List containers."""
    ctx.exit(commands.ps(engine_of(ctx), kw))


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
