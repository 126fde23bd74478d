"""Go's text/template, as the docker CLI's ``--format`` renders it (pure: no I/O).

Users copy ``--format`` strings from docker's documentation and their scripts, so the language is
Go's, not an approximation: actions with ``{{- -}}`` trimming and comments, pipelines (``|``),
variables (``$``, ``$x := ...``, ``$x = ...``), ``if``/``else if``/``else``, ``range`` (with
``$i, $v :=``, ``else``, ``break``, ``continue``), ``with``/``else with``, parenthesised
sub-pipelines, Go's builtins (``and or not len index slice print printf println eq ne lt le gt ge
html js urlquery call``) and docker's own functions (``json split join title lower upper pad
truncate``). Data is dicts, lists and scalars (JSON-shaped) or objects whose attributes and methods
are looked up like a Go struct's fields and methods (``{{.Label "k"}}`` calls ``Label("k")``).
A dict is a Go map (a key it lacks prints ``<no value>``) unless it says it is a struct
(``GoStruct``: a field it lacks fails as Go's does) or docker inspect's document (``InspectDocument``).

Errors read like Go's (``template: :1: unclosed action``) and are ``TemplateError``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(InvalidArgument):
    """A template that does not parse or cannot be executed on its data."""


class GoMap(dict):
    """Data that is a map in docker (labels; rows no one declared a struct): ``{{json}}`` sorts its
    keys as Go does."""


@dataclass(frozen=True)
class Shape:
    """What a struct of docker's has beyond what a Dockerbank value shows: ``nil`` fields the value
    may leave out (``omitempty`` ones, ``SizeRw`` without ``--size``, what Dockerbank does not know):
    ``<no value>``, as is anything chained on them; ``maps``, fields that are Go maps, where a null
    is a nil map (any key of it is missing)."""

    nil: tuple[str, ...] = ()
    maps: tuple[str, ...] = ()


class _Fields(dict):
    """A dict whose keys are a struct's fields: looking up one it does not have fails (``missing``
    says how), but for its shape's ``nil`` fields."""

    def __init__(self, fields: Any = (), shape: Shape = Shape()):
        super().__init__(fields)
        self.shape = shape

    def missing(self, name: str) -> str:
        raise NotImplementedError


class GoStruct(_Fields):
    """Data that is a struct in docker (a formatter's row context, a ``types.Volume``): ``{{.Bad}}``
    fails with Go's ``can't evaluate field Bad in type T`` where a map prints ``<no value>``; ``index``
    and ``len`` refuse it, ``if`` holds it true. ``go_type`` is docker's type name, for those messages;
    ``sorted_json``: ``{{json .}}`` sorts its keys (docker's row contexts marshal themselves as maps)."""

    def __init__(self, fields: Any = (), go_type: str = "struct", *, sorted_json: bool = False,
                 shape: Shape = Shape()):
        super().__init__(fields, shape)
        self.go_type = go_type
        self.sorted_json = sorted_json

    def missing(self, name: str) -> str:
        return f"can't evaluate field {name} in type {self.go_type}"


class InspectDocument(_Fields):
    """An object of ``docker inspect`` (container, image, network) or a struct inside it: when the
    typed struct lacks a field, docker runs the template again on the raw JSON with
    ``missingkey=error``, so ``{{.Bad}}`` fails with ``map has no entry for key "Bad"``; ``index``
    and ``len`` work on it as on that map. Maps inside it (``.Config.Labels``) stay plain dicts."""

    def missing(self, name: str) -> str:
        return f'map has no entry for key "{name}"'


def inspect_document(doc: dict, shapes: dict[str, Shape]) -> InspectDocument:
    """``doc`` as docker's inspect sees it: the members at the dotted paths of ``shapes`` (``""``
    the document itself, ``"State"``, ``"HostConfig.LogConfig"``) are structs of that shape."""

    def convert(value: dict, path: str) -> InspectDocument:
        prefix = path + "." if path else ""
        return InspectDocument({key: convert(item, prefix + key) if isinstance(item, dict) and prefix + key in wanted
                                else item for key, item in value.items()}, shapes.get(path, Shape()))

    wanted = set(shapes)
    for path in shapes:  # a nested path needs its parents converted too
        parts = path.split(".")
        wanted.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return convert(doc, "")


