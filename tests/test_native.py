"""Build needs guessed from an sdist's files: each detector, and what must not count."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from machci.backends.native import build_needs
from tests.fixtures.index import Index
from tests.helpers import lock

SETUPTOOLS = "setuptools.build_meta"


def needs(
    files: dict[str, str], requires: tuple[str, ...] = (), backend: str = SETUPTOOLS
) -> tuple[str, ...]:
    tree = {name: text.encode() for name, text in files.items()}
    return build_needs(tree.get, tree, requires, backend)


def test_a_plain_c_extension_needs_nothing() -> None:
    setup = (
        "from setuptools import Extension, setup\n"
        'setup(ext_modules=[Extension("fast", ["fast.c"], libraries=["m", "pthread"])])\n'
    )
    assert needs({"setup.py": setup, "fast.c": "int x;\n"}) == ()


@pytest.mark.parametrize(
    "requires, backend, files, expected",
    [
        ((), "maturin", {}, "a Rust toolchain (maturin)"),
        (("maturin>=1,<2",), "maturin", {"Cargo.toml": ""}, "a Rust toolchain (maturin)"),
        (("Setuptools_Rust>=1.5",), SETUPTOOLS, {}, "a Rust toolchain (setuptools-rust)"),
        ((), SETUPTOOLS, {"Cargo.toml": "[package]\n"}, "a Rust toolchain (Cargo.toml)"),
    ],
)
def test_rust(
    requires: tuple[str, ...], backend: str, files: dict[str, str], expected: str
) -> None:
    assert needs(files, requires, backend) == (expected,)


def test_rust_is_not_guessed_from_a_nested_cargo_toml_or_lookalike_names() -> None:
    files = {"tests/data/Cargo.toml": "", "setup.py": "setup()\n"}
    assert needs(files, ("maturin-helper", "rust-just"), "setuptools.build_meta") == ()


@pytest.mark.parametrize(
    "setup, expected",
    [
        ('Extension("g", ["g.c"], libraries=["geos_c", "m"])', ("geos_c",)),
        ('libraries = ["ssl", "crypto"]', ("crypto", "ssl")),
        ('ext_args = {"libraries": ("xml2",), "include_dirs": []}', ("xml2",)),
        ('subprocess.check_output(["pkg-config", "--cflags", "--libs", "libffi"])', ("libffi",)),
        ('os.popen("pkg-config --libs hdf5 2>/dev/null | head -1")', ("hdf5",)),
        ('pkgconfig.parse("libxml-2.0 libxslt")', ("libxml-2.0", "libxslt")),
        ('pkgconfig.configure_extension(ext, "cairo")', ("cairo",)),
        ('pkg_config("--libs", "zlib")', ("zlib",)),
        ('geos_config = os.environ.get("GEOS_CONFIG", "geos-config")', ("geos",)),
    ],
)
def test_system_libraries_in_setup_py(setup: str, expected: tuple[str, ...]) -> None:
    assert needs({"setup.py": setup + "\n"}) == tuple(f"the system library {n}" for n in expected)


@pytest.mark.parametrize(
    "setup",
    [
        '# Extension("g", ["g.c"], libraries=["geos_c"])',  # a comment
        'setup(libraries=[("bundled", {"sources": ["b.c"]})])',  # built by build_clib
        'libraries = ["ws2_32", "advapi32", "bcrypt", "python3.12"]',  # Windows and Python
        "libraries = get_libraries()",  # computed: unknown
        'cmd = f"pkg-config --libs {name}"',
        'pkgconfig.exists("optional-thing")',
        'subprocess.run(["python3-config", "--ldflags"]); sh("pkg-config")',
        'print "a Python 2 setup.py"; libraries = ["geos_c"]',  # unreadable: nothing known
    ],
)
def test_what_setup_py_does_not_need(setup: str) -> None:
    assert needs({"setup.py": setup + "\n"}) == ()


def test_reading_an_old_setup_py_prints_no_warnings() -> None:
    code = (
        "from machci.backends.native import build_needs\n"
        "tree = {'setup.py': b'pattern = \"\\\\d+\"; libraries = [\"m\"]'}\n"
        "print(build_needs(tree.get, tree, (), 'setuptools.build_meta'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )
    assert (result.stdout, result.stderr) == ("()\n", "")


def test_setup_py_is_read_only_at_the_top() -> None:
    assert needs({"vendor/lib/setup.py": 'libraries = ["geos_c"]\n'}) == ()


MESON = """\
project('demo', 'c', 'cython', version: '1.0')
py = import('python').find_installation(pure: false)
dependency('openblas')  # a required library
dependency('threads')
dependency('numpy')
dependency('pybind11', version: '>=2.10')
dependency('lz4', required: false)
dependency('zlib', fallback: ['zlib', 'zlib_dep'])
dependency('zstd', allow_fallback: true)
py_dep = py.dependency()
# dependency('commented-out')
declare_dependency(include_directories: '.')
"""


def test_meson_dependencies() -> None:
    files = {
        "meson.build": MESON,
        "subprojects/zlib/meson.build": "dependency('not-ours')\n",
        "src/meson.build": "dependency('fftw3', version: '>=3')\n",
    }
    assert needs(files) == (
        "the system library fftw3",
        "the system library openblas",
        "the system library zstd",
    )
    files["subprojects/zstd/meson.build"] = "project('zstd', 'c')\n"
    assert "the system library zstd" not in needs(files)
    del files["subprojects/zlib/meson.build"]
    assert "the system library zlib" in needs(files)


@pytest.mark.parametrize(
    "meson, fortran",
    [
        ("project('scipy', 'c', 'cpp', 'cython')\nadd_languages('fortran', native: false)\n", True),
        ("project('f', ['c', 'fortran'])\n", True),
        ("project('f', 'c')\nadd_languages('fortran', required: false)\n", False),
        ("project('f', 'c')\n# add_languages('fortran')\n", False),
        ("project('f', 'c')\nsubproject('fortran')\n", False),
    ],
)
def test_meson_fortran(meson: str, fortran: bool) -> None:
    assert needs({"meson.build": meson}) == (("a Fortran compiler",) if fortran else ())


CMAKE = """\
cmake_minimum_required(VERSION 3.15)
project(${SKBUILD_PROJECT_NAME} LANGUAGES C CXX)
find_package(Python COMPONENTS Interpreter Development.Module REQUIRED)
find_package(pybind11 CONFIG REQUIRED)
FIND_PACKAGE(ZLIB)
find_package(GEOS 3.10 REQUIRED)
find_package(OpenMP)
find_package(TBB QUIET)
find_package(Eigen3 3.3 QUIET REQUIRED NO_MODULE)
# find_package(Commented REQUIRED)
"""


def test_cmake_find_package() -> None:
    files = {"CMakeLists.txt": CMAKE, "third_party/x/CMakeLists.txt": "find_package(Vendored)\n"}
    assert needs(files) == (
        "the system library Eigen3",
        "the system library GEOS",
        "the system library ZLIB",
    )


@pytest.mark.parametrize(
    "cmake, fortran",
    [
        ("project(demo LANGUAGES C Fortran)\n", True),
        ("project(demo C)\nenable_language(Fortran)\n", True),
        ("project(demo C)\nenable_language(Fortran OPTIONAL)\n", False),
        ("project(demo C)  # Fortran some day\n", False),
    ],
)
def test_cmake_fortran(cmake: str, fortran: bool) -> None:
    assert needs({"CMakeLists.txt": cmake}) == (("a Fortran compiler",) if fortran else ())


def test_needs_are_sorted_and_unique() -> None:
    files = {
        "Cargo.toml": "",
        "setup.py": 'libraries = ["zz"]\nother = {"libraries": ["zz", "aa"]}\n',
        "meson.build": "project('x', 'fortran')\n",
    }
    assert needs(files) == (
        "a Fortran compiler",
        "a Rust toolchain (Cargo.toml)",
        "the system library aa",
        "the system library zz",
    )


def test_hostile_build_files_take_linear_time() -> None:
    # Calls that never close: anything that scans to the end from each one takes minutes.
    files = {
        "meson.build": "dependency('" * 10_000 + "add_languages(" * 10_000 + "project(" * 10_000,
        "CMakeLists.txt": "find_package(" * 10_000 + "project(" * 10_000,
        "setup.py": "x = " + "[" * 50 + "]" * 50 + "\n" + '"pkg-config " ' * 1000 + "\n",
    }
    started = time.monotonic()
    needs(files)
    assert time.monotonic() - started < 3


def test_the_lock_carries_build_needs_of_sdists_only(index: Index, tmp_path: Path) -> None:
    setup = b'from setuptools import Extension\nExtension("g", ["g.c"], libraries=["geos_c"])\n'
    index.publish("rusty", "1.0", kind="sdist", extra_files=(("Cargo.toml", b"[package]\n"),))
    index.publish("shapely", "2.1.0", kind="sdist", extra_files=(("setup.py", setup),))
    index.publish("wheeled", "1.0", extra_files=(("Cargo.toml", b"[package]\n"),))
    packages = lock(index, tmp_path, "rusty\nshapely\nwheeled\n").packages()
    assert packages["rusty"]["build_needs"] == ["a Rust toolchain (Cargo.toml)"]
    assert packages["shapely"]["build_needs"] == ["the system library geos_c"]
    assert packages["wheeled"]["build_needs"] == []
