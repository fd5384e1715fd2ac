"""Reading inputs safely: regular files only, with errors that name the file.

Writing lives in machci.atomic: `machci check` reads, and need not import what writing needs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from machci.errors import InputError, Location


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


def relative_input(path: Path, output: Path) -> str:
    """How the header names an input: relative to the output's directory, with '/'."""
    return Path(os.path.relpath(path.resolve(), output.parent.resolve())).as_posix()
