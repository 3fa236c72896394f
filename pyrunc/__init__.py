"""pyrunc: an OCI runtime with runc's command line.

Nothing heavy is imported here: every `pyrunc` invocation pays for this module.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.0.2-dev"  # what runc 1.1 reports in `state`; clients compare against it
