"""Tables that only compare the date of service with other dates remember one result per date
class, not per date: random dates cannot grow the evaluation memo (hardening item 18)."""

import datetime as dt
import random
from dataclasses import replace

from cptrules.engine import Engine
from cptrules.evaluate import evaluate
from cptrules.ruleset.dateclass import plan_for


def test_random_dates_share_a_handful_of_entries(rules_dir):
    engine = Engine.load(rules_dir, check_data=False, clock=lambda: dt.date(2026, 11, 27))
    memo = engine.ruleset.memo
    rng = random.Random(7)
    for _ in range(2000):
        day = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(40_000))
        engine.get_code(rng.choice(["0042T", "J0171", "99213", "0556T", "70472"]), day)
    assert engine.ruleset.date_plans["code_status"] is not None
    assert len(memo["code_status"]) < 40  # one per class, not per date (2000 dates asked)


def test_a_date_class_gives_the_answer_each_of_its_dates_gets(rules_dir):
    """The cached result for a class equals direct evaluation at every date tried."""
    engine = Engine.load(rules_dir, check_data=False, clock=lambda: dt.date(2026, 11, 27))
    data = engine.snapshot.data
    for code in ("0042T", "J0171", "70472", "0556T", "G0439"):
        for day in (dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 12, 31),
                    dt.date(2026, 1, 1), dt.date(2031, 1, 1), dt.date(2019, 6, 30)):
            base, _ = data.base_facts(code, day)
            cached = evaluate(engine.ruleset, base)
            # Direct: an empty memo, and no date plans (every table keyed by the full date).
            plain = replace(engine.ruleset, memo={},
                            date_plans={t.name: None for t in engine.ruleset.tables})
            direct = evaluate(plain, base)
            assert cached.facts == direct.facts, (code, day)
            assert [(f.rule.id, f.inputs) for f in cached.fired] == \
                   [(f.rule.id, f.inputs) for f in direct.fired], (code, day)


def test_a_rule_that_reads_the_date_otherwise_turns_the_plan_off(rules_dir):
    engine = Engine.load(rules_dir, check_data=False)
    table = engine.ruleset.table("code_status")
    programs = [r.when.program for r in table.rules]
    assert plan_for(table.reads, programs) is not None
    from cptrules.ruleset.conditions import Environment

    env = Environment(engine.ruleset.fact_types)
    odd = env.compile("date_of_service.startsWith('2025')", "bool")
    assert plan_for(table.reads, [*programs, odd.program]) is None
    shifted = env.compile("add_years(date_of_service, 1) > effective_date", "bool")
    assert plan_for(table.reads, [*programs, shifted.program]) is None