class NilMap(GoMap):
    """A Go map that is nil (a struct's map field that JSON has as null): empty, but ``null`` in JSON."""


class _Missing:
    """A map key that is not there: Go prints it as ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()

# --- lexer -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)(?![\w.]))
  | (?P<variable>\$\w*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int
    col: int = 0             # byte offset in its line: Go's column in errors


def _lex_action(body: str, offset: int, line: int) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise TemplateError(f"template: :{line}: unexpected {body[pos]!r} in command")
        kind = match.lastgroup or ""
        if kind != "space":
            text = match.group()
            # a field right after ")" or a variable is a chain on it: (.A).B, $x.B
            if kind == "field" and tokens and tokens[-1].kind in ("rparen", "variable", "field") \
                    and match.start() == tokens[-1].pos - offset + len(tokens[-1].text) and text != ".":
                kind = "chain"
            tokens.append(_Tok(kind, text, offset + pos))
        pos = match.end()
    return tokens


# --- syntax tree -------------------------------------------------------------------------------

@dataclass
class _Text:
    text: str


@dataclass
class _Operand:
    kind: str               # field, variable, dot, ident, string, number, bool, nil, pipe
    value: Any = None
    chain: list[str] = field(default_factory=list)
    col: int | None = None  # where Go reports an error on it: the field, or the start of its chain


@dataclass
class _Command:
    args: list[_Operand]


@dataclass
class _Pipeline:
    commands: list[_Command]
    declare: list[str] = field(default_factory=list)
    assign: bool = False     # ``$x = ...`` rather than ``$x := ...``


@dataclass
class _Action:
    pipe: _Pipeline
    line: int
    col: int


@dataclass
class _Control:
    kind: str                # if, range, with
    pipe: _Pipeline
    body: list[Any]
    orelse: list[Any]
    line: int


@dataclass
class _Jump:
    kind: str                # break, continue


_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.items = self._split(source)
        self.index = 0
        self.loop_depth = 0

    @staticmethod
    def _split(source: str) -> list[Any]:
        """Text pieces and action token lists, with ``{{-``/``-}}`` trimming applied."""
        items: list[Any] = []
        pos = 0
        while True:
            start = source.find("{{", pos)
            if start < 0:
                items.append(_Text(source[pos:]))
                return items
            text = source[pos:start]
            body_start = start + 2
            if source.startswith("- ", body_start) or source.startswith("-\t", body_start) \
                    or source.startswith("-\n", body_start):
                text = text.rstrip(" \t\r\n")
                body_start += 1
            items.append(_Text(text))
            line = source.count("\n", 0, start) + 1
            if source.startswith("/*", body_start) or source.startswith("/*", body_start + 1) \
                    and source[body_start] == " " and items and source[start + 2] == "-":
                close = source.find("*/", body_start)
                end = source.find("}}", close + 2) if close >= 0 else -1
                if close < 0 or end < 0:
                    raise TemplateError(f"template: :{line}: unclosed comment")
                pos = end + 2
                if source[close + 2:end].strip() == "-":
                    pos = len(source) - len(source[pos:].lstrip(" \t\r\n"))
                continue
            end = _action_end(source, body_start)
            if end < 0:
                raise TemplateError(f"template: :{line}: unclosed action")
            body = source[body_start:end]
            trim_right = body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-")
            if trim_right:
                body = body[:-1]
            tokens = _lex_action(body, body_start, line)
            for tok in tokens:
                tok.col = tok.pos - (source.rfind("\n", 0, tok.pos) + 1)
            column = (tokens[0].pos if tokens else body_start) - (source.rfind("\n", 0, start) + 1)
            items.append((tokens, line, column))
            pos = end + 2
            if trim_right:
                pos = len(source) - len(source[pos:].lstrip(" \t\r\n"))

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"template: :{stop[1]}: unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], tuple[str, int, list[_Tok]] | None]:
        """Nodes up to an ``else`` or ``end`` (returned as the stop) or the end of input."""
        nodes: list[Any] = []
        while self.index < len(self.items):
            item = self.items[self.index]
            self.index += 1
            if isinstance(item, _Text):
                if item.text:
                    nodes.append(item)
                continue
            tokens, line, col = item
            if not tokens:
                raise TemplateError(f"template: :{line}: missing value for command")
            head = tokens[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                return nodes, (head.text, line, tokens[1:])
            if head.kind == "ident" and head.text in ("if", "range", "with"):
                nodes.append(self._control(head.text, tokens[1:], line))
            elif head.kind == "ident" and head.text in ("break", "continue"):
                if self.loop_depth == 0:
                    raise TemplateError(f"template: :{line}: {{{{{head.text}}}}} outside {{{{range}}}}")
                nodes.append(_Jump(head.text))
            elif head.kind == "ident" and head.text in ("define", "template", "block"):
                raise TemplateError(f"template: :{line}: {{{{{head.text}}}}} is not supported in --format")
            else:
                nodes.append(_Action(_PipeParser(tokens, line).pipeline(allow_decl=True), line, col))
        return nodes, None

    def _control(self, kind: str, tokens: list[_Tok], line: int) -> _Control:
        pipe = _PipeParser(tokens, line).pipeline(allow_decl=True, allow_two=kind == "range")
        if kind == "range":
            self.loop_depth += 1
        body, stop = self._list()
        if kind == "range":
            self.loop_depth -= 1
        if stop is None:
            raise TemplateError(f"template: :{line}: unexpected EOF")
        orelse: list[Any] = []
        if stop[0] == "else":
            rest = stop[2]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind in ("if", "with"):
                orelse = [self._control(rest[0].text, rest[1:], stop[1])]  # else if / else with: shares the end
            else:
                if rest:
                    raise TemplateError(f"template: :{stop[1]}: unexpected {rest[0].text!r} in else")
                orelse, stop = self._list()
                if stop is None or stop[0] != "end":
                    raise TemplateError(f"template: :{line}: expected end; found {stop[0] if stop else 'EOF'}")
        return _Control(kind, pipe, body, orelse, line)


def _action_end(source: str, start: int) -> int:
    """Index of the ``}}`` closing an action, skipping quoted strings."""
    pos = start
    while pos < len(source):
        char = source[pos]
        if char in "\"'`":
            close = pos + 1
            while close < len(source) and source[close] != char:
                close += 2 if source[close] == "\\" and char != "`" else 1
            pos = close + 1
            continue
        if source.startswith("}}", pos):
            return pos
        pos += 1
    return -1


class _PipeParser:
    def __init__(self, tokens: list[_Tok], line: int):
        self.tokens, self.line, self.index = tokens, line, 0

    def _peek(self) -> _Tok | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _error(self, message: str) -> TemplateError:
        return TemplateError(f"template: :{self.line}: {message}")

    def pipeline(self, *, allow_decl: bool, allow_two: bool = False, closing: str | None = None) -> _Pipeline:
        declare: list[str] = []
        assign = False
        if allow_decl:
            # $x := ..., $x = ..., $i, $v := ... (range)
            save = self.index
            names = []
            while (tok := self._peek()) is not None and tok.kind == "variable":
                names.append(tok.text)
                self.index += 1
                nxt = self._peek()
                if nxt is not None and nxt.kind == "comma" and allow_two and len(names) == 1:
                    self.index += 1
                    continue
                break
            nxt = self._peek()
            if names and nxt is not None and nxt.kind in ("declare", "assign"):
                declare, assign = names, nxt.kind == "assign"
                self.index += 1
            else:
                self.index = save
        commands = []
        while True:
            commands.append(self._command(closing))
            tok = self._peek()
            if tok is None or (closing and tok.kind == closing):
                break
            if tok.kind != "pipe":
                raise self._error(f"unexpected {tok.text!r} in command")
            self.index += 1
        if not commands[0].args:
            raise self._error("missing value for command")
        return _Pipeline(commands, declare, assign)

    def _command(self, closing: str | None) -> _Command:
        args: list[_Operand] = []
        while (tok := self._peek()) is not None and tok.kind != "pipe" and not (closing and tok.kind == closing):
            args.append(self._operand())
        if not args:
            raise self._error("missing value for command")
        return _Command(args)

    def _operand(self) -> _Operand:
        tok = self.tokens[self.index]
        self.index += 1
        if tok.kind == "field":
            operand = _Operand("dot") if tok.text == "." else _Operand("field", chain=tok.text[1:].split("."))
            # Go lexes .A.B as two fields and places the node at the second one
            second = tok.text.find(".", 1)
            operand.col = tok.col + second if second > 0 else tok.col
        elif tok.kind == "variable":
            operand = _Operand("variable", tok.text)
        elif tok.kind == "string":
            operand = _Operand("string", _unquote(tok.text, self.line))
        elif tok.kind == "raw":
            operand = _Operand("string", tok.text[1:-1])
        elif tok.kind == "char":
            operand = _Operand("number", ord(_unquote('"' + tok.text[1:-1] + '"', self.line)))
        elif tok.kind == "number":
            operand = _Operand("number", _number(tok.text, self.line))
        elif tok.kind == "ident":
            if tok.text in ("true", "false"):
                operand = _Operand("bool", tok.text == "true")
            elif tok.text == "nil":
                operand = _Operand("nil")
            elif tok.text in _KEYWORDS:
                raise self._error(f"unexpected <{tok.text}> in command")
            else:
                operand = _Operand("ident", tok.text)
        elif tok.kind == "lparen":
            inner = self.pipeline(allow_decl=False, closing="rparen")
            if self._peek() is None:
                raise self._error("unclosed left paren")
            self.index += 1
            operand = _Operand("pipe", inner)
        else:
            raise self._error(f"unexpected {tok.text!r} in operand")
        while (nxt := self._peek()) is not None and nxt.kind == "chain":
            if operand.col is None:
                operand.col = nxt.col
            operand.chain = operand.chain + nxt.text[1:].split(".")
            self.index += 1
        return operand


def _unquote(text: str, line: int) -> str:
    try:
        value = json.loads(text) if "\\x" not in text and "\\'" not in text and "\\a" not in text \
            else text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    except ValueError as exc:
        raise TemplateError(f"template: :{line}: bad string {text}") from exc
    return str(value)


def _number(text: str, line: int) -> int | float:
    clean = text.replace("_", "")
    try:
        if clean.lower().startswith(("0x", "-0x", "+0x", "0b", "-0b", "+0b", "0o", "-0o", "+0o")):
            return int(clean, 0)
        if re.fullmatch(r"[+-]?\d+", clean):
            return int(clean, 8) if len(clean.lstrip("+-")) > 1 and clean.lstrip("+-").startswith("0") \
                else int(clean)
        return float(clean)
    except ValueError as exc:
        raise TemplateError(f"template: :{line}: bad number syntax: {text!r}") from exc


# --- values ------------------------------------------------------------------------------------

def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def go_string(value: Any) -> str:
    """How text/template prints a value (fmt's %v)."""
    if value is MISSING or value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_string(k)}:{_nested(v)}" for k, v in sorted(value.items(),
                                                                                  key=lambda kv: str(kv[0]))) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_nested(v) for v in value) + "]"
    return str(value)


