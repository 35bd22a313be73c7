"""Over gRPC: answers never claim more than the loaded data covers (dates, partial data,
codes not yet in effect, formats we do not carry)."""

import grpc
import pytest
from google.type import date_pb2

from cptrules.v1 import code_pb2, code_rules_service_pb2 as svc

pytestmark = pytest.mark.integration

TODAY = date_pb2.Date(year=2026, month=11, day=27)  # the session engine's pinned today
IN_RVU25D = date_pb2.Date(year=2025, month=11, day=1)
YEARS_LATER = date_pb2.Date(year=2031, month=1, day=1)


def test_a_curated_category_iii_code_is_not_valid_years_past_every_release(stub):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="Is 0556T still valid?",
                                                           date_of_service=YEARS_LATER))
    assert answer.intent == "status" and answer.code == "0556T"
    assert "valid" not in answer.text.replace("We cannot confirm", "")
    assert answer.text.startswith("We cannot confirm 0556T for January 1, 2031")
    assert "no loaded fee-schedule release speaks for that date" in answer.text
    assert not answer.covers_date_of_service and answer.fee_schedule_release == "RVU25D"
    code = stub.GetCode(svc.GetCodeRequest(code="0556T", date_of_service=YEARS_LATER))
    assert code.lifecycle.status == "no_data_for_date"
    assert code.fee_schedule.rvu_availability == code_pb2.RVU_AVAILABILITY_NO_RELEASE
    assert not code.fee_schedule.covers_date_of_service


def test_no_date_means_today_with_the_same_facts(stub):
    undated = stub.GetCode(svc.GetCodeRequest(code="99213"))
    today = stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=TODAY))
    assert undated.SerializeToString(deterministic=True) == today.SerializeToString(deterministic=True)
    fee = undated.fee_schedule
    assert undated.date_of_service == TODAY
    assert fee.release == "RVU25D" and not fee.covers_date_of_service
    assert fee.rvu_availability == code_pb2.RVU_AVAILABILITY_NO_RELEASE
    assert fee.work_rvu == 1.30  # the 2025 figures, labelled by covers_date_of_service
    assert (fee.non_facility_payment, fee.facility_payment, fee.has_national_payment) == (0, 0, False)
    covered = stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=IN_RVU25D))
    assert covered.fee_schedule.covers_date_of_service
    assert covered.fee_schedule.non_facility_payment == 88.95
    asked = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="RVUs for 99213"))
    asked_today = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="RVUs for 99213",
                                                                date_of_service=TODAY))
    assert asked.text == asked_today.text and not asked.covers_date_of_service


def test_a_code_not_yet_in_effect_is_not_yet_effective_in_every_intent(stub):
    faq = stub.GetFaq(svc.GetFaqRequest(code="70472", date_of_service=IN_RVU25D))
    texts = {e.intent: e.text for e in faq.entries}
    for intent in ("rvu", "coverage", "billing", "status"):
        assert "January 1, 2026" in texts[intent], intent
        assert "another" not in texts[intent] and "other fee schedule" not in texts[intent], intent
    assert texts["status"].startswith("Not yet")
    for question in ("is 70472 covered", "rvus for 70472", "how do I bill 70472"):
        answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question, date_of_service=IN_RVU25D))
        assert "takes effect on January 1, 2026" in answer.text, question
    code = stub.GetCode(svc.GetCodeRequest(code="70472", date_of_service=IN_RVU25D))
    assert code.fee_schedule.rvu_availability == code_pb2.RVU_AVAILABILITY_NOT_YET_EFFECTIVE


def test_maaa_codes_are_well_formed(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="0002M"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "MAAA" in caught.value.details()
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 0002M"))
    assert answer.outcome == code_pb2.ANSWER_OUTCOME_CODE_NOT_FOUND and answer.code == "0002M"


def test_split_test_in_a_facility_names_the_professional_component(stub):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="rvus for 71046",
                                                           date_of_service=IN_RVU25D))
    assert "the physician bills only the professional component with modifier 26" in answer.text
    assert "71046-26: 0.31 RVUs, $10.03 in a facility" in answer.text
    assert "rarely or never" not in answer.text
    code = stub.GetCode(svc.GetCodeRequest(code="71046", date_of_service=IN_RVU25D))
    assert "modifier 26" in code.fee_schedule.facility_not_applicable_meaning


def test_component_only_code_is_not_paid_as_a_whole(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="86153", date_of_service=IN_RVU25D))
    assert code.fee_schedule.component_only and code.fee_schedule.modifiers == ["26"]
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="rvus for 86153",
                                                           date_of_service=IN_RVU25D))
    assert answer.text.startswith("RVU25D lists 86153 only with modifier 26")
    assert "the rest of the service is paid, if at all, under another payment system" in answer.text
