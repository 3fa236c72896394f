"""tests/integration/reliability: faults, load, races, full disks and hostile input (issue 18).

The pybuild fixtures of tests/security/pbsec.py (a store with busybox imported, hostile tars) are
shared: its directory is put on the import path here, as pytest does for every test directory
when the whole suite is collected. Long runs are behind flags (see rellib.py): PYRUNC_SOAK=1,
PYRUNC_FUZZ_EXAMPLES=N.
"""

from __future__ import annotations

import os
import sys

_SECURITY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "security")
if _SECURITY not in sys.path:
    sys.path.insert(0, _SECURITY)
