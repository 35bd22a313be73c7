"""Ruleset × base facts → derived facts and the trace of the rules that fired; pure."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import RuleEvaluationError
from .ruleset.dateclass import DatePlan, date_key, plan_for
from .ruleset.model import Rule, Ruleset, Table


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule that fired: the values it read and the facts it set."""

    rule: Rule
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    code: str = ""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Every fact about a code and how each derived fact came about."""

    facts: dict[str, Any]
    fired: tuple[Firing, ...]

    def fired_in(self, table: str) -> list[Firing]:
        """The firings of one table, in order."""
        return [f for f in self.fired if f.rule.table == table]


def _check(rule: Rule, facts: dict[str, Any], condition: Any) -> Any:
    """A condition's value; any failure of it (a CEL error value, an exhausted iteration
    budget, a function that raised) fails this evaluation alone, located at the rule."""
    try:
        return condition.evaluate(facts)
    except RuleEvaluationError:
        raise
    except (ValueError, RuntimeError, TypeError, ArithmeticError) as exc:
        raise RuleEvaluationError(rule.id, rule.path, rule.line, str(exc), str(facts.get("code"))) from None


def evaluate_table(table: Table, facts: dict[str, Any]) -> list[Firing]:
    """Apply one table to `facts` in place, by its hit policy; return what fired."""
    for out in table.outputs.values():
        facts[out.name] = copy.copy(out.default)
    fired: list[Firing] = []
    for rule in table.rules:
        if not _check(rule, facts, rule.when):
            continue
        outputs = dict(rule.sets)
        for name, expr in rule.lets.items():
            outputs[name] = _check(rule, facts, expr)
        fired.append(Firing(rule, rule_inputs(rule, facts), outputs, str(facts.get("code", ""))))
        if table.hit == "first":
            break
    if table.hit == "unique" and len(fired) > 1:
        first, second = fired[0].rule, fired[1].rule
        raise RuleEvaluationError(
            second.id, second.path, second.line,
            f"table {table.name!r} is unique-hit but {first.id!r} (line {first.line}) also matched",
            str(facts.get("code")))
    for firing in fired:
        for name, value in firing.outputs.items():
            if table.outputs[name].type == "list" and table.hit == "collect":
                facts[name] = [*facts[name], value]
            else:
                facts[name] = value
    return fired


def rule_inputs(rule: Rule, facts: dict[str, Any]) -> dict[str, Any]:
    """The values of the facts a rule's condition and computations read, for its trace."""
    inputs = {name: facts[name] for name in rule.when.reads}
    for expr in rule.lets.values():
        inputs.update({name: facts[name] for name in expr.reads})
    return inputs


MEMO_LIMIT = 200_000
_NO_PLAN = object()


def table_plan(ruleset: Ruleset, table: Table) -> DatePlan | None:
    """How a table's results stand in for the date of service (worked out once per ruleset)."""
    plan = ruleset.date_plans.get(table.name, _NO_PLAN)
    if plan is _NO_PLAN:
        programs = [r.when.program for r in table.rules]
        programs += [e.program for r in table.rules for e in r.lets.values()]
        plan = ruleset.date_plans[table.name] = plan_for(table.reads, programs)
    return plan


def memo_key(ruleset: Ruleset, table: Table, facts: dict[str, Any]) -> tuple[Any, ...]:
    """What a table's result depends on: the facts it reads, with the date of service (and
    facts only compared with it) replaced by its order class where the rules allow it."""
    plan = table_plan(ruleset, table)
    if plan is not None:
        return date_key(facts, plan)
    return tuple(tuple(v) if isinstance(v, list) else v for v in (facts[n] for n in table.reads))


def evaluate(ruleset: Ruleset, base: dict[str, Any]) -> Evaluation:
    """Run every table in order over a copy of the base facts.

    A table's result depends only on the facts it reads, so results are remembered per
    ruleset by those values (dates by their order class, see ruleset.dateclass); the trace
    is rebuilt for the record at hand.
    """
    facts = dict(base)
    fired: list[Firing] = []
    code = str(facts.get("code", ""))
    for table in ruleset.tables:
        memo = ruleset.memo.setdefault(table.name, {})
        key = memo_key(ruleset, table, facts)
        known = memo.get(key)
        if known is None:
            firings = evaluate_table(table, facts)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = ({name: facts[name] for name in table.outputs},
                         tuple((f.rule, f.outputs) for f in firings))
            fired.extend(firings)
        else:
            outputs, trace = known
            # Inputs are read from this record: a shared entry may come from another date.
            fired.extend(Firing(rule, rule_inputs(rule, facts), outs, code) for rule, outs in trace)
            facts.update(outputs)
    return Evaluation(facts, tuple(fired))
