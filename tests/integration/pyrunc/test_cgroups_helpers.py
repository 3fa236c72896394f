"""Helpers (no tests) for the cgroup integration tests: a manager fixture that always
removes what it made, and forked children that wait for "go" so they can be
put into a cgroup before they do their work."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from pyrunc import cgroups


def unique(prefix: str = "pyrunc-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Child:
    """fork(); the child blocks until go(), runs fn() and exits with its return value."""

    def __init__(self, fn) -> None:
        r, w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(w)
                os.close(self.res_r)
                os.read(r, 1)
                out = fn()
                os.write(res_w, repr(out).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(r)
        os.close(res_w)
        self.go_w = w
        self.status: int | None = None

    def go(self) -> None:
        os.write(self.go_w, b"g")
        os.close(self.go_w)

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return status
            time.sleep(0.01)
        self.kill()
        raise AssertionError(f"child {self.pid} did not exit within {timeout}s")

    def result(self) -> str:
        data = b""
        while chunk := os.read(self.res_r, 65536):
            data += chunk
        return data.decode()

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                _, self.status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


@pytest.fixture
def children():
    made: list[Child] = []

    def spawn(fn) -> Child:
        c = Child(fn)
        made.append(c)
        return c

    yield spawn
    for c in made:
        c.kill()
        try:
            os.close(c.res_r)
        except OSError:
            pass


def make_manager(path: str, **kw):
    return cgroups.new_manager(path, "x", **kw)


@pytest.fixture
def cg():
    """A fresh v1/hybrid manager at /pyrunc-test-<random>, destroyed (with a
    SIGKILL of stragglers) even when the test fails."""
    m = make_manager("/" + unique())
    m.create()
    try:
        yield m
    finally:
        m.destroy(kill=True)
        assert not m.exists()


def sleeper() -> None:
    time.sleep(60)
