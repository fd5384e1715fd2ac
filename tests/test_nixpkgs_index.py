"""The nixpkgs package index: a nixpkgs-shaped tree evaluated by real nix-instantiate, the file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machci.errors import InputError
from machci.sources.nixpkgs.index import (
    NixpkgsIndex,
    NixpkgsPackage,
    build_index,
    dumps_index,
    evaluate_tree,
    load_index,
    nix_error,
    packages_attr,
    tree_key,
)
from tests.fixtures.repos import git
from tests.helpers import Run, run
from tests.nixtools import require

require("nix-instantiate", "nix-bin")

# Real derivations (`derivation`) and a hand-made one (`type = "derivation"`), beside every kind of
# attribute a package set holds that is no package: throwing packages and aliases, a failed
# assertion, functions, sets, a derivation without pname, versions that are no PEP 440 or no string.
TREE = """\
{ ... }:
let
  package = pname: version: derivation {
    name = "${pname}-${version}";
    inherit pname version;
    system = "x86_64-linux";
    builder = "/bin/sh";
  };
in
{
  python312Packages = {
    django = package "Django" "4.2.16";
    django_5 = package "Django" "5.1.4";
    foo-bar = package "Foo_Bar" "1.0";
    requests = {
      type = "derivation";
      pname = "requests";
      version = "2.32.3";
      name = "requests-2.32.3";
      outPath = "/nonexistent/requests-2.32.3";
    };
    broken = throw "broken is marked as broken";
    old-name = throw "'old-name' has been renamed to/replaced by 'django'";
    failing-assert = assert false; package "failing" "1.0";
    pname-throws = { type = "derivation"; pname = throw "no pname"; version = "1.0"; };
    buildPythonPackage = attrs: package attrs.pname attrs.version;
    pkgs = { hello = package "hello" "2.12"; };
    no-pname = derivation { name = "no-pname-1.0"; system = "x86_64-linux"; builder = "/bin/sh"; };
    snapshot = package "snapshot-lib" "unstable-2024-01-01";
    numbered = { type = "derivation"; pname = "numbered"; version = 3; };
  };
  python311Packages = { };
}
"""

EXPECTED = """\
{
  "django": [
    {
      "attr": "django_5",
      "version": "5.1.4"
    },
    {
      "attr": "django",
      "version": "4.2.16"
    }
  ],
  "foo-bar": [
    {
      "attr": "foo-bar",
      "version": "1.0"
    }
  ],
  "requests": [
    {
      "attr": "requests",
      "version": "2.32.3"
    }
  ]
}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    path = tmp_path / "nixpkgs"
    path.mkdir()
    (path / "default.nix").write_text(TREE)
    return path


