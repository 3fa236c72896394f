"""The two tables an instruction is added to: PARSERS (what it reads) and STEPS (what it does)."""

from __future__ import annotations

from pybuild.dockerfile.instructions import Instruction
from pybuild.dockerfile.parser import parse
from pybuild.dockerfile.stages import INSTRUCTION_NAMES, PARSERS, parse_instruction
from pybuild.steps.table import STEPS, step_for


def test_every_parsed_instruction_has_a_step():
    """Each keyword with a parser has a step for its record type (named <Keyword>Instr), and back."""
    keywords = {cls.__name__.removesuffix("Instr").lower() for cls in STEPS}
    assert keywords == set(PARSERS)
    assert set(INSTRUCTION_NAMES) == set(PARSERS) | {"from"}


def test_each_keyword_parses_to_the_type_its_step_is_for():
    lines = {"env": "ENV A=1", "label": "LABEL a=b", "arg": "ARG x", "maintainer": "MAINTAINER me",
             "add": "ADD a /b", "copy": "COPY a /b", "onbuild": "ONBUILD RUN x", "workdir": "WORKDIR /w",
             "run": "RUN true", "cmd": "CMD x", "healthcheck": "HEALTHCHECK NONE", "entrypoint": "ENTRYPOINT x",
             "expose": "EXPOSE 80", "user": "USER u", "volume": "VOLUME /v", "stopsignal": "STOPSIGNAL 9",
             "shell": 'SHELL ["sh", "-c"]'}
    assert set(lines) == set(PARSERS)
    for keyword, line in lines.items():
        ins = parse_instruction(parse(line.encode()).nodes[0])
        assert isinstance(ins, Instruction) and ins.keyword == keyword
        assert step_for(ins) is STEPS[type(ins)]
