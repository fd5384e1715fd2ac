"""Writing files so that readers only ever see the old or the new content."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import stat
import tempfile
from pathlib import Path

from machci.errors import OutputError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes, *, cache: bool = False) -> None:
    """Write via a temporary file in the same directory, then rename over `path`.

    An interrupted write (crash, kill, full disk) leaves the previous file untouched. A user
    file is synced to disk and keeps its permissions (or gets the umask's); a cache entry skips
    both, since a lost entry is fetched again and a torn one is detected by its hash. A user
    path that is a symbolic link is written through (the link stays, its file changes, as an
    editor saves), and one that is not a regular file (`-o /dev/null`, `-o /dev/stdout`, a
    pipe) is written to in place: renaming over it would replace the device or pipe itself.
    """
    try:
        if cache:
            _replace(path, data, cache)
        elif _special(path):
            with path.open("wb") as handle:
                handle.write(data)
        else:
            _replace(_destination(path), data, cache)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _special(path: Path) -> bool:
    """Whether `path` names something other than a regular file or a directory (whose write
    fails as it should), following symbolic links; or lies in /dev or /proc, whose links
    (/dev/stdout, /proc/self/fd/1) name a stream even when it goes to a regular file."""
    if str(path.absolute()).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = path.stat().st_mode
    except OSError:  # absent, or a dangling link: written as a new file
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _destination(path: Path) -> Path:
    """The file a user path names: itself, or the end of its chain of symbolic links."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _prefix(path: Path) -> str:
    return f".{path.name}."


def _temporary(path: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
    except FileNotFoundError:  # creating directories only when missing saves system calls
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")


def _replace(path: Path, data: bytes, cache: bool) -> None:
    mode = None
    if not cache:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = _default_mode()
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                # Held until the rename: remove_leftovers() takes only unlocked files.
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            if not cache:
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files of `path` that a killed write left behind.

    A writer locks its temporary file until the rename, so a file whose lock can be taken has no
    writer any more; one still being written is left alone.
    """
    path = _destination(path)
    pattern = glob.escape(_prefix(path)) + "*.tmp"
    for leftover in path.parent.glob(pattern):
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                leftover.unlink(missing_ok=True)
        except OSError:  # locked: a write in progress
            continue
        finally:
            os.close(fd)
