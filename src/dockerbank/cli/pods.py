"""``dockerbank pod create|ls|ps|inspect|start|stop|restart|kill|pause|unpause|rm|prune|exists``: podman's pod
commands, their flags, output and exit codes. Parsing and rendering only; the work is done by
``engine.pod_ops`` (engine.pods)."""

from __future__ import annotations

import json
import sys
import time

import click

from dockerbank.cli.clickflags import click_options
from dockerbank.cli.common import echo, engine_of, human_duration, parse_filters, parse_pairs, print_formatted
from dockerbank.cli.flags import BOOL, MULTI, Flag
from dockerbank.cli.netflags import NETWORK_FLAGS
from dockerbank.errors import DockerbankError, NotFound, UsageError

CONTEXT = {"help_option_names": ["--help"]}

CREATE_FLAGS = [
    Flag("-n", "--name", help="Assign a name to the pod"),
    Flag("-l", "--label", kind=MULTI, help="Set metadata on a pod"),
    Flag("--hostname", help="Set the pod's hostname (default: its name)"),
    Flag("--share", default=None, help="A comma-separated list of kernel namespaces to share "
         "(ipc, net, uts, pid; default ipc,net,uts; none)"),
    Flag("--infra", kind=BOOL, default=True, off="--no-infra", help="Create an infra container for the pod"),
    Flag("--network", "--net", dest="network", default="", help="Connect the pod to a network"),
    Flag("--pod-id-file", help="Write the pod ID to the file"),
    Flag("--shm-size", default="", help="Size of the pod's /dev/shm, shared by its members (default 64m)"),
    *[flag for flag in NETWORK_FLAGS if flag.dest not in ("publish_all", "expose")],
]


def _reports(reports, *, missing_code: int | None = None, show=lambda r: r.id) -> int:
    """One line per pod (its ID), one error line per failure; the exit code of the last failure
    (``missing_code`` for a pod that is not there, podman's 1 for ``pod rm``)."""
    code = 0
    for report in reports:
        if report.error is None:
            if report.id:
                echo(show(report))
            continue
        for error in report.errors[1:] if len(report.errors) > 1 else ():
            echo(f"Error: {error.message}", err=True)
        echo(f"Error: {report.error.message}", err=True)
        code = missing_code if missing_code is not None and isinstance(report.error, NotFound) \
            else report.error.exit_code
    return code


def _targets(engine, pods: tuple[str, ...], all_pods: bool, latest: bool = False) -> list[str]:
    if all_pods or latest:
        if pods:
            raise UsageError("when using the --all or --latest flags, no pods may be named")
        from dockerbank.engine.pods import PodListOptions

        entries = engine.pod_ops.list(PodListOptions())
        return [e.pod.id for e in (entries[:1] if latest else entries)]
    if not pods:
        raise UsageError("you must provide at least one pod name or id")
    return list(pods)


@click.command("create", context_settings=CONTEXT)
@click_options(CREATE_FLAGS)
@click.pass_context
def create_cmd(ctx, **kw):
    """Create a new empty pod."""
    from dockerbank.cli.container_commands import ram_in_bytes
    from dockerbank.cli.netflags import network_options_from
    from dockerbank.engine.pods import PodCreateOptions
    from dockerbank.pod.model import parse_share

    opts = PodCreateOptions(name=kw["name"], labels=parse_pairs(kw["label"]), hostname=kw["hostname"],
                            share=parse_share(kw["share"]) if kw["infra"] else [], infra=kw["infra"],
                            network=kw["network"], network_options=network_options_from(kw),
                            create_command=["dockerbank", *sys.argv[1:]],
                            shm_size=ram_in_bytes(kw["shm_size"], "--shm-size"))
    if not kw["infra"] and kw["share"] not in (None, "", "none"):
        raise UsageError("you must have an infra container to share namespaces (--share)")
    try:
        pod = engine_of(ctx).pod_ops.create(opts)
    except DockerbankError as exc:
        if exc.exit_code not in (125, 126, 127):
            exc.exit_code = 125
        raise
    if kw["pod_id_file"]:
        with open(kw["pod_id_file"], "w") as handle:
            handle.write(pod.id)
    echo(pod.id)


LS_FLAGS = [
    Flag("-q", "--quiet", kind=BOOL, help="Print the numeric IDs of the pods only"),
    Flag("--no-trunc", kind=BOOL, help="Do not truncate pod and container IDs"),
    Flag("-f", "--filter", dest="filters", kind=MULTI, help="Filter output based on conditions given"),
    Flag("--format", dest="fmt", help="Pretty-print pods to JSON or using a Go template"),
    Flag("--ctr-ids", kind=BOOL, help="Display the container IDs"),
    Flag("--ctr-names", kind=BOOL, help="Display the container names"),
    Flag("--ctr-status", kind=BOOL, help="Display the container status"),
    Flag("-l", "--latest", kind=BOOL, help="Act on the latest pod"),
    Flag("--sort", default="created", help="Sort output by created, id, name, number or status"),
]

