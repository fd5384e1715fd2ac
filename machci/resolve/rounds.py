"""resolvelib's resolver, with its per-round questions answered for what changed.

Every round, resolvelib asks whether each criterion's pin still satisfies all of the criterion's
requirements, and for the preference of each open one: both walk every criterion, so a graph of
n packages costs n² checks (about 400,000 on an application of 300 packages). resolvelib
documents its Criterion objects as immutable (a changed criterion is a new object), and both
answers depend only on the criterion, the pin and the backtrack causes (Provider.get_preference
reads nothing else), so each is remembered per name until one of those changes.

Remembered answers still leave a walk over every criterion each round, three times (the open
names, the satisfied ones, those a pin unsettled): 3,000 rounds over up to 3,000 criteria on a
graph of 3,000 packages. So the round loop is resolvelib's, copied here, except that the open
names are kept from round to round: a pin changes only its own name and the criteria of the
candidate's dependencies, and those alone are asked again; anything else that changes the
state (information removed from the criteria, a backjump, a rollback) has every criterion
asked again, as resolvelib does. The open names are offered in the order they opened rather
than the criteria's: Provider.get_preference ends with the name, so no two tie and the one
chosen is resolvelib's. The algorithm, and so the result, is resolvelib's.

This reaches into resolvelib's Resolution (the class its Resolver drives); pyproject.toml allows
the versions whose loop this follows (1.2), and tests/test_rounds.py checks the answers, and
each round's open names, against resolvelib's own on backtracking graphs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

from resolvelib import ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.resolvers.abstract import Result
from resolvelib.resolvers.criterion import Criterion
from resolvelib.resolvers.exceptions import RequirementsConflicted
from resolvelib.resolvers.resolution import Resolution, _build_result
from resolvelib.structs import CT, KT, RT, IteratorMapping, State


class _RememberingResolution(Resolution[RT, CT, KT]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._satisfying: dict[KT, tuple[Criterion[RT, CT], CT, bool]] = {}
        self._preferences: dict[KT, tuple[Criterion[RT, CT], tuple[Any, ...], Any]] = {}
        # The names whose criteria the last candidate's dependencies changed, each with whether
        # the state had a criterion for it before.
        self._touched: list[tuple[KT, bool]] = []

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

    def _preference_now(self) -> Callable[[KT], Any]:
        """`_get_preference` for this round, remembered per criterion and backtrack causes. The
        state and its causes are read once a round: `min` asks about every open name every
        round (100,000 times in a three-system airflow lock)."""
        criteria = self.state.criteria
        causes = tuple(self.state.backtrack_causes)
        remembered = self._preferences
        ask = super()._get_preference

        def preference(name: KT) -> Any:
            criterion = criteria[name]
            known = remembered.get(name)
            if known is not None and known[0] is criterion and known[1] == causes:
                return known[2]
            answer = ask(name)
            remembered[name] = (criterion, causes, answer)
            return answer

        return preference

    def _get_updated_criteria(self, candidate: CT) -> dict[KT, Criterion[RT, CT]]:
        # resolvelib's, noting which criteria the dependencies change: of the copy returned,
        # only those differ from the state's.
        known = self.state.criteria
        criteria = known.copy()
        touched = []
        for requirement in self._p.get_dependencies(candidate=candidate):
            self._add_to_criteria(criteria, requirement, parent=candidate)
            name = self._p.identify(requirement_or_candidate=requirement)
            touched.append((name, name in known))
        self._touched = touched
        return criteria

    def _open_names(self, names: Iterable[KT]) -> dict[KT, None]:
        """Of `names` in the state's criteria, those whose pin does not satisfy them."""
        criteria = self.state.criteria
        return {
            name: None
            for name in names
            if name in criteria and not self._is_current_pin_satisfying(name, criteria[name])
        }

    def resolve(self, requirements: Iterable[RT], max_rounds: int) -> State[RT, CT, KT]:
        # resolvelib 1.2's Resolution.resolve; the changes are marked "kept".
        if self._states:
            raise RuntimeError("already resolved")

        self._r.starting()

        # kept: the pins in a plain dict rather than an OrderedDict, whose copy (one per round,
        # all kept for backjumping) allocates a node per pin: a 3,000-package lock peaked at
        # 1,012 MB instead of 742. Both pop the last pin first, as backjumping needs.
        self._states = [State(mapping={}, criteria={}, backtrack_causes=[])]
        for r in requirements:
            try:
                self._add_to_criteria(self.state.criteria, r, parent=None)
            except RequirementsConflicted as e:
                raise ResolutionImpossible(e.criterion.information) from e

        self._push_new_state()

        optimistic_rounds_cutoff: int | None = None
        optimistic_backjumping_start_round: int | None = None
        unsatisfied: dict[KT, None] | None = None  # kept: the open names, None to ask anew

        for round_index in range(max_rounds):
            self._r.starting_round(index=round_index)

            if self._optimistic_backjumping_ratio and self._save_states is not None:
                if optimistic_backjumping_start_round is None:
                    optimistic_backjumping_start_round = round_index
                    optimistic_rounds_cutoff = int(
                        (max_rounds - round_index) * self._optimistic_backjumping_ratio
                    )
                    if optimistic_rounds_cutoff <= 0:
                        self._rollback_states()
                        unsatisfied = None
                        continue
                elif (
                    optimistic_rounds_cutoff is not None
                    and round_index - optimistic_backjumping_start_round >= optimistic_rounds_cutoff
                ):
                    self._rollback_states()
                    unsatisfied = None
                    continue

            if unsatisfied is None:
                unsatisfied = self._open_names(self.state.criteria)
            unsatisfied_names = list(unsatisfied)

            if not unsatisfied_names:
                self._r.ending(state=self.state)
                return self.state

            if len(unsatisfied_names) > 1:
                narrowed_unstatisfied_names = list(
                    self._p.narrow_requirement_selection(
                        identifiers=unsatisfied_names,
                        resolutions=self.state.mapping,
                        candidates=IteratorMapping(
                            self.state.criteria, operator.attrgetter("candidates")
                        ),
                        information=IteratorMapping(
                            self.state.criteria, operator.attrgetter("information")
                        ),
                        backtrack_causes=self.state.backtrack_causes,
                    )
                )
            else:
                narrowed_unstatisfied_names = unsatisfied_names

            if not narrowed_unstatisfied_names:
                raise RuntimeError("narrow_requirement_selection returned 0 names")

            if len(narrowed_unstatisfied_names) > 1:
                name = min(narrowed_unstatisfied_names, key=self._preference_now())  # kept
            else:
                name = narrowed_unstatisfied_names[0]

            failure_criterion = self._attempt_to_pin_criterion(name)

            if failure_criterion:
                unsatisfied = None  # kept: a backjump or a rollback changes any criterion
                causes = self._extract_causes(failure_criterion)
                self._r.resolving_conflicts(causes=causes)

                try:
                    success = self._backjump(causes)
                except ResolutionImpossible:
                    if self._optimistic_backjumping_ratio and self._save_states:
                        failed_optimistic_backjumping = True
                    else:
                        raise
                else:
                    failed_optimistic_backjumping = bool(
                        not success and self._optimistic_backjumping_ratio and self._save_states
                    )

                if failed_optimistic_backjumping and self._save_states:
                    self._rollback_states()
                else:
                    self.state.backtrack_causes[:] = causes
                    if not success:
                        raise ResolutionImpossible(self.state.backtrack_causes)
            else:
                # kept: the pin changed its own name and its dependencies' criteria only; of
                # those, the ones satisfied before had a criterion and were not open
                satisfied_before = {
                    key for key, known in self._touched if known and key not in unsatisfied
                }
                changed = [name, *(key for key, _known in self._touched)]
                for key in changed:
                    unsatisfied.pop(key, None)
                opened = self._open_names(changed)
                unsatisfied.update(opened)
                newly_unsatisfied_names = satisfied_before & opened.keys()
                self._remove_information_from_criteria(self.state.criteria, newly_unsatisfied_names)
                if newly_unsatisfied_names:
                    unsatisfied = None  # kept: every criterion was rewritten
                self._push_new_state()

            self._r.ending_round(index=round_index, state=self.state)

        raise ResolutionTooDeep(max_rounds)


class RoundsResolver(Resolver[RT, CT, KT]):
    """resolvelib's Resolver, running the remembering Resolution."""

    def resolve(  # type: ignore[override]
        self, requirements: Iterable[RT], max_rounds: int = 100
    ) -> Result[RT, CT, KT]:
        resolution: _RememberingResolution[RT, CT, KT]
        resolution = _RememberingResolution(self.provider, self.reporter)
        state = resolution.resolve(requirements, max_rounds=max_rounds)
        return _build_result(state)