def _nested(value: Any) -> str:
    return "<nil>" if value is None else go_string(value)


def _go_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{abs(int(exponent)):02d}"
    return text


def go_json(value: Any, sort_keys: bool = False) -> str:
    """Go's json.Marshal: compact, HTML-escaped (docker's ``{{json .}}`` prints ``\\u003c``). Go sorts
    a map's keys and keeps a struct's field order: ``sort_keys`` for data that is a map in docker
    (a ``--format json`` row); dicts standing for structs (inspect) keep their order."""
    if isinstance(value, NilMap):
        return "null"
    sort_keys = sort_keys or isinstance(value, GoMap) or getattr(value, "sorted_json", False)
    if isinstance(value, dict):  # a context's methods ({{.Label "k"}}) are no data
        value = {k: v for k, v in value.items() if not callable(v)}
    text = json.dumps(None if value is MISSING else value, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default, sort_keys=sort_keys)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _type_name(value: Any) -> str:
    if isinstance(value, GoStruct):
        return value.go_type
    names = {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}",
             dict: "map[string]interface {}"}
    return names.get(type(value), type(value).__name__)


# --- functions ---------------------------------------------------------------------------------

def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    index = 0
    pos = 0
    for match in re.finditer(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])", fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[index]
        index += 1
        out.append(_format_one(arg, flags, width, precision, verb))
    out.append(fmt[pos:])
    if index < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type_name(a)}={go_string(a)}" for a in args[index:]) + ")")
    return "".join(out)


