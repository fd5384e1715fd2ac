"""Running code machci does not trust, an sdist's build backend, with as little reach as it can.

A backend's hooks are whatever the index serves. They get an allow-listed environment (PATH, the
locale, a temporary HOME and TMPDIR, SOURCE_DATE_EPOCH; nothing else, so no token or credential
of the caller's shell can reach them), a wall-clock bound, and on Linux new user, network, PID
and mount namespaces through util-linux's `unshare`, with confine.py as their first process: no
network but a loopback that is down; a /proc of their own, so no other process is in sight (nor
machci's command line); a root of their own with the system and Python read-only and nothing
writable but their work directory; and every process they start dies with them, and with
machci, however it ends. Where `unshare` is missing or may not create namespaces (containers
without user namespaces, macOS), hooks run without them, can read and write what the user can,
and processes they leave behind are not stopped; the run says so once.

Their answers come back through a file machci makes for them and reads only while it is still
that regular file, up to a limit (AnswerFile)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from machci.errors import SourceError
from machci.limits import Limit
from machci.notices import warn

# Taken from machci's own environment when set; everything else is left out.
PASSED = ("PATH", "LANG", "LC_ALL")
# nixpkgs' value (1980-01-01, the earliest instant a zip file holds) unless the caller sets one.
SOURCE_DATE_EPOCH = "315532800"
NAMESPACES = (
    "--user",
    "--map-root-user",
    "--net",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
)
CONFINE = Path(__file__).with_name("confine.py")  # run by path: it imports only the stdlib
CONFINE_FAILED = "cannot confine the build backend"
PROBE_TIMEOUT = 10.0
LOG_TAIL = 4096  # bytes of a log read back for an error message
TAIL_LINES = 10  # lines of a log kept for an error message


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the time limit
    last_line: str  # of its merged standard output and error ("" if none)
    tail: tuple[str, ...] = ()  # its last non-empty lines (at most TAIL_LINES), last_line last


def clear(path: Path) -> None:
    """Remove whatever is at `path` (a file, a link, a FIFO, a directory tree) without following
    links: a backend may have left anything in its work directory for machci's next step."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _directory(path: Path) -> None:
    """`path` as a directory of its own, whatever a backend made of it before."""
    if path.is_symlink() or not path.is_dir():
        clear(path)
        path.mkdir()


def _fresh(path: Path, flags: int) -> int:
    """A new empty regular file at `path`, made here (never through a link), opened."""
    clear(path)
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def environment(scratch: Path) -> dict[str, str]:
    """The allow-listed environment, with HOME and TMPDIR made inside `scratch`."""
    home, tmp = scratch / "home", scratch / "tmp"
    _directory(home)
    _directory(tmp)
    env = {key: os.environ[key] for key in PASSED if key in os.environ}
    env["HOME"], env["TMPDIR"] = str(home), str(tmp)
    env["SOURCE_DATE_EPOCH"] = os.environ.get("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    return env


def run_bounded(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log: Path,
    pass_fds: Sequence[int] = (),
) -> Outcome:
    """Run `command` with its output in `log`, killed when it runs out of time.

    It stays in machci's process group, so an interrupt from the terminal stops it with machci.
    The log is made anew, and its end read back through the same descriptor: a backend may have
    replaced the file by a link or a FIFO, before or while it ran.
    """
    with os.fdopen(_fresh(log, os.O_RDWR), "w+b") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            pass_fds=pass_fds,
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        tail = _tail(output)
        return Outcome(returncode, tail[-1].strip() if tail else "", tail)


def _tail(log: BinaryIO) -> tuple[str, ...]:
    """The log's last non-empty lines (indented as written), from its last LOG_TAIL bytes, read
    through machci's own descriptor."""
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - LOG_TAIL))
    lines = log.read(LOG_TAIL).decode("utf-8", errors="replace").splitlines()
    return tuple(line.rstrip() for line in lines if line.strip())[-TAIL_LINES:]


