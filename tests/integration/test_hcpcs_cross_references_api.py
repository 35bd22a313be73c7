"""GetCode carries the HCPCS file's cross-references (Code field 20) and, on a code the file
ends, the replacement they state."""

from __future__ import annotations

from google.type import date_pb2

from cptrules.v1 import code_rules_service_pb2 as svc


def test_get_code_carries_cross_references_and_the_replacement(stub):
    code = stub.GetCode(svc.GetCodeRequest(code="C8904", date_of_service=date_pb2.Date(year=2025, month=11, day=1)))
    assert list(code.hcpcs_cross_references) == ["77046"]
    assert list(code.lifecycle.replaced_by) == ["77046"] and code.lifecycle.status == "replaced"
    assert (code.lifecycle.replaced_from.year, code.lifecycle.replaced_from.month,
            code.lifecycle.replaced_from.day) == (2019, 1, 1)
    open_code = stub.GetCode(svc.GetCodeRequest(code="A0021"))
    assert list(open_code.hcpcs_cross_references) == ["A0030"] and not open_code.lifecycle.replaced_by
