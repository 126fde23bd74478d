"""Loading a project: find its files, read ``.env``, interpolate, validate each file, resolve
``include`` and ``extends``, merge the files in order and apply profiles.

File access goes through a ``read(path) -> str`` handed in (default: the filesystem), so the
logic is tested without files. The result is a merged, validated mapping plus where each part
came from; :mod:`.model` normalises it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockerbank.compose import schema
from dockerbank.compose.interpolate import interpolate_tree, parse_env_file
from dockerbank.compose.schema import ComposeFileError, fail

DISCOVERY = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
# keys whose lists are appended to (not replaced) when files or ``extends`` merge
_APPEND = ("ports", "expose", "dns", "dns_search", "dns_opt", "cap_add", "cap_drop", "devices", "tmpfs",
           "security_opt", "profiles", "volumes_from")
# keys of a service that are "list or mapping": made mappings before merging
_KEYED = ("environment", "labels", "depends_on", "networks", "extra_hosts")

Reader = Callable[[str], str]


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@dataclass
class LoadOptions:
    """What the command line says about the project (``-f``, ``-p``, ``--env-file``, ...)."""

    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    cwd: str = "."
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Loaded:
    """A merged, validated project before normalisation."""

    name: str
    working_dir: str
    config_files: list[str]
    env_files: list[str]
    data: dict[str, Any]
    environment: dict[str, str]
    origin: dict[str, str]                   # service -> the file that defined it (for errors)
    warnings: list[str] = field(default_factory=list)


def normalize_project_name(name: str) -> str:
    """docker-compose's rule: lower case, only ``[a-z0-9_-]`` kept."""
    return re.sub(r"[^-_a-z0-9]", "", name.lower())


def discover(cwd: str, exists: Callable[[str], bool] = os.path.exists) -> list[str]:
    """The compose file of ``cwd`` or of its nearest parent directory that has one."""
    here = Path(os.path.abspath(cwd))
    for directory in (here, *here.parents):
        for name in DISCOVERY:
            candidate = directory / name
            if exists(str(candidate)):
                override = [str(directory / o) for o in ("compose.override.yaml", "compose.override.yml",
                                                         "docker-compose.override.yml",
                                                         "docker-compose.override.yaml")
                            if name.startswith(o.split(".")[0]) and exists(str(directory / o))]
                return [str(candidate)] + override[:1]
    raise ComposeFileError(f"no configuration file provided: none of {', '.join(DISCOVERY)} "
                           f"in {here} or a parent directory (use -f)")


def load(opts: LoadOptions, read: Reader = _read_file, exists: Callable[[str], bool] = os.path.exists) -> Loaded:
    """Load the project the options name; raises ComposeFileError (one line) on bad input."""
    cwd = os.path.abspath(opts.cwd)
    files = list(opts.files) or [f for f in (opts.environ.get("COMPOSE_FILE") or "").split(os.pathsep) if f]
    files = [os.path.join(cwd, f) for f in files] if files else discover(cwd, exists)
    working_dir = os.path.abspath(os.path.join(cwd, opts.project_directory)) if opts.project_directory \
        else os.path.dirname(files[0])
    env_files = [os.path.join(cwd, f) for f in opts.env_files] or [os.path.join(working_dir, ".env")]
    environment: dict[str, str] = {}
    for path in env_files:
        if not opts.env_files and not exists(path):
            continue
        environment.update(parse_env_file(_read(read, path), path))
    environment.update(opts.environ)   # the shell wins over .env (compose's rule)
    warnings: list[str] = []
    missing_seen: set[str] = set()

    def missing(name: str) -> None:
        if name not in missing_seen:
            missing_seen.add(name)
            warnings.append(f'The "{name}" variable is not set. Defaulting to a blank string.')

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in files:
        data = _load_one(path, working_dir, environment, read, missing, stack=())
        for svc in (data.get("services") or {}):
            origin.setdefault(svc, path)
        merged = merge_files(merged, data)
    check_references(merged, files[0], origin)
    profiles = list(opts.profiles) or [p for p in (environment.get("COMPOSE_PROFILES") or "").split(",") if p]
    merged["services"] = apply_profiles(merged.get("services") or {}, profiles, files[0], origin)
    name = opts.project_name or environment.get("COMPOSE_PROJECT_NAME") or merged.get("name") \
        or os.path.basename(working_dir)
    name = normalize_project_name(name)
    if not name:
        raise ComposeFileError(f"{files[0]}: the project name is empty after normalisation: use -p NAME")
    return Loaded(name, working_dir, files, [p for p in env_files if exists(p)], merged, environment,
                  origin, warnings)


