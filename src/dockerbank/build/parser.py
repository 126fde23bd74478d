"""Dockerfile parser: directives, continuations, heredocs, exec/shell forms, every instruction.

Modelled on buildkit's ``frontend/dockerfile/parser`` and ``instructions/parse.go``: a logical
line is read (escape-char continuations joined, comment and empty lines inside a continuation
dropped), its heredocs are read after it, and each instruction's arguments are split into the
raw words that the expander (``expand.py``) later turns into values. Parsing does no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from dockerbank.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be built; the message names the file and the line."""


@dataclass(frozen=True)
class Heredoc:
    """One ``<<EOF`` document: its name (the delimiter), content, and whether $ expands in it."""

    name: str
    content: str
    expand: bool
    strip_tabs: bool = False


@dataclass
class Instruction:
    """One Dockerfile instruction with its arguments split but not yet expanded."""

    keyword: str                    # upper case: RUN, COPY, ...
    line: int                       # first line (1-based)
    end_line: int
    original: str                   # the logical line as written (continuations joined)
    flags: dict[str, str | bool] = field(default_factory=dict)
    rest: str = ""                  # arguments after the flags, as written
    json_form: bool = False         # exec form (JSON array) for RUN/CMD/ENTRYPOINT/SHELL/VOLUME/COPY/ADD
    cmd: list[str] = field(default_factory=list)        # RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK: argv or [shell text]
    words: list[str] = field(default_factory=list)      # raw words: FROM, COPY/ADD, EXPOSE, VOLUME, USER, ...
    pairs: list[tuple[str, str | None]] = field(default_factory=list)  # ENV/LABEL/ARG: raw key, raw value
    heredocs: list[Heredoc] = field(default_factory=list)
    sub: "Instruction | None" = None                    # ONBUILD's trigger
    health: dict = field(default_factory=dict)          # HEALTHCHECK options (raw strings)

    def __str__(self) -> str:
        return self.original


@dataclass
class Dockerfile:
    """A parsed Dockerfile: parser directives and the instructions in order."""

    instructions: list[Instruction]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    name: str = "Dockerfile"
    warnings: list[str] = field(default_factory=list)


_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = {"escape", "syntax", "check"}
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)(.*)$")
HEREDOC_INSTRUCTIONS = {"RUN", "COPY", "ADD"}
# instruction -> accepted flags (True: boolean flag that may come without a value)
_FLAGS: dict[str, dict[str, bool]] = {
    "FROM": {"platform": False},
    "RUN": {"mount": False, "network": False, "security": False},
    "COPY": {"from": False, "chown": False, "chmod": False, "link": True, "parents": True, "exclude": False},
    "ADD": {"chown": False, "chmod": False, "link": True, "keep-git-dir": True, "checksum": False, "exclude": False},
    "HEALTHCHECK": {"interval": False, "timeout": False, "start-period": False, "start-interval": False, "retries": False},
}
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "COPY", "ADD", "WORKDIR", "USER", "EXPOSE",
    "VOLUME", "HEALTHCHECK", "STOPSIGNAL", "SHELL", "ONBUILD", "MAINTAINER",
}
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$")


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``; raise DockerfileError naming ``name:line`` on any syntax error."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    directives, first = _directives(lines, name)
    escape = directives.get("escape", "\\")
    result = Dockerfile([], escape, directives, name)
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    i = first
    while i < len(lines):
        raw = lines[i]
        stripped = raw.lstrip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        line, ended = _trim_continuation(stripped, continuation)
        i += 1
        while not ended and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.strip().startswith("#"):
                continue
            if not nxt.strip():
                result.warnings.append(f"{name}:{i}: empty continuation line")
                continue
            part, ended = _trim_continuation(nxt, continuation)
            line += part
        try:
            keyword, _, _ = line.strip().partition(" ")
            heredocs: list[Heredoc] = []
            if keyword.upper() in HEREDOC_INSTRUCTIONS:
                heredocs, i = _read_heredocs(line, lines, i, escape, name)
            inst = _instruction(line, escape, heredocs)
        except DockerfileError:
            raise
        except InvalidArgument as exc:
            raise DockerfileError(f"{name}:{start + 1}: {exc.message}") from exc
        inst.line, inst.end_line = start + 1, i
        result.instructions.append(inst)
    return result


def _directives(lines: list[str], name: str) -> tuple[dict[str, str], int]:
    """Parser directives at the very top; the first other line (even an empty one) ends them."""
    found: dict[str, str] = {}
    index = 0
    for index, line in enumerate(lines):
        match = _DIRECTIVE_RE.match(line.strip())
        if not match:
            return found, index
        key, value = match.group(1).lower(), match.group(2)
        if key not in _KNOWN_DIRECTIVES:
            continue  # an unknown directive is a comment, but does not end the directive block
        if key in found:
            raise DockerfileError(f"{name}:{index + 1}: only one {key} parser directive can be used")
        if key == "escape" and value not in ("\\", "`"):
            raise DockerfileError(f"{name}:{index + 1}: invalid escape token '{value}' does not match ` or \\")
        found[key] = value
    return found, len(lines) if lines else 0


