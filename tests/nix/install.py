"""Builder of the stand-in buildPythonPackage: the phases nixpkgs' hooks run, with their checks.

Runs under the host Python as a Nix builder; the derivation's attributes arrive as environment
variables. What runs is decided by the hooks among the native build inputs, as in nixpkgs (each
stand-in hook carries a marker file naming it), in stdenv's phase order:
- unpack: `unpackPhase` if given (run by /bin/sh), else wheelUnpackHook (`dist/<store name>`) or
  unpackFile (by the store name's extension); then stdenv's patchPhase (`patches`, `postPatch`);
- pypaBuildHook: pypa/build's check that the static and the backend's dynamic build requirements
  are installed (recursively, as `--no-isolation` without `--skip-dependency-check` does), then
  the backend's build_wheel, run isolated from the host (`-I -S`);
- pythonRuntimeDepsCheckHook (unless `dontCheckRuntimeDeps`), markers evaluated for the
  interpreter the package is built for;
- pypaInstallHook: the `installer` library that the hook propagates installs every
  `dist/*.whl` (entry points, `.data` schemes, bytecode); format "other" runs `installPhase`;
  pythonRemoveTestsDirHook; then `postInstall`;
- pythonMetadataCheckHook (`pyproject = true` only, unless `dontCheckPythonMetadata`);
- fixup: wrapPythonPrograms, then autoPatchelfHook (when it is in nativeBuildInputs), as
  auto-patchelf.py;
- installCheck (`doInstallCheck`): `installCheckPhase`; then pythonImportsCheckHook (every
  module of `pythonImportsCheck` imports from the output) and pytestCheckHook's pytest.
Two builds stand in for sources the stand-in does not have: nixpkgs' own build tools copy the
host's installed distribution (`standInHostDistribution`), and their bootstrap variants
(`standInBootstrapOf`) need a source tree as `src`, as flit_core.wheel does.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from packaging.markers import default_environment
from packaging.metadata import Metadata, parse_email
from packaging.requirements import Requirement
from packaging.version import Version

ENV = os.environ
OUT = Path(ENV["out"])
SITE = ENV["sitePackages"]

BACKEND_CALL = """
import json, sys
sys.path[:0] = {path!r}
module, _, attr = {backend!r}.partition(":")
backend = __import__(module, fromlist=["_"])
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
if {hook!r} == "get_requires_for_build_wheel":
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    print(json.dumps(hook({{}}) if hook else []))
else:
    print(json.dumps(backend.build_wheel({out!r})))
"""


def fail(message: str) -> None:
    sys.exit(f"stand-in buildPythonPackage {ENV['name']}: {message}")


def paths(variable: str) -> list[str]:
    return ENV.get(variable, "").split()


def propagated_closure(roots: list[str]) -> list[str]:
    """The inputs and what they propagate, in the order of stdenv's findInputs: each input, then
    (depth first) what its propagated-build-inputs list."""
    seen: dict[str, None] = {}

    def visit(path: str) -> None:
        if path in seen:
            return
        seen[path] = None
        listed = Path(path, "nix-support", "propagated-build-inputs")
        if listed.is_file():
            for child in listed.read_text().split():
                visit(child)

    for root in roots:
        visit(root)
    return list(seen)


def python_path() -> list[str]:
    """PYTHONPATH as the build sees it: what the derivation set, then what the interpreter's
    setup hook appends, every input with site-packages in findInputs' order. The first
    distribution of a name on it is the one imported and the one pypa/build's check finds."""
    given = [p for p in ENV.get("PYTHONPATH", "").split(":") if p]
    inputs = paths("nativeBuildInputs") + paths("buildInputs") + paths("propagatedBuildInputs")
    return given + [f"{p}/{SITE}" for p in propagated_closure(inputs) if Path(p, SITE).is_dir()]


def marker_environment() -> dict[str, str]:
    """The marker environment of the interpreter the package is built for, not the host's."""
    full = ENV["standInPythonVersion"]
    environment = {key: str(value) for key, value in default_environment().items()}
    environment["python_version"] = ".".join(full.split(".")[:2])
    environment["python_full_version"] = full
    return environment


