"""What a target system looks like to the resolver: its marker environment and wheel tags.

Both are computed for the *target* (a Nix system plus a CPython X.Y), never read from the machine
running machci, so resolving for aarch64-darwin on x86_64-linux picks aarch64-darwin's wheels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

from machci.config.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    NIXPKGS_PATCH_RELEASES,
    SYSTEMS,
    parse_python,
    parse_version_pair,
)
from machci.errors import InputError

# The oldest glibc each architecture's manylinux wheels can target (PEP 600 / PEP 599).
_OLDEST_MANYLINUX = {"x86_64": 5, "aarch64": 17}
# PEP 600 spells these glibc levels with their legacy aliases too; packaging ranks the alias
# right after the PEP 600 name, and so do we.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def _linux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    # packaging.tags only knows the glibc of the running machine, so the target's list is built
    # here with the same ordering rules (newest glibc first, legacy alias after its PEP 600 name).
    platforms: list[str] = []
    for minor in range(glibc[1], _OLDEST_MANYLINUX[arch] - 1, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        if alias := _LEGACY_MANYLINUX.get(minor):
            platforms.append(f"{alias}_{arch}")
    return platforms


@dataclass(frozen=True)
class Target:
    """One (Nix system, CPython X.Y) pair that gets its own resolution."""

    system: str
    python: str
    glibc: tuple[int, int] = DEFAULT_GLIBC
    macos: tuple[int, int] = DEFAULT_MACOS

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise InputError(
                f"unknown system {self.system!r}: expected one of {', '.join(SYSTEMS)}"
            )
        parse_python(self.python)

    @property
    def arch(self) -> str:
        return self.system.split("-", 1)[0]

    @property
    def is_darwin(self) -> bool:
        return self.system.endswith("-darwin")

    @cached_property
    def python_version(self) -> tuple[int, int]:
        return parse_version_pair(self.python, "Python version")

    @cached_property
    def python_full_version(self) -> str:
        return NIXPKGS_PATCH_RELEASES[self.python]

    @cached_property
    def environment(self) -> dict[str, str]:
        """PEP 508 marker environment of the target interpreter."""
        machine = "arm64" if self.is_darwin and self.arch == "aarch64" else self.arch
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": "posix",
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Darwin" if self.is_darwin else "Linux",
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": self.python,
            "sys_platform": "darwin" if self.is_darwin else "linux",
        }

    @cached_property
    def platforms(self) -> list[str]:
        if self.is_darwin:
            arch = "arm64" if self.arch == "aarch64" else "x86_64"
            return list(mac_platforms(self.macos, arch))
        return _linux_platforms(self.arch, self.glibc)

    @cached_property
    def tags(self) -> tuple[Tag, ...]:
        """Supported wheel tags, most preferred first (cpython, abi3 of older minors, then py3)."""
        interpreter = f"cp{self.python_version[0]}{self.python_version[1]}"
        return (
            *cpython_tags(self.python_version, [interpreter], self.platforms),
            *compatible_tags(self.python_version, interpreter, self.platforms),
        )

    @cached_property
    def tag_rank(self) -> dict[Tag, int]:
        return {tag: rank for rank, tag in enumerate(self.tags)}

    def wheel_rank(self, wheel_tags: frozenset[Tag]) -> int | None:
        """Rank of the best tag a wheel carries for this target (lower is better), or None."""
        ranks = [self.tag_rank[t] for t in wheel_tags if t in self.tag_rank]
        return min(ranks) if ranks else None
