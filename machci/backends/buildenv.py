"""What running sdist backends needs, once per run: build requirements, scratch space, a sandbox.

Most sdists name the same few build requirements (`setuptools>=40.8.0` above all); installing
each distinct set once instead of once per sdist saves a pip run per sdist. Each set is a pip
`--target` directory filled from the run's indexes and shared read-only by every backend that
needs it. pip is machci's own tool and may use the network, but it too gets only an allow-listed
environment, and the index URLs (which may carry credentials) reach it through environment
variables, never its command line, which every user of the machine can read.

Build constraints (machci.yaml's `buildConstraints`, `--build-constraint`) reach pip as a
constraints file, so they restrict the versions it installs and never add a package. What a
backend answers may depend on them and on the Python that runs it: `identity` names both, and the
answers are cached under it (sources/pypi/snapshot.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from machci.backends.sandbox import Sandbox, environment, run_bounded
from machci.backends.workarea import WorkArea
from machci.errors import SourceError

INSTALL_TIMEOUT = 600
# What pip needs to reach an index through a proxy or with a private CA, besides the allow-list.
PIP_NETWORK = (
    *("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"),
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"),
)


class BackendError(SourceError):
    """A build backend's hook, or the pip run that installs what it needs, failed.

    `tail` holds the last lines of its output, for the message. A `transient` failure (a time
    limit, pip and its network) may not happen again and is never cached; a hook that exits with
    an error on the same sdist in the same environment fails the same way every time.
    `build_requires`: the sdist's static build requirements, which build constraints may hold
    back (named in the message's ways out).
    """

    def __init__(
        self,
        message: str,
        tail: Sequence[str] = (),
        *,
        transient: bool = False,
        build_requires: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.tail = tuple(tail)
        self.transient = transient
        self.build_requires = tuple(build_requires)

    def building_with(self, requires: Sequence[str]) -> BackendError:
        """The same failure, of an sdist with these static build requirements."""
        return BackendError(
            self.message, self.tail, transient=self.transient, build_requires=requires
        )


@dataclass
class _Install:
    lock: threading.Lock = field(default_factory=threading.Lock)
    path: Path | None = None
    error: BackendError | None = None  # remembered, so a broken set fails every sdist without pip


class BuildEnvironments:
    """Directories with build requirements installed, keyed by the exact requirement tuple, plus
    the run's work area and the sandbox its backends run in (both bounded by `timeout`)."""

    def __init__(
        self,
        index_urls: Sequence[str],
        scratch: Path,
        timeout: float,
        constraints: Sequence[str] = (),
    ) -> None:
        """`constraints`: requirement strings (name, specifier, marker) pip must respect."""
        self.index_urls = tuple(index_urls)
        self.timeout = timeout
        self.constraints = tuple(constraints)
        self.work = WorkArea(scratch, timeout)
        self.sandbox = Sandbox(timeout)
        self._lock = threading.Lock()
        self._installs: dict[tuple[str, ...], _Install] = {}

    def site(self, requires: tuple[str, ...]) -> Path:
        """A directory with `requires` installed; concurrent callers wait for one install."""
        with self._lock:
            install = self._installs.setdefault(requires, _Install())
        with install.lock:
            if install.path is None and install.error is None:
                try:
                    install.path = self._pip_install(requires)
                except BackendError as exc:
                    install.error = exc
            if install.error is not None:
                error = install.error
                raise BackendError(error.message, error.tail, transient=error.transient)
            assert install.path is not None
            return install.path

    @property
    def identity(self) -> str:
        """What a backend's answers depend on besides the sdist: the Python that runs it (its
        X.Y) and the build constraints, as a short digest."""
        facts = {"python": list(sys.version_info[:2]), "constraints": sorted(self.constraints)}
        text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def close(self) -> None:
        with self._lock:
            self.work.close()
            self._installs.clear()

    def _pip_install(self, requires: Sequence[str]) -> Path:
        scratch = self.work.directory("pip-")
        target = scratch / "site"
        target.mkdir()
        if not requires:
            return target
        # No configuration files and no asking the index about pip itself; no bytecode for a
        # directory that lives one run, no cache in a HOME that lives one install.
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input"]
        command += ["--disable-pip-version-check", "--no-compile", "--no-cache-dir"]
        command += ["--timeout", str(self.timeout)]
        command += ["--target", str(target), "--only-binary", ":all:"]
        if self.constraints:
            constraints = scratch / "build-constraints.txt"
            constraints.write_text("".join(f"{line}\n" for line in self.constraints))
            command += ["--constraint", str(constraints)]
        command += requires
        env = environment(scratch)
        env.update({key: os.environ[key] for key in PIP_NETWORK if key in os.environ})
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_INDEX_URL"] = self.index_urls[0]
        if self.index_urls[1:]:
            env["PIP_EXTRA_INDEX_URL"] = " ".join(self.index_urls[1:])
        netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
        if netrc.is_file():
            env["NETRC"] = str(netrc)  # the HOME pip sees has none
        outcome = run_bounded(
            command, cwd=scratch, env=env, timeout=INSTALL_TIMEOUT, log=scratch / "pip.log"
        )
        if outcome.returncode is None:
            raise BackendError(
                f"cannot install build requirements {list(requires)}: timed out",
                outcome.tail,
                transient=True,
            )
        if outcome.returncode != 0:
            reason = outcome.last_line or "pip failed"
            raise BackendError(
                f"cannot install build requirements {list(requires)}: {reason}",
                outcome.tail,
                transient=True,
            )
        return target
