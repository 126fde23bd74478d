"""``dockerbank events`` (and ``system events``): the engine's event stream, printed as docker does."""

from __future__ import annotations

import json

import click

from dockerbank.cli.common import echo, engine_of, parse_filters, render_template

CONTEXT = {"help_option_names": ["-h", "--help"]}


def go_fields(item: dict) -> dict:
    """An event as docker's Go struct (``*events.Message``, its ``events.Actor``) names it for
    ``--format`` templates: a field it lacks fails as in docker, its Attributes map keeps <no value>."""
    from dockerbank.gotemplate import GoStruct

    actor = item.get("Actor") or {}
    return GoStruct({"Status": item.get("status", ""), "ID": item.get("id", ""), "From": item.get("from", ""),
                     "Type": item.get("Type", ""), "Action": item.get("Action", ""),
                     "Actor": GoStruct({"ID": actor.get("ID", ""), "Attributes": actor.get("Attributes") or {}},
                                       "events.Actor"),
                     "Scope": item.get("scope", ""), "Time": item.get("time", 0),
                     "TimeNano": item.get("timeNano", 0)}, "*events.Message")


def _formatted(fmt: str, item: dict) -> str:
    """``item`` through the ``--format`` template; a template that fails ends the command with 64, as
    docker's ``events`` does."""
    from dockerbank.gotemplate import TemplateError

    try:
        return render_template(fmt, go_fields(item))
    except TemplateError as exc:
        raise TemplateError(str(exc), exit_code=64) from exc


@click.command("events", context_settings=CONTEXT)
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default=None, help="Format output using a custom template ('json' or a Go template)")
@click.option("--since", default=None, help="Show all events created since timestamp")
@click.option("--until", default=None, help="Stream events until this timestamp")
@click.pass_context
def events_cmd(ctx, filters, fmt, since, until):
    """Get real time events from the server."""
    from dockerbank.container.logs import parse_since
    from dockerbank.engine.events import FILTERS, EventsOptions, render

    opts = EventsOptions(since=parse_since(since), until=parse_since(until),
                         filters=parse_filters(filters, set(FILTERS)))
    try:
        for batch in engine_of(ctx).events(opts):
            for item in batch:
                if fmt == "json":
                    echo(json.dumps(item))
                elif fmt:
                    echo(_formatted(fmt, item))
                else:
                    echo(render(item))
    except KeyboardInterrupt:
        return


COMMANDS = {"events": events_cmd}
