"""Docker's views of a container: the inspect JSON, ps's filters and columns (STATUS, COMMAND,
IMAGE), the size of its own layer. Shared by the CLI and the Engine API, so both show the same
thing through one code path."""

from __future__ import annotations

from dockerbank.errors import DockerbankError
from dockerbank.host.fs import tree_size
from dockerbank.units import human_duration


def _since(iso: str, now: float) -> float:
    from dockerbank.container.logs import parse_time

    try:
        return float(int(max(0.0, now - parse_time(iso))))
    except ValueError:
        return 0.0


def status_text(container, now: float) -> str:
    """Docker's STATUS column: ``Up 3 seconds``, ``Up 2 minutes (Paused)``, ``Exited (0) 2 seconds ago``, ``Created``."""
    state = container.state
    if state.status in ("running", "paused"):
        text = f"Up {human_duration(_since(state.started_at, now))}"
        if state.status == "paused":
            return text + " (Paused)"
        if state.health:
            from dockerbank.container.health import status_suffix

            return text + status_suffix(state.health)
        return text
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration(_since(state.finished_at, now))} ago"
    if state.status == "exited":
        if state.finished_at.startswith("0001"):
            return "Exited"
        return f"Exited ({state.exit_code}) {human_duration(_since(state.finished_at, now))} ago"
    if state.status == "removing":
        return "Removal In Progress"
    if state.status == "dead":
        return "Dead"
    return "Created"


def ps_ports(engine, container) -> str:
    """The PORTS column of ``ps`` for a running container ("" otherwise, as docker shows); a
    pod's member shows the ports of the infra whose network it shares (as podman shows them)."""
    owner = _port_owner(container)
    if owner is None:
        return ""  # no network module imported for containers without one
    from dockerbank.network.ports import format_ps_ports

    return format_ps_ports(engine.networks.port_mappings(owner))


def ps_ports_of(engine, containers) -> dict[str, str]:
    """The PORTS column of many containers with one query (``ps`` of many): by ID, "" for those
    that publish nothing."""
    owners = {c.id: owner for c in containers if (owner := _port_owner(c)) is not None}
    if not owners:
        return {}
    from dockerbank.network.ports import format_ps_ports

    mappings = engine.networks.port_mappings_of(sorted(set(owners.values())))
    return {cid: format_ps_ports(mappings.get(owner, [])) for cid, owner in owners.items()}


def _port_owner(container) -> str | None:
    """The container whose published ports ``ps`` shows for a running ``container``: itself on a
    bridge or user network, its pod's infra for a member sharing the pod's network; else None."""
    if container.state.status not in ("running", "paused"):
        return None
    net = getattr(container.config, "network", None) or {}
    if net.get("kind") in ("bridge", "user"):
        return container.id
    if net.get("kind") == "container" and getattr(container.config, "pod", ""):
        return net.get("container") or None
    return None


def _command_text(container, truncate: bool) -> str:
    command = " ".join([container.config.path, *container.config.args])
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def _ps_matches(container, filters: dict[str, list[str]], image_ids: dict) -> bool:
    from dockerbank.labels import match_label

    for key, values in filters.items():
        if key == "name" and not any(_search(v, container.name) for v in values):
            return False
        if key == "id" and not any(container.id.startswith(v) for v in values):
            return False
        if key == "label" and not all(match_label(container.config.labels, v) for v in values):
            return False
        if key == "status" and container.state.status not in values:
            return False
        if key == "health":
            from dockerbank.container.health import filter_value

            if filter_value(container.state.health) not in values:
                return False
        if key == "exited" and not (container.state.status == "exited"
                                    and str(container.state.exit_code) in values):
            return False
        if key == "ancestor":
            if not any(container.config.image_id == image_ids.get(v) or container.config.image == v
                       or container.config.image_id.removeprefix("sha256:").startswith(v) for v in values):
                return False
    return True


