"""Go's text/template as docker's --format renders it (expected values from Go's semantics)."""

import pytest

from dockerbank.gotemplate import (HEADER_FUNCTIONS, GoMap, GoStruct, Shape, TemplateError, inspect_document, render,
                                   tabwriter)

DATA = {"Name": "web", "Labels": {"b": "2", "a": "1"}, "Names": ["x", "y"], "N": 3, "F": 0.5, "Empty": [],
        "State": {"Status": "running", "Pid": 12}, "Null": None, "Big": 1e6, "Html": "<a&b>"}

CASES = [
    ("{{.Name}}", "web"),
    ("{{.State.Status}} {{.State.Pid}}", "running 12"),
    ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),       # maps range in key order
    ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
    ('{{if eq .N 1 2 3}}one of{{end}}', "one of"),
    ("{{if .Missing}}y{{else if .N}}n{{else}}z{{end}}", "n"),
    ("{{with .Empty}}x{{else}}none{{end}}", "none"),
    ("{{with .State}}{{.Pid}}{{end}}", "12"),
    ('{{index .Labels "a"}} {{index .Names 1}}', "1 y"),
    ('{{printf "%-6s|%5d|%.2f|%05d|%x|%q" .Name .N .F .N 255 .Name}}', 'web   |    3|0.50|00003|ff|"web"'),
    ('{{join .Names ","}} {{len .Names}} {{upper .Name}} {{lower "AB"}} {{title "hello world"}}',
     "x,y 2 WEB ab Hello World"),
    ('{{split "a,b" ","}} {{pad .Name 1 2}}| {{truncate .Name 2}}', "[a b]  web  | we"),
    ("a {{- ` b ` -}} c", "a b c"),
    ("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy"),
    ("{{range .Names}}[{{.}}]{{else}}empty{{end}} {{range .Empty}}x{{else}}empty{{end}}", "[x][y] empty"),
    ("{{range $i, $e := .Names}}{{$i}}:{{$e}} {{end}}", "0:x 1:y "),
    ('{{range .Names}}{{if eq . "x"}}{{continue}}{{end}}{{.}}{{break}}{{end}}', "y"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{$x := .N}}{{$x}} {{$x = 4}}{{$x}} {{$.Name}}", "3 4 web"),
    ("{{.Missing}} {{.Null}}", "<no value> <no value>"),
    ("{{.Labels}} {{.Names}} {{.Empty}} {{.Big}} {{.F}} {{true}}", "map[a:1 b:2] [x y] [] 1000000 0.5 true"),
    ('{{and .N .Name}} {{or .Empty "dflt"}} {{not .N}} {{and 0 .Nope.Deeper}}', "web dflt false 0"),
    ("{{if and (gt .N 2) (lt .N 5) (ne .Name \"db\")}}mid{{end}}", "mid"),
    ('{{print 1 2 "a" 3}}|{{println "x"}}|', "1 2a3|x\n|"),
    ("{{json .Labels}} {{json .Html}} {{json .Names}}", '{"b":"2","a":"1"} "\\u003ca\\u0026b\\u003e" ["x","y"]'),
    ('{{.Name | printf "%s-x"}} {{.N | printf "%d+%d" 1}}', "web-x 1+3"),
    ('{{(index .Names 0) | upper}} {{slice .Names 1}} {{html .Html}} {{urlquery "a b"}}',
     "X [y] &lt;a&amp;b&gt; a+b"),
    ("{{'a'}} {{0x10}} {{1_000}}", "97 16 1000"),
]


@pytest.mark.parametrize("source,expected", CASES)
def test_renders_like_go(source, expected):
    assert render(source, DATA) == expected


class Row:
    """A docker formatter context: fields and methods, as Go structs have."""

    ID = "abc"

    def Label(self, key: str) -> str:  # noqa: N802 (docker's method name)
        return {"k": "v"}.get(key, "")


def test_methods_with_arguments_and_unknown_fields():
    assert render('{{.ID}} {{.Label "k"}}', Row()) == "abc v"
    with pytest.raises(TemplateError, match=r'can\'t evaluate field Foo in type Row'):
        render("{{.Foo}}", Row())


@pytest.mark.parametrize("source,message", [
    ("{{.Foo", "template: :1: unclosed action"),
    ("{{foo .X}}", 'template: :1: function "foo" not defined'),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .X}}", "template: :1: unexpected EOF"),
    ('{{"a" "b"}}', "can't give argument to non-function"),
    ("{{index .Names 5}}", "index out of range: 5"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{$nope}}", 'undefined variable "$nope"'),
    ("{{range .Name}}x{{end}}", "range can't iterate over web"),
])
def test_errors_are_go_like_and_one_line(source, message):
    with pytest.raises(TemplateError) as info:
        render(source, DATA)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_table_header_functions_keep_the_names():
    headers = {"Names": "NAMES", "Status": "STATUS"}
    assert render('{{json .Names}} {{upper .Status}} {{join .Names ","}}', headers, HEADER_FUNCTIONS) == \
        "NAMES STATUS NAMES"


