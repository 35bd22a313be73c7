"""SearchCodes and find-code questions over gRPC, and CPT short descriptors a user imports from
their own RVU file (a synthetic one with invented descriptions, and the real CMS file)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cptrules.cli import main
from cptrules.data.pfs import COLUMNS_2025, DESCRIPTORS_DIR
from cptrules.engine import Engine
from cptrules.server.testing import client, error_info, running_server
from cptrules.v1 import code_pb2
from cptrules.v1 import code_rules_service_pb2 as svc

TODAY = dt.date(2026, 11, 27)

pytestmark = pytest.mark.integration

LABEL = "CPT short descriptor © American Medical Association, from your imported file"
# Invented descriptions: no CMS or AMA text.
INVENTED = {"27448": "Zorbly femoral widget tune-up", "99499": "Quallix consult placeholder"}


@pytest.mark.parametrize("question, first, also", [
    ("What's the CPT code for a total knee replacement?", "27447", ""),
    ("HCPCS code for the subsequent annual wellness visit", "G0439", "G0438"),
    ("CPAP machine code", "E0601", ""),
])
def test_find_code_questions_over_grpc(stub, question, first, also):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question=question))
    assert answer.outcome == code_pb2.ANSWER_OUTCOME_ANSWERED and answer.intent == "find_code"
    assert answer.code == first and answer.codes[0] == first
    assert [c.code for c in answer.candidates] == list(answer.codes)
    assert all(c.why and c.descriptor and 0 < c.score <= 1 for c in answer.candidates)
    assert also in answer.text
    rules = [(r.file, r.line) for r in answer.provenance.fired_rules]
    assert rules and all(file == "search.yaml" and line > 0 for file, line in rules)
    assert answer.provenance.data_releases


def test_search_codes_over_grpc(stub):
    found = stub.SearchCodes(svc.SearchCodesRequest(query="cpap"))
    assert "E0601" in [m.code for m in found.matches[:3]] and len(found.matches) == 10
    first = found.matches[0]
    assert first.matched_text and first.matched_field and first.descriptor
    assert first.category == code_pb2.CODE_CATEGORY_HCPCS_LEVEL_II
    only = stub.SearchCodes(svc.SearchCodesRequest(query="flu vaccine", page_size=50,
                                                   category=code_pb2.CODE_CATEGORY_CATEGORY_I))
    assert only.matches and {m.category for m in only.matches} == {code_pb2.CODE_CATEGORY_CATEGORY_I}


@pytest.mark.parametrize("request_, field, reason", [
    (svc.SearchCodesRequest(query=""), "query", "EMPTY_QUERY"),
    (svc.SearchCodesRequest(query="   "), "query", "EMPTY_QUERY"),
    (svc.SearchCodesRequest(query="knee " * 50), "query", "FIELD_TOO_LONG"),
    # 12 characters as sent, 216 after NFKC (U+FDFA expands to 18 characters).
    (svc.SearchCodesRequest(query="\ufdfa" * 12), "query", "FIELD_TOO_LONG"),
    (svc.SearchCodesRequest(query="cpap", page_size=-1), "page_size", "INVALID_INPUT"),
    (svc.SearchCodesRequest(query="cpap", category=99), "category", "INVALID_CATEGORY"),
])
def test_search_codes_refuses_bad_input(stub, request_, field, reason):
    with pytest.raises(grpc.RpcError) as caught:
        stub.SearchCodes(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == reason
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    assert [v.field for v in bad.field_violations] == [field]


def test_what_is_says_what_we_know_without_a_description(stub):
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 27448?"))
    assert "work RVUs" in answer.text and "global period 090" in answer.text
    assert "import-pfs FILE --with-descriptors" in answer.text
    code = stub.GetCode(svc.GetCodeRequest(code="27448"))
    assert code.cpt_short_descriptor == "" and code.descriptor_source == ""
    assert stub.GetCode(svc.GetCodeRequest(code="99291")).descriptor_source.startswith("cptrules curated")
    assert stub.GetCode(svc.GetCodeRequest(code="A0021")).descriptor_source == "CMS HCPCS file HCPC2025_OCT"


def _synthetic_rvu(path: Path, rows: dict[str, str]) -> Path:
    """A small 2026 January PPRRVU file in CMS's layout, with the given codes and descriptions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    blank = [""] * len(COLUMNS_2025)
    writer.writerow(["", "", "2026 National Physician Fee Schedule Relative Value File January Release"]
                    + blank[3:])
    writer.writerow(["", "", "RELEASED 11/01/2025"] + blank[3:])
    for _ in range(4):
        writer.writerow(blank)
    writer.writerow(COLUMNS_2025)
    for code, description in rows.items():
        writer.writerow([code, "", description, "A", "", "1.00", "0.50", "", "0.30", "", "0.10", "1.60",
                         "1.40", "0", "000", "0.00", "0.00", "0.00", "2", "0", "0", "0", "0", "", "33.4009",
                         "09", "", "99", "0.00", "0.00", "0.00"])
    path.write_text(out.getvalue())
    return path