def _search(pattern: str, text: str) -> bool:
    import re

    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _image_display(container, truncate: bool) -> str:
    image = container.config.image
    if image.startswith("sha256:") or (len(image) == 64 and all(c in "0123456789abcdef" for c in image)):
        hexid = image.removeprefix("sha256:")
        return hexid[:12] if truncate else image
    return image


def _docker_link(link: str, own_name: str) -> str:
    """A stored link ``target:alias`` as inspect shows it: ``/target:/own/alias``."""
    target, _, alias = link.partition(":")
    return f"/{target}:/{own_name}/{alias or target}"


def inspect_container(engine, container, with_size: bool = False) -> dict:
    """Docker's ``inspect`` JSON of a container."""
    from dockerbank.volume import mounts as mnt

    service = engine.containers
    cfg, state = container.config, container.state
    base = service.dir(container.id)
    specs = [mnt.MountSpec.from_dict(m) for m in cfg.mounts]
    mounts = []
    for spec in specs:
        source = ""
        if spec.type == mnt.VOLUME:
            try:
                source = str(engine.volumes.data_dir(spec.source))
            except Exception:
                source = ""
        entry = mnt.inspect_mount(spec, source)
        if entry is not None:
            mounts.append(entry)
    host_fields = mnt.host_config_fields(specs)
    image_layers = []
    try:
        image = engine.images.get(cfg.image_id)
        image_layers = [str(p) for p in engine.images.layers.lower_dirs(image.top_chain)]
    except DockerbankError:
        pass
    env = cfg.env
    from dockerbank.runtime.spec import DEFAULT_PATH

    if not any(e.startswith("PATH=") for e in env):
        env = [f"PATH={DEFAULT_PATH}", *env]
    result = {
        "Id": container.id,
        "Created": container.created,
        "Path": cfg.path,
        "Args": cfg.args,
        "State": {
            "Status": state.status,
            "Running": state.status in ("running", "paused"),
            "Paused": state.status == "paused",
            "Restarting": state.status == "restarting",
            "OOMKilled": state.oom_killed,
            "Dead": state.status == "dead",
            "Pid": state.pid if state.status in ("running", "paused") else 0,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started_at,
            "FinishedAt": state.finished_at,
            **({"Health": state.health} if state.health else {}),
        },
        "Image": cfg.image_id,
        "ResolvConfPath": str(base / "resolv.conf"),
        "HostnamePath": str(base / "hostname"),
        "HostsPath": str(base / "hosts"),
        "LogPath": str(service.log_path(container.id)),
        "Name": "/" + container.name,
        "RestartCount": state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "Binds": host_fields.get("Binds") or None,
            "ContainerIDFile": "",
            "LogConfig": {"Type": (cfg.log_config or {}).get("Type") or "k8s-file",
                          "Config": dict((cfg.log_config or {}).get("Config") or {})},
            "NetworkMode": cfg.network_mode,
            "PortBindings": {},
            "RestartPolicy": cfg.restart_policy,
            "AutoRemove": cfg.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": list(cfg.volumes_from) or None,
            "CapAdd": cfg.cap_add or None,
            "CapDrop": cfg.cap_drop or None,
            "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
            "CgroupnsMode": cfg.cgroupns_mode or "host",   # this engine's default: the host's
            "GroupAdd": list(cfg.group_add) or None,
            "IpcMode": cfg.ipc_mode or "private",
            "Cgroup": "",
            "Links": [_docker_link(link, container.name) for link in cfg.links] or None,
            "OomScoreAdj": cfg.oom_score_adj,
            "PidMode": cfg.pid_mode,
            "Privileged": cfg.privileged,
            "PublishAllPorts": False,
            "ReadonlyRootfs": cfg.read_only,
            "SecurityOpt": cfg.security_opt or None,
            "Tmpfs": host_fields.get("Tmpfs") or None,
            "UTSMode": cfg.uts_mode,
            "UsernsMode": "auto" if cfg.userns else "",
            "ShmSize": cfg.shm_size or 67108864,
            "Runtime": service.runtime.name,
            "ConsoleSize": [0, 0],
            "Isolation": cfg.isolation,
            "CpuShares": cfg.cpu_shares,
            "Memory": cfg.memory,
            "NanoCpus": cfg.nano_cpus,
            "CgroupParent": "",
            "BlkioWeight": cfg.blkio_weight,
            "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
            "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None,
            "CpuPeriod": cfg.cpu_period, "CpuQuota": cfg.cpu_quota, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": cfg.cpuset_cpus,
            "CpusetMems": cfg.cpuset_mems,
            "Devices": cfg.devices,
            "DeviceCgroupRules": list(cfg.device_cgroup_rules) or None,
            "DeviceRequests": None,
            "MemoryReservation": cfg.memory_reservation,
            "MemorySwap": cfg.memory_swap if cfg.memory_swap else (cfg.memory * 2 if cfg.memory else 0),
            "MemorySwappiness": None,
            "OomKillDisable": False,
            "PidsLimit": cfg.pids_limit or None,
            "Ulimits": [dict(u) for u in cfg.ulimits] or None,
            **({"Sysctls": dict(cfg.sysctls)} if cfg.sysctls else {}),  # docker omits it when unset
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "Init": cfg.init or None,
            "Mounts": host_fields.get("Mounts") or None,
            "MaskedPaths": [] if cfg.privileged else list(__import__(
                "dockerbank.runtime.spec", fromlist=["MASKED_PATHS"]).MASKED_PATHS),
            "ReadonlyPaths": [] if cfg.privileged else list(__import__(
                "dockerbank.runtime.spec", fromlist=["READONLY_PATHS"]).READONLY_PATHS),
        },
        "GraphDriver": {
            "Data": {
                "LowerDir": ":".join(image_layers),
                "MergedDir": str(base / "merged"),
                "UpperDir": str(base / "upper"),
                "WorkDir": str(base / "work"),
            },
            "Name": "overlay2",
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": cfg.domainname,
            "User": cfg.user,
            "AttachStdin": "STDIN" in cfg.attach,
            "AttachStdout": "STDOUT" in cfg.attach,
            "AttachStderr": "STDERR" in cfg.attach,
            "ExposedPorts": cfg.exposed_ports or None,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "StdinOnce": False,
            "Env": env,
            "Cmd": cfg.cmd,
            **({"Healthcheck": cfg.healthcheck} if cfg.healthcheck else {}),
            "Image": cfg.image,
            "Volumes": host_fields.get("Volumes") or cfg.image_volumes or None,
            "WorkingDir": cfg.workdir,
            "Entrypoint": cfg.entrypoint,
            "OnBuild": None,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": {cfg.network_mode: {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
                                             "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                                             "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                                             "MacAddress": "", "DriverOpts": None}},
        },
    }
    if (cfg.network or {}).get("kind") in ("bridge", "user", "container"):
        from dockerbank.network.runtime import inspect_fields

        host_fields_net, settings = inspect_fields(engine, container)
        result["HostConfig"].update(host_fields_net)
        result["NetworkSettings"].update(settings)
    if cfg.stop_timeout is not None:
        result["Config"]["StopTimeout"] = cfg.stop_timeout
    if cfg.pod:  # podman's fields of a pod's container (docker has no pods: absent otherwise)
        result["Pod"] = cfg.pod
        result["IsInfra"] = cfg.is_infra
    if cfg.mac_address:  # docker omits it when unset (API < 1.44 reads it here)
        result["Config"]["MacAddress"] = cfg.mac_address
    if with_size:
        upper = tree_size(base / "upper")
        result["SizeRw"] = upper
        try:
            result["SizeRootFs"] = engine.images.get(cfg.image_id).size + upper
        except DockerbankError:
            result["SizeRootFs"] = upper
    return result
