"""Checks that need evaluation: the tests written in rule files, per-rule coverage,
and hit-policy conflicts found by running every rule over the loaded code data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import datetime as dt

from ..errors import RuleEvaluationError, RuleProblem
from ..evaluate import memo_key, evaluate_table
from ..facts import empty_facts
from .model import Ruleset, RuleTest


@dataclass
class TestOutcome:
    """One rule-file test and what went wrong, if anything."""

    test: RuleTest
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class TestReport:
    """All rule-file test outcomes plus which rules no test made fire."""

    outcomes: list[TestOutcome] = field(default_factory=list)
    fired_by_tests: dict[str, int] = field(default_factory=dict)
    untested_rules: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def coverage(self) -> float:
        total = len(self.fired_by_tests) + len(self.untested_rules)
        return len(self.fired_by_tests) / total if total else 0.0


def run_test(ruleset: Ruleset, test: RuleTest) -> tuple[TestOutcome, list[str]]:
    """Run the tables up to the test's own, pinning given facts; compare expectations."""
    facts = empty_facts()
    facts.update(test.given)
    fired_ids: list[str] = []
    all_fired: list[str] = []
    try:
        for table in ruleset.tables:
            firings = evaluate_table(table, facts)
            all_fired.extend(f.rule.id for f in firings)
            facts.update({k: v for k, v in test.given.items() if k in table.outputs})
            if table.name == test.table:
                fired_ids = [f.rule.id for f in firings]
                break
    except RuleEvaluationError as exc:
        return TestOutcome(test, [f"evaluation failed: {exc.message}"]), all_fired
    failures = [f"{key}: expected {want!r}, got {facts.get(key)!r}"
                for key, want in test.expect.items() if facts.get(key) != want]
    if test.fired is not None and list(test.fired) != fired_ids:
        failures.append(f"fired: expected {list(test.fired)}, got {fired_ids}")
    return TestOutcome(test, failures), all_fired


def run_rule_tests(ruleset: Ruleset) -> TestReport:
    """Every test of every table, with per-rule coverage."""
    report = TestReport()
    counts: dict[str, int] = {rule.id: 0 for rule in ruleset.rules}
    for table in ruleset.tables:
        for test in table.tests:
            outcome, fired = run_test(ruleset, test)
            report.outcomes.append(outcome)
            for rule_id in fired:
                counts[rule_id] = counts.get(rule_id, 0) + 1
    report.fired_by_tests = {k: v for k, v in counts.items() if v}
    report.untested_rules = [k for k, v in counts.items() if not v]
    return report


def test_problems(report: TestReport) -> list[RuleProblem]:
    """Failed rule-file tests as located problems."""
    return [RuleProblem(o.test.path, o.test.line, "TEST_FAILED",
                        f"{o.test.name}: " + "; ".join(o.failures)) for o in report.failed]


def data_problems(ruleset: Ruleset, records: Iterable[dict[str, Any]],
                  on_record: Callable[[dict[str, Any]], None] | None = None) -> list[RuleProblem]:
    """Evaluate every record; report hit-policy conflicts and evaluation errors once per rule.

    A table's result depends only on the facts it reads, so each distinct combination
    is evaluated once: the whole code catalogue is checked in well under a second.
    `on_record` is handed each record that evaluated whole, with every derived fact.
    """
    problems: dict[tuple[str, int], RuleProblem] = {}
    seen: dict[str, dict[tuple[Any, ...], dict[str, Any] | None]] = {t.name: {} for t in ruleset.tables}
    for record in records:
        facts = dict(record)
        for table in ruleset.tables:
            key = memo_key(ruleset, table, facts)
            cache = seen[table.name]
            if key not in cache:
                trial = dict(facts)
                try:
                    evaluate_table(table, trial)
                    cache[key] = {name: trial[name] for name in table.outputs}
                except RuleEvaluationError as exc:
                    problem = evaluation_problem(exc)
                    problems.setdefault((problem.path, problem.line), problem)
                    cache[key] = None
            outputs = cache[key]
            if outputs is None:
                break
            facts.update(outputs)
        else:
            if on_record is not None:
                on_record(facts)
    return list(problems.values())


def evaluation_problem(exc: RuleEvaluationError) -> RuleProblem:
    """A rule's failure while evaluating, as a located problem (a unique-hit overlap is a CONFLICT)."""
    kind = "CONFLICT" if "unique-hit" in exc.message else "EVALUATION"
    return RuleProblem(exc.metadata["file"], int(exc.metadata["line"]), kind, exc.message.split(": ", 1)[-1])


def classify(ruleset: Ruleset, code: str) -> tuple[str, str]:
    """(category, label) from the first table alone: the category rules decide what a code is."""
    facts = empty_facts()
    facts["code"] = code
    evaluate_table(ruleset.tables[0], facts)
    return str(facts.get("category", "")), str(facts.get("category_label", ""))


def phrasebook_problems(ruleset: Ruleset, today: dt.date) -> list[RuleProblem]:
    """The example questions written in questions.yaml, checked against the matcher."""
    from ..questions.matcher import interpret

    book = ruleset.phrasebook
    problems = []
    for test in book.tests:
        reading = interpret(test["q"], book, lambda c: bool(classify(ruleset, c)[0]), today)
        want_codes = [str(c) for c in test.get("codes", [])]
        if reading.intent != test["intent"] or list(reading.extraction.codes) != want_codes:
            problems.append(RuleProblem(book.path, test["line"], "TEST_FAILED",
                                        f"{test['q']!r}: expected {test['intent']} {want_codes}, got "
                                        f"{reading.intent} {list(reading.extraction.codes)}"))
    return problems