def _read(read: Reader, path: str) -> str:
    try:
        return read(path)
    except FileNotFoundError:
        raise ComposeFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ComposeFileError(f"{path}: {exc.strerror or exc}") from None


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document; a syntax error becomes one line with its position."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ComposeFileError(f"{where}: {position}invalid YAML: {problem}") from None


def _load_one(path: str, base_dir: str, env: Mapping[str, str], read: Reader, missing, stack: tuple) -> dict:
    """One file: parsed, interpolated, validated, its relative paths made absolute against
    ``base_dir``, its ``include`` and ``extends`` resolved."""
    if path in stack:
        raise ComposeFileError(f"{path}: include cycle: {' -> '.join((*stack, path))}")
    data = parse_yaml(_read(read, path), path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise fail(path, "", "the top level must be a mapping")
    data = _interpolated(data, env, path, missing)
    schema.validate_file(data, path)
    data = dict(data)
    services = {}
    for name, svc in (data.get("services") or {}).items():
        services[name] = _absolute_paths(keyed(svc or {}), base_dir)
    data["services"] = services
    for kind in ("secrets", "configs"):
        for obj in (data.get(kind) or {}).values():
            if obj.get("file"):
                obj["file"] = _abs(obj["file"], base_dir)
    data["services"] = {name: resolve_extends(name, services, path, base_dir, env, read, missing, ())
                        for name in services}
    for item in data.pop("include", None) or []:
        data = _include(data, item, path, base_dir, env, read, missing, (*stack, path))
    return data


def _interpolated(data: Any, env: Mapping[str, str], path: str, missing) -> Any:
    from dockerbank.compose.interpolate import InterpolationError

    try:
        return interpolate_tree(data, env, "", missing=missing)
    except InterpolationError as exc:
        raise ComposeFileError(f"{path}: {exc.message}") from None


def _include(data: dict, item, path: str, base_dir: str, env, read, missing, stack: tuple) -> dict:
    spec = {"path": item} if isinstance(item, str) else item
    paths = [spec["path"]] if isinstance(spec["path"], str) else list(spec["path"])
    paths = [_abs(p, base_dir) for p in paths]
    sub_dir = _abs(spec["project_directory"], base_dir) if spec.get("project_directory") else os.path.dirname(paths[0])
    sub_env = dict(env)
    for env_file in ([spec["env_file"]] if isinstance(spec.get("env_file"), str) else spec.get("env_file") or []):
        file_path = _abs(env_file, base_dir)
        sub_env = {**parse_env_file(_read(read, file_path), file_path), **sub_env}
    included: dict = {}
    for sub in paths:
        included = merge_files(included, _load_one(sub, sub_dir, sub_env, read, missing, stack))
    for kind in ("services", "networks", "volumes", "secrets", "configs"):
        mine = data.get(kind) or {}
        for key, value in (included.get(kind) or {}).items():
            if key in mine and mine[key] != value:
                raise fail(path, f"include.{kind}.{key}", f"conflicts with the definition in {paths[0]}")
            mine = {**mine, key: value} if key not in mine else mine
        if mine:
            data[kind] = mine
    return data


def resolve_extends(name: str, services: dict, path: str, base_dir: str, env, read, missing, seen: tuple) -> dict:
    """A service with its ``extends`` chain merged in (the base first, the service over it)."""
    svc = services[name]
    ext = svc.get("extends")
    if ext is None:
        return svc
    key = (path, name)
    if key in seen:
        raise fail(path, f"services.{name}.extends", "circular reference: "
                   + " -> ".join(f"{n}" for _, n in (*seen, key)))
    spec = {"service": ext} if isinstance(ext, str) else ext
    if spec.get("file"):
        other_path = _abs(spec["file"], base_dir)
        other = parse_yaml(_read(read, other_path), other_path) or {}
        other = _interpolated(other, env, other_path, missing)
        schema.validate_file(other, other_path)
        other_dir = os.path.dirname(other_path)
        pool = {n: _absolute_paths(keyed(s or {}), other_dir) for n, s in (other.get("services") or {}).items()}
        where, where_dir = other_path, other_dir
    else:
        pool, where, where_dir = services, path, base_dir
    if spec["service"] not in pool:
        raise fail(path, f"services.{name}.extends.service", f"service {spec['service']!r} is not defined in {where}")
    base = resolve_extends(spec["service"], pool, where, where_dir, env, read, missing, (*seen, key))
    merged = merge_service(base, {k: v for k, v in svc.items() if k != "extends"})
    merged.pop("extends", None)
    if isinstance(merged.get("networks"), dict):  # docker-compose 1.29 prints an extended service's so
        merged["networks"] = {k: {} if v is None else v for k, v in merged["networks"].items()}
    return merged


def keyed(svc: dict) -> dict:
    """A service whose "list or mapping" keys are mappings (``KEY=VALUE`` lists split)."""
    svc = dict(svc)
    for key in _KEYED:
        value = svc.get(key)
        if isinstance(value, list):
            if key == "depends_on":
                svc[key] = {name: {"condition": "service_started"} for name in value}
            elif key == "networks":
                svc[key] = {name: None for name in value}
            else:
                sep = ":" if key == "extra_hosts" else "="
                out: dict[str, Any] = {}
                for item in value:
                    k, has, v = item.partition("=" if "=" in item or key != "extra_hosts" else sep)
                    out[k] = v if has else None
                svc[key] = out
        elif isinstance(value, dict) and key == "depends_on":
            svc[key] = {name: {"condition": "service_started", **(cond or {})} for name, cond in value.items()}
    build = svc.get("build")
    if isinstance(build, dict) and isinstance(build.get("args"), list):
        svc["build"] = {**build, "args": {k: (v if has else None) for k, has, v in
                                          (a.partition("=") for a in build["args"])}}
    return svc


def _abs(value: str, base_dir: str) -> str:
    value = os.path.expanduser(value)
    return os.path.normpath(os.path.join(base_dir, value))


def _absolute_paths(svc: dict, base_dir: str) -> dict:
    """Relative build contexts, env files and bind sources resolved against ``base_dir``."""
    build = svc.get("build")
    if isinstance(build, str):
        svc["build"] = {"context": _abs(build, base_dir)}
    elif isinstance(build, dict):
        svc["build"] = {**build, "context": _abs(build.get("context") or ".", base_dir)}
    env_file = svc.get("env_file")
    if env_file is not None:
        svc["env_file"] = [_abs(p, base_dir) for p in ([env_file] if isinstance(env_file, str) else env_file)]
    volumes = []
    for item in svc.get("volumes") or []:
        if isinstance(item, str):
            parts = item.split(":")
            if len(parts) > 1 and (parts[0].startswith((".", "~")) or parts[0] == ""):
                parts[0] = _abs(parts[0], base_dir)
                item = ":".join(parts)
        elif isinstance(item, dict) and item.get("type") == "bind" and item.get("source"):
            item = {**item, "source": _abs(item["source"], base_dir)}
        volumes.append(item)
    if "volumes" in svc:
        svc["volumes"] = volumes
    return svc


def merge_service(base: dict, over: dict) -> dict:
    """Compose's merge of one service definition over another."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if key in _APPEND and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        elif key in _APPEND and isinstance(old, str) and isinstance(value, list):
            out[key] = [old] + [v for v in value if v != old]
        elif key == "volumes" and isinstance(old, list) and isinstance(value, list):
            out[key] = _merge_by(old, value, _volume_target)
        elif key in ("secrets", "configs") and isinstance(old, list) and isinstance(value, list):
            out[key] = _merge_by(old, value, lambda v: v if isinstance(v, str) else v.get("source"))
        elif key in ("command", "entrypoint"):
            out[key] = value
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _deep_merge(old, value)
        else:
            out[key] = value
    return out


def _deep_merge(old: dict, new: dict) -> dict:
    out = dict(old)
    for key, value in new.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _volume_target(item) -> str:
    if isinstance(item, dict):
        return item.get("target", "")
    parts = item.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _merge_by(old: list, new: list, key) -> list:
    index = {key(v): i for i, v in enumerate(old)}
    out = list(old)
    for item in new:
        if key(item) in index:
            out[index[key(item)]] = item
        else:
            out.append(item)
    return out


def merge_files(base: dict, over: dict) -> dict:
    """A later ``-f`` file over an earlier one: services merged one by one, the rest deeply."""
    out = dict(base)
    for key, value in over.items():
        if key == "services":
            services = dict(out.get("services") or {})
            for name, svc in (value or {}).items():
                services[name] = merge_service(services[name], svc) if name in services else svc
            out["services"] = services
        elif isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def check_references(data: dict, where: str, origin: Mapping[str, str]) -> None:
    """Cross-references of the merged project: services, networks, volumes, secrets and configs
    named by a service exist; ``depends_on`` has no cycle; every service has an image or build."""
    services = data.get("services") or {}
    networks = set(data.get("networks") or {}) | {"default"}
    volumes = set(data.get("volumes") or {})
    for name, svc in services.items():
        file = origin.get(name, where)
        if not svc.get("image") and not svc.get("build"):
            raise fail(file, f"services.{name}", "has neither an image nor a build context")
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                raise fail(file, f"services.{name}.depends_on.{dep}", f"undefined service {dep!r}")
        for net in svc.get("networks") or {}:
            if net not in networks:
                raise fail(file, f"services.{name}.networks.{net}", f"undefined network {net!r}")
        if svc.get("networks") and svc.get("network_mode"):
            raise fail(file, f"services.{name}.network_mode", "cannot be combined with networks")
        for i, vol in enumerate(svc.get("volumes") or []):
            source = vol.get("source") if isinstance(vol, dict) and vol.get("type", "volume") == "volume" \
                else (vol.split(":")[0] if isinstance(vol, str) and ":" in vol else "")
            if source and not source.startswith("/") and source not in volumes:
                raise fail(file, f"services.{name}.volumes[{i}]", f"undefined volume {source!r}")
        for kind in ("secrets", "configs"):
            for i, ref in enumerate(svc.get(kind) or []):
                source = ref if isinstance(ref, str) else ref.get("source")
                if source not in (data.get(kind) or {}):
                    raise fail(file, f"services.{name}.{kind}[{i}]", f"undefined {kind[:-1]} {source!r}")
    cycle = find_cycle({n: list(s.get("depends_on") or {}) for n, s in services.items()})
    if cycle:
        raise fail(origin.get(cycle[0], where), f"services.{cycle[0]}.depends_on",
                   "dependency cycle: " + " -> ".join(cycle))


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle of the dependency graph as a path (``a -> b -> a``), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def apply_profiles(services: dict, active: list[str], where: str, origin: Mapping[str, str]) -> dict:
    """Services without ``profiles`` plus those of an active profile; a kept service may not
    depend on one the profiles leave out."""
    kept = {n: s for n, s in services.items()
            if not s.get("profiles") or "*" in active or set(s["profiles"]) & set(active)}
    for name, svc in kept.items():
        for dep in svc.get("depends_on") or {}:
            if dep not in kept and (svc["depends_on"][dep] or {}).get("required", True):
                raise fail(origin.get(name, where), f"services.{name}.depends_on.{dep}",
                           f"service {dep!r} is not enabled by the active profiles ({', '.join(active) or 'none'})")
    return kept
