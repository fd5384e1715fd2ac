"""Evaluation cost of a generated default.nix at scale.

Builds a synthetic, seeded ``machci.lock.model.Lock`` (by default 40 roots, about 225 packages per
system, 3 systems), renders it with ``machci.nix.render.render`` into a temporary directory as
``default.nix``, and times ``nix-instantiate default.nix -A env`` against the nixpkgs stand-in
(``tests/nix/pkgs.nix``) for each system, with ``nix-instantiate --parse`` as a floor::

    python benchmarks/evaluation.py
    python benchmarks/evaluation.py --roots 40 --packages 225 --systems 3 --runs 7
    python benchmarks/evaluation.py --json evaluation.json
    python benchmarks/evaluation.py --lock airflow-lock.json --sizes

``--lock FILE`` times a real lock instead, as ``machci lock ... --json`` prints it, on each of its
systems. ``--sizes`` adds how the file's size grows (``--sizes-only``: that alone, without Nix):
over the lock's first 1, 2, ... systems, each system alone, and more packages on the same
systems (the synthetic lock at ``--sweep`` packages per system, or a real lock's first N
packages in dependency order), with the bytes of the shared ``files`` set, of each system's
entries and of the packages' derivation links, and the growth exponent between rows.

Exit status: 0 when the target is met (PASS), 1 when it is not (MISS), 2 when Nix fails.
It uses only the public render API and the stand-in file, so it keeps working while either
changes; it reports what it measured with whatever they are on the day.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the working tree's machci, installed or not

from machci import __version__  # noqa: E402
from machci.lock.graph import check_build_cycles, runtime_closure  # noqa: E402
from machci.lock.model import (  # noqa: E402
    Lock,
    LockedFile,
    LockedPackage,
    LockedSource,
    Root,
    SystemLock,
)
from machci.nix.escape import string  # noqa: E402
from machci.nix.header import Header, compose  # noqa: E402
from machci.nix.render import RenderOptions, is_binary_wheel, render  # noqa: E402

STAND_IN = REPO / "tests" / "nix" / "pkgs.nix"
PYTHON = "3.12"
INDEX = "https://pypi.org/simple"
SNAPSHOT = "2026-12-01T00:00:00Z"
TARGET_SECONDS = 0.5
# Builds run as the calling user, offline, without a sandbox (as tests/nixtools.py).
NIX_CONFIG = "substituters =\nsandbox = false\nbuild-users-group ="
# Systems in the order --systems takes them.
SYSTEM_ORDER = ("x86_64-linux", "aarch64-linux", "aarch64-darwin", "x86_64-darwin")
PLATFORM_TAGS = {
    "x86_64-linux": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "aarch64-linux": "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "aarch64-darwin": "macosx_11_0_arm64",
    "x86_64-darwin": "macosx_10_13_x86_64",
}

# -- the synthetic lock ------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Build backends and the packaging tools around them, as PyPI has them: pure wheels, with their
# real dependencies, ordered so that everything depends only on what comes before it.
TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "packaging": ("25.0", ()),
    "wheel": ("0.45.1", ()),
    "setuptools": ("80.9.0", ()),
    "flit-core": ("3.12.0", ()),
    "installer": ("0.7.0", ()),
    "pyproject-hooks": ("1.2.0", ()),
    "build": ("1.3.0", ("packaging", "pyproject-hooks")),
    "pip": ("25.3", ()),
    "pathspec": ("0.12.1", ()),
    "pluggy": ("1.6.0", ()),
    "trove-classifiers": ("2025.9.11.17", ()),
    "hatchling": ("1.27.0", ("packaging", "pathspec", "pluggy", "trove-classifiers")),
    "setuptools-scm": ("9.2.0", ("packaging", "setuptools")),
    "poetry-core": ("2.2.1", ()),
    "iniconfig": ("2.1.0", ()),
    "pygments": ("2.19.2", ()),
    "pytest": ("8.4.2", ("iniconfig", "packaging", "pluggy", "pygments")),
}
# What an sdist builds with (its [build-system] requires), one set per sdist, drawn in turn.
BACKENDS: tuple[tuple[str, ...], ...] = (
    ("setuptools", "wheel"),
    ("setuptools",),
    ("flit-core",),
    ("hatchling",),
    ("setuptools", "setuptools-scm"),
    ("poetry-core",),
)

# Well-known projects, lowest layer first. Dependencies not listed in KNOWN are drawn at random
# from the packages before them (so the graph has no cycle but the deliberate ones).
PROJECTS = _words("""
six typing-extensions idna certifi charset-normalizer urllib3 attrs pycparser markupsafe pyyaml
python-dateutil pytz tzdata zipp importlib-metadata platformdirs filelock click colorama tomli
sniffio h11 anyio httpcore httpx requests cffi cryptography jinja2 rpds-py referencing
jsonschema-specifications jsonschema annotated-types pydantic-core pydantic numpy pandas scipy
pyarrow fsspec cloudpickle toolz locket partd msgpack psutil tornado tblib sortedcontainers zict
dask distributed wrapt decorator protobuf grpcio googleapis-common-protos cachetools pyasn1
pyasn1-modules rsa google-auth jmespath botocore s3transfer boto3 greenlet sqlalchemy multidict
frozenlist aiosignal propcache yarl aiohttp werkzeug itsdangerous blinker flask starlette fastapi
uvicorn websockets uvloop httptools watchfiles python-dotenv lxml pillow pyparsing cycler
kiwisolver fonttools contourpy matplotlib joblib threadpoolctl scikit-learn networkx mpmath sympy
regex tqdm mdurl markdown-it-py rich docutils alabaster babel imagesize snowballstemmer sphinx
sphinxcontrib-applehelp sphinxcontrib-devhelp sphinxcontrib-htmlhelp sphinxcontrib-jsmath
sphinxcontrib-qthelp sphinxcontrib-serializinghtml orjson ujson markdown coverage pytest-cov
hypothesis mypy-extensions mypy ruff black isort pyflakes pycodestyle mccabe flake8 traitlets
jupyter-core pyzmq nest-asyncio jupyter-client comm debugpy matplotlib-inline wcwidth
prompt-toolkit ptyprocess pexpect parso jedi asttokens executing pure-eval stack-data ipython
ipykernel docopt pyperclip future sgmllib3k feedparser xgboost
""")
KNOWN: dict[str, tuple[str, ...]] = {
    "requests": ("certifi", "charset-normalizer", "idna", "urllib3"),
    "httpx": ("anyio", "certifi", "httpcore", "idna"),
    "anyio": ("idna", "sniffio", "typing-extensions"),
    "pandas": ("numpy", "python-dateutil", "pytz", "tzdata"),
    "dask": ("click", "cloudpickle", "distributed", "fsspec", "packaging", "partd", "pyyaml"),
    "distributed": ("click", "cloudpickle", "dask", "msgpack", "psutil", "tornado", "zict"),
    "sphinx": (
        "alabaster",
        "babel",
        "docutils",
        "imagesize",
        "jinja2",
        "pygments",
        "requests",
        "snowballstemmer",
        "sphinxcontrib-applehelp",
        "sphinxcontrib-serializinghtml",
    ),
    "sphinxcontrib-applehelp": ("sphinx",),
    "sphinxcontrib-serializinghtml": ("sphinx",),
    "flask": ("blinker", "click", "itsdangerous", "jinja2", "werkzeug"),
    "fastapi": ("pydantic", "starlette", "typing-extensions"),
    "pytest-cov": ("coverage", "pluggy", "pytest"),
    "ipykernel": ("comm", "debugpy", "ipython", "jupyter-client", "tornado", "traitlets"),
    "feedparser": ("sgmllib3k",),
    "xgboost": ("numpy", "scipy"),
}
# Deliberate runtime cycles, as PyPI has them: default.nix keeps runtime dependencies out of
# derivations, so these must evaluate.
CYCLES = (
    ("dask", "distributed"),
    ("sphinx", "sphinxcontrib-applehelp"),
    ("sphinx", "sphinxcontrib-serializinghtml"),
)
EXTRAS = {"dask": ("distributed",)}
BINARY = frozenset(
    _words("""
