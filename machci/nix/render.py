"""Lock → the body of default.nix: pure, deterministic text in nixfmt (RFC 166) layout.

The generated expression needs nothing but nixpkgs' own API (`fetchurl`, `buildPythonPackage`,
`withPackages`, `mkShell`, `dockerTools.buildLayeredImage`, `autoPatchelfHook`,
`pythonManylinuxPackages`) and uses only `builtins`, so evaluating it is plain, fast Nix.

How it meets nixpkgs' builder (mk-python-derivation.nix) is explained in the README's section on
the generated file; the short version: no Python dependency is an input of any package's
derivation (so cycles evaluate), each package instead carries its runtime closure in
`passthru.requiredPythonModules`, which is what `python.withPackages` follows.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from machci.config.model import Image, PackageOverride, is_script_attribute
from machci.inputs.rlang import BUILT_WITH_R
from machci.lock.graph import library_sources, nixpkgs_inputs
from machci.lock.model import EXCLUDED, Lock, LockedPackage
from machci.nix.escape import attr, relative_path, string

# Shared libraries that only the machine's GPU driver provides: nixpkgs' own torch-bin leaves
# libcuda.so.1 unresolved for the same reason (it must come from /run/opengl-driver at run time).
DEFAULT_IGNORED_LIBRARIES = ("libcuda.so.1",)
# The oldest nixpkgs release whose Python builder the generated file fits: 24.05 is the first
# whose buildPythonPackage takes `dependencies` and `build-system` (PEP 621 names), and whose
# overrideAttrs layers survive overridePythonAttrs (python-packages-base.nix).
OLDEST_NIXPKGS = "24.05"

# What nixpkgs accepts as a derivation name (lib.strings.sanitizeDerivationName).
_STORE_NAME = re.compile(r"[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*")
_STORE_NAME_MAX = 207
_DERIVATION_NAME_MAX = 190
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".whl")


@dataclass(frozen=True)
class RenderOptions:
    python: str = "3.12"
    image: Image = field(default_factory=Image)
    ignored_libraries: tuple[str, ...] = ()  # on top of DEFAULT_IGNORED_LIBRARIES
    overrides: tuple[PackageOverride, ...] = ()  # paths already relative to the output
    overlays_pre: tuple[str, ...] = ()  # Nix files, relative to the output's directory
    overlays_post: tuple[str, ...] = ()
    ignore_collisions: bool = False
    r_packages: tuple[str, ...] | None = None  # nixpkgs rPackages names; None: no R

    @property
    def python_attr(self) -> str:
        return python_attr(self.python)


def python_attr(version: str) -> str:
    """nixpkgs' attribute of the CPython X.Y interpreter, e.g. python312."""
    return "python" + version.replace(".", "")