def test_imported_descriptors_show_labelled_in_answers_codes_and_search(tmp_path):
    source = _synthetic_rvu(tmp_path / "PPRRVU2026_Jan.csv", INVENTED)
    plain, licensed = tmp_path / "plain", tmp_path / "licensed"
    assert main(["import-pfs", str(source), "--partial", "--data-dir", str(plain)]) == 0
    assert not (plain / DESCRIPTORS_DIR).exists()
    assert main(["import-pfs", str(source), "--partial", "--with-descriptors", "--data-dir", str(licensed)]) == 0
    assert (licensed / DESCRIPTORS_DIR / "RVU26A.json.gz").is_file()
    engine = Engine.load(data_dirs=[licensed], check_data=False, clock=lambda: TODAY)
    with running_server(engine) as (_, port), client(port) as stub:
        code = stub.GetCode(svc.GetCodeRequest(code="27448"))
        assert code.cpt_short_descriptor == INVENTED["27448"]
        assert code.descriptor_source == f"{LABEL} (RVU26A)"
        answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 27448"))
        assert f'{LABEL} (RVU26A): "{INVENTED["27448"]}"' in answer.text
        assert "RVU26A-cpt-descriptors" in [r.key for r in answer.provenance.data_releases]
        curated = stub.GetCode(svc.GetCodeRequest(code="27447"))
        assert curated.descriptor_source.startswith("cptrules curated") and curated.cpt_short_descriptor == ""
        found = stub.SearchCodes(svc.SearchCodesRequest(query="zorbly widget"))
        assert found.matches[0].code == "27448"
        assert found.matches[0].matched_field == "cpt_short_descriptor"
        assert found.matches[0].descriptor == INVENTED["27448"]


def test_a_file_without_descriptions_is_refused_with_descriptors(tmp_path):
    source = _synthetic_rvu(tmp_path / "PPRRVU2026_Jan.csv", {"27448": ""})
    assert main(["import-pfs", str(source), "--partial", "--with-descriptors", "--data-dir", str(tmp_path)]) == 1


@pytest.mark.slow
def test_the_real_file_descriptors_are_labelled_as_the_users(cms_dir, tmp_path):
    """The descriptors of CMS's own file, kept by a user, answer for uncurated codes; the text is
    read from the CMS file here, never written into the repository."""
    source = cms_dir / "PPRRVU2025_Oct.csv"
    assert main(["import-pfs", str(source), "--with-descriptors", "--data-dir", str(tmp_path)]) == 0
    with source.open(newline="") as handle:
        cells = {row[0]: row[2] for row in csv.reader(handle) if len(row) > 2 and not row[1]}
    engine = Engine.load(data_dirs=[tmp_path], check_data=False, clock=lambda: TODAY)
    answer = engine.answer("what is 27448")
    assert f'{LABEL} (RVU25D): "{" ".join(cells["27448"].split())}"' in answer.text
    assert engine.get_code("99291").facts["cpt_short_descriptor"] == " ".join(cells["99291"].split())
    curated = engine.answer("what is 99291").text
    assert curated.startswith("99291 is a CPT Category I code: Critical care") and LABEL not in curated