def _format_one(arg: Any, flags: str, width: str | None, precision: str | None, verb: str) -> str:
    # Go's flags as Python's format spec: '-' left-justifies (Python's '-' is a sign option)
    align = "<" if "-" in flags else ""
    sign = "+" if "+" in flags else " " if " " in flags else ""
    zero = "0" if "0" in flags and not align else ""
    alt = "#" if "#" in flags and verb in "box" else ""
    spec = f"{align}{sign}{alt}{zero}{width or ''}" + (f".{precision}" if precision else "")
    try:
        if verb in "dboxX" and isinstance(arg, int) and not isinstance(arg, bool):
            return format(arg, spec.split(".")[0] + verb)
        if verb in "xX" and isinstance(arg, str):
            return format(arg.encode().hex() if verb == "x" else arg.encode().hex().upper(), f"{align or '>'}{width or ''}")
        if verb in "eEfFgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return format(float(arg), spec + verb if precision or verb not in "fF" else spec + ".6" + verb)
        if verb == "q":
            return format(json.dumps(go_string(arg), ensure_ascii=False), spec)
        if verb == "t" and isinstance(arg, bool):
            return format(go_string(arg), spec)
        if verb in "sv":
            text = go_string(arg)
            if precision and verb == "s":
                text = text[:int(precision)]
            return format(text, (align or ">") + (width or ""))
    except ValueError:
        pass
    return f"%!{verb}({_type_name(arg)}={go_string(arg)})"


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg)
    return out


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, GoStruct):
            raise TemplateError(f"error calling index: can't index item of type {item.go_type.lstrip('*')}")
        if isinstance(item, dict):
            item = item.get(key, MISSING) if key in item else MISSING
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not -1 < key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        elif item is None or item is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {_type_name(item)}")
    return item


