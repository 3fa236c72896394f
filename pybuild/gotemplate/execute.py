"""Go text/template evaluation (text/template/exec.go) over JSON-like data.

Semantics kept from Go: dot and `$`, variables scoped to the control structure
that declares them, `range` over lists (index, element) and maps (sorted keys),
`else` branches, `break`/`continue`, lazy `and`/`or`, a pipeline's value passed
as the last argument of the next command, field access on structs (a missing
field is an error) and maps (a missing key is `<no value>`), nil handling, and
errors in Go's form: `template: NAME:LINE:COL: executing "NAME" at <NODE>: …`.
"""

from __future__ import annotations

from typing import Any

from pybuild.gotemplate import parser as p
from pybuild.gotemplate.errors import TemplateError
from pybuild.gotemplate.funcs import FUNCS, FuncError
from pybuild.gotemplate.printf import PrintfError
from pybuild.gotemplate.values import MISSING, NIL_MAP, Struct, TypedNil, to_text, truth, type_name


class _NoFinal:
    pass


NOFINAL: Any = _NoFinal()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def node_text(node: Any) -> str:
    """A node as Go's String() shows it in error messages."""
    if isinstance(node, p.Field):
        return "." + ".".join(node.names)
    if isinstance(node, p.Variable):
        return node.name + "".join("." + n for n in node.names)
    if isinstance(node, (p.Const, p.Dot)):
        return node.tok.value
    if isinstance(node, p.Ident):
        return node.name
    if isinstance(node, p.Chain):
        return f"({node_text(node.node)})" + "".join("." + n for n in node.names)
    if isinstance(node, p.Command):
        return " ".join(f"({node_text(a)})" if isinstance(a, p.Pipe) else node_text(a) for a in node.args)
    if isinstance(node, p.Pipe):
        decl = (", ".join(node.decl) + (" = " if node.assign else " := ")) if node.decl else ""
        return decl + " | ".join(node_text(c) for c in node.cmds)
    return "?"


