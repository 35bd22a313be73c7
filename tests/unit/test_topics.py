"""Questions about a term, not a code (rules/topics.yaml): each topic family, the value read
beside its cue, honest answers for values no rule defines, and one source of truth with the
per-code answers."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings, strategies as st


DAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def topics(engine):
    return engine.ruleset.topics


@pytest.mark.parametrize("question, topic", [
    ("What does status indicator C mean?", "status_indicator:C"),
    ("what does a C status mean", "status_indicator:C"),
    ("what does status indicator A mean", "status_indicator:A"),
    ("what is a status indicator", "status_indicator"),
    ("what does staus indicator c mean", "status_indicator:C"),
    ("what are the status indicators?", "status_indicator"),
    ("What is a 090 global period?", "global_period:090"),
    ("what is a 90-day global", "global_period:090"),
    ("global period of 10 days?", "global_period:010"),
    ("what does global ZZZ mean", "global_period:ZZZ"),
    ("what does pc/tc indicator 1 mean", "pctc_indicator:1"),
    ("what is modifier 26?", "modifier:26"),
    ("what does the TC modifier mean", "modifier:TC"),
    ("modifier -59", "modifier:59"),
    ("what is modifier AS", "modifier:AS"),
    ("What was the 2025 conversion factor?", "conversion_factor:2025"),
    ("conversoin factor for 2019", "conversion_factor:2019"),
    ("what is the conversion factor", "conversion_factor"),
    ("how long do Category III codes last?", "category_iii_lifecycle"),
    ("when do category 3 codes sunset", "category_iii_lifecycle"),
    ("what is a Category III code?", "category:CATEGORY_III"),
    ("what is a categroy II code", "category:CATEGORY_II"),
    ("what is a PLA code", "category:PLA"),
    ("what are MAAA codes", "category:MAAA"),
    ("what is HCPCS Level II", "category:HCPCS_LEVEL_II"),
    ("what is an RVU", "rvu"),
    ("what is a GPCI?", "gpci"),
    ("facility vs non-facility rate?", "facility_setting"),
    ("what does NA mean in the facility column", "na_flag"),
])
def test_each_topic_family_is_recognised(topics, question, topic):
    found = topics.answer(question, None, DAY)
    assert found is not None and found.topic == topic, (question, found and found.topic)
    assert found.text and "{" not in found.text


@pytest.mark.parametrize("question", [
    "What's the CPT code for a total knee replacement?",
    "HCPCS code for a flu shot",
    "which code do I use for a flu shot",
    "is it permanent?",
    "what's the weather",
    "what is the status of my claim",  # "status" alone names the topic only beside a value
    "what's the status of a claim?",
    "what are the RVUs for a knee replacement?",
    "what is the global period for a total knee replacement",
])
def test_questions_that_are_no_topic(topics, question):
    assert topics.find(question) is None


def test_a_value_no_rule_defines_is_answered_honestly(topics):
    found = topics.answer("What does status indicator Q mean?", None, DAY)
    assert found.topic == "status_indicator:Q"
    assert found.text.startswith("We do not know a status indicator Q")
    assert "A, B, C" in found.text
    modifier = topics.answer("what is modifier GA", None, DAY)
    assert modifier.text.startswith("We have no description of modifier GA") and not modifier.fired


def test_provenance_names_the_rule_file_and_line(topics, rules_dir):
    found = topics.answer("What does status indicator C mean?", None, DAY)
    [firing] = found.fired
    assert (firing.rule.path, firing.rule.id) == ("status_indicator.yaml", "status-c")
    text = (rules_dir / "status_indicator.yaml").read_text().splitlines()
    assert "id: status-c" in text[firing.rule.line - 1]
    assert found.matched[0].startswith("topics.yaml:")


def test_status_c_means_the_same_in_a_code_answer_and_a_topic_answer(engine):
    """One source of truth: the meaning of status C that 0556T's answers give is the text of
    the same rule-file entry that "what does status indicator C mean?" quotes."""
    report = engine.get_code("0556T", dt.date(2025, 11, 3))
    topic = engine.answer("What does status indicator C mean?")
    assert report.facts["status_indicator"] == "C"
    assert report.facts["status_meaning"] and report.facts["status_meaning"] in topic.text
    assert report.facts["status_meaning"] in engine.render("rvu", report)
    code_rule = next(f.rule for f in report.evaluation.fired_in("status_indicator"))
    [topic_rule] = [f.rule for f in topic.provenance.fired]
    assert (code_rule.path, code_rule.line, code_rule.id) == (topic_rule.path, topic_rule.line, topic_rule.id)


def test_global_period_and_category_meanings_are_shared_too(engine):
    knee = engine.get_code("27447")
    topic = engine.answer("What is a 090 global period?")
    assert knee.facts["global_days"] == "090" and knee.facts["global_days_meaning"] in topic.text
    cat3 = engine.answer("what is a Category III code?")
    assert engine.get_code("0556T").facts["category_meaning"] in cat3.text
    assert engine.get_code("0556T").facts["category_meaning"] in engine.answer("what category is 0556T").text


def test_conversion_factor_comes_from_the_loaded_release(engine):
    answer = engine.answer("What was the 2025 conversion factor?")
    release = next(r for r in engine.snapshot.data.releases if r.year == 2025)
    assert (answer.intent, answer.outcome, answer.topic) == ("topic", "ANSWERED", "conversion_factor:2025")
    assert f"${release.conversion_factor:.4f}" == "$32.3465" and "$32.3465" in answer.text
    assert release.key in answer.text and [s.key for s in answer.provenance.sources] == [release.key]
    missing = engine.answer("What was the 2019 conversion factor?")
    assert "No loaded fee-schedule release is for 2019" in missing.text and not missing.provenance.sources


@pytest.mark.parametrize("question", ["what is modifier 26", "2025 conversion factor", "conversion factor in zip 10001",
                                      "is the $32.35 conversion factor right", "what is a 090 global period"])
def test_numbers_in_a_topic_question_are_never_taken_for_codes(engine, question):
    answer = engine.answer(question)
    assert answer.intent == "topic" and not answer.codes and not answer.malformed


def test_a_question_with_a_code_keeps_its_per_code_intent(engine):
    answer = engine.answer("what is the status indicator of 0556T")
    assert answer.intent != "topic" and answer.code == "0556T"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_text_either_names_no_topic_or_gets_a_rendered_answer(topics, text):
    found = topics.answer(text, None, DAY)
    assert found is None or (found.text and found.topic)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["status indicator", "modifier", "global period", "pc tc indicator"]),
       st.from_regex(re.compile(r"[A-Za-z0-9]{1,3}"), fullmatch=True))
def test_any_value_beside_a_cue_gets_an_answer(topics, cue, value):
    found = topics.answer(f"what does {cue} {value} mean", None, DAY)
    assert found is not None and found.text


def test_modifier_50_lists_what_each_bilateral_indicator_pays(engine):
    """The bilateral meanings come from bilateral_surgery.yaml, the table that prices 27447-50."""
    knee = engine.get_code("27447", dt.date(2025, 11, 3))
    answer = engine.answer("what is modifier 50?")
    assert answer.topic == "modifier:50" and knee.facts["bilateral_meaning"] in answer.text
    assert {"modifier-50", "bilateral-1"} <= {f.rule.id for f in answer.provenance.fired}