def _slice(item: Any, *bounds: int) -> Any:
    if not isinstance(item, (list, tuple, str)):
        raise TemplateError(f"error calling slice: can't slice item of type {_type_name(item)}")
    return item[slice(*bounds)] if len(bounds) > 1 else item[bounds[0]:] if bounds else item


def _len(item: Any) -> int:
    if isinstance(item, (list, tuple, str, dict)) and not isinstance(item, GoStruct):
        return len(item.encode() if isinstance(item, str) else item)
    raise TemplateError(f"error calling len: len of type {_type_name(item)}")


def _compare(op: str) -> Callable[..., bool]:
    def compare(a: Any, *others: Any) -> bool:
        if op == "eq":
            if not others:
                raise TemplateError("missing argument for comparison")
            return any(a == b for b in others)
        b = others[0]
        if isinstance(a, bool) or isinstance(b, bool) or type(a) is not type(b) and not (
                isinstance(a, (int, float)) and isinstance(b, (int, float))):
            raise TemplateError(f"error calling {op}: incompatible types for comparison")
        return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]

    return compare


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, (list, tuple)):
        raise TemplateError(f"error calling join: wrong type for value; expected []string; got {_type_name(items)}")
    return sep.join(go_string(i) for i in items)


def _pad(source: str, prefix: int, suffix: int) -> str:
    return (" " * prefix + source + " " * suffix) if source else source