class Sandbox:
    """Runs one run's backend hooks; probes the namespaces once and warns once without them."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._prefix: tuple[str, ...] | None = None

    def prefix(self) -> tuple[str, ...]:
        """The `unshare … confine.py` words put before each command; empty without namespaces."""
        with self._lock:
            if self._prefix is None:
                self._prefix, missing = _namespaces()
                if missing:
                    warn(
                        f"sdist build backends run without a network namespace: {missing};"
                        " they can reach the network (see README, What runs on your machine)"
                    )
            return self._prefix

    def run(
        self, command: Sequence[str], *, cwd: Path, scratch: Path, readable: Sequence[Path] = ()
    ) -> Outcome:
        """Run untrusted `command` in `cwd`; its HOME, TMPDIR and output log go in `scratch`,
        the one directory it may write. `readable` are further directories it needs to read
        (its build requirements)."""
        env = environment(scratch)
        log = scratch / "output.log"
        prefix = self.prefix()
        if not prefix:
            return run_bounded(command, cwd=cwd, env=env, timeout=self.timeout, log=log)
        # The lifeline: confine.py holds the read end, this process alone the write end, so the
        # kernel closes it when machci dies however it dies, and the sandbox ends then.
        reader, writer = os.pipe()
        try:
            spec = _spec(scratch, cwd, readable, lifeline=reader)
            return run_bounded(
                [*prefix, spec, *command],
                cwd=cwd,
                env=env,
                timeout=self.timeout,
                log=log,
                pass_fds=(reader,),
            )
        finally:
            os.close(reader)
            os.close(writer)


def _spec(scratch: Path, cwd: Path, readable: Sequence[Path], lifeline: int | None) -> str:
    """confine.py's argument: the new root goes on `scratch`/.root, `scratch` is writable."""
    root = scratch / ".root"
    _directory(root)
    return json.dumps(
        {
            "root": str(root),
            "readable": [str(path) for path in readable],
            "writable": [str(scratch)],
            "cwd": str(cwd),
            "lifeline": lifeline,
        }
    )


def _namespaces() -> tuple[tuple[str, ...], str]:
    """(`unshare`, its options and confine.py, "") when they confine a command here, else
    ((), why not)."""
    if sys.platform != "linux":
        return (), "they exist only on Linux"
    unshare = shutil.which("unshare")
    if unshare is None:
        return (), "util-linux's unshare is not on PATH"
    prefix = (unshare, *NAMESPACES, "--", sys.executable, "-I", str(CONFINE))
    with tempfile.TemporaryDirectory(prefix="machci-probe-") as scratch:
        spec = _spec(Path(scratch), Path(scratch), (), lifeline=None)
        try:
            probe = subprocess.run(
                [*prefix, spec, sys.executable, "-I", "-c", ""],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return (), f"unshare failed ({exc})"
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        if reason.startswith(CONFINE_FAILED):
            return (), reason
        return (), f"unshare cannot create user namespaces here ({reason})"
    return prefix, ""


class AnswerFile:
    """A file machci makes for a backend to write its answer into, read back only while it is
    still that regular file, and only up to a limit.

    The backend can write anything where its answer goes: replace the file by a FIFO (reading
    it would wait forever), a link to /dev/zero (endless), or make it gigabytes long. So the
    file is made here first, opened without following links or waiting for a writer, and read
    only if it is the same inode, a regular file, and small enough.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        made = _fresh(path, os.O_WRONLY)  # an earlier hook may have put anything there
        try:
            info = os.fstat(made)
        finally:
            os.close(made)
        self._identity = (info.st_dev, info.st_ino)

    def read(self, limit: Limit, where: str) -> bytes:
        """Its bytes; SourceError (naming `where`) when it was replaced or is over `limit`."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            handle = os.open(self.path, flags)
        except OSError as exc:  # gone, or a symbolic link (ELOOP)
            raise self._replaced(where) from exc
        try:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != self._identity:
                raise self._replaced(where)
            if info.st_size > limit.size:
                raise limit.refuse(where, info.st_size)
            chunks: list[bytes] = []
            size = 0
            while size <= limit.size and (chunk := os.read(handle, limit.size + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(handle)
        if size > limit.size:  # grown since it was measured
            raise limit.refuse(where)
        return b"".join(chunks)

    def _replaced(self, where: str) -> SourceError:
        return SourceError(
            f"{where} is not in the file machci made for it ({self.path.name} was replaced;"
            " answers are read only from that regular file)"
        )
