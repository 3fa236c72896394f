"""`python -m pyrunc` and the `pyrunc` command (bin/pyrunc-boot calls main)."""

import gc
import os
import sys

# The cyclic GC runs every 700 net allocations of container objects: a `run` made ~11
# collections (~1 ms) while importing modules whose objects all live until exit. A verb
# is short-lived; one that lives long (a foreground run or exec, events) still collects
# once this many objects are left over, so cycles made in a loop are not kept for ever.
GC_THRESHOLD = 50_000


def main() -> None:
    gc.set_threshold(GC_THRESHOLD)
    argv = sys.argv[1:]
    from pyrunc import exeguard
    from pyrunc.errors import PyruncError

    early_error = None
    if exeguard.needs_guard(argv):
        try:  # before the CLI is imported: a re-exec then costs one interpreter start only
            exeguard.require_guarded_exe(argv)
        except PyruncError as err:
            early_error = err  # reported by the CLI, through --log/--log-format
    from pyrunc.fastcli import main as fast_main

    code = fast_main(argv, early_error)
    # Leave without the interpreter's teardown of every module (~3 ms a call on
    # the verbs clients run per container; nothing of pyrunc needs it: logs are
    # written with os.write, children were waited for). What Python's exit would
    # still do: flush stdio, and say 120 when that fails.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
