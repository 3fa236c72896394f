"""The rootless tests' user (tests/rootlesslib.py): made once per session, removed after."""

from __future__ import annotations

import pytest

from rootlesslib import rootless_user_fixture


@pytest.fixture(scope="session")
def rootless_user():
    yield from rootless_user_fixture()
