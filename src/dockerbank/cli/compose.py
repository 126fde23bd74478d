"""``dockerbank compose``: parse the command line, load the project, call compose's service
(compose.service over the engine) and render. No operation's logic lives here."""

from __future__ import annotations

import os

import click

from dockerbank.cli.common import echo, engine_of, print_table

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _load(ctx: click.Context):
    """The project named by the group's options (loaded once per command)."""
    from dockerbank.compose.loader import load
    from dockerbank.compose.model import normalize

    if "compose.project" not in ctx.meta:
        opts = ctx.meta["compose.options"]
        loaded = load(opts)
        for line in loaded.warnings:
            echo(f"WARN: {line}", err=True)
        ctx.meta["compose.project"] = normalize(loaded)
    return ctx.meta["compose.project"]


def _project_name(ctx: click.Context) -> str:
    """The project's name: from ``-p`` alone when given (commands that need no file), else loaded."""
    opts = ctx.meta["compose.options"]
    if opts.project_name:
        from dockerbank.compose.loader import normalize_project_name

        return normalize_project_name(opts.project_name)
    return _load(ctx).name


def _stack(ctx: click.Context):
    from dockerbank.compose.service import Stack

    return Stack(engine_of(ctx), _load(ctx), out=echo)


@click.group("compose", context_settings=CONTEXT)
@click.option("-f", "--file", "files", multiple=True, help="Compose configuration files")
@click.option("-p", "--project-name", default=None, help="Project name")
@click.option("--project-directory", default=None, help="Specify an alternate working directory")
@click.option("--profile", "profiles", multiple=True, help="Specify a profile to enable")
@click.option("--env-file", "env_files", multiple=True, help="Specify an alternate environment file")
@click.option("--ansi", default="auto", hidden=True)
@click.option("--no-ansi", is_flag=True, hidden=True)
@click.pass_context
def compose(ctx, files, project_name, project_directory, profiles, env_files, ansi, no_ansi):
    """Define and run multi-container applications (the Compose Specification)."""
    from dockerbank.compose.loader import LoadOptions

    ctx.meta["compose.options"] = LoadOptions(
        files=list(files), project_name=project_name, project_directory=project_directory,
        env_files=list(env_files), profiles=list(profiles), cwd=os.getcwd(), environ=dict(os.environ))


