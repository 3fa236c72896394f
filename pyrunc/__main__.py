"""`python -m pyrunc` and the `pyrunc` console script."""

import sys


def main() -> None:
    from pyrunc.fastcli import main as fast_main

    sys.exit(fast_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
