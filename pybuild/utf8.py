"""Text that must become JSON: Dockerfile instructions, CLI values, image configs read back.

An OCI image config and an OCI runtime config are JSON, and JSON strings are Unicode: a byte
that is not UTF-8 cannot be carried. pybuild reads a Dockerfile as UTF-8 with surrogateescape (so
the parser and `pybuild parse --dump` see every byte, as BuildKit's does), and so a RUN line with
a Latin-1 `é` used to run first and crash in the config writer after (issue 11 finding 8); with
pyrunc it failed in the runtime, with runc the command ran with U+FFFD in place of the byte.

Rules:
- `check_dockerfile`: before anything runs, every instruction line (and every RUN heredoc body,
  which becomes a command line: `Heredocs.COMMAND` in the keyword table) must be valid UTF-8
  without NUL bytes; otherwise one line:
  `Dockerfile:LINE: RUN: invalid UTF-8 (byte 0xE9 at column 14): ...`. COPY/ADD heredoc bodies
  become files and may hold any bytes (written back byte for byte).
- `check_value`: the same for values from the command line (--build-arg, --label, tags).
- `go_strings`: JSON read from images may hold escaped lone surrogates (`"\\ud800"`); Go's
  decoder (docker, containerd, BuildKit) reads each as U+FFFD, and so does pybuild, so a config
  derived from such an image can be written again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pybuild.errors import DockerfileError, PybuildError

if TYPE_CHECKING:
    from pybuild.dockerfile.parser import Node, Result

_BAD = re.compile("[\ud800-\udfff\x00]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def first_bad(text: str) -> tuple[int, str] | None:
    """(0-based column, description) of the first byte JSON text cannot hold, or None."""
    m = _BAD.search(text)
    if m is None:
        return None
    ch = m.group()
    if ch == "\x00":
        return m.start(), "a NUL byte"
    code = ord(ch)
    what = f"byte 0x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
    return m.start(), f"invalid UTF-8 ({what})"


def check_value(text: str, what: str) -> str:
    bad = first_bad(text)
    if bad is not None:
        raise PybuildError(f"{what}: {bad[1]} at character {bad[0] + 1}: image and runtime configs are "
                           "JSON and hold only UTF-8 text")
    return text


def _check_node(node: "Node", filename: str) -> None:
    from pybuild.dockerfile import keywords

    bad = first_bad(node.original)
    where = "line"
    row = keywords.KEYWORDS.get(node.keyword)
    if bad is None and row is not None and row.heredocs is keywords.Heredocs.COMMAND:  # RUN
        for doc in node.heredocs:
            bad = first_bad(doc.content)
            if bad is not None:
                where = f"heredoc <<{doc.name}"
                break
    if bad is None and node.sub is not None:
        _check_node(node.sub, filename)
        return
    if bad is not None:
        column, problem = bad
        at = f"column {column + 1}" if where == "line" else f"{where}, character {column + 1}"
        raise DockerfileError(f"{node.keyword.upper()}: {problem} at {at}: image and runtime configs are JSON "
                              "and hold only UTF-8 text (save the Dockerfile as UTF-8)",
                              node.start_line, filename)


def check_dockerfile(result: "Result", filename: str) -> None:
    """Refuse, before any step runs, instructions that cannot reach a config (module docstring)."""
    for node in result.nodes:
        _check_node(node, filename)


def go_strings(value: Any) -> Any:
    """`value` (decoded JSON) with every lone surrogate replaced by U+FFFD, as Go decodes it."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [go_strings(v) for v in value]
    if isinstance(value, dict):
        return {go_strings(k): go_strings(v) for k, v in value.items()}
    return value
