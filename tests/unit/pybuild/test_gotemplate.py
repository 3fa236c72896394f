"""pybuild.gotemplate: Go text/template as docker and podman take `--format`.

The expected outputs are Go's (text/template with docker's functions, over typed inspect data):
each case was written from Go's documented semantics, and the constant ones are also checked
against podman's real Go templates in tests/integration/pybuild/test_cmd_inspect.py.
"""

from __future__ import annotations

import pytest

from pybuild.gotemplate import Struct, Template, TemplateError, render
from pybuild.gotemplate.values import NIL_LIST, NIL_MAP, float_text, to_json


def _data() -> Struct:
    return Struct("InspectContainerData", {
        "Id": "abc123",
        "Name": "web",
        "State": Struct("ContainerState", {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0}),
        "Config": Struct("Config", {"Env": ["A=1", "B=2"], "Cmd": ["sleep", "10"], "Labels": {"b": "2", "a": "1"},
                                    "Volumes": NIL_MAP, "Entrypoint": NIL_LIST, "Hostname": "abc"}),
        "NetworkSettings": Struct("NetworkSettings", {
            "IPAddress": "10.0.0.2",
            "Ports": {"80/tcp": [Struct("PortBinding", {"HostIp": "", "HostPort": "8080"})],
                      "53/udp": [Struct("PortBinding", {"HostIp": "127.0.0.1", "HostPort": "5353"})]}}),
        "Mounts": [Struct("MountPoint", {"Type": "volume", "Name": "v1", "Destination": "/data", "RW": True}),
                   Struct("MountPoint", {"Type": "bind", "Name": "", "Destination": "/etc/x", "RW": False})],
        "Nothing": None,
        "Ratio": 0.5,
        "Big": 1e6,
    })


CASES = [
    # fields, chains, printing of Go values
    ("{{.Id}}", "abc123"),
    ("{{ .State.Pid }}", "4242"),
    ("{{.State.Running}}", "true"),
    ("{{.State}}", "{running true 4242 0}"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Labels.a}}", "1"),
    ("{{.Config.Labels.zzz}}", "<no value>"),       # a map's missing key: Go's invalid value
    ("{{.Config.Volumes}}", "map[]"),                 # a nil map field
    ("{{.Config.Entrypoint}}", "[]"),                 # a nil slice field
    ("{{.Config.Volumes.x}}", "<no value>"),
    ("{{.Nothing}}", "<nil>"),
    ("{{.Ratio}} {{.Big}}", "0.5 1e+06"),
    ("{{.NetworkSettings.Ports}}", "map[53/udp:[{127.0.0.1 5353}] 80/tcp:[{ 8080}]]"),
    ("{{.Mounts}}", "[{volume v1 /data true} {bind  /etc/x false}]"),
    (".", "."),
    ("a{{/* a comment */}}b", "ab"),
    ("a  {{- .Name -}}  \n b", "awebb"),
    ("{{- /* x */ -}}", ""),
    # json
    ("{{json .NetworkSettings.Ports}}",
     '{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"80/tcp":[{"HostIp":"","HostPort":"8080"}]}'),
    ("{{json .Config.Volumes}}", "null"),
    ("{{json .State}}", '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0}'),
    ("{{json .Big}} {{json .Ratio}}", "1000000 0.5"),
    ('{{json "<a&b>"}}', '"<a&b>"'),                 # docker's json does not escape HTML
    # range, variables, index, if/else, with
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", "0=A=1 1=B=2 "),
    ("{{range $k, $v := .NetworkSettings.Ports}}{{$k}}->{{(index $v 0).HostPort}};{{end}}", "53/udp->5353;80/tcp->8080;"),
    ("{{range .Config.Labels}}{{.}}{{end}}", "12"),
    ("{{range .Config.Volumes}}x{{else}}none{{end}}", "none"),
    ("{{range .Mounts}}{{if .RW}}{{.Destination}}{{end}}{{end}}", "/data"),
    ("{{range .Mounts}}{{if eq .Type \"bind\"}}{{break}}{{end}}{{.Name}}{{end}}", "v1"),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}", "B=2"),
    ("{{index .Config.Env 1}}", "B=2"),
    ('{{index .Config.Labels "b"}}', "2"),
    ('{{index .NetworkSettings.Ports "80/tcp" 0}}', "{ 8080}"),
    ('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "8080"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ('{{if eq .State.Status "exited"}}e{{else if eq .State.Status "running"}}r{{else}}?{{end}}', "r"),
    ("{{if and .State.Running (gt .State.Pid 0)}}ok{{end}}", "ok"),
    ("{{if or .Nothing .Name}}{{or .Nothing .Name}}{{end}}", "web"),
    ("{{if not .Nothing}}nil{{end}}", "nil"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{with .Nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{$n := .Name}}{{with .State}}{{$n}}:{{.Pid}}{{end}}", "web:4242"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{with $s := .State}}{{$s.Pid}}{{end}}", "4242"),
    ("{{$.Name}}", "web"),
    # pipes and functions
    ("{{.Name | upper}}", "WEB"),
    ('{{.Name | printf "%s!"}}', "web!"),
    ('{{join .Config.Cmd " "}}', "sleep 10"),
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ('{{len .Config.Env}} {{len .Config.Labels}} {{len "héllo"}}', "2 2 6"),
    ('{{title "hello wide-world"}} {{lower "ABC"}}', "Hello Wide-World abc"),
    ('[{{pad "x" 2 1}}] {{truncate "abcdef" 3}}', "[  x ] abc"),
    ('{{slice .Config.Env 1}} {{slice "abcdef" 1 3}}', "[B=2] bc"),
    ('{{printf "%5d|%-5s|%05.1f|%x|%q|%v|%t" 42 "ab" 3.14159 255 "q\\"" .Config.Env true}}',
     '   42|ab   |003.1|ff|"q\\""|[A=1 B=2]|true'),
    ('{{printf "%d %s" "x" 5}}', "%!d(string=x) %!s(int=5)"),
    ('{{printf "%d"}}|{{printf "%d" 1 2}}', "%!d(MISSING)|1%!(EXTRA int=2)"),
    ('{{printf "%+v" .State}}', "{Status:running Running:true Pid:4242 ExitCode:0}"),
    ("{{print 1 2 \"a\" 3}} {{println \"x\"}}", "1 2a3 x\n"),
    ("{{eq 1 1 2}} {{ne .Name \"x\"}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}}",
     "true true true true false true"),
    ("{{0x1F}} {{0o17}} {{017}} {{1_000}} {{'a'}} {{1e3}} {{-2}}", "31 15 15 1000 97 1000 -2"),
    ('{{"a\\tb\\u00e9"}} {{`raw\\n`}}', "a\tb\u00e9 raw\\n"),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0][:40] for c in CASES])
