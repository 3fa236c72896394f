"""The one table an instruction is added to (KEYWORDS: how its line splits, what it reads, its
record) and the steps bound to those records by their own declaration (STEPS)."""

from __future__ import annotations

import subprocess
import sys
import types
from types import MappingProxyType

import pytest
from click.testing import CliRunner

from pybuild.commands.parse import parse as parse_command
from pybuild.dockerfile import keywords, lines
from pybuild.dockerfile.flags import FlagError
from pybuild.dockerfile.instructions import EnvInstr, Instruction, OnbuildInstr, RunInstr
from pybuild.dockerfile.keywords import KEYWORDS, Keyword, Req
from pybuild.dockerfile.parser import dump, parse
from pybuild.dockerfile.stages import parse_instruction, parse_stages
from pybuild.errors import DockerfileError
from pybuild.image import ImageConfig
from pybuild.dockerfile.shell_words import ShellLex
from pybuild.steps import table
from pybuild.steps.contract import BuildEnv, StageState, with_container
from pybuild.steps.metadata import config_step
from pybuild.steps.table import STEPS, step_for, steps_in


def test_every_parsed_instruction_has_a_step():
    """Each keyword row with a record has a step for it (named <Keyword>Instr), and back; the
    row without one is FROM, which starts a stage."""
    with_record = {name for name, row in KEYWORDS.items() if row.record is not None}
    keywords_of_steps = {cls.__name__.removesuffix("Instr").lower() for cls in STEPS}
    assert keywords_of_steps == with_record
    assert {row.record for row in KEYWORDS.values() if row.record is not None} == set(STEPS)
    assert set(KEYWORDS) == with_record | {"from"}
    for record, step in STEPS.items():
        assert step.record is record


def test_each_keyword_parses_to_the_type_its_step_is_for():
    """Each row's example line splits, reads into the row's record and dispatches to its step."""
    for keyword, row in KEYWORDS.items():
        assert row.example.split()[0].lower() == keyword
        ins = parse_instruction(parse(row.example.encode()).nodes[0])
        if row.record is None:
            assert ins == ("busybox", "base", "")
            continue
        assert type(ins) is row.record and ins.keyword == keyword
        assert step_for(ins) is STEPS[type(ins)]


