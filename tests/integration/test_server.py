"""The real server on a loopback port, called over gRPC."""

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from cptrules.v1 import code_pb2, code_rules_service_pb2 as svc

pytestmark = pytest.mark.integration


def details(error):
    status = rpc_status.from_call(error)
    found = {}
    for detail in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest,
                     error_details_pb2.ResourceInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    return found


def test_health_is_serving(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cptrules.v1.CodeRulesService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "cptrules.v1.CodeRulesService" in names and "grpc.health.v1.Health" in names


# A date RVU25D speaks for: undated requests are answered for the session's pinned today
# (2026), which no embedded release covers (see test_dates_and_coverage.py).
IN_RVU25D = date_pb2.Date(year=2025, month=11, day=1)


def test_0556T(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="0556t", date_of_service=IN_RVU25D))
    assert code.code == "0556T"
    assert code.category == code_pb2.CODE_CATEGORY_CATEGORY_III
    fee = code.fee_schedule
    assert fee.status_indicator == "C" and fee.release == "RVU25D"
    assert fee.rvu_availability == code_pb2.RVU_AVAILABILITY_CONTRACTOR_PRICED
    assert fee.work_rvu == 0 and not fee.has_national_payment
    assert not code.lifecycle.permanent
    fired = {(r.rule_id, r.file) for r in code.provenance.fired_rules}
    assert ("category-iii-format", "category.yaml") in fired
    assert ("contractor-priced", "fee_schedule.yaml") in fired
    assert all(r.line > 0 for r in code.provenance.fired_rules)
    assert "RVU25D" in {d.key for d in code.provenance.data_releases}
    assert code.provenance.ruleset_version.startswith("sha256:")
    assert code.descriptor and code.curated


def test_99213(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=IN_RVU25D))
    assert code.fee_schedule.covers_date_of_service
    assert code.category == code_pb2.CODE_CATEGORY_CATEGORY_I
    fee = code.fee_schedule
    assert (fee.work_rvu, fee.non_facility_total_rvu, fee.facility_total_rvu) == (1.30, 2.75, 1.97)
    assert fee.conversion_factor == 32.3465
    assert (fee.non_facility_payment, fee.facility_payment) == (88.95, 63.72)
    assert fee.rvu_availability == code_pb2.RVU_AVAILABILITY_NATIONAL


def test_0446T_has_national_rvus(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="0446T", date_of_service=IN_RVU25D))
    assert code.category == code_pb2.CODE_CATEGORY_CATEGORY_III
    assert code.fee_schedule.rvu_availability == code_pb2.RVU_AVAILABILITY_NATIONAL
    assert code.fee_schedule.work_rvu == 1.14


def test_faq_0556T(stub):
    faq = stub.GetFaq(svc.GetFaqRequest(code="0556T"))
    intents = {e.intent for e in faq.entries}
    assert {"what_is", "is_permanent", "when_used", "rvu", "sunset", "coverage"} <= intents
    by_intent = {e.intent: e for e in faq.entries}
    assert by_intent["is_permanent"].question == "Is 0556T a permanent CPT code?"
    assert "contractor" in by_intent["rvu"].text.lower()
    assert all(e.text.strip() for e in faq.entries)


def test_answer_is_permanent(stub):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="Is 0556T a permanent CPT code?"))
    assert answer.intent == "is_permanent" and answer.code == "0556T"
    assert answer.outcome == code_pb2.ANSWER_OUTCOME_ANSWERED
    text = answer.text.lower()
    assert "temporary" in text and "category iii" in text
    assert "converts it to a category i code" in text and "archives" in text
    assert answer.provenance.fired_rules


@pytest.mark.parametrize("question, outcome", [
    ("what is cpt 0556t", code_pb2.ANSWER_OUTCOME_ANSWERED),
    ("is it permanent?", code_pb2.ANSWER_OUTCOME_NEED_CODE),
    ("what is 0999U", code_pb2.ANSWER_OUTCOME_CODE_NOT_FOUND),
    ("is 055T a real code", code_pb2.ANSWER_OUTCOME_MALFORMED_CODE),
    ("what's the weather", code_pb2.ANSWER_OUTCOME_NOT_UNDERSTOOD),
    ("", code_pb2.ANSWER_OUTCOME_NOT_UNDERSTOOD),
])
def test_answer_outcomes(stub, question, outcome):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question))
    assert answer.outcome == outcome
    assert answer.text


def test_malformed_code_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="055T"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(caught.value)
    assert found["ErrorInfo"].reason == "MALFORMED_CODE"
    assert found["BadRequest"].field_violations[0].field == "code"


def test_well_formed_unknown_code_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="0999U"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value)["ErrorInfo"].reason == "CODE_NOT_FOUND"


def test_long_question_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.AnswerQuestion(svc.AnswerQuestionRequest(question="is 0556T permanent " * 200))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)["ErrorInfo"].reason == "QUESTION_TOO_LONG"


def test_bad_date_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=date_pb2.Date(year=2025, month=2, day=30)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_keeps_order_and_is_bounded(stub):
    reply = stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["G0439", "0556T", "99213"]))
    assert [c.code for c in reply.codes] == ["G0439", "0556T", "99213"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213"] * 101))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213", "bogus"]))
    assert details(caught.value)["BadRequest"].field_violations[0].field == "codes[1]"