def sri(sha256_hex: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def store_name(filename: str) -> str:
    """The fetch's store name: the file name itself when nixpkgs accepts it, so store paths
    match other tools' fetches; else a valid name that keeps the archive suffix (unpacking goes
    by it) and a digest of the real name (so two files never share one)."""
    if _STORE_NAME.fullmatch(filename) and len(filename) <= _STORE_NAME_MAX:
        return filename
    suffix = next((s for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), "")
    stem = re.sub(r"[^A-Za-z0-9+._?=-]", "_", filename[: len(filename) - len(suffix)])
    tag = hashlib.sha256(filename.encode()).hexdigest()[:12]
    keep = _STORE_NAME_MAX - len(suffix) - len(tag) - 1
    return f"{stem[:keep].lstrip('.') or 'file'}-{tag}{suffix}"


def derivation_name(name: str, version: str) -> str | None:
    """The `name` to give buildPythonPackage when its default, `<pname>-<version>`, would not
    make a store path: a character Nix refuses (an epoch's `!`), or too long once nixpkgs adds
    `python3.XX-` before it and `-dist` after it (Nix allows 211 characters)."""
    default = f"{name}-{version}"
    if _STORE_NAME.fullmatch(default) and len(default) <= _DERIVATION_NAME_MAX:
        return None
    clean = re.sub(r"[^A-Za-z0-9+._?=-]", "_", default)
    if len(clean) <= _DERIVATION_NAME_MAX:
        return clean
    tag = hashlib.sha256(default.encode()).hexdigest()[:12]
    return f"{clean[: _DERIVATION_NAME_MAX - len(tag) - 1]}-{tag}"


def is_binary_wheel(filename: str) -> bool:
    """A wheel with compiled code (its platform tag is not "any") needs patching on Linux."""
    if not filename.endswith(".whl"):
        return False
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False  # only a hand-made lock can hold one; nothing to patch in it
    return any(tag.platform != "any" for tag in tags)


class Writer:
    """Indentation-aware line builder (two spaces per level, as nixfmt)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("  " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        self.line(text)
        self.depth += 1

    def close(self, text: str) -> None:
        self.depth -= 1
        self.line(text)

    def list(self, prefix: str, items: Iterable[str], suffix: str = ";") -> None:
        """`prefix [ a ]` on one line for one item, else one item per line (as nixfmt)."""
        values = list(items)
        if not values:
            self.line(f"{prefix}[ ]{suffix}")
        elif len(values) == 1:
            self.line(f"{prefix}[ {values[0]} ]{suffix}")
        else:
            self.open(f"{prefix}[")
            for value in values:
                self.line(value)
            self.close(f"]{suffix}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _package(w: Writer, package: LockedPackage, links: Mapping[str, tuple[str, ...]]) -> None:
    """One package's data; `links` are its derivation inputs besides files (see lock/graph.py)."""
    w.open(f"{attr(package.name)} = {{")
    w.line(f"version = {string(package.version)};")
    w.line(f"provider = {string(package.provider)};")
    if package.source is not None:
        if (drv_name := derivation_name(package.name, package.version)) is not None:
            w.line(f"drv-name = {string(drv_name)};")
        w.line(f"source = {string(package.name)};")
    elif package.file is None:
        w.line(f"attr = {string(package.attr or package.name)};")
    else:
        if (drv_name := derivation_name(package.name, package.version)) is not None:
            w.line(f"drv-name = {string(drv_name)};")
        w.line(f"file = {string(package.file.filename)};")
        w.line(f"binary = {'true' if is_binary_wheel(package.file.filename) else 'false'};")
    w.list("dependencies = ", (string(d) for d in package.dependencies))
    w.list("build-system = ", (string(d) for d in package.build_requires))
    for key, names in links.items():
        if names:
            w.list(f"{key} = ", (string(d) for d in names))
    w.close("};")


# The value an absent attribute has for a `mod` override: a list for inputs and lists of
# names, a string for phases and hooks, else null.
_LIST_ATTRIBUTES = frozenset(
    {
        "dependencies",
        "build-system",
        "patches",
        "makeWrapperArgs",
        "pythonImportsCheck",
        "disabledTests",
        "disabledTestPaths",
        "outputs",
    }
)


def _absent(attribute: str) -> str:
    if attribute in _LIST_ATTRIBUTES or attribute.endswith(("Inputs", "Deps", "Dependencies")):
        return "[ ]"
    if is_script_attribute(attribute) or attribute.endswith("Flags"):
        return '""'
    return "null"


def _code(expression: str) -> str:
    """A user's Nix expression, parenthesised; a trailing comment cannot swallow the `)`."""
    if "\n" in expression or "#" in expression:
        return "(\n" + expression.rstrip("\n") + "\n)"
    return f"({expression})"


def _overrides(
    w: Writer, overrides: tuple[PackageOverride, ...], with_r: tuple[str, ...] = ()
) -> None:
    """mach-nix's `_` overrides from machci.yaml, as functions for overridePythonAttrs; those
    of `with_r` (built against R) wrapped in `withR`, which adds R before them."""
    w.line("# machci.yaml's overrides; `final`, `prev`, `pkgs`, `lib` and `python` are in scope.")
    own = {package.name: package for package in overrides}
    names = sorted({*own, *with_r})
    if not names:
        w.line("overrides = { };")
        return
    w.open("overrides = {")
    for name in names:
        wrapped = name in with_r
        package = own.get(name)
        if package is None:
            w.line(f"{attr(name)} = withR (final: prev: old: {{ }});")
            continue
        w.open(f"{attr(name)} = withR (" if wrapped else f"{attr(name)} =")
        w.open("final: prev: old: {")
        for item in package.attributes:
            key = attr(item.attribute)
            value = _code(item.expression) if item.is_nix else string(item.expression)
            if item.form == "add":
                text = f"{key} = add old {string(item.attribute)} {value};"
            elif item.form == "mod":
                text = f"{key} = {value} (old.{key} or {_absent(item.attribute)});"
            else:
                text = f"{key} = {value};"
            for line in text.split("\n"):
                w.lines.append(("  " * w.depth + line) if line else "")
        if wrapped:
            w.close("}")
            w.close(");")
        else:
            w.close("};")
            w.depth -= 1
    w.close("};")


_R = """\
# R with machci.yaml's rPackages (nixpkgs' rWrapper), wired to rpy2 as mach-nix did: a build
# input of rpy2, and on the environment's PATH with its R_HOME and its libraries.
R = pkgs.rWrapper.override { packages = rSelected; };
rSelected = map (
  name:
  pkgs.rPackages.${name}
    or (throw ("machci: this nixpkgs has no R package " + name + " (rPackages in machci.yaml)"))
) rPackages;
# The libraries of R's packages and of those they propagate: what R's setup hook puts on the
# wrapper's R_LIBS_SITE, for the R that rpy2 embeds, which reads the variable but not the wrapper.
rLibraries = map (entry: "${entry.key}/library") (
  builtins.genericClosure {
    startSet = rEntries (R.recommendedPackages ++ rSelected);
    operator =
      entry:
      rEntries (
        (entry.package.propagatedBuildInputs or [ ])
        ++ (entry.package.propagatedNativeBuildInputs or [ ])
      );
  }
);
rEntries =
  packages:
  map (package: {
    key = package.outPath;
    inherit package;
  }) (builtins.filter (package: package ? outPath) packages);
rEnvironment = [
  "--prefix"
  "PATH"
  ":"
  "${R}/bin"
  "--set"
  "R_HOME"
  "${R}/lib/R"
  "--prefix"
  "R_LIBS_SITE"
  ":"
  (builtins.concatStringsSep ":" rLibraries)
];
# R as a build input, under any override machci.yaml gives the package.
withR =
  f: final: prev: old:
  let
    withInput = old // {
      nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ [ R ];
    };
  in
  {
    inherit (withInput) nativeBuildInputs;
  }
  // f final prev withInput;"""


def _sources(w: Writer, lock: Lock) -> None:
    """packagesExtra's sources, pinned: a local tree (filtered to what makes the package), an
    archive by its sha256, a git commit."""
    sources = {p.name: p.source for s in lock.systems for p in s.packages if p.source}
    if not sources:
        w.line("sources = { };")
        return
    w.line("# Packages from outside the index (packagesExtra), pinned.")
    w.open("sources = {")
    for name in sorted(sources):
        source = sources[name]
        if source.kind == "path":
            w.open(f"{string(name)} = builtins.path {{")
            w.line(f"path = {relative_path(source.location)};")
            w.line(f"name = {string(store_name(name + '-source'))};")
            w.line("filter = sourceFilter;")
        elif source.kind == "url":
            assert source.sha256 is not None
            w.open(f"{string(name)} = pkgs.fetchurl {{")
            archive = source.archive or "source.tar.gz"
            w.line(f"name = {string(store_name(f'{name}-{archive}'))};")
            w.line(f"url = {string(source.location)};")
            w.line(f"hash = {string(sri(source.sha256))};")
        else:
            w.open(f"{string(name)} = builtins.fetchGit {{")
            w.line(f"url = {string(source.location)};")
            w.line(f"rev = {string(source.rev or '')};")
            w.line(f"ref = {string(source.ref)};" if source.ref else "allRefs = true;")
        w.close("};")
    w.close("};")
    w.open("sourceFilter =")
    w.line("path: type:")
    w.line("let")
    w.line("  name = baseNameOf path;")
    w.line("in")
    w.line('type != "symlink"')
    w.line(f"&& !(builtins.elem name [ {' '.join(string(n) for n in sorted(EXCLUDED))} ])")
    w.line('&& builtins.match ".*\\.egg-info" name == null;')
    w.depth -= 1


def _app(w: Writer, name: str) -> None:
    """The project's console scripts alone, each running in the whole environment."""
    w.open(f"app = pkgs.runCommand {string(store_name(name + '-app'))} {{ }} ''")
    w.line("mkdir -p $out/bin")
    w.open(f"for script in ${{packages.{attr(name)}}}/bin/*; do")
    w.line('[ -e "$script" ] || continue')
    w.line('ln -s "${env}/bin/$(basename "$script")" "$out/bin/"')
    w.close("done")
    w.close("'';")


_BUILDER = """\
isLinux = builtins.match ".*-linux" system != null;
# An `add` override: appended to a list, concatenated to a string.
add =
  old: key: value:
  let
    before = old.${key} or null;
  in
  if before == null then
    value
  else if builtins.isList before then
    before ++ value
  else
    before + value;
# The names reachable from `names` through runtime dependencies (cycles are fine here).
closure =
  names:
  map (item: item.key) (
    builtins.genericClosure {
      startSet = map (key: { inherit key; }) names;
      operator = item: map (key: { inherit key; }) lock.packages.${item.key}.dependencies;
    }
  );
# A package from the interpreter's own set, at the version the lock was made for. Its Python
# dependencies are machci's pins, so each name has one version in the whole environment.
fromNixpkgs =
  final: prev: name: p:
  let
    base =
      prev.${p.attr}
        or (throw ("machci: " + name + ": this nixpkgs has no Python package " + p.attr));
  in
  if base.version != p.version then
    throw (
      "machci: "
      + name
      + " was locked at nixpkgs' "
      + p.attr
      + " "
      + p.version
      + ", but this nixpkgs has "
      + base.version
      + "; write the index for this nixpkgs (machci nixpkgs-index) and run machci sync"
    )
  else
    base.overridePythonAttrs (old: {
      dependencies = map (d: final.${d}) (p.inputs-from or [ ]);
      # As mach-nix did: nixpkgs' tests are not run (their inputs need not be in the lock);
      # `overrides: {NAME: {doCheck: true}}` runs them.
      doCheck = false;
    });
buildLocked =
  ps: name: p:
  let
    src = if p ? source then sources.${p.source} else files.${p.file};
  in
  ps.buildPythonPackage (
    {
      pname = name;
      inherit (p) version;
      inherit src;
      # Python dependencies are not inputs of the build: a dependency cycle could not
      # evaluate. The lock already proves they fit, so nixpkgs' check of them is off.
      dontCheckRuntimeDeps = true;
    }
    // (if p ? drv-name then { name = p.drv-name; } else { })
    // (
      if p.provider == "wheel" then
        {
          format = "wheel";
        }
        // (
          # The wheel's store name is not its file name: install it under its real name.
          if src.name != p.file then
            {
              wheelFileName = p.file;
              unpackPhase = ''
                runHook preUnpack
                mkdir -p dist
                cp "$src" "dist/$wheelFileName"
                runHook postUnpack
              '';
            }
          else
            { }
        )
        // (
          if p.binary && isLinux then
            {
              nativeBuildInputs = [ pkgs.autoPatchelfHook ];
              buildInputs = pkgs.pythonManylinuxPackages.manylinux2014;
              autoPatchelfIgnoreMissingDeps = ignoredLibraries;
              # Shared libraries shipped inside other wheels (torch loads nvidia-*'s).
              preFixup = builtins.concatStringsSep "" (
                map (d: "addAutoPatchelfSearchPath ${ps.${d}}/${python.sitePackages}\n") (
                  p.libraries-from or [ ]
                )
              );
            }
          else
            { }
        )
      else
        let
          buildSystem = map (d: ps.${d}) (closure p.build-system);
        in
        {
          pyproject = true;
          build-system = buildSystem;
          # The locked build system comes first on PYTHONPATH, ahead of the tools nixpkgs'
          # hooks propagate (wheel, packaging, installer): the backend imports, and pypa/build
          # checks, the versions the lock chose for it.
          PYTHONPATH = builtins.concatStringsSep ":" (
            map (drv: "${drv}/${python.sitePackages}") buildSystem
          );
        }
    )
  );
mkPackage =
  final: prev: name: p:
  let
    built =
      if p.provider == "nixpkgs" then fromNixpkgs final prev name p else buildLocked final name p;
    build =
      if overrides ? ${name} then
        built.overridePythonAttrs (overrides.${name} final prev)
      else
        built;
  in
  build.overrideAttrs (old: {
    # What withPackages follows: the package's whole runtime closure, so a package taken
    # on its own still brings everything it needs into an environment.
    passthru = old.passthru // {
      requiredPythonModules =
        old.passthru.requiredPythonModules ++ map (d: final.${d}) (closure p.dependencies);
    };
  });
# nixpkgs' build hooks take their tools from the set they build: wheelUnpackHook the set's
# `wheel`, pypaInstallHook `installer`, pypaBuildHook `build` and `wheel`,
# pythonRuntimeDepsCheckHook `packaging`, setuptoolsBuildHook `setuptools`, pytestCheckHook
# `pytest`, the bootstrap variants `bootstrap.*` (hooks/default.nix). With machci's pins under
# those names the tools would be built with themselves (wheel -> wheelUnpackHook -> wheel):
# infinite recursion. So the hooks stay those of the interpreter's own set, built with
# nixpkgs' tools; the environment holds machci's pins.
hookNames = [
  "bootstrap"
  "eggBuildHook"
  "eggInstallHook"
  "eggUnpackHook"
  "pipBuildHook"
  "pipInstallHook"
  "pypaBuildHook"
  "pypaInstallHook"
  "pyprojectVersionPatchHook"
  "pytestCheckHook"
  "pythonCatchConflictsHook"
  "pythonImportsCheckHook"
  "pythonMetadataCheckHook"
  "pythonNamespacesHook"
  "pythonOutputDistHook"
  "pythonRelaxDepsHook"
  "pythonRemoveBinBytecodeHook"
  "pythonRemoveTestsDirHook"
  "pythonRuntimeDepsCheckHook"
  "setuptoolsBuildHook"
  "sphinxHook"
  "stestrCheckHook"
  "unittestCheckHook"
  "wheelUnpackHook"
];
nixpkgsHooks = builtins.intersectAttrs (builtins.listToAttrs (
  map (name: {
    inherit name;
    value = null;
  }) hookNames
)) python.pkgs;
# nixpkgs' hooks, overridesPre, machci's packages, overridesPost: one overlay, as
# lib.composeManyExtensions.
compose =
  f: g: final: prev:
  let
    applied = f final prev;
  in
  applied // g final (prev // applied);
overlay = builtins.foldl' compose (final: prev: nixpkgsHooks) (
  map toOverlay overlaysPre
  ++ [ (final: prev: builtins.mapAttrs (mkPackage final prev) lock.packages) ]
  ++ map toOverlay overlaysPost
);
# An overlay file is `final: prev: { … }`, or `{ pkgs, lib, … }: final: prev: { … }`.
toOverlay =
  file:
  let
    f = import file;
    wanted = builtins.functionArgs f;
  in
  if wanted == { } then
    f
  else
    f (builtins.intersectAttrs wanted (pkgs // { inherit pkgs lib python; }));
# The interpreter with the whole package set: every output uses it.
pythonWithPackages = python.override {
  packageOverrides = overlay;
  self = pythonWithPackages;
};
packages = builtins.mapAttrs (name: _: pythonWithPackages.pkgs.${name}) lock.packages;"""


def render(lock: Lock, options: RenderOptions) -> str:
    """The body of default.nix (everything after the header)."""
    w = Writer()
    w.open("{")
    w.line("pkgs ? import <nixpkgs> { },")
    w.line(f"python ? pkgs.{attr(options.python_attr)},")
    w.line("system ? pkgs.stdenv.hostPlatform.system,")
    w.close("}:")
    w.open("let")
    w.line("# Every file once, named after itself so store paths match other tools' fetches.")
    files = {p.file.filename: p.file for s in lock.systems for p in s.packages if p.file}
    w.open("files = {")
    for filename in sorted(files):
        file = files[filename]
        w.open(f"{string(filename)} = pkgs.fetchurl {{")
        w.line(f"name = {string(store_name(filename))};")
        w.line(f"url = {string(file.url)};")
        w.line(f"hash = {string(sri(file.sha256))};")
        w.close("};")
    w.close("};")
    _sources(w, lock)
    w.line("# What each system needs, as resolved by machci.")
    w.open("systems = {")
    for system in lock.systems:
        w.open(f"{attr(system.system)} = {{")
        w.list("roots = ", (string(n) for n in sorted({r.name for r in system.roots})))
        binary = [p.name for p in system.packages if p.file and is_binary_wheel(p.file.filename)]
        libraries = library_sources(system, binary) if system.system.endswith("-linux") else {}
        inputs = nixpkgs_inputs(system)
        w.open("packages = {")
        for package in system.packages:
            links = {
                "libraries-from": libraries.get(package.name, ()),
                "inputs-from": inputs.get(package.name, ()),
            }
            _package(w, package, links)
        w.close("};")
        w.close("};")
    w.close("};")
    w.list(
        "ignoredLibraries = ",
        (string(n) for n in sorted({*DEFAULT_IGNORED_LIBRARIES, *options.ignored_libraries})),
    )
    supported = ", ".join(s.system for s in lock.systems)
    before = string(f"machci: this default.nix was generated for {supported}, not for ")
    after = string("; add the system to machci.yaml and run machci sync")
    locked = options.python
    attr_name = options.python_attr
    mismatch = " + python.pythonVersion + ".join(
        [
            string(f"machci: this default.nix was locked for Python {locked}, but `python` is "),
            string(
                f"; pass python = pkgs.{attr_name} (nix-build --arg python"
                f" '(import <nixpkgs> {{ }}).{attr_name}'), or set python: \""
            ),
            string('" in machci.yaml and run machci sync'),
        ]
    )
    r_packages = options.r_packages
    with_r: tuple[str, ...] = ()
    if r_packages is not None:
        locked_names = {p.name for s in lock.systems for p in s.packages}
        with_r = tuple(sorted(BUILT_WITH_R & locked_names))
    _overrides(w, options.overrides, with_r)
    if r_packages is not None:
        w.list("rPackages = ", (string(n) for n in r_packages))
        for line in _R.splitlines():
            w.line(line)
    w.list("overlaysPre = ", (relative_path(p) for p in options.overlays_pre))
    w.list("overlaysPost = ", (relative_path(p) for p in options.overlays_post))
    w.line(f"ignoreCollisions = {'true' if options.ignore_collisions else 'false'};")
    w.line("lib = pkgs.lib;")
    w.open("lock =")
    release = string(
        f"machci: this default.nix needs nixpkgs {OLDEST_NIXPKGS} or later, but `pkgs` is nixpkgs "
    )
    upgrade = string("; pass a newer nixpkgs as `pkgs`")
    w.line(f"if builtins.compareVersions lib.version {string(OLDEST_NIXPKGS)} < 0 then")
    w.line(f"  throw ({release} + lib.version + {upgrade})")
    w.line(f"else if python.pythonVersion != {string(locked)} then")
    w.line(f"  throw ({mismatch})")
    w.line("else")
    w.line(f"  systems.${{system}} or (throw ({before} + system + {after}));")
    w.depth -= 1
    for line in _BUILDER.splitlines():
        w.line(line)
    w.open("env = pythonWithPackages.buildEnv.override {")
    w.line("extraLibs = map (name: packages.${name}) lock.roots;")
    w.line("inherit ignoreCollisions;")
    if r_packages is not None:
        w.line("makeWrapperArgs = rEnvironment;")
    w.close("};")
    w.close("in")
    w.open("{")
    w.line("inherit env overlay packages;")
    for name in sorted({p.name for s in lock.systems for p in s.packages if p.scripts}):
        _app(w, name)
    w.line("python = pythonWithPackages;")
    contents = ["env", "R"] if r_packages is not None else ["env"]
    if r_packages is None:
        w.line("shell = pkgs.mkShell { packages = [ env ]; };")
    else:
        w.open("shell = pkgs.mkShell {")
        w.list("packages = ", contents)
        w.close("};")
    image = options.image
    w.open("image = pkgs.dockerTools.buildLayeredImage {")
    w.line(f"name = {string(image.name)};")
    w.line(f"tag = {string(image.tag)};")
    w.list("contents = ", contents)
    if image.cmd:
        w.list("config.Cmd = ", (string(c) for c in image.cmd))
    else:
        w.line('config.Cmd = [ "${env}/bin/python" ];')
    w.close("};")
    w.close("}")
    return w.text()
