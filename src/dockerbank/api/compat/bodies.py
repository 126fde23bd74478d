"""The JSON types of the Engine API's request bodies, checked before a handler reads them (pure).

dockerd decodes a body into Go structs, so a string where a list belongs is a 400
(``json: cannot unmarshal string into Go struct field ContainerConfig.Env of type []string``), never a
crash. Handlers here read plain dicts; this table gives them the same guarantee: after
:func:`check`, every known field has its Go type (``null`` is Go's zero value, unknown fields are
ignored as Go ignores them).

Type notation: ``"string" "int" "bool" "any"``, ``"strslice"`` (docker's StrSlice: a string or a list
of strings), ``["T"]`` a list of T, ``{"*": T}`` a map of T, ``{"Field": T, ...}`` a struct.
"""

from __future__ import annotations

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

STRINGS = ["string"]
STRING_MAP = {"*": "string"}
EMPTY_STRUCT_MAP = {"*": "any"}     # map[string]struct{}: Volumes, ExposedPorts

HEALTHCHECK = {"Test": STRINGS, "Interval": "int", "Timeout": "int", "StartPeriod": "int", "StartInterval": "int",
               "Retries": "int"}
PORT_BINDINGS = {"*": [{"HostIp": "string", "HostPort": "string"}]}
MOUNT = {"Type": "string", "Source": "string", "Target": "string", "ReadOnly": "bool", "Consistency": "string",
         "BindOptions": {"Propagation": "string", "NonRecursive": "bool", "CreateMountpoint": "bool"},
         "VolumeOptions": {"NoCopy": "bool", "Labels": STRING_MAP, "Subpath": "string",
                           "DriverConfig": {"Name": "string", "Options": STRING_MAP}},
         "TmpfsOptions": {"SizeBytes": "int", "Mode": "int"}}
HOST_CONFIG = {
    "Binds": STRINGS, "ContainerIDFile": "string", "LogConfig": {"Type": "string", "Config": STRING_MAP},
    "NetworkMode": "string", "PortBindings": PORT_BINDINGS,
    "RestartPolicy": {"Name": "string", "MaximumRetryCount": "int"}, "AutoRemove": "bool",
    "VolumeDriver": "string", "VolumesFrom": STRINGS, "ConsoleSize": ["int"], "Annotations": STRING_MAP,
    "CapAdd": "strslice", "CapDrop": "strslice", "CgroupnsMode": "string", "Dns": STRINGS, "DnsOptions": STRINGS,
    "DnsSearch": STRINGS, "ExtraHosts": STRINGS, "GroupAdd": STRINGS, "IpcMode": "string", "Cgroup": "string",
    "Links": STRINGS, "OomScoreAdj": "int", "PidMode": "string", "Privileged": "bool", "PublishAllPorts": "bool",
    "ReadonlyRootfs": "bool", "SecurityOpt": STRINGS, "StorageOpt": STRING_MAP, "Tmpfs": STRING_MAP,
    "UTSMode": "string", "UsernsMode": "string", "ShmSize": "int", "Sysctls": STRING_MAP, "Runtime": "string",
    "Isolation": "string", "CpuShares": "int", "Memory": "int", "NanoCpus": "int", "CgroupParent": "string",
    "BlkioWeight": "int", "BlkioWeightDevice": [{"Path": "string", "Weight": "int"}],
    "CpuPeriod": "int", "CpuQuota": "int", "CpuRealtimePeriod": "int", "CpuRealtimeRuntime": "int",
    "CpusetCpus": "string", "CpusetMems": "string",
    "Devices": [{"PathOnHost": "string", "PathInContainer": "string", "CgroupPermissions": "string"}],
    "DeviceCgroupRules": STRINGS, "DeviceRequests": ["any"], "MemoryReservation": "int", "MemorySwap": "int",
    "MemorySwappiness": "int", "OomKillDisable": "bool", "PidsLimit": "int",
    "Ulimits": [{"Name": "string", "Soft": "int", "Hard": "int"}], "CpuCount": "int", "CpuPercent": "int",
    "Init": "bool", "Mounts": [MOUNT], "MaskedPaths": STRINGS, "ReadonlyPaths": STRINGS,
    "KernelMemory": "int", "KernelMemoryTCP": "int",
    "BlkioDeviceReadBps": [{"Path": "string", "Rate": "int"}], "BlkioDeviceWriteBps": [{"Path": "string", "Rate": "int"}],
    "BlkioDeviceReadIOps": [{"Path": "string", "Rate": "int"}], "BlkioDeviceWriteIOps": [{"Path": "string", "Rate": "int"}],
}
ENDPOINT = {"IPAMConfig": {"IPv4Address": "string", "IPv6Address": "string", "LinkLocalIPs": STRINGS},
            "Links": STRINGS, "Aliases": STRINGS, "MacAddress": "string", "DriverOpts": STRING_MAP,
            "NetworkID": "string", "EndpointID": "string", "Gateway": "string", "IPAddress": "string",
            "DNSNames": STRINGS}
