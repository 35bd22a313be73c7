"""The trust model's promise for rule files (README, "Trust model"): a hostile template or CEL
expression cannot reach Python internals by indirect routes, and cannot run unbounded. These add
the routes test_rule_safety.py does not try: names built at run time, filters that take
attribute names, the template's own context, and CEL's parser and regex engine."""

from __future__ import annotations

import pytest

from cptrules.answers.templates import _check, render
from cptrules.errors import RuleEvaluationError, TemplateRenderError
from cptrules.ruleset.conditions import ConditionError, Environment, Where

FACTS = {"code": "0556T", "notes": ["a", "b"], "date_of_service": "2026-01-15", "count": 3}

INDIRECT = {
    "escaped dunder through attr": r"{{ code | attr('\x5f\x5fclass\x5f\x5f') }}",
    "escaped dunder through getitem": r"{{ code['\x5f\x5fclass\x5f\x5f'] }}",
    "dunder joined at run time": "{{ code | attr(['_', '_class_', '_'] | join) }}",
    "dunder concatenated at run time": "{% set u = '_' * 2 %}{{ code[u ~ 'class' ~ u] }}",
    "the template's context": "{{ self._TemplateReference__context }}",
    "the template's dict": "{{ self.__dict__ }}",
    "loop internals": "{% for n in notes %}{{ loop._iterator }}{% endfor %}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "a type's base": "{{ dict.__base__ }}",
    "a builtin's self": "{{ range.__self__ }}",
    "a namespace's dict": "{% set n = namespace(a=1) %}{{ n.__dict__ }}",
    "selectattr by dunder": "{{ notes | selectattr('__class__') | list }}",
    "sort by dunder": "{{ notes | sort(attribute='__class__') }}",
    "groupby dunder": "{{ notes | groupby('__class__') }}",
    "sum by dunder": "{{ notes | sum(attribute='__len__') }}",
}


@pytest.mark.parametrize("source", INDIRECT.values(), ids=INDIRECT.keys())
def test_indirect_routes_to_python_internals_fail_that_render(source):
    compiled, problem = _check(source, "answers/t.j2", 1, set(FACTS))
    assert problem is None, problem
    with pytest.raises(TemplateRenderError) as caught:
        render(compiled, FACTS)
    assert "<class" not in caught.value.message and "<function" not in caught.value.message
    assert caught.value.metadata["template"] == "answers/t.j2"


def test_map_by_dunder_yields_nothing_from_inside_python():
    compiled, problem = _check("{{ notes | map(attribute='__class__') | list }}", "answers/t.j2", 1,
                               set(FACTS))
    assert problem is None
    text = render(compiled, FACTS)
    assert "class" not in text and "str" not in text


@pytest.mark.parametrize("source", ["{{ config }}", "{{ request }}", "{{ os }}", "{{ __builtins__ }}"])
def test_names_outside_the_facts_are_refused_at_load(source):
    compiled, problem = _check(source, "answers/t.j2", 1, set(FACTS))
    assert compiled is None and "unknown fact" in problem.message


def _env() -> Environment:
    return Environment({"code": "string", "notes": "list"})


@pytest.mark.parametrize("text, problem", [
    ("(" * 5000 + "true" + ")" * 5000, "recursion limit"),
    (" && ".join(["code == 'x'"] * 20000), "size exceeds"),
    ("has(code.__class__)", "select"),
])
def test_cel_expressions_that_would_exhaust_the_parser_or_reach_internals_are_refused_at_load(
        text, problem):
    with pytest.raises(ConditionError, match=problem):
        _env().compile(text, "bool", Where("x.yaml", 1, "r"))


def test_cel_regex_is_linear_time_and_growth_is_cut_off():
    """RE2 has no catastrophic backtracking: this finishes (a backtracking engine would take
    2**30 steps); building a 10,000-element nest is refused by CEL's iteration budget."""
    env = _env()
    backtracking = env.compile("('" + "a" * 30 + "!').matches('^(a+)+$')", "bool", Where("x.yaml", 1, "r"))
    assert backtracking.evaluate({"code": "0556T", "notes": []}) is False
    ten = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    growth = env.compile(f"{ten}.map(a, {ten}.map(b, {ten}.map(c, {ten}.map(d, [a, b, c, d])))).size() > 0",
                         "bool", Where("x.yaml", 2, "grow"))
    with pytest.raises(RuleEvaluationError, match=r"x\.yaml:2: rule grow failed .*budget"):
        growth.evaluate({"code": "0556T", "notes": []})
