"""Test-only fault injection: SIGKILL this process at a named step (issue 18).

The reliability tests (tests/reliability/) kill pyrunc and pybuild at each step of
create, start, run, exec and delete, of a build, a commit, an unpack, an export, a
pull and a push, then check that nothing is lost or left behind. A step is a call
`fault_point("build.layer-blob")` (defined in pyrunc/__init__.py, re-exported by
pybuild/__init__.py) placed where one durable action has finished and the next has
not begun; STEPS below is the catalogue, and a unit test holds the code and the
catalogue in agreement.

Honoured only under an explicit test setting, never in normal use:
- The switch: PYRUNC_FAULT_INJECTION=sigkill, exactly. Without it `fault_point` is
  one comparison against a constant computed when the package was imported, and
  this module is never imported (tests/unit/pyrunc/test_faults.py proves both).
- The step: PYRUNC_FAULT_AT=STEP[@N] (the N-th time STEP is reached, default 1),
  read only when the switch is on. One of the two set by mistake (a variable left
  in a shell) does nothing; with the switch on, a step name that is not in STEPS
  ends the process with status 99 and a message, so a test cannot pass by killing
  nothing.
- Who can set them: only whoever starts the process. A container's config, an
  image, a build context or a RUN step never reaches the environment of pyrunc or
  pybuild, and the effect is the process's own SIGKILL, which anyone able to set
  its environment could send anyway.
"""

from __future__ import annotations

import os
import signal
import sys

SWITCH = "PYRUNC_FAULT_INJECTION"
SWITCH_VALUE = "sigkill"
STEP_VAR = "PYRUNC_FAULT_AT"

STEPS: dict[str, str] = {
    # pyrunc create (also run's first half)
    "create.claimed": "the state dir holds the pre-state; no cgroup made yet",
    "create.cgroups": "the cgroups are made and configured; no process yet",
    "create.fifo": "exec.fifo exists; no process yet",
    "create.init-pid": "init exists and the pre-state names it; init not ready",
    "create.ready": "init is set up and waits for 'created'; the state is not final",
    "create.saved": "the final state (created) is saved; init not yet told to outlive create",
    "create.detached": "init was told 'created' and may outlive create; create has not exited",
    # pyrunc start, run
    "start.locked": "start holds the container's lock; init still blocked on exec.fifo",
    "start.released": "init was released and wrote its byte; its exec not yet confirmed, the fifo still there",
    "start.running": "init exec'd, the fifo is gone; poststart hooks not run",
    "run.started": "run's container runs; run has not begun to wait",
    "run.exited": "run's container exited and was reaped; nothing deleted yet",
    # pyrunc exec
    "exec.spawned": "the exec'd process exists in the container's namespaces; its execve not confirmed",
    "exec.running": "the exec'd process runs; exec has not begun to wait",
    # pyrunc delete (also run's end)
    "delete.stopped": "init is SIGKILLed and gone; cgroups and state remain",
    "delete.cgroups": "the cgroups are removed; poststop hooks not run, state remains",
    "delete.hooks-run": "poststop hooks ran; the state dir remains",
    # pybuild build
    "build.locked": "the build holds the store (shared gc lock) and its temp dir exists",
    "build.step-applied": "a step ran (RUN) or copied (COPY/ADD); its diff is not committed yet",
    "build.layer-blob": "the step's layer blob is in the store; not yet adopted as an unpacked layer",
    "build.layer-adopted": "the step's upper dir is the unpacked layer; no cache record yet",
    "build.cache-recorded": "the step's cache record is written",
    "build.image-written": "the image config and manifest blobs are written; nothing tagged",
    "build.tagged": "the tags are moved; the build has not cleaned up yet",
    # pybuild's bridge network (a RUN step's, a container's), made by its set-up
    "net.bridge-added": "the bridge link exists under its temporary name; not marked as pybuild's, not named",
    # store internals every verb goes through
    "blob.synced": "a blob's temp file is complete and fsynced; not renamed to its digest",
    "layer.unpacked": "a layer blob is unpacked into a temp dir; not verified, not published",
    "layer.entry": "one tar entry of a layer was extracted (use @N for the middle of a layer)",
    "index.locked": "index.json is locked for a tag change; the new index is not written",
    # pybuild commit (a container's changes as an image)
    "commit.layer-blob": "the container's diff is a layer blob; no image yet",
    "commit.image-written": "config and manifest written; not tagged",
    # pybuild export / save
    "export.blob": "one blob was copied into the archive's temp file (use @N)",
    "export.written": "the archive's temp file is complete; not renamed to its name",
    # pybuild pull / push
    "pull.manifest": "the manifest was fetched; no blob yet",
    "pull.chunk": "a chunk of a blob download reached the ingest file (use @N)",
    "pull.blobs": "every blob is in the store; the manifest is not stored, nothing tagged",
    "push.chunk": "a chunk of a chunked blob upload was accepted by the registry (use @N)",
    "push.blobs": "every blob is in the registry; the manifest is not put",
}

_reached: dict[str, int] = {}


def reach(step: str) -> None:
    """Called by fault_point with the switch on: SIGKILL this process if PYRUNC_FAULT_AT names
    this step and this is the N-th time it is reached."""
    if os.environ.get(SWITCH) != SWITCH_VALUE:
        return
    wanted = os.environ.get(STEP_VAR, "")
    name, _, nth = wanted.partition("@")
    if wanted and (name not in STEPS or (nth and not nth.isdigit())):
        sys.stderr.write(f"{STEP_VAR}={wanted}: no such fault step (pyrunc/faults.py lists them)\n")
        sys.stderr.flush()
        os._exit(99)
    if step not in STEPS:
        sys.stderr.write(f"fault_point({step!r}): not in the catalogue (pyrunc/faults.py)\n")
        sys.stderr.flush()
        os._exit(99)
    if step != name:
        return
    _reached[step] = _reached.get(step, 0) + 1
    if _reached[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
