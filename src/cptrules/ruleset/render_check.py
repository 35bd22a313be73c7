"""Render every answer template and FAQ question over representative fact records.

A template that fails only when it renders (a sandbox refusal, a filter given an
empty date, a budget overrun) would otherwise pass the load checks and then fail
every request for its intent. So at check time each template is rendered once for
every distinct *shape* of the facts it reads, and each FAQ entry's condition is
evaluated and its question rendered the same way.

The records come from the loaded data, not from a list of codes: every code is
evaluated on the check's date (data_problems already does this), and the first code
of each shape is kept; the kept codes are then evaluated again on dates before,
inside and after the loaded releases, without a date, and with each modifier row
they have. A shape is what a template's branches can tell apart: the exact value of
a string it compares with a literal, whether other values are empty, the sign of a
number, a list's length up to two. Every combination of the compared strings across
all templates (category, status indicator, RVU availability, code status, lifecycle
policy, ...) is kept as well, so the sample stays a few hundred codes of twenty
thousand and still holds one code of every kind the templates distinguish.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import nodes

from ..answers.templates import ENVIRONMENT, AnswerTemplate
from ..errors import RuleEvaluationError, RuleProblem, TemplateRenderError
from .check import data_problems, evaluation_problem
from .model import Ruleset

Shape = tuple[Any, ...]


def template_reads(template: AnswerTemplate) -> dict[str, bool]:
    """The names a template reads, each True when it is compared with a literal other than ''
    (its value picks a branch) and False when only its emptiness can matter."""
    tree = ENVIRONMENT.parse(template.source)
    compared = {n.name for cmp in tree.find_all(nodes.Compare) if _has_literal(cmp)
                for n in cmp.find_all(nodes.Name)}
    return {n.name: n.name in compared for n in tree.find_all(nodes.Name) if n.ctx == "load"}


def _has_literal(compare: nodes.Compare) -> bool:
    for side in (compare.expr, *(op.expr for op in compare.ops)):
        if isinstance(side, nodes.Const) and side.value not in ("", None):
            return True
        if isinstance(side, (nodes.List, nodes.Tuple)) and all(isinstance(i, nodes.Const) for i in side.items):
            return True
    return False


def condition_reads(text: str, names: tuple[str, ...]) -> dict[str, bool]:
    """The facts a CEL condition reads, True for those compared with a non-empty literal."""
    return {name: bool(re.search(rf"\b{name}\s*(==|!=)\s*['\"][^'\"]|\b{name}\s+in\s*\[|"
                                 rf"['\"][^'\"]+['\"]\s*(==|!=)\s*{name}\b", text))
            for name in names}


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function giving the values of `names` as a tuple (operator.itemgetter, always a tuple)."""
    if not names:
        return lambda facts: ()
    get = operator.itemgetter(*names)
    return (lambda facts: (get(facts),)) if len(names) == 1 else get


class _Reader:
    """One template or FAQ entry: the facts it reads and the shapes already covered.

    A shape keeps the value of a compared string, the truth of other strings and of bools,
    the sign of a number and a list's length up to two; built with C-level getters, as every
    loaded code is shaped once per check.
    """

    def __init__(self, reads: dict[str, bool], fact_types: dict[str, str]) -> None:
        self.reads = dict(sorted(reads.items()))
        self.fact_types = fact_types
        kinds: dict[str, list[str]] = {"exact": [], "truth": [], "number": [], "list": []}
        for name, exact in self.reads.items():
            kind = fact_types.get(name, "string")
            if kind == "list":
                kinds["list"].append(name)
            elif kind in ("double", "int"):
                kinds["number"].append(name)
            elif kind == "string" and exact:
                kinds["exact"].append(name)
            else:
                kinds["truth"].append(name)
        self._exact, self._truth = _getter(kinds["exact"]), _getter(kinds["truth"])
        self._number, self._list = _getter(kinds["number"]), _getter(kinds["list"])
        self.seen: set[Shape] = set()

    def shape(self, facts: dict[str, Any]) -> Shape:
        return (self._exact(facts), tuple(map(bool, self._truth(facts))),
                tuple((v > 0) - (v < 0) for v in self._number(facts)),
                tuple(min(len(v), 2) for v in self._list(facts)))

    def is_new(self, facts: dict[str, Any]) -> bool:
        key = self.shape(facts)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def fresh(self) -> _Reader:
        """The same reader with nothing seen yet."""
        return _Reader(self.reads, self.fact_types)


