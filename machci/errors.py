"""Errors that reach the user as one readable line, never as a traceback.

Exit codes follow the CLI contract: 2 for usage and input problems (bad config, malformed
requirements, unreachable index), 1 for resolution failures (no version, conflicts) in `lock`
and `why`. `sync` and `bump` exit 2 for every error, resolution failures included: to
pre-commit, `sync`'s 1 means "changed" (see cli.main).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

EXIT_RESOLUTION = 1
EXIT_INPUT = 2


class Location(NamedTuple):
    """Where a problem comes from: a file and optionally a line, or a URL.

    A named tuple, not a dataclass: `machci check` imports this module, and importing
    dataclasses (with inspect) would be a large share of its start-up time."""

    where: str
    line: int | None = None

    @classmethod
    def of(cls, path: Path | str, line: int | None = None) -> Location:
        return cls(str(path), line)

    def __str__(self) -> str:
        return f"{self.where}:{self.line}" if self.line is not None else self.where


class MachciError(Exception):
    """Base error: a message, an optional location and the exit code it maps to."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class InputError(MachciError):
    """The user's files or arguments are wrong (exit 2)."""


class SourceError(MachciError):
    """An index or the cache could not deliver what was asked (exit 2)."""


class OutputError(MachciError):
    """A file could not be written (exit 2); the previous content is untouched."""


class ResolutionError(MachciError):
    """No consistent set of packages exists for a target (exit 1)."""

    exit_code = EXIT_RESOLUTION