@compose.command("config", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only validate the configuration, don't print anything")
@click.option("--services", is_flag=True, help="Print the service names, one per line")
@click.option("--volumes", is_flag=True, help="Print the volume names, one per line")
@click.option("--profiles", "list_profiles", is_flag=True, help="Print the profile names, one per line")
@click.option("--hash", "hash_of", default=None, help="Print the service config hash, one per line ('*' for all)")
@click.pass_context
def config_cmd(ctx, quiet, services, volumes, list_profiles, hash_of):
    """Validate and view the Compose file."""
    from dockerbank.compose.model import config_document, dump_yaml

    project = _load(ctx)
    if quiet:
        return
    if services:
        for name in project.services:
            echo(name)
        return
    if volumes:
        for name in project.volumes:
            echo(name)
        return
    if list_profiles:
        for name in sorted({p for s in project.services.values() for p in s.get("profiles") or []}):
            echo(name)
        return
    if hash_of:
        from dockerbank.compose.plan import config_hash

        names = list(project.services) if hash_of == "*" else hash_of.split(",")
        for name in names:
            echo(f"{name} {config_hash(project, name)}")
        return
    echo(dump_yaml(config_document(project)), nl=False)


def _scale(values: tuple[str, ...]) -> dict[str, int]:
    from dockerbank.errors import UsageError

    out: dict[str, int] = {}
    for item in values:
        name, sep, number = item.partition("=")
        if not sep or not number.isdigit():
            raise UsageError(f"invalid --scale {item!r}: use SERVICE=NUMBER")
        out[name] = int(number)
    return out


def _fail_if(failures: list[str]) -> None:
    from dockerbank.errors import DockerbankError

    if failures:
        for line in failures[:-1]:
            echo(f"Error: {line}", err=True)
        raise DockerbankError(failures[-1])


@compose.command("up", context_settings=CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run containers in the background")
@click.option("--build", is_flag=True, help="Build images before starting containers")
@click.option("--no-build", is_flag=True, help="Don't build an image, even if it's missing")
@click.option("--wait", is_flag=True, help="Wait for services to be running|healthy (implies --detach)")
@click.option("--scale", "scale", multiple=True, help="Scale SERVICE to NUM instances (SERVICE=NUM)")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if their configuration hasn't changed")
@click.option("--no-recreate", is_flag=True, help="If containers already exist, don't recreate them")
@click.option("--no-start", is_flag=True, help="Don't start the services after creating them")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")
@click.option("--no-deps", is_flag=True, hidden=True)
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds")
@click.option("--wait-timeout", type=float, default=600.0, help="Seconds a dependency condition may take")
@click.argument("services", nargs=-1)
@click.pass_context
def up_cmd(ctx, detach, build, no_build, wait, scale, force_recreate, no_recreate, no_start, remove_orphans,
           no_deps, timeout, wait_timeout, services):
    """Create and start containers."""
    from dockerbank.compose.service import UpOptions
    from dockerbank.errors import UsageError

    if force_recreate and no_recreate:
        raise UsageError("--force-recreate and --no-recreate are incompatible")
    stack = _stack(ctx)
    opts = UpOptions(services=list(services), scale=_scale(scale), force_recreate=force_recreate,
                     no_recreate=no_recreate, no_start=no_start, remove_orphans=remove_orphans, build=build,
                     wait=wait, timeout=timeout, wait_timeout=wait_timeout)
    results = stack.up(opts)
    if detach or wait or no_start:
        return
    _follow_logs(ctx, stack, [c for ids in results.values() for c in ids], follow=True, timestamps=False,
                 tail=None, prefix=True)


@compose.command("down", context_settings=CONTEXT)
@click.option("-v", "--volumes", is_flag=True, help="Remove named volumes declared in the volumes section")
@click.option("--rmi", type=click.Choice(["all", "local"]), default=None, help="Remove images used by services")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds")
@click.pass_context
def down_cmd(ctx, volumes, rmi, remove_orphans, timeout):
    """Stop and remove containers, networks (and volumes, images)."""
    _fail_if(_stack(ctx).down(volumes=volumes, rmi=rmi, remove_orphans=remove_orphans, timeout=timeout))


@compose.command("ps", context_settings=CONTEXT)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped containers")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.option("--services", "list_services", is_flag=True, help="Display services")
@click.option("--format", "fmt", default=None, help="Format the output: table or json")
@click.argument("services", nargs=-1)
@click.pass_context
def ps_cmd(ctx, all_, quiet, list_services, fmt, services):
    """List containers."""
    import json
    import time

    from dockerbank.compose import plan as pl
    from dockerbank.container.views import _command_text, ps_ports, status_text

    stack = _stack(ctx)
    # like docker-compose 1.29, ps lists stopped containers of the project too
    found = stack.containers(list(services), all_=True)
    if list_services:
        for name in dict.fromkeys(c.config.labels.get(pl.LABEL_SERVICE, "") for c in found):
            echo(name)
        return
    if quiet:
        for c in found:
            echo(c.id)
        return
    now = time.time()
    engine = engine_of(ctx)
    rows = [{"ID": c.id, "Name": c.name, "Image": c.config.image, "Command": _command_text(c, True),
             "Project": stack.project.name, "Service": c.config.labels.get(pl.LABEL_SERVICE, ""),
             "State": c.state.status, "Status": status_text(c, now), "Ports": ps_ports(engine, c),
             "Health": (getattr(c.state, "health", None) or {}).get("Status", ""),
             "ExitCode": c.state.exit_code} for c in found]
    if fmt == "json":
        echo(json.dumps(rows))
        return
    print_table(["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"],
                [[r["Name"], r["Image"], r["Command"], r["Service"], r["Status"], r["Ports"]] for r in rows])


@compose.command("start", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def start_cmd(ctx, services):
    """Start services."""
    _fail_if(_stack(ctx).start(list(services)))


@compose.command("stop", context_settings=CONTEXT)
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds")
@click.argument("services", nargs=-1)
@click.pass_context
def stop_cmd(ctx, timeout, services):
    """Stop services."""
    _fail_if(_stack(ctx).stop(list(services), timeout))


@compose.command("restart", context_settings=CONTEXT)
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds")
@click.argument("services", nargs=-1)
@click.pass_context
def restart_cmd(ctx, timeout, services):
    """Restart services."""
    _fail_if(_stack(ctx).restart(list(services), timeout))


@compose.command("logs", context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--tail", default="all", help="Number of lines to show from the end of the logs for each container")
@click.option("--no-color", is_flag=True, help="Produce monochrome output")
@click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs")
@click.option("--since", default=None, help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
@click.option("--until", default=None, help="Show logs before a timestamp or relative (e.g. 42m)")
@click.argument("services", nargs=-1)
@click.pass_context
def logs_cmd(ctx, follow, timestamps, tail, no_color, no_log_prefix, since, until, services):
    """View output from containers."""
    from dockerbank.errors import InvalidArgument

    stack = _stack(ctx)
    tail_n = None
    if tail not in ("all", ""):
        try:
            tail_n = int(tail)
        except ValueError:
            raise InvalidArgument(f'invalid value for "tail": {tail}') from None
    ids = [c.id for c in stack.containers(list(services), all_=True)]
    _follow_logs(ctx, stack, ids, follow=follow, timestamps=timestamps, tail=tail_n, prefix=not no_log_prefix,
                 since=since, until=until)


def _follow_logs(ctx, stack, ids: list[str], *, follow: bool, timestamps: bool, tail: int | None,
                 prefix: bool, since: str | None = None, until: str | None = None) -> None:
    """The containers' logs through the engine's one method for several (``NAME  | `` prefixes,
    compose's layout); ``follow`` goes on until every container has stopped (or Ctrl-C)."""
    from dockerbank.container.logs import parse_since
    from dockerbank.engine.container_options import LogsOptions
    from dockerbank.engine.sinks import FdSink

    opts = LogsOptions(tail=tail, since=parse_since(since), until=parse_since(until), follow=follow,
                       timestamps=timestamps)
    try:
        engine_of(ctx).container_ops.logs_many(ids, opts, FdSink(1), FdSink(2), prefix=prefix)
    except KeyboardInterrupt:
        return


def _container_of(ctx, stack, service: str, index: int):
    """Container ``index`` (1-based) of a service, as compose's ``--index``."""
    from dockerbank.compose import plan as pl
    from dockerbank.errors import NotFound

    stack.project.service(service)
    for c in stack.containers([service], all_=True):
        if c.config.labels.get(pl.LABEL_NUMBER) == str(index):
            return c
    raise NotFound(f"service {service!r} has no container number {index}: run 'dockerbank compose up' first")


@compose.command("exec", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-T", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation")
@click.option("-i", "--interactive", is_flag=True, default=True, hidden=True)
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-u", "--user", default=None, help="Run the command as this user")
@click.option("-w", "--workdir", default=None, help="Path to workdir directory for this command")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the process")
@click.option("--index", type=int, default=1, help="Index of the container if there are multiple instances")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_cmd(ctx, detach, no_tty, interactive, env, user, workdir, privileged, index, service, command):
    """Execute a command in a running container of a service."""
    import sys

    from dockerbank.cli.container_commands import exec_in

    stack = _stack(ctx)
    container = _container_of(ctx, stack, service, index)
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    ctx.exit(exec_in(engine_of(ctx), {"container": container.id, "command": command, "interactive":
                                      interactive and not detach, "tty": tty and not detach, "detach": detach,
                                      "env": env, "env_file": (), "user": user, "workdir": workdir,
                                      "privileged": privileged}))


@compose.command("run", context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--rm", "remove", is_flag=True, help="Remove container after run")
@click.option("--name", default=None, help="Assign a name to the container")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--no-deps", is_flag=True, help="Don't start linked services")
@click.option("-T", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation")
@click.option("--entrypoint", default=None, help="Override the entrypoint of the image")
@click.option("-u", "--user", default=None, help="Run as specified username or uid")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_cmd(ctx, detach, remove, name, env, no_deps, no_tty, entrypoint, user, workdir, service, command):
    """Run a one-off command on a service."""
    import sys

    from dockerbank.compose.service import RunOptions

    tty = not no_tty and not detach and sys.stdin.isatty() and sys.stdout.isatty()
    opts = RunOptions(service=service, command=list(command) or None, detach=detach, remove=remove, name=name,
                      env=list(env), no_deps=no_deps, tty=tty, interactive=not detach,
                      entrypoint=entrypoint, user=user, workdir=workdir)
    stack = _stack(ctx)
    cid, attachment = stack.run(opts)
    if detach:
        echo(cid)
        return
    code = attachment.run() if attachment is not None else 0
    if remove:
        stack.remove_container(cid)
    ctx.exit(code if code is not None else 0)


@compose.command("build", context_settings=CONTEXT)
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.argument("services", nargs=-1)
@click.pass_context
def build_cmd(ctx, no_cache, services):
    """Build or rebuild services."""
    stack = _stack(ctx)
    for name in services or list(stack.project.services):
        if stack.project.service(name).get("build"):
            echo(stack.build_service(name, no_cache=no_cache))
        elif services:
            echo(f"{name} uses an image, skipping", err=True)


@compose.command("pull", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Pull without printing progress information")
@click.option("--ignore-pull-failures", is_flag=True, help="Pull what it can and ignores images with pull failures")
@click.argument("services", nargs=-1)
@click.pass_context
def pull_cmd(ctx, quiet, ignore_pull_failures, services):
    """Pull service images."""
    _fail_if(_stack(ctx).pull(list(services), ignore_failures=ignore_pull_failures))


@compose.command("push", context_settings=CONTEXT)
@click.option("--ignore-push-failures", is_flag=True, help="Push what it can and ignores images with push failures")
@click.argument("services", nargs=-1)
@click.pass_context
def push_cmd(ctx, ignore_push_failures, services):
    """Push service images."""
    _fail_if(_stack(ctx).push(list(services), ignore_failures=ignore_push_failures))


@compose.command("top", context_settings=CONTEXT)
@click.argument("services", nargs=-1)
@click.pass_context
def top_cmd(ctx, services):
    """Display the running processes of the services' containers."""
    from dockerbank.container.top import render_top, run_top
    from dockerbank.host.cgroups import container_cgroups_path, pids_of

    for c in _stack(ctx).containers(list(services)):
        echo(c.name)
        pids = pids_of(container_cgroups_path(c.id)) or [c.state.pid]
        echo(render_top(run_top(pids, None)))


@compose.command("images", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.argument("services", nargs=-1)
@click.pass_context
def images_cmd(ctx, quiet, services):
    """List images used by the created containers."""
    from dockerbank.cli.common import human_size
    from dockerbank.oci import reference as refs

    engine = engine_of(ctx)
    rows = []
    for c in _stack(ctx).containers(list(services), all_=True):
        try:
            record = engine.images.get(c.config.image_id)
        except Exception:  # the image went away under a stopped container
            continue
        if quiet:
            echo(record.id.removeprefix("sha256:"))
            continue
        ref = refs.parse(c.config.image) if refs.looks_like_reference(c.config.image) else None
        repo, tag = (ref.familiar().rsplit(":", 1) if ref and ":" in ref.familiar() else (c.config.image, ""))
        rows.append([c.name, repo, tag, record.id.removeprefix("sha256:")[:12], human_size(record.size)])
    if not quiet:
        print_table(["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"], rows)


@compose.command("port", context_settings=CONTEXT)
@click.option("--protocol", default="tcp", type=click.Choice(["tcp", "udp"]), help="tcp or udp")
@click.option("--index", type=int, default=1, help="Index of the container if there are multiple instances")
@click.argument("service")
@click.argument("private_port")
@click.pass_context
def port_cmd(ctx, protocol, index, service, private_port):
    """Print the public port for a port binding."""
    from dockerbank.errors import DockerbankError

    stack = _stack(ctx)
    container = _container_of(ctx, stack, service, index)
    number = int(private_port) if private_port.isdigit() else -1
    for m in engine_of(ctx).networks.port_mappings(container.id):
        if m.container_port == number and m.protocol == protocol:
            echo(f"{m.host_ip or '0.0.0.0'}:{m.host_port}")
            return
    raise DockerbankError(f"no port {private_port}/{protocol} published for {container.name}")


@compose.command("ls", context_settings=CONTEXT)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped Compose projects")
@click.option("-q", "--quiet", is_flag=True, help="Only display project names")
@click.option("--format", "fmt", default=None, help="Format the output: table or json")
@click.pass_context
def ls_cmd(ctx, all_, quiet, fmt):
    """List running compose projects (from the labels of their containers)."""
    import json

    from dockerbank.compose.service import projects

    found = [p for p in projects(engine_of(ctx)) if all_ or p["running"]]
    if quiet:
        for p in found:
            echo(p["Name"])
        return
    if fmt == "json":
        echo(json.dumps([{k: p[k] for k in ("Name", "Status", "ConfigFiles")} for p in found]))
        return
    print_table(["NAME", "STATUS", "CONFIG FILES"], [[p["Name"], p["Status"], p["ConfigFiles"]] for p in found])


COMMANDS = {"compose": compose}
