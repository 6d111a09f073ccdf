"""The Go text/template subset used by --format (pure)."""

from __future__ import annotations

import pytest

from berth.cli.template import Template, TemplateError, render

DATA = {
    "Id": "abc", "Name": "/web",
    "State": {"Status": "running", "Pid": 42, "Running": True, "ExitCode": 0},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
    "Size": 1.5,
}


@pytest.mark.parametrize("tmpl, out", [
    ("{{.State.Status}}", "running"),
    ("{{.State.Pid}}", "42"),
    ("{{.State.Running}}", "true"),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ("{{json .Config}}", '{"Env":["A=1","B=2"],"Labels":{"b":"2","a":"1"},"Cmd":null}'),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Nope}}", "<no value>"),
    ("{{index .Config.Labels \"a\"}}", "1"),
    ("{{join .Config.Env \",\"}}", "A=1,B=2"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if eq .State.Status \"exited\"}}x{{else if eq .State.Status \"running\"}}r{{else}}?{{end}}", "r"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{.Name | upper}}", "/WEB"),
    ("{{printf \"%s:%d\" .Id .State.Pid}}", "abc:42"),
    ("{{len .Config.Env}}", "2"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("{{.Size}}", "1.5"),
    ("{{.State.ExitCode}} {{\"lit\"}} {{ 3 }}", "0 lit 3"),
])
def test_render(tmpl: str, out: str) -> None:
    assert render(tmpl, DATA) == out


def test_parse_errors_are_reported() -> None:
    with pytest.raises(TemplateError, match="template parsing error"):
        Template("{{if .X}}no end")
    with pytest.raises(TemplateError):
        Template("{{end}}")


def test_unknown_function() -> None:
    with pytest.raises(TemplateError, match='function "nosuch" not defined'):
        render("{{nosuch .Id}}", DATA)
