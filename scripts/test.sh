#!/bin/bash
# The whole test suite (unit, integration, security), as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${@:-tests}"
