"""Variable interpolation of the Compose Specification (pure).

``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset),
``${VAR:?error}``/``${VAR?error}`` (required), ``${VAR:+alt}``/``${VAR+alt}`` and ``$$`` for a
literal ``$``. Defaults may themselves hold variables (``${A:-${B}}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from dockerbank.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(InvalidArgument):
    """A ``${VAR:?err}`` whose variable is missing, or a malformed ``${...}``."""


def interpolate(text: str, env: Mapping[str, str], *, where: str = "",
                missing: Callable[[str], None] | None = None) -> str:
    """``text`` with its variables replaced from ``env``; ``missing(name)`` is told of each
    unset variable that falls back to the empty string (compose warns about those)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(f"{where}: invalid interpolation format in {text!r}: no closing brace")
            out.append(_substitute(text[i + 2:end], env, where, text, missing))
            i = end + 1
            continue
        match = _NAME.match(text, i + 1)
        if match is None:  # a lone "$" stays as it is (compose accepts "$ 5")
            out.append("$")
            i += 1
            continue
        name = match.group(0)
        if name in env:
            out.append(env[name])
        elif missing is not None:
            missing(name)
        i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _substitute(body: str, env: Mapping[str, str], where: str, text: str,
                missing: Callable[[str], None] | None) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(f"{where}: invalid interpolation format for {text!r}")
    name, rest = match.group(0), body[match.end():]
    value = env.get(name)
    if not rest:
        if value is None:
            if missing is not None:
                missing(name)
            return ""
        return value
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise InterpolationError(f"{where}: invalid interpolation format for {text!r}")
    unset = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return interpolate(arg, env, where=where, missing=missing) if unset else str(value)
    if op in (":+", "+"):
        return "" if unset else interpolate(arg, env, where=where, missing=missing)
    if unset:
        message = interpolate(arg, env, where=where, missing=missing) or f"variable {name} is not set"
        raise InterpolationError(f"{where}: required variable {name} is missing a value: {message}")
    return str(value)


def interpolate_tree(node: Any, env: Mapping[str, str], path: str, *,
                     missing: Callable[[str], None] | None = None) -> Any:
    """Every string value of a loaded YAML tree interpolated (keys are left alone, as compose
    does); ``path`` names the node in errors (``file.yml: services.web.image``)."""
    if isinstance(node, str):
        return interpolate(node, env, where=path, missing=missing)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, f"{path}.{key}" if path else str(key), missing=missing)
                for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env, f"{path}[{i}]", missing=missing) for i, value in enumerate(node)]
    return node


def parse_env_file(text: str, where: str) -> dict[str, str]:
    """A ``.env``/``--env-file``: ``KEY=VALUE`` lines, ``#`` comments, optional ``export``,
    single quotes literal, double quotes with ``\\n`` escapes (compose's dotenv rules, short)."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _NAME.fullmatch(key):
            raise InvalidArgument(f"{where}:{number}: unexpected line {raw!r}: use KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        result[key] = value
    return result