def stand_in_hooks() -> dict[str, Path]:
    """The stand-in hooks among the native build inputs, by the name in their marker file."""
    found: dict[str, Path] = {}
    for path in paths("nativeBuildInputs"):
        marker = Path(path, "nix-support", "stand-in-hook")
        if marker.is_file():
            found.setdefault(marker.read_text().strip(), Path(path))
    return found


def search_path() -> str:
    """stdenv's PATH with strictDeps (buildPythonPackage's default): the `bin` of every native
    build input and of what it propagates; then coreutils, which are the host's here (no
    sandbox)."""
    native = propagated_closure(paths("nativeBuildInputs"))
    return ":".join([f"{p}/bin" for p in native if Path(p, "bin").is_dir()] + ["/usr/bin", "/bin"])


def run_phase(script: str, work: Path, extra: str = "") -> None:
    """A shell phase as stdenv runs it, with runHook as a no-op."""
    prelude = "runHook() { :; }\n" + extra
    env = {**ENV, "PATH": search_path()}
    subprocess.run(["/bin/sh", "-ec", prelude + script], cwd=work, check=True, env=env)


def patch(tree: Path) -> None:
    """stdenv's patchPhase: each of `patches` with `patch -p1`, then `postPatch`."""
    for patch_file in paths("patches"):
        with Path(patch_file).open("rb") as handle:
            subprocess.run(["/usr/bin/patch", "-p1"], stdin=handle, cwd=tree, check=True)
    if ENV.get("postPatch"):
        run_phase(ENV["postPatch"], tree)


def strip_hash(path: str) -> str:
    return Path(path).name.split("-", 1)[1]


def unpack(work: Path, wheel_unpack_hook: bool) -> Path:
    src = ENV["src"]
    if ENV.get("unpackPhase"):
        run_phase(ENV["unpackPhase"], work)
    elif wheel_unpack_hook:
        (work / "dist").mkdir()
        shutil.copy(src, work / "dist" / strip_hash(src))
    elif Path(src).is_dir():
        # stdenv's unpackFile copies a directory (a path, a git checkout) and makes it writable.
        shutil.copytree(src, work / strip_hash(src), symlinks=True)
        for path in (work / strip_hash(src)).rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
    else:
        name = strip_hash(src)
        if name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
            with tarfile.open(src) as archive:
                archive.extractall(work, filter="data")
        elif name.endswith(".zip"):
            with zipfile.ZipFile(src) as archive:
                archive.extractall(work)
        else:
            fail(f"do not know how to unpack source archive {src}")
    trees = [p for p in work.iterdir() if p.is_dir() and p.name != "dist"]
    return trees[0] if len(trees) == 1 else work


def installed(name: str, search: list[str]) -> importlib.metadata.Distribution | None:
    """The first distribution named `name` on the search path, as importlib.metadata finds it."""
    return next(iter(importlib.metadata.distributions(name=name, path=search)), None)


def check_dependency(
    text: str,
    search: list[str],
    ancestors: tuple[str, ...] = (),
    extras: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, ...]]:
    """pypa/build's check_dependency: unmet requirements, with the chain that needs them."""
    requirement = Requirement(text)
    normalised = str(requirement)
    if normalised in ancestors:
        return
    if requirement.marker and all(
        not requirement.marker.evaluate({**marker_environment(), "extra": e})
        for e in frozenset({""}) | extras
    ):
        return
    found = installed(requirement.name, search)
    if found is None or (
        requirement.specifier
        and not requirement.specifier.contains(found.version, prereleases=True)
    ):
        yield (*ancestors, normalised)
    else:
        for other in found.requires or []:
            yield from check_dependency(
                other, search, (*ancestors, normalised), frozenset(requirement.extras)
            )


