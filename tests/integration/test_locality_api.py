"""Locality pricing and payment-policy indicators over gRPC, on the default install."""

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_status import rpc_status

from cptrules.v1 import code_rules_service_pb2 as svc

pytestmark = pytest.mark.integration
NOV_2025 = date_pb2.Date(year=2025, month=11, day=1)


def _details(error, kind):
    status = rpc_status.from_call(error)
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    return None


def test_99213_in_manhattan(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="10001", date_of_service=NOV_2025))
    pay = code.locality_payment
    assert (pay.locality.name, pay.locality.mac, pay.locality.locality_number) == ("MANHATTAN", "13202", "01")
    assert (pay.locality.work_gpci, pay.locality.pe_gpci, pay.locality.mp_gpci) == (1.065, 1.166, 1.656)
    assert (pay.status, pay.release, pay.gpci_source, pay.zip_code) == ("priced", "RVU25D", "GPCI2025", "10001")
    assert (pay.non_facility_amount, pay.facility_amount) == (101.06, 71.64)
    assert (pay.non_participating_non_facility, pay.limiting_charge_non_facility) == (96.01, 110.41)
    assert code.fee_schedule.non_facility_payment == 88.95  # the national amount is unchanged
    files = {r.file for r in code.provenance.fired_rules}
    assert {"locality_payment.yaml", "opps_cap.yaml", "payment_amounts.yaml"} <= files
    assert {"GPCI2025", "ZIP5_20254"} <= {d.key for d in code.provenance.data_releases}


def test_the_same_place_by_locality_and_by_zip_plus_four(stub):
    by_locality = stub.GetCode(svc.GetCodeRequest(code="99213", locality="13202-01", date_of_service=NOV_2025))
    by_zip9 = stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="10001-2345", date_of_service=NOV_2025))
    assert by_locality.locality_payment.facility_amount == by_zip9.locality_payment.facility_amount == 71.64
    assert by_locality.locality_payment.zip_code == ""


def test_27447_in_houston(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="27447", zip_code="77030", date_of_service=NOV_2025))
    pay, policy = code.locality_payment, code.payment_policy
    assert (pay.locality.name, pay.locality.id) == ("HOUSTON", "04412-18")
    assert pay.facility_amount == 1320.65 and pay.non_facility_amount == 0.0  # non-facility is NA
    assert policy.amount_basis == "locality"
    assert (policy.bilateral_surgery.rule, policy.bilateral_surgery.percent) == ("adjustment_150", 150.0)
    assert policy.bilateral_surgery.facility_amount == 1980.98
    assert policy.assistant_at_surgery.rule == "paid" and policy.assistant_at_surgery.facility_amount == 211.3
    assert policy.co_surgeons.rule == "with_documentation" and "documentation" in policy.co_surgeons.meaning
    assert policy.co_surgeons.facility_amount == 825.41
    assert policy.postoperative_care_only.facility_amount == 277.34
    assert policy.multiple_procedure.rule == "standard"


def test_unknown_zip_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="00000"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(caught.value, error_details_pb2.BadRequest).field_violations[0].field == "zip_code"


@pytest.mark.parametrize("text", ["99999-99", "01112", "SF", "01112-5x"])
def test_unknown_locality_is_invalid_argument(stub, text):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", locality=text))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(caught.value, error_details_pb2.BadRequest).field_violations[0].field == "locality"


def test_zip_needing_plus_four_names_the_candidates(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="75019"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    failure = _details(caught.value, error_details_pb2.PreconditionFailure)
    subjects = [v.subject for v in failure.violations]
    assert subjects[0] == "locality/04412-11 (Dallas)" and "locality/04412-99 (Rest of Texas)" in subjects
    # Naming the locality as well settles it.
    code = stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="75019", locality="04412-11",
                                           date_of_service=NOV_2025))
    assert code.locality_payment.status == "priced"


def test_batch_prices_every_code_in_the_place(stub):
    response = stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=["99213", "0556T"], zip_code="10001",
                                                           date_of_service=NOV_2025))
    first, second = response.codes
    assert first.locality_payment.non_facility_amount == 101.06
    assert second.locality_payment.status == "not_priced_by_rvus" and second.locality_payment.facility_amount == 0


def test_no_amount_for_a_date_no_release_covers(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="99213", zip_code="10001"))  # today: 2026, no 2026 release
    assert code.locality_payment.status == "no_release"
    assert code.locality_payment.non_facility_amount == code.locality_payment.facility_amount == 0
    assert code.payment_policy.amount_basis == "none" and code.payment_policy.co_surgeons.facility_amount == 0


def test_no_place_no_locality_message(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="27447", date_of_service=NOV_2025))
    assert not code.HasField("locality_payment")
    assert code.payment_policy.amount_basis == "national"
    assert code.payment_policy.bilateral_surgery.facility_amount == round(1257.63 * 1.5 + 1e-9, 2)


def test_list_localities_pages_through_all(stub):
    seen, token, pages = [], "", 0
    while True:
        page = stub.ListLocalities(svc.ListLocalitiesRequest(page_size=40, page_token=token,
                                                             date_of_service=NOV_2025))
        seen += [loc.id for loc in page.localities]
        pages += 1
        assert page.total_size == 109
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 109 and seen == sorted(seen)
    texas = stub.ListLocalities(svc.ListLocalitiesRequest(state="tx", date_of_service=NOV_2025))
    names = {loc.name for loc in texas.localities}
    assert texas.total_size == 8 and {"HOUSTON", "REST OF TEXAS"} <= names
    houston = next(loc for loc in texas.localities if loc.name == "HOUSTON")
    assert (houston.gpci_year, houston.work_gpci, houston.counties) == (2025, 1.014, "Houston: Harris")


def test_list_localities_refuses_bad_input(stub):
    for request in (svc.ListLocalitiesRequest(state="ZZ"), svc.ListLocalitiesRequest(page_size=-1),
                    svc.ListLocalitiesRequest(page_token="forged.token")):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListLocalities(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first = stub.ListLocalities(svc.ListLocalitiesRequest(page_size=2))
    with pytest.raises(grpc.RpcError):  # a token of one filter does not serve another
        stub.ListLocalities(svc.ListLocalitiesRequest(page_size=2, state="TX", page_token=first.next_page_token))