CONTAINER_CREATE = {
    "Hostname": "string", "Domainname": "string", "User": "string", "AttachStdin": "bool", "AttachStdout": "bool",
    "AttachStderr": "bool", "ExposedPorts": EMPTY_STRUCT_MAP, "Tty": "bool", "OpenStdin": "bool",
    "StdinOnce": "bool", "Env": STRINGS, "Cmd": "strslice", "Healthcheck": HEALTHCHECK, "ArgsEscaped": "bool",
    "Image": "string", "Volumes": EMPTY_STRUCT_MAP, "WorkingDir": "string", "Entrypoint": "strslice",
    "NetworkDisabled": "bool", "MacAddress": "string", "OnBuild": STRINGS, "Labels": STRING_MAP,
    "StopSignal": "string", "StopTimeout": "int", "Shell": STRINGS,
    "HostConfig": HOST_CONFIG, "NetworkingConfig": {"EndpointsConfig": {"*": ENDPOINT}},
}
CONTAINER_UPDATE = {key: HOST_CONFIG[key] for key in (
    "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight", "CpuPeriod", "CpuQuota", "CpusetCpus",
    "CpusetMems", "MemoryReservation", "MemorySwap", "PidsLimit", "RestartPolicy", "Ulimits", "Devices")}
VOLUME_CREATE = {"Name": "string", "Driver": "string", "DriverOpts": STRING_MAP, "Labels": STRING_MAP}
IPAM_CONFIG = {"Subnet": "string", "IPRange": "string", "Gateway": "string", "AuxiliaryAddresses": STRING_MAP}
NETWORK_CREATE = {"Name": "string", "CheckDuplicate": "bool", "Driver": "string", "Scope": "string",
                  "Internal": "bool", "Attachable": "bool", "Ingress": "bool", "ConfigOnly": "bool",
                  "ConfigFrom": {"Network": "string"}, "EnableIPv4": "bool", "EnableIPv6": "bool",
                  "IPAM": {"Driver": "string", "Config": [IPAM_CONFIG], "Options": STRING_MAP},
                  "Options": STRING_MAP, "Labels": STRING_MAP}
NETWORK_CONNECT = {"Container": "string", "EndpointConfig": ENDPOINT, "Force": "bool"}
EXEC_CREATE = {"AttachStdin": "bool", "AttachStdout": "bool", "AttachStderr": "bool", "ConsoleSize": ["int"],
               "DetachKeys": "string", "Tty": "bool", "Env": STRINGS, "Cmd": "strslice", "Privileged": "bool",
               "User": "string", "WorkingDir": "string"}

_GO_TYPES = {"string": "string", "int": "int64", "bool": "bool", "strslice": "strslice.StrSlice"}


def check(body: Any, schema: dict, struct: str) -> dict:
    """``body`` if its known fields have their Go types; else InvalidArgument (400) in Go's words."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"json: cannot unmarshal {_json_kind(body)} into Go value of type {struct}")
    _check_struct(body, schema, struct)
    return body


def _check_struct(value: dict, schema: dict, path: str) -> None:
    for key, spec in schema.items():
        if key in value and value[key] is not None:
            _check(value[key], spec, f"{path}.{key}")


def _check(value: Any, spec: Any, path: str) -> None:
    if value is None or spec == "any":
        return
    if isinstance(spec, str):
        ok = {"string": isinstance(value, str),
              "int": isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63),
              "bool": isinstance(value, bool),
              "strslice": isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)}
        if not ok[spec]:
            raise _mismatch(value, _GO_TYPES[spec], path)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise _mismatch(value, "[]" + _describe(spec[0]), path)
        for index, item in enumerate(value):
            if item is None:
                value[index] = _zero(spec[0])  # Go decodes null in a list as the element's zero value
            _check(value[index], spec[0], path)
    elif "*" in spec:
        if not isinstance(value, dict):
            raise _mismatch(value, "map[string]" + _describe(spec["*"]), path)
        for key, item in value.items():
            if item is None:
                value[key] = _zero(spec["*"])
            _check(value[key], spec["*"], path)
    else:
        if not isinstance(value, dict):
            raise _mismatch(value, "struct", path)
        _check_struct(value, spec, path)


def _zero(spec: Any) -> Any:
    """Go's zero value of a type (``any`` keeps null)."""
    if isinstance(spec, list):
        return []
    if isinstance(spec, dict):
        return {}
    return {"string": "", "int": 0, "bool": False, "strslice": []}.get(spec)


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return {"any": "interface {}"}.get(spec, _GO_TYPES.get(spec, spec))
    if isinstance(spec, list):
        return "[]" + _describe(spec[0])
    return "map[string]" + _describe(spec["*"]) if "*" in spec else "struct"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), "value")


def _mismatch(value: Any, go_type: str, path: str) -> InvalidArgument:
    return InvalidArgument(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type {go_type}")
