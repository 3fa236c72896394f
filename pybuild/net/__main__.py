"""`python -m pybuild.net setup|teardown …`: the OCI hook command (see hook.py)."""

import sys

from pybuild.net.hook import main

sys.exit(main(sys.argv[1:]))
