"""pybuild: a Dockerfile image builder that runs each RUN step through an OCI runtime."""

from pyrunc import fault_point  # noqa: F401 -- the test-only fault hook (pyrunc/faults.py), shared

__version__ = "0.1.0"
