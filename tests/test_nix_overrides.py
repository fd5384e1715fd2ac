"""Build controls under real Nix: overrides, overridesPre/overridesPost, ignoreCollisions."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.fixtures.builders import Dist, build
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run
from tests.nixtools import (
    PYTHON,
    nix,
    pkgs_arg,
    python_in,
    require,
    seed_store,
    stand_in,
    sync_project,
)
from tests.nixtools import build as nix_build

require("nix-instantiate", "nix-bin")

GAMMA_PATCH = """\
--- a/gamma/__init__.py
+++ b/gamma/__init__.py
@@ -1 +1,2 @@
 __version__ = "0.5"
+PATCHED = True
"""

PRE = """\
# A package machci does not lock, for machci's packages to use.
final: prev: {
  extra = final.buildPythonPackage {
    pname = "extra";
    version = "1.0";
    format = "wheel";
    src = ../extra-1.0-py3-none-any.whl;
  };
}
"""

POST = """\
# poetry2nix's overrides.nix shape: a function of pkgs returning an overlay.
{ pkgs, ... }:
final: prev: {
  beta = prev.beta.overridePythonAttrs (old: {
    postInstall = "echo post > $out/post-marker";
  });
}
"""

CONFIG = """\
requirements: [requirements.txt]
python: "{python}"
systems: [x86_64-linux]
output: out/default.nix
data: {{index: {index}, snapshot: '{snapshot}'}}
overrides:
  alpha:
    postInstall: "echo replaced > $out/alpha-marker"      # shell code: a plain value replaces
    dependencies: {{add: "[ final.extra ]"}}          # appended to what machci gives
  gamma:
    patches: "[ ./patches/gamma.patch ]"            # relative to machci.yaml
    postInstall: {{mod: "old: old + ''echo modded > $out/gamma-marker''"}}
overridesPre: [nix/pre.nix]
overridesPost: [nix/post.nix]
"""


def output_of(default_nix: Path, attribute: str) -> Path:
    expression = f"(import {default_nix} {{ pkgs = {stand_in()}; }}).{attribute}.outPath"
    return Path(json.loads(nix("nix-instantiate", "--eval", "--json", "-E", expression).stdout))


def test_every_override_form_and_both_overlays_reach_the_build(
    index: Index, tmp_path: Path
) -> None:
    index.publish("beta", "2.0")
    index.publish("alpha", "1.0", requires_dist=("beta>=2",))
    index.publish("flit-core", "3.9")
    index.publish("gamma", "0.5", kind="sdist", build_requires=("flit-core",))
    project = tmp_path / "project"
    (project / "patches").mkdir(parents=True)
    (project / "nix").mkdir()
    (project / "patches" / "gamma.patch").write_text(GAMMA_PATCH)
    (project / "nix" / "pre.nix").write_text(PRE)
    (project / "nix" / "post.nix").write_text(POST)
    build(Dist("extra", "1.0"), project)
    (project / "requirements.txt").write_text("alpha\ngamma\n")
    (project / "machci.yaml").write_text(
        CONFIG.format(python=PYTHON, index=index.url, snapshot=SNAPSHOT)
    )
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", ".cache")
    assert result.code == 1, result.err
    default_nix = project / "out" / "default.nix"
    text = default_nix.read_text()
    for name in ("../patches/gamma.patch", "../nix/pre.nix", "../nix/post.nix"):
        assert f" {name}\n" in text.split("{\n", 1)[0]  # a header input
    assert "patches = ([ ../patches/gamma.patch ]);" in text  # relocated next to default.nix
    seed_store(index, default_nix)

    env = tmp_path / "env"
    nix_build([str(default_nix), "-A", "env", *pkgs_arg()], env)
    assert python_in(env, "import extra, gamma; print(gamma.PATCHED)") == "True"
    assert (output_of(default_nix, "packages.alpha") / "alpha-marker").read_text() == "replaced\n"
    assert (output_of(default_nix, "packages.gamma") / "gamma-marker").read_text() == "modded\n"
    assert (output_of(default_nix, "packages.beta") / "post-marker").read_text() == "post\n"
    # The same set behind every output: the overlay and the interpreter.
    same = f"""
      let
        pkgs = {stand_in()};
        d = import {default_nix} {{ inherit pkgs; }};
        viaOverlay = (pkgs.python312.override {{ packageOverrides = d.overlay; }}).pkgs;
      in [ d.packages.beta.outPath viaOverlay.beta.outPath d.python.pkgs.beta.outPath ]
    """
    paths = json.loads(nix("nix-instantiate", "--eval", "--strict", "--json", "-E", same).stdout)
    assert len(set(paths)) == 1

    # A changed patch makes the file stale.
    (project / "patches" / "gamma.patch").write_text(GAMMA_PATCH + "\n")
    with contextlib.chdir(project):
        stale = run("check")
    assert stale.code == 1 and "../patches/gamma.patch" in stale.err


def test_ignore_collisions_reaches_the_environment(index: Index, tmp_path: Path) -> None:
    index.publish("first", "1.0", extra_files=(("shared/data.txt", b"first\n"),))
    index.publish("second", "1.0", extra_files=(("shared/data.txt", b"second\n"),))
    default_nix = sync_project(
        index, tmp_path / "p", "first\nsecond\n", ["x86_64-linux"], "ignoreCollisions: true\n"
    )
    assert "ignoreCollisions = true;" in default_nix.read_text()
    env = tmp_path / "env"
    nix_build([str(default_nix), "-A", "env", *pkgs_arg()], env)  # fails without the setting
    shared = env / "lib" / f"python{PYTHON}" / "site-packages" / "shared" / "data.txt"
    assert shared.read_text() in ("first\n", "second\n")


def test_overrides_are_checked_before_resolving(index: Index, tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("alpha\n")
    (project / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\ndata: {{index: {index.url}}}\n"
        'overrides:\n  alpha:\n    doCheck: "fals e("\n'
    )
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", ".cache")
    assert result.code == 2
    assert "machci.yaml:5: overrides: alpha: doCheck: not a Nix expression" in result.err
    assert not (project / "default.nix").exists()
