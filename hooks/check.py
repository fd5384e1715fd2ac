"""`machci-check` hook: offline check that default.nix matches its inputs (for pre-commit.ci)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from machci.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["check", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
