"""STEPS: typed Dockerfile instruction → the step that runs it, collected from the steps' own
declarations, so that no list here names an instruction.

A step says which record it runs: a class in a step module with a `record` attribute
(`class RunStep: record = RunInstr`, made with no arguments) or a module-level step object
(`@config_step(EnvInstr)` on a metadata handler). `steps_in` gathers them from the modules
below; a new step in one of them needs no edit here (a new step module goes into the call).
The rows of the keyword table (`pybuild/dockerfile/keywords.py`) and these steps are held
together by `tests/unit/pybuild/test_steps.py`: a row whose record has no step, or a step whose
record has no row, fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from pybuild.dockerfile.instructions import Instruction
from pybuild.errors import InstructionError
from pybuild.steps import copy, metadata, run, workdir
from pybuild.steps.contract import Step


def _declared(module: ModuleType) -> list[Step]:
    """The steps `module` defines (module docstring); one imported from elsewhere is not its."""
    out: list[Step] = []
    for value in vars(module).values():
        if isinstance(value, type):
            if value.__module__ != module.__name__ or not isinstance(vars(value).get("record"), type):
                continue
            step = value()
            if not isinstance(step, Step):
                raise TypeError(f"{module.__name__}.{value.__name__} declares a record but is not a Step")
            out.append(step)
        elif not isinstance(value, ModuleType) and isinstance(value, Step) and isinstance(value.record, type):
            out.append(value)
    return out


def steps_in(*modules: ModuleType) -> Mapping[type[Instruction], Step]:
    """Record type → step, for every step the modules define; two steps for one record raise."""
    found: dict[type[Instruction], Step] = {}
    for module in modules:
        for step in _declared(module):
            other = found.get(step.record)
            if other is not None and other is not step:
                raise ValueError(f"two steps for {step.record.__name__}: {type(other).__name__} and "
                                 f"{type(step).__name__} ({module.__name__})")
            found[step.record] = step
    return MappingProxyType(found)


STEPS = steps_in(run, copy, workdir, metadata)


def step_for(ins: Instruction) -> Step:
    try:
        return STEPS[type(ins)]
    except KeyError:
        raise InstructionError(f"unknown instruction: {ins.keyword.upper()}") from None
