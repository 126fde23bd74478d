"""Validation of a compose file against the part of the Compose Specification this compose
supports (pure), written by hand: each error is one line naming the file, the key path and the
problem (an unknown key, a wrong type, a value out of its set). ``x-*`` keys are allowed
everywhere a mapping of the specification takes extensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockerbank.errors import InvalidArgument


class ComposeFileError(InvalidArgument):
    """A compose file that does not follow the specification (exit 1, nothing created)."""


Check = Callable[[Any, str], None]


def fail(where: str, path: str, problem: str) -> ComposeFileError:
    """The one-line error: ``FILE: KEY.PATH: PROBLEM``."""
    return ComposeFileError(f"{where}: {path}: {problem}" if path else f"{where}: {problem}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


class Schema:
    """A node of the schema: ``check(value, path, where)`` raises ComposeFileError."""

    def check(self, value: Any, path: str, where: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class Scalar(Schema):
    def __init__(self, *kinds: str, choices: tuple[str, ...] = ()):
        self.kinds, self.choices = kinds, choices

    def check(self, value, path, where):
        if _kind(value) not in self.kinds:
            raise fail(where, path, f"must be a {self.describe()}, not a {_kind(value)}")
        if self.choices and value not in self.choices:
            raise fail(where, path, f"must be one of {', '.join(self.choices)}, not {value!r}")

    def describe(self):
        return " or ".join(self.kinds)


class Array(Schema):
    def __init__(self, items: Schema, unique: bool = False):
        self.items, self.unique = items, unique

    def check(self, value, path, where):
        if not isinstance(value, list):
            raise fail(where, path, f"must be an array, not a {_kind(value)}")
        for i, item in enumerate(value):
            self.items.check(item, f"{path}[{i}]", where)
        if self.unique:
            seen = [repr(v) for v in value]
            if len(set(seen)) != len(seen):
                raise fail(where, path, "has duplicate items")

    def describe(self):
        return "array"


class Obj(Schema):
    """A mapping with known keys (others refused unless ``values`` is given: a free mapping)."""

    def __init__(self, props: dict[str, Schema] | None = None, values: Schema | None = None,
                 extensions: bool = True, unsupported: tuple[str, ...] = ()):
        self.props, self.values, self.extensions, self.unsupported = props or {}, values, extensions, unsupported

    def check(self, value, path, where):
        if not isinstance(value, dict):
            raise fail(where, path, f"must be a mapping, not a {_kind(value)}")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise fail(where, sub, "keys must be strings")
            if self.extensions and key.startswith("x-"):
                continue
            if key in self.props:
                self.props[key].check(item, sub, where)
            elif key in self.unsupported:
                raise fail(where, sub, "is in the Compose Specification but not supported by dockerbank compose")
            elif self.values is not None:
                self.values.check(item, sub, where)
            else:
                raise fail(where, sub, "unknown key (not in the Compose Specification)")

    def describe(self):
        return "mapping"


class OneOf(Schema):
    def __init__(self, *options: Schema):
        self.options = options

    def check(self, value, path, where):
        kind = _kind(value)
        for option in self.options:
            if _accepts_kind(option, kind):
                option.check(value, path, where)
                return
        raise fail(where, path, f"must be a {' or '.join(o.describe() for o in self.options)}, not a {kind}")

    def describe(self):
        return " or ".join(o.describe() for o in self.options)


def _accepts_kind(schema: Schema, kind: str) -> bool:
    if isinstance(schema, Scalar):
        return kind in schema.kinds
    if isinstance(schema, Array):
        return kind == "array"
    if isinstance(schema, Obj):
        return kind == "mapping"
    if isinstance(schema, OneOf):
        return any(_accepts_kind(o, kind) for o in schema.options)
    return False


STR = Scalar("string")
INT = Scalar("number")
BOOL = Scalar("boolean")
NUM_OR_STR = Scalar("number", "string")
SCALAR = Scalar("string", "number", "boolean", "null")
STRS = Array(STR)
STR_OR_STRS = OneOf(STR, STRS)
LIST_OR_DICT = OneOf(Obj(values=SCALAR, extensions=False), Array(STR))
DURATION = STR
NULLABLE_OBJ = Scalar("null")

HEALTHCHECK = Obj({
    "test": OneOf(STR, STRS), "interval": DURATION, "timeout": DURATION, "retries": INT,
    "start_period": DURATION, "start_interval": DURATION, "disable": BOOL,
})
RESOURCES = Obj({"cpus": NUM_OR_STR, "memory": STR, "pids": INT})
DEPLOY = Obj({
    "resources": Obj({"limits": RESOURCES, "reservations": Obj({"cpus": NUM_OR_STR, "memory": STR})}),
    "replicas": INT, "labels": LIST_OR_DICT,
    "restart_policy": Obj({"condition": Scalar("string", choices=("none", "on-failure", "any")),
                           "max_attempts": INT, "delay": DURATION, "window": DURATION}),
}, unsupported=("mode", "placement", "update_config", "rollback_config", "endpoint_mode"))
BUILD = OneOf(STR, Obj({
    "context": STR, "dockerfile": STR, "args": LIST_OR_DICT, "target": STR, "labels": LIST_OR_DICT,
    "network": STR, "no_cache": BOOL, "pull": BOOL,
}, unsupported=("cache_from", "cache_to", "secrets", "ssh", "platforms", "additional_contexts", "shm_size",
                "extra_hosts", "isolation", "tags", "dockerfile_inline")))
PORT = OneOf(NUM_OR_STR, Obj({
    "target": NUM_OR_STR, "published": NUM_OR_STR, "protocol": Scalar("string", choices=("tcp", "udp")),
    "host_ip": STR, "mode": Scalar("string", choices=("host", "ingress")), "name": STR, "app_protocol": STR,
}))
VOLUME_MOUNT = OneOf(STR, Obj({
    "type": Scalar("string", choices=("volume", "bind", "tmpfs")), "source": STR, "target": STR,
    "read_only": BOOL, "consistency": STR,
    "bind": Obj({"propagation": STR, "create_host_path": BOOL, "selinux": STR}),
    "volume": Obj({"nocopy": BOOL, "subpath": STR}),
    "tmpfs": Obj({"size": NUM_OR_STR, "mode": NUM_OR_STR}),
}))
FILE_REF = OneOf(STR, Obj({"source": STR, "target": STR, "uid": STR, "gid": STR, "mode": NUM_OR_STR}))
DEPENDS_ON = OneOf(Array(STR, unique=True), Obj(values=Obj({
    "condition": Scalar("string", choices=("service_started", "service_healthy",
                                           "service_completed_successfully")),
    "restart": BOOL, "required": BOOL,
}), extensions=False))
SERVICE_NETWORKS = OneOf(Array(STR, unique=True), Obj(values=OneOf(NULLABLE_OBJ, Obj({
    "aliases": STRS, "ipv4_address": STR, "ipv6_address": STR, "priority": INT,
})), extensions=False))

SERVICE = Obj({
    "image": STR, "build": BUILD, "command": OneOf(STR, STRS, NULLABLE_OBJ),
    "entrypoint": OneOf(STR, STRS, NULLABLE_OBJ), "environment": LIST_OR_DICT, "env_file": STR_OR_STRS,
    "labels": LIST_OR_DICT, "ports": Array(PORT), "expose": Array(NUM_OR_STR), "volumes": Array(VOLUME_MOUNT),
    "networks": SERVICE_NETWORKS, "network_mode": STR, "depends_on": DEPENDS_ON, "healthcheck": HEALTHCHECK,
    "restart": Scalar("string"), "deploy": DEPLOY, "secrets": Array(FILE_REF), "configs": Array(FILE_REF),
    "profiles": STRS, "container_name": STR, "hostname": STR, "domainname": STR, "working_dir": STR,
    "user": STR, "tty": BOOL, "stdin_open": BOOL, "read_only": BOOL, "privileged": BOOL, "cap_add": STRS,
    "cap_drop": STRS, "dns": STR_OR_STRS, "dns_search": STR_OR_STRS, "dns_opt": STRS,
    "extra_hosts": LIST_OR_DICT, "stop_signal": STR, "stop_grace_period": DURATION, "init": BOOL,
    "tmpfs": STR_OR_STRS, "devices": STRS, "security_opt": STRS, "mem_limit": NUM_OR_STR,
    "memswap_limit": NUM_OR_STR, "cpus": NUM_OR_STR, "cpu_shares": NUM_OR_STR, "pids_limit": NUM_OR_STR,
    "extends": OneOf(STR, Obj({"service": STR, "file": STR}, extensions=False)),
    "pull_policy": Scalar("string", choices=("always", "never", "missing", "if_not_present", "build")),
    "scale": INT, "volumes_from": STRS, "platform": STR, "pid": STR, "cgroup": Scalar("string", choices=(
        "host", "private")), "isolation": STR, "mac_address": STR, "group_add": Array(NUM_OR_STR), "cpuset": STR,
    "shm_size": NUM_OR_STR, "sysctls": LIST_OR_DICT, "ipc": STR, "oom_score_adj": INT,
    "ulimits": Obj(values=OneOf(INT, Obj({"soft": INT, "hard": INT})), extensions=False),
}, unsupported=("links", "external_links", "logging", "cgroup_parent", "userns_mode",
                "blkio_config", "storage_opt", "runtime", "credential_spec", "develop", "attach"))

NETWORK = OneOf(NULLABLE_OBJ, Obj({
    "driver": STR, "driver_opts": Obj(values=NUM_OR_STR, extensions=False), "internal": BOOL,
    "external": OneOf(BOOL, Obj({"name": STR})), "name": STR, "labels": LIST_OR_DICT, "attachable": BOOL,
    "enable_ipv6": BOOL,
    "ipam": Obj({"driver": STR, "config": Array(Obj({"subnet": STR, "gateway": STR, "ip_range": STR,
                                                       "aux_addresses": Obj(values=STR)}))}),
}))
VOLUME = OneOf(NULLABLE_OBJ, Obj({
    "driver": STR, "driver_opts": Obj(values=NUM_OR_STR, extensions=False),
    "external": OneOf(BOOL, Obj({"name": STR})), "name": STR, "labels": LIST_OR_DICT,
}))
FILE_OBJECT = Obj({"file": STR, "external": OneOf(BOOL, Obj({"name": STR})), "name": STR, "labels": LIST_OR_DICT,
                   "environment": STR, "content": STR})
INCLUDE = Array(OneOf(STR, Obj({"path": STR_OR_STRS, "project_directory": STR, "env_file": STR_OR_STRS})))

TOP = Obj({
    "version": NUM_OR_STR, "name": STR, "include": INCLUDE, "services": Obj(values=OneOf(NULLABLE_OBJ, SERVICE),
                                                                             extensions=False),
    "networks": Obj(values=NETWORK, extensions=False), "volumes": Obj(values=VOLUME, extensions=False),
    "secrets": Obj(values=FILE_OBJECT, extensions=False), "configs": Obj(values=FILE_OBJECT, extensions=False),
})


def validate_file(data: Any, where: str) -> None:
    """Check one loaded (interpolated) file; raises ComposeFileError naming ``where`` and the key."""
    if not isinstance(data, dict):
        raise fail(where, "", f"the top level must be a mapping, not a {_kind(data)}")
    TOP.check(data, "", where)
