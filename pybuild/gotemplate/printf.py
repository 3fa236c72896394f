"""fmt.Sprint, Sprintln and Sprintf for template values (the verbs people use).

Sprintf knows the verbs v (+v), s, q, d, b, o, x, X, c, U, e, E, f, F, g, G, t
and %%, the flags `-`, `+`, ` `, `0`, a width and a precision. A mismatch
prints as Go does (`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA …)`): that is
Go's answer, not an error. What Go has and this does not (`*` widths, `[n]`
argument indexes, the `#` flag) raises: refused, never answered differently.
"""

from __future__ import annotations

from typing import Any

from pybuild.gotemplate.values import MISSING, Struct, float_text, to_text, to_text_plus, type_name


class PrintfError(Exception):
    pass


def sprint(*args: Any) -> str:
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(to_text(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    return " ".join(to_text(a) for a in args) + "\n"


def go_quote(text: str) -> str:
    """strconv.Quote."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _bad(verb: str, value: Any) -> str:
    if value is None or value is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={to_text(value)})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(verb: str, value: Any, flags: str, prec: int | None) -> str | None:
    """A number formatted without width; None if the verb does not fit the value."""
    if _is_int(value):
        if verb in "dboxX":
            base = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
            digits = format(abs(value), base)
            if prec is not None:
                digits = digits.rjust(prec, "0") if prec else ("" if value == 0 else digits)
            sign = "-" if value < 0 else "+" if "+" in flags else " " if " " in flags else ""
            return sign + digits
        if verb == "c":
            return chr(value)
        if verb == "q":
            return "'" + go_quote(chr(value))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        if verb == "U":
            return f"U+{value:04X}"
        return None
    if isinstance(value, float) and verb in "eEfFgG":
        sign = "-" if value < 0 or (value == 0 and str(value).startswith("-")) else \
            "+" if "+" in flags else " " if " " in flags else ""
        if verb in "gG" and prec is None:
            body = float_text(abs(value))
            return sign + (body.upper() if verb == "G" else body)
        p = 6 if prec is None else prec
        return sign + format(abs(value), f".{p}{verb}")  # both write at least two exponent digits
    return None


def format_one(verb: str, value: Any, flags: str, width: int | None, prec: int | None) -> str:
    if verb in "vsq" and isinstance(value, (list, tuple, dict)) and verb != "v":
        inner = [format_one(verb, v, flags, None, prec) for v in (value.values() if isinstance(value, dict) else value)]
        if isinstance(value, Struct):
            text = "{" + " ".join(inner) + "}"
        elif isinstance(value, dict):
            text = "map[" + " ".join(f"{k}:{format_one(verb, value[k], flags, None, prec)}" for k in sorted(value)) + "]"
        else:
            text = "[" + " ".join(inner) + "]"
    elif verb == "v":
        text = to_text_plus(value) if "+" in flags else to_text(value)
        if _is_int(value) or isinstance(value, float):
            text = _number("d" if _is_int(value) else "g", value, flags, prec) or text
    elif verb == "s":
        text = value if isinstance(value, str) else None  # type: ignore[assignment]
        if text is None:
            return _bad(verb, value)
        if prec is not None:
            text = text[:prec]
    elif verb == "q" and isinstance(value, str):
        text = go_quote(value)
    elif verb in "xX" and isinstance(value, str):
        text = value.encode().hex()
        text = text.upper() if verb == "X" else text
    elif verb == "t":
        if not isinstance(value, bool):
            return _bad(verb, value)
        text = "true" if value else "false"
    else:
        number = _number(verb, value, flags, prec)
        if number is None:
            return _bad(verb, value)
        text = number
    if width is not None and len(text) < width:
        numeric = _is_int(value) or isinstance(value, float)
        if "-" in flags:
            text = text.ljust(width)
        elif "0" in flags:  # zeros after the sign
            sign = text[0] if numeric and text[:1] in "+- " else ""
            text = sign + text[len(sign):].rjust(width - len(sign), "0")
        else:
            text = text.rjust(width)
    return text


def sprintf(fmt: str, args: tuple[Any, ...]) -> str:
    out: list[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "-+# 0":
            if fmt[i] == "#":
                raise PrintfError("the # flag is not supported")
            flags += fmt[i]
            i += 1
        if i < n and fmt[i] in "*[":
            raise PrintfError("'*' widths and [n] argument indexes are not supported")
        start = i
        while i < n and fmt[i].isdigit():
            i += 1
        width = int(fmt[start:i]) if i > start else None
        prec = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] in "*[":
                raise PrintfError("'*' precisions are not supported")
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if verb not in "vsqdboxXcUeEfFgGt":
            if argi < len(args):
                out.append(_bad(verb, args[argi]))
                argi += 1
            else:
                out.append(f"%!{verb}(MISSING)")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[argi]
        argi += 1
        if value is MISSING:
            value = None
        if value is None and verb != "v":
            out.append(_bad(verb, None))
            continue
        out.append(format_one(verb, value, flags, width, prec))
    if argi < len(args):
        extra = ", ".join(f"{type_name(a)}={to_text(a)}" if a is not None else "<nil>" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