def _truncate(source: str, length: int) -> str:
    return source[:length] if len(source) > length else source


def _html(*args: Any) -> str:
    import html

    return html.escape(_sprint(*args)).replace("&#x27;", "&#39;")


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(*args))


def _js(*args: Any) -> str:
    text = _sprint(*args)
    return "".join({"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
                    "=": "\\u003D", "\n": "\\n"}.get(c, c) for c in text)


def _call(function: Any, *args: Any) -> Any:
    if not callable(function):
        raise TemplateError(f"error calling call: non-function of type {_type_name(function)}")
    return function(*args)


BUILTINS: dict[str, Callable[..., Any]] = {
    "len": _len, "index": _index, "slice": _slice, "print": _sprint,
    "printf": _printf, "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"), "le": _compare("le"),
    "gt": _compare("gt"), "ge": _compare("ge"), "html": _html, "js": _js, "urlquery": _urlquery, "call": _call,
    # docker's (cli/templates): json, split, join, title, lower, upper, pad, truncate
    "json": go_json, "split": lambda s, sep: str(s).split(sep), "join": _join,
    "title": lambda s: re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s)),
    "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(), "pad": _pad, "truncate": _truncate,
}

# A table's header row is the template run on header names, where docker's functions keep the name.
HEADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **BUILTINS, "json": lambda v: v, "split": lambda v, _sep: v, "join": lambda v, _sep: v,
    "pad": lambda v, _a, _b: v, "truncate": lambda v, _n: v,
}


