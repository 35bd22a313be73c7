"""Issue 12: the curated catalogue covers the codes people ask about most, and every code in it is real.

A catalogue entry for a code that CMS does not list would describe something nobody can bill, so each
code is checked against the embedded data the product ships (the RVU25D fee schedule and the October
2025 HCPCS file). Two kinds of code are exempt, each for a reason the test itself verifies: PLA codes,
which neither file lists at all, and codes whose catalogue entry states an effective date after the
embedded fee-schedule year.
"""

import datetime as dt
import re
from pathlib import Path

import pytest

from cptrules.data.catalogue import Catalogue
from cptrules.data.hcpcs import HcpcsFile
from cptrules.data.pfs import PfsRelease
from cptrules.embedded import default_data_dir

DATA = default_data_dir()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(DATA / "catalogue.yaml")


@pytest.fixture(scope="module")
def release() -> PfsRelease:
    return PfsRelease.load(DATA / "pfs" / "RVU25D.json.gz")


@pytest.fixture(scope="module")
def hcpcs() -> HcpcsFile:
    return HcpcsFile.load(DATA / "hcpcs" / "HCPC2025_OCT.json.gz")


def _is_pla(code: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{4}U", code))


def _unlisted(catalogue: Catalogue, release: PfsRelease, hcpcs: HcpcsFile) -> list[str]:
    """Catalogue codes that neither embedded file lists, less the two exempt kinds."""
    found = []
    for code, entry in catalogue.entries.items():
        if code in release.rows or code in release.modifiers or code in hcpcs.rows or _is_pla(code):
            continue
        effective = entry.lifecycle_date("effective")[0]
        if effective and dt.date.fromisoformat(effective).year > release.year:
            continue
        found.append(code)
    return found


def test_every_catalogue_code_is_in_the_embedded_data(catalogue, release, hcpcs):
    assert _unlisted(catalogue, release, hcpcs) == []


def test_the_exemptions_hold(catalogue, release, hcpcs):
    """The PLA exemption is only safe while neither file lists any PLA code; the dated one only
    covers codes that are indeed absent. Both are few, so the check above really checks."""
    assert not any(_is_pla(code) for code in release.rows)
    assert not any(_is_pla(code) for code in hcpcs.rows)
    exempt = [code for code in catalogue.entries if code not in release.rows and code not in hcpcs.rows]
    assert len(exempt) <= 6, exempt
    assert len(catalogue.entries) - len(exempt) >= 300


def test_an_unknown_code_is_refused(tmp_path, release, hcpcs):
    """The check itself: a well-formed code that no file lists, and a future-dated one that is not
    dated after the release year, are both reported."""
    text = (DATA / "catalogue.yaml").read_text(encoding="utf-8")
    assert "99998" not in release.rows and "99998" not in hcpcs.rows
    planted = text.rstrip("\n") + (
        '\n\n  - code: "99998"\n    descriptor: "An invented code"\n    sources: ["test"]\n'
        '\n  - code: "99997"\n    descriptor: "An invented code with a date inside the release year"\n'
        '    sources: ["test"]\n    lifecycle:\n'
        f'      effective: {{date: "{release.year}-06-01", basis: stated, source: "test"}}\n')
    path = tmp_path / "catalogue.yaml"
    path.write_text(planted, encoding="utf-8")
    assert _unlisted(Catalogue.load(path), release, hcpcs) == ["99998", "99997"]


def test_related_codes_are_known(catalogue, release, hcpcs):
    """A 'related' code points the reader somewhere: it must be a code some source knows."""
    unknown = [f"{code} -> {other}" for code, entry in catalogue.entries.items() for other in entry.texts("related")
               if other not in release.rows and other not in hcpcs.rows and other not in catalogue.entries]
    assert unknown == []


# The families issue 12 names, by the codes a billing office asks about most.
_ASKED_ABOUT = {
    "office visits": [f"992{n:02d}" for n in (2, 3, 4, 5, 11, 12, 13, 14, 15)],
    "hospital inpatient and observation": ["99221", "99222", "99223", "99231", "99232", "99233",
                                           "99234", "99235", "99236", "99238", "99239"],
    "emergency department": ["99281", "99282", "99283", "99284", "99285"],
    "critical care": ["99291", "99292"],
    "preventive medicine": [f"9938{n}" for n in range(1, 8)] + [f"9939{n}" for n in range(1, 8)],
    "Medicare wellness": ["G0402", "G0438", "G0439"],
    "prolonged services": ["99417", "G2212", "99418", "G0316"],
    "transitional and chronic care management": ["99495", "99496", "99490", "99439", "99491", "99487", "99489"],
    "injections and vaccine administration": ["96372", "90471", "90472", "90473", "90474", "20610", "J1100",
                                              "J3301", "J1885", "J0696", "J3420"],
    "imaging": ["71045", "71046", "71047", "71048", "70450", "70553", "72148", "73721", "74177", "76700",
                "76805", "77067", "93306"],
    "ECG": ["93000", "93005", "93010"],
    "physical therapy": ["97110", "97112", "97140", "97161", "97162", "97163", "97164", "97530"],
    "laboratory": ["80048", "80053", "85025", "83036", "84443", "80061", "81001", "87635"],
    "surgery and procedures": ["27447", "27130", "29881", "47562", "45378", "45380", "43239", "66984", "64483",
                               "20550", "11042", "17000", "10060", "12001"],
    "durable medical equipment": ["E0601", "E0470", "E0114", "E0143"],
    "vaccine products": ["90686", "90662", "90677", "90732", "90750", "90715", "90651"],
}


@pytest.mark.parametrize("family", sorted(_ASKED_ABOUT))
def test_the_codes_people_ask_about_are_described(catalogue, family):
    """Issue 12: 'what is 99291?' had no answer; each family's common codes now have our own description,
    a plain-language explanation and a source."""
    missing = [code for code in _ASKED_ABOUT[family] if code not in catalogue.entries]
    assert missing == []
    for code in _ASKED_ABOUT[family]:
        entry = catalogue.entries[code]
        assert entry.text("descriptor") and entry.text("plain_language") and entry.texts("sources"), code


def test_every_entry_says_where_it_comes_from(catalogue):
    assert len(catalogue.entries) >= 300
    assert [code for code, entry in catalogue.entries.items() if not entry.texts("sources")] == []


def test_laboratory_codes_off_the_fee_schedule_name_the_laboratory(catalogue, release):
    """CPT pathology and laboratory codes (80047-89398) that RVU25D lists with status X are paid outside the
    physician fee schedule, under the clinical laboratory fee schedule: the catalogue says the lab bills them."""
    lab = [code for code in catalogue.entries if re.fullmatch(r"8[0-9]{4}", code) and code in release.rows
           and release.rows[code]["status"] == "X"]
    assert len(lab) >= 40
    assert [code for code in lab if catalogue.entries[code].text("billed_by") != "laboratory"] == []


def test_what_is_99291_is_answered_in_our_words(engine):
    """Issue 12's example, end to end through the engine on the embedded data."""
    entry = Catalogue.load(DATA / "catalogue.yaml").entries["99291"]
    answer = engine.answer("what is 99291", dt.date(2025, 11, 1))
    assert entry.text("descriptor") in answer.text
    assert "not written a description" not in answer.text
