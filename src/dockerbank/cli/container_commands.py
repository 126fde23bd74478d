"""The container commands that run most often (``create``, ``run``, ``start``, ``rm``, ``ps``,
``exec`` and conmon's ``container cleanup``), without click.

Each takes the engine and the keyword arguments of its flag table (cli.container_flags) and
returns the exit code. The click commands in cli.containers and the fast path (cli.fastpath)
both call these, so the two roads cannot drift apart.
"""

from __future__ import annotations

import os
import re
import sys
import time

from dockerbank.cli.common import (
    echo,
    human_duration,
    human_size,
    parse_filters,
    parse_pairs,
    print_formatted,
    print_table,
)
from dockerbank.errors import DockerbankError, InvalidArgument, UsageError

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
        raise InvalidArgument(f"open {path}: {(exc.strerror or str(exc)).lower()}", exit_code=125) from exc
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


def build_create_options(image: str, command: tuple[str, ...], kw: dict):
    from dockerbank.cli.netflags import network_options_from
    from dockerbank.volume import mounts as mnt
    from dockerbank.container import userns
    from dockerbank.container.options import CreateOptions

    userns.parse(kw.get("userns"))  # as docker: a malformed --userns is refused before the image lookup or pull
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
    from dockerbank.container import hostmodes
    from dockerbank.container.health import from_flags

    healthcheck = from_flags(kw["health_cmd"], kw["health_interval"], kw["health_timeout"],
                             kw["health_start_period"], kw["health_start_interval"], kw["health_retries"],
                             kw["no_healthcheck"])
    return CreateOptions(
        image=image, command=list(command), entrypoint=entrypoint, name=kw["name"], env=env,
        workdir=kw["workdir"], user=kw["user"], hostname=kw["hostname"], labels=parse_pairs(kw["label"]),
        tty=kw["tty"], interactive=kw["interactive"], mounts=specs, volumes_from=list(kw["volumes_from"]),
        read_only=kw["read_only"], privileged=kw["privileged"], cap_add=list(kw["cap_add"]),
        cap_drop=list(kw["cap_drop"]), security_opt=list(kw["security_opt"]), devices=list(kw["device"]),
        init=kw["init"], restart=kw["restart"], auto_remove=kw["auto_remove"], memory=memory, memory_swap=swap,
        nano_cpus=cpus, cpu_shares=kw["cpu_shares"], pids_limit=max(0, pids),
        blkio_weight=kw["blkio_weight"], network=kw["network"], stop_signal=kw["stop_signal"],
        network_options=network_options_from(kw),
        stop_timeout=kw["stop_timeout"], attach=[a.upper() for a in kw["attach"]], healthcheck=healthcheck,
        log_driver=kw["log_driver"], log_opts=_log_opts(kw["log_opt"]),
        links=list(kw["link"]), pid_mode=kw["pid"], uts_mode=kw["uts"], cgroupns_mode=kw["cgroupns"],
        group_add=list(kw["group_add"]), device_cgroup_rules=list(kw["device_cgroup_rule"]),
        cpuset_cpus=kw["cpuset_cpus"], cpuset_mems=kw["cpuset_mems"], mac_address=kw["mac_address"],
        isolation=kw["isolation"],
        userns=kw.get("userns") or "", pod=kw.get("pod") or "",
        ipc_mode=kw["ipc"], shm_size=ram_in_bytes(kw["shm_size"], "--shm-size"),
        ulimits=[hostmodes.parse_ulimit(u) for u in kw["ulimit"]], sysctls=parse_pairs(kw["sysctl"]),
        oom_score_adj=kw["oom_score_adj"], cpu_period=kw["cpu_period"], cpu_quota=kw["cpu_quota"],
        memory_reservation=ram_in_bytes(kw["memory_reservation"], "--memory-reservation"),
    )


def _log_opts(items) -> dict[str, str]:
    """``--log-opt KEY=VALUE`` pairs."""
    result = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"invalid log opt {item!r}: use KEY=VALUE", exit_code=125)
        result[key] = value
    return result


def ensure_image(engine, image: str, policy: str, quiet: bool) -> None:
    """Docker's ``--pull`` for ``run``/``create``: pull a missing image (``missing``, the default)
    or always; ``Unable to find image 'x:latest' locally`` and the pull's progress go to stderr."""
    from dockerbank.errors import NotFound, Offline

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
        echo(f"Unable to find image '{refs.parse(image).familiar()}' locally", err=True)
    progress = Progress() if quiet else BarProgress(sys.stderr) if sys.stderr.isatty() else LineProgress(sys.stderr)
    try:
        engine.registry.pull(image, progress=progress)
    except Offline as exc:
        if policy != "missing":
            raise
        raise Offline(f"image {refs.parse(image).familiar()} is not here and Dockerbank {exc.message} (offline?); "
                      "make a base image with 'dockerbank base-image busybox|debian', bring one with "
                      "'dockerbank load -i FILE', or build it") from exc
    finally:
        progress.close()


