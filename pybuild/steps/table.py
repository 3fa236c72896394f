"""STEPS: the one table from a typed Dockerfile instruction to the step that runs it (see the
package docstring for what else adding an instruction takes)."""

from __future__ import annotations

from pybuild.dockerfile.instructions import (AddInstr, ArgInstr, CmdInstr, CopyInstr, EntrypointInstr, EnvInstr,
                                             ExposeInstr, HealthcheckInstr, Instruction, LabelInstr, MaintainerInstr,
                                             OnbuildInstr, RunInstr, ShellInstr, StopSignalInstr, UserInstr,
                                             VolumeInstr, WorkdirInstr)
from pybuild.errors import InstructionError
from pybuild.steps import metadata
from pybuild.steps.contract import Step
from pybuild.steps.copy import CopyStep
from pybuild.steps.metadata import MetadataStep
from pybuild.steps.run import RunStep
from pybuild.steps.workdir import WorkdirStep

STEPS: dict[type[Instruction], Step] = {
    RunInstr: RunStep(),
    CopyInstr: CopyStep(add=False),
    AddInstr: CopyStep(add=True),
    WorkdirInstr: WorkdirStep(),
    EnvInstr: MetadataStep(metadata.env),
    LabelInstr: MetadataStep(metadata.label),
    ArgInstr: MetadataStep(metadata.arg, text=metadata.declare_args),
    UserInstr: MetadataStep(metadata.user),
    ExposeInstr: MetadataStep(metadata.expose),
    CmdInstr: MetadataStep(metadata.cmd, text=metadata.mark_cmd),
    EntrypointInstr: MetadataStep(metadata.entrypoint),
    VolumeInstr: MetadataStep(metadata.volume),
    ShellInstr: MetadataStep(metadata.shell),
    StopSignalInstr: MetadataStep(metadata.stopsignal),
    HealthcheckInstr: MetadataStep(metadata.healthcheck),
    OnbuildInstr: MetadataStep(metadata.onbuild),
    MaintainerInstr: MetadataStep(metadata.maintainer),
}


def step_for(ins: Instruction) -> Step:
    try:
        return STEPS[type(ins)]
    except KeyError:
        raise InstructionError(f"unknown instruction: {ins.keyword.upper()}") from None
