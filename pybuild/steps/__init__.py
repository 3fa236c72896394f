"""The build steps: what each Dockerfile instruction does to the image being built.

    step = table.step_for(ins)        # ins: a typed record of pybuild.dockerfile.instructions
    prep = step.prepare(b, st, ins)   # expand, name the cache inputs (no writes)
    out = step.apply(b, st, ins, prep)

`table.py` holds STEPS, the one table from instruction type to step. The contract (`Step`,
`StageState`, `Prepared`, `Outcome`, `BuildEnv`) is in `contract.py`. The steps are `run.py`
(RUN), `copy.py` (COPY, ADD), `workdir.py` (WORKDIR) and `metadata.py` (every instruction that
changes the config alone); `run_mounts.py`, `copytree.py`, `archive.py`, `users.py` and `fs.py`
are their helpers. This module imports nothing, so a helper (`users.py` for `pybuild exec`)
comes without the steps.

Adding an instruction: its record in `pybuild/dockerfile/instructions.py`, its parser in the
`PARSERS` table of `pybuild/dockerfile/stages.py` (what it reads and checks), and its step in
`STEPS` of `table.py` (what it does); `tests/unit/pybuild/test_steps.py` fails while the two
tables name different instructions.
"""
