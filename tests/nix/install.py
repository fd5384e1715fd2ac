"""Builder of the stand-in buildPythonPackage: the phases nixpkgs' hooks run, with their checks.

Runs under the host Python as a Nix builder; the derivation's attributes arrive as environment
variables. In order, as nixpkgs runs them:
- unpack: `unpackPhase` if given (run by /bin/sh), else wheelUnpackHook (`dist/<store name>`) or
  unpackFile (by the store name's extension); then stdenv's patchPhase (`patches`, `postPatch`);
- pypaBuildHook for `pyproject`: pypa/build's check that the static and the backend's dynamic
  build requirements are installed (recursively, as `--no-isolation` without
  `--skip-dependency-check` does), then the backend's build_wheel;
- pythonRuntimeDepsCheckHook (formats wheel and pyproject, unless `dontCheckRuntimeDeps`);
- pypaInstallHook: install every `dist/*.whl` (its file name must parse as a wheel's) and
  compile its bytecode; pythonRemoveTestsDirHook; then `postInstall`;
- pythonMetadataCheckHook (`pyproject = true` only, unless `dontCheckPythonMetadata`);
- autoPatchelfHook (when it is in nativeBuildInputs): every ELF file's DT_NEEDED must be found
  in the output, the inputs' `lib/` or the `addAutoPatchelfSearchPath` roots of `preFixup`,
  unless it matches `autoPatchelfIgnoreMissingDeps`; RPATHs are then set with patchelf.
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

from packaging.metadata import Metadata, parse_email
from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
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
    """The inputs and what they propagate, as stdenv's setup does with propagated-build-inputs."""
    seen: dict[str, None] = {}
    todo = list(roots)
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen[path] = None
        listed = Path(path, "nix-support", "propagated-build-inputs")
        if listed.is_file():
            todo.extend(listed.read_text().split())
    return list(seen)


def python_path() -> list[str]:
    """What the interpreter's setup hook puts on PYTHONPATH: every input with site-packages."""
    inputs = paths("nativeBuildInputs") + paths("buildInputs") + paths("propagatedBuildInputs")
    return [f"{p}/{SITE}" for p in propagated_closure(inputs) if Path(p, SITE).is_dir()]


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


def unpack(work: Path) -> Path:
    src = ENV["src"]
    if ENV.get("unpackPhase"):
        run_phase(ENV["unpackPhase"], work)
    elif ENV["pythonFormat"] == "wheel":
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
        not requirement.marker.evaluate({"extra": e}) for e in frozenset({""}) | extras
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
        [ENV["builder"], "-I", "-c", code],
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
        if requirement.marker and not requirement.marker.evaluate():
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


def install(wheel: Path) -> None:
    """pypaInstallHook: `installer` refuses files whose name does not parse as a wheel's."""
    try:
        parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        fail(f"installer: {exc}")
    site = OUT / SITE
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            head, _, rest = member.partition("/")
            if head.endswith(".data") and rest.startswith("scripts/"):
                target = OUT / "bin" / rest.removeprefix("scripts/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
                target.chmod(0o755)
            elif head.endswith(".data"):
                continue
            else:
                archive.extract(member, site)


def check_metadata() -> None:
    """pythonMetadataCheckHook: a dist named `pname` is installed, at version `version`."""
    pname, version = ENV["pname"], ENV["version"]
    found = installed(pname, [str(OUT / SITE)])
    if found is None:
        fail(f"PackageNotFoundError: No package metadata was found for {pname}")
    elif Version(found.version) != Version(version):
        fail(f"metadata version {found.version} does not match the derivation's {version}")


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def library_dirs(roots: list[str]) -> dict[str, str]:
    """Shared-object file name -> its directory, searched recursively (first one wins)."""
    found: dict[str, str] = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and (path.name.endswith(".so") or ".so." in path.name):
                found.setdefault(path.name, str(path.parent))
    return found


def auto_patchelf(work: Path) -> None:
    hooks = [Path(p, "nix-support", "stand-in-hook") for p in paths("nativeBuildInputs")]
    if not any(h.is_file() and h.read_text().strip() == "auto-patchelf-hook" for h in hooks):
        return
    roots_file = work / "search-roots"
    roots_file.touch()
    if ENV.get("preFixup"):
        helper = f'addAutoPatchelfSearchPath() {{ printf "%s\\n" "$@" >> {roots_file}; }}\n'
        run_phase(ENV["preFixup"], work, helper)
    inputs = propagated_closure(paths("buildInputs") + paths("propagatedBuildInputs"))
    stubs = {p for p in inputs if Path(p, "nix-support", "stand-in-system-libraries").is_file()}
    system = {child.name for p in stubs for child in Path(p, "lib").iterdir()}
    real_inputs = [f"{p}/lib" for p in inputs if Path(p, "lib").is_dir() and p not in stubs]
    found = library_dirs([str(OUT)])
    for name, directory in library_dirs(real_inputs + roots_file.read_text().split()).items():
        found.setdefault(name, directory)
    ignored = paths("autoPatchelfIgnoreMissingDeps")
    missing = []
    for elf in elf_files(OUT):
        if not ENV.get("patchelf"):
            fail(f"{elf} is an ELF file, but the stand-in was given no patchelf")
        needed = subprocess.run(
            [ENV["patchelf"], "--print-needed", str(elf)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        rpath: list[str] = []
        for library in needed:
            if library in found:
                if found[library] not in rpath:
                    rpath.append(found[library])
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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = unpack(work)
        patch(tree)
        form = ENV["pythonFormat"]
        if form == "pyproject":
            pypa_build(tree, work)
        elif form != "wheel":
            fail(f"unsupported format {form}")
        wheels = sorted((work / "dist").glob("*.whl"))
        if not wheels:
            fail("no wheel in dist/")
        if not ENV.get("dontCheckRuntimeDeps"):
            for wheel in wheels:
                check_runtime_deps(wheel)
        for wheel in wheels:
            install(wheel)
        for tests in ("tests", "test"):  # pythonRemoveTestsDirHook
            shutil.rmtree(OUT / SITE / tests, ignore_errors=True)
        # installer compiles bytecode, which records each file's own store path.
        subprocess.run([ENV["builder"], "-m", "compileall", "-q", str(OUT / SITE)], check=True)
        if ENV.get("postInstall"):
            run_phase(ENV["postInstall"], tree)
        if (
            ENV.get("pythonPyproject")
            and not ENV.get("dontCheckPythonMetadata")
            and "unstable-" not in ENV["version"]
        ):
            check_metadata()
        support = OUT / "nix-support"
        support.mkdir(parents=True, exist_ok=True)
        (support / "propagated-build-inputs").write_text(" ".join(paths("propagatedBuildInputs")))
        auto_patchelf(work)


main()
