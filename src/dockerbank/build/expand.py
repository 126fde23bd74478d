"""Variable expansion like buildkit's shell lexer (``frontend/dockerfile/shell/lex.go``), and ARG scope.

``Lexer.process_word`` expands ``$VAR``, ``${VAR}``, ``${VAR:-w}``, ``${VAR-w}``, ``${VAR:+w}``,
``${VAR+w}``, ``${VAR:?w}``, ``${VAR#p}``/``%``/``/`` forms, and removes quotes and escapes the
way Docker does: single quotes are literal, double quotes expand ``$`` and let the escape char
escape only ``"``, ``$`` and itself. ``BuildArgs`` carries the ARG rules of one build.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from collections.abc import Mapping

from dockerbank.errors import InvalidArgument

# Instructions whose arguments Docker expands (replaceEnvAllowed); RUN/CMD/ENTRYPOINT/SHELL leave
# expansion to the shell at run time, MAINTAINER and HEALTHCHECK are taken literally.
EXPANDING = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"}

# ARGs every build knows without an ARG line; they reach RUN but stay out of history and cache keys
# (SOURCE_DATE_EPOCH, as BuildKit's: the build's timestamps, so that tools in RUN honour it too; the
# builder keys its cache by it separately).
PREDEFINED_ARGS = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "SOURCE_DATE_EPOCH",
)
_SPECIAL = set("@*#?-$!0")


class ExpansionError(InvalidArgument):
    """A malformed substitution (``${}``, unterminated quote, ``${X:?msg}`` with X unset)."""


class _Words:
    """Builds the word list of ProcessWords: unquoted whitespace splits, quoted text does not."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace() and self.in_word:
            if self.word:
                self.words.append(self.word)
            self.word, self.in_word = "", False
        elif not ch.isspace():
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.in_word:
            self.words.append(self.word)
            self.word, self.in_word = "", False
        return self.words


class Lexer:
    """Docker's word lexer for one escape token. ``raw`` keeps quotes and escapes (heredoc bodies)."""

    def __init__(self, escape: str = "\\", raw: bool = False):
        self.escape = escape
        self.raw = raw

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand one word; quotes removed, whitespace kept."""
        return _Scan(word, env, self).run()[0]

    def process_words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Expand and split into words on unquoted whitespace (expanded values split too)."""
        return _Scan(text, env, self).run()[1]