def _trim_continuation(line: str, continuation: re.Pattern) -> tuple[str, bool]:
    if continuation.search(line):
        return continuation.sub("", line), False
    return line, True


def _read_heredocs(line: str, lines: list[str], i: int, escape: str, name: str) -> tuple[list[Heredoc], int]:
    """Find ``<<EOF`` words on the instruction line and read their bodies from the following lines."""
    from dockerbank.build.expand import Lexer

    docs: list[Heredoc] = []
    for word in parse_words(line, escape):
        match = _HEREDOC_RE.match(word)
        if not match or not match.group(3):
            continue
        strip_tabs = match.group(2) == "-"
        raw_delim = match.group(3)
        delim = Lexer(escape).process_word(raw_delim, {})
        if not delim or "<" in delim:
            continue
        expand = raw_delim == delim  # any quoting or escaping of the delimiter disables expansion
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise DockerfileError(f"{name}:{i}: unterminated heredoc {delim}")
            text = lines[i]
            i += 1
            compare = text.lstrip("\t") if strip_tabs else text
            if compare == delim:
                break
            body.append(compare)
        content = "".join(part + "\n" for part in body)
        docs.append(Heredoc(delim, content, expand, strip_tabs))
    return docs, i


def _split_flags(rest: str, keyword: str) -> tuple[dict[str, str | bool], str]:
    """Leading ``--name=value`` flags (buildkit's BFlags): known per instruction, ``=`` required."""
    allowed = _FLAGS.get(keyword, {})
    flags: dict[str, str | bool] = {}
    while True:
        rest = rest.lstrip()
        match = re.match(r"--(\S*)", rest)
        if not match or rest.startswith("-- ") or rest == "--":
            return flags, rest
        token = match.group(1)
        rest = rest[match.end():]
        key, has_value, value = token.partition("=")
        if key not in allowed:
            raise InvalidArgument(f"unknown flag: {key}")
        if not has_value:
            if not allowed[key]:
                raise InvalidArgument(f"missing a value on flag: {key}")
            flags[key] = True
        elif allowed[key]:
            if value.lower() not in ("true", "false"):
                raise InvalidArgument(f"expecting boolean value for flag {key}, not: {value}")
            flags[key] = value.lower() == "true"
        else:
            if key in flags and key != "exclude":
                raise InvalidArgument(f"duplicate flag specified: {key}")
            flags[key] = value
        if not rest or rest[0] in " \t":
            continue
        return flags, rest


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Split on whitespace like buildkit's parseWords: quotes and escapes are kept in the words."""
    words: list[str] = []
    word = ""
    quote = ""
    blank_ok = False
    in_word = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word += ch
            i += 1
            ch = rest[i]
        word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _maybe_json(rest: str) -> list[str] | None:
    """The exec form if ``rest`` is a JSON array of strings, else None (shell form, like Docker)."""
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


