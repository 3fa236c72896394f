"""pybuild: a Dockerfile image builder that runs each RUN step through an OCI runtime."""

__version__ = "0.1.0"
