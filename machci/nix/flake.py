"""The body of flake.nix: flake outputs over the generated file, for the locked systems only.

Each system's outputs are the generated file imported with that system's nixpkgs,
`import nixpkgs { inherit system; }`: no resolving and no import-from-derivation while Nix
evaluates, so `nix flake show` and `nix flake check` stay fast. Pure, deterministic text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from machci.nix.escape import attr, relative_path, string
from machci.nix.render import Writer


@dataclass(frozen=True)
class FlakeOptions:
    nixpkgs: str  # the flake reference of the `nixpkgs` input
    output: str  # the generated file, relative to flake.nix
    python_attr: str  # the interpreter's nixpkgs attribute, e.g. python312
    app: str | None = None  # the script `nix run` starts; None: the generated file has no app


def render_flake(systems: Iterable[str], options: FlakeOptions) -> str:
    """The body of flake.nix (everything after the header)."""
    generated = relative_path(options.output)
    python = attr(options.python_attr)
    w = Writer()
    w.open("{")
    w.line('description = "A Python environment locked by machci";')
    w.line()
    w.line(f"inputs.nixpkgs.url = {string(options.nixpkgs)};")
    w.line()
    w.open("outputs =")
    w.line("{ self, nixpkgs }:")
    w.line("let")
    w.depth += 1
    w.list("systems = ", (string(s) for s in sorted(set(systems))))
    w.line("# The generated file for each system, with that system's nixpkgs.")
    w.open("generated = builtins.listToAttrs (")
    w.open("map (system: {")
    w.line("name = system;")
    w.open(f"value = import {generated} {{")
    w.line("pkgs = import nixpkgs { inherit system; };")
    w.line("inherit system;")
    w.close("};")
    w.close("}) systems")
    w.close(");")
    w.line("perSystem = f: builtins.mapAttrs f generated;")
    w.depth -= 1
    w.line("in")
    w.open("{")
    w.open("packages = perSystem (")
    w.open("system: machci: {")
    w.line("default = machci.env;")
    w.line(f"inherit (machci) env image{' app' if options.app is not None else ''};")
    w.close("}")
    w.close(");")
    w.line("devShells = perSystem (system: machci: { default = machci.shell; });")
    if options.app is not None:
        w.open("apps = perSystem (")
        w.open("system: machci: {")
        w.open("default = {")
        w.line('type = "app";')
        w.line(f'program = "${{machci.app}}/bin/" + {string(options.app)};')
        w.line(f"meta.description = {string(f'{options.app}, in the locked environment')};")
        w.close("};")
        w.close("}")
        w.close(");")
    w.line("# A nixpkgs overlay: the interpreter with machci's packages in its package set.")
    w.open("overlays.default = final: prev: {")
    w.open(f"{python} = prev.{python}.override {{")
    w.open(f"packageOverrides = (import {generated} {{")
    w.line("pkgs = prev;")
    w.line(f"python = prev.{python};")
    w.close("}).overlay;")
    w.line(f"self = final.{python};")
    w.close("};")
    w.close("};")
    w.line("# `python` (with the locked package set), `packages`, the Python package `overlay`;")
    w.line("# mkPython { pkgs ? nixpkgs for the system, python ? pkgs.<locked python> } is `env`")
    w.line("# built with another nixpkgs (overlays, config).")
    w.open("lib = perSystem (")
    w.open("system: machci: {")
    w.line("inherit (machci) python packages overlay;")
    w.open("mkPython =")
    w.line("args:")
    w.open(f"(import {generated} (")
    w.open("{")
    w.line("pkgs = import nixpkgs { inherit system; };")
    w.line("inherit system;")
    w.close("}")
    w.line("// args")
    w.close(")).env;")
    w.depth -= 1
    w.close("}")
    w.close(");")
    w.close("};")
    w.depth -= 1
    w.close("}")
    return w.text()
