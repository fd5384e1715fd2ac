"""Size caps on what machci reads, so a broken or hostile index cannot make it hold gigabytes.

Responses are read in chunks with a running count that stops at the cap, and a declared
Content-Length above it is refused before any of the body is read; zip members are checked by
their declared size, which also bounds what zipfile decompresses. The defaults are far above
any real file; environment variables raise or lower them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from machci.errors import InputError, SourceError

MIB = 1 << 20


@dataclass(frozen=True)
class Limit:
    what: str  # "index page", for messages
    variable: str  # the environment variable that sets it
    size: int  # bytes

    def refuse(self, where: str, size: int | None = None) -> SourceError:
        declared = f" ({size} bytes)" if size is not None else ""
        return SourceError(
            f"{where}: {self.what} larger than the limit of {_human(self.size)}{declared};"
            f" set {self.variable} to raise it"
        )


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _limit(what: str, variable: str, default: int) -> Limit:
    text = os.environ.get(variable)
    if not text:  # unset, or set to nothing as templated CI settings often are
        return Limit(what, variable, default)
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise InputError(f"{variable}={text!r}: expected a positive number of bytes")
    return Limit(what, variable, int(text))


@dataclass(frozen=True)
class Limits:
    page: Limit
    metadata: Limit  # .metadata files and metadata members of wheels (METADATA, RECORD, …)
    distribution: Limit
    archive: Limit  # a pinned tarball (pypi-deps-db and its URL index), as downloaded
    unpacked: Limit  # everything such a tarball unpacks to

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            _limit("index page", "MACHCI_MAX_PAGE_BYTES", 64 * MIB),
            _limit("metadata file", "MACHCI_MAX_METADATA_BYTES", 16 * MIB),
            _limit("distribution file", "MACHCI_MAX_DISTRIBUTION_BYTES", 2048 * MIB),
            _limit("data tarball", "MACHCI_MAX_ARCHIVE_BYTES", 4096 * MIB),
            _limit("unpacked data tarball", "MACHCI_MAX_UNPACKED_BYTES", 32768 * MIB),
        )