def engine_error_125(exc: DockerbankError) -> DockerbankError:
    """``run``/``create`` end with 125 for engine errors other than 126/127 (docker's rule)."""
    if exc.exit_code not in (125, 126, 127):
        exc.exit_code = 125
    return exc


def _remove_after_failure(ops, container, opts) -> None:
    if opts.auto_remove:
        ops.remove([container.id], force=True)


def print_reports(reports, show=lambda report: report.ref) -> int:
    """Docker's rendering of a batch: per item, in the order asked, ``show(report)`` on success or
    one error line; 1 when any item failed."""
    failed = False
    for report in reports:
        if report.error is not None:
            echo(f"Error: {report.error.message}", err=True)  # docker's "from daemon": there is none here
            failed = True
        else:
            echo(show(report))
    return 1 if failed else 0


def create(engine, kw: dict) -> int:
    """``create``: print the new container's ID."""
    try:
        opts = build_create_options(kw["image"], kw["command"], kw)
        ensure_image(engine, kw["image"], kw["pull_policy"], kw["quiet"])
        container = engine.container_ops.create(opts)
    except DockerbankError as exc:
        raise engine_error_125(exc) from exc
    echo(container.id)
    return 0


def check_tty(interactive: bool, tty: bool, detach: bool) -> None:
    """docker's refusal of ``-it`` when this command's stdin is a pipe or a file: a terminal
    inside cannot be driven from one."""
    import os

    if interactive and tty and not detach and not os.isatty(0):
        raise DockerbankError("the input device is not a TTY")


def run(engine, kw: dict) -> int:
    """``run``: create and start; detached prints the ID, attached returns the container's exit code."""
    check_tty(kw["interactive"], kw["tty"], kw["detach"])
    try:
        opts = build_create_options(kw["image"], kw["command"], kw)
        ensure_image(engine, kw["image"], kw["pull_policy"], kw["quiet"])
        ops = engine.container_ops
        container = ops.create(opts)
    except DockerbankError as exc:
        raise engine_error_125(exc) from exc
    if kw["detach"]:
        error = ops.start([container.id])[0].error
        if error is not None:
            _remove_after_failure(ops, container, opts)
            raise engine_error_125(error)
        echo(container.id)
        return 0
    try:
        attachment = ops.start_attached(container.id, stdin=opts.interactive)
    except DockerbankError as exc:
        _remove_after_failure(ops, container, opts)
        raise engine_error_125(exc) from exc
    if attachment is None:
        return 0
    code = attachment.run(proxy_signals=kw["sig_proxy"])
    return code if code is not None else 0