class Executor:
    def __init__(self, name: str, root: Any) -> None:
        self.name = name
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []
        self.at: Any = None

    def error(self, message: str) -> TemplateError:
        node = self.at
        tok = getattr(node, "tok", None)
        where = f"{tok.line}:{tok.col}" if tok else "1"
        return TemplateError(f'template: {self.name}:{where}: executing "{self.name}" at <{node_text(node)}>: '
                             f"{message}")

    # ---- statements
    def walk(self, dot: Any, nodes: tuple[Any, ...]) -> None:
        for node in nodes:
            if isinstance(node, p.Text):
                self.out.append(node.text)
            elif isinstance(node, p.Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(to_text(value))
            elif isinstance(node, p.Control):
                self.control(dot, node)
            elif isinstance(node, p.Loop):
                raise _Break() if node.kind == "break" else _Continue()

    def control(self, dot: Any, node: p.Control) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range(dot, node)
                return
            value = self.pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.orelse is not None:
                self.walk(dot, node.orelse)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: p.Control) -> None:
        pipe = node.pipe
        value = self.pipeline(dot, p.Pipe((), False, pipe.cmds, pipe.tok))
        if isinstance(value, Struct) or not (value is None or value is MISSING or
                                             isinstance(value, (list, tuple, dict, TypedNil))):
            self.at = pipe
            raise self.error(f"range can't iterate over {to_text(value)}")
        if value is None or value is MISSING or isinstance(value, TypedNil):
            items: list[tuple[Any, Any]] = []
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        else:
            items = list(enumerate(value))
        if not items:
            if node.orelse is not None:
                self.walk(dot, node.orelse)
            return
        mark = len(self.vars)
        for key, elem in items:
            del self.vars[mark:]
            bound = [elem] if len(pipe.decl) == 1 else [key, elem]
            for name, v in zip(pipe.decl, bound):
                self.set_var(name, v, pipe.assign)
            try:
                self.walk(elem, node.body)
            except _Continue:
                continue
            except _Break:
                break

    # ---- expressions
    def set_var(self, name: str, value: Any, assign: bool) -> None:
        if not assign:
            self.vars.append((name, value))
            return
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def lookup(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise self.error(f"undefined variable: {name}")

    def pipeline(self, dot: Any, pipe: p.Pipe) -> Any:
        value = NOFINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decl:
            self.set_var(name, value, pipe.assign)
        return value

    def command(self, dot: Any, cmd: p.Command, final: Any) -> Any:
        first = cmd.args[0]
        self.at = cmd
        if isinstance(first, p.Field):
            return self.field_chain(dot, dot, first, first.names, cmd.args, final)
        if isinstance(first, p.Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, p.Ident):
            return self.function(dot, first, cmd.args, final, cmd)
        if isinstance(first, p.Variable):
            return self.variable(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if isinstance(first, p.Pipe):
            return self.pipeline(dot, first)
        if isinstance(first, p.Dot):
            return dot
        if first.value is p.NIL:
            raise self.error("nil is not a command")
        return first.value

    def not_a_function(self, args: tuple[Any, ...], final: Any) -> None:
        if len(args) > 1 or final is not NOFINAL:
            raise self.error(f"can't give argument to non-function {node_text(args[0])}")

    def arg(self, dot: Any, node: Any) -> Any:
        if isinstance(node, p.Dot):
            return dot
        if isinstance(node, p.Const):
            return None if node.value is p.NIL else node.value
        if isinstance(node, p.Field):
            return self.field_chain(dot, dot, node, node.names, (node,), NOFINAL)
        if isinstance(node, p.Variable):
            return self.variable(dot, node, (node,), NOFINAL)
        if isinstance(node, p.Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, p.Ident):
            return self.function(dot, node, (node,), NOFINAL)
        if isinstance(node, p.Chain):
            return self.chain(dot, node, (node,), NOFINAL)
        raise self.error(f"can't handle {node_text(node)}")

    def variable(self, dot: Any, node: p.Variable, args: tuple[Any, ...], final: Any) -> Any:
        value = self.lookup(node.name)
        if not node.names:
            self.not_a_function(args, final)
            return value
        return self.field_chain(dot, value, node, node.names, args, final)

    def chain(self, dot: Any, node: p.Chain, args: tuple[Any, ...], final: Any) -> Any:
        value = self.arg(dot, node.node)
        return self.field_chain(dot, value, node, node.names, args, final)

    def field_chain(self, dot: Any, receiver: Any, node: Any, names: tuple[str, ...], args: tuple[Any, ...],
                    final: Any) -> Any:
        self.at = node
        for name in names[:-1]:
            receiver = self.field(name, receiver, (), NOFINAL)
        return self.field(names[-1], receiver, args, final)

    def field(self, name: str, receiver: Any, args: tuple[Any, ...], final: Any) -> Any:
        if receiver is MISSING or receiver is NIL_MAP:
            return MISSING
        has_args = len(args) > 1 or final is not NOFINAL
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Struct):
            if name not in receiver:
                raise self.error(f"can't evaluate field {name} in type {receiver.type_name}")
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            return receiver[name]
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        raise self.error(f"can't evaluate field {name} in type {type_name(receiver)}")

    def function(self, dot: Any, ident: p.Ident, args: tuple[Any, ...], final: Any, call: Any = None) -> Any:
        name = ident.name
        call = call or ident
        fn, least, most = FUNCS[name]
        nodes = list(args[1:])
        count = len(nodes) + (final is not NOFINAL)
        if count < least or (most is not None and count > most):
            want = f"at least {least}" if most is None else str(least)
            self.at = call
            raise self.error(f"wrong number of args for {name}: want {want} got {count}")
        if name in ("and", "or"):  # lazy: stop at the first false (and) / true (or) value
            value = None
            for n in nodes:
                value = self.arg(dot, n)
                if truth(value) == (name == "or"):
                    return value
            return final if final is not NOFINAL else value
        values = [self.arg(dot, n) for n in nodes]
        if final is not NOFINAL:
            values.append(final)
        self.at = call
        try:
            return fn(*values)
        except (FuncError, PrintfError) as err:
            raise self.error(f"error calling {name}: {err}") from None


def execute(nodes: tuple[Any, ...], name: str, data: Any) -> str:
    ex = Executor(name, data)
    try:
        ex.walk(data, nodes)
    except (_Break, _Continue):  # the parser only allows them in a range
        raise ex.error("break or continue outside range") from None
    except RecursionError:
        raise TemplateError(f"template: {name}: nested too deeply") from None
    return "".join(ex.out)