def backend_call(tree: Path, backend: str, path: list[str], hook: str, out: str = "") -> object:
    code = BACKEND_CALL.format(path=path, backend=backend, hook=hook, out=out)
    result = subprocess.run(
        [ENV["builder"], "-I", "-S", "-c", code],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        env={**ENV, "PATH": search_path()},
    )
    if result.returncode != 0:
        fail(f"the build backend failed in {hook}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def pypa_build(tree: Path, work: Path) -> None:
    table = tomllib.loads((tree / "pyproject.toml").read_text()).get("build-system", {})
    backend = table.get("build-backend", "setuptools.build_meta:__legacy__")
    search = python_path()
    path = [str(tree / p) for p in table.get("backend-path", [])] + search
    requires = list(table.get("requires", ["setuptools>=40.8.0"]))
    dynamic = backend_call(tree, backend, path, "get_requires_for_build_wheel")
    assert isinstance(dynamic, list)
    for stage in (requires, dynamic):
        missing = [chain for r in stage for chain in check_dependency(r, search)]
        if missing:
            fail(
                "ERROR Missing dependencies:\n" + "\n".join("\t" + " -> ".join(m) for m in missing)
            )
    (work / "dist").mkdir(exist_ok=True)
    backend_call(tree, backend, path, "build_wheel", str(work / "dist"))


def wheel_metadata(wheel: Path) -> Metadata:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        raw, _ = parse_email(archive.read(name).decode())
    return Metadata.from_raw(raw, validate=False)


def check_runtime_deps(wheel: Path) -> None:
    """pythonRuntimeDepsCheckHook: each Requires-Dist that applies must be importable."""
    search = python_path()
    errors = []
    for requirement in wheel_metadata(wheel).requires_dist or []:
        if requirement.marker and not requirement.marker.evaluate(marker_environment()):
            continue
        found = next(
            iter(importlib.metadata.distributions(name=requirement.name, path=search)), None
        )
        if found is None:
            errors.append(f"  - {requirement.name} not installed")
        elif requirement.specifier and not requirement.specifier.contains(
            found.version, prereleases=True
        ):
            errors.append(
                f"  - {requirement.name}{requirement.specifier} not satisfied by version"
                f" {found.version}"
            )
    if errors:
        fail("pythonRuntimeDepsCheck found unmet dependencies:\n" + "\n".join(errors))


def install(wheel: Path, hook: Path) -> None:
    """pypaInstallHook: the `installer` the hook propagates installs the wheel, into the schemes
    of the interpreter the package is built for (`installer --prefix $out`): entry points become
    scripts in bin/, every `.data` scheme is installed, unknown ones are refused, and bytecode is
    compiled at installer's default levels."""
    tools = [p for p in propagated_closure([str(hook)]) if Path(p, SITE).is_dir()]
    if not tools:
        fail("pypaInstallHook: its installer has no site-packages")
    sys.path[:0] = [f"{p}/{SITE}" for p in tools]
    from installer import install as run_installer
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    short = ".".join(ENV["standInPythonVersion"].split(".")[:2])
    try:
        with WheelFile.open(wheel) as source:
            schemes = {
                "purelib": str(OUT / SITE),
                "platlib": str(OUT / SITE),
                "headers": str(OUT / "include" / f"python{short}" / source.distribution),
                "scripts": str(OUT / "bin"),
                "data": str(OUT),
            }
            destination = SchemeDictionaryDestination(
                scheme_dict=schemes,
                interpreter=ENV["standInInterpreter"],
                script_kind="posix",
                bytecode_optimization_levels=[0, 1],
            )
            run_installer(source, destination, {})
    except (InstallerError, ValueError) as exc:
        fail(f"installer: {type(exc).__name__}: {exc}")


def check_metadata() -> None:
    """pythonMetadataCheckHook: a dist named `pname` is installed, at version `version`."""
    pname, version = ENV["pname"], ENV["version"]
    found = installed(pname, [str(OUT / SITE)])
    if found is None:
        fail(f"PackageNotFoundError: No package metadata was found for {pname}")
    elif Version(found.version) != Version(version):
        fail(f"metadata version {found.version} does not match the derivation's {version}")


def elf_header(path: Path) -> tuple[int, int] | None:
    """(e_machine, EI_OSABI) of an ELF file, None for anything else (auto-patchelf.py reads
    them with pyelftools' get_machine_arch and e_ident)."""
    with path.open("rb") as handle:
        head = handle.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big"), head[7]


def osabi_compatible(wanted: int, got: int) -> bool:
    """auto-patchelf.py's osabi_are_compatible: SYSV (0) goes with anything."""
    return wanted == 0 or got == 0 or wanted == got


def elf_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and elf_header(path) is not None
    )