# podman's column names (cmd/podman/pods/ps.go)
LS_HEADERS = {"ID": "POD ID", "Id": "POD ID", "Name": "NAME", "Status": "STATUS", "Labels": "LABELS",
              "NumberOfContainers": "# OF CONTAINERS", "Created": "CREATED", "InfraID": "INFRA ID",
              "InfraId": "INFRA ID", "ContainerIds": "IDS", "ContainerNames": "NAMES",
              "ContainerStatuses": "STATUS", "Networks": "NETWORKS", "Cgroup": "CGROUP"}


def _networks(entry) -> list[str]:
    """The networks of the pod's infra container (none without one)."""
    infra = next((c for c in entry.containers if c.config.is_infra), None)
    return list(((infra.config.network or {}).get("networks") or [])) if infra is not None else []


def _ls_row(entry, no_trunc: bool, now: float) -> dict:
    from dockerbank.container.views import _since

    pod = entry.pod
    cut = (lambda value: value) if no_trunc else (lambda value: value[:12])
    return {
        "ID": cut(pod.id), "Id": cut(pod.id), "Name": pod.name, "Status": entry.status,
        "Created": human_duration(_since(pod.created, now)) + " ago", "InfraID": cut(pod.infra_id),
        "InfraId": cut(pod.infra_id), "NumberOfContainers": str(len(entry.containers)),
        "Labels": dict(pod.config.labels), "Networks": ",".join(_networks(entry)), "Cgroup": "",
        "ContainerIds": ",".join(cut(c.id) for c in entry.containers),
        "ContainerNames": ",".join(c.name for c in entry.containers),
        "ContainerStatuses": ",".join(c.state.status for c in entry.containers),
    }


def _ls_json(entries) -> str:
    """podman's ``pod ps --format json``: one array of its ListPodsReport objects."""
    return json.dumps([{
        "Cgroup": "", "Containers": [{"Id": c.id, "Names": c.name, "Status": c.state.status}
                                     for c in e.containers],
        "Created": e.pod.created, "Id": e.pod.id, "InfraId": e.pod.infra_id, "Name": e.pod.name,
        "Namespace": "", "Networks": _networks(e), "Status": e.status, "Labels": dict(e.pod.config.labels),
    } for e in entries], indent=2)


_SORT_KEYS = {"created": lambda e: e.pod.created, "id": lambda e: e.pod.id, "name": lambda e: e.pod.name,
              "number": lambda e: len(e.containers), "status": lambda e: e.status}


@click.command("ps", context_settings=CONTEXT)
@click_options(LS_FLAGS)
@click.pass_context
def ls_cmd(ctx, **kw):
    """List pods."""
    from dockerbank.engine.pods import LIST_FILTERS, PodListOptions

    if kw["sort"] not in _SORT_KEYS:
        raise UsageError(f"invalid option for --sort, options are: {', '.join(_SORT_KEYS)}")
    entries = engine_of(ctx).pod_ops.list(PodListOptions(parse_filters(kw["filters"], set(LIST_FILTERS))))
    if kw["sort"] != "created":
        entries.sort(key=_SORT_KEYS[kw["sort"]])
    if kw["latest"]:
        entries = entries[:1]
    no_trunc = kw["no_trunc"]
    if kw["quiet"]:
        for entry in entries:
            echo(entry.pod.id)  # podman prints the full ID here, truncated or not
        return
    fmt = kw["fmt"]
    if fmt == "json":
        echo(_ls_json(entries))
        return
    now = time.time()
    rows = [_ls_row(e, no_trunc, now) for e in entries]
    columns = ["{{.ID}}", "{{.Name}}", "{{.Status}}", "{{.Created}}", "{{.InfraID}}"]
    for flag, column in (("ctr_ids", "{{.ContainerIds}}"), ("ctr_names", "{{.ContainerNames}}"),
                         ("ctr_status", "{{.ContainerStatuses}}")):
        if kw[flag]:
            columns.append(column)
    if not (kw["ctr_ids"] or kw["ctr_names"] or kw["ctr_status"]):
        columns.append("{{.NumberOfContainers}}")
    default = "table " + "\t".join(columns)
    print_formatted(rows, default if not fmt or fmt == "table" else fmt, lambda items: None, LS_HEADERS,
                    tabs=(12, 2))  # podman's tabwriter (minwidth 12, padding 2)


@click.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None, help="Format the output using the given Go template")
@click.option("-l", "--latest", is_flag=True, help="Act on the latest pod")
@click.argument("pods", nargs=-1)
@click.pass_context
def inspect_cmd(ctx, fmt, latest, pods):
    """Display information describing one or more pods."""
    from dockerbank.cli.common import render_template

    engine = engine_of(ctx)
    results, errors = [], []
    for ref in _targets(engine, pods, False, latest):
        try:
            results.append(engine.pod_ops.inspect(ref))
        except NotFound:
            errors.append(f"inspecting object: no such pod {ref}")  # podman's words
    if fmt:
        for item in results:
            echo(render_template(fmt, item))
    elif results or not errors:
        echo(json.dumps(results, indent=4))
    for error in errors:
        echo(f"Error: {error}", err=True)
    if errors:
        ctx.exit(125)


