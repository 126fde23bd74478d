"""What docker's ``--format`` templates run on, command by command (docker 20.10's names).

A list command's row is a formatter context, a Go struct: ``{{.Bad}}`` fails with ``can't evaluate
field Bad in type *formatter.ContainerContext`` (exit 1) where a map would print ``<no value>``.
``inspect`` runs on the typed object and, when that fails, again on its raw JSON with
``missingkey=error``: a field missing from a struct fails with ``map has no entry for key "Bad"``
while a key missing from a map inside it (``.Config.Labels.x``) prints ``<no value>``. The data
says which it is (``gotemplate.GoStruct``, ``gotemplate.InspectDocument``); the renderer holds no
list of commands. ``nil`` names are fields docker's type has that Dockerbank's value may leave
out (``omitempty`` ones, ``SizeRw`` without ``--size``): they print ``<no value>`` rather than fail.
"""

from __future__ import annotations

from dockerbank.gotemplate import GoStruct, InspectDocument, Shape, inspect_document

CONTAINER_ROW = "*formatter.ContainerContext"
IMAGE_ROW = "*formatter.imageContext"
HISTORY_ROW = "*image.historyContext"
NETWORK_ROW = "*network.networkContext"
VOLUME_ROW = "*formatter.volumeContext"
STATS_ROW = "*container.statsContext"
DISK_USAGE = "*formatter.diskUsageContext"          # system df -v --format: one value, not rows
DISK_USAGE_ROWS = {"Images": "*formatter.diskUsageImagesContext",
                   "Containers": "*formatter.diskUsageContainersContext",
                   "Local Volumes": "*formatter.diskUsageVolumesContext",
                   "Build Cache": "*formatter.diskUsageBuilderContext"}
INFO = "system.info"                                 # docker info (docker 28: system.dockerInfo)
VERSION = "system.versionInfo"                       # docker version (its template is named "version")
VOLUME = "types.Volume"   # volume inspect: no raw-JSON retry in docker (docker 25+ names it volume.Volume)

# docker's container.Config: omitempty fields, and its maps
_CONFIG = Shape(nil=("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal",
                     "StopTimeout", "Shell"), maps=("ExposedPorts", "Volumes", "Labels"))
_CONTAINER = {
    "": Shape(nil=("Node", "SizeRw", "SizeRootFs")),
    "State": Shape(nil=("Health",)),
    "Config": _CONFIG,
    "HostConfig": Shape(nil=("StorageOpt", "Tmpfs", "Sysctls", "Runtime", "Mounts", "Init", "KernelMemory",
                             "KernelMemoryTCP", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"),
                        maps=("PortBindings", "StorageOpt", "Tmpfs", "Sysctls")),
    "HostConfig.RestartPolicy": Shape(),
    "HostConfig.LogConfig": Shape(maps=("Config",)),
    "NetworkSettings": Shape(maps=("Ports", "Networks")),
    "GraphDriver": Shape(maps=("Data",)),
}
_IMAGE = {
    "": Shape(nil=("Variant", "OsVersion")),
    "Config": _CONFIG,
    "ContainerConfig": _CONFIG,
    "RootFS": Shape(nil=("BaseLayer",)),
    "GraphDriver": Shape(maps=("Data",)),
    "Metadata": Shape(),
}
_NETWORK = {
    "": Shape(nil=("Peers", "Services"), maps=("Containers", "Options", "Labels")),
    "IPAM": Shape(maps=("Options",)),
    "ConfigFrom": Shape(),
}
_VOLUME = Shape(nil=("Status", "UsageData"), maps=("Labels", "Options", "Status"))


def row(fields: dict, go_type: str, nil: tuple[str, ...] = ()) -> GoStruct:
    """One row of a list command: docker's context struct, whose ``{{json .}}`` sorts its keys."""
    return GoStruct(fields, go_type, sorted_json=True, shape=Shape(nil=nil))


def container_document(doc: dict) -> InspectDocument:
    """``docker inspect CONTAINER``'s types.ContainerJSON."""
    return inspect_document(doc, _CONTAINER)


def image_document(doc: dict) -> InspectDocument:
    """``docker image inspect``'s types.ImageInspect."""
    return inspect_document(doc, _IMAGE)


def network_document(doc: dict) -> InspectDocument:
    """``docker network inspect``'s types.NetworkResource."""
    return inspect_document(doc, _NETWORK)


def volume_document(doc: dict) -> GoStruct:
    """``docker volume inspect``'s types.Volume (docker retries no raw JSON there)."""
    return GoStruct(doc, VOLUME, shape=_VOLUME)


# docker 20.10 info's fields: those Dockerbank does not report print <no value> rather than fail
_INFO = Shape(nil=(
    "Architecture", "BridgeNfIp6tables", "BridgeNfIptables", "CPUSet", "CPUShares", "CgroupDriver", "CgroupVersion",
    "ClientInfo", "ContainerdCommit", "Containers", "ContainersPaused", "ContainersRunning", "ContainersStopped",
    "CpuCfsPeriod", "CpuCfsQuota", "Debug", "DefaultRuntime", "DockerRootDir", "Driver", "DriverStatus",
    "ExperimentalBuild", "GenericResources", "HttpProxy", "HttpsProxy", "ID", "IPv4Forwarding", "Images",
    "IndexServerAddress", "InitBinary", "InitCommit", "Isolation", "KernelMemory", "KernelMemoryTCP", "KernelVersion",
    "Labels", "LiveRestoreEnabled", "LoggingDriver", "MemTotal", "MemoryLimit", "NCPU", "NEventsListener", "NFd",
    "NGoroutines", "Name", "NoProxy", "OSType", "OSVersion", "OomKillDisable", "OperatingSystem", "PidsLimit",
    "Plugins", "RegistryConfig", "RuncCommit", "Runtimes", "SecurityOptions", "ServerVersion", "SwapLimit", "Swarm",
    "SystemTime", "Warnings", "ProductLicense", "DefaultAddressPools"))
_VERSION_FIELDS = ("Platform", "Version", "ApiVersion", "GitCommit", "GoVersion", "Os", "Arch", "BuildTime",
                   "Experimental")


def info_value(data: dict) -> GoStruct:
    """``docker info``'s value (its nested Swarm, Plugins... stay maps here)."""
    return GoStruct(data, INFO, shape=_INFO)


def version_value(data: dict) -> GoStruct:
    """``docker version``'s value: its Client (system.clientVersion) and Server (*types.Version)."""
    client = GoStruct(data["Client"], "system.clientVersion",
                      shape=Shape(nil=_VERSION_FIELDS + ("DefaultAPIVersion", "Context")))
    server = GoStruct(data["Server"], "*types.Version",
                      shape=Shape(nil=_VERSION_FIELDS + ("Components", "MinAPIVersion", "KernelVersion")))
    return GoStruct({**data, "Client": client, "Server": server}, VERSION)
