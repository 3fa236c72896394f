#!/bin/bash
# The demo: build the Flask image of demo/flask with pybuild (pip install in a
# RUN step, through pyrunc), unpack it into a bundle and run it with pyrunc; it
# answers HTTP on port 5000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec sh demo/flask_demo.sh