class _Scan:
    def __init__(self, text: str, env: Mapping[str, str], lexer: Lexer):
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = lexer.escape
        self.raw = lexer.raw

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def run(self) -> tuple[str, list[str]]:
        return self.stop_on("")

    def stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "'" and not self.raw:
                text = self.single_quote()
                result.append(text)
                words.add_raw_string(text)
            elif ch == '"' and not self.raw:
                text = self.double_quote()
                result.append(text)
                words.add_raw_string(text)
            elif ch == "$":
                text = self.dollar()
                result.append(text)
                words.add_string(text)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw:
                        result.append(ch)
                        words.add_raw_char(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdigit():
                while self.peek().isdigit():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.lookup(name)[0]
        self.next()
        ch = self.peek()
        if not ch:
            raise ExpansionError("syntax error: missing '}'")
        if ch in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if not ch:
            raise ExpansionError("syntax error: missing '}'")
        value, is_set = self.lookup(name)
        if ch == "}":
            return value
        if ch == ":":
            modifier = self.next()
            if modifier not in ("+", "-", "?"):
                raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
            word = self.stop_on("}")[0]
            if modifier == "-":
                return word if not value else value
            if modifier == "+":
                return word if value else ""
            if not value:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("-", "+", "?"):
            word = self.stop_on("}")[0]
            if ch == "-":
                return value if is_set else word
            if ch == "+":
                return word if is_set else ""
            if not is_set:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch in ("#", "%"):
            longest = self.peek() == ch
            if longest:
                self.next()
            pattern = self.stop_on("}")[0]
            return _trim(value, pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            search = self.stop_on("/")[0] if "/" in self.text[self.pos:].split("}", 1)[0] else None
            if search is None:
                search, replacement = self.stop_on("}")[0], ""
            else:
                replacement = self.stop_on("}")[0]
            regex = fnmatch.translate(search)[4:-3] if search else ""
            if not regex:
                return value
            return re.sub(regex, replacement.replace("\\", "\\\\"), value, count=0 if replace_all else 1)
        raise ExpansionError(f"unsupported modifier ({ch}) in substitution")


def _trim(value: str, pattern: str, prefix: bool, longest: bool) -> str:
    """``${v#p}``/``${v##p}``/``${v%p}``/``${v%%p}``: remove a glob-matched prefix or suffix."""
    sizes = range(len(value), -1, -1) if longest else range(0, len(value) + 1)
    for size in sizes:
        part = value[:size] if prefix else value[len(value) - size:]
        if fnmatch.fnmatchcase(part, pattern):
            return value[size:] if prefix else value[:len(value) - size]
    return value


# --- ARG scope ------------------------------------------------------------------------------


def parse_build_args(items: list[str] | tuple[str, ...], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--build-arg K=V`` list -> dict; a bare ``K`` takes the environment's value or is dropped."""
    environ = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid build-arg {item!r}: expected NAME=VALUE or NAME")
        if sep:
            result[key] = value
        elif key in environ:
            result[key] = environ[key]
    return result


@dataclass
class ArgScope:
    """The ARGs of one stage: declared names with their values, in declaration order.

    ``meta`` are the ARGs before the first FROM (visible in FROM lines; inside a stage only
    after ``ARG NAME`` redeclares them). ``build_args`` from the command line override defaults.
    """

    build_args: Mapping[str, str]
    meta: Mapping[str, str | None]
    declared: dict[str, str | None] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def declare(self, name: str, default: str | None) -> str | None:
        """An ``ARG name[=default]`` line: the value is the build-arg, else the default, else the meta value."""
        if name in self.build_args:
            value: str | None = self.build_args[name]
        elif default is not None:
            value = default
        else:
            value = self.meta.get(name)
        self.declared[name] = value
        self.used.add(name)
        return value

    def values(self) -> dict[str, str]:
        """Declared ARGs that have a value (these expand and reach RUN)."""
        return {k: v for k, v in self.declared.items() if v is not None}

    def expansion_env(self, image_env: list[str]) -> dict[str, str]:
        """Environment for expansion: ARG values, overridden by the image's ENV (ENV wins over ARG)."""
        env = self.values()
        env.update(env_dict(image_env))
        return env

    def run_env(self) -> dict[str, str]:
        """ARGs handed to RUN: declared ones with values plus predefined proxy args given on the command line."""
        env = {k: v for k, v in self.build_args.items() if k in PREDEFINED_ARGS}
        env.update(self.values())
        return env


def meta_scope(build_args: Mapping[str, str], meta_pairs: list[tuple[str, str | None]], escape: str = "\\") -> dict[str, str | None]:
    """Values of the ARGs before the first FROM (each default may use the ones above it)."""
    lexer = Lexer(escape)
    meta: dict[str, str | None] = {}
    for name, default in meta_pairs:
        if name in build_args:
            meta[name] = build_args[name]
        elif default is not None:
            env = {k: v for k, v in meta.items() if v is not None}
            meta[name] = lexer.process_word(default, env)
        else:
            meta[name] = None
    return meta


def env_dict(env_list: list[str] | None) -> dict[str, str]:
    """``["K=V", ...]`` -> dict (later entries win)."""
    out: dict[str, str] = {}
    for item in env_list or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def set_env(env_list: list[str] | None, key: str, value: str) -> list[str]:
    """Replace or append ``key`` in an image's Env list, keeping the order Docker keeps."""
    out = list(env_list or [])
    for index, item in enumerate(out):
        if item.partition("=")[0] == key:
            out[index] = f"{key}={value}"
            return out
    out.append(f"{key}={value}")
    return out
