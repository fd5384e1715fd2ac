"""Build requirements installed for running sdist backends, once per requirement set per run.

Most sdists name the same few build requirements (`setuptools>=40.8.0` above all); installing
each distinct set once instead of once per sdist saves a pip run per sdist. Each set is a pip
`--target` directory filled from the run's indexes, shared read-only by every backend that needs
it and removed when the run closes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from machci.errors import SourceError

INSTALL_TIMEOUT = 600


@dataclass
class _Install:
    target: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    path: Path | None = None
    error: str | None = None  # remembered, so a broken set fails every sdist without pip


class BuildEnvironments:
    """Directories with build requirements installed, keyed by the exact requirement tuple."""

    def __init__(self, index_urls: Sequence[str]) -> None:
        self.index_urls = tuple(index_urls)
        self._lock = threading.Lock()
        self._installs: dict[tuple[str, ...], _Install] = {}
        self._root: Path | None = None

    def site(self, requires: tuple[str, ...]) -> Path:
        """A directory with `requires` installed; concurrent callers wait for one install."""
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="machci-build-"))
            install = self._installs.get(requires)
            if install is None:
                install = _Install(self._root / str(len(self._installs)))
                self._installs[requires] = install
        with install.lock:
            if install.path is None and install.error is None:
                try:
                    _pip_install(requires, install.target, self.index_urls)
                    install.path = install.target
                except SourceError as exc:
                    install.error = exc.message
            if install.error is not None:
                raise SourceError(install.error)
            assert install.path is not None
            return install.path

    def close(self) -> None:
        with self._lock:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._installs.clear()


def _pip_install(requires: Sequence[str], target: Path, index_urls: Sequence[str]) -> None:
    target.mkdir(parents=True)
    if not requires:
        return
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--no-input"]
    # No asking the index about pip itself, no bytecode for a directory that lives one run.
    command += ["--disable-pip-version-check", "--no-compile"]
    command += ["--target", str(target), "--only-binary", ":all:"]
    command += ["--index-url", index_urls[0]]
    for url in index_urls[1:]:
        command += ["--extra-index-url", url]
    try:
        result = subprocess.run(
            [*command, *requires],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"cannot install build requirements {list(requires)}: timed out") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise SourceError(f"cannot install build requirements {list(requires)}: {tail[0]}")
