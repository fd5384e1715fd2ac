"""Reading inputs safely, and writing files so that readers only ever see the old or the new
content."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import stat
import tempfile
from pathlib import Path

from machci.errors import InputError, Location, OutputError


class NotRegularFile(OSError):
    """An input that is a FIFO, a device, a socket or a directory."""


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file. Anything else is refused before a byte is read: a FIFO
    would block forever and a device such as /dev/zero would never end.

    The file is opened without blocking and checked through its descriptor, so it cannot be
    swapped between the check and the read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"it is {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def read_text(path: Path) -> str:
    """A UTF-8 input file. FileNotFoundError is left to the caller (which knows who named the
    file); every other problem is an InputError naming the file, and the line for bad bytes."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", Location.of(path)) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)",
            Location.of(path, line),
        ) from exc
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InputError("contains a NUL character", Location.of(path, line))
    return text


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: bytes, *, cache: bool = False) -> None:
    """Write via a temporary file in the same directory, then rename over `path`.

    An interrupted write (crash, kill, full disk) leaves the previous file untouched. A user
    file is synced to disk and keeps its permissions (or gets the umask's); a cache entry skips
    both, since a lost entry is fetched again and a torn one is detected by its hash.
    """
    try:
        _replace(path, data, cache)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


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
