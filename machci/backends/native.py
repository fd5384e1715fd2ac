"""What an sdist needs to build beyond what nixpkgs' buildPythonPackage brings: a heuristic.

buildPythonPackage has a C and C++ compiler and the Python build requirements; anything else an
sdist needs (a Rust toolchain, a Fortran compiler, a system library) must come from an override,
or the build fails late, inside Nix. This guesses those needs from a few files of the sdist,
without running anything:

- Rust: the backend is maturin, a build requirement is maturin or setuptools-rust (markers
  aside), or there is a top-level Cargo.toml;
- system libraries: in the top-level setup.py, literal `libraries=[...]` lists, `pkg-config` and
  `pkgconfig` calls with literal module names, and `<name>-config` scripts; in meson.build files
  (outside subprojects/), `dependency('x')` calls that are required and have no vendored
  fallback; in the top-level CMakeLists.txt, `find_package(X)` calls, unless QUIET and not
  REQUIRED;
- Fortran: meson's `add_languages('fortran')` or 'fortran' among `project()`'s languages, CMake's
  `enable_language(Fortran)` or Fortran among `project()`'s languages.

It reads declarations, not control flow: a library named only on another platform's branch is
still reported, and one found any other way is missed. Libraries every toolchain has (libm,
pthread, …), Windows system libraries and Python-side build dependencies (numpy, pybind11, …)
are not needs. Patterns are linear-time: the input is whatever an sdist contains.
"""

from __future__ import annotations

import ast
import itertools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

RUST = "a Rust toolchain"
FORTRAN = "a Fortran compiler"
LIBRARY = "the system library "

_RUST_TOOLS = ("maturin", "setuptools-rust")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
# Part of every toolchain (glibc, libgcc, libstdc++).
_TOOLCHAIN_LIBRARIES = frozenset(
    {"atomic", "c", "c++", "dl", "gcc", "gcc_s", "m", "nsl", "pthread", "resolv", "rt"}
    | {"stdc++", "util"}
)
_WINDOWS_LIBRARIES = re.compile(
    r"[a-z0-9_]*32|bcrypt|dbghelp|iphlpapi|msvcrt|ntdll|psapi|rpcrt4|shlwapi|synchronization"
    r"|ucrt|userenv|winmm",
    re.IGNORECASE,
)
_CONFIG_SCRIPT = re.compile(r"([A-Za-z][A-Za-z0-9_.+]*)-config")
_NOT_LIBRARY_SCRIPTS = frozenset({"pkg", "python", "python3", "numpy", "pybind11"})
_PKGCONFIG_FIRST_ARG = frozenset({"cflags", "libs", "modversion", "parse", "variables"})
# meson dependencies that meson, the compiler or a Python build requirement provides.
_MESON_PROVIDED = frozenset(
    {"dl", "iconv", "intl", "nanobind", "numpy", "openmp", "pybind11", "pythran", "threads"}
    | {"python", "python3", "python3-embed", "scipy-openblas", "scipy-openblas32"}
    | {"scipy-openblas64"}
)
_CMAKE_PROVIDED = frozenset(
    {"cython", "f2py", "git", "nanobind", "numpy", "openmp", "pkgconfig", "pybind11", "python"}
    | {"python2", "python3", "pythonextensions", "pythoninterp", "pythonlibs", "threads"}
)

