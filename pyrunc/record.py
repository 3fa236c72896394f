"""Frozen, slotted record classes for the spec types, without `dataclasses`.

`dataclasses` costs ≈ 7 ms to import and ≈ 0.6 ms per frozen slotted class
(it generates and compiles methods for each class at import time): ≈ 35 ms
for the 45 spec classes, more than the whole budget of a container run. This
metaclass gives the same surface that pyrunc uses (keyword or positional
construction with defaults, immutability, ==, hash, repr, `replace()`,
`fields()`) for ≈ 20 µs a class.
"""

from __future__ import annotations


class FrozenInstanceError(AttributeError):
    """Raised on assignment to a field of a spec record (they are immutable)."""


class _Factory:
    """A default that is built anew for every instance (like dataclasses' default_factory)."""

    __slots__ = ("make",)

    def __init__(self, make: type) -> None:
        self.make = make


NEW_DICT = _Factory(dict)


def factory(make: type) -> _Factory:
    """A default made anew by `make()` for every instance (dataclasses' default_factory)."""
    return _Factory(make)


class _RecordMeta(type):
    """Turns the annotated fields of a class body into __slots__ plus a defaults table."""

    def __new__(mcls, name: str, bases: tuple, ns: dict):  # type: ignore[no-untyped-def]
        own = tuple(ns.get("__annotations__", ()))  # in class-body order
        # a subclass extends its base's fields (pybuild's instructions share a common part)
        inherited = tuple(f for base in bases for f in getattr(base, "_fields", ()))
        redeclared = set(own) & set(inherited)
        if redeclared:
            raise TypeError(f"{name} redeclares the fields {sorted(redeclared)} of its base")
        defaults = {}
        for base in bases:
            defaults.update(getattr(base, "_defaults", {}))
        defaults.update({f: ns.pop(f) for f in own if f in ns})
        names = inherited + own
        ns["__slots__"] = own
        ns["_fields"] = names
        ns["_defaults"] = defaults
        # (name, default or _REQUIRED, default is a factory) for Record.__init__
        ns["_plan"] = tuple((f, defaults.get(f, _REQUIRED), type(defaults.get(f)) is _Factory)
                            for f in names)
        ns["__match_args__"] = names
        return super().__new__(mcls, name, bases, ns)


_REQUIRED = object()


class Record(metaclass=_RecordMeta):
    """Base of every spec record: immutable, slotted, compared and hashed by value."""

    __slots__ = ()

    def __init__(self, *args: object, **kwargs: object) -> None:
        if args:
            if len(args) > len(self._fields):
                raise TypeError(f"{type(self).__name__}() takes {len(self._fields)} arguments, "
                                f"got {len(args)}")
            for name, value in zip(self._fields, args):
                if name in kwargs:
                    raise TypeError(f"{type(self).__name__}() got {name!r} twice")
                kwargs[name] = value
        put = object.__setattr__
        pop = kwargs.pop
        for name, default, factory in self._plan:
            value = pop(name, default)
            if value is _REQUIRED:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            if factory and value is default:
                value = default.make()
            put(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._fields))

    def __reduce__(self) -> tuple:
        """copy, deepcopy and pickle rebuild through __init__ (the default would assign slots)."""
        return type(self), tuple(getattr(self, f) for f in self._fields)


class MutableRecord(Record):
    """A Record whose fields can be assigned (runtime state, launch plans):
    same cheap construction, no hashing."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__
    __hash__ = None  # type: ignore[assignment]


def fields(record: Record | type) -> tuple[str, ...]:
    """The field names of a spec record or record class, in declaration order."""
    return record._fields  # type: ignore[union-attr]


def replace(record: Record, **changes: object) -> Record:
    """A copy of `record` with some fields changed (dataclasses.replace for spec records)."""
    values = {f: getattr(record, f) for f in record._fields}
    values.update(changes)
    return type(record)(**values)


# JSON keys that are not the plain camelCase of the field name
_JSON_KEYS = {
    "container_id": "containerID", "host_id": "hostID", "class_": "class", "clos_id": "closID",
    "kernel_tcp": "kernelTCP", "class_id": "classID", "exec_cpu_affinity": "execCPUAffinity",
    "block_io": "blockIO", "throttle_read_iops_device": "throttleReadIOPSDevice",
    "throttle_write_iops_device": "throttleWriteIOPSDevice", "enable_cmt": "enableCMT",
    "enable_mbm": "enableMBM", "disable_oom_killer": "disableOOMKiller",
}
_NOT_JSON = ("raw",)


def to_json(record: object) -> object:
    """The JSON value of a spec record (config.json for a Spec).

    None fields are left out, and so are empty arrays and maps whose absence
    means the same (see the module docstring); parse(to_json(spec)) gives
    back an equal spec apart from the `raw` copies.
    """
    if isinstance(record, Record):
        out = {}
        defaults = record._defaults
        for name in record._fields:
            value = getattr(record, name)
            if value is None or name in _NOT_JSON:
                continue
            if name in defaults and defaults[name] is not None and not value \
                    and type(value) in (tuple, dict):
                continue
            key = _JSON_KEYS.get(name)
            if key is None:
                head, *rest = name.split("_")
                key = head + "".join(w.title() for w in rest)
            value = to_json(value)
            if value == {} and isinstance(defaults.get(name), Record):
                continue  # e.g. hooks: Hooks() means "no hooks" just as absence does
            out[key] = value
        return out
    if isinstance(record, tuple):
        return [to_json(v) for v in record]
    if isinstance(record, dict):
        return {k: to_json(v) for k, v in record.items()}
    return record


def tuple_record(name: str, field_names: str) -> type:
    """collections.namedtuple's surface (a tuple with named fields, equal to a
    plain tuple of its values) without importing `collections` (≈1.5 ms on
    every `pyrunc run`) and without namedtuple's exec of generated code."""
    names = tuple(field_names.split())

    def __new__(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        values = list(args) + [kwargs.pop(n) for n in names[len(args):] if n in kwargs]
        if kwargs or len(values) != len(names):
            raise TypeError(f"{name}() takes the fields {names}")
        return tuple.__new__(cls, values)

    def __repr__(self) -> str:  # type: ignore[no-untyped-def]
        return f"{name}(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self)) + ")"

    def _replace(self, **changes):  # type: ignore[no-untyped-def]
        return type(self)(*[changes.pop(n, v) for n, v in zip(names, self)])

    ns: dict = {"__slots__": (), "_fields": names, "__new__": __new__, "__repr__": __repr__,
                "_replace": _replace, "__getnewargs__": lambda self: tuple(self)}
    for i, n in enumerate(names):
        ns[n] = property(lambda self, i=i: self[i], doc=f"field {i}")
    return type(name, (tuple,), ns)
