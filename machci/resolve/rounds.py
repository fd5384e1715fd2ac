"""resolvelib's resolver, with its per-round questions answered once per criterion.

Every round, resolvelib asks whether each criterion's pin still satisfies all of the criterion's
requirements, and for the preference of each open one: both walk every criterion, so a graph of
n packages costs n² checks (about 400,000 on an application of 300 packages). resolvelib
documents its Criterion objects as immutable (a changed criterion is a new object), and both
answers depend only on the criterion, the pin and the backtrack causes (Provider.get_preference
reads nothing else), so each is remembered per name until one of those changes. The algorithm,
and so the result, is resolvelib's own.

This reaches into resolvelib's Resolution (the class its Resolver drives), whose private methods
are stable across the versions pyproject.toml allows; tests/test_rounds.py checks the answers
against the unmemoised ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from resolvelib import Resolver
from resolvelib.resolvers.abstract import Result
from resolvelib.resolvers.criterion import Criterion
from resolvelib.resolvers.resolution import Resolution, _build_result
from resolvelib.structs import CT, KT, RT


class _RememberingResolution(Resolution[RT, CT, KT]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._satisfying: dict[KT, tuple[Criterion[RT, CT], CT, bool]] = {}
        self._preferences: dict[KT, tuple[Criterion[RT, CT], tuple[Any, ...], Any]] = {}

    def _is_current_pin_satisfying(self, name: KT, criterion: Criterion[RT, CT]) -> bool:
        # Asked for every criterion twice a round: the state read directly, not through the
        # `state` property.
        pin = self._states[-1].mapping.get(name)
        if pin is None:
            return False
        known = self._satisfying.get(name)
        if known is not None and known[0] is criterion and known[1] is pin:
            return known[2]
        satisfied = super()._is_current_pin_satisfying(name, criterion)
        self._satisfying[name] = (criterion, pin, satisfied)
        return satisfied

    def _get_preference(self, name: KT) -> Any:
        criterion = self.state.criteria[name]
        causes = tuple(self.state.backtrack_causes)
        known = self._preferences.get(name)
        if known is not None and known[0] is criterion and known[1] == causes:
            return known[2]
        preference = super()._get_preference(name)
        self._preferences[name] = (criterion, causes, preference)
        return preference


class RoundsResolver(Resolver[RT, CT, KT]):
    """resolvelib's Resolver, running the remembering Resolution."""

    def resolve(  # type: ignore[override]
        self, requirements: Iterable[RT], max_rounds: int = 100
    ) -> Result[RT, CT, KT]:
        resolution: _RememberingResolution[RT, CT, KT]
        resolution = _RememberingResolution(self.provider, self.reporter)
        state = resolution.resolve(requirements, max_rounds=max_rounds)
        return _build_result(state)