charset-normalizer markupsafe pyyaml cffi cryptography rpds-py pydantic-core numpy pandas scipy
pyarrow msgpack psutil tornado wrapt protobuf grpcio greenlet sqlalchemy multidict frozenlist
propcache yarl aiohttp websockets uvloop httptools watchfiles lxml pillow kiwisolver fonttools
contourpy matplotlib scikit-learn regex orjson ujson coverage mypy ruff pyzmq debugpy
""")
)
ABI3 = frozenset({"cryptography", "pydantic-core", "rpds-py", "watchfiles", "ruff"})
SDISTS = frozenset({"docopt", "pyperclip", "future", "sgmllib3k", "feedparser"})
PREFERRED_ROOTS = _words(
    "boto3 dask distributed fastapi flask httpx ipykernel jsonschema matplotlib mypy pandas pytest "
    "pytest-cov requests rich scikit-learn sphinx sqlalchemy uvicorn black feedparser build pip"
)
# Packages only some systems have, as environment markers make them: each system gets one, so
# every system holds the same number of packages.
ONLY_ON = {
    "x86_64-linux": ("nvidia-nccl-cu12", "xgboost"),
    "aarch64-linux": ("nvidia-nccl-cu12", "xgboost"),
    "aarch64-darwin": ("appnope", "ipykernel"),
    "x86_64-darwin": ("appnope", "ipykernel"),
}
DEGREES = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)  # runtime dependencies of a drawn package


@dataclass(frozen=True)
class Spec:
    """One package as the generator decides it, before it becomes each system's LockedPackage."""

    name: str
    version: str
    kind: str  # "pure" | "binary" | "sdist"
    dependencies: tuple[str, ...]
    build_requires: tuple[str, ...] = ()
    abi3: bool = False


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _file(filename: str) -> LockedFile:
    h = _digest("url", filename)
    url = f"https://files.pythonhosted.org/packages/{h[:2]}/{h[2:4]}/{h[4:]}/{filename}"
    return LockedFile(filename, url, _digest("file", filename))


def _specs(packages: int, rng: random.Random) -> list[Spec]:
    """The packages every system shares (packages - 1 of them), lowest layer first."""
    shared = packages - 1
    if shared < len(TOOLS):
        raise SystemExit(f"--packages must be at least {len(TOOLS) + 1}")
    names = [*TOOLS, *PROJECTS][:shared]
    names += [f"synthetic-{i:03d}" for i in range(shared - len(names))]
    known = {n: deps for n, deps in KNOWN.items() if n in names}
    present = set(names)
    specs: list[Spec] = []
    backends = 0
    for position, name in enumerate(names):
        if name in TOOLS:
            version, deps = TOOLS[name]
            specs.append(Spec(name, version, "pure", deps))
            continue
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"
        if name in known:
            deps = tuple(d for d in known[name] if d in present)
        else:
            earlier = names[len(TOOLS) : position] or names[:position]
            degree = min(rng.choice(DEGREES), len(earlier))
            deps = tuple(rng.sample(earlier, degree))
            if rng.random() < 0.15:
                deps += ("packaging",)  # what so many projects need at run time
        if name.startswith("synthetic-"):
            draw = rng.random()
            kind = "binary" if draw < 0.2 else "sdist" if draw < 0.28 else "pure"
        else:
            kind = "binary" if name in BINARY else "sdist" if name in SDISTS else "pure"
        build: tuple[str, ...] = ()
        if kind == "sdist":
            build = BACKENDS[backends % len(BACKENDS)]
            backends += 1
        abi3 = name in ABI3 or (kind == "binary" and rng.random() < 0.1)
        specs.append(Spec(name, version, kind, tuple(sorted(set(deps))), build, abi3))
    return specs


