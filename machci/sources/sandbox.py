"""Running code machci does not trust, an sdist's build backend, with as little reach as it can.

A backend's hooks are whatever the index serves. They get an allow-listed environment (PATH, the
locale, a temporary HOME and TMPDIR, SOURCE_DATE_EPOCH; nothing else, so no token or credential
of the caller's shell can reach them), a wall-clock bound, and on Linux new user, network and PID
namespaces through util-linux's `unshare`: no network but a loopback that is down, and every
process they start dies with them. Where `unshare` is missing or may not create namespaces
(containers without user namespaces, macOS), hooks run without them, and processes they leave
behind are not stopped; the run says so once. Either way they run as the user, and can read and
write what the user can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from machci.notices import warn

# Taken from machci's own environment when set; everything else is left out.
PASSED = ("PATH", "LANG", "LC_ALL")
# nixpkgs' value (1980-01-01, the earliest instant a zip file holds) unless the caller sets one.
SOURCE_DATE_EPOCH = "315532800"
NAMESPACES = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
PROBE_TIMEOUT = 10.0
LOG_TAIL = 4096  # bytes of a log read back for an error message
TAIL_LINES = 10  # lines of a log kept for an error message


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the time limit
    last_line: str  # of its merged standard output and error ("" if none)
    tail: tuple[str, ...] = ()  # its last non-empty lines (at most TAIL_LINES), last_line last


def environment(scratch: Path) -> dict[str, str]:
    """The allow-listed environment, with HOME and TMPDIR made inside `scratch`."""
    home, tmp = scratch / "home", scratch / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = {key: os.environ[key] for key in PASSED if key in os.environ}
    env["HOME"], env["TMPDIR"] = str(home), str(tmp)
    env["SOURCE_DATE_EPOCH"] = os.environ.get("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    return env


def run_bounded(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, log: Path
) -> Outcome:
    """Run `command` with its output in `log`, killed when it runs out of time.

    It stays in machci's process group, so an interrupt from the terminal stops it with machci.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    tail = _tail(log)
    return Outcome(returncode, tail[-1].strip() if tail else "", tail)


def _tail(log: Path) -> tuple[str, ...]:
    """The log's last non-empty lines (indented as written), from its last LOG_TAIL bytes."""
    with log.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - LOG_TAIL))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    return tuple(line.rstrip() for line in lines if line.strip())[-TAIL_LINES:]


class Sandbox:
    """Runs one run's backend hooks; probes the namespaces once and warns once without them."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._prefix: tuple[str, ...] | None = None

    def prefix(self) -> tuple[str, ...]:
        """The `unshare …` words put before each command; empty without namespaces."""
        with self._lock:
            if self._prefix is None:
                self._prefix, missing = _namespaces()
                if missing:
                    warn(
                        f"sdist build backends run without a network namespace: {missing};"
                        " they can reach the network (see README, What runs on your machine)"
                    )
            return self._prefix

    def run(self, command: Sequence[str], *, cwd: Path, scratch: Path) -> Outcome:
        """Run untrusted `command` in `cwd`; its HOME, TMPDIR and output log go in `scratch`."""
        env = environment(scratch)
        return run_bounded(
            [*self.prefix(), *command],
            cwd=cwd,
            env=env,
            timeout=self.timeout,
            log=scratch / "output.log",
        )


def _namespaces() -> tuple[tuple[str, ...], str]:
    """(`unshare` and its options, "") when it creates the namespaces here, else ((), why not)."""
    if sys.platform != "linux":
        return (), "they exist only on Linux"
    unshare = shutil.which("unshare")
    if unshare is None:
        return (), "util-linux's unshare is not on PATH"
    prefix = (unshare, *NAMESPACES, "--")
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", ""],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), f"unshare failed ({exc})"
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1:] or [f"exit {probe.returncode}"]
        return (), f"unshare cannot create user namespaces here ({reason[0]})"
    return prefix, ""
