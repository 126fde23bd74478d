"""``.dockerignore``: Docker's pattern rules (moby/patternmatcher) and the context walker.

A pattern is ``filepath.Match`` syntax plus ``**`` (any number of directories); a leading
``!`` makes it an exception. Patterns are cleaned (``./a/`` -> ``a``, a leading ``/`` dropped),
evaluated in order, and the last one that matches a path decides; a pattern that matches a
parent directory matches everything below it.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from dockerbank.errors import InvalidArgument


@dataclass(frozen=True)
class Pattern:
    text: str          # cleaned pattern
    exclusion: bool    # a "!" exception
    regex: re.Pattern
    dirs: tuple[str, ...]


def read_patterns(text: str) -> list[str]:
    """The lines of a .dockerignore as patterns: comments and blank lines dropped, each cleaned."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def _compile(pattern: str) -> re.Pattern:
    """Translate one cleaned pattern to a regex the way patternmatcher does."""
    out = "^"
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
                continue
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out += re.escape(pattern[i])
            else:
                out += "\\\\"
        elif ch == "[":
            end = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if end < 0:
                raise InvalidArgument(f"syntax error in .dockerignore pattern {pattern!r}: unterminated [")
            body = pattern[i + 1:end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out += "[" + ("^" if negate else "") + body + "]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$", re.DOTALL)


class PatternMatcher:
    """Decides whether a context path is excluded by an ordered list of patterns."""

    def __init__(self, patterns: list[str]):
        self.patterns: list[Pattern] = []
        for text in patterns:
            exclusion = text.startswith("!")
            body = text[1:] if exclusion else text
            if not body:
                raise InvalidArgument("illegal exclusion pattern: \"!\"")
            self.patterns.append(Pattern(body, exclusion, _compile(body), tuple(body.split("/"))))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (slash-separated, relative to the context) is excluded."""
        path = posixpath.normpath(path)
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion and not matched:
                continue  # an exception can only re-include what is excluded so far
            hit = bool(pattern.regex.match(path))
            if not hit and parents:
                for depth in range(1, len(parents) + 1):
                    if pattern.regex.match("/".join(parents[:depth])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception pattern could re-include something under an excluded directory."""
        if not self.has_exclusions:
            return False
        prefix = directory + "/"
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            if "**" in pattern.text or pattern.text.startswith(prefix) or _could_match_dir(pattern, directory):
                return True
        return False


def _could_match_dir(pattern: Pattern, directory: str) -> bool:
    """Whether the pattern's leading components could match ``directory``'s components."""
    parts = directory.split("/")
    if len(pattern.dirs) <= len(parts):
        return False
    for index, part in enumerate(parts):
        if not _compile(pattern.dirs[index]).match(part):
            return False
    return True


@dataclass(frozen=True)
class ContextEntry:
    """A path of the build context (relative, slash-separated) and its lstat result."""

    path: str
    stat: os.stat_result


def walk_context(root: Path, patterns: list[str]) -> Iterator[ContextEntry]:
    """The entries of ``root`` that the patterns leave in, sorted like a tar of the context.

    Excluded directories are not descended into unless an exception pattern may re-include
    something below them (then only the re-included entries are yielded).
    """
    matcher = PatternMatcher(patterns)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        abs_dir = root / rel_dir if rel_dir else root
        try:
            names = sorted(os.listdir(abs_dir), reverse=True)
        except OSError as exc:
            raise InvalidArgument(f"cannot read build context directory {abs_dir}: {exc.strerror}") from exc
        children = []
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(abs_dir / name)
            is_dir = os.path.isdir(abs_dir / name) and not os.path.islink(abs_dir / name)
            excluded = matcher.excluded(rel)
            if excluded and not (is_dir and matcher.may_include_below(rel)):
                continue
            children.append((rel, st, excluded, is_dir))
        for rel, st, excluded, is_dir in reversed(children):
            if not excluded:
                yield ContextEntry(rel, st)
            if is_dir:
                # descend depth-first in name order: push and then pop this directory next
                pass
        for rel, st, excluded, is_dir in children:
            if is_dir:
                stack.append(rel)


def included_paths(root: Path, patterns: list[str]) -> list[str]:
    """Sorted relative paths of the context entries left in (for tests and summaries)."""
    return sorted(entry.path for entry in walk_context(root, patterns))
