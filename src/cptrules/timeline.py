"""A code's timeline: the dates at which anything about it can change.

Every date between two such boundaries is one date class, and gets the same facts but the
date itself. The boundaries are the data's (each release's first day and the first day
after the year it prices; each HCPCS file's first day and its year's bounds) and the
code's own (the dates its date-reading rules compare the date of service with, which the
rules' checked expressions name; see ruleset.dateclass). A date class lets a report
computed for one date answer every date of its class, so the cost of a request does not
grow with the number of distinct dates asked, and neither does memory.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from .data.store import CodeData
from .evaluate import table_plan
from .ruleset.dateclass import DATE, DatePlan
from .ruleset.model import Ruleset


def data_boundaries(data: CodeData) -> tuple[str, ...]:
    """ISO dates at which the data in force can change."""
    days: set[dt.date] = set()
    for release in data.releases:
        days |= {release.effective, dt.date(release.year + 1, 1, 1)}
    for file in data.hcpcs_files:
        days |= {file.effective, dt.date(file.effective.year, 1, 1), dt.date(file.effective.year + 1, 1, 1)}
    return tuple(sorted(d.isoformat() for d in days))


def _date_plans(ruleset: Ruleset) -> list[DatePlan] | None:
    """The plans of every table that reads the date; None when one has none, or compares the
    date with a fact that itself depends on the date (then only exact dates are safe)."""
    plans: list[DatePlan] = []
    dependent: set[str] = {DATE}
    for table in ruleset.tables:
        reads = set(table.reads)
        if DATE in reads:
            plan = table_plan(ruleset, table)
            if plan is None or dependent & set(plan.compared):
                return None
            plans.append(plan)
        if reads & dependent:
            dependent |= set(table.outputs)
    return plans


class Timeline:
    """Date classes of one snapshot; the per-code boundary values are remembered, bounded."""

    LIMIT = 100_000

    def __init__(self, ruleset: Ruleset, data: CodeData) -> None:
        self.bounds = data_boundaries(data)
        self._bounds_set = frozenset(self.bounds)
        self.plans = _date_plans(ruleset)
        self._values: OrderedDict[Hashable, tuple[str, ...]] = OrderedDict()

    @property
    def exact(self) -> bool:
        """True when the rules read the date in a way classes cannot stand in for."""
        return self.plans is None

    def segment(self, day: str) -> tuple[int, bool]:
        """Where a date falls among the data's boundaries."""
        return bisect.bisect_left(self.bounds, day), day in self._bounds_set

    def remember(self, code: str, modifier: Hashable, day: str, facts: dict[str, Any]) -> None:
        """Keep the values a code's date-reading rules compare the date with, for its segment."""
        if self.plans is None:
            return
        values = tuple(v for plan in self.plans for v in
                       [*(facts[n] for n in plan.compared), *plan.literals])
        self._values[(code, modifier, self.segment(day))] = values
        if len(self._values) > self.LIMIT:
            self._values.popitem(last=False)

    def date_class(self, code: str, modifier: Hashable, day: str) -> Hashable | None:
        """The class key of a code (with its modifier and place, any hashable) on a date;
        None until `remember` has seen its segment."""
        if self.plans is None:
            return (code, modifier, day)
        segment = self.segment(day)
        values = self._values.get((code, modifier, segment))
        if values is None:
            return None
        return (code, modifier, segment, tuple((v == "", (v > day) - (v < day)) for v in values))
