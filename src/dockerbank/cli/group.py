"""The click group of the ``dockerbank`` command, whose subcommands load lazily.

Start-up time is part of every ``run``, so only the module of the invoked command is
imported (and click only for command lines the fast path does not take: cli.fastpath).
"""

from __future__ import annotations

import importlib

import click

# top-level command -> module that defines it in its COMMANDS dict
LAZY_COMMANDS: dict[str, str] = {
    # images
    "images": "dockerbank.cli.images",
    "image": "dockerbank.cli.images",
    "load": "dockerbank.cli.images",
    "save": "dockerbank.cli.images",
    "import": "dockerbank.cli.images",
    "tag": "dockerbank.cli.images",
    "rmi": "dockerbank.cli.images",
    "history": "dockerbank.cli.images",
    "base-image": "dockerbank.cli.baseimage",
    "build": "dockerbank.cli.build",
    # containers
    "container": "dockerbank.cli.containers",
    "create": "dockerbank.cli.containers",
    "run": "dockerbank.cli.containers",
    "start": "dockerbank.cli.containers",
    "ps": "dockerbank.cli.containers",
    "stop": "dockerbank.cli.containers",
    "kill": "dockerbank.cli.containers",
    "restart": "dockerbank.cli.containers",
    "rm": "dockerbank.cli.containers",
    "logs": "dockerbank.cli.containers",
    "attach": "dockerbank.cli.containers",
    "exec": "dockerbank.cli.containers",
    "inspect": "dockerbank.cli.containers",
    "wait": "dockerbank.cli.containers",
    "top": "dockerbank.cli.containers",
    "stats": "dockerbank.cli.containers",
    "pause": "dockerbank.cli.containers",
    "unpause": "dockerbank.cli.containers",
    "rename": "dockerbank.cli.containers",
    "cp": "dockerbank.cli.containers",
    "diff": "dockerbank.cli.containers",
    "export": "dockerbank.cli.containers",
    "update": "dockerbank.cli.containers",
    "commit": "dockerbank.cli.commit",
    # pods
    "pod": "dockerbank.cli.pods",
    # stacks
    "compose": "dockerbank.cli.compose",
    "kube": "dockerbank.cli.kube",
    # volumes
    "volume": "dockerbank.cli.volumes",
    # networks
    "network": "dockerbank.cli.networks",
    "port": "dockerbank.cli.networks",
    # registries
    "pull": "dockerbank.cli.registry",
    "push": "dockerbank.cli.registry",
    "login": "dockerbank.cli.registry",
    "logout": "dockerbank.cli.registry",
    "registry": "dockerbank.cli.registry",
    # the catalog of applications
    "catalog": "dockerbank.cli.catalog",
    # backups
    "backup": "dockerbank.cli.backup",
    "restore": "dockerbank.cli.backup",
    # audit
    "audit": "dockerbank.cli.audit",
    "sbom": "dockerbank.cli.audit",
    # dashboard
    "dashboard": "dockerbank.cli.dashboard",
    # system
    "system": "dockerbank.cli.system",
    "info": "dockerbank.cli.system",
    "version": "dockerbank.cli.system",
    "events": "dockerbank.cli.events",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = LAZY_COMMANDS.get(name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            return None
        return module.COMMANDS.get(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="DOCKERBANK_ROOT", default=None, help="Root of the store (default /var/lib/dockerbank).")
@click.option("--runroot", envvar="DOCKERBANK_RUNROOT", default=None, help="Runtime state directory.")
@click.version_option(package_name="dockerbank", prog_name="dockerbank")
@click.pass_context
def cli(ctx: click.Context, root: str | None, runroot: str | None) -> None:
    """Dockerbank: a daemonless container engine with biomedical IT's operating practices."""
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    engine = Engine(Config.from_env(root, runroot), short_lived=True)
    ctx.obj = engine
    ctx.call_on_close(engine.close)


def run_click(args: list[str]) -> int:
    """Parse and run ``args`` with click; click's own errors become one line and exit code 125."""
    try:
        args = _bool_values(args)
        code = cli.main(args=args, prog_name="dockerbank", standalone_mode=False)
    except click.exceptions.NoSuchOption as exc:
        click.echo(f"unknown flag: {exc.option_name}\nSee 'dockerbank --help'.", err=True)
        return 125
    except click.exceptions.UsageError as exc:
        click.echo(f"Error: {exc.format_message()}\nSee 'dockerbank {_command_of(exc)}--help'.", err=True)
        return 125
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return 125
    return code if isinstance(code, int) else 0


def _command_of(exc: click.exceptions.UsageError) -> str:
    ctx = exc.ctx
    if ctx is None or ctx.parent is None:
        return ""
    return ctx.command_path.split(" ", 1)[-1] + " "


def _bool_values(args: list[str]) -> list[str]:
    """docker takes ``--flag=true|false`` for every boolean flag; click's flags take no value, so
    ``--rm=true`` becomes ``--rm`` and ``--rm=false`` its off form (or nothing) before click parses."""
    from dockerbank.cli.flags import parse_bool

    command: click.Command = cli
    i = 0
    while isinstance(command, click.Group) and i < len(args):
        if args[i] in ("--root", "--runroot"):
            i += 2
            continue
        if args[i].startswith("-"):
            i += 1
            continue
        found = command.get_command(click.Context(command), args[i])
        if found is None:
            return args
        command, i = found, i + 1
    flags: dict[str, tuple[str | None, bool]] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag and not param.count:
            for name in param.opts:
                flags[name] = (param.secondary_opts[0] if param.secondary_opts else None), True
            for name in param.secondary_opts:
                flags[name] = param.opts[0], False
    out = list(args[:i])
    for arg in args[i:]:
        name, eq, value = arg.partition("=")
        if arg == "--":
            out += args[len(out):]
            break
        if not eq or name not in flags or not name.startswith("--"):
            out.append(arg)
            continue
        other, on = flags[name]
        wanted = parse_bool(value, click.BadParameter(f"invalid argument {value!r} for {name!r} flag: "
                                                      "parse error", param_hint=name))
        if wanted:
            out.append(name)
        elif other is not None:
            out.append(other)
        # else: false for a flag that is off by default is no flag at all
    return out