@pytest.fixture
def nix_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log with a line per nix-instantiate run: PATH leads to a wrapper that runs the real one."""
    real = shutil.which("nix-instantiate")
    assert real is not None
    bin_dir, log = tmp_path / "bin", tmp_path / "nix-calls.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "nix-instantiate"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> int:
    return len(log.read_text().splitlines())


def index_command(tree: Path, cwd: Path, *args: str) -> Run:
    cwd.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(cwd):
        return run("nixpkgs-index", "--nixpkgs", str(tree), "--python", "3.12", *args)


def test_writes_the_index_of_the_package_set(tree: Path, tmp_path: Path, nix_calls: Path) -> None:
    work = tmp_path / "work"
    result = index_command(tree, work, "--cache-dir", str(tmp_path / "cache"))
    assert result.code == 0, result.err
    (work / "nixpkgs-python.json").unlink()
    # The second run answers from the cache: Nix ran once.
    assert index_command(tree, work, "--cache-dir", str(tmp_path / "cache")) == result
    assert calls(nix_calls) == 1
    assert (
        result.err
        == f"machci: wrote nixpkgs-python.json: 3 packages from {tree} (python312Packages)\n"
    )
    assert (work / "nixpkgs-python.json").read_text() == EXPECTED
    assert result.out == ""


def test_output_option_and_default_cache(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "index.json"
    result = index_command(tree, tmp_path / "work", "-o", str(out))
    assert result.code == 0, result.err
    assert result.err.startswith(f"machci: wrote {out}: 3 packages")
    assert out.read_text() == EXPECTED
    # Without --cache-dir the platform's cache directory is used (XDG_CACHE_HOME in the tests).
    cached = Path(os.environ["XDG_CACHE_HOME"]) / "machci" / "v2" / "nixpkgs-index"
    assert len(list(cached.glob("*.json"))) == 1


def test_evaluate_tree_agrees_with_the_file(tree: Path, tmp_path: Path) -> None:
    index = evaluate_tree(tree, "3.12", tmp_path / "cache")
    assert index == {
        "django": (NixpkgsPackage("django_5", "5.1.4"), NixpkgsPackage("django", "4.2.16")),
        "foo-bar": (NixpkgsPackage("foo-bar", "1.0"),),
        "requests": (NixpkgsPackage("requests", "2.32.3"),),
    }
    assert dumps_index(index) == EXPECTED
    assert evaluate_tree(tree, "3.11", tmp_path / "cache") == {}


def test_cache_by_file_metadata(tree: Path, tmp_path: Path, nix_calls: Path) -> None:
    cache = tmp_path / "cache"
    first = evaluate_tree(tree, "3.12", cache)
    assert calls(nix_calls) == 1
    # Same size and mtime: the key cannot see the new content, so the cached answer stands.
    default_nix = tree / "default.nix"
    status = default_nix.stat()
    default_nix.write_text(TREE.replace('"5.1.4"', '"5.1.9"'))
    os.utime(default_nix, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert evaluate_tree(tree, "3.12", cache) == first
    assert calls(nix_calls) == 1
    # Another package set of the same tree is another entry.
    evaluate_tree(tree, "3.11", cache)
    assert calls(nix_calls) == 2
    # A new mtime is seen.
    os.utime(default_nix, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert evaluate_tree(tree, "3.12", cache)["django"][0] == NixpkgsPackage("django_5", "5.1.9")
    assert calls(nix_calls) == 3
    # So is a new file anywhere below the tree.
    (tree / "pkgs").mkdir()
    (tree / "pkgs" / "new.nix").write_text("{ }\n")
    evaluate_tree(tree, "3.12", cache)
    assert calls(nix_calls) == 4


def test_cache_by_git_commit(tree: Path, tmp_path: Path, nix_calls: Path) -> None:
    cache = tmp_path / "cache"
    git(tree, "init", "--quiet")
    git(tree, "add", "default.nix")
    git(tree, "commit", "--quiet", "-m", "tree")
    key = tree_key(tree)
    assert key == f"git:{git(tree, 'rev-parse', 'HEAD')}"
    assert evaluate_tree(tree, "3.12", cache) == evaluate_tree(tree, "3.12", cache)
    assert calls(nix_calls) == 1
    # A clean work tree is its commit: touching files changes nothing.
    os.utime(tree / "default.nix", ns=(0, 0))
    assert tree_key(tree) == key
    evaluate_tree(tree, "3.12", cache)
    assert calls(nix_calls) == 1
    # A dirty one is evaluated every time and never cached.
    (tree / "default.nix").write_text(TREE.replace('"5.1.4"', '"5.1.9"'))
    assert tree_key(tree) is None
    for _ in range(2):
        assert evaluate_tree(tree, "3.12", cache)["django"][0].version == "5.1.9"
    assert calls(nix_calls) == 3
    # Untracked files make it dirty too.
    git(tree, "checkout", "--quiet", "default.nix")
    (tree / "overlay.nix").write_text("{ }\n")
    assert tree_key(tree) is None
    # A new commit is a new key.
    git(tree, "add", "overlay.nix")
    git(tree, "commit", "--quiet", "-m", "more")
    assert tree_key(tree) not in (None, key)
    evaluate_tree(tree, "3.12", cache)
    assert calls(nix_calls) == 4


def test_subdirectory_of_a_work_tree_is_keyed_by_its_files(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "nixpkgs").mkdir(parents=True)
    (project / "nixpkgs" / "default.nix").write_text(TREE)
    (project / ".gitignore").write_text("nixpkgs/\n")
    git(project, "init", "--quiet")
    git(project, "add", ".gitignore")
    git(project, "commit", "--quiet", "-m", "project")
    # The project's commit says nothing about an ignored nixpkgs inside it.
    key = tree_key(project / "nixpkgs")
    assert key is not None and key.startswith("files:")


def test_syntax_error_is_one_line_and_exit_2(tree: Path, tmp_path: Path) -> None:
    (tree / "default.nix").write_text("{ ... }: {\n  python312Packages = { a = 1 +; };\n}\n")
    work = tmp_path / "work"
    result = index_command(tree, work, "--cache-dir", str(tmp_path / "cache"))
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith(
        f"machci: error: cannot evaluate python312Packages of {tree}: syntax error, unexpected"
    )
    assert result.err.endswith(f"(at {tree / 'default.nix'}:2:32)\n")
    assert not (work / "nixpkgs-python.json").exists()


def test_a_tree_without_the_package_set(tree: Path, tmp_path: Path) -> None:
    result = index_command(tree, tmp_path, "--python", "3.13", "--cache-dir", str(tmp_path / "c"))
    assert result.code == 2
    assert result.err == (
        f"machci: error: cannot evaluate python313Packages of {tree}:"
        " this nixpkgs has no python313Packages\n"
    )


def test_the_whole_set_throwing_is_an_error(tree: Path, tmp_path: Path) -> None:
    (tree / "default.nix").write_text('{ ... }: { python312Packages = throw "gone"; }\n')
    with pytest.raises(InputError, match=r"of .*nixpkgs: gone$"):
        evaluate_tree(tree, "3.12", tmp_path / "cache")


def test_no_tree(tmp_path: Path) -> None:
    result = index_command(tmp_path / "missing", tmp_path)
    assert (result.code, result.err) == (
        2,
        f"machci: error: {tmp_path / 'missing'} is not a directory (expected a nixpkgs tree)\n",
    )
    result = index_command(tmp_path, tmp_path)
    assert result.err == f"machci: error: {tmp_path} has no default.nix (expected a nixpkgs tree)\n"


def test_bad_python_version(tree: Path, tmp_path: Path) -> None:
    result = index_command(tree, tmp_path, "--python", "3")
    assert (result.code, result.err) == (
        2,
        "machci: error: invalid Python version '3': expected X.Y, e.g. '3.12'\n",
    )


def test_evaluation_timeout(tree: Path, tmp_path: Path) -> None:
    slow = "builtins.foldl' (n: _: n + builtins.length (builtins.genList (x: x) 100000)) 0"
    (tree / "default.nix").write_text(
        f"{{ ... }}: {{ python312Packages = builtins.seq ({slow} (builtins.genList (x: x) 100000))"
        " { }; }\n"
    )
    with pytest.raises(InputError, match=r"took longer than 0\.5 s"):
        evaluate_tree(tree, "3.12", tmp_path / "cache", timeout=0.5)


def test_nix_config_keeps_the_callers_and_drops_substituters(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package's pname says whether Nix saw both the caller's option and the empty list.
    (tree / "default.nix").write_text(
        """{ ... }:
