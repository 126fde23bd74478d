"""Container commands: create, run, start, ps, stop, kill, restart, rm, logs, attach, inspect,
wait, rename, pause, unpause, top, stats and the ``container`` group.

Parsing and rendering only; the work is done by ``engine.container_ops`` (engine.containers, the
use cases the API calls too).
"""

from __future__ import annotations

import json
import os
import sys

import click

from dockerbank.cli import container_commands as commands
from dockerbank.cli.clickflags import click_options
from dockerbank.cli.common import engine_of, human_size, parse_filters, print_formatted
from dockerbank.cli.container_commands import print_reports
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

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable

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
    ctx.exit(print_reports(engine_of(ctx).container_ops.stop(containers, timeout)))


@click.command("kill", context_settings=CONTEXT)
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill_cmd(ctx, sig, containers):
    """Kill one or more running containers."""
    ctx.exit(print_reports(engine_of(ctx).container_ops.kill(containers, sig)))


@click.command("restart", context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing it")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart_cmd(ctx, timeout, containers):
    """Restart one or more containers."""
    ctx.exit(print_reports(engine_of(ctx).container_ops.restart(containers, timeout)))


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
    ctx.exit(print_reports(engine_of(ctx).container_ops.pause(containers)))


@click.command("unpause", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause_cmd(ctx, containers):
    """Unpause all processes within one or more containers."""
    ctx.exit(print_reports(engine_of(ctx).container_ops.unpause(containers)))


@click.command("wait", context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait_cmd(ctx, containers):
    """Block until one or more containers stop, then print their exit codes."""
    reports = engine_of(ctx).container_ops.wait(containers)
    ctx.exit(print_reports(reports, lambda report: str(report.exit_code if report.exit_code is not None else 0)))


@click.command("rename", context_settings=CONTEXT)
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename_cmd(ctx, container, new_name):
    """Rename a container."""
    engine_of(ctx).container_ops.rename(container, new_name)


@click.command("update", context_settings=CONTEXT)
@click.option("--blkio-weight", type=int, default=None, help="Block IO (relative weight), between 10 and 1000")
@click.option("--cpu-shares", "-c", type=int, default=None, help="CPU shares (relative weight)")
@click.option("--cpus", default=None, help="Number of CPUs")
@click.option("-m", "--memory", default=None, help="Memory limit")
@click.option("--memory-swap", default=None, help='Swap limit equal to memory plus swap: "-1" to enable unlimited swap')
@click.option("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")
@click.option("--restart", default=None, help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def update_cmd(ctx, blkio_weight, cpu_shares, cpus, memory, memory_swap, pids_limit, restart, containers):
    """Update configuration of one or more containers."""
    from dockerbank.cli.container_commands import ram_in_bytes
    from dockerbank.engine.container_options import UpdateOptions

    nano_cpus = None
    if cpus is not None:
        try:
            nano_cpus = int(float(cpus) * 1e9)
        except ValueError as exc:
            raise InvalidArgument(f'invalid argument "{cpus}" for "--cpus" flag') from exc
    opts = UpdateOptions(memory=ram_in_bytes(memory, "--memory") if memory is not None else None,
                         memory_swap=ram_in_bytes(memory_swap, "--memory-swap") if memory_swap is not None else None,
                         nano_cpus=nano_cpus, cpu_shares=cpu_shares, pids_limit=pids_limit,
                         blkio_weight=blkio_weight, restart=restart)
    if all(value is None for value in vars(opts).values()):
        raise UsageError("you must provide one or more flags when using this command")
    ctx.exit(print_reports(engine_of(ctx).container_ops.update(containers, opts)))


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
    from dockerbank.container.top import render_top

    click.echo(render_top(engine_of(ctx).container_ops.top(container, list(ps_args))), nl=False)


@click.command("stats", context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--format", "fmt", default=None, help="Pretty-print images using a Go template")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats_cmd(ctx, show_all, no_stream, no_trunc, fmt, containers):
    """Display a live stream of container(s) resource usage statistics."""
    from dockerbank.cli import gotypes
    from dockerbank.container import stats as st

    rounds = engine_of(ctx).container_ops.stats_many(list(containers), all=show_all, no_trunc=no_trunc)

    def render(rows) -> None:
        if fmt:
            print_formatted(rows, fmt, lambda items: click.echo(st.render_stats_table(items), nl=False),
                            headers={"Container": "CONTAINER", **dict(zip(("ID", "Name", "CPUPerc", "MemUsage",
                                     "MemPerc", "NetIO", "BlockIO", "PIDs"), st.STATS_HEADERS))},
                            go_type=gotypes.STATS_ROW)
        else:
            click.echo(st.render_stats_table(rows), nl=False)

    try:
        if no_stream:
            render(next(rounds))
            return
        for rows in rounds:
            click.echo("\033[2J\033[H", nl=False)
            render(rows)
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
    from dockerbank.engine.sinks import FdSink

    ops = engine_of(ctx).container_ops
    src_ctr, src_path = fileops.split_cp_arg(src)
    dest_ctr, dest_path = fileops.split_cp_arg(dest)
    if src_ctr and dest_ctr:
        raise UsageError("copying between containers is not supported")
    if not src_ctr and not dest_ctr:
        raise UsageError("must specify at least one container source")
    if src_ctr and dest_path == "-":
        ops.archive_get(src_ctr, src_path, FdSink(1), follow_link=follow_link)
    elif src_ctr:
        ops.copy_from(src_ctr, src_path, dest_path, follow_link=follow_link)
    elif src_path == "-":
        ops.archive_put(dest_ctr, dest_path, sys.stdin.buffer, copy_uid_gid=archive)
    else:
        ops.copy_to(dest_ctr, src_path, dest_path, follow_link=follow_link, archive=archive)


@click.command("diff", context_settings=CONTEXT)
@click.argument("container")
@click.pass_context
def diff_cmd(ctx, container):
    """Inspect changes to files or directories on a container's filesystem."""
    for change in engine_of(ctx).container_ops.diff(container):
        click.echo(str(change))


@click.command("export", context_settings=CONTEXT)
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT")
@click.argument("container")
@click.pass_context
def export_cmd(ctx, output, container):
    """Export a container's filesystem as a tar archive."""
    from dockerbank.engine.sinks import FdSink

    ops = engine_of(ctx).container_ops
    if output is None:
        if sys.stdout.isatty():
            raise DockerbankError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        ops.export(container, FdSink(1))
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            ops.export(container, handle)
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
@click.option("--no-log-prefix", is_flag=True, help="Do not prefix the lines of several containers with their names")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def logs_cmd(ctx, follow, tail, timestamps, since, until, details, no_log_prefix, containers):
    """Fetch the logs of a container (of several: merged by time, each line prefixed with its name)."""
    from dockerbank.container.logs import parse_since
    from dockerbank.engine.container_options import LogsOptions
    from dockerbank.engine.containers import parse_tail
    from dockerbank.engine.sinks import FdSink

    opts = LogsOptions(tail=parse_tail(tail), since=parse_since(since), until=parse_since(until), follow=follow,
                       timestamps=timestamps)
    ops = engine_of(ctx).container_ops
    try:
        if len(containers) == 1:
            ops.logs(containers[0], opts, FdSink(1), FdSink(2))
        else:
            ops.logs_many(list(containers), opts, FdSink(1), FdSink(2), prefix=not no_log_prefix)
    except KeyboardInterrupt:
        return


@click.command("attach", context_settings=CONTEXT)
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.option("--detach-keys", default=None, hidden=True)
@click.argument("container")
@click.pass_context
def attach_cmd(ctx, no_stdin, sig_proxy, detach_keys, container):
    """Attach local standard input, output, and error streams to a running container."""
    attachment = engine_of(ctx).container_ops.attach(container, stdin=not no_stdin)
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
@click.option("--type", "kind", default=None, type=click.Choice(["container", "image", "pod"]),
              help="Return JSON for specified type")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect_cmd(ctx, fmt, size, kind, names):
    """Return low-level information on Docker objects."""
    _inspect(ctx, fmt, size, kind, names)


def _inspect(ctx, fmt, size, kind, names) -> None:
    from dockerbank.cli import gotypes
    from dockerbank.cli.common import render_template
    from dockerbank.gotemplate import GoMap

    engine = engine_of(ctx)
    results, errors = [], []
    shapes: list[Callable[[dict], dict]] = []  # how docker's template sees each result
    for name in names:
        try:
            if kind not in ("image", "pod"):
                try:
                    results.append(engine.container_ops.inspect(name, size=size))
                    shapes.append(gotypes.container_document)
                    continue
                except NotFound:
                    if kind == "container":
                        raise
            found = _image_inspect(engine, name) if kind != "pod" else None
            shape: Callable[[dict], dict] = gotypes.image_document
            if found is None and kind in (None, "pod"):  # podman's order: container, image, ..., pod
                shape = GoMap  # podman's pod: not docker's
                try:
                    found = engine.pod_ops.inspect(name)
                except NotFound:
                    found = None
            if found is None:
                raise NotFound(f"No such object: {name}")
            results.append(found)
            shapes.append(shape)
        except (NotFound, InvalidArgument):
            errors.append(f"Error: No such {kind if kind in ('container', 'pod') else 'object'}: {name}")
    if fmt:
        for item, shape in zip(results, shapes):
            click.echo(render_template(fmt, shape(item), parse_exit=64))
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
    from dockerbank.engine.container_options import PruneOptions
    from dockerbank.engine.containers import PRUNE_FILTERS

    wanted = parse_filters(filters, set(PRUNE_FILTERS))
    if not force:
        click.echo("WARNING! This will remove all stopped containers.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    report = engine_of(ctx).container_ops.prune(PruneOptions(wanted))
    for item in report.errors:
        click.echo(f"Error: {item.error.message}", err=True)
    if report.deleted:
        click.echo("Deleted Containers:")
        for cid in report.deleted:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(report.space_reclaimed)}")
    if report.errors:
        ctx.exit(1)


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
    "update": update_cmd,
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