def test_render(text, expected):
    assert render(text, _data()) == expected


ERRORS = [
    # a struct field that is not there: podman's "can't evaluate field"
    ("{{.State.Foo}}", 'template: format:1:3: executing "format" at <.State.Foo>: '
                       "can't evaluate field Foo in type ContainerState"),
    ("{{.Config.Env.X}}", "can't evaluate field X in type []interface {}"),
    ("{{.Nothing.X}}", "nil pointer evaluating interface {}.X"),
    ("{{index .Config.Env 5}}", 'at <index .Config.Env 5>: error calling index: index out of range: 5'),
    ("{{index .Nothing 0}}", "error calling index: index of untyped nil"),
    ("{{len .State.Pid}}", "error calling len: len of type int"),
    ("{{eq .Config.Env 1}}", "error calling eq: non-comparable type"),
    ('{{eq .State.Pid "x"}}', "error calling eq: incompatible types for comparison"),
    ("{{upper .State.Pid}}", "wrong type for value; expected string; got int"),
    ("{{json}}", "wrong number of args for json: want 1 got 0"),
    ("{{.Name 1}}", "Name has arguments but cannot be invoked as function"),
    ('{{"x" 1}}', "can't give argument to non-function"),
    ("{{range .State}}{{end}}", "range can't iterate over {running true 4242 0}"),
    ('{{printf "%*d" 1 2}}', "error calling printf: '*' widths and [n] argument indexes are not supported"),
    # parse errors: nothing is rendered
    ("{{.State.Pid", "template: format:1:1: unclosed action"),
    ("{{if .Name}}x", "missing {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{$x = 1}}", 'undefined variable "$x"'),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ("{{html .Name}}", 'function "html" is not supported'),
    ("{{urlquery .Name}}", 'function "urlquery" is not supported'),
    ('{{template "x"}}', "{{template}} (named templates) is not supported"),
    ('{{define "x"}}{{end}}', "{{define}} (named templates) is not supported"),
    ("{{block \"x\" .}}{{end}}", "{{block}} (named templates) is not supported"),
    ("{{.Name | 3}}", "non executable command in pipeline stage 2"),
    ("{{}}", "missing value for command"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{1i}}", "complex numbers are not supported"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{/* x }}", "unclosed comment"),
    ("{{.Name %}}", "bad character '%' in action"),
    ("line1\n{{ .Name\n .X )}}", "template: format:3:5: unexpected right paren"),
]


@pytest.mark.parametrize("text,message", ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_errors(text, message):
    with pytest.raises(TemplateError) as err:
        render(text, _data())
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 125


def test_parse_once_render_many():
    tpl = Template("{{.A}}-{{len .B}}")
    assert [tpl.render({"A": i, "B": [0] * i}) for i in range(3)] == ["0-0", "1-1", "2-2"]


def test_parse_error_before_any_output():
    """A bad template is refused at parse time, whatever the data."""
    with pytest.raises(TemplateError):
        Template("{{.A}}{{if}}")


def test_float_text_as_go():
    assert [float_text(f) for f in (0.0, 1.0, 123456.0, 1234567.0, 1e-5, 0.0001, -2.5, 1e21)] == \
        ["0", "1", "123456", "1.234567e+06", "1e-05", "0.0001", "-2.5", "1e+21"]
    assert [float_text(f, json_form=True) for f in (1e6, 1e20, 1e21, 1.5e-7)] == \
        ["1000000", "100000000000000000000", "1e+21", "1.5e-7"]


def test_to_json_orders_structs_as_built_and_maps_sorted():
    value = Struct("S", {"Z": 1, "A": {"b": 2, "a": NIL_LIST}})
    assert to_json(value) == '{"Z":1,"A":{"a":null,"b":2}}'


def test_deeply_nested_template_is_an_error_not_a_crash():
    text = "{{if true}}" * 600 + "x" + "{{end}}" * 600
    try:
        out = render(text, {})
    except TemplateError as err:
        assert "nested too deeply" in str(err) or "template:" in str(err)
    else:
        assert out == "x"
