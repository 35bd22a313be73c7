"""Ruleset × base facts → derived facts and the trace of the rules that fired; pure."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import RuleEvaluationError
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
        inputs = {name: facts[name] for name in rule.when.reads}
        for expr in rule.lets.values():
            inputs.update({name: facts[name] for name in expr.reads})
        fired.append(Firing(rule, inputs, outputs, str(facts.get("code", ""))))
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


MEMO_LIMIT = 200_000


def memo_key(facts: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in (facts[n] for n in names))


def evaluate(ruleset: Ruleset, base: dict[str, Any]) -> Evaluation:
    """Run every table in order over a copy of the base facts.

    A table's result depends only on the facts it reads, so results are remembered per
    ruleset by those values; the trace is rebuilt for the code at hand.
    """
    facts = dict(base)
    fired: list[Firing] = []
    code = str(facts.get("code", ""))
    for table in ruleset.tables:
        memo = ruleset.memo.setdefault(table.name, {})
        key = memo_key(facts, table.reads)
        known = memo.get(key)
        if known is None:
            firings = evaluate_table(table, facts)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = ({name: facts[name] for name in table.outputs},
                         tuple((f.rule, f.inputs, f.outputs) for f in firings))
            fired.extend(firings)
        else:
            outputs, trace = known
            facts.update(outputs)
            fired.extend(Firing(rule, inputs, outs, code) for rule, inputs, outs in trace)
    return Evaluation(facts, tuple(fired))
