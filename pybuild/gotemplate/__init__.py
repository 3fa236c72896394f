"""Go templates (text/template) for `--format`, as docker and podman take them.

    render(text, data, name="format") -> str
    Template(text, name).render(data) -> str     (parse once, render many)
    Struct(type_name, {...})                     a Go struct in the data (see values.py)
    TemplateError                                a PybuildError, exit status 125

A real lexer (lexer.py), parser (parser.py) and evaluator (execute.py), not
text substitution: what is not supported is refused with a message naming the
line and column, never rendered to something else.
"""

from __future__ import annotations

from typing import Any

from pybuild.gotemplate.errors import TemplateError
from pybuild.gotemplate.values import MISSING, Struct, to_json, to_text

__all__ = ["MISSING", "Struct", "Template", "TemplateError", "render", "to_json", "to_text"]


class Template:
    def __init__(self, text: str, name: str = "format") -> None:
        from pybuild.gotemplate.funcs import FUNCS, UNSUPPORTED
        from pybuild.gotemplate.parser import parse

        self.name = name
        try:
            self.nodes = parse(text, name, frozenset(FUNCS), UNSUPPORTED)
        except RecursionError:
            raise TemplateError(f"template: {name}: nested too deeply") from None

    def render(self, data: Any) -> str:
        from pybuild.gotemplate.execute import execute

        return execute(self.nodes, self.name, data)


def render(text: str, data: Any, name: str = "format") -> str:
    return Template(text, name).render(data)
