"""One system's runtime dependency graph as text: an indented tree, Graphviz DOT or a Mermaid
flowchart, for `machci graph`.

Pure functions over a SystemLock; the same lock gives the same bytes (nodes and edges in name
order). Names and versions are written into other languages, so every character that could end a
string, open a tag or start a new statement there is escaped: the Lock holds canonical names, but a
renderer should not depend on what the resolver happened to check.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from machci.lock.model import SystemLock

# Left as they are in DOT and Mermaid labels: enough for every name and version the Lock holds.
_PLAIN = frozenset(string.ascii_letters + string.digits + " .-_+!")


class Graph:
    """The nodes (name -> label) and runtime edges (name -> sorted dependency names) to draw."""

    def __init__(self, labels: Mapping[str, str], edges: Mapping[str, tuple[str, ...]]) -> None:
        self.labels = dict(sorted(labels.items()))
        self.edges = {name: tuple(sorted(edges.get(name, ()))) for name in self.labels}

    def reaching(self, starts: Iterable[str]) -> set[str]:
        """Every node reachable from `starts` along edges, `starts` included."""
        seen: set[str] = set()
        todo = [s for s in starts if s in self.labels]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.edges[name])
        return seen


def graph_of(system: SystemLock) -> Graph:
    """Every locked package, with an edge to each runtime dependency. A dependency the system
    does not lock (never written by the resolver) still gets a node, labelled by its name alone,
    rather than an edge to nowhere."""
    labels = {p.name: f"{p.name} {p.version}" for p in system.packages}
    edges = {p.name: p.dependencies for p in system.packages}
    for dependencies in edges.values():
        for name in dependencies:
            labels.setdefault(name, name)
    return Graph(labels, edges)


def roots_of(system: SystemLock, graph: Graph) -> list[str]:
    """The names of the system's top-level requirements that are drawn, sorted, each once."""
    return sorted({r.name for r in system.roots if r.name in graph.labels})


def towards(graph: Graph, roots: Iterable[str], name: str) -> Graph:
    """Only the nodes and edges on a path from a root to `name`, and `name` itself (alone when
    no runtime path reaches it: a build requirement, say)."""
    reverse: dict[str, list[str]] = {n: [] for n in graph.labels}
    for source, targets in graph.edges.items():
        for target in targets:
            reverse[target].append(source)
    reached = graph.reaching(roots)
    leading = Graph(graph.labels, {n: tuple(v) for n, v in reverse.items()}).reaching([name])
    kept = (reached & leading) | ({name} & graph.labels.keys())
    return Graph(
        {n: label for n, label in graph.labels.items() if n in kept},
        {n: tuple(d for d in graph.edges[n] if d in kept) for n in kept},
    )


def printable(text: str) -> str:
    """Text for a terminal: control characters (a newline, an escape sequence) as Python writes
    them in a string literal, so one name stays on one line and cannot move the cursor."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def text(graph: Graph, roots: Iterable[str], title: str) -> str:
    """An indented tree from each root; a package whose dependencies were already shown is
    marked (*) instead of repeated, which also ends every cycle. Packages no root reaches at run
    time (build requirements) follow, as trees of their own."""
    lines = [printable(title)]
    shown: set[str] = set()

    def walk(name: str, depth: int) -> None:
        repeated = name in shown and bool(graph.edges[name])
        mark = " (*)" if repeated else ""
        lines.append("  " * depth + printable(graph.labels[name]) + mark)
        if name in shown:
            return
        shown.add(name)
        for dependency in graph.edges[name]:
            walk(dependency, depth + 1)

    tops = list(roots)
    for root in tops:
        walk(root, 1)
    reached = graph.reaching(tops)
    rest = [n for n in graph.labels if n not in reached]
    if rest:
        lines.append("not required at run time:")
        for name in rest:
            if name not in shown:
                walk(name, 1)
    if any(line.endswith(" (*)") for line in lines[1:]):
        lines.append("(*) its dependencies are shown above")
    return "\n".join(lines) + "\n"


def _entities(label: str, template: str) -> str:
    return "".join(c if c in _PLAIN else template.format(ord(c)) for c in label)


def dot_label(label: str) -> str:
    """A quoted DOT string showing `label` as it is.

    Every character beyond letters, digits and ` .-_+!` becomes an HTML entity, which Graphviz
    decodes in labels: no `"` can end the string and no backslash can stand before the closing
    quote (Graphviz's lexer would read the pair as an escaped quote). A backslash is written twice
    because, once decoded, Graphviz reads labels as escString (where `\\N` is the node's name)."""
    return '"' + _entities(label.replace("\\", "\\\\"), "&#{};") + '"'


def mermaid_label(label: str) -> str:
    """A quoted Mermaid label showing `label` as it is: every character beyond letters, digits
    and ` .-_+!` as Mermaid's entity code `#N;` (quotes, brackets, `<`, `#`, newlines)."""
    return '"' + _entities(label, "#{};") + '"'


def _ids(graph: Graph) -> dict[str, str]:
    """Node identifiers that are safe in every language: n0, n1, … in name order."""
    return {name: f"n{i}" for i, name in enumerate(graph.labels)}


def dot(graph: Graph, roots: Iterable[str]) -> str:
    """A Graphviz digraph; the top-level requirements are drawn bold."""
    ids, tops = _ids(graph), set(roots)
    lines = ["digraph {", "  node [shape=box];"]
    for name, label in graph.labels.items():
        style = ", style=bold" if name in tops else ""
        lines.append(f"  {ids[name]} [label={dot_label(label)}{style}];")
    for name, dependencies in graph.edges.items():
        lines.extend(f"  {ids[name]} -> {ids[d]};" for d in dependencies)
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid(graph: Graph, roots: Iterable[str]) -> str:
    """A Mermaid flowchart for Markdown; the top-level requirements are drawn as stadiums."""
    ids, tops = _ids(graph), set(roots)
    lines = ["flowchart TD"]
    for name, label in graph.labels.items():
        shape = "([{}])" if name in tops else "[{}]"
        lines.append(f"  {ids[name]}" + shape.format(mermaid_label(label)))
    for name, dependencies in graph.edges.items():
        lines.extend(f"  {ids[name]} --> {ids[d]}" for d in dependencies)
    return "\n".join(lines) + "\n"


def draw(system: SystemLock, form: str = "text", why: str | None = None) -> str:
    """`system`'s runtime graph in `form` ("text", "dot" or "mermaid"); with `why` (a canonical
    name the system locks), only what leads from the top-level requirements to it."""
    graph = graph_of(system)
    roots = roots_of(system, graph)
    if why is not None:
        graph = towards(graph, roots, why)
        roots = [r for r in roots if r in graph.labels]
    if form == "dot":
        return dot(graph, roots)
    if form == "mermaid":
        return mermaid(graph, roots)
    if form != "text":
        raise ValueError(f"unknown graph format {form!r}")
    title = f"{system.system} (Python {system.python})" + (f", paths to {why}" if why else "")
    return text(graph, roots, title + ":")
