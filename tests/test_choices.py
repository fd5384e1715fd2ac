"""resolve/resolution.py's Choices: listed lazily, and fitted to specifiers with remembered
skips, giving exactly what checking every choice against every specifier gives."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from machci.resolve.resolution import Choice, Choices


def choices(versions: list[str], listed: list[str] | None = None) -> Choices:
    def each() -> Iterator[Choice]:
        for version in versions:
            if listed is not None:
                listed.append(version)
            yield Choice("wheel", Version(version), ())

    return Choices(each())


def naive(versions: list[str], specifiers: list[SpecifierSet]) -> list[int]:
    return [
        position
        for position, version in enumerate(versions)
        if all(s.contains(Version(version), prereleases=True) for s in specifiers)
    ]


def test_fitting_agrees_with_checking_every_choice() -> None:
    pick = random.Random(7)
    versions = [f"{major}.{minor}" for major in range(9, 0, -1) for minor in range(9, -1, -1)]
    versions += ["1.0rc1", "0.9"]
    operators = ["<", "<=", ">", ">=", "==", "!=", "~="]
    for _ in range(300):
        specifiers = [
            SpecifierSet(
                ",".join(
                    f"{pick.choice(operators)}{pick.randint(0, 9)}.{pick.randint(0, 9)}"
                    for _ in range(pick.randint(0, 2))
                )
            )
            for _ in range(pick.randint(1, 4))
        ]
        found = choices(versions)
        expected = naive(versions, specifiers)
        # Asked twice, as the resolver does each time a requirement is added.
        for _ in range(2):
            assert [p for p, _choice in found.fitting(specifiers)] == expected


def test_fitting_lists_choices_only_as_far_as_asked() -> None:
    listed: list[str] = []
    found = choices(["3.0", "2.1", "2.0", "1.0"], listed)
    fits = found.fitting([SpecifierSet("<2.1")])
    assert next(fits) == (2, found[2])
    assert listed == ["3.0", "2.1", "2.0"]
    assert [c.version for c in itertools.islice(found, 0, None)] == [
        Version(v) for v in ("3.0", "2.1", "2.0", "1.0")
    ]
    assert list(found.after(1)) == [found[2], found[3]]


def test_no_choice_fits_and_an_empty_list() -> None:
    assert list(choices(["2.0", "1.0"]).fitting([SpecifierSet(">3")])) == []
    assert list(choices([]).fitting([SpecifierSet()])) == []
    only = choices(["1.0"])
    assert list(only.fitting([])) == [(0, only[0])]
