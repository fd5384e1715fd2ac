"""Lock → the body of default.nix: pure, deterministic text in nixfmt (RFC 166) layout.

The generated expression needs nothing but nixpkgs' own API (`fetchurl`, `buildPythonPackage`,
`withPackages`, `mkShell`, `dockerTools.buildLayeredImage`, `autoPatchelfHook`,
`pythonManylinuxPackages`) and uses only `builtins`, so evaluating it is plain, fast Nix.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.utils import parse_wheel_filename

from machci.config import Image
from machci.lock import Lock, LockedPackage
from machci.nix.escape import attr, string


@dataclass(frozen=True)
class RenderOptions:
    python: str = "3.12"
    image: Image = field(default_factory=Image)

    @property
    def python_attr(self) -> str:
        return "python" + self.python.replace(".", "")


def sri(sha256_hex: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def is_binary_wheel(filename: str) -> bool:
    """A wheel with compiled code (its platform tag is not "any") needs patching on Linux."""
    if not filename.endswith(".whl"):
        return False
    return any(tag.platform != "any" for tag in parse_wheel_filename(filename)[3])


class _Writer:
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


def _package(w: _Writer, package: LockedPackage) -> None:
    w.open(f"{attr(package.name)} = {{")
    w.line(f"version = {string(package.version)};")
    w.line(f"file = {string(package.file.filename)};")
    w.line(f"provider = {string(package.provider)};")
    w.line(f"binary = {'true' if is_binary_wheel(package.file.filename) else 'false'};")
    w.list("dependencies = ", (string(d) for d in package.dependencies))
    w.list("build-system = ", (string(d) for d in package.build_requires))
    w.close("};")


_BUILDER = """\
isLinux = builtins.match ".*-linux" system != null;
mkPackage =
  ps: name: p:
  ps.buildPythonPackage (
    {
      pname = name;
      inherit (p) version;
      src = files.${p.file};
      dependencies = map (d: ps.${d}) p.dependencies;
    }
    // (
      if p.provider == "wheel" then
        {
          format = "wheel";
        }
        // (
          if p.binary && isLinux then
            {
              nativeBuildInputs = [ pkgs.autoPatchelfHook ];
              buildInputs = pkgs.pythonManylinuxPackages.manylinux2014;
            }
          else
            { }
        )
      else
        {
          pyproject = true;
          build-system = map (d: ps.${d}) p.build-system;
        }
    )
  );
# An overlay for `python.override { packageOverrides = overlay; }`.
overlay = self: super: builtins.mapAttrs (mkPackage self) lock.packages;
packages = builtins.mapAttrs (mkPackage (python.pkgs // packages)) lock.packages;
env = python.withPackages (_: map (name: packages.${name}) lock.roots);"""


def render(lock: Lock, options: RenderOptions) -> str:
    """The body of default.nix (everything after the header)."""
    w = _Writer()
    w.open("{")
    w.line("pkgs ? import <nixpkgs> { },")
    w.line(f"python ? pkgs.{options.python_attr},")
    w.line("system ? pkgs.stdenv.hostPlatform.system,")
    w.close("}:")
    w.open("let")
    w.line("# Every file once, named after itself so store paths match other tools' fetches.")
    files = {p.file.filename: p.file for s in lock.systems for p in s.packages}
    w.open("files = {")
    for filename in sorted(files):
        file = files[filename]
        w.open(f"{string(filename)} = pkgs.fetchurl {{")
        w.line(f"name = {string(filename)};")
        w.line(f"url = {string(file.url)};")
        w.line(f"hash = {string(sri(file.sha256))};")
        w.close("};")
    w.close("};")
    w.line("# What each system needs, as resolved by machci.")
    w.open("systems = {")
    for system in lock.systems:
        w.open(f"{attr(system.system)} = {{")
        w.list("roots = ", (string(n) for n in sorted({r.name for r in system.roots})))
        w.open("packages = {")
        for package in system.packages:
            _package(w, package)
        w.close("};")
        w.close("};")
    w.close("};")
    supported = ", ".join(s.system for s in lock.systems)
    before = string(f"machci: this default.nix was generated for {supported}, not for ")
    after = string("; add the system to machci.yaml and run machci sync")
    w.open("lock =")
    w.line(f"systems.${{system}} or (throw ({before} + system + {after}));")
    w.depth -= 1
    for line in _BUILDER.splitlines():
        w.line(line)
    w.close("in")
    w.open("{")
    w.line("inherit env overlay packages;")
    w.line("shell = pkgs.mkShell { packages = [ env ]; };")
    image = options.image
    w.open("image = pkgs.dockerTools.buildLayeredImage {")
    w.line(f"name = {string(image.name)};")
    w.line(f"tag = {string(image.tag)};")
    w.line("contents = [ env ];")
    if image.cmd:
        w.list("config.Cmd = ", (string(c) for c in image.cmd))
    else:
        w.line('config.Cmd = [ "${env}/bin/python" ];')
    w.close("};")
    w.close("}")
    return w.text()