# --- execution ---------------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; :meth:`render` runs it on data."""

    def __init__(self, source: str, functions: dict[str, Callable[..., Any]] | None = None):
        self.source = source
        self.functions = BUILTINS if functions is None else functions
        self.nodes = _Parser(source).parse()
        self._check_functions(self.nodes)

    def _check_functions(self, nodes: list[Any]) -> None:
        for node in nodes:
            pipes = [node.pipe] if isinstance(node, (_Action, _Control)) else []
            for pipe in pipes:
                self._check_pipe(pipe)
            if isinstance(node, _Control):
                self._check_functions(node.body)
                self._check_functions(node.orelse)

    def _check_pipe(self, pipe: _Pipeline) -> None:
        for command in pipe.commands:
            for arg in command.args:
                if arg.kind == "ident" and arg.value not in self.functions and arg.value not in ("and", "or", "not"):
                    raise TemplateError(f'template: :1: function "{arg.value}" not defined')
                if arg.kind == "pipe":
                    self._check_pipe(arg.value)

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, [("$", data)], out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        mark = len(scope)
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self._pipe(node.pipe, dot, scope, node)
                if not node.pipe.declare:
                    out.append(go_string(value))
            elif isinstance(node, _Control):
                self._control(node, dot, scope, out)
            elif isinstance(node, _Jump):
                raise _Break() if node.kind == "break" else _Continue()
        del scope[mark:]

    def _control(self, node: _Control, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        mark = len(scope)
        if node.kind == "range":
            self._range(node, dot, scope, out)
        else:
            value = self._pipe(node.pipe, dot, scope, node)
            if truth(value):
                self._run(node.body, value if node.kind == "with" else dot, scope, out)
            else:
                self._run(node.orelse, dot, scope, out)
        del scope[mark:]

    def _range(self, node: _Control, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        pipe = node.pipe
        value = self._pipe(_Pipeline(pipe.commands), dot, scope, node)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            pairs = []
        else:
            raise TemplateError(f"template: :{node.line}: range can't iterate over {go_string(value)}")
        if not pairs:
            self._run(node.orelse, dot, scope, out)
            return
        for key, element in pairs:
            mark = len(scope)
            if len(pipe.declare) == 1:
                scope.append((pipe.declare[0], element))
            elif len(pipe.declare) == 2:
                scope.extend([(pipe.declare[0], key), (pipe.declare[1], element)])
            try:
                self._run(node.body, element, scope, out)
            except _Break:
                del scope[mark:]
                break
            except _Continue:
                pass
            del scope[mark:]

    def _pipe(self, pipe: _Pipeline, dot: Any, scope: list[tuple[str, Any]], node: Any) -> Any:
        value: Any = MISSING
        final: Any = _NOTHING
        for command in pipe.commands:
            value = self._command(command, dot, scope, final, node)
            final = value
        for name in pipe.declare:
            if pipe.assign:
                for i in range(len(scope) - 1, -1, -1):
                    if scope[i][0] == name:
                        scope[i] = (name, value)
                        break
                else:
                    raise TemplateError(f"template: :{node.line}: undefined variable: {name}")
            else:
                scope.append((name, value))
        return value

    def _command(self, command: _Command, dot: Any, scope: list[tuple[str, Any]], final: Any, node: Any) -> Any:
        head, rest = command.args[0], command.args[1:]
        if head.kind == "ident":
            name = head.value
            if name in ("and", "or"):
                return self._and_or(name, rest, dot, scope, final, node)
            args = [self._operand(a, dot, scope, node) for a in rest]
            if final is not _NOTHING:
                args.append(final)
            if name == "not":
                if len(args) != 1:
                    raise TemplateError(f"template: :{node.line}: wrong number of args for not: want 1 got {len(args)}")
                return not truth(args[0])
            try:
                return self.functions[name](*args)
            except TemplateError as exc:
                raise TemplateError(self._where(node, name) + str(exc).removeprefix("template: ")) from exc
            except TypeError as exc:
                raise TemplateError(self._where(node, name) + f"wrong number of args for {name}: {exc}") from exc
            except (ValueError, AttributeError) as exc:
                raise TemplateError(self._where(node, name) + f"error calling {name}: {exc}") from exc
        if head.kind in ("field", "variable") and head.chain and (rest or final is not _NOTHING):
            args = [self._operand(a, dot, scope, node) for a in rest]
            if final is not _NOTHING:
                args.append(final)
            return self._operand(head, dot, scope, node, call_args=args)
        if rest or final is not _NOTHING:
            raise TemplateError(f"template: :{node.line}: can't give argument to non-function "
                                f"{self._describe(head)}")
        return self._operand(head, dot, scope, node)

    def _and_or(self, name: str, rest: list[_Operand], dot: Any, scope: list[tuple[str, Any]], final: Any,
                node: Any) -> Any:
        operands: list[Any] = list(rest)
        if final is not _NOTHING:
            operands.append(_Value(final))
        if not operands:
            raise TemplateError(f"template: :{node.line}: wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for operand in operands:  # short-circuit, as Go 1.18+
            value = operand.value if isinstance(operand, _Value) else self._operand(operand, dot, scope, node)
            if truth(value) != (name == "and"):
                return value
        return value

    def _operand(self, operand: _Operand, dot: Any, scope: list[tuple[str, Any]], node: Any,
                 call_args: list[Any] | None = None) -> Any:
        kind = operand.kind
        if kind == "field":
            base = dot
        elif kind == "variable":
            for name, value in reversed(scope):
                if name == operand.value:
                    base = value
                    break
            else:
                raise TemplateError(f"template: :{node.line}: undefined variable \"{operand.value}\"")
        elif kind == "dot":
            base = dot
        elif kind == "pipe":
            base = self._pipe(operand.value, dot, scope, node)
        elif kind in ("string", "number", "bool"):
            base = operand.value
        elif kind == "nil":
            if call_args is None:
                raise TemplateError(f"template: :{node.line}: nil is not a command")
            base = None
        else:  # a function name used as a value: call it without arguments
            return self._command(_Command([operand]), dot, scope, _NOTHING, node)
        return self._chain(base, operand, call_args, node)

    def _chain(self, value: Any, operand: _Operand, call_args: list[Any] | None, node: Any) -> Any:
        chain = operand.chain
        for i, name in enumerate(chain):
            last = i == len(chain) - 1
            if isinstance(value, _Fields):
                if name not in value:
                    # a nil field ends the chain: docker's raw-JSON retry of inspect has no such key
                    if name not in value.shape.nil or not last and isinstance(value, InspectDocument):
                        raise TemplateError(self._where(node, self._text(operand), operand.col)
                                            + value.missing(name))
                    value = MISSING  # as a key a map lacks: <no value>, and so is whatever is chained on it
                    continue
                if value[name] is None and name in value.shape.maps:
                    # a nil map in Go: prints map[], marshals as null, any key asked of it is missing
                    return NilMap() if last else MISSING
            if isinstance(value, dict):
                value = value.get(name, MISSING)
                if callable(value) and not isinstance(value, type):
                    value = value(*(call_args or [])) if last else value()
                elif last and call_args:
                    raise TemplateError(self._where(node, "." + name) + f"{name} is not a method but has arguments")
                continue
            if value is None or value is MISSING:
                if value is MISSING:
                    return MISSING
                raise TemplateError(self._where(node, self._text(operand), operand.col)
                                    + f"nil pointer evaluating .{name}")
            if isinstance(value, (str, int, float, bool, list, tuple)) or not hasattr(value, name) \
                    or name.startswith("_"):
                raise TemplateError(self._where(node, self._text(operand), operand.col)
                                    + f"can't evaluate field {name} in type {_type_name(value)}")
            attribute = getattr(value, name)
            if callable(attribute):
                value = attribute(*(call_args or [])) if last else attribute()
            else:
                if last and call_args:
                    raise TemplateError(self._where(node, "." + name) + f"{name} is not a method but has arguments")
                value = attribute
        return value

    def _where(self, node: Any, what: str, col: int | None = None) -> str:
        """Go's error context: line, column (of the operand, else of the action) and the node."""
        col = getattr(node, "col", 0) if col is None else col
        return f'template: :{node.line}:{col}: executing "" at <{what}>: '

    @staticmethod
    def _text(operand: _Operand) -> str:
        """An operand with its chain as Go prints the node: ``.A.B``, ``$x.A``."""
        tail = "." + ".".join(operand.chain)
        return str(operand.value) + tail if operand.kind == "variable" else tail

    @staticmethod
    def _describe(operand: _Operand) -> str:
        return {"string": json.dumps(operand.value), "number": str(operand.value), "bool": str(operand.value).lower(),
                "dot": "."}.get(operand.kind, str(operand.value))


class _Value:
    """An already computed operand (the piped value of ``and``/``or``)."""

    def __init__(self, value: Any):
        self.value = value


_NOTHING = object()


def render(source: str, data: Any, functions: dict[str, Callable[..., Any]] | None = None) -> str:
    """Parse ``source`` and run it on ``data`` (``TemplateError`` when either fails)."""
    return Template(source, functions).render(data)


def tabwriter(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's text/tabwriter as docker's tables use it (minwidth 10, tabwidth 1, padding 3, spaces):
    tab-terminated cells are aligned per column; the text after a line's last tab is not."""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for column, cell in enumerate(cells[:-1]):
            widths[column] = max(widths.get(column, minwidth), len(cell) + padding)
    return ["".join(cell.ljust(widths[c]) for c, cell in enumerate(cells[:-1])) + cells[-1] for cells in rows]
