"""Rule files are code the service runs: hostile or careless ones are refused at load or cut
off while they run, never hang a worker or reach Python internals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cptrules import limits
from cptrules.answers.templates import _check, render
from cptrules.data.catalogue import Catalogue
from cptrules.errors import (RuleEvaluationError, RuleFileErrors, TemplateBudgetError,
                             TemplateRenderError)
from cptrules.ruleset.conditions import ConditionError, Environment, Where
from cptrules.ruleset.source import SourceFile, parse_yaml

FACTS = {"code": "0556T", "notes": ["a", "b"], "date_of_service": "2026-01-15", "count": 3}

# Five nested comprehensions over ten items: 100,000 iterations, past CEL's 10,000.
TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
CEL_OVER_BUDGET = (f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, "
                   "a + b + c + d + e >= 0)))))")


def template(source: str, path: str = "answers/t.j2"):
    compiled, problem = _check(source, path, 1, set(FACTS))
    assert problem is None, problem
    return compiled


# -- CEL ---------------------------------------------------------------------------------

def test_cel_over_its_iteration_budget_is_a_located_rule_error():
    env = Environment({"code": "string"})
    condition = env.compile(CEL_OVER_BUDGET, "bool", Where("fee_schedule.yaml", 12, "greedy"))
    with pytest.raises(RuleEvaluationError) as caught:
        condition.evaluate({"code": "0556T"})
    error = caught.value
    assert error.metadata == {"rule_id": "greedy", "file": "fee_schedule.yaml", "line": "12", "code": "0556T"}
    assert "10,000" in error.message and "budget" in error.message


def test_cel_error_values_are_located_too():
    env = Environment({"date_of_service": "string"})
    condition = env.compile("add_years(date_of_service, 1) > ''", "bool", Where("lifecycle.yaml", 40, "r"))
    with pytest.raises(RuleEvaluationError, match=r"lifecycle\.yaml:40: rule r failed for .*isoformat"):
        condition.evaluate({"date_of_service": "not a date", "code": "X"})


@pytest.mark.parametrize("text", [
    "code.__class__ == ''",
    "code.__class__.__mro__ == []",
    "__import__('os') == null",
    "code.format_map({}) == ''",
    "type(code).__subclasses__() == []",
])
def test_cel_cannot_reach_python_internals(text):
    with pytest.raises(ConditionError):
        Environment({"code": "string"}).compile(text, "bool")


def test_cel_dynamic_field_access_is_an_error_value_not_an_object():
    condition = Environment({"code": "string"}).compile("dyn(code).__globals__ == {}", "bool",
                                                       Where("faq.yaml", 3, "faq what_is"))
    with pytest.raises(RuleEvaluationError, match=r"^faq\.yaml:3: rule faq what_is failed for 0556T"):
        condition.evaluate({"code": "0556T"})


# -- YAML --------------------------------------------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    """Each level lists the one before ten times: 10**levels scalars once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_is_built():
    doc, problems = parse_yaml(SourceFile("fee_schedule.yaml", alias_bomb()))
    assert doc is None
    assert [str(p) for p in problems] == [
        "fee_schedule.yaml:2: YAML_ALIAS: YAML alias *a0 is refused (aliases can expand a small file "
        "into gigabytes): write the value out where it is used"]


def test_an_anchor_alone_is_refused_at_its_line():
    doc, problems = parse_yaml(SourceFile("t.yaml", "table: x\nhit: first\noutputs: &o {a: 1}\n"))
    assert doc is None and [(p.line, p.kind) for p in problems] == [(3, "YAML_ALIAS")]
    doc, problems = parse_yaml(SourceFile("t.yaml", "table: x\nwhen: \"a && b * c\"\nnote: 'a & *b'\n"))
    assert problems == [] and doc["when"] == "a && b * c"


