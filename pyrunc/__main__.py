"""`python -m pyrunc` and the `pyrunc` command (bin/pyrunc-boot calls main)."""

import sys


def main() -> None:
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

    sys.exit(fast_main(argv, early_error))


if __name__ == "__main__":
    main()