def start(engine, kw: dict) -> int:
    """``start``: start each container (printing its name), or one attached."""
    ops = engine.container_ops
    containers, attach, interactive = kw["containers"], kw["attach"], kw["interactive"]
    if (attach or interactive) and len(containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    if attach or interactive:
        attachment = ops.start_attached(containers[0], stdin=interactive)
        if attachment is None:
            return 0
        code = attachment.run()
        return code if code is not None else 0
    return print_reports(ops.start(containers))


def remove(engine, kw: dict) -> int:
    """``rm``: remove each container (``-f`` kills a running one first), in parallel."""
    return print_reports(engine.container_ops.remove(kw["containers"], force=kw["force"], volumes=kw["volumes"]))


def cleanup(engine, kw: dict) -> int:
    """(internal) conmon's exit command: record the exit, unmount, remove --rm containers."""
    service = engine.containers
    for cid in kw["containers"]:
        try:
            service.cleanup(cid)
        except DockerbankError:
            pass
    return 0


def exec_in(engine, kw: dict) -> int:
    """``exec``: run a command in a running container; attached returns its exit code."""
    check_tty(kw["interactive"], kw["tty"], kw["detach"])
    variables: list[str] = []
    for path in kw["env_file"]:
        variables += parse_env_file(path)
    variables += expand_env(kw["env"])
    from dockerbank.engine.containers import ExecOptions

    attachment = engine.container_ops.exec(kw["container"], ExecOptions(
        list(kw["command"]), interactive=kw["interactive"], tty=kw["tty"], detach=kw["detach"], env=variables,
        user=kw["user"], workdir=kw["workdir"], privileged=kw["privileged"]))
    if attachment is None:
        return 0
    code = attachment.run()
    return code if code is not None else 0


def ps(engine, kw: dict) -> int:
    """``ps``: list containers (running ones unless ``-a``), as docker's table or ``--format``;
    only the columns the output prints are computed (the ports of all listed containers in one
    query, and only when printed)."""
    from dockerbank.cli import gotypes
    from dockerbank.container.views import _command_text, _image_display, _since, ps_ports_of, status_text
    from dockerbank.engine.containers import LIST_FILTERS, ListOptions

    size, fmt, no_trunc = kw["size"], kw["fmt"], kw["no_trunc"]
    wanted = parse_filters(kw["filters"], set(LIST_FILTERS))
    last = 1 if kw["latest"] else kw["last"]
    with_size = size or bool(fmt and ".Size" in fmt)
    entries = engine.container_ops.list(ListOptions(all=kw["show_all"], last=last, filters=wanted, size=with_size))
    if kw["quiet"]:
        for entry in entries:
            echo(entry.container.id if no_trunc else entry.container.short_id)
        return 0
    now = time.time()
    truncate = not no_trunc
    show_pod = kw.get("show_pod", False)
    keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"] + (["Size"] if size else [])
    keys += ["Pod", "PodName"] if show_pod else []
    printed = ps_fields(fmt, keys)
    pod_names = engine.pod_ops.names() if printed is None or "PodName" in printed else {}
    ports = ps_ports_of(engine, [e.container for e in entries]) if printed is None or "Ports" in printed else {}
    columns = {
        "ID": lambda c, e: c.id if no_trunc else c.short_id,
        "Image": lambda c, e: _image_display(c, truncate),
        "Command": lambda c, e: _command_text(c, truncate),
        "CreatedAt": lambda c, e: go_time_text(c.created),
        "RunningFor": lambda c, e: human_duration(_since(c.created, now)) + " ago",
        "Ports": lambda c, e: ports.get(c.id, ""),
        "State": lambda c, e: c.state.status,
        "Status": lambda c, e: status_text(c, now),
        "Names": lambda c, e: c.name,
        "Labels": lambda c, e: ",".join(f"{k}={v}" for k, v in sorted(c.config.labels.items())),
        "Mounts": lambda c, e: ",".join(m.get("source") or m.get("target", "") for m in c.config.mounts),
        "Networks": lambda c, e: "bridge" if c.config.network_mode == "default" else c.config.network_mode,
        "Size": lambda c, e: ("" if e.size_rw is None else
                              f"{human_size(e.size_rw)} (virtual {human_size(e.size_root_fs or 0)})"),
        "LocalVolumes": lambda c, e: str(sum(1 for m in c.config.mounts if m.get("type") == "volume")),
        # docker's {{.Label "k"}}
        "Label": lambda c, e: (lambda key, labels=c.config.labels: labels.get(key, "")),
        "Pod": lambda c, e: c.config.pod if no_trunc else c.config.pod[:12],   # podman's ps --pod
        "PodName": lambda c, e: pod_names.get(c.config.pod, ""),
        "Platform": lambda c, e: None,   # docker 20.10's nil *Platform
    }
    # docker runs the template on an empty container context before listing: it fails with no row too
    probe = {name: "" for name in columns} | {"Label": lambda key: "", "Platform": None}
    if printed is not None:
        columns = {name: make for name, make in columns.items() if name in printed}
    rows = [{name: make(entry.container, entry) for name, make in columns.items()} for entry in entries]

    def table(items):
        headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] + (["SIZE"] if size else [])
        headers += ["POD ID", "PODNAME"] if show_pod else []
        print_table(headers, [[r[k] for k in keys] for r in items])

    print_formatted(rows, fmt, table, PS_HEADERS, go_type=gotypes.CONTAINER_ROW, probe=probe)
    return 0


_FIELD = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE = re.compile(r"(?<![\w)\]$])\.(?![A-Za-z_])")  # a bare ``.`` (``{{json .}}``): the whole row


def ps_fields(fmt: str | None, table_keys: list[str]) -> set[str] | None:
    """The row fields ``ps`` prints with ``fmt``: the table's columns, those a template names,
    or None for every field (``json``, or a template that uses the whole row)."""
    if not fmt or fmt == "table":
        return set(table_keys)
    if fmt == "json" or _WHOLE.search(fmt):
        return None
    return set(_FIELD.findall(fmt))


# docker's column names of ``ps --format "table ..."`` (cli/command/formatter/container.go)
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES", "Pod": "POD ID", "PodName": "PODNAME"}


def go_time_text(iso: str) -> str:
    """A time as Go's ``time.Time.String`` prints it in the local zone (docker's CreatedAt)."""
    from datetime import datetime

    from dockerbank.container.logs import parse_time

    try:
        return datetime.fromtimestamp(int(parse_time(iso))).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")
    except (ValueError, OverflowError):
        return iso
