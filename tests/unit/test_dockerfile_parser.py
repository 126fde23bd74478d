"""Dockerfile parser: directives, continuations, heredocs, forms, every instruction, errors with lines."""

from __future__ import annotations

import pytest

from dockerbank.build.parser import DockerfileError, parse, parse_duration, parse_words


def one(text: str):
    df = parse("FROM busybox\n" + text)
    assert len(df.instructions) == 2, df.instructions
    return df.instructions[1]


def test_directives_only_at_the_top():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\n# escape=\\\nRUN echo a `\n  b\n")
    assert df.escape == "`"
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.instructions[1].cmd == ["echo a   b"]


def test_directive_after_comment_or_blank_is_a_comment():
    assert parse("# hello\n# escape=`\nFROM a\n").escape == "\\"
    assert parse("\n# escape=`\nFROM a\n").escape == "\\"


def test_directive_case_and_unknown_directives():
    df = parse("# ESCAPE = `\n# foo=bar\nFROM a\n")
    assert df.escape == "`"


def test_bad_escape_and_duplicate_directive():
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM a\n")
    with pytest.raises(DockerfileError, match="only one escape"):
        parse("# escape=`\n# escape=\\\nFROM a\n")


def test_continuations_skip_comments_and_empty_lines():
    df = parse("FROM a\nRUN apt-get update && \\\n    # comment\n\n    apt-get install -y x \\\n    && echo done\n")
    run = df.instructions[1]
    assert run.cmd == ["apt-get update &&     apt-get install -y x     && echo done"]
    assert (run.line, run.end_line) == (2, 6)
    assert any("empty continuation line" in w for w in df.warnings)


def test_continuation_with_trailing_whitespace_and_crlf():
    df = parse("FROM a\r\nENV A=1 \\  \r\n  B=2\r\n")
    assert df.instructions[1].pairs == [("A", "1"), ("B", "2")]


def test_indented_instructions_and_comments():
    df = parse("  # c\n  FROM a\n\t RUN x\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN"]
    assert df.instructions[1].line == 3


def test_lowercase_instructions():
    df = parse("from a as Builder\nrun echo\n")
    assert df.instructions[0].words == ["a", "builder"]


def test_exec_and_shell_forms():
    assert one('CMD ["sh", "-c", "echo hi"]').json_form
    assert one('CMD ["sh", "-c", "echo hi"]').cmd == ["sh", "-c", "echo hi"]
    shell = one("CMD echo hi")
    assert not shell.json_form and shell.cmd == ["echo hi"]
    # invalid JSON falls back to the shell form, as Docker does
    bad = one('CMD ["sh", 1]')
    assert not bad.json_form and bad.cmd == ['["sh", 1]']
    assert one("ENTRYPOINT [\"a\"]").cmd == ["a"]
    assert one("RUN ['single', 'quotes']").cmd == ["['single', 'quotes']"]


def test_shell_requires_json():
    assert one('SHELL ["/bin/bash", "-c"]').cmd == ["/bin/bash", "-c"]
    with pytest.raises(DockerfileError, match=r"Dockerfile:2: SHELL requires the arguments to be in JSON form"):
        parse("FROM a\nSHELL /bin/bash -c\n")


def test_from_forms():
    df = parse("FROM --platform=linux/amd64 golang:1.21 AS build\nFROM scratch\nFROM build AS final\n")
    assert df.instructions[0].flags == {"platform": "linux/amd64"}
    assert df.instructions[0].words == ["golang:1.21", "build"]
    assert df.instructions[1].words == ["scratch"]
    with pytest.raises(DockerfileError, match="FROM requires either one or three arguments"):
        parse("FROM a b\n")
    with pytest.raises(DockerfileError, match="invalid name for build stage"):
        parse("FROM a AS 1abc\n")


