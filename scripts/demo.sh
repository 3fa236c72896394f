#!/bin/bash
# The demo: make a busybox bundle from Debian's busybox-static and run it with pyrunc.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python demo/busybox_demo.py
