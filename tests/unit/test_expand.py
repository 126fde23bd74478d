"""Variable expansion (buildkit's shell lexer rules) and ARG scope."""

from __future__ import annotations

import pytest

from dockerbank.build.expand import ArgScope, ExpansionError, Lexer, env_dict, meta_scope, parse_build_args, set_env

ENV = {"A": "x y", "EMPTY": "", "P": "/usr/local/bin", "NAME": "app"}


@pytest.mark.parametrize("word, expected", [
    ("$A", "x y"),
    ("${A}", "x y"),
    ("pre${NAME}post", "preapppost"),
    ("$NAME.conf", "app.conf"),
    ("$UNSET", ""),
    ("${UNSET:-default}", "default"),
    ("${EMPTY:-default}", "default"),
    ("${EMPTY-default}", ""),
    ("${UNSET-default}", "default"),
    ("${NAME:-default}", "app"),
    ("${NAME:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-$NAME}", "app"),
    ("${UNSET:-${P}/x}", "/usr/local/bin/x"),
    ("\\$NAME", "$NAME"),
    ("\\${NAME}", "${NAME}"),
    ("'$NAME'", "$NAME"),
    ('"$NAME"', "app"),
    ('"\\$NAME"', "$NAME"),
    ('"a\\b"', "a\\b"),
    ('"say \\"hi\\""', 'say "hi"'),
    ("'a\\b'", "a\\b"),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("a$", "a$"),
    ("$1", ""),
    ("${P%/bin}", "/usr/local"),
    ("${P#/usr}", "/local/bin"),
    ("${P##*/}", "bin"),
    ("${P%%/*}", ""),
    ("${NAME/p/P}", "aPp"),
    ("${NAME//p/P}", "aPP"),
    ('"${UNSET:-a b}"', "a b"),
])
def test_process_word(word, expected):
    assert Lexer().process_word(word, ENV) == expected


def test_backtick_escape():
    lexer = Lexer("`")
    assert lexer.process_word("`$NAME", ENV) == "$NAME"
    assert lexer.process_word("C:\\path", ENV) == "C:\\path"


def test_process_words_splits_unquoted_expansions():
    lexer = Lexer()
    assert lexer.process_words("$A 'b c' d", ENV) == ["x", "y", "b c", "d"]
    assert lexer.process_words('"$A" e', ENV) == ["x y", "e"]
    assert lexer.process_words("  ", ENV) == []


@pytest.mark.parametrize("word, message", [
    ("${}", "bad substitution"),
    ("${A", "missing|unexpected end"),
    ("'open", "single-quote"),
    ('"open', "double-quote"),
    ("${UNSET:?must be set}", "must be set"),
    ("${UNSET?}", "UNSET"),
    ("${A:=x}", "unsupported modifier"),
])
def test_expansion_errors(word, message):
    with pytest.raises(ExpansionError, match=message):
        Lexer().process_word(word, ENV)


def test_raw_mode_keeps_quotes_for_heredocs():
    assert Lexer(raw=True).process_word("echo '$NAME' \"$NAME\" \\$x\n", ENV) == "echo 'app' \"app\" \\$x\n"


def test_build_args_parsing():
    env = {"FROMENV": "e"}
    assert parse_build_args(["A=1", "B=", "FROMENV", "MISSING"], env) == {"A": "1", "B": "", "FROMENV": "e"}
    with pytest.raises(Exception):
        parse_build_args(["=x"], env)


def test_meta_args_and_redeclaration():
    meta = meta_scope({"VERSION": "2"}, [("VERSION", "1"), ("BASE", "img:${VERSION}"), ("NODEF", None)])
    assert meta == {"VERSION": "2", "BASE": "img:2", "NODEF": None}
    scope = ArgScope({"VERSION": "2"}, meta)
    # not visible inside the stage until redeclared
    assert "BASE" not in scope.expansion_env([])
    assert scope.declare("BASE", None) == "img:2"
    assert scope.expansion_env([])["BASE"] == "img:2"


def test_build_arg_overrides_default_and_env_overrides_arg():
    scope = ArgScope({"MODE": "prod"}, {})
    assert scope.declare("MODE", "dev") == "prod"
    assert scope.declare("LEVEL", "3") == "3"
    env = scope.expansion_env(["LEVEL=9", "PATH=/bin"])
    assert env["LEVEL"] == "9" and env["MODE"] == "prod" and env["PATH"] == "/bin"


def test_declared_without_value_is_not_set():
    scope = ArgScope({}, {})
    assert scope.declare("X", None) is None
    assert "X" not in scope.values()


def test_predefined_proxy_args_reach_run_only():
    scope = ArgScope({"HTTP_PROXY": "http://proxy:3128", "OTHER": "1"}, {})
    assert scope.run_env() == {"HTTP_PROXY": "http://proxy:3128"}
    assert "HTTP_PROXY" not in scope.expansion_env([])


def test_env_helpers():
    assert env_dict(["A=1", "B=x=y", "A=2"]) == {"A": "2", "B": "x=y"}
    assert set_env(["PATH=/bin", "A=1"], "PATH", "/x") == ["PATH=/x", "A=1"]
    assert set_env(["PATH=/bin"], "B", "2") == ["PATH=/bin", "B=2"]