def test_env_both_forms():
    assert one("ENV A=1 B=\"two words\" C='x y'").pairs == [("A", "1"), ("B", '"two words"'), ("C", "'x y'")]
    assert one("ENV PATH /usr/bin:$PATH").pairs == [("PATH", "/usr/bin:$PATH")]
    assert one("ENV MSG hello   world  ").pairs == [("MSG", "hello   world")]
    assert one('ENV A=with\\ space').pairs == [("A", "with\\ space")]
    with pytest.raises(DockerfileError, match="ENV must have two arguments"):
        parse("FROM a\nENV ONLY\n")
    with pytest.raises(DockerfileError, match="can't find = in"):
        parse("FROM a\nENV A=1 B\n")
    with pytest.raises(DockerfileError, match="names can not be blank"):
        parse("FROM a\nENV =x\n")


def test_arg_forms():
    assert one("ARG A").pairs == [("A", None)]
    assert one("ARG A=1 B C=\"x y\"").pairs == [("A", "1"), ("B", None), ("C", '"x y"')]
    assert one("ARG EMPTY=").pairs == [("EMPTY", "")]


def test_label_forms():
    assert one('LABEL a=b "c d"="e f"').pairs == [("a", "b"), ('"c d"', '"e f"')]
    assert one("LABEL legacy value here").pairs == [("legacy", "value here")]


def test_copy_add_flags_and_forms():
    inst = one("COPY --from=build --chown=app:app --chmod=0755 a b /dst/")
    assert inst.flags == {"from": "build", "chown": "app:app", "chmod": "0755"}
    assert inst.words == ["a", "b", "/dst/"]
    assert one('COPY ["a b", "/x y/"]').words == ["a b", "/x y/"]
    assert one("ADD --link x.tar /").flags == {"link": True}
    with pytest.raises(DockerfileError, match="Dockerfile:2: unknown flag: frm"):
        parse("FROM a\nCOPY --frm=x a b\n")
    with pytest.raises(DockerfileError, match="missing a value on flag: from"):
        parse("FROM a\nCOPY --from a b\n")
    with pytest.raises(DockerfileError, match="COPY requires at least two arguments"):
        parse("FROM a\nCOPY onlyone\n")


def test_run_mount_is_parsed_for_a_clear_refusal_later():
    inst = one("RUN --mount=type=cache,target=/root/.cache pip install x")
    assert inst.flags == {"mount": "type=cache,target=/root/.cache"}
    assert inst.cmd == ["pip install x"]


def test_simple_instructions():
    assert one("WORKDIR /app dir").words == ["/app dir"]
    assert one("USER app:app").words == ["app:app"]
    assert one("EXPOSE 80 443/tcp 53/udp").words == ["80", "443/tcp", "53/udp"]
    assert one("VOLUME /a /b").words == ["/a", "/b"]
    assert one('VOLUME ["/a", "/b"]').json_form
    assert one("STOPSIGNAL SIGTERM").words == ["SIGTERM"]
    assert one("MAINTAINER Jane <jane@example.org>").words == ["Jane <jane@example.org>"]
    with pytest.raises(DockerfileError, match="USER requires exactly one argument"):
        parse("FROM a\nUSER a b\n")


def test_healthcheck():
    inst = one("HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --retries=3 CMD curl -f http://localhost/ || exit 1")
    assert inst.cmd == ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
    assert inst.health == {"interval": 30 * 10**9, "timeout": 3 * 10**9, "start-period": 60 * 10**9, "retries": 3}
    assert one('HEALTHCHECK CMD ["/bin/check", "-q"]').cmd == ["CMD", "/bin/check", "-q"]
    assert one("HEALTHCHECK NONE").cmd == ["NONE"]
    with pytest.raises(DockerfileError, match="Unknown type"):
        parse("FROM a\nHEALTHCHECK RUN x\n")
    with pytest.raises(DockerfileError, match="invalid duration"):
        parse("FROM a\nHEALTHCHECK --interval=abc CMD x\n")


def test_onbuild():
    inst = one("ONBUILD COPY . /app")
    assert inst.sub.keyword == "COPY" and inst.sub.words == [".", "/app"]
    with pytest.raises(DockerfileError, match="isn't allowed"):
        parse("FROM a\nONBUILD ONBUILD RUN x\n")
    with pytest.raises(DockerfileError, match="FROM isn't allowed as an ONBUILD trigger"):
        parse("FROM a\nONBUILD FROM b\n")


def test_unknown_instruction_names_the_line():
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\n\n# c\nRUN x\nENV A=1\n\nRUNN echo\n")
    assert str(info.value) == "Dockerfile:7: unknown instruction: RUNN"