def _locked(spec: Spec, system: str, extra_deps: Iterable[str] = ()) -> LockedPackage:
    dist = spec.name.replace("-", "_")
    if spec.kind == "sdist":
        filename = f"{dist}-{spec.version}.tar.gz"
    elif spec.kind == "binary":
        abi = "cp39-abi3" if spec.abi3 else "cp312-cp312"
        filename = f"{dist}-{spec.version}-{abi}-{PLATFORM_TAGS[system]}.whl"
    else:
        filename = f"{dist}-{spec.version}-py3-none-any.whl"
    return LockedPackage(
        name=spec.name,
        version=spec.version,
        provider="sdist" if spec.kind == "sdist" else "wheel",
        file=_file(filename),
        dependencies=tuple(sorted({*spec.dependencies, *extra_deps})),
        build_requires=tuple(sorted(spec.build_requires)),
        extras=EXTRAS.get(spec.name, ()),
    )


def _reached(specs: Sequence[Spec], roots: Iterable[str]) -> set[str]:
    """What a lock of these roots holds: their runtime closure, and the build closure of every
    sdist in it."""
    by_name = {s.name: s for s in specs}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(by_name[name].dependencies)
            todo.extend(by_name[name].build_requires)
    return seen


def _connect(specs: list[Spec], roots: Sequence[str], rng: random.Random) -> list[Spec]:
    """Give each package the roots do not reach a dependent that comes after it: a lock holds
    only what its roots need. Dependents come later, so this makes no cycle; the last package
    must be a root."""
    specs = list(specs)
    for i in range(len(specs) - 1, -1, -1):
        if specs[i].name in _reached(specs, roots):
            continue
        later = [j for j in range(i + 1, len(specs)) if specs[j].name not in KNOWN]
        later = [j for j in later if specs[j].name not in TOOLS] or later
        j = rng.choice(later or list(range(i + 1, len(specs))))
        deps = tuple(sorted({*specs[j].dependencies, specs[i].name}))
        specs[j] = replace(specs[j], dependencies=deps)
    return specs


