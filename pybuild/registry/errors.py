"""Registry errors: part of pybuild's one hierarchy (PybuildError), so cli.main reports them as one line."""

from __future__ import annotations

from pybuild.errors import PybuildError


class RegistryError(PybuildError):
    """A registry operation failed; the message names the reference or host and the reason."""


class ReferenceError_(RegistryError):
    """An image reference that does not parse."""


class AuthError(RegistryError):
    """Missing or rejected credentials (401/403)."""


class NotFound(RegistryError):
    """The registry does not know the tag, digest or repository (404 / MANIFEST_UNKNOWN)."""


class TransientError(RegistryError):
    """A failure worth retrying (5xx, 429, broken connection); raised once the retries are used up."""