def test_tabwriter_aligns_like_gos():
    lines = tabwriter(["CONTAINER ID\tNAMES", "51e58115bb0a\thref3", "x\ty"])
    assert lines == ["CONTAINER ID   NAMES", "51e58115bb0a   href3", "x              y"]
    assert tabwriter(["a\tb\tc", "dd\te\tf"]) == ["a         b         c", "dd        e         f"]


# --- structs and maps: what docker 20.10 prints for a field the value does not have -------------

def _error(source, data):
    with pytest.raises(TemplateError) as info:
        render(source, data)
    return str(info.value)


ROW = GoStruct({"Names": "web", "Label": lambda key: {"k": "v"}.get(key, ""), "Status": "Up"},
               "*formatter.ContainerContext", sorted_json=True, shape=Shape(nil=("Platform",)))


def test_a_struct_fails_on_a_field_it_lacks_where_a_map_prints_no_value():
    assert _error("{{.Bad}}", ROW) == \
        "template: :1:2: executing \"\" at <.Bad>: can't evaluate field Bad in type *formatter.ContainerContext"
    assert render("{{.Bad}}", {"Names": "web"}) == "<no value>"
    assert render("{{.Bad}}", GoMap({"Names": "web"})) == "<no value>"
    # Go's column: the byte offset of the field, of a chain's second part, inside with/range too
    assert ":1:14: executing \"\" at <.Bad>" in _error("A{{.Names}}B{{.Bad}}", ROW)
    assert _error("{{.Names.Bad}}", ROW).endswith(":1:8: executing \"\" at <.Names.Bad>: "
                                                  "can't evaluate field Bad in type string")
    assert ":1:12: executing \"\" at <.Bad>" in _error("{{with .}}{{.Bad}}{{end}}", ROW)
    assert "at <$.Bad>" in _error("{{$.Bad}}", ROW)


def test_a_struct_keeps_its_fields_methods_and_nil_ones():
    assert render('{{.Names}} {{.Label "k"}}|{{.Label "x"}}|{{.Platform}}|{{.Platform.OS}}', ROW) == \
        "web v||<no value>|<no value>"
    assert render("{{if .}}t{{end}}", GoStruct({}, "T")) == "t"        # a struct is true, even empty
    assert render("{{json .}}", ROW) == '{"Names":"web","Status":"Up"}'
    assert "can't index item of type formatter.ContainerContext" in _error('{{index . "Names"}}', ROW)
    assert "len of type *formatter.ContainerContext" in _error("{{len .}}", ROW)


DOC = inspect_document(
    {"Name": "/web", "State": {"Status": "running"}, "Config": {"Labels": {"a": "1"}, "Volumes": None},
     "HostConfig": {"LogConfig": {"Type": "k8s-file"}}},
    {"": Shape(nil=("SizeRw",)), "State": Shape(nil=("Health",)), "Config": Shape(maps=("Labels", "Volumes")),
     "HostConfig.LogConfig": Shape()})


def test_inspect_fails_like_dockers_retry_on_the_raw_json():
    assert _error("{{.Bad}}", DOC) == 'template: :1:2: executing "" at <.Bad>: map has no entry for key "Bad"'
    assert _error("{{.State.Bad}}", DOC).endswith(':1:8: executing "" at <.State.Bad>: map has no entry for key "Bad"')
    assert 'at <.HostConfig.LogConfig.Bad>: map has no entry for key "Bad"' in \
        _error("{{.HostConfig.LogConfig.Bad}}", DOC)                 # HostConfig: converted as LogConfig's parent
    assert "map has no entry" in _error("{{.HostConfig.Bad}}", DOC)


def test_inspect_keeps_no_value_for_maps_and_nil_fields():
    assert render('{{.Config.Labels.x}} {{index . "Bad"}} {{.SizeRw}} {{.State.Health}} {{len .}}', DOC) == \
        "<no value> <no value> <no value> <no value> 4"
    # a null map field is Go's nil map: printed map[], marshalled null, empty, its keys missing
    assert render("{{.Config.Volumes.x}}|{{.Config.Volumes}}|{{json .Config.Volumes}}|{{len .Config.Volumes}}|"
                  "{{range .Config.Volumes}}x{{else}}none{{end}}", DOC) == "<no value>|map[]|null|0|none"
    assert _error("{{.State.Health.Status}}", DOC).endswith(
        ':1:8: executing "" at <.State.Health.Status>: map has no entry for key "Health"')
    assert render("{{json .}}", DOC).startswith('{"Name":"/web","State":{"Status":"running"}')  # struct order
