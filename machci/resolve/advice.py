"""What to tell the user about a fresh lock: what it cannot build unaided, and likely typos.

The generated file builds an sdist with plain `buildPythonPackage`, which lacks what some sdists
need (see backends/native.py), so the build would fail inside Nix with a compiler's or linker's
error. Saying so when locking names the package, the need and the two ways out: allow a wheel,
or add the missing inputs with an override in machci.yaml.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

from packaging.version import Version

from machci.backends.native import FORTRAN, LIBRARY, RUST
from machci.inputs.spec import Spec
from machci.lock.model import Lock

# Libraries whose link or pkg-config name is not their nixpkgs attribute (lower-cased keys);
# any other name is suggested as itself, lower-cased.
_NIXPKGS = {
    "bz2": "bzip2",
    "crypto": "openssl",
    "eigen3": "eigen",
    "ffi": "libffi",
    "fftw3": "fftw",
    "geos_c": "geos",
    "glib-2.0": "glib",
    "jpeg": "libjpeg",
    "libxml-2.0": "libxml2",
    "lzma": "xz",
    "png": "libpng",
    "pq": "libpq",
    "sqlite3": "sqlite",
    "ssl": "openssl",
    "uuid": "libuuid",
    "xml2": "libxml2",
    "xslt": "libxslt",
    "yaml": "libyaml",
    "z": "zlib",
    "zmq": "zeromq",
}
_NIX_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
_CARGO_DEPS = 'pkgs.rustPlatform.fetchCargoVendor { inherit (old) src; hash = \\"…\\"; }'


def build_needs_warnings(lock: Lock) -> list[str]:
    """One message per package version locked from an sdist with build needs, by package."""
    systems: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for system in lock.systems:
        for package in system.packages:
            if package.provider == "sdist" and package.build_needs:
                key = (package.name, package.version, package.build_needs)
                systems[key].append(system.system)
    ordered = sorted(systems, key=lambda k: (k[0], Version(k[1]), k[2]))
    return [_message(*key, sorted(systems[key])) for key in ordered]


def _message(name: str, version: str, needs: tuple[str, ...], systems: list[str]) -> str:
    return (
        f"{name} {version} builds from its sdist on {', '.join(systems)} and needs"
        f" {_and(needs)}, which nixpkgs' buildPythonPackage does not provide by itself;"
        f' allow a wheel for it (providers: {{{name}: "wheel,sdist"}}) or supply it with an'
        f" override in machci.yaml (overrides: {{{name}: {{{_override(needs)}}}}})"
    )


def _and(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _override(needs: tuple[str, ...]) -> str:
    """The attributes a buildPythonPackage override would need to set, in Nix-like notation."""
    native: list[str] = []
    inputs: list[str] = []
    cargo = False
    for need in needs:
        if need == FORTRAN:
            native.append("pkgs.gfortran")
        elif need.startswith(RUST):
            native.append("pkgs.rustPlatform.cargoSetupHook")
            if need == f"{RUST} (maturin)":
                native.append("pkgs.rustPlatform.maturinBuildHook")
            native += ["pkgs.cargo", "pkgs.rustc"]
            cargo = True
        elif need.startswith(LIBRARY):
            inputs.append(_attribute(need.removeprefix(LIBRARY)))
    parts = []
    if native:
        parts.append(f'nativeBuildInputs: {{add: "[ {" ".join(dict.fromkeys(native))} ]"}}')
    if cargo:
        parts.append(f'cargoDeps: "{_CARGO_DEPS}"')
    if inputs:
        parts.append(f'buildInputs: {{add: "[ {" ".join(dict.fromkeys(inputs))} ]"}}')
    return ", ".join(parts)


def _attribute(library: str) -> str:
    name = _NIXPKGS.get(library.lower(), library.lower())
    return f"pkgs.{name}" if _NIX_IDENTIFIER.fullmatch(name) else f'pkgs."{name}"'


def unused_name_warnings(lock: Lock, spec: Spec) -> list[str]:
    """Overrides and provider choices for packages no system locked are likely typos."""
    locked = sorted({p.name for s in lock.systems for p in s.packages})
    named = [("overrides", name) for name in spec.overridden_packages]
    named += [("providers", name) for name in spec.providers.per_package]
    messages = []
    for section, name in sorted(named):
        if name not in locked:
            close = difflib.get_close_matches(name, locked, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            messages.append(f"{section}: {name} is not in the lock of any system{hint}")
    return messages