def test_list_codes_pages(stub):
    first = stub.ListCodes(svc.ListCodesRequest(page_size=3, category=code_pb2.CODE_CATEGORY_CATEGORY_III))
    assert len(first.codes) == 3 and first.next_page_token
    assert all(c.category == code_pb2.CODE_CATEGORY_CATEGORY_III for c in first.codes)
    second = stub.ListCodes(svc.ListCodesRequest(page_size=3, page_token=first.next_page_token,
                                                 category=code_pb2.CODE_CATEGORY_CATEGORY_III))
    assert second.codes[0].code > first.codes[-1].code
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCodes(svc.ListCodesRequest(page_size=3, page_token=first.next_page_token[:-2] + "zz",
                                            category=code_pb2.CODE_CATEGORY_CATEGORY_III))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCodes(svc.ListCodesRequest(page_size=-1))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_ruleset(stub):
    ruleset = stub.GetRuleset(svc.GetRulesetRequest())
    assert ruleset.revision.startswith("sha256:") and ruleset.rule_count > 40
    assert "category.yaml" in ruleset.rule_files
    assert {"RVU25D", "HCPC2025_OCT"} <= {d.key for d in ruleset.data_releases}
    import time

    assert ruleset.code_count > 19000 and abs(ruleset.load_time.seconds - time.time()) < 3600


def test_metrics_count_rpcs_by_status(engine):
    from prometheus_client import CollectorRegistry

    from cptrules.server.app import create_server
    from cptrules.server.testing import client

    registry = CollectorRegistry()
    server, port = create_server(engine, "127.0.0.1:0", registry=registry)
    server.start()
    try:
        with client(port) as stub:
            stub.GetCode(svc.GetCodeRequest(code="99213"))
            with pytest.raises(grpc.RpcError):
                stub.GetCode(svc.GetCodeRequest(code="055T"))
    finally:
        server.stop(None)
    value = registry.get_sample_value
    assert value("cptrules_rpc_requests_total", {"method": "GetCode", "code": "OK"}) == 1
    assert value("cptrules_rpc_requests_total", {"method": "GetCode", "code": "INVALID_ARGUMENT"}) == 1
    assert value("cptrules_rpc_seconds_count", {"method": "GetCode"}) == 2


def test_list_codes_rejects_unknown_category_and_forged_tokens(stub):
    import base64

    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCodes(svc.ListCodesRequest(category=99))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    forged = base64.urlsafe_b64encode(b"[1,2]").decode() + ".0000"
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCodes(svc.ListCodesRequest(page_token=forged))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_out_of_range_year_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=date_pb2.Date(year=9999, month=1, day=1)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_names_the_bad_index(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213", ""]))
    assert details(caught.value)["BadRequest"].field_violations[0].field == "codes[1]"
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213", "0999U"]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value)["ErrorInfo"].metadata["index"] == "1"


def test_no_release_is_its_own_availability(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=date_pb2.Date(year=2024, month=6, day=1)))
    assert code.fee_schedule.rvu_availability == code_pb2.RVU_AVAILABILITY_NO_RELEASE


def test_hcpcs_entry_and_answer_date(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="J2310", date_of_service=date_pb2.Date(year=2025, month=8, day=1)))
    assert code.hcpcs.release == "HCPC2025_OCT"
    assert (code.hcpcs.termination_date.year, code.hcpcs.termination_date.month,
            code.hcpcs.termination_date.day) == (2025, 6, 30)
    assert code.hcpcs.long_description and code.lifecycle.status == "terminated"
    assert not stub.GetCode(svc.GetCodeRequest(code="99213")).HasField("hcpcs")
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="is 0042T valid on 1/15/2026"))
    assert (answer.date_of_service.year, answer.date_of_service.month, answer.date_of_service.day) == (2026, 1, 15)


@pytest.mark.parametrize("question, intent, code, outcome", [
    ("is cpt 0556t permenant", "is_permanent", "0556T", code_pb2.ANSWER_OUTCOME_ANSWERED),
    ("wRVU for 99213?", "rvu", "99213", code_pb2.ANSWER_OUTCOME_ANSWERED),
    ("my EOB lists G0439 — what is that", "what_is", "G0439", code_pb2.ANSWER_OUTCOME_ANSWERED),
    ("does medicare cover 0042T for a 2026 DOS", "coverage", "0042T", code_pb2.ANSWER_OUTCOME_ANSWERED),
    ("is it permanent?", "is_permanent", "", code_pb2.ANSWER_OUTCOME_NEED_CODE),
    ("what's the weather", "none", "", code_pb2.ANSWER_OUTCOME_NOT_UNDERSTOOD),
])
def test_the_questions_people_type(stub, question, intent, code, outcome):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question))
    assert (answer.intent, answer.code, answer.outcome) == (intent, code, outcome)
    assert answer.text and answer.HasField("date_of_service")
    if outcome == code_pb2.ANSWER_OUTCOME_ANSWERED:
        assert answer.confidence > 0 and answer.matched_phrasings or intent == "what_is"
    if "2026 DOS" in question:
        assert answer.date_of_service.year == 2026 and "70472" in answer.text


def test_servers_sharing_a_snapshot_answer_with_their_own_page_tokens(engine):
    """Responses are remembered per server: one server's page token (signed with its own key)
    is never handed out by another server on the same snapshot."""
    from cptrules.server.testing import client, running_server

    with running_server(engine) as (_, first), running_server(engine) as (_, second):
        with client(first) as a, client(second) as b:
            b.ListCodes(svc.ListCodesRequest(page_size=2))  # answered and remembered by the second
            page = a.ListCodes(svc.ListCodesRequest(page_size=2))
            following = a.ListCodes(svc.ListCodesRequest(page_size=2, page_token=page.next_page_token))
            assert following.codes[0].code > page.codes[-1].code
