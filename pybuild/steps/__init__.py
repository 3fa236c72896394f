"""The build steps: what each Dockerfile instruction does to the image being built.

    step = table.step_for(ins)        # ins: a typed record of pybuild.dockerfile.instructions
    prep = step.prepare(b, st, ins)   # expand, name the cache inputs (no writes)
    out = step.apply(b, st, ins, prep)

`table.py` holds STEPS, instruction type → step, collected from each step's own `record`
(`class RunStep: record = RunInstr`; `@config_step(EnvInstr)` on a metadata handler). The
contract (`Step`, `StageState`, `Prepared`, `Outcome`, `BuildEnv`) is in `contract.py`. The steps are `run.py`
(RUN), `copy.py` (COPY, ADD), `workdir.py` (WORKDIR) and `metadata.py` (every instruction that
changes the config alone); `run_mounts.py`, `copytree.py`, `archive.py`, `users.py` and `fs.py`
are their helpers. This module imports nothing, so a helper (`users.py` for `pybuild exec`)
comes without the steps.

Adding an instruction: its record in `pybuild/dockerfile/instructions.py`, its reader and its
row in `KEYWORDS` of `pybuild/dockerfile/keywords.py` (how it splits, what it reads and checks),
and its step in one of the modules here, declaring the record it runs (what it does);
`tests/unit/pybuild/test_steps.py` fails while a row's record has no step or a step's record no
row.
"""