def test_missing_arguments():
    for text in ("FROM\n", "FROM a\nRUN\n", "FROM a\nWORKDIR\n", "FROM a\nEXPOSE\n", "FROM a\nARG\n", "FROM a\nLABEL\n"):
        with pytest.raises(DockerfileError, match=r"Dockerfile:\d+: "):
            parse(text)


def test_heredoc_run():
    df = parse("FROM a\nRUN <<EOF\napt-get update\napt-get install -y x\nEOF\nRUN echo after\n")
    run = df.instructions[1]
    assert run.heredocs[0].name == "EOF"
    assert run.heredocs[0].content == "apt-get update\napt-get install -y x\n"
    assert run.heredocs[0].expand
    assert (run.line, run.end_line) == (2, 5)
    assert df.instructions[2].cmd == ["echo after"]


def test_heredoc_tab_stripping_and_quoted_delimiters():
    df = parse('FROM a\nRUN <<-EOT\n\techo $HOME\n\t\tnested\n\tEOT\nCOPY <<"EOF" /x\n$NOT_EXPANDED\nEOF\n')
    doc = df.instructions[1].heredocs[0]
    assert doc.content == "echo $HOME\nnested\n" and doc.strip_tabs
    assert not df.instructions[2].heredocs[0].expand
    assert parse("FROM a\nCOPY <<'E' /x\ny\nE\n").instructions[1].heredocs[0].expand is False


def test_several_heredocs_on_one_line():
    df = parse("FROM a\nCOPY <<one <<two /dest/\nfirst\none\nsecond\ntwo\n")
    copy = df.instructions[1]
    assert [(d.name, d.content) for d in copy.heredocs] == [("one", "first\n"), ("two", "second\n")]
    assert copy.words == ["<<one", "<<two", "/dest/"]


def test_heredoc_with_command_and_redirect():
    df = parse("FROM a\nRUN cat > /etc/conf <<EOF\nkey=value\nEOF\n")
    run = df.instructions[1]
    assert run.cmd == ["cat > /etc/conf <<EOF"] and run.heredocs[0].content == "key=value\n"


def test_unterminated_heredoc():
    with pytest.raises(DockerfileError, match="unterminated heredoc"):
        parse("FROM a\nRUN <<EOF\necho\n")


def test_heredoc_not_in_other_instructions():
    assert parse("FROM a\nENV A=<<EOF\n").instructions[1].pairs == [("A", "<<EOF")]


def test_parse_words_keeps_quotes():
    assert parse_words("a 'b c' \"d e\" f\\ g") == ["a", "'b c'", '"d e"', "f\\ g"]
    assert parse_words('""') == ['""']
    assert parse_words("a`  b", "`") == ["a` ", "b"]


def test_durations():
    assert parse_duration("1m30s") == 90 * 10**9
    assert parse_duration("500ms") == 5 * 10**8
    assert parse_duration("0") == 0
    with pytest.raises(Exception):
        parse_duration("10")


REAL_WORLD = r'''# syntax=docker/dockerfile:1
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app

FROM base AS deps
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip install -r requirements.txt

FROM base AS final
ARG UID=10001
RUN adduser \
    --disabled-password \
    --gecos "" \
    --home "/nonexistent" \
    --shell "/sbin/nologin" \
    --no-create-home \
    --uid "${UID}" \
    appuser
COPY --from=deps /usr/local/lib/python3.11/site-packages /usr/local/lib/python3.11/site-packages
USER appuser
COPY . .
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000')"
CMD ["python", "-m", "uvicorn", "app:app", "--host=0.0.0.0", "--port=8000"]
'''


def test_real_world_dockerfile():
    df = parse(REAL_WORLD)
    keywords = [i.keyword for i in df.instructions]
    assert keywords == ["ARG", "FROM", "ENV", "WORKDIR", "FROM", "COPY", "RUN", "FROM", "ARG", "RUN", "COPY", "USER",
                        "COPY", "EXPOSE", "HEALTHCHECK", "CMD"]
    assert df.instructions[9].cmd[0].startswith("adduser     --disabled-password")
    assert df.instructions[-1].json_form