def test_catalogue_with_an_alias_is_refused(tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text("version: '1'\ncodes:\n  - &entry {code: 0556T}\n  - *entry\n")
    with pytest.raises(RuleFileErrors) as caught:
        Catalogue.load(path)
    assert [(p.path, p.line, p.kind) for p in caught.value.problems] == [("catalogue.yaml", 4, "YAML_ALIAS")]


# -- templates ---------------------------------------------------------------------------

OVERRUNS = {
    "nested ranges": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    "nested loops over a long string": ("{% set s = 'x' * 50000 %}{% for a in s %}{% for b in s %}"
                                        "{% endfor %}{% endfor %}"),
    "a huge string": "{{ 'x' * 100000000 }}",
    "a huge repeat count": "{{ 'x' * 10**9 }}",
    "a huge power": "{{ 9 ** 99999999 }}",
    "a product that doubles": ("{% set ns = namespace(x=3) %}{% for i in range(40) %}"
                               "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}"),
    "a macro calling itself": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "a macro calling itself twice": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                                     "{% endmacro %}{{ f(30) }}"),
    "~ doubling in a macro": ("{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}"
                              "{% endif %}{% endmacro %}{{ d('x', 40) }}"),
    "~ doubling in a namespace": ("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                                  "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"),
    "a block buffer": ("{% set big %}{% for i in range(90000) %}{{ 'x' * 90000 }}{% endfor %}{% endset %}"
                       "{{ big | length }}"),
    "a long answer": "{% for i in range(90000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
    "a width in a %-format": "{{ '%1000000000s' % 1 }}",
    "a * width in a %-format": "{{ '%*s' % (1000000000, 'x') }}",
    "replace that multiplies": "{{ ('x' * 50000) | replace('', 'y' * 50000) }}",
    "join that multiplies": "{{ (['y' * 50000] * 2) | join('z' * 50000) }}",
    "str.replace that multiplies": "{{ ('x' * 50000).replace('', 'y' * 50000) }}",
    "str.join that multiplies": "{{ ('z' * 50000).join(['y' * 50000] * 2) }}",
    "a width in the format filter": "{{ '%1000000000s' | format(1) }}",
    "a huge range": "{{ range(10**9) | length }}",
    "a huge batch": "{{ [1] | batch(10**8, 'x') | list | length }}",
    "a list of one long string, repeated, as text": "{{ ['y' * 100000] * 100000 }}",
    "a literal list of long strings as text": ("{% set y = 'y' * 100000 %}{% set l = [y, y, y, y, y, y] %}"
                                               "{{ [l, l, l, l, l, l] }}"),
    "join over an iterator of long strings": ("{% set l = ['y' * 100000] * 10 %}"
                                              "{{ l | map('string') | join }}"),
    "str.join over an iterator": "{% set l = ['y' * 100000] * 10 %}{{ ''.join(l | map('string')) }}",
    "a long list in a %-format": "{% set l = ['y' * 100000] * 10 %}{{ '%s' % (l,) }}",
    "a long list in a ~": "{% set l = ['y' * 100000] * 10 %}{{ 'a' ~ l }}",
    "a long list through a filter": "{% set l = ['y' * 50000, 'y' * 50000, 'y' * 50000] %}{{ l | string }}",
}


@pytest.mark.parametrize("source", OVERRUNS.values(), ids=OVERRUNS.keys())
def test_templates_that_would_run_for_ever_are_cut_off(source):
    with pytest.raises(TemplateBudgetError) as caught:
        render(template(source), FACTS)
    assert caught.value.metadata["template"] == "answers/t.j2"
    assert caught.value.metadata["code"] == "0556T"


HOSTILE = {
    "class": "{{ ''.__class__ }}",
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "template globals": "{{ self.__init__.__globals__ }}",
    "cycler globals": "{{ cycler.__init__.__globals__['os'] }}",
    "namespace internals": "{{ namespace.__init__ }}",
    "attr filter": "{{ code | attr('__class__') }}",
    "getitem": "{{ code['__class__'] }}",
    "str.format": "{{ '{0.__class__}'.format(code) }}",
    "format_map": "{{ '{x}'.format_map({'x': 1}) }}",
    "ljust": "{{ code.ljust(10**9) }}",
    "list mutation": "{% set l = [1] %}{{ l.append(2) }}",
    "dict mutation": "{% set d = {} %}{{ d.update({'a': 1}) }}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_templates_cannot_reach_python_internals(source):
    with pytest.raises(TemplateRenderError) as caught:
        render(template(source), FACTS)
    assert "<class" not in caught.value.message and "function" not in caught.value.message


@pytest.mark.parametrize("source", [
    "{% include 'other.j2' %}", "{% import 'other.j2' as o %}", "{% from 'other.j2' import m %}",
    "{% extends 'base.j2' %}", "{% for n in notes recursive %}{{ loop(n) }}{% endfor %}",
    "{{ lipsum(n=200000) }}", "{{ code | center(1000000000) }}", "{{ notes | random }}",
    "{{ code | wordwrap(5) }}", "{{ code | indent(100000) }}",
])
def test_constructs_with_no_place_in_an_answer_are_refused_at_load(source):
    compiled, problem = _check(source, "answers/t.j2", 1, set(FACTS))
    assert compiled is None and problem is not None
    assert (problem.path, problem.line, problem.kind) == ("answers/t.j2", 1, "TEMPLATE")


@pytest.mark.parametrize("source", [
    "{% if code %}" * 120 + "x" + "{% endif %}" * 120,
    "{{ " + "(" * 400 + "code" + ")" * 400 + " }}",
], ids=["nested blocks", "nested brackets"])
def test_a_template_nested_too_deeply_is_a_located_problem_not_a_crash(source):
    compiled, problem = _check(source, "answers/t.j2", 1, set(FACTS))
    assert compiled is None and (problem.path, problem.line, problem.kind) == ("answers/t.j2", 1, "TEMPLATE")
    assert "nests too deeply" in problem.message


def test_a_render_failure_names_the_template_line():
    source = "Line one.\n{% if code %}\n{{ code }} is fine.\n{{ date_of_service | longdate }}{{ 1 / 0 }}\n{% endif %}"
    with pytest.raises(TemplateRenderError) as caught:
        render(template(source, "answers/sunset.j2"), FACTS)
    assert not isinstance(caught.value, TemplateBudgetError)
    assert caught.value.message == "answers/sunset.j2:4: template failed for 0556T: division by zero"


def test_a_question_form_failure_is_located_in_its_yaml_file():
    compiled, problem = _check("Q {{ code }}?\n{{ ''.__class__ }}", "faq.yaml", 30, set(FACTS))
    with pytest.raises(TemplateRenderError, match=r"^faq\.yaml:31: "):
        render(compiled, FACTS)


def test_ordinary_template_features_still_work():
    source = ("{{ code | upper }} {{ notes | join_and }} {% for n in notes %}{{ loop.index }}{{ loop.cycle('a', 'b') }}"
              "{% endfor %} {{ {'26': 'pro'}.get('26') }} {{ 'a,b'.split(',') | join('-') }} {{ 12345 | money }}"
              " {{ range(3) | list | length }} {{ count * 2 }} {{ 2 ** 10 }} {{ '%05.1f' % 2.5 }} {{ '%.2f' | format(1) }}"
              " {{ code.replace('T', 't') }} {{ '+'.join(notes) }}"
              "{% macro m(x) %}[{{ x }}]{% endmacro %} {{ m(code) }} {{ notes | map('upper') | join }}")
    assert render(template(source), FACTS) == ("0556T a and b 1a2b pro a-b $12,345.00 3 6 1024 002.5 1.00 0556t a+b"
                                                " [0556T] AB")


@settings(max_examples=60, deadline=None)
@given(outer=st.integers(0, 2000), inner=st.integers(0, 2000), width=st.integers(0, 300_000))
def test_any_loop_nest_and_width_finishes_or_is_cut_off(outer, inner, width):
    source = ("{% for a in range(outer) %}{% for b in range(inner) %}{% endfor %}{% endfor %}"
              "{{ ('x' * width) | length }}")
    compiled, _ = _check(source, "answers/t.j2", 1, {"outer", "inner", "width"})
    steps = outer + outer * inner * 2 + outer * 2
    try:
        text = render(compiled, {"outer": outer, "inner": inner, "width": width, "code": "X"})
    except TemplateBudgetError:
        assert steps > limits.TEMPLATE_MAX_STEPS // 2 or width > limits.TEMPLATE_MAX_VALUE_CHARS
    else:
        assert text == str(width)
        assert steps <= limits.TEMPLATE_MAX_STEPS * 2 and width <= limits.TEMPLATE_MAX_VALUE_CHARS


# -- the render check's sample -------------------------------------------------------------

BRANCH_FACTS = ("category", "status_indicator", "rvu_availability", "code_status", "lifecycle_policy")


def test_the_render_sample_covers_every_combination_the_templates_branch_on(engine):
    """Every combination of the facts the answer templates branch on most, among all loaded
    codes, is in the sample the check renders, which is still a small part of the codes."""
    from cptrules.ruleset.check import data_problems
    from cptrules.ruleset.render_check import FactSampler

    snapshot, today = engine.snapshot, engine.clock()
    sampler = FactSampler(snapshot.ruleset)
    combinations = set()

    def offer(facts):
        combinations.add(tuple(facts[name] for name in BRANCH_FACTS))
        sampler.offer(facts)

    data_problems(snapshot.ruleset, (snapshot.data.base_facts(c, today)[0] for c in snapshot.codes),
                  offer)
    assert len(combinations) > 10
    assert combinations <= {tuple(r[name] for name in BRANCH_FACTS) for r in sampler.records}
    assert len(sampler.records) < len(snapshot.codes) / 20


def test_the_sample_dates_lie_before_inside_and_after_the_releases(engine):
    from cptrules.ruleset.render_check import sample_dates

    data = engine.snapshot.data
    dates = sample_dates(data, engine.clock())
    assert min(dates) < min(r.effective for r in data.releases)
    assert all(r.effective in dates for r in data.releases)
    assert max(dates).year > max(r.year for r in data.releases) + 5
    assert engine.clock() in dates
