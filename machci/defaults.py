"""Plain values that config, CLI, targets and the checker share.

Kept free of third-party imports so `machci check` starts fast.
"""

from __future__ import annotations

from machci.errors import InputError

CONFIG_NAME = "machci.yaml"
DEFAULT_OUTPUT = "default.nix"
NIXPKGS_INDEX_NAME = "nixpkgs-python.json"  # what `machci nixpkgs-index` writes by default
DEFAULT_TIMEOUT = 30.0  # seconds, for every network operation

SYSTEMS: tuple[str, ...] = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")

# glibc of current nixpkgs (2.42) and its default macOS deployment target (darwinMinVersion 14.0).
DEFAULT_GLIBC = (2, 42)
DEFAULT_MACOS = (14, 0)


def parse_version_pair(text: str, what: str) -> tuple[int, int]:
    """Parse "X.Y" (a Python, glibc or macOS version) into a tuple, with a clear error."""
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise InputError(f"invalid {what} {text!r}: expected X.Y, e.g. '3.12'")
    return int(parts[0]), int(parts[1])
