"""The remembering resolver gives resolvelib's answers, with fewer pin checks."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from resolvelib import (
    AbstractProvider,
    BaseReporter,
    ResolutionImpossible,
    ResolutionTooDeep,
    Resolver,
)
from resolvelib.resolvers import RequirementInformation

from machci.resolve.rounds import RoundsResolver, _RememberingResolution

Index = dict[str, dict[str, list[tuple[str, str]]]]  # name -> version -> [(name, specifier)]


class GraphProvider(AbstractProvider[tuple[str, str], tuple[str, str], str]):
    """Requirements (name, specifier) over an in-memory index; counts its pin checks. Its
    preference reads only the information and the backtrack causes, as machci's does."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.checks = 0

    def identify(self, requirement_or_candidate: tuple[str, str]) -> str:
        return requirement_or_candidate[0]

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, tuple[str, str]],
        candidates: Mapping[str, Iterator[tuple[str, str]]],
        information: Mapping[
            str, Iterator[RequirementInformation[tuple[str, str], tuple[str, str]]]
        ],
        backtrack_causes: Sequence[RequirementInformation[tuple[str, str], tuple[str, str]]],
    ) -> tuple[bool, int, str]:
        infos = list(information[identifier])
        in_causes = any(c.requirement[0] == identifier for c in backtrack_causes)
        return (not in_causes, -len(infos), identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[tuple[str, str]]],
        incompatibilities: Mapping[str, Iterator[tuple[str, str]]],
    ) -> list[tuple[str, str]]:
        specs = [SpecifierSet(spec) for _, spec in requirements[identifier]]
        bad = set(incompatibilities[identifier])
        versions = sorted(self.index.get(identifier, {}), key=Version, reverse=True)
        return [
            (identifier, v)
            for v in versions
            if all(Version(v) in s for s in specs) and (identifier, v) not in bad
        ]

    def is_satisfied_by(self, requirement: tuple[str, str], candidate: tuple[str, str]) -> bool:
        self.checks += 1
        return Version(candidate[1]) in SpecifierSet(requirement[1])

    def get_dependencies(self, candidate: tuple[str, str]) -> list[tuple[str, str]]:
        return self.index[candidate[0]][candidate[1]]

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, tuple[str, str]],
        candidates: Mapping[str, Iterator[tuple[str, str]]],
        information: Mapping[
            str, Iterator[RequirementInformation[tuple[str, str], tuple[str, str]]]
        ],
        backtrack_causes: Sequence[RequirementInformation[tuple[str, str], tuple[str, str]]],
    ) -> Iterable[str]:
        """The open names offered must be those a walk over every criterion finds."""
        identifiers = list(identifiers)
        walked = {
            name
            for name in information
            if name not in resolutions
            or not all(
                Version(resolutions[name][1]) in SpecifierSet(info.requirement[1])
                for info in information[name]
            )
        }
        assert sorted(identifiers) == sorted(walked)
        return identifiers


# The last root clashes with some of the random ranges: resolutions backtrack, a few fail.
ROOTS = [("p0", ">=0"), ("p1", ">=0"), ("p2", ">=0"), ("p12", ">=4.0")]


def random_index(seed: int, size: int) -> Index:
    """Layered packages whose newest versions often clash: with these seeds most resolutions
    backtrack, and some turn out impossible."""
    rng = random.Random(seed)
    names = [f"p{i}" for i in range(size)]
    index: Index = {}
    for position, name in enumerate(names):
        index[name] = {}
        for major in range(5):
            deps: list[tuple[str, str]] = []
            for dep in rng.sample(names[position + 1 :], min(2, size - position - 1)):
                low = rng.randint(0, 3)
                deps.append((dep, f">={low}.0,<{low + rng.randint(2, 4)}.0"))
            index[name][f"{major}.0"] = deps
    return index


def resolve(
    resolver_class: type[Resolver[tuple[str, str], tuple[str, str], str]],
    index: Index,
    roots: list[tuple[str, str]],
) -> tuple[dict[str, tuple[str, str]] | str, int]:
    provider = GraphProvider(index)
    try:
        result = resolver_class(provider, BaseReporter()).resolve(roots, max_rounds=400)
    except ResolutionImpossible as exc:
        return f"impossible: {sorted(map(repr, exc.causes))}", provider.checks
    except ResolutionTooDeep:
        return "too deep", provider.checks
    return dict(result.mapping), provider.checks


@pytest.mark.parametrize("seed", range(36))
def test_same_answers_as_resolvelib(seed: int) -> None:
    index = random_index(seed, 15)
    plain, plain_checks = resolve(Resolver, index, ROOTS)
    remembered, checks = resolve(RoundsResolver, index, ROOTS)
    assert remembered == plain
    assert checks <= plain_checks


def test_the_seeds_cover_backtracking_and_failure() -> None:
    answers = [resolve(Resolver, random_index(seed, 15), ROOTS)[0] for seed in range(36)]
    kinds = [a if isinstance(a, str) else "resolved" for a in answers]
    assert kinds.count("resolved") > 24
    assert any(kind.startswith("impossible") for kind in kinds)


def test_a_large_graph_needs_far_fewer_pin_checks() -> None:
    index = {f"p{i}": {"1.0": [(f"p{i + 1}", ">=1")] if i < 299 else []} for i in range(300)}
    index["root"] = {"1.0": [(f"p{i}", ">=1") for i in range(0, 300, 10)]}
    plain, plain_checks = resolve(Resolver, index, [("root", ">=1")])
    remembered, checks = resolve(RoundsResolver, index, [("root", ">=1")])
    assert remembered == plain and isinstance(plain, dict) and len(plain) == 301
    assert checks * 20 < plain_checks  # linear in the graph, not quadratic


def test_a_round_asks_only_about_what_the_last_pin_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without backtracking, each name's pin is asked about a bounded number of times, however
    large the graph: resolvelib walks every criterion every round (n² questions)."""
    asked = 0
    ask = _RememberingResolution._is_current_pin_satisfying

    def counted(self: _RememberingResolution[Any, Any, Any], name: Any, criterion: Any) -> bool:
        nonlocal asked
        asked += 1
        return ask(self, name, criterion)

    monkeypatch.setattr(_RememberingResolution, "_is_current_pin_satisfying", counted)
    size = 300
    index = {f"p{i}": {"1.0": [(f"p{i + 1}", ">=1")] if i < size - 1 else []} for i in range(size)}
    index["root"] = {"1.0": [(f"p{i}", ">=1") for i in range(0, size, 10)]}
    remembered, _checks = resolve(RoundsResolver, index, [("root", ">=1")])
    assert isinstance(remembered, dict) and len(remembered) == size + 1
    assert asked < 4 * size