def shared_objects(directory: Path, recursive: bool) -> list[Path]:
    """auto-patchelf.py's glob of `*.so*`: non-recursive for --libs directories."""
    if not directory.is_dir():
        return []
    found = directory.rglob("*.so*") if recursive else directory.glob("*.so*")
    return sorted(p for p in found if p.is_file())


class LibraryCache:
    """auto-patchelf.py's soname cache: (file name, ELF machine) -> [(directory, OSABI)], the
    output's own libraries first; each library's RUNPATH/RPATH directories are searched in
    turn. Libraries are matched by file name and machine, never by DT_SONAME."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int], list[tuple[str, int]]] = {}

    def populate(self, directories: list[Path], recursive: bool) -> None:
        todo = list(directories)
        seen: set[Path] = set()
        while todo:
            directory = todo.pop(0)
            if directory in seen:
                continue
            seen.add(directory)
            for library in shared_objects(directory, recursive):
                header = elf_header(library.resolve())
                if header is None:
                    continue
                machine, osabi = header
                key = (library.name, machine)
                self.entries.setdefault(key, []).append((str(library.resolve().parent), osabi))
                todo.extend(Path(d) for d in run_paths(library) if "$ORIGIN" not in d)

    def find(self, name: str, machine: int, osabi: int) -> str | None:
        for directory, got in self.entries.get((name, machine), []):
            if osabi_compatible(osabi, got):
                return directory
        return None


def run_paths(library: Path) -> list[str]:
    printed = subprocess.run(
        [ENV["patchelf"], "--print-rpath", str(library)], capture_output=True, text=True
    ).stdout.strip()
    return [d for d in printed.split(":") if d]


def search_roots(listed: list[str]) -> list[Path]:
    """addAutoPatchelfSearchPath: every directory under the roots that holds a `*.so*` file
    (its `find` recurses unless --no-recurse)."""
    directories: list[Path] = []
    recurse = True
    for argument in listed:
        if argument == "--no-recurse":
            recurse = False
            continue
        for library in shared_objects(Path(argument), recurse):
            if library.parent not in directories:
                directories.append(library.parent)
    return directories


def auto_patchelf(work: Path) -> None:
    """autoPatchelfHook in postFixup: the output's libraries (recursively, first), each input's
    `lib/` (not recursively) and the addAutoPatchelfSearchPath directories of `preFixup`;
    files for another machine than the build's are skipped, as auto-patchelf.py skips them."""
    hooks = [Path(p, "nix-support", "stand-in-hook") for p in paths("nativeBuildInputs")]
    if not any(h.is_file() and h.read_text().strip() == "auto-patchelf-hook" for h in hooks):
        return
    if elf_files(OUT) and not ENV.get("patchelf"):
        fail("the output has ELF files, but the stand-in was given no patchelf")
    roots_file = work / "search-roots"
    roots_file.touch()
    if ENV.get("preFixup"):
        helper = f'addAutoPatchelfSearchPath() {{ printf "%s\\n" "$@" >> {roots_file}; }}\n'
        run_phase(ENV["preFixup"], work, helper)
    inputs = propagated_closure(paths("buildInputs") + paths("propagatedBuildInputs"))
    stubs = {p for p in inputs if Path(p, "nix-support", "stand-in-system-libraries").is_file()}
    system = {child.name for p in stubs for child in Path(p, "lib").iterdir()}
    cache = LibraryCache()
    cache.populate([OUT], recursive=True)
    library_dirs = [Path(p, "lib") for p in inputs if p not in stubs]
    cache.populate(library_dirs + search_roots(roots_file.read_text().split()), recursive=False)
    host = elf_header(Path(ENV["builder"]).resolve())
    assert host is not None
    ignored = paths("autoPatchelfIgnoreMissingDeps")
    missing = []
    for elf in elf_files(OUT):
        header = elf_header(elf)
        assert header is not None
        machine, osabi = header
        if machine != host[0] or not osabi_compatible(host[1], osabi):
            print(f"skipping {elf} because its architecture differs", file=sys.stderr)
            continue
        needed = subprocess.run(
            [ENV["patchelf"], "--print-needed", str(elf)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        rpath: list[str] = []
        for library in needed:
            directory = cache.find(library, machine, osabi)
            if directory is not None:
                if directory not in rpath:
                    rpath.append(directory)
            elif library in system:
                continue
            elif any(fnmatch.fnmatch(library, pattern) for pattern in ignored):
                print(
                    f"warn: auto-patchelf ignoring missing {library} wanted by {elf}",
                    file=sys.stderr,
                )
            else:
                missing.append(
                    f"auto-patchelf could not satisfy dependency {library} wanted by {elf}"
                )
        if rpath:
            subprocess.run([ENV["patchelf"], "--set-rpath", ":".join(rpath), str(elf)], check=True)
    if missing:
        fail("\n".join(missing))


def copy_host_distribution(name: str) -> None:
    """nixpkgs' build of one of its tools, played by the host's installed distribution."""
    distribution = importlib.metadata.distribution(name)
    root = Path(str(distribution.locate_file(""))).resolve()
    for file in distribution.files or []:
        source = Path(str(distribution.locate_file(file))).resolve()
        if not source.is_relative_to(root) or "__pycache__" in source.parts:
            continue  # scripts outside site-packages; bytecode of the host's own runs
        target = OUT / SITE / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def bootstrap(name: str) -> None:
    """bootstrap/{flit-core,installer,build,packaging}: `src` is the set's package's, built with
    flit_core.wheel, which needs a source tree; a wheel there fails as it fails in nixpkgs."""
    src = ENV["src"]
    if not name or not Path(src).is_file() or src.endswith(".whl") or "-source" not in src:
        fail(f"flit_core.wheel: {src} is not a source tree (no pyproject.toml)")
    copy_host_distribution(name)


def checks(tree: Path, hooks: dict[str, Path]) -> None:
    """installCheckPhase (buildPythonPackage's `checkPhase`) when `doInstallCheck`; then the
    preDistPhases the hooks add: pythonImportsCheckPhase, and pytestCheckHook's pytest (from the
    source tree, against the output and the build's inputs) unless an installCheckPhase is set.
    pytestCheckHook does not look at doCheck: it is an input only through nativeCheckInputs."""
    if ENV.get("doInstallCheck") and ENV.get("installCheckPhase"):
        run_phase(ENV["installCheckPhase"], tree)
    if "python-imports-check-hook" in hooks:
        imports_check(tree)
    if "pytest-check-hook" in hooks and not ENV.get("installCheckPhase"):
        isolated_python(["-m", "pytest", "-p", "no:cacheprovider"], tree)


def imports_check(tree: Path) -> None:
    """pythonImportsCheckHook: each module of `pythonImportsCheck` imports from the output."""
    for module in paths("pythonImportsCheck"):
        isolated_python(["-c", f"import {module}"], tree)


def isolated_python(arguments: list[str], cwd: Path) -> None:
    """The host interpreter with none of the host's packages: the output, then PYTHONPATH."""
    search = [str(OUT / SITE), *python_path()]
    code = f"import sys, runpy; sys.path[:0] = {search!r}; "
    if arguments[0] == "-c":
        command = [ENV["builder"], "-I", "-S", "-c", code + arguments[1]]
    else:
        module, rest = arguments[1], arguments[2:]
        command = [
            ENV["builder"],
            "-I",
            "-S",
            "-c",
            code + f"sys.argv[:] = [{module!r}, *{rest!r}]; runpy.run_module({module!r},"
            " run_name='__main__', alter_sys=True)",
        ]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        fail(f"{' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")


def build_and_install(work: Path, hooks: dict[str, Path]) -> Path:
    """unpack, patch, build and install, as the hooks of the package's format do."""
    tree = unpack(work, "wheel-unpack-hook" in hooks)
    patch(tree)
    if "pypa-build-hook" in hooks:
        pypa_build(tree, work)
    elif "setuptools-build-hook" in hooks:
        fail('the stand-in does not build format = "setuptools"')
    wheels = sorted((work / "dist").glob("*.whl")) if (work / "dist").is_dir() else []
    if "python-runtime-deps-check-hook" in hooks and not ENV.get("dontCheckRuntimeDeps"):
        for wheel in wheels:
            check_runtime_deps(wheel)
    if "pypa-install-hook" in hooks:
        if not wheels:
            fail("no wheel in dist/")
        for wheel in wheels:
            install(wheel, hooks["pypa-install-hook"])
    elif ENV.get("installPhase"):
        run_phase(ENV["installPhase"], tree)
    else:
        fail(f"format {ENV['pythonFormat']} has no install hook and no installPhase")
    if "python-remove-tests-dir-hook" in hooks:
        for tests in ("tests", "test"):
            shutil.rmtree(OUT / SITE / tests, ignore_errors=True)
    if ENV.get("postInstall"):
        run_phase(ENV["postInstall"], tree)
    return tree


def wrap_python_programs() -> None:
    """wrapPythonPrograms (postFixup, unless dontWrapPythonPrograms; wrap.sh): every executable
    of bin/ becomes `.NAME-wrapped`, a Python script with the package's own site-packages put on
    sys.path after its shebang, and NAME a wrapper that runs it. Both name the package's store
    path, so two packages' scripts of one name always differ, as in nixpkgs."""
    bin_dir = OUT / "bin"
    if ENV.get("dontWrapPythonPrograms") or not bin_dir.is_dir():
        return
    for program in sorted(bin_dir.iterdir()):
        if (
            program.name.startswith(".")
            or not program.is_file()
            or not program.stat().st_mode & 0o111
        ):
            continue
        wrapped = bin_dir / f".{program.name}-wrapped"
        data = program.read_bytes()
        head, newline, rest = data.partition(b"\n")
        if head.startswith(b"#!") and b"python" in head:
            site = (
                f"import sys;import site;import functools;sys.argv[0] = {str(program)!r};"
                f"functools.reduce(lambda k, p: site.addsitedir(p, k), [{str(OUT / SITE)!r}],"
                " site._init_pathinfo());\n"
            )
            data = head + newline + site.encode() + rest
        wrapped.write_bytes(data)
        wrapped.chmod(0o755)
        program.write_text(f'#!/bin/sh\nexec "{wrapped}" "$@"\n')
        program.chmod(0o755)


def main() -> None:
    support = OUT / "nix-support"
    if "standInHostDistribution" in ENV or "standInBootstrapOf" in ENV:
        if "standInBootstrapOf" in ENV:
            bootstrap(ENV["standInBootstrapOf"])
        else:
            copy_host_distribution(ENV["standInHostDistribution"])
        support.mkdir(parents=True, exist_ok=True)
        (support / "propagated-build-inputs").write_text(" ".join(paths("propagatedBuildInputs")))
        return
    hooks = stand_in_hooks()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = build_and_install(work, hooks)
        if (
            ENV.get("pythonPyproject")
            and not ENV.get("dontCheckPythonMetadata")
            and "unstable-" not in ENV["version"]
        ):
            check_metadata()
        support.mkdir(parents=True, exist_ok=True)
        (support / "propagated-build-inputs").write_text(" ".join(paths("propagatedBuildInputs")))
        wrap_python_programs()
        auto_patchelf(work)
        checks(tree, hooks)


main()
