"""pyrunc: an OCI runtime with runc's command line.

Nothing heavy is imported here: every `pyrunc` invocation pays for this module.
"""

import os as _os

__version__ = "0.1.0"
OCI_VERSION = "1.0.2-dev"  # what runc 1.1 reports in `state`; clients compare against it
# init's comm until execve replaces it: `ps` shows what waits in a created container, and
# start.py tells an init that died before its execve (comm still this) from a program that ran
# and ended (comm is the program's). Here, not in sync.py: `state` and `start` read it without
# importing the socket protocol (_socket, struct).
INIT_COMM = b"pyrunc[init]"

# The test-only fault hook (pyrunc/faults.py): off unless the switch is in the environment at start.
_FAULTS = _os.environ.get("PYRUNC_FAULT_INJECTION") == "sigkill"


def fault_point(step: str) -> None:
    """A named step where the reliability tests may SIGKILL this process; a no-op (one test of a
    constant, no import) unless PYRUNC_FAULT_INJECTION=sigkill was set when pyrunc was imported."""
    if _FAULTS:
        from pyrunc.faults import reach

        reach(step)