let
  lines = builtins.split "\n" (builtins.getEnv "NIX_CONFIG");
  seen = builtins.elem "allow-import-from-derivation = true" lines
    && builtins.elem "substituters =" lines;
in
{
  python312Packages.probe = {
    type = "derivation"; pname = if seen then "both" else "missing"; version = "1.0";
  };
}
"""
    )
    monkeypatch.setenv("NIX_CONFIG", "allow-import-from-derivation = true")
    assert list(evaluate_tree(tree, "3.12", tmp_path / "cache")) == ["both"]


# The index file.


def write(tmp_path: Path, data: object | str) -> Path:
    path = tmp_path / "index.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_load_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "Django": [
                {"attr": "django", "version": "4.2.16"},
                {"attr": "django_5", "version": "5.1.4"},
                {"attr": "django_next", "version": "unstable-2024-01-01"},
            ],
            "Foo_Bar": {"attr": "foo-bar", "version": "1.0", "note": "ignored"},
            "foo.bar": [{"attr": "foo-bar_2", "version": "2.0"}],
            "only-snapshots": [{"attr": "snap", "version": "unstable-2024-01-01"}],
            "empty": [],
        },
    )
    assert load_index(path) == {
        "django": (NixpkgsPackage("django_5", "5.1.4"), NixpkgsPackage("django", "4.2.16")),
        "foo-bar": (NixpkgsPackage("foo-bar_2", "2.0"), NixpkgsPackage("foo-bar", "1.0")),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "the nixpkgs index is not JSON: Expecting property name"),
        (b"\xff", "the nixpkgs index is not JSON"),
        ([], "the nixpkgs index must be a JSON object of names, not a list"),
        ({"a b": []}, "'a b' is not a valid package name"),
        ({"django": "4.2"}, "'django' must be a list of {attr, version} objects, not a string"),
        ({"django": None}, "'django' must be a list of {attr, version} objects, not null"),
        ({"django": [1]}, "'django'[0] must be an object with attr and version, not a number"),
        (
            {"django": [{"version": "1.0"}]},
            "'django'[0]: attr must be a non-empty string, not missing",
        ),
        (
            {"django": {"attr": "django", "version": 4}},
            "'django': version must be a non-empty string, not a number",
        ),
        (
            {"django": [{"attr": "", "version": "1"}]},
            "'django'[0]: attr must be a non-empty string, not an empty string",
        ),
        (
            {"django": [{"attr": True, "version": "1"}]},
            "'django'[0]: attr must be a non-empty string, not a boolean",
        ),
    ],
)
def test_load_index_errors_name_the_file(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "index.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(tmp_path, content)
    with pytest.raises(InputError) as error:
        load_index(path)
    assert str(error.value).startswith(f"{path}: {message}")
    assert "\n" not in str(error.value)


def test_load_index_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(InputError, match=rf"^{path}: cannot read the nixpkgs index: No such file"):
        load_index(path)


def test_order_is_version_then_attr() -> None:
    index = build_index(
        [
            ("b", "pkg", "1.0"),
            ("a", "pkg", "1.0.0"),
            ("nine", "pkg", "9.0"),
            ("ten", "pkg", "10.0"),
            ("rc", "pkg", "10.0rc1"),
            ("invalid", "not a name", "1.0"),
        ]
    )
    assert [p.attr for p in index["pkg"]] == ["ten", "rc", "nine", "a", "b"]
    assert list(index) == ["pkg"]


def test_dumps_index_sorts_whatever_it_is_given() -> None:
    shuffled = {
        "zeta": (NixpkgsPackage("zeta", "1.0"),),
        "alpha": (NixpkgsPackage("alpha_1", "1.0"), NixpkgsPackage("alpha_2", "2.0")),
        "nothing": (),
    }
    text = dumps_index(shuffled)
    assert list(json.loads(text)) == ["alpha", "zeta"]
    assert json.loads(text)["alpha"][0] == {"attr": "alpha_2", "version": "2.0"}
    assert text.endswith("}\n") and "\r" not in text


def test_packages_attr() -> None:
    assert packages_attr("3.12") == "python312Packages"
    assert packages_attr("3.9") == "python39Packages"


def test_nix_error_without_an_error_line() -> None:
    assert nix_error("warning: something\nit went wrong\n\n") == "it went wrong"
    assert nix_error("") == "nix-instantiate failed without a message"
    trace = (
        "error: while evaluating x\n\n       at /t.nix:1:2:\nerror: boom\n\n       at /t.nix:3:4:\n"
    )
    assert nix_error(trace) == "boom (at /t.nix:3:4)"


_names = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4})?", fullmatch=True)
_versions = st.builds(
    lambda parts, pre: ".".join(map(str, parts)) + pre,
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.sampled_from(["", "rc1", ".post2", "a3", ".dev0"]),
)


@given(st.lists(st.tuples(_names, _names, _versions), max_size=20))
def test_round_trip(records: list[tuple[str, str, str]]) -> None:
    index: NixpkgsIndex = build_index(records)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "index.json"
        path.write_text(dumps_index(index))
        assert load_index(path) == index
        assert dumps_index(load_index(path)) == path.read_text()


def test_git_is_optional(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    key = tree_key(tree)
    assert key is not None and key.startswith("files:")
