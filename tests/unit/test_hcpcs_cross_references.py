"""The HCPCS file's cross-reference columns (XREF1-5): imported, stored in format 3, read as a
fact, and, on a code the file ends, taken as its replacement (C8904 ends 2018-12-31, XREF 77046)."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from cptrules.cli import main
from cptrules.data.files import CHECKSUM, content_checksum
from cptrules.data.hcpcs import FORMAT, HcpcsFile, import_hcpcs
from cptrules.embedded import default_data_dir
from cptrules.errors import DataFileError

EMBEDDED = default_data_dir() / "hcpcs" / "HCPC2025_OCT.json.gz"


@pytest.fixture(scope="module")
def imported(cms_dir):
    return import_hcpcs(cms_dir / "HCPC2025_OCT_ANWEB.from-xlsx.csv", key="HCPC2025_OCT")


def test_the_cross_references_are_imported_as_the_file_gives_them(imported):
    xref = {code: row[-1].split() for code, row in imported["codes"].items()}
    assert imported["fields"][-1] == "xref"
    assert xref["C8904"] == ["77046"]
    assert xref["G0436"] == ["99406", "99407"]  # XREF1 and XREF2, in order
    assert xref["C8937"] == ["0159T"]  # a Category III code
    assert xref["P7001"] == []  # the cell says "CPT", which names no code
    assert xref["J0171"] == []
    # October 2025: 212 procedure codes name a cross-referenced code; 188 of them the file ends.
    assert sum(1 for codes in xref.values() if codes) == 212
    assert sum(1 for code, codes in xref.items() if codes and imported["codes"][code][7]) == 188


def test_the_embedded_file_holds_the_cross_references(imported):
    stored = HcpcsFile.read_payload(EMBEDDED)
    assert stored["format"] == FORMAT == 3
    assert stored["codes"] == imported["codes"]


def test_a_file_stored_in_format_2_is_refused_in_one_line(tmp_path, capsys):
    """Format 2 had no cross-references: loading it would silently lose every replacement the
    file states, so it is refused with the way out."""
    payload = json.loads(gzip.decompress(EMBEDDED.read_bytes()))
    old = {**payload, "format": 2, "fields": payload["fields"][:-1],
           "codes": {code: row[:-1] for code, row in payload["codes"].items()}}
    old[CHECKSUM] = content_checksum(old)
    stored = tmp_path / "data" / "hcpcs" / "HCPC2025_OCT.json.gz"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(gzip.compress(json.dumps(old).encode(), mtime=0))
    says = "stored format 2, where this version reads format 3: import the CMS file again"
    with pytest.raises(DataFileError, match=says):
        HcpcsFile.load(stored)
    assert main(["data", "list", "--data-dir", str(tmp_path / "data")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {stored}: {says}"]


def test_a_stored_cross_reference_that_is_no_code_is_refused(tmp_path):
    payload = json.loads(gzip.decompress(EMBEDDED.read_bytes()))
    payload["codes"]["C8904"][-1] = "77046 <b>"
    payload[CHECKSUM] = content_checksum(payload)
    stored = tmp_path / "HCPC2025_OCT.json.gz"
    stored.write_bytes(gzip.compress(json.dumps(payload).encode(), mtime=0))
    with pytest.raises(DataFileError, match="codes/C8904: .* not a list of cross-referenced codes"):
        HcpcsFile.load(stored)


def test_an_ended_code_is_replaced_by_its_cross_references(engine):
    last = engine.get_code("C8904", dt.date(2018, 12, 31))
    after = engine.get_code("C8904", dt.date(2019, 1, 1))
    assert last.facts["hcpcs_cross_references"] == ["77046"]
    assert last.facts["code_status"] == "active" and last.facts["replaced_from"] == "2019-01-01"
    assert after.facts["code_status"] == "replaced" and after.facts["replaced_by"] == ["77046"]
    assert "TERM DT 2018-12-31" in after.facts["replaced_source"]
    assert any(f.rule.id == "replaced-on-date" for f in after.evaluation.fired)
    assert "replaced by 77046" in engine.render("status", after)
    billing = engine.render("billing", engine.get_code("G0436", dt.date(2025, 11, 1)))
    assert "99406 or 99407" in billing
    answer = engine.answer("what replaced G0436?", dt.date(2025, 11, 1))
    assert "99406" in answer.text and "99407" in answer.text and "HCPCS" in answer.text


def test_an_open_code_cross_reference_is_no_replacement(engine):
    """A0021 has XREF A0030 but no termination date: the file does not end it."""
    a0021 = engine.get_code("A0021", dt.date(2025, 11, 1))
    assert a0021.facts["hcpcs_cross_references"] == ["A0030"]
    assert a0021.facts["replaced_by"] == [] and a0021.facts["code_status"] == "active"


def test_a_curated_replacement_is_kept(engine):
    j0171 = engine.get_code("J0171", dt.date(2025, 8, 1))
    assert j0171.facts["replaced_by"] == ["J0165", "J0166", "J0167", "J0168", "J0169"]
    assert j0171.facts["hcpcs_cross_references"] == []
