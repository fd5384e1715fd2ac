"""`python -m machci`."""

from machci.cli import entry

raise SystemExit(entry())
