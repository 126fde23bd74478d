"""Parsers of user and network input: Dockerfiles, image references, --format templates, filters,
compose files, env files, image archives' JSON."""

from __future__ import annotations

import json

from fuzzing import only_our_errors
from hypothesis import given
from hypothesis import strategies as st

KEYWORDS = ["FROM", "RUN", "CMD", "COPY", "ADD", "ENV", "ARG", "LABEL", "EXPOSE", "ENTRYPOINT", "VOLUME", "USER",
            "WORKDIR", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER", "from", "Bogus"]
ARG_PIECES = ["busybox", "AS", "x", "--from=0", "--chown=1:1", "--chmod=755", "--mount=type=cache,target=/c",
              "[\"sh\", \"-c\"]", "[", "]", "\"", "'", "\\", "$X", "${X:-y}", "${X:?err}", "<<EOF", "EOF", "-",
              "key=value", "a b", "80/tcp", "NONE", "CMD", "--interval=1s", "/", "..", "*", "#", "\t", "=", "\x00", "ü"]

dockerfile_line = st.one_of(
    st.tuples(st.sampled_from(KEYWORDS), st.lists(st.sampled_from(ARG_PIECES), max_size=6)).map(
        lambda t: t[0] + " " + " ".join(t[1])),
    st.sampled_from(["# syntax=docker/dockerfile:1", "# escape=`", "# escape=\\", "\\", "", "  ", "EOF"]),
    st.text(max_size=40),
)
dockerfiles = st.lists(dockerfile_line, max_size=12).map("\n".join)


@given(dockerfiles)
def test_dockerfile_parser(text):
    from dockerbank.build import parser

    only_our_errors("Dockerfile", parser.parse, text)


@given(dockerfiles, st.dictionaries(st.sampled_from(["X", "TAG", "BASE"]), st.text(max_size=10), max_size=3))
def test_dockerfile_plan(text, build_args):
    from dockerbank.build import parser, plan

    def run():
        return plan.make_plan(parser.parse(text), build_args)

    only_our_errors("Dockerfile plan", run)


references = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9.:/_@-]{0,12}(:[A-Za-z0-9_.-]{0,10})?(@sha256:[0-9a-f]{0,64})?", fullmatch=True),
)


@given(references)
def test_image_references(text):
    from dockerbank.oci import reference

    only_our_errors("image reference", reference.parse, text)


TEMPLATE_PIECES = ["{{", "}}", "{{-", "-}}", ".", ".Name", ".Labels", ".A.B", "$", "$x", ":=", "=", "|", "(", ")",
                   "range", "if", "else", "end", "with", "break", "continue", "json", "index", "printf", "len",
                   "join", "split", "upper", "eq", "and", "or", "not", "\"s\"", "`r`", "'c'", "1", "-2", "0x1f",
                   "1.5e3", "nil", "true", " ", "%d", "/*", "*/", ",", "\n"]
templates = st.one_of(st.lists(st.sampled_from(TEMPLATE_PIECES), max_size=20).map("".join), st.text(max_size=40))
template_data = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
                             lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(["Name", "Labels", "A", "B"]),
                                                                     inner, max_size=3)), max_leaves=8)


@given(templates, template_data)
def test_format_templates(source, data):
    from dockerbank import gotemplate

    only_our_errors("--format template", gotemplate.render, source, data)
    if isinstance(data, dict):  # the same data as docker's struct, and as inspect's document
        shape = gotemplate.Shape(nil=("B",), maps=("Labels",))
        only_our_errors("--format template", gotemplate.render, source, gotemplate.GoStruct(data, "T", shape=shape))
        only_our_errors("--format template", gotemplate.render, source,
                        gotemplate.inspect_document(data, {"": shape, "A": shape}))


@given(st.lists(st.text(max_size=20), max_size=4))
def test_filters(values):
    from dockerbank.cli.common import parse_filters

    only_our_errors("--filter", parse_filters, tuple(values), {"name", "label", "status", "id"})


@given(st.text(max_size=200))
def test_env_files(text):
    from dockerbank.compose.interpolate import parse_env_file

    only_our_errors("env file", parse_env_file, text, "fuzz.env")


