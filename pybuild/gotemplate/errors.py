"""The template error: a one-line message in Go's form (`template: NAME:LINE:COL: …`)."""

from __future__ import annotations

from pybuild.errors import PybuildError


class TemplateError(PybuildError):
    """A template that cannot be parsed or evaluated; str() is the whole message."""

    exit_code = 125  # podman's code for a bad --format
