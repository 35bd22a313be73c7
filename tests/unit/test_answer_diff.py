"""The answer-level diff with causes (diff.py) and the export folder's write-only-what-changed."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from cptrules.diff import answer_record, diff_answer_records, record_causes
from cptrules.export.files import ExportFolder, read_manifest


def _record(day="2025-11-01", data=None, rules=None, answers=None, code="27447"):
    return {"code": code, "date_of_service": day, "data": data or {}, "rules": rules or {},
            "answers": answers or {}}


def test_the_same_answers_on_another_date_or_release_are_no_change():
    old = _record("2025-11-01", {"pfs_release": "RVU25D"},
                  answers={"status": {"question": "Valid on November 1, 2025?",
                                      "answer": "Yes: RVU25D lists 27447 for November 1, 2025."}})
    new = _record("2026-10-15", {"pfs_release": "RVU26D"},
                  answers={"status": {"question": "Valid on October 15, 2026?",
                                      "answer": "Yes: RVU26D lists 27447 for October 15, 2026."}})
    assert diff_answer_records(old, new) is None


def test_a_changed_answer_names_the_fields_and_rules_that_moved():
    rvu = "rvu.yaml:5 national"
    old = _record(data={"work_rvu": 19.6, "pfs_covers_date": True, "global_days": "090"},
                  rules={rvu: {"rvu_availability": "national", "non_facility_payment": 1257.62},
                         "status_indicator.yaml:14 status-a": {"status_name": "active"}},
                  answers={"rvu": {"question": "RVUs?", "answer": "Work RVU 19.60."},
                           "what_is": {"question": "What?", "answer": "A knee."}})
    new = _record(data={"work_rvu": 19.11, "global_days": "090"},
                  rules={rvu: {"rvu_availability": "national", "non_facility_payment": 1159.33},
                         "fee_schedule.yaml:37 no-release-for-date": {"rvu_availability": "no_release"}},
                  answers={"rvu": {"question": "RVUs?", "answer": "Work RVU 19.11."},
                           "what_is": {"question": "What?", "answer": "A knee."}})
    change = diff_answer_records(old, new)
    assert change is not None and list(change.answers) == ["rvu"]
    causes = [(c.kind, c.name, c.old, c.new) for c in change.causes]
    assert ("data", "work_rvu", 19.6, 19.11) in causes
    assert ("data", "pfs_covers_date", True, False) in causes  # a field a record leaves out is empty
    assert not any(c[1] == "global_days" for c in causes)
    assert ("rule", rvu, {"non_facility_payment": 1257.62}, {"non_facility_payment": 1159.33}) in causes
    assert ("rule", "status_indicator.yaml:14 status-a", {"status_name": "active"}, None) in causes
    by_name = {c.name: c for c in change.causes}
    assert by_name["work_rvu"].as_text() == "work_rvu: 19.6 → 19.11"
    assert by_name["status_indicator.yaml:14 status-a"].new_text == "(rule did not fire)"
    # rules come in file and line order (line 37 of fee_schedule before line 5 of rvu.yaml)
    rule_names = [c.name for c in change.causes if c.kind == "rule"]
    assert rule_names == sorted(rule_names, key=lambda n: (n.split(":")[0], int(n.split(":")[1].split()[0])))


def test_a_question_that_appears_or_goes_is_a_change():
    old = _record(answers={"a": {"question": "A?", "answer": "x"}})
    new = _record(answers={"b": {"question": "B?", "answer": "y"}})
    change = diff_answer_records(old, new)
    assert change is not None
    assert change.answers == {"a": ({"question": "A?", "answer": "x"}, None),
                              "b": (None, {"question": "B?", "answer": "y"})}


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(st.dictionaries(st.sampled_from(["rvu", "status", "what_is", "coverage"]), texts),
       st.dictionaries(st.sampled_from(["work_rvu", "status_indicator", "mp_rvu"]),
                       st.one_of(st.floats(0, 999, allow_nan=False), texts, st.booleans())))
def test_a_record_never_differs_from_itself_or_its_json_round_trip(answers, data):
    record = _record(data=data, answers={k: {"question": k + "?", "answer": v} for k, v in answers.items()})
    again = json.loads(json.dumps(record))
    assert diff_answer_records(record, again) is None
    assert record_causes(record, again) == []


def test_an_engine_record_is_plain_json(engine):
    report, entries = engine.faq("0556T", dt.date(2025, 11, 1))
    record = answer_record(report, entries)
    assert json.loads(json.dumps(record)) == record
    assert record["data"]["status_indicator"] == "C"
    assert any(key.startswith("status_indicator.yaml:") for key in record["rules"])
    assert set(record["answers"]) == {e.intent for e in entries}


def test_the_folder_writes_only_changed_bytes_and_removes_what_it_no_longer_makes(tmp_path):
    first = ExportFolder(tmp_path, None)
    assert first.write_text("a.html", "A") and first.write_text("sub/b.html", "B")
    manifest = {"files": first.files}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    second = ExportFolder(tmp_path, read_manifest(tmp_path))
    assert not second.write_text("a.html", "A")
    assert second.written == []
    assert second.remove_stale() == ["sub/b.html"]
    assert not (tmp_path / "sub" / "b.html").exists()
    third = ExportFolder(tmp_path, {"files": second.files})
    (tmp_path / "a.html").write_text("edited by hand")
    assert third.write_text("a.html", "A")  # a file changed behind the manifest's back is rewritten
    assert (tmp_path / "a.html").read_text() == "A"