class FactSampler:
    """Keeps the first evaluated record of every shape any template or FAQ entry can tell apart."""

    def __init__(self, ruleset: Ruleset) -> None:
        facts = ruleset.fact_types
        self.templates = {intent: _Reader(_facts_only(template_reads(t), facts), facts)
                          for intent, t in ruleset.templates.items()}
        self.faq = [_Reader(_facts_only({**template_reads(e.question),
                                         **condition_reads(e.applies_when.text, e.applies_when.reads)},
                                        facts), facts) for e in ruleset.faq]
        readers = [*self.templates.values(), *self.faq]
        every: dict[str, bool] = {}
        for reader in readers:
            for name, exact in reader.reads.items():
                every[name] = every.get(name, False) or exact
        self._any = _Reader(every, facts)  # a cheap first test: most records repeat a shape already seen
        # Every combination of the compared values across templates (category, status indicator,
        # availability, code status, lifecycle policy, ...), not only each template's own.
        self._combined = _Reader({name: True for name, exact in every.items()
                                  if exact and facts.get(name) == "string"}, facts)
        self._readers = [*readers, self._combined]
        self.records: list[dict[str, Any]] = []
        self.codes: list[str] = []

    def offer(self, facts: dict[str, Any]) -> None:
        """Keep a copy of an evaluated record when some template or entry sees a new shape in it."""
        if not self._any.is_new(facts):
            return
        if any([reader.is_new(facts) for reader in self._readers]):
            self.records.append(dict(facts))
            if facts["code"] not in self.codes:
                self.codes.append(str(facts["code"]))


def _facts_only(reads: dict[str, bool], facts: dict[str, str]) -> dict[str, bool]:
    """Leave out a template's own variables (loop names, `set` names): only facts vary by code."""
    return {name: exact for name, exact in reads.items() if name in facts}


def sample_dates(data: Any, today: dt.date) -> list[dt.date]:
    """Dates of service that exercise the date rules: before every loaded release, at each
    release's effective date, in the years after the newest (one and six years on, past a
    five-year sunset), and today."""
    starts = [r.effective for r in data.releases] + [h.effective for h in data.hcpcs_files]
    if not starts:
        return [today]
    newest = max(r.year for r in data.releases) if data.releases else max(starts).year
    dates = {min(starts) - dt.timedelta(days=1), *starts, dt.date(newest + 1, 1, 1),
             dt.date(newest + 6, 1, 1), today}
    return sorted(dates)


def more_records(ruleset: Ruleset, data: Any, sampler: FactSampler, today: dt.date) -> list[RuleProblem]:
    """Offer the sampled codes again on every sample date and with each modifier row; the
    evaluation problems found on the way (a rule that fails only on some date) are returned."""
    bases: list[dict[str, Any]] = []
    dates = sample_dates(data, today)
    for code in list(sampler.codes):
        default = data.base_facts(code, today)[0]
        bases += [data.base_facts(code, today, m)[0] for m in default["modifier_rows"]]
        bases += [data.base_facts(code, day)[0] for day in dates]
    return data_problems(ruleset, bases, sampler.offer)


def render_problems(ruleset: Ruleset, sampler: FactSampler) -> list[RuleProblem]:
    """Render each template and FAQ question over the sampled records; one report per place."""
    found: dict[tuple[str, int], RuleProblem] = {}

    def failed(exc: TemplateRenderError | RuleEvaluationError, kind: str, day: str) -> None:
        problem = (RuleProblem(exc.path, exc.line, kind, f"{exc.detail} (for {exc.metadata['code']} "
                               f"on {day})") if isinstance(exc, TemplateRenderError)
                   else evaluation_problem(exc))
        found.setdefault((problem.path, problem.line), problem)

    for intent, template in ruleset.templates.items():
        reader = sampler.templates[intent].fresh()
        for facts in _new_shapes(reader, sampler.records):
            try:
                template.render(facts)
            except TemplateRenderError as exc:
                failed(exc, "TEMPLATE_RENDER", facts["date_of_service"])
    for entry, base_reader in zip(ruleset.faq, sampler.faq):
        reader = base_reader.fresh()
        for facts in _new_shapes(reader, sampler.records):
            try:
                if entry.applies_when.evaluate(facts):
                    entry.question.render(facts)
            except TemplateRenderError as exc:
                failed(exc, "TEMPLATE_RENDER", facts["date_of_service"])
            except RuleEvaluationError as exc:
                failed(exc, "EVALUATION", facts["date_of_service"])
    return list(found.values())


def _new_shapes(reader: _Reader, records: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    return (facts for facts in records if reader.is_new(facts))
