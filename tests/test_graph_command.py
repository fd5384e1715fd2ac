"""`machci graph`: one system's locked runtime graph as a tree, Mermaid or DOT; the same lock
gives the same bytes, offline from an in-sync default.nix; labels are escaped for each language."""

from __future__ import annotations

from pathlib import Path

import pytest

from machci.lock.draw import dot_label, draw, mermaid_label
from machci.lock.model import LockedPackage, Root, SystemLock
from tests.fixtures.index import Index
from tests.helpers import Run, machci, write_project

SYSTEMS = ("x86_64-linux", "aarch64-darwin")


def make_project(index: Index, path: Path) -> Path:
    """app needs left and right, which both need base (a diamond), and mac-only on Darwin."""
    index.publish("base", "1.0")
    index.publish("left", "1.0", requires_dist=("base",))
    index.publish("right", "2.0", requires_dist=("base>=1",))
    index.publish("mac-only", "1.0")
    index.publish(
        "app", "0.1", requires_dist=("left", "right", 'mac-only; sys_platform == "darwin"')
    )
    index.publish("solo", "3.0")
    return write_project(path, index, "App\nsolo\n", systems=SYSTEMS)


def graph(project: Path, *argv: str, cache: str = ".cache") -> Run:
    return machci(project, "graph", *argv, cache=cache)


TEXT = """\
aarch64-darwin (Python 3.12):
  app 0.1
    left 1.0
      base 1.0
    mac-only 1.0
    right 2.0
      base 1.0
  solo 3.0
"""

MERMAID = """\
flowchart TD
  n0(["app 0.1"])
  n1["base 1.0"]
  n2["left 1.0"]
  n3["right 2.0"]
  n4(["solo 3.0"])
  n0 --> n2
  n0 --> n3
  n2 --> n1
  n3 --> n1
"""

DOT = """\
digraph {
  node [shape=box];
  n0 [label="app 0.1", style=bold];
  n1 [label="base 1.0"];
  n2 [label="left 1.0"];
  n3 [label="mac-only 1.0"];
  n4 [label="right 2.0"];
  n5 [label="solo 3.0", style=bold];
  n0 -> n2;
  n0 -> n3;
  n0 -> n4;
  n2 -> n1;
  n4 -> n1;
}
"""

WHY = """\
x86_64-linux (Python 3.12), paths to base:
  app 0.1
    left 1.0
      base 1.0
    right 2.0
      base 1.0
"""


@pytest.fixture
def project(index: Index, tmp_path: Path) -> Path:
    return make_project(index, tmp_path / "project")


def test_each_format_of_the_first_system_or_the_one_asked_for(project: Path) -> None:
    # The first configured system, although the lock lists aarch64-darwin first.
    assert graph(project, "--format", "mermaid") == Run(0, MERMAID, "")
    assert graph(project, "--format", "mermaid", "--system", "x86_64-linux") == Run(0, MERMAID, "")
    assert graph(project, "--system", "aarch64-darwin") == Run(0, TEXT, "")
    assert graph(project, "--format", "dot", "--system", "aarch64-darwin") == Run(0, DOT, "")


def test_why_keeps_only_the_paths_to_the_package(project: Path) -> None:
    assert graph(project, "--system", "x86_64-linux", "--why", "Base") == Run(0, WHY, "")
    mermaid = graph(
        project, "--why", "mac_only", "--format", "mermaid", "--system", "aarch64-darwin"
    )
    assert mermaid.out == 'flowchart TD\n  n0(["app 0.1"])\n  n1["mac-only 1.0"]\n  n0 --> n1\n'
    missing = graph(project, "--why", "mac-only")
    assert missing == Run(1, "", "machci: mac-only is not in the lock of x86_64-linux\n")


def test_a_system_that_is_not_configured_is_an_error(project: Path) -> None:
    result = graph(project, "--system", "aarch64-linux")
    assert result == Run(
        2,
        "",
        "machci: error: --system aarch64-linux is not one of the configured systems"
        " (aarch64-darwin, x86_64-linux)\n",
    )


def test_the_synced_file_draws_the_same_bytes_offline(index: Index, project: Path) -> None:
    argvs = [(), ("--format", "mermaid"), ("--format", "dot"), ("--why", "base")]
    resolved = [graph(project, *argv) for argv in argvs]  # no default.nix yet
    assert resolved == [graph(project, *argv) for argv in argvs]
    assert machci(project, "sync").code == 1
    index.stop()
    requests = len(index.requests)
    offline = [graph(project, *argv, "--offline", cache="empty") for argv in argvs]
    assert offline == resolved
    assert len(index.requests) == requests
    assert not (project / "empty").exists()


HOSTILE = 'a"b]c<d>e\nf#g\\'


def hostile_system() -> SystemLock:
    packages = (
        LockedPackage("base", "1.0", "wheel", None),
        LockedPackage(HOSTILE, "1.0", "wheel", None, dependencies=("base", "x[y")),
    )
    return SystemLock("x86_64-linux", "3.12", packages, (Root(HOSTILE, HOSTILE, "r.txt:1"),))


def test_labels_are_escaped_for_each_language() -> None:
    system = hostile_system()
    assert draw(system, "mermaid") == (
        "flowchart TD\n"
        '  n0(["a#34;b#93;c#60;d#62;e#10;f#35;g#92; 1.0"])\n'
        '  n1["base 1.0"]\n'
        '  n2["x#91;y"]\n'
        "  n0 --> n1\n"
        "  n0 --> n2\n"
    )
    assert draw(system, "dot") == (
        "digraph {\n"
        "  node [shape=box];\n"
        '  n0 [label="a&#34;b&#93;c&#60;d&#62;e&#10;f&#35;g&#92;&#92; 1.0", style=bold];\n'
        '  n1 [label="base 1.0"];\n'
        '  n2 [label="x&#91;y"];\n'
        "  n0 -> n1;\n"
        "  n0 -> n2;\n"
        "}\n"
    )
    assert draw(system, "text") == (
        'x86_64-linux (Python 3.12):\n  a"b]c<d>e\\nf#g\\ 1.0\n    base 1.0\n    x[y\n'
    )
    for label in (dot_label(HOSTILE), mermaid_label(HOSTILE)):
        inner = label[1:-1]
        assert not set('"\\<>[]\n') & set(inner)


def test_shared_and_cyclic_dependencies_are_shown_once() -> None:
    packages = (
        LockedPackage("a", "1", "wheel", None, dependencies=("b", "c")),
        LockedPackage("b", "1", "wheel", None, dependencies=("c",)),
        LockedPackage("c", "1", "wheel", None, dependencies=("b",)),
        LockedPackage("tool", "1", "wheel", None),
    )
    system = SystemLock("x86_64-linux", "3.12", packages, (Root("a", "a", "r.txt:1"),))
    assert draw(system) == (
        "x86_64-linux (Python 3.12):\n"
        "  a 1\n"
        "    b 1\n"
        "      c 1\n"
        "        b 1 (*)\n"
        "    c 1 (*)\n"
        "not required at run time:\n"
        "  tool 1\n"
        "(*) its dependencies are shown above\n"
    )
    assert draw(system, "text", "tool").endswith("not required at run time:\n  tool 1\n")
    assert draw(system, "mermaid", "absent") == "flowchart TD\n"
