"""packagesExtra and the project itself through real Nix: a local tree with an extra, an
archive, a git commit of a local bare repository, and the project's `app`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

from machci.nix.render import store_name
from tests.fixtures.builders import Dist
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, run
from tests.nixtools import PYTHON, build, nix, pkgs_arg, python_in, require, seed_store
from tests.test_extra_sources import bare_repository, tree

require("nix-instantiate", "nix-bin")
require("git", "git")


def test_every_kind_of_source_builds_into_the_environment(index: Index, tmp_path: Path) -> None:
    index.publish("beta", "2.0")
    index.publish("gamma", "1.0")
    archived = Dist("archived", "3.0", kind="sdist", requires_dist=("beta",))
    index.add(archived)
    project = tree(
        tmp_path / "project",
        Dist(
            "myapp",
            "0.9",
            kind="sdist",
            requires_dist=("mylib",),
            extra_files=(("myapp-0.9.data/scripts/myapp", b"#!/bin/sh\necho hello\n"),),
        ),
    )
    tree(
        project / "vendor" / "mylib",
        Dist(
            "mylib",
            "1.0",
            kind="sdist",
            requires_dist=('gamma; extra == "fast"',),
            provides_extra=("fast",),
        ),
    )
    source = tree(tmp_path / "src", Dist("fromgit", "0.1", kind="sdist"))
    commit = bare_repository(source, tmp_path / "repo.git")
    url = f"{index.files_url}/{archived.filename}"
    (project / "machci.yaml").write_text(
        f'python: "{PYTHON}"\n'
        "systems: [x86_64-linux]\n"
        f"data: {{index: {index.url}, snapshot: '{SNAPSHOT}'}}\n"
        "project: .\n"
        "packagesExtra:\n"
        "  - {path: vendor/mylib, extras: [fast]}\n"
        f"  - {{url: '{url}'}}\n"
        f"  - {{git: '{tmp_path / 'repo.git'}', rev: main}}\n"
    )
    with contextlib.chdir(project):
        result = run("sync", "--cache-dir", ".cache")
    assert result.code == 1, result.err
    default_nix = project / "default.nix"
    text = default_nix.read_text()
    assert f'rev = "{commit}";' in text
    assert "/nix/store" not in text and str(tmp_path / "project") not in text
    seed_store(index, default_nix)
    copy = project / ".store" / store_name("archived-source.tar.gz")
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(index.path_of(archived.filename), copy)
    nix("nix-store", "--add-fixed", "sha256", str(copy))

    env = tmp_path / "env"
    build([str(default_nix), "-A", "env", *pkgs_arg()], env)
    code = "import myapp, mylib, gamma, archived, fromgit, beta; print(mylib.__version__)"
    assert python_in(env, code) == "1.0"
    app = tmp_path / "app"
    build([str(default_nix), "-A", "app", *pkgs_arg()], app)
    assert [p.name for p in (app / "bin").iterdir()] == ["myapp"]  # not python, not others
    assert (app / "bin" / "myapp").resolve() == (env / "bin" / "myapp").resolve()
    done = subprocess.run([str(app / "bin" / "myapp")], capture_output=True, text=True, check=True)
    assert done.stdout == "hello\n"
