"""Plain values that config, CLI, targets and the checker share.

Kept free of third-party imports so `machci check` starts fast.
"""

from __future__ import annotations

import re

from machci.errors import InputError

# PEP 751's lock file names, pylock.toml and pylock.NAME.toml, as packaging.pylock's
# is_valid_pylock_path reads them: importing that module would cost every run its import time.
PYLOCK_NAME = re.compile(r"pylock(?:\.[^.]+)?\.toml")

CONFIG_NAME = "machci.yaml"
DEFAULT_OUTPUT = "default.nix"
FLAKE_NAME = "flake.nix"  # written beside the output with `flake:` in machci.yaml
NIXPKGS_INDEX_NAME = "nixpkgs-python.json"  # what `machci nixpkgs-index` writes by default
DEFAULT_TIMEOUT = 30.0  # seconds, for every network operation
MAX_TIMEOUT = 3600.0  # a longer wait is a mistake, and huge values overflow the socket layer

SYSTEMS: tuple[str, ...] = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")

# The CPython interpreters nixpkgs ships (pkgs.python311 … pkgs.python314), with their patch
# releases, so `python_full_version` markers see what the environment will really run.
NIXPKGS_PATCH_RELEASES = {"3.11": "3.11.15", "3.12": "3.12.13", "3.13": "3.13.14", "3.14": "3.14.6"}

# glibc of current nixpkgs (2.42) and its default macOS deployment target (darwinMinVersion 14.0).
DEFAULT_GLIBC = (2, 42)
DEFAULT_MACOS = (14, 0)
# What the settings may say: manylinux_2_17 is the oldest level aarch64 wheels have and nixpkgs
# targets no macOS before 11.0; the upper bounds leave room for new releases while keeping the
# target's list of platform tags short.
GLIBC_RANGE = ((2, 17), (2, 99))
MACOS_RANGE = ((11, 0), (40, 99))


def parse_version_pair(text: str, what: str) -> tuple[int, int]:
    """Parse "X.Y" (a Python, glibc or macOS version) into a tuple, with a clear error."""
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise InputError(f"invalid {what} {text!r}: expected X.Y, e.g. '3.12'")
    return int(parts[0]), int(parts[1])


def parse_python(text: str) -> str:
    """A target CPython X.Y: only the ones nixpkgs ships have an interpreter to build with."""
    parse_version_pair(text, "Python version")
    if text not in NIXPKGS_PATCH_RELEASES:
        raise InputError(
            f"unsupported Python version {text!r}: machci targets the CPython versions nixpkgs"
            f" ships, {', '.join(NIXPKGS_PATCH_RELEASES)}"
        )
    return text


def parse_glibc(text: str) -> tuple[int, int]:
    return _bounded(text, "glibc", GLIBC_RANGE)


def parse_macos(text: str) -> tuple[int, int]:
    return _bounded(text, "macos", MACOS_RANGE)


def _bounded(
    text: str, what: str, bounds: tuple[tuple[int, int], tuple[int, int]]
) -> tuple[int, int]:
    pair = parse_version_pair(text, what)
    low, high = bounds
    if not (low <= pair <= high and pair[1] <= high[1]):  # 14.100 is no macOS either
        raise InputError(
            f"{what} {text} is out of range: expected {low[0]}.{low[1]} to {high[0]}.{high[1]}"
        )
    return pair