def _plain_batch(name: str, all_help: str, doc: str) -> click.Command:
    """``pod start|restart|pause|unpause``: one engine batch over the named, all or latest pods."""
    @click.command(name, context_settings=CONTEXT, help=doc)
    @click.option("-a", "--all", "all_pods", is_flag=True, help=all_help)
    @click.option("-l", "--latest", is_flag=True, help="Act on the latest pod")
    @click.argument("pods", nargs=-1)
    @click.pass_context
    def command(ctx, all_pods, latest, pods):
        engine = engine_of(ctx)
        operation = getattr(engine.pod_ops, name)
        ctx.exit(_reports(operation(_targets(engine, pods, all_pods, latest))))

    return command


start_cmd = _plain_batch("start", "Start all pods", "Start one or more pods.")
restart_cmd = _plain_batch("restart", "Restart all pods", "Restart one or more pods.")
pause_cmd = _plain_batch("pause", "Pause all running pods", "Pause one or more pods.")
unpause_cmd = _plain_batch("unpause", "Unpause all paused pods", "Unpause one or more pods.")


@click.command("stop", context_settings=CONTEXT)
@click.option("-a", "--all", "all_pods", is_flag=True, help="Stop all running pods")
@click.option("-i", "--ignore", is_flag=True, help="Ignore errors when a specified pod is missing")
@click.option("-l", "--latest", is_flag=True, help="Act on the latest pod")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait for the pod to stop "
              "before killing its containers")
@click.argument("pods", nargs=-1)
@click.pass_context
def stop_cmd(ctx, all_pods, ignore, latest, timeout, pods):
    """Stop one or more pods."""
    engine = engine_of(ctx)
    reports = engine.pod_ops.stop(_targets(engine, pods, all_pods, latest), timeout)
    if ignore:
        reports = [r for r in reports if not isinstance(r.error, NotFound)]
    ctx.exit(_reports(reports))


@click.command("kill", context_settings=CONTEXT)
@click.option("-a", "--all", "all_pods", is_flag=True, help="Kill all running pods")
@click.option("-l", "--latest", is_flag=True, help="Act on the latest pod")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the containers in the pod")
@click.argument("pods", nargs=-1)
@click.pass_context
def kill_cmd(ctx, all_pods, latest, sig, pods):
    """Send the specified signal or SIGKILL to containers in a pod."""
    engine = engine_of(ctx)
    ctx.exit(_reports(engine.pod_ops.kill(_targets(engine, pods, all_pods, latest), sig)))


@click.command("rm", context_settings=CONTEXT)
@click.option("-a", "--all", "all_pods", is_flag=True, help="Remove all pods")
@click.option("-f", "--force", is_flag=True, help="Stop and remove the pod's running containers too")
@click.option("-i", "--ignore", is_flag=True, help="Ignore errors when a specified pod is missing")
@click.option("-l", "--latest", is_flag=True, help="Act on the latest pod")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait for the pod to stop "
              "before killing its containers")
@click.option("--pod-id-file", "id_files", multiple=True, help="Read the pod ID from the file")
@click.argument("pods", nargs=-1)
@click.pass_context
def rm_cmd(ctx, all_pods, force, ignore, latest, timeout, id_files, pods):
    """Remove one or more stopped pods and their containers."""
    engine = engine_of(ctx)
    for path in id_files:
        try:
            with open(path) as handle:
                pods = (*pods, handle.read().strip())
        except OSError as exc:
            if not ignore:
                raise DockerbankError(f"reading pod ID file {path}: {exc.strerror}", exit_code=125) from exc
    targets = _targets(engine, pods, all_pods, latest) if (pods or all_pods or latest or not id_files) else []
    reports = engine.pod_ops.remove(targets, force=force, timeout=timeout, ignore=ignore)
    ctx.exit(_reports(reports, missing_code=1))


@click.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune_cmd(ctx, force):
    """Remove all stopped pods and their containers."""
    if not force:
        click.echo("WARNING! This will remove all stopped/exited pods..")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    ctx.exit(_reports(engine_of(ctx).pod_ops.prune()))


@click.command("exists", context_settings=CONTEXT)
@click.argument("pod")
@click.pass_context
def exists_cmd(ctx, pod):
    """Check if a pod exists (exit 0 if it does, 1 if not)."""
    ctx.exit(0 if engine_of(ctx).pod_ops.exists(pod) else 1)


@click.group("pod", context_settings=CONTEXT)
def pod_group():
    """Manage pods: containers sharing network, IPC and UTS namespaces."""


for _name, _command in (("create", create_cmd), ("ps", ls_cmd), ("ls", ls_cmd), ("list", ls_cmd),
                        ("inspect", inspect_cmd), ("start", start_cmd), ("stop", stop_cmd),
                        ("restart", restart_cmd), ("kill", kill_cmd),
                        ("pause", pause_cmd), ("unpause", unpause_cmd), ("rm", rm_cmd), ("prune", prune_cmd),
                        ("exists", exists_cmd)):
    pod_group.add_command(_command, _name)

COMMANDS = {"pod": pod_group}