_HASH_COMMENT = re.compile(r"#[^\n]*")
_MESON_DEPENDENCY = re.compile(r"(?<![.\w])dependency\(\s*'([^'\n]*)'")
_MESON_ADD_LANGUAGES = re.compile(r"(?<![.\w])add_languages\(")
_MESON_PROJECT = re.compile(r"(?<![.\w])project\(")
_MESON_REQUIRED_FALSE = re.compile(r"\brequired\s*:\s*false\b")
_MESON_FALLBACK = re.compile(r"\bfallback\s*:\s*\[?\s*'([^'\n]*)'")
_MESON_ALLOW_FALLBACK = re.compile(r"\ballow_fallback\s*:\s*true\b")
_CMAKE_FIND_PACKAGE = re.compile(r"(?<!\w)(?i:find_package)\s*\(")
_CMAKE_ENABLE_LANGUAGE = re.compile(r"(?<!\w)(?i:enable_language)\s*\(")
_CMAKE_PROJECT = re.compile(r"(?<!\w)(?i:project)\s*\(")
_CMAKE_FORTRAN = re.compile(r"\bFortran\b")
_CALL_ARGUMENTS = 500  # how far past a call's opening parenthesis its arguments are read

# Old setup.py files are full of invalid escape sequences; parsing them is not the user's concern.
_SETUP_PY = "<sdist setup.py>"
warnings.filterwarnings("ignore", module=re.escape(_SETUP_PY))


def build_needs(
    read: Callable[[str], bytes | None],
    members: Iterable[str],
    requires: Iterable[str],
    backend: str,
) -> tuple[str, ...]:
    """Sorted needs of one sdist, from its member paths (relative to its top directory), what
    `read` returns for them, its build requirements and its backend's name."""
    names = sorted(set(members))
    needs = set(_rust(names, requires, backend))
    setup = read("setup.py") if "setup.py" in names else None
    if setup is not None:
        needs.update(LIBRARY + lib for lib in _setup_py_libraries(_text(setup)))
    vendored = {n.split("/")[1] for n in names if n.startswith("subprojects/") and n.count("/") > 1}
    for name in names:
        if name.rpartition("/")[2] == "meson.build" and not name.startswith("subprojects/"):
            text = _HASH_COMMENT.sub("", _text(read(name) or b""))
            needs.update(LIBRARY + lib for lib in _meson_libraries(text, vendored))
            if _meson_fortran(text):
                needs.add(FORTRAN)
    cmake = read("CMakeLists.txt") if "CMakeLists.txt" in names else None
    if cmake is not None:
        text = _HASH_COMMENT.sub("", _text(cmake))
        needs.update(LIBRARY + lib for lib in _cmake_libraries(text))
        if _cmake_fortran(text):
            needs.add(FORTRAN)
    return tuple(sorted(needs))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _rust(names: list[str], requires: Iterable[str], backend: str) -> Iterator[str]:
    found = set()
    if backend.partition(":")[0].partition(".")[0] == "maturin":
        found.add("maturin")
    for text in requires:
        try:
            name = canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue
        if name in _RUST_TOOLS:
            found.add(name)
    if not found and "Cargo.toml" in names:
        found.add("Cargo.toml")
    return (f"{RUST} ({tool})" for tool in found)


def _is_library(name: str) -> bool:
    return (
        _NAME.fullmatch(name) is not None
        and name not in _TOOLCHAIN_LIBRARIES
        and _WINDOWS_LIBRARIES.fullmatch(name) is None
        and not name.lower().startswith("python")
    )


# setup.py ---------------------------------------------------------------------------------


def _setup_py_libraries(source: str) -> set[str]:
    try:
        tree = ast.parse(source, filename=_SETUP_PY)
    except (SyntaxError, ValueError, RecursionError):
        return set()  # Python 2 or otherwise unreadable: nothing is known
    found: set[str] = set()
    for node in ast.walk(tree):
        found.update(_strings(_libraries_value(node)))
        found.update(_pkg_config_modules(node))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            script = _CONFIG_SCRIPT.fullmatch(node.value)
            if script is not None and script[1].lower() not in _NOT_LIBRARY_SCRIPTS:
                found.add(script[1])
    return {name for name in found if _is_library(name)}


def _libraries_value(node: ast.AST) -> ast.expr | None:
    """The value of `libraries=…`, `libraries = …` or `{"libraries": …}`."""
    if isinstance(node, ast.keyword) and node.arg == "libraries":
        return node.value
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id == "libraries" for t in targets):
            return node.value
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "libraries":
                return value
    return None


