"""Warnings for the user: things machci can do but that will need attention later.

They go to standard error as one line each, `machci: warning: …`, and never change an exit code:
a warning names something the generated file cannot fix by itself (a toolchain an sdist needs,
a system nixpkgs no longer supports), so the user sees it on every run until they act on it.
"""

from __future__ import annotations

import sys

from machci.redaction import redact


def warn(message: str) -> None:
    sys.stderr.write(f"machci: warning: {redact(message)}\n")