def synthetic_lock(roots: int, packages: int, systems: Sequence[str], seed: int = 0) -> Lock:
    """A lock shaped like a large real project's, the same for the same arguments."""
    rng = random.Random(seed)
    specs = _specs(packages, rng)
    names = [s.name for s in specs]
    top = [n for n in PREFERRED_ROOTS if n in names]
    rest = [n for n in names[len(names) // 2 :] if n not in top]
    chosen = top[:roots] + rng.sample(rest, max(0, min(roots - len(top), len(rest))))
    if names[-1] not in chosen:
        chosen[-1] = names[-1]  # nothing comes after it to depend on it
    specs = _connect(specs, chosen, rng)
    system_locks = []
    for system in sorted(systems):
        own, dependent = ONLY_ON[system]
        dependent = dependent if dependent in names else names[-1]
        locked = [_locked(s, system, [own] if s.name == dependent else []) for s in specs]
        kind = "pure" if system.endswith("-darwin") else "binary"
        locked.append(_locked(Spec(own, "2.27.3", kind, ()), system))
        root_tuple = tuple(
            Root(name, name, f"requirements.txt:{line}")
            for line, name in enumerate(sorted(chosen), start=1)
        )
        system_lock = SystemLock(
            system, PYTHON, tuple(sorted(locked, key=lambda p: p.name)), root_tuple
        )
        check_build_cycles(system_lock)  # what machci itself refuses to write
        system_locks.append(system_lock)
    return Lock(tuple(system_locks), INDEX, SNAPSHOT)


def runtime_cycles(lock: Lock) -> list[list[str]]:
    """The runtime dependency cycles of every system (strongly connected sets of two or more
    packages), each once, its names sorted."""
    found: set[tuple[str, ...]] = set()
    for system in lock.systems:
        packages = {p.name: p for p in system.packages}
        reach = {
            name: runtime_closure(packages, [d for d in p.dependencies if d in packages])
            for name, p in packages.items()
        }
        for name in packages:
            if name in reach[name]:
                found.add(tuple(sorted(n for n in reach[name] if name in reach[n])))
    return [list(c) for c in sorted(found)]


def describe(lock: Lock, cycles: Sequence[Sequence[str]] | None = CYCLES) -> dict[str, Any]:
    """What the lock holds, per system and overall; `cycles`: the runtime cycles it was made
    with, or None to find them."""
    per_system: dict[str, dict[str, int]] = {}
    for system in lock.systems:
        kinds = {"pure wheels": 0, "binary wheels": 0, "sdists": 0, "others": 0}
        for p in system.packages:
            if p.file is None:
                kinds["others"] += 1  # nixpkgs' own, or from outside the index
            elif p.provider == "sdist":
                kinds["sdists"] += 1
            elif is_binary_wheel(p.file.filename):
                kinds["binary wheels"] += 1
            else:
                kinds["pure wheels"] += 1
        per_system[system.system] = {
            "packages": len(system.packages),
            "roots": len(system.roots),
            "dependency edges": sum(len(p.dependencies) for p in system.packages),
            **kinds,
        }
    files = {p.file.filename for s in lock.systems for p in s.packages if p.file}
    names = {p.name for s in lock.systems for p in s.packages}
    known = [list(c) for c in cycles if set(c) <= names] if cycles is not None else None
    found = runtime_cycles(lock) if known is None else known
    return {"systems": per_system, "distinct files": len(files), "cycles": found}


# -- a real lock --------------------------------------------------------------------------------


class LockFormatError(Exception):
    """The JSON is not what `machci lock --json` prints."""


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LockFormatError(f"{where}: expected an object")
    return value


def _text(value: object, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise LockFormatError(f"{where}: expected a string")
    return value


def _texts(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LockFormatError(f"{where}: expected a list of strings")
    return tuple(value)


def _locked_file(value: object, where: str) -> LockedFile | None:
    if value is None:
        return None
    data = _object(value, where)
    size = data.get("size")
    if size is not None and not isinstance(size, int):
        raise LockFormatError(f"{where}.size: expected an integer")
    return LockedFile(
        str(_text(data.get("filename"), f"{where}.filename")),
        str(_text(data.get("url"), f"{where}.url")),
        str(_text(data.get("sha256"), f"{where}.sha256")),
        size,
        _text(data.get("upload_time"), f"{where}.upload_time", optional=True),
    )


def _locked_package(name: str, value: object, where: str) -> LockedPackage:
    data = _object(value, where)
    source = None
    if data.get("source") is not None:
        source = LockedSource.from_json(data["source"])
        if source is None:
            raise LockFormatError(f"{where}.source: not a source")
    return LockedPackage(
        name=name,
        version=str(_text(data.get("version"), f"{where}.version")),
        provider=str(_text(data.get("provider"), f"{where}.provider")),
        file=_locked_file(data.get("file"), f"{where}.file"),
        dependencies=_texts(data.get("dependencies"), f"{where}.dependencies"),
        build_requires=_texts(data.get("build_requires"), f"{where}.build_requires"),
        extras=_texts(data.get("extras"), f"{where}.extras"),
        build_needs=_texts(data.get("build_needs"), f"{where}.build_needs"),
        attr=_text(data.get("attr"), f"{where}.attr", optional=True),
        source=source,
        scripts=data.get("app") is True,
    )


def lock_from_json(value: object) -> Lock:
    """The inverse of ``Lock.to_json`` (what `machci lock --json` prints); machci itself has no
    reader of it. Project-URLs are not in the JSON, and not rendered either."""
    top = _object(value, "lock")
    data = _object(top.get("data"), "data")
    source = str(_text(data.get("source"), "data.source"))
    if source == "pypi":
        index = str(_text(data.get("index"), "data.index"))
        snapshot = _text(data.get("snapshot"), "data.snapshot", optional=True)
    elif "path" in data:
        index, snapshot = str(_text(data.get("path"), "data.path")), None
    else:
        index = str(_text(data.get("repository"), "data.repository"))
        snapshot = _text(data.get("rev"), "data.rev")
    systems = []
    for system, entry in sorted(_object(top.get("systems"), "systems").items()):
        where = f"systems.{system}"
        fields = _object(entry, where)
        roots = []
        for i, root in enumerate(fields.get("roots") or []):
            r = _object(root, f"{where}.roots[{i}]")
            roots.append(
                Root(
                    *(str(_text(r.get(k), f"{where}.roots[{i}].{k}")) for k in Root.__annotations__)
                )
            )
        packages = _object(fields.get("packages"), f"{where}.packages")
        locked = tuple(
            _locked_package(name, packages[name], f"{where}.packages.{name}")
            for name in sorted(packages)
        )
        python = str(_text(fields.get("python"), f"{where}.python"))
        systems.append(SystemLock(system, python, locked, tuple(roots)))
    if not systems:
        raise LockFormatError("systems: none")
    return Lock(tuple(systems), index, snapshot, source)


def read_lock(path: Path) -> Lock:
    """A lock as `machci lock --json` printed it, checked to write back the same JSON."""
    value = json.loads(path.read_text(encoding="utf-8"))
    lock = lock_from_json(value)
    if lock.dumps() != json.dumps(value, indent=2, sort_keys=True) + "\n":
        raise LockFormatError(
            "it does not read back to the same JSON (a field this reader misses?)"
        )
    return lock


# -- size ------------------------------------------------------------------------------------


def generated(lock: Lock) -> str:
    """default.nix for the lock, with a header like the one `machci sync` writes."""
    body = render(lock, RenderOptions(python=lock.systems[0].python))
    header = Header(__version__, lock.revision, "sha256:" + "0" * 64, (), "", output="default.nix")
    return compose(header, body)


@dataclass(frozen=True)
class Size:
    """What one default.nix weighs, and where: `files` is the set render.py writes every file
    into once (a pure wheel every system uses is there once), `per_system` each system's entry
    in `systems` (its roots and one entry per package), the rest is fixed (header, builder code,
    the outputs)."""

    label: str
    systems: int
    packages: int  # distinct package names
    entries: int  # packages x systems: the sum of every system's package count
    edges: int  # the names in every entry's dependencies and build-system lists
    files: int  # distinct files
    total: int
    files_bytes: int
    per_system: dict[str, int]
    links_bytes: int  # of systems_bytes: the packages' libraries-from and inputs-from

    @property
    def systems_bytes(self) -> int:
        return sum(self.per_system.values())

    @property
    def fixed(self) -> int:
        return self.total - self.files_bytes - self.systems_bytes

    @property
    def variable(self) -> int:
        return self.files_bytes + self.systems_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "systems": self.systems,
            "packages": self.packages,
            "entries": self.entries,
            "edges": self.edges,
            "files": self.files,
            "bytes": self.total,
            "files bytes": self.files_bytes,
            "systems bytes": self.per_system,
            "links bytes": self.links_bytes,
            "fixed bytes": self.fixed,
        }


LINKS = ("libraries-from = ", "inputs-from = ")


def sections(text: str, systems: Sequence[str]) -> tuple[int, dict[str, int], int]:
    """The bytes of the `files` set and of each system's entry in `systems`, as render.py lays
    them out: `files = {` and `systems = {` one level in, each system's entry a level deeper,
    each closed by `};` at its own level (the entries come in the lock's order of systems); and
    of the packages' derivation links in them (`libraries-from`, `inputs-from`: each lists part
    of a package's runtime closure, so these can grow faster than the packages)."""
    files = links = 0
    in_links = False
    per_system: dict[str, int] = {}
    where: str | None = None
    entry: str | None = None
    pending = list(systems)
    for line in text.splitlines(keepends=True):
        size = len(line.encode())
        if where == "files":
            files += size
            if line == "  };\n":
                where = None
        elif where == "systems":
            if entry is not None:
                per_system[entry] += size
                stripped = line.strip()
                if in_links or stripped.startswith(LINKS):
                    links += size
                    in_links = stripped.endswith("[") or (in_links and stripped != "];")
                if line == "    };\n":
                    entry = None
            elif line.startswith("    ") and line.endswith(" = {\n") and pending:
                entry = pending.pop(0)
                per_system[entry] = size
            elif line == "  };\n":
                where = None
        elif line == "  files = {\n":
            where, files = "files", files + size
        elif line == "  systems = {\n":
            where = "systems"
    if pending or where is not None:
        raise ValueError("default.nix is not laid out as this reads it (render.py changed?)")
    return files, per_system, links


def measure(label: str, lock: Lock) -> tuple[Size, str]:
    text = generated(lock)
    files_bytes, per_system, links = sections(text, [s.system for s in lock.systems])
    size = Size(
        label=label,
        systems=len(lock.systems),
        packages=len({p.name for s in lock.systems for p in s.packages}),
        entries=sum(len(s.packages) for s in lock.systems),
        edges=sum(
            len(p.dependencies) + len(p.build_requires) for s in lock.systems for p in s.packages
        ),
        files=len({p.file.filename for s in lock.systems for p in s.packages if p.file}),
        total=len(text.encode()),
        files_bytes=files_bytes,
        per_system=per_system,
        links_bytes=links,
    )
    return size, text


def exponent(before: int, after: int, n_before: int, n_after: int) -> float | None:
    """How bytes grow with n between two sizes: log(b2/b1) / log(n2/n1); 1 is linear."""
    if n_before <= 0 or n_after == n_before or before <= 0 or after <= 0:
        return None
    return math.log(after / before) / math.log(n_after / n_before)


def with_systems(lock: Lock, systems: Sequence[SystemLock]) -> Lock:
    return Lock(tuple(systems), lock.index, lock.snapshot, lock.source)


def dependency_order(lock: Lock) -> list[str]:
    """Every package name, each after what it needs (runtime and build, on any system) except
    where a cycle comes back: a prefix of it is a lock of its own, nearly closed."""
    needs: dict[str, set[str]] = {}
    for system in lock.systems:
        for p in system.packages:
            needs.setdefault(p.name, set()).update(p.dependencies, p.build_requires)
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(needs):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(sorted(needs[start])))]
        while stack:
            name, todo = stack[-1]
            child = next((d for d in todo if d in needs and d not in seen), None)
            if child is None:
                stack.pop()
                order.append(name)
            else:
                seen.add(child)
                stack.append((child, iter(sorted(needs[child]))))
    return order


def first_packages(lock: Lock, count: int) -> Lock:
    """The lock cut down to the first `count` packages of dependency_order, on every system
    (each keeps those of them it has), edges and roots to outside the cut dropped."""
    keep = set(dependency_order(lock)[:count])
    systems = []
    for system in lock.systems:
        packages = tuple(
            replace(
                p,
                dependencies=tuple(d for d in p.dependencies if d in keep),
                build_requires=tuple(d for d in p.build_requires if d in keep),
            )
            for p in system.packages
            if p.name in keep
        )
        roots = tuple(r for r in system.roots if r.name in keep)
        systems.append(replace(system, packages=packages, roots=roots))
    return with_systems(lock, systems)


def size_sweeps(lock: Lock, package_sweep: Sequence[tuple[str, Lock]]) -> dict[str, list[Size]]:
    """default.nix's size for: the lock's first 1, 2, ... systems; each system alone; and the
    locks of `package_sweep` (more packages, the same systems)."""
    sweeps: dict[str, list[Size]] = {"systems": [], "each system": [], "packages": []}
    for k in range(1, len(lock.systems) + 1):
        label = " + ".join(s.system for s in lock.systems[:k])
        sweeps["systems"].append(measure(label, with_systems(lock, lock.systems[:k]))[0])
    for system in lock.systems:
        sweeps["each system"].append(measure(system.system, with_systems(lock, [system]))[0])
    for label, sub in package_sweep:
        sweeps["packages"].append(measure(label, sub)[0])
    return sweeps


def print_sizes(sweeps: Mapping[str, Sequence[Size]]) -> None:
    titles = {
        "systems": "the lock's first 1, 2, ... systems (exponent over entries)",
        "each system": "each system alone (exponent over entries)",
        "packages": "more packages, the same systems (exponent over entries)",
    }
    print(
        "\ndefault.nix's size: entries = packages x systems; files = the `files` set (each file"
        " once, whichever systems use it); systems = every system's entry in `systems`; fixed ="
        " the rest (header, builder code, outputs); links = the packages' libraries-from and"
        " inputs-from, part of systems; exp = log(b2/b1)/log(n2/n1) from the row"
        " before, n = entries (1 is linear), exp var = the same of files + systems, exp links"
        " of links; edges = the names in the entries' dependencies and build-system lists, exp"
        " e+d = exp var over entries + edges (a package's entry lists its dependencies)"
    )
    head = (
        f"  {'':<46} {'sys':>3} {'pkgs':>5} {'entries':>7} {'edges':>6} {'files':>5} {'bytes':>10}"
        f" {'fixed':>7} {'files B':>9} {'systems B':>10} {'links B':>8} {'B/entry':>7}"
        f" {'B/file':>6}"
        f" {'exp':>5} {'exp var':>7} {'exp links':>9} {'exp e+d':>7}"
    )
    for key, rows in sweeps.items():
        if not rows:
            continue
        print(f"{titles[key]}:")
        print(head)
        previous: Size | None = None
        for row in rows:
            growth = growth_var = growth_links = growth_graph = "-"
            if previous is not None:
                e = exponent(previous.total, row.total, previous.entries, row.entries)
                v = exponent(previous.variable, row.variable, previous.entries, row.entries)
                growth = f"{e:.3f}" if e is not None else "-"
                growth_var = f"{v:.3f}" if v is not None else "-"
                k = exponent(previous.links_bytes, row.links_bytes, previous.entries, row.entries)
                growth_links = f"{k:.3f}" if k is not None else "-"
                g = exponent(
                    previous.variable,
                    row.variable,
                    previous.entries + previous.edges,
                    row.entries + row.edges,
                )
                growth_graph = f"{g:.3f}" if g is not None else "-"
            per_file = row.files_bytes / row.files if row.files else 0
            print(
                f"  {row.label[:46]:<46} {row.systems:>3} {row.packages:>5} {row.entries:>7}"
                f" {row.edges:>6}"
                f" {row.files:>5} {row.total:>10,} {row.fixed:>7,} {row.files_bytes:>9,}"
                f" {row.systems_bytes:>10,} {row.links_bytes:>8,} {row.total / row.entries:>7.0f}"
                f" {per_file:>6.0f}"
                f" {growth:>5} {growth_var:>7} {growth_links:>9} {growth_graph:>7}"
            )
            previous = row if key != "each system" else None


# -- timing ------------------------------------------------------------------------------------


def own_stand_in(system: str) -> str:
    """The stand-in package set for `system`, as tests/nixtools.py's stand_in() wrote it when
    this was written (the stand-in's other arguments keep their defaults)."""
    patchelf = shutil.which("patchelf")
    return (
        f"(import {STAND_IN} {{ hostPython = {string(sys.executable)};"
        f" system = {string(system)}; patchelf = {string(patchelf) if patchelf else 'null'};"
        " pythonPackages = final: prev: { }; })"
    )


def stand_in_writer() -> tuple[Callable[[str], str], str]:
    """What writes the stand-in expression: the tests' own stand_in(), which keeps step with the
    stand-in's arguments, when it imports (it needs pytest); else own_stand_in."""
    try:
        from tests.nixtools import stand_in
    except Exception as error:  # pytest missing, or the file half-way through an edit
        return own_stand_in, f"{own_stand_in.__name__}() (tests.nixtools: {error!r})"
    return stand_in, "tests/nixtools.py stand_in()"


def instantiate_command(
    default_nix: Path, system: str, stand_in: Callable[[str], str], readonly: bool = False
) -> list[str]:
    """nix-instantiate of the env for `system`; `readonly`: evaluate and hash the derivations,
    but write nothing to the store."""
    return [
        "nix-instantiate",
        *(["--readonly-mode"] if readonly else []),
        str(default_nix),
        "-A",
        "env",
        "--arg",
        "pkgs",
        stand_in(system),
        "--argstr",
        "system",
        system,
    ]


class NixFailed(Exception):
    pass


def timed(command: Sequence[str], env: Mapping[str, str]) -> tuple[float, str]:
    """Wall time of one run, and its standard output; NixFailed if it fails."""
    start = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise NixFailed(f"{' '.join(command[:4])} ... failed ({result.returncode}):\n{tail}")
    return elapsed, result.stdout


def eval_stats(command: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Nix's own figures for one evaluation (NIX_SHOW_STATS): CPU time, thunks, calls, bytes."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env={**env, "NIX_SHOW_STATS": "1"},
        check=False,
    )
    text = result.stderr
    start = text.find("{")
    try:
        stats = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(stats, dict):
        return {}
    wanted = ("cpuTime", "nrThunks", "nrFunctionCalls", "nrPrimOpCalls", "nrLookups")
    found: dict[str, Any] = {key: stats[key] for key in wanted if key in stats}
    if isinstance(stats.get("gc"), dict) and "totalBytes" in stats["gc"]:
        found["gcTotalBytes"] = stats["gc"]["totalBytes"]
    return found


def closure_size(drv: str, env: Mapping[str, str]) -> int | None:
    """How many store derivations (and sources) the env's derivation needs."""
    result = subprocess.run(
        ["nix-store", "-qR", drv], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        return None
    return sum(1 for line in result.stdout.splitlines() if line.endswith(".drv"))


@dataclass
class Series:
    times: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.times:
            return "n/a"
        return (
            f"{statistics.median(self.times):.3f} s ({min(self.times):.3f}-{max(self.times):.3f})"
        )

    def runs(self) -> str:
        return ", ".join(f"{t:.3f}" for t in self.times)


def git_revision() -> str | None:
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def sweep_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or sizes[0] < len(TOOLS) + 1:
        raise argparse.ArgumentTypeError(f"package counts must be at least {len(TOOLS) + 1}")
    return sizes


def package_sweep(
    args: argparse.Namespace, lock: Lock, systems: Sequence[str]
) -> list[tuple[str, Lock]]:
    """The locks of the package-count sweep: a real lock's first N packages (and the whole
    lock), or the synthetic generator at N packages per system, roots in proportion."""
    if args.lock:
        total = len(dependency_order(lock))
        counts = [n for n in args.sweep if n < total] + [total]
        return [(f"first {n} of {args.lock.name}", first_packages(lock, n)) for n in counts]
    locks = []
    for n in args.sweep:
        roots = max(1, round(args.roots * n / args.packages))
        label = f"synthetic, {roots} roots, {n} packages/system"
        locks.append((label, synthetic_lock(roots, n, systems, args.seed)))
    return locks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument(
        "--lock",
        type=Path,
        metavar="FILE",
        help="a real lock, as `machci lock --json` prints it, instead of the synthetic one",
    )
    parser.add_argument("--roots", type=int, default=40, help="top-level requirements (40)")
    parser.add_argument("--packages", type=int, default=225, help="packages per system (225)")
    parser.add_argument(
        "--systems",
        type=int,
        default=3,
        choices=range(1, len(SYSTEM_ORDER) + 1),
        help=f"systems, taken in the order {', '.join(SYSTEM_ORDER)} (3)",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (7)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic lock (0)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write default.nix into DIR and keep it"
    )
    parser.add_argument(
        "--sizes",
        action="store_true",
        help="also report how default.nix's size grows with systems and packages",
    )
    parser.add_argument(
        "--sizes-only", action="store_true", help="only that report: no Nix, no timing"
    )
    parser.add_argument(
        "--sweep",
        type=sweep_sizes,
        default=[50, 100, 200, 400],
        metavar="N,N,...",
        help="package counts of the size report's package sweep (50,100,200,400): the"
        " synthetic lock's packages per system, or a real lock's first N packages",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.roots < 1:
        parser.error("--runs and --roots must be at least 1")

    if args.lock:
        try:
            lock = read_lock(args.lock)
        except (OSError, ValueError, LockFormatError) as error:
            print(f"evaluation: {args.lock}: {error}", file=sys.stderr)
            return 2
        systems: tuple[str, ...] = tuple(s.system for s in lock.systems)
        pythons = sorted({s.python for s in lock.systems})
        if len(pythons) > 1:
            print(f"evaluation: the lock's systems differ in Python: {pythons}", file=sys.stderr)
            return 2
        shape = describe(lock, cycles=None)
    else:
        systems = SYSTEM_ORDER[: args.systems]
        lock = synthetic_lock(args.roots, args.packages, systems, args.seed)
        shape = describe(lock)
    python = lock.systems[0].python
    sweeps = (
        size_sweeps(lock, package_sweep(args, lock, systems))
        if args.sizes or args.sizes_only
        else None
    )
    if args.sizes_only:
        assert sweeps is not None
        print(f"machci {__version__} ({git_revision() or 'no git'})")
        print(f"lock: {args.lock or f'synthetic, seed {args.seed}'}, systems {', '.join(systems)}")
        print_sizes(sweeps)
        if args.json:
            sizes = {k: [r.to_json() for r in v] for k, v in sweeps.items()}
            args.json.write_text(json.dumps({"sizes": sizes}, indent=2) + "\n")
        return 0

    for tool in ("nix-instantiate", "nix-store"):
        if shutil.which(tool) is None:
            print(f"evaluation: {tool} is not on PATH", file=sys.stderr)
            return 2
    if not STAND_IN.is_file():
        print(f"evaluation: the stand-in {STAND_IN} is missing", file=sys.stderr)
        return 2

    start = time.perf_counter()
    body = render(lock, RenderOptions(python=python))
    render_seconds = time.perf_counter() - start
    header = Header(__version__, lock.revision, "sha256:" + "0" * 64, (), "", output="default.nix")
    text = compose(header, body)
    data = text.encode()
    files_bytes, per_system_bytes, links_bytes = sections(text, [s.system for s in lock.systems])

    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    stand_in, stand_in_source = stand_in_writer()
    nix_version = subprocess.run(
        ["nix-instantiate", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"machci {__version__} ({git_revision() or 'no git'}), {nix_version}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()},"
        f" Python {platform.python_version()}, load average"
        f" {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    origin = (
        f"{args.lock} ({lock.revision}), Python {python}"
        if args.lock
        else f"seed {args.seed}, {args.roots} roots"
    )
    print(
        f"lock: {origin}, {len(systems)} systems,"
        f" {shape['distinct files']} distinct files; runtime cycles: "
        + (", ".join("<->".join(c) for c in shape["cycles"]) or "none")
    )
    for system, counts in shape["systems"].items():
        others = f", {counts['others']} others" if counts["others"] else ""
        print(
            f"  {system}: {counts['packages']} packages ({counts['pure wheels']} pure wheels,"
            f" {counts['binary wheels']} binary wheels, {counts['sdists']} sdists{others}),"
            f" {counts['roots']} roots, {counts['dependency edges']} dependency edges"
        )
    print(f"pkgs: the stand-in {STAND_IN.relative_to(REPO)}, written by {stand_in_source}")
    entries = sum(len(s.packages) for s in lock.systems)
    print(
        f"default.nix: {len(data):,} bytes, {text.count(chr(10)):,} lines,"
        f" sha256 {hashlib.sha256(data).hexdigest()[:16]}; rendered in {render_seconds:.3f} s;"
        f" {len(data) / entries:.0f} bytes per package x system ({entries} entries);"
        f" files set {files_bytes:,} bytes ({shape['distinct files']} files), systems"
        f" {', '.join(f'{s} {b:,}' for s, b in per_system_bytes.items())} bytes (links"
        f" {links_bytes:,}), fixed"
        f" {len(data) - files_bytes - sum(per_system_bytes.values()):,} bytes"
    )

    parse = Series()
    series = {system: Series() for system in systems}
    readonly = {system: Series() for system in systems}
    present: dict[str, bool] = {}  # the env's .drv was in the store before the first run
    stats: dict[str, dict[str, Any]] = {}
    closures: dict[str, int | None] = {}
    drvs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="machci-evaluation-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        default_nix = directory / "default.nix"
        default_nix.write_bytes(data)
        try:
            # Interleaved, so that whatever else the machine does spreads over every command.
            for _ in range(args.runs):
                parse.times.append(timed(["nix-instantiate", "--parse", str(default_nix)], env)[0])
                for system in systems:
                    command = instantiate_command(default_nix, system, stand_in, readonly=True)
                    seconds, out = timed(command, env)
                    readonly[system].times.append(seconds)
                    present.setdefault(system, Path(out.strip()).exists())
                    seconds, out = timed(instantiate_command(default_nix, system, stand_in), env)
                    series[system].times.append(seconds)
                    drvs[system] = out.strip()
        except NixFailed as error:
            print(f"evaluation: {error}", file=sys.stderr)
            return 2
        for system in systems:
            stats[system] = eval_stats(instantiate_command(default_nix, system, stand_in), env)
            closures[system] = closure_size(drvs[system], env)

    print(
        f"\nnix-instantiate, {args.runs} runs each, interleaved;"
        " median (min-max), then every run in order:"
    )
    rows = [("--parse default.nix (floor)", parse)]
    for system in systems:
        rows.append((f"default.nix -A env, {system}", series[system]))
        rows.append(("  the same, --readonly-mode", readonly[system]))
    width = max(len(label) for label, _ in rows)
    for label, s in rows:
        print(f"  {label:<{width}}  {s.summary():<22} {s.runs()}")
    print("one more run each with NIX_SHOW_STATS=1, and the env's derivation closure:")
    for system in systems:
        extra = stats.get(system, {})
        figures = []
        if "cpuTime" in extra:
            figures.append(f"Nix CPU {extra['cpuTime']:.3f} s")
        for key, what in (("nrThunks", "thunks"), ("nrFunctionCalls", "function calls")):
            if key in extra:
                figures.append(f"{extra[key]:,} {what}")
        if closures.get(system):
            figures.append(f"{closures[system]} .drv in the closure")
        print(f"  {system}: {', '.join(figures) or 'n/a'}")
    written = [system for system in systems if not present.get(system)]
    if written:
        print(
            f"run 1 wrote the derivations to the store ({', '.join(written)}); later runs find them"
        )
    if kept := [system for system in systems if present.get(system)]:
        # A valid store path's references are valid too: the whole closure was there.
        print(f"no run wrote to the store for {', '.join(kept)}: an earlier invocation had done it")
    worst = max(statistics.median(s.times) for s in series.values())
    total = sum(statistics.median(s.times) for s in series.values())
    slowest = max(max(s.times) for s in series.values())
    print(f"all {len(systems)} systems one after another (sum of medians): {total:.3f} s")
    if sweeps is not None:
        print_sizes(sweeps)
    verdict = "PASS" if worst < TARGET_SECONDS else "MISS"
    if args.lock:
        counts = "/".join(str(c["packages"]) for c in shape["systems"].values())
        what = f"the lock {args.lock.name} ({len(systems)} systems, {counts} packages)"
    else:
        what = (
            f"a {args.roots}-root, {len(systems)}-system lock"
            f" (about {args.packages} packages per system)"
        )
    print(
        f"\n{verdict}: instantiating env for {what} stays under {TARGET_SECONDS} s:"
        f" slowest system's median {worst:.3f} s (slowest single run {slowest:.3f} s)"
    )
    if not args.lock and (args.roots, args.packages, len(systems)) != (40, 225, 3):
        print("(the target is stated for 40 roots, about 225 packages per system, 3 systems)")

    if args.json:
        options: dict[str, Any] = (
            {"lock": str(args.lock), "revision": lock.revision}
            if args.lock
            else {"roots": args.roots, "packages": args.packages, "seed": args.seed}
        )
        report = {
            "machci": __version__,
            "revision": git_revision(),
            "nix": nix_version,
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "options": {**options, "systems": list(systems), "runs": args.runs},
            "lock": shape,
            "stand-in": f"{STAND_IN.relative_to(REPO)}, written by {stand_in_source}",
            "default.nix": {
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "render seconds": render_seconds,
                "entries": entries,
                "files bytes": files_bytes,
                "systems bytes": per_system_bytes,
                "links bytes": links_bytes,
            },
            "parse": parse.times,
            "env": {
                system: {
                    "times": series[system].times,
                    "readonly times": readonly[system].times,
                    "drv in the store before run 1": present.get(system),
                    "median": statistics.median(series[system].times),
                    "drv": drvs[system],
                    "closure drvs": closures[system],
                    "stats": stats[system],
                }
                for system in systems
            },
            "target seconds": TARGET_SECONDS,
            "verdict": verdict,
        }
        if sweeps is not None:
            report["sizes"] = {k: [r.to_json() for r in v] for k, v in sweeps.items()}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
