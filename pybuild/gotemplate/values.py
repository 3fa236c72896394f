"""Values as Go's templates see them, and how Go prints them.

Data handed to a template is JSON-like: None, bool, int, float, str, list,
dict, plus two markers that keep Go's distinctions:
- `Struct(type_name, {...})`: a Go struct. Its fields print in order as
  `{v1 v2}`, and a field that is not there is an error ("can't evaluate field
  X in type T"), as for docker's and podman's typed inspect data.
- a plain dict is a Go map: `map[k:v …]` with sorted keys, and a missing key
  is Go's invalid value, printed `<no value>`.
`MISSING` is that invalid value; `None` is Go's nil (`<nil>`); NIL_LIST and NIL_MAP are a
struct's nil slice and map (JSON null, printed `[]` and `map[]`, as Go prints them).

`to_text` is fmt's %v, `to_json` is docker's `json` template function
(encoding/json without HTML escaping: struct fields in order, map keys sorted).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TypedNil:
    """A nil slice or map of a Go struct field: JSON null, printed `[]` / `map[]`, empty."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"NIL_{self.kind.upper()}"

    def __len__(self) -> int:
        return 0


NIL_LIST: Any = TypedNil("list")
NIL_MAP: Any = TypedNil("map")


class Struct(dict):
    """A dict that stands for a Go struct named `type_name` (see the module docstring)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str, fields: dict | None = None, **kw: Any) -> None:
        super().__init__(fields or {}, **kw)
        self.type_name = type_name


def type_name(value: Any) -> str:
    """Go's name for the type of a value (for error messages)."""
    if isinstance(value, Struct):
        return value.type_name
    if value is None:
        return "interface {}"
    if isinstance(value, TypedNil):
        return "[]string" if value.kind == "list" else "map[string]string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def _float_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| (no leading or trailing zeros) and the
    position of the decimal point relative to them."""
    _, digits, exponent = Decimal(repr(abs(f))).as_tuple()
    text = "".join(map(str, digits))
    stripped = text.lstrip("0")
    return stripped.rstrip("0") or "0", len(text) + int(exponent) - (len(text) - len(stripped))


def float_text(f: float, json_form: bool = False) -> str:
    """%v of a float64 (strconv 'g', shortest: exponent form below 1e-4 or from 1e6 on),
    or encoding/json's form (exponent below 1e-6 or from 1e21 on)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 and not json_form else "0"
    digits, point = _float_digits(f)
    sign = "-" if f < 0 else ""
    exp = point - 1
    if json_form:
        use_e = abs(f) < 1e-6 or abs(f) >= 1e21
    else:
        use_e = exp < -4 or exp >= 6
    if use_e:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        width = 1 if json_form else 2
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):0{width}d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def to_text(value: Any, top: bool = True) -> str:
    """fmt's %v."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, TypedNil):
        return "[]" if value.kind == "list" else "map[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Struct):
        return "{" + " ".join(to_text(v, False) for v in value.values()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{to_text(k, False)}:{to_text(value[k], False)}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(to_text(v, False) for v in value) + "]"
    return str(value)


def to_text_plus(value: Any) -> str:
    """fmt's %+v: struct fields named."""
    if isinstance(value, Struct):
        return "{" + " ".join(f"{k}:{to_text_plus(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{to_text_plus(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(to_text_plus(v) for v in value) + "]"
    return to_text(value)


def _json_value(value: Any) -> Any:
    """A value json.dumps writes in Go's order: structs as they are, maps sorted."""
    if value is MISSING or isinstance(value, TypedNil):
        return None
    if isinstance(value, Struct):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _json_value(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"json: unsupported value: {float_text(value)}")
        out.append(float_text(value, json_form=True))
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        out.append(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    elif isinstance(value, dict):
        out.append("{")
        for n, (k, v) in enumerate(value.items()):
            out.append("," if n else "")
            _encode(str(k), out)
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, v in enumerate(value):
            out.append("," if n else "")
            _encode(v, out)
        out.append("]")
    else:
        raise ValueError(f"json: unsupported type: {type_name(value)}")


def to_json(value: Any) -> str:
    """docker's `json` function (encoding/json, HTML not escaped): compact, struct fields in
    order, map keys sorted, floats as Go writes them, U+2028/U+2029 escaped."""
    out: list[str] = []
    _encode(_json_value(value), out)
    return "".join(out)


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, empty strings, slices and maps are false; structs true."""
    if value is MISSING or value is None or isinstance(value, TypedNil):
        return False
    if isinstance(value, Struct):
        return True
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True
