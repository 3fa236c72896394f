"""`python -m pybuild` and the `pybuild` console script."""

import sys


def main() -> None:
    from pybuild.cli import main as cli_main

    sys.exit(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
