"""R through rpy2, as mach-nix offered it: the names that tie machci.yaml's rPackages to the
Python side. R itself comes from nixpkgs (`rWrapper`, `rPackages`); see nix/render.py."""

from __future__ import annotations

# The requirement rPackages adds: resolved from the index like any other.
RPY2 = "rpy2"
# The dists whose build looks for R (rpy2's setup runs `R RHOME`; since 3.6 the compiled part is
# rpy2-rinterface, and rpy2 a meta package), so R is a build input of each that is locked.
BUILT_WITH_R = frozenset({"rpy2", "rpy2-rinterface"})
