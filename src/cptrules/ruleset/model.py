"""The compiled ruleset: frozen values, built once, shared by every request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .conditions import Condition


@dataclass(frozen=True, slots=True)
class Output:
    """A fact a table sets, with its type, allowed values and value when no rule fires."""

    name: str
    type: str
    default: Any
    values: tuple[Any, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: when its condition holds it sets literal facts and computed facts."""

    id: str
    table: str
    path: str
    line: int
    when: Condition
    sets: dict[str, Any]
    lets: dict[str, Condition]
    because: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class RuleTest:
    """A test written next to the rules: given facts, expected facts and fired rules."""

    table: str
    path: str
    line: int
    name: str
    given: dict[str, Any]
    expect: dict[str, Any]
    fired: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Table:
    """One rule file: a hit policy, the facts it sets and its rules in priority order."""

    name: str
    path: str
    hit: str
    outputs: dict[str, Output]
    rules: tuple[Rule, ...]
    tests: tuple[RuleTest, ...]
    description: str = ""
    reads: tuple[str, ...] = ()  # every fact any rule reads: the table's result depends on these alone


def facts_read(rules: tuple[Rule, ...]) -> tuple[str, ...]:
    """The facts a set of rules reads, in first-use order."""
    names: dict[str, None] = {}
    for rule in rules:
        names.update(dict.fromkeys(rule.when.reads))
        for expr in rule.lets.values():
            names.update(dict.fromkeys(expr.reads))
    return tuple(names)


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """An FAQ question form and when it applies to a code."""

    intent: str
    question: Any  # a compiled Jinja template
    question_source: str
    applies_when: Condition
    path: str
    line: int


@dataclass(frozen=True)
class Ruleset:
    """Everything that answers: tables, FAQ entries, answer templates, phrasings."""

    name: str
    revision: str
    root: str
    tables: tuple[Table, ...]
    faq: tuple[FaqEntry, ...]
    templates: dict[str, Any]
    phrasebook: Any
    fact_types: dict[str, str]
    files: tuple[str, ...]
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    topics: Any = field(default=None, compare=False, repr=False)  # topics.Topics: questions naming no code
    # Results per table keyed by the values it read; filled by evaluate(), never part of equality.
    memo: dict[str, dict[Any, Any]] = field(default_factory=dict, compare=False, repr=False)
    # Per table, how its memo key stands in for the date of service (ruleset.dateclass).
    date_plans: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rules(self) -> list[Rule]:
        """Every rule of every table, in evaluation order."""
        return [rule for table in self.tables for rule in table.rules]

    def table(self, name: str) -> Table:
        """The table called `name`."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)
