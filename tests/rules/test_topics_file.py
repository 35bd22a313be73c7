"""rules/topics.yaml as analysts write it: mistakes are refused with file:line, and an entry
added to a rule table is what the topic answer then says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cptrules.errors import RuleFileErrors
from cptrules.ruleset import load_ruleset

DAY = dt.date(2026, 11, 27)


def edit(path: Path, old: str, new: str) -> int:
    """Replace text in a rule file; return the 1-based line where the change starts."""
    text = path.read_text()
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    return line


def test_every_mistake_in_topics_is_reported_with_its_file_and_line(rules_copy):
    topics = rules_copy / "topics.yaml"
    misspelt = edit(topics, "    weak_cues: [status]", "    weak_cuse: [status]")
    table = edit(topics, "    table: global_period\n", "    table: global_periods\n")
    rule = edit(topics, "rules: [locality-gpci-adjusted]", "rules: [locality-gpci-adjustd]")
    pattern = edit(topics, 'value: {pattern: "[0-9]"}', 'value: {pattern: "[0-9"}')
    related = edit(topics, '"62": {table: co_surgeons,', '"62": {table: co_surgeon,')
    missing = edit(topics, "    answer: topic_modifier\n", "    answer: topic_modifiers\n")
    fact = edit(topics, "choices:\n      CATEGORY_I: {cues: [category i, category 1, cat i, cat 1, category one], given: {code: \"99213\"}}",
                "choices:\n      CATEGORY_I: {cues: [category i, category 1, cat i, cat 1, category one], given: {kode: \"99213\"}}") + 1
    template = edit(rules_copy / "answers" / "topic_concept.j2", "{% if rules %}", "{{ meening }}\n{% if rules %}")
    render = edit(rules_copy / "answers" / "topic_status_indicator.j2", "{% elif asked %}",
                  "{% elif asked %}\n{{ (asked | int) // 0 }}") + 1
    with pytest.raises(RuleFileErrors) as caught:
        load_ruleset(rules_copy)
    found = {(p.path, p.line, p.kind) for p in caught.value.problems}
    assert ("topics.yaml", misspelt, "SCHEMA") in found
    assert any(p.message.endswith("(did you mean 'weak_cues'?)") for p in caught.value.problems)
    assert {("topics.yaml", table, "UNKNOWN_TABLE"), ("topics.yaml", rule, "UNKNOWN_RULE"),
            ("topics.yaml", related, "UNKNOWN_TABLE"),
            ("topics.yaml", pattern, "PATTERN"), ("topics.yaml", missing, "NO_TEMPLATE"),
            ("topics.yaml", fact, "UNKNOWN_FACT"), ("answers/topic_concept.j2", template, "TEMPLATE")} <= found, found
    [failed] = [p for p in caught.value.problems if p.kind == "TEMPLATE_RENDER"]
    assert (failed.path, failed.line) == ("answers/topic_status_indicator.j2", render)
    assert "status_indicator" in failed.message


def test_a_status_an_analyst_adds_is_what_the_topic_answer_then_says(rules_copy, engine):
    before = engine.ruleset.topics.answer("what does status indicator D mean", None, DAY)
    assert before.text.startswith("We do not know a status indicator D")
    edit(rules_copy / "status_indicator.yaml", "  - id: status-other\n",
         "  - id: status-d\n    when: status_indicator == 'D'\n"
         "    set: {status_name: deleted, status_meaning: \"Deleted with a grace period for claims.\"}\n"
         "    because: CMS status D.\n  - id: status-other\n")
    edit(rules_copy / "status_indicator.yaml", "fired: [status-other], expect: {status_name: other}}",
         "fired: [status-d], expect: {status_name: deleted}}")
    after = load_ruleset(rules_copy).topics.answer("what does status indicator D mean", None, DAY)
    assert after.text == ("Status indicator D (deleted) on the Medicare Physician Fee Schedule: "
                          "Deleted with a grace period for claims.")
    assert [f.rule.id for f in after.fired] == ["status-d"]
