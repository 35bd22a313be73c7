"""Questions about terms over gRPC, on the session's real server: intent "topic", the term in
Answer.topic, and the rule file and line (or the data release) in the provenance."""

from __future__ import annotations

import pytest

from cptrules.v1 import code_pb2, code_rules_service_pb2 as svc

ANSWERED = code_pb2.ANSWER_OUTCOME_ANSWERED


def ask(stub, question: str):
    return stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question), timeout=30)


def test_status_indicator_c_is_priced_by_the_contractor(stub, rules_dir):
    answer = ask(stub, "What does status indicator C mean?")
    assert (answer.intent, answer.outcome, answer.topic) == ("topic", ANSWERED, "status_indicator:C")
    assert "Contractor sets the payment" in answer.text and not answer.code
    [rule] = answer.provenance.fired_rules
    assert (rule.file, rule.rule_id) == ("status_indicator.yaml", "status-c")
    assert "id: status-c" in (rules_dir / rule.file).read_text().splitlines()[rule.line - 1]


def test_a_090_global_is_ninety_days_with_what_it_includes(stub):
    answer = ask(stub, "What is a 090 global period?")
    assert (answer.outcome, answer.topic) == (ANSWERED, "global_period:090")
    assert answer.text.startswith("Global period 090: 90 days;") and "included" in answer.text
    assert [(r.file, r.rule_id) for r in answer.provenance.fired_rules] == [("global_period.yaml", "global-090")]


def test_the_2025_conversion_factor_comes_with_its_release(stub):
    answer = ask(stub, "What was the 2025 conversion factor?")
    assert (answer.outcome, answer.topic) == (ANSWERED, "conversion_factor:2025")
    assert "$32.3465" in answer.text and "RVU25D" in answer.text
    assert [r.key for r in answer.provenance.data_releases] == ["RVU25D"]
    assert answer.fee_schedule_release == "RVU25D" and not answer.codes and not answer.malformed_codes


@pytest.mark.parametrize("question, topic, words", [
    ("what is modifier 26?", "modifier:26", "professional component"),
    ("how long do Category III codes last?", "category_iii_lifecycle", "five years after publication"),
    ("What does status indicator Q mean?", "status_indicator:Q", "We do not know a status indicator Q"),
])
def test_more_terms(stub, question, topic, words):
    answer = ask(stub, question)
    assert (answer.intent, answer.outcome, answer.topic) == ("topic", ANSWERED, topic)
    assert words in answer.text and not answer.codes


def test_a_per_code_answer_has_no_topic(stub):
    answer = ask(stub, "Is 0556T a permanent CPT code?")
    assert answer.intent == "is_permanent" and answer.topic == ""
