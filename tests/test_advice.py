"""Warnings about packages locked from sdists that nixpkgs' plain builder cannot build."""

from __future__ import annotations

import contextlib
from pathlib import Path

from machci.lock.model import Lock, LockedFile, LockedPackage, SystemLock
from machci.resolve.advice import build_needs_warnings
from tests.fixtures.index import Index
from tests.helpers import lock, run

LINUX = ("x86_64-linux", "aarch64-linux")
SHAPELY_SETUP = (
    b"from setuptools import Extension, setup\n"
    b'setup(ext_modules=[Extension("shapely.lib", ["src/lib.c"], libraries=["geos_c"])])\n'
)
WARNING = "machci: warning: "


def warnings_in(err: str) -> list[str]:
    return [line.removeprefix(WARNING) for line in err.splitlines() if line.startswith(WARNING)]


def test_an_sdist_with_a_system_library_names_it_and_the_override(
    index: Index, tmp_path: Path
) -> None:
    index.publish("shapely", "2.1.0", kind="sdist", extra_files=(("setup.py", SHAPELY_SETUP),))
    result = lock(index, tmp_path, "shapely\n", systems=LINUX)
    assert result.code == 0
    assert warnings_in(result.err) == [
        "shapely 2.1.0 builds from its sdist on aarch64-linux, x86_64-linux and needs the system"
        " library geos_c, which nixpkgs' buildPythonPackage does not provide by itself; allow a"
        ' wheel for it (providers: {shapely: "wheel,sdist"}) or supply it with an override in'
        ' machci.yaml (overrides: {shapely: {buildInputs: {add: "[ pkgs.geos ]"}}})'
    ]


def test_rust_and_fortran_overrides_sorted_by_package(index: Index, tmp_path: Path) -> None:
    index.publish("maturin", "1.8")
    index.publish("zz-rusty", "1.0", kind="sdist", dynamic_build_requires=("maturin>=1",))
    meson = b"project('solver', 'c')\nadd_languages('fortran')\ndependency('openblas')\n"
    index.publish("aa-solver", "1.0", kind="sdist", extra_files=(("meson.build", meson),))
    warnings = warnings_in(lock(index, tmp_path, "zz-rusty\naa-solver\n").err)
    assert len(warnings) == 2
    solver, rusty = warnings
    assert solver.startswith("aa-solver 1.0 builds from its sdist on x86_64-linux and needs")
    assert "needs a Fortran compiler and the system library openblas, which" in solver
    assert (
        '(overrides: {aa-solver: {nativeBuildInputs: {add: "[ pkgs.gfortran ]"},'
        ' buildInputs: {add: "[ pkgs.openblas ]"}}})'
    ) in solver
    assert rusty.startswith("zz-rusty 1.0 builds from its sdist on x86_64-linux")
    assert "needs a Rust toolchain (maturin), which" in rusty
    assert (
        '(overrides: {zz-rusty: {nativeBuildInputs: {add: "[ pkgs.rustPlatform.cargoSetupHook'
        ' pkgs.rustPlatform.maturinBuildHook pkgs.cargo pkgs.rustc ]"},'
        ' cargoDeps: "pkgs.rustPlatform.fetchCargoVendor { inherit (old) src; hash = \\"…\\"; }"}})'
    ) in rusty


def test_wheels_and_sdists_without_needs_warn_nothing(index: Index, tmp_path: Path) -> None:
    index.publish("shapely", "2.1.0", kind="sdist", extra_files=(("setup.py", SHAPELY_SETUP),))
    index.publish("shapely", "2.1.0", extra_files=(("setup.py", SHAPELY_SETUP),))
    index.publish("plain", "1.0", kind="sdist")
    result = lock(index, tmp_path, "shapely\nplain\n")
    assert result.packages()["shapely"]["provider"] == "wheel"
    assert result.packages()["plain"]["provider"] == "sdist"
    assert result.err == ""


def _package(name: str, version: str, provider: str, needs: tuple[str, ...]) -> LockedPackage:
    filename = f"{name}-{version}.tar.gz" if provider == "sdist" else f"{name}-{version}.whl"
    file = LockedFile(filename, f"https://files.example/{filename}", "0" * 64)
    return LockedPackage(name, version, provider, file, build_needs=needs)


def test_one_warning_per_package_version_with_its_systems() -> None:
    rust = ("a Rust toolchain (Cargo.toml)",)
    libs = ("the system library GEOS", "the system library libxml-2.0")
    systems = {
        "aarch64-darwin": [_package("oxide", "10.0", "sdist", rust)],
        "aarch64-linux": [
            _package("oxide", "9.0", "sdist", rust),
            _package("geo", "1", "wheel", libs),
        ],
        "x86_64-linux": [
            _package("oxide", "9.0", "sdist", rust),
            _package("geo", "1", "sdist", libs),
        ],
    }
    result = Lock(
        tuple(SystemLock(s, "3.12", tuple(p)) for s, p in sorted(systems.items())), "i", None
    )
    warnings = build_needs_warnings(result)
    assert [w.split(" and needs")[0] for w in warnings] == [
        "geo 1 builds from its sdist on x86_64-linux",
        "oxide 9.0 builds from its sdist on aarch64-linux, x86_64-linux",
        "oxide 10.0 builds from its sdist on aarch64-darwin",
    ]
    assert '{geo: {buildInputs: {add: "[ pkgs.geos pkgs.libxml2 ]"}}}' in warnings[0]
    assert (
        'nativeBuildInputs: {add: "[ pkgs.rustPlatform.cargoSetupHook pkgs.cargo pkgs.rustc ]"}'
        in (warnings[1])
    )
    assert "maturinBuildHook" not in warnings[1]


def test_overrides_and_providers_for_unlocked_packages_are_likely_typos(
    index: Index, tmp_path: Path
) -> None:
    index.publish("requests", "2.0")
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\ndata: {{index: {index.url}}}\n"
        "providers: {_default: wheel, reqeusts: sdist}\n"
        "overrides:\n  requets:\n    doCheck: 'false'\n  zzz:\n    doCheck: 'false'\n"
    )
    with contextlib.chdir(tmp_path):
        result = run("lock", "--cache-dir", ".cache")
    assert result.code == 0, result.err
    assert warnings_in(result.err) == [
        "overrides: requets is not in the lock of any system; did you mean 'requests'?",
        "overrides: zzz is not in the lock of any system",
        "providers: reqeusts is not in the lock of any system; did you mean 'requests'?",
    ]
