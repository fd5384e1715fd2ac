"""The lock's dependency graph: closures and the build cycles nixpkgs cannot evaluate."""

from __future__ import annotations

import pytest

from machci.errors import ResolutionError
from machci.lock.graph import check_build_cycles, runtime_closure
from machci.lock.model import LockedFile, LockedPackage, SystemLock


def _package(
    name: str, deps: tuple[str, ...] = (), build: tuple[str, ...] = (), provider: str = "wheel"
) -> LockedPackage:
    suffix = ".tar.gz" if provider == "sdist" else "-py3-none-any.whl"
    filename = f"{name}-1.0{suffix}"
    file = LockedFile(filename, f"https://x/{filename}", "0" * 64)
    return LockedPackage(name, "1.0", provider, file, deps, build)


def test_closures_follow_cycles() -> None:
    packages = {
        "dask": _package("dask", ("distributed",)),
        "distributed": _package("distributed", ("dask", "tornado")),
        "tornado": _package("tornado"),
    }
    assert runtime_closure(packages, ["dask"]) == {"dask", "distributed", "tornado"}
    assert runtime_closure(packages, ["tornado"]) == {"tornado"}


def test_an_sdist_whose_build_needs_itself_is_refused_with_the_chain() -> None:
    system = SystemLock(
        "x86_64-linux",
        "3.12",
        (
            _package("hatchling", ("pluggy",)),
            _package("pluggy", build=("hatchling",), provider="sdist"),
        ),
    )
    with pytest.raises(ResolutionError) as caught:
        check_build_cycles(system)
    assert caught.value.message == (
        "cannot build for x86_64-linux:\n"
        "  pluggy 1.0 builds from its sdist, but its build requirements need pluggy itself"
        " (hatchling -> pluggy)\n"
        "  allow a wheel for one of them (providers in machci.yaml)"
    )


def test_a_runtime_cycle_and_an_acyclic_build_are_fine() -> None:
    system = SystemLock(
        "x86_64-linux",
        "3.12",
        (
            _package("dask", ("distributed",)),
            _package("distributed", ("dask",), build=("flit-core",), provider="sdist"),
            _package("flit-core"),
        ),
    )
    check_build_cycles(system)