def test_the_front_end_does_not_import_the_steps():
    """dockerfile/ is the pure front end: `pybuild parse` needs neither steps nor a store."""
    code = ("import sys, pybuild.dockerfile.stages, pybuild.dockerfile_parser, pybuild.utf8; "
            "print(sorted(m for m in sys.modules if m.startswith(('pybuild.steps', 'pybuild.store'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- a made-up instruction, added through the one table ---------------------------------------


class GreetInstr(Instruction):
    name: str = ""
    loud: bool = False


def _greet(r: Req) -> Instruction:
    if len(r.args) != 1:
        raise FlagError("GREET requires exactly one argument")
    r.flags.bool("loud")
    r.flags.parse()
    return GreetInstr(**r.base, name=r.args[0], loud=r.flags.true("loud"))


def _greet_steps() -> types.ModuleType:
    """A step module of its own, as a new file in pybuild/steps/ would be."""
    module = types.ModuleType("greet_steps")

    @config_step(GreetInstr)
    def greet(b: BuildEnv, st: StageState, ins: GreetInstr) -> tuple[ImageConfig, str]:
        name = b.lex.process_word(ins.name, st.env())
        greeting = name.upper() if ins.loud else name
        return with_container(st, labels={**st.container.labels, "greeting": greeting}), f"GREET {greeting}"

    module.greet = greet  # type: ignore[attr-defined]
    return module


GREET = Keyword(lines.parse_whitespace_list, _greet, GreetInstr, "GREET world")
DOCKERFILE = b"FROM scratch\nENV WHO=world\nGREET --loud $WHO\nONBUILD GREET later\n"


def test_a_made_up_instruction_is_one_row_and_one_step(monkeypatch: pytest.MonkeyPatch, tmp_path):
    original_keywords, original_steps = keywords.KEYWORDS, table.STEPS
    (tmp_path / "Dockerfile").write_bytes(DOCKERFILE)
    with monkeypatch.context() as patch:
        patch.setattr(keywords, "KEYWORDS", MappingProxyType({**KEYWORDS, "greet": GREET}))
        patch.setattr(table, "STEPS", MappingProxyType({**STEPS, **steps_in(_greet_steps())}))

        # It splits with its row's splitter (BuildKit leaves an unknown keyword unsplit) ...
        assert dump(parse(b"GREET a  b")) == '(greet "a" "b")'
        # ... reads into its record, with its flags, also as an ONBUILD trigger ...
        _, stages = parse_stages(parse(DOCKERFILE))
        env, greet, onbuild = stages[0].instructions
        assert isinstance(env, EnvInstr) and isinstance(onbuild, OnbuildInstr)
        assert greet == GreetInstr(keyword="greet", line=3, end_line=3, original="GREET --loud $WHO",
                                   flags=("--loud",), name="$WHO", loud=True)
        assert onbuild.expression == "GREET later"
        with pytest.raises(DockerfileError, match=r"^Dockerfile:1: GREET requires exactly one argument$"):
            parse_stages(parse(b"GREET a b"))
        with pytest.raises(DockerfileError, match=r"^Dockerfile:1: unknown flag: --quiet$"):
            parse_stages(parse(b"GREET --quiet a"))
        with pytest.raises(DockerfileError, match=r"unknown instruction: GRET \(did you mean GREET\?\)"):
            parse_stages(parse(b"FROM scratch\nGRET a\n"))
        # ... is shown by `pybuild parse` ...
        shown = CliRunner().invoke(parse_command, ["-f", str(tmp_path / "Dockerfile")])
        assert shown.exit_code == 0 and "    3    GREET name='$WHO' loud=True\n" in shown.output
        # ... and dispatches to its step, as the builder does (step_for, prepare, apply).
        lex = ShellLex("\\")
        b = BuildEnv(store=None, cache=None, context=None, temp=None, progress=None, lex=lex,  # type: ignore[arg-type]
                     runtime=["pyrunc"])
        st = StageState(config=ImageConfig(architecture="amd64", os="linux"), layers=(), key="scratch",
                        base_digest="scratch")
        for ins in (env, greet):
            step = step_for(ins)
            out = step.apply(b, st, ins, step.prepare(b, st, ins))
            st.config = out.config
        assert step.metadata_only and step.record is GreetInstr
        assert st.container.labels["greeting"] == "WORLD" and out.created_by == "GREET WORLD"

    # Nothing global is left changed: the keyword is unknown again, and not split.
    assert keywords.KEYWORDS is original_keywords and table.STEPS is original_steps and "greet" not in KEYWORDS
    assert dump(parse(b"GREET a  b")) == '(greet "")'
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: unknown instruction: GREET$"):
        parse_stages(parse(b"FROM scratch\nGREET a\n"))


def test_steps_are_collected_from_their_own_declarations():
    """A step module's classes with a `record` and its step objects are found; an imported
    class is not counted twice; two steps for one record, or a `record` on a non-step, fail."""
    mod = types.ModuleType("made_up_steps")

    class EnvAgain:
        record = EnvInstr
        metadata_only = True

        def prepare(self, b, st, ins): ...

        def apply(self, b, st, ins, prep): ...

    EnvAgain.__module__ = mod.__name__
    mod.EnvAgain = EnvAgain  # type: ignore[attr-defined]
    mod.RunStep = type(STEPS[RunInstr])  # type: ignore[attr-defined]  # imported: belongs to steps.run
    found = steps_in(mod)
    assert list(found) == [EnvInstr] and type(found[EnvInstr]) is EnvAgain
    from pybuild.steps import metadata

    with pytest.raises(ValueError, match="two steps for EnvInstr"):
        steps_in(metadata, mod)

    class NotAStep:
        record = EnvInstr

    NotAStep.__module__ = mod.__name__
    mod.EnvAgain = NotAStep  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="declares a record but is not a Step"):
        steps_in(mod)
