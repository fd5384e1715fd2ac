"""Scratch directories for running sdist backends, and the removal of a killed run's.

Extracted sdists, installed build requirements and the backends' HOME and TMPDIR go under the
cache's `tmp/`, in one `machci-run-*` directory per run. The run holds an flock on the `lock`
file inside for as long as it lives, and the kernel drops that lock however the process ends. So
a directory whose lock is free, and which is older than the timeout (younger ones may be a run
between creating its directory and locking it), was left by a killed run: each run removes such
directories when it starts. No run ever waits for another's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from machci.errors import OutputError

PREFIX = "machci-run-"
LOCK = "lock"


class WorkArea:
    """This run's directory under `parent`, made and locked when first asked for."""

    def __init__(self, parent: Path, stale_after: float) -> None:
        self.parent = parent.absolute()  # the hooks run elsewhere
        self._lock = threading.Lock()
        self._root: Path | None = None
        self._held: int | None = None  # the descriptor holding the flock
        remove_stale(parent, stale_after)

    def directory(self, prefix: str) -> Path:
        """A new empty directory for one job of this run."""
        with self._lock:
            try:
                if self._root is None:
                    self.parent.mkdir(parents=True, exist_ok=True)
                    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.parent))
                    held = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(held, fcntl.LOCK_EX)
                    self._root, self._held = root, held
                return Path(tempfile.mkdtemp(prefix=prefix, dir=self._root))
            except OSError as exc:
                # This machine's problem, not the sdist's: it stops the run (no other version
                # would fare better), where a failing sdist only skips its version.
                raise OutputError(
                    f"cannot make a work directory in {self.parent}: {exc.strerror or exc}"
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._root is not None and self._held is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                os.close(self._held)
            self._root = self._held = None


def remove_stale(parent: Path, stale_after: float) -> None:
    """Remove the run directories under `parent` that no live run holds."""
    try:
        entries = list(os.scandir(parent))
    except OSError:  # no such directory yet, or none to read: nothing to remove
        return
    deadline = time.time() - stale_after
    for entry in entries:
        if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):  # another run removed it first
            if entry.stat(follow_symlinks=False).st_mtime < deadline:
                _remove_if_free(Path(entry.path))


def _remove_if_free(root: Path) -> None:
    try:
        held = os.open(root / LOCK, os.O_RDWR)
    except FileNotFoundError:  # killed before it made its lock
        shutil.rmtree(root, ignore_errors=True)
        return
    except PermissionError:  # not this user's run
        return
    try:
        with contextlib.suppress(BlockingIOError):  # raised while a live run holds it
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Removed while locked, so no other run's cleaner removes it at the same time.
            shutil.rmtree(root, ignore_errors=True)
    finally:
        os.close(held)
