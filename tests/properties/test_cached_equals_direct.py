"""The date-class path answers exactly as direct evaluation does: every code (a sample by
default, all under the slow test) at every boundary of its timeline, the days around each,
and days inside each class."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from cptrules.engine import Engine
from cptrules.evaluate import evaluate

ONE = dt.timedelta(days=1)


def _dates(engine: Engine, code: str) -> list[dt.date]:
    """Every boundary the code's answers can change at, the days either side, and a day well
    inside each class (the boundaries' midpoints), before the first and after the last."""
    timeline = engine.snapshot.timeline
    edges = set(timeline.bounds)
    for anchor in [*timeline.bounds, "2026-11-27"]:
        facts = engine.get_code(code, dt.date.fromisoformat(anchor)).facts
        for plan in timeline.plans or ():
            edges |= {facts[n] for n in plan.compared if facts[n]} | set(plan.literals)
    days = sorted(dt.date.fromisoformat(e) for e in edges)
    around = {d + k * ONE for d in days for k in (-1, 0, 1)}
    inside = {a + (b - a) / 2 for a, b in zip(days, days[1:])}
    return sorted(around | inside | {days[0] - 400 * ONE, days[-1] + 400 * ONE})


def _compare(engine: Engine, codes: list[str]) -> int:
    plain = replace(engine.ruleset, memo={}, date_plans={t.name: None for t in engine.ruleset.tables})
    checked = 0
    for code in codes:
        for day in _dates(engine, code):
            cached = engine.get_code(code, day)
            base, _ = engine.snapshot.data.base_facts(code, day)
            direct = evaluate(plain, base)
            assert cached.facts == direct.facts, (code, day)
            assert [(f.rule.id, f.inputs, f.outputs) for f in cached.evaluation.fired] == \
                   [(f.rule.id, f.inputs, f.outputs) for f in direct.fired], (code, day)
            assert cached.provenance.date_of_service == day.isoformat()
            checked += 1
    return checked


def test_cached_reports_equal_direct_evaluation_on_a_sample(engine):
    codes = list(engine.snapshot.codes)
    sample = sorted(set(codes[::97]) | set(engine.snapshot.data.catalogue.entries)
                    | {"0042T", "J0171", "C9088", "70472", "0556T", "86153", "71046"})
    assert _compare(engine, sample) > 2000


@pytest.mark.slow
def test_cached_reports_equal_direct_evaluation_for_every_code(engine):
    print(f"{_compare(engine, list(engine.snapshot.codes))} reports compared")