def _name_values(rest: str, keyword: str, escape: str) -> list[tuple[str, str | None]]:
    """ENV/LABEL: ``key=value ...`` or the legacy ``key value`` form (the space-or-= that comes first decides)."""
    words = parse_words(rest, escape)
    if not words:
        raise InvalidArgument(f"{keyword} must have two arguments")
    if "=" not in words[0]:
        parts = re.split(r"[ \t]+", rest.strip(), maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise InvalidArgument(f"{keyword} must have two arguments")
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidArgument(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        if not key:
            raise InvalidArgument(f"{keyword} names can not be blank")
        pairs.append((key, value))
    return pairs


def _instruction(line: str, escape: str, heredocs: list[Heredoc]) -> Instruction:
    text = line.strip()
    parts = re.split(r"\s+", text, maxsplit=1)
    keyword = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if keyword not in INSTRUCTIONS:
        raise InvalidArgument(f"unknown instruction: {parts[0]}")
    flags, rest = _split_flags(rest, keyword)
    inst = Instruction(keyword, 0, 0, text, flags, rest.strip(), heredocs=heredocs)
    handler = _HANDLERS[keyword]
    handler(inst, escape)
    return inst


def _need_args(inst: Instruction) -> None:
    if not inst.rest:
        what = {"ENV": "ENV must have two arguments", "LABEL": "LABEL must have two arguments"}
        raise InvalidArgument(what.get(inst.keyword, f"{inst.keyword} requires at least one argument"))


def _h_from(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    words = parse_words(inst.rest, escape)
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not _STAGE_NAME_RE.match(name):
            raise InvalidArgument(f"invalid name for build stage: {words[2]!r}, name can't start with a number or contain symbols")
        inst.words = [words[0], name]
    elif len(words) == 1:
        inst.words = [words[0]]
    else:
        raise InvalidArgument("FROM requires either one or three arguments")


def _h_command(inst: Instruction, escape: str) -> None:
    """RUN/CMD/ENTRYPOINT: exec form when the rest is a JSON array of strings, else shell form."""
    if inst.keyword == "RUN" and not inst.rest:
        raise InvalidArgument("RUN requires at least one argument")
    parsed = _maybe_json(inst.rest)
    if parsed is not None:
        inst.json_form, inst.cmd = True, parsed
    elif inst.rest:
        inst.cmd = [inst.rest]
    else:
        inst.cmd = []


def _h_shell(inst: Instruction, escape: str) -> None:
    parsed = _maybe_json(inst.rest)
    if parsed is None or not parsed:
        raise InvalidArgument("SHELL requires the arguments to be in JSON form")
    inst.json_form, inst.cmd = True, parsed


def _h_env_label(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    inst.pairs = _name_values(inst.rest, inst.keyword, escape)


def _h_arg(inst: Instruction, escape: str) -> None:
    words = parse_words(inst.rest, escape)
    if not words:
        raise InvalidArgument("ARG requires at least one argument")
    for word in words:
        key, sep, value = word.partition("=")
        if not key:
            raise InvalidArgument("ARG names can not be blank")
        inst.pairs.append((key, value if sep else None))


def _h_copy(inst: Instruction, escape: str) -> None:
    parsed = _maybe_json(inst.rest)
    if parsed is not None:
        inst.json_form, inst.words = True, parsed
    else:
        inst.words = parse_words(inst.rest, escape)
    if not inst.heredocs and len(inst.words) < 2:
        raise InvalidArgument(f"{inst.keyword} requires at least two arguments, but only one was provided. Destination could not be determined.")
    if inst.heredocs and len(inst.words) < 2:
        raise InvalidArgument(f"{inst.keyword} requires a destination after its heredocs")


def _h_words(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    inst.words = parse_words(inst.rest, escape)


def _h_single(inst: Instruction, escape: str) -> None:
    """WORKDIR/USER/STOPSIGNAL/MAINTAINER: one string argument (the whole rest)."""
    _need_args(inst)
    if inst.keyword in ("USER", "STOPSIGNAL") and len(parse_words(inst.rest, escape)) != 1:
        raise InvalidArgument(f"{inst.keyword} requires exactly one argument")
    inst.words = [inst.rest]


def _h_volume(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    parsed = _maybe_json(inst.rest)
    if parsed is not None:
        inst.json_form, inst.words = True, parsed
    else:
        inst.words = parse_words(inst.rest, escape)
    if not any(w.strip() for w in inst.words):
        raise InvalidArgument("VOLUME specified can not be an empty string")


def _h_healthcheck(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    kind, _, rest = inst.rest.partition(" ")
    kind = kind.upper()
    if kind == "NONE":
        if rest.strip() or inst.flags:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        inst.cmd = ["NONE"]
        return
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    rest = rest.strip()
    if not rest:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    parsed = _maybe_json(rest)
    if parsed is not None:
        inst.json_form, inst.cmd = True, ["CMD", *parsed]
    else:
        inst.cmd = ["CMD-SHELL", rest]
    for key in ("interval", "timeout", "start-period", "start-interval"):
        if key in inst.flags:
            inst.health[key] = parse_duration(str(inst.flags[key]), key)
    if "retries" in inst.flags:
        try:
            retries = int(str(inst.flags["retries"]))
        except ValueError as exc:
            raise InvalidArgument(f"invalid retries value: {inst.flags['retries']}") from exc
        if retries < 0:
            raise InvalidArgument("--retries cannot be negative")
        inst.health["retries"] = retries


def _h_onbuild(inst: Instruction, escape: str) -> None:
    _need_args(inst)
    trigger_kw = inst.rest.split(None, 1)[0].upper()
    if trigger_kw == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_kw in ("FROM", "MAINTAINER"):
        raise InvalidArgument(f"{trigger_kw} isn't allowed as an ONBUILD trigger")
    inst.sub = _instruction(inst.rest, escape, [])


def parse_duration(text: str, flag: str = "duration") -> int:
    """A HEALTHCHECK flag's duration (``30s``, ``1m30s``, ``500ms``) -> nanoseconds; 0 stays 0."""
    from dockerbank.units import go_duration_ns

    value = None if text.startswith(("-", "+")) else go_duration_ns(text)
    if value is None:
        raise InvalidArgument(f"invalid duration for --{flag}: {text!r}")
    if 0 < value < 10**6:
        raise InvalidArgument(f"{flag} cannot be less than 1ms")
    return value


_HANDLERS = {
    "FROM": _h_from,
    "RUN": _h_command,
    "CMD": _h_command,
    "ENTRYPOINT": _h_command,
    "SHELL": _h_shell,
    "ENV": _h_env_label,
    "LABEL": _h_env_label,
    "ARG": _h_arg,
    "COPY": _h_copy,
    "ADD": _h_copy,
    "EXPOSE": _h_words,
    "VOLUME": _h_volume,
    "WORKDIR": _h_single,
    "USER": _h_single,
    "STOPSIGNAL": _h_single,
    "MAINTAINER": _h_single,
    "HEALTHCHECK": _h_healthcheck,
    "ONBUILD": _h_onbuild,
}