def _strings(node: ast.expr | None) -> list[str]:
    """The strings of a literal list or tuple; nothing for anything computed."""
    if not isinstance(node, ast.List | ast.Tuple):
        return []
    return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def _pkg_config_modules(node: ast.AST) -> list[str]:
    """Modules named in `["pkg-config", …]`, `"pkg-config --libs x"`, `pkgconfig.libs("x")`
    or a helper called `pkgconfig("x")` / `pkg_config("x")`."""
    words: list[str] = []
    if isinstance(node, ast.List | ast.Tuple):
        first = node.elts[0] if node.elts else None
        if isinstance(first, ast.Constant) and first.value == "pkg-config":
            words = _strings(node)[1:]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.startswith("pkg-config "):
            # A command line: its words up to the first shell syntax (`|`, `2>/dev/null`, …).
            command = node.value.split()[1:]
            words = list(itertools.takewhile(lambda w: _NAME.fullmatch(w) or w[0] == "-", command))
    elif isinstance(node, ast.Call):
        words = _pkgconfig_call_arguments(node)
    return [w for w in words if not w.startswith("-")]


def _pkgconfig_call_arguments(call: ast.Call) -> list[str]:
    func = call.func
    position = None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id == "pkgconfig" and func.attr in _PKGCONFIG_FIRST_ARG:
            position = 0
        elif func.value.id == "pkgconfig" and func.attr == "configure_extension":
            position = 1
    elif isinstance(func, ast.Name) and func.id in ("pkgconfig", "pkg_config"):
        return [
            a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
    if position is None or len(call.args) <= position:
        return []
    argument = call.args[position]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value.split()
    return []


# meson.build and CMakeLists.txt -------------------------------------------------------------


def _arguments(text: str, start: int) -> str:
    """A call's arguments from just past its opening parenthesis to the first `)` (bounded)."""
    end = text.find(")", start, start + _CALL_ARGUMENTS)
    return text[start : end if end >= 0 else start + _CALL_ARGUMENTS]


def _meson_libraries(text: str, vendored: set[str]) -> set[str]:
    found = set()
    for match in _MESON_DEPENDENCY.finditer(text):
        name = match[1]
        arguments = _arguments(text, match.end())
        if name in _MESON_PROVIDED or _MESON_REQUIRED_FALSE.search(arguments):
            continue
        fallback = _MESON_FALLBACK.search(arguments)
        if fallback is not None and fallback[1] in vendored:
            continue
        if _MESON_ALLOW_FALLBACK.search(arguments) and name in vendored:
            continue
        if _is_library(name):
            found.add(name)
    return found


def _meson_fortran(text: str) -> bool:
    for match in _MESON_ADD_LANGUAGES.finditer(text):
        arguments = _arguments(text, match.end())
        if "'fortran'" in arguments and not _MESON_REQUIRED_FALSE.search(arguments):
            return True
    return any(
        "'fortran'" in _arguments(text, match.end()) for match in _MESON_PROJECT.finditer(text)
    )


def _cmake_libraries(text: str) -> set[str]:
    found = set()
    for match in _CMAKE_FIND_PACKAGE.finditer(text):
        words = _arguments(text, match.end()).split()
        if not words or words[0].lower() in _CMAKE_PROVIDED:
            continue
        if "QUIET" in words and "REQUIRED" not in words:
            continue
        if _is_library(words[0]):
            found.add(words[0])
    return found


def _cmake_fortran(text: str) -> bool:
    for match in _CMAKE_ENABLE_LANGUAGE.finditer(text):
        words = _arguments(text, match.end()).split()
        if "Fortran" in words and "OPTIONAL" not in words:
            return True
    return any(
        _CMAKE_FORTRAN.search(_arguments(text, match.end()))
        for match in _CMAKE_PROJECT.finditer(text)
    )