@given(st.text(max_size=60), st.dictionaries(st.sampled_from(["A", "B", "C"]), st.text(max_size=5), max_size=3))
def test_compose_interpolation(text, env):
    from dockerbank.compose.interpolate import interpolate

    only_our_errors("compose interpolation", interpolate, text, env, where="fuzz.yml")


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                         st.sampled_from(["busybox", "80:80", "db", "service_healthy", "./x", "${X:?no}", "1s",
                                          "CMD-SHELL", "512m", "on-failure:3"]))
SERVICE_KEYS = ["image", "command", "ports", "volumes", "depends_on", "environment", "healthcheck", "restart",
                "networks", "build", "deploy", "labels", "profiles", "extends", "secrets", "entrypoint", "x-y",
                "scale", "bogus"]
compose_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(SERVICE_KEYS + ["condition", "test", "a"]), inner,
                                                 max_size=4)), max_leaves=12)
compose_docs = st.one_of(
    st.fixed_dictionaries({"services": st.dictionaries(st.sampled_from(["web", "db", "a b", ""]),
                                                       st.dictionaries(st.sampled_from(SERVICE_KEYS), compose_values,
                                                                       max_size=5), max_size=3)},
                          optional={"volumes": compose_values, "networks": compose_values, "name": yaml_scalars,
                                    "include": compose_values, "secrets": compose_values}),
    compose_values,
)


@given(compose_docs)
def test_compose_files(doc):
    import yaml

    from dockerbank.compose import loader, model
    from dockerbank.compose.loader import LoadOptions

    text = yaml.safe_dump(doc)
    files = {"/p/compose.yaml": text}

    def read(path: str) -> str:
        if path not in files:
            from dockerbank.errors import NotFound

            raise NotFound(f"{path}: no such file")
        return files[path]

    def run():
        loaded = loader.load(LoadOptions(files=["/p/compose.yaml"], cwd="/p"), read=read,
                             exists=lambda p: p in files)
        return model.normalize(loaded, read=read)

    only_our_errors("compose file", run)


@given(st.text(max_size=100))
def test_compose_yaml_text(text):
    from dockerbank.compose import loader

    only_our_errors("compose YAML", loader.parse_yaml, text, "fuzz.yml")


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.sampled_from(
                                                       ["config", "rootfs", "diff_ids", "Env", "Cmd", "Labels",
                                                        "history", "architecture", "os", "type", "Healthcheck"]),
                                                       inner, max_size=4)), max_leaves=10)


@given(json_values)
def test_image_config_json(value):
    from dockerbank.image import load

    only_our_errors("image config", load._parse_config, json.dumps(value).encode(), "fuzz.json")


kube_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["name", "image", "containers", "ports", "containerPort", "hostPort", "env", "value", "valueFrom",
         "volumeMounts", "mountPath", "volumes", "emptyDir", "configMap", "secret", "items", "key", "path",
         "persistentVolumeClaim", "claimName", "livenessProbe", "exec", "command", "resources", "limits",
         "memory", "cpu", "selector", "template", "spec", "metadata", "labels", "replicas", "subPath", "bogus"]),
        inner, max_size=4)), max_leaves=14)
kube_docs = st.lists(st.fixed_dictionaries(
    {"kind": st.sampled_from(["Pod", "Deployment", "StatefulSet", "Service", "ConfigMap", "Secret",
                              "PersistentVolumeClaim", "Job", 3]),
     "metadata": st.one_of(st.fixed_dictionaries({"name": yaml_scalars}, optional={"labels": kube_values,
                                                                                      "annotations": kube_values}),
                           kube_values)},
    optional={"spec": kube_values, "data": kube_values, "apiVersion": yaml_scalars}), max_size=3)


@given(kube_docs, st.booleans())
def test_kube_manifests(docs, ignore):
    import yaml

    from dockerbank.kube import play

    def run():
        return play.plan(play.load_documents(yaml.safe_dump_all(docs), "fuzz.yaml"), "/k/fuzz.yaml", "/files",
                         ignore_unsupported=ignore, real_pods=True)

    only_our_errors("kube manifests", run)
