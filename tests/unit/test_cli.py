"""The command line as users run it."""

import json

import jsonschema
import pytest

from cptrules.cli import main

FAQPAGE_SCHEMA = {
    "type": "object",
    "required": ["@context", "@type", "mainEntity"],
    "properties": {
        "@context": {"const": "https://schema.org"},
        "@type": {"const": "FAQPage"},
        "mainEntity": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["@type", "name", "acceptedAnswer"],
            "properties": {"@type": {"const": "Question"}, "name": {"type": "string", "minLength": 1},
                           "acceptedAnswer": {"type": "object", "required": ["@type", "text"],
                                              "properties": {"@type": {"const": "Answer"},
                                                             "text": {"type": "string", "minLength": 1}}}}}},
    },
    "additionalProperties": False,
}


def test_ask_with_explanation(capsys):
    assert main(["ask", "is cpt 0556t permenant", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "temporary" in out and "intent: is_permanent" in out
    assert "matched questions.yaml:" in out and "lifecycle.yaml:" in out


@pytest.mark.parametrize("fmt", ["text", "json", "jsonld", "markdown"])
def test_faq_formats(capsys, fmt):
    assert main(["faq", "0556T", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "jsonld":
        jsonschema.validate(json.loads(out), FAQPAGE_SCHEMA)
    elif fmt == "json":
        doc = json.loads(out)
        assert doc["code"] == "0556T" and any("RVU25D" in s for s in doc["data_releases"])
    elif fmt == "markdown":
        assert out.startswith("# CPT 0556T") and "## Is 0556T a permanent CPT code?" in out
    else:
        assert "Q: What is CPT 0556T?" in out


def test_explain_shows_facts_and_trace(capsys):
    assert main(["explain", "99213", "--date", "2025-11-01"]) == 0
    out = capsys.readouterr().out
    assert "work_rvu = 1.3" in out and "fee_schedule.yaml:" in out and "RVU25D" in out


def test_bad_code_exits_1(capsys):
    assert main(["explain", "055T"]) == 1
    assert "not a CPT or HCPCS code" in capsys.readouterr().err


def test_import_hcpcs_from_xlsx_and_csv_agree(tmp_path, cms_dir, capsys):
    """The embedded HCPCS file is the importer's output from the xlsx; its CSV twin holds the same codes
    (a different source file under a loaded key needs --replace)."""
    assert main(["import-hcpcs", str(cms_dir / "HCPC2025_OCT_ANWEB.xlsx"), "--data-dir", str(tmp_path / "x")]) == 0
    assert "already loaded" in capsys.readouterr().out and not (tmp_path / "x" / "hcpcs").exists()
    csv_args = ["import-hcpcs", str(cms_dir / "HCPC2025_OCT_ANWEB.from-xlsx.csv"), "--key", "HCPC2025_OCT",
                "--data-dir", str(tmp_path / "c")]
    assert main(csv_args) == 1
    assert capsys.readouterr().err.startswith(f"error: {csv_args[1]}: HCPC2025_OCT is already loaded")
    assert main([*csv_args, "--replace"]) == 0
    from cptrules.data.hcpcs import HcpcsFile
    from cptrules.embedded import default_data_dir

    xlsx = HcpcsFile.load(default_data_dir() / "hcpcs" / "HCPC2025_OCT.json.gz")
    csv_ = HcpcsFile.load(tmp_path / "c" / "hcpcs" / "HCPC2025_OCT.json.gz")
    assert len(xlsx.rows) == 8463 and xlsx.rows.keys() == csv_.rows.keys()
    assert xlsx.rows["J0171"].values["term"] == "2025-06-30"
    assert xlsx.rows["C9088"].values["term"] == csv_.rows["C9088"].values["term"] == "2025-09-30"


def test_import_pfs_refusal_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing,here\n")
    assert main(["import-pfs", str(bad), "--data-dir", str(tmp_path)]) == 1
    assert "bad.csv:1" in capsys.readouterr().err


def test_imports_can_be_listed_and_removed(tmp_path, cms_dir, capsys):
    """The 11-row 2026 excerpt is refused as a release unless --partial; `data list` says partial."""
    source = cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"
    assert main(["import-pfs", str(source), "--data-dir", str(tmp_path)]) == 1
    assert "only 11 data rows" in capsys.readouterr().err and not (tmp_path / "pfs").exists()
    assert main(["import-pfs", str(source), "--partial", "--data-dir", str(tmp_path)]) == 0
    assert "RVU26D (partial)" in capsys.readouterr().out
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "RVU26D" in listed and "partial" in listed
    assert main(["data", "remove", "RVU26D", "--data-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "pfs" / "RVU26D.json.gz").exists()
    assert main(["data", "remove", "RVU26D", "--data-dir", str(tmp_path)]) == 1


def test_several_codes_get_one_answer_each(engine):
    import datetime as dt

    result = engine.answer("99213 vs 99214 wRVU", dt.date(2025, 11, 1))
    assert result.codes == ("99213", "99214")
    assert "1.30" in result.text and "1.92" in result.text
    assert {f.code for f in result.provenance.fired} == {"99213", "99214"}


@pytest.mark.parametrize("damage, column", [("20251399", "TERM DT"), ("2025063", "TERM DT")])
def test_hcpcs_bad_dates_are_refused_with_line(tmp_path, cms_dir, capsys, damage, column):
    lines = (cms_dir / "HCPC2025_OCT_ANWEB.from-xlsx.csv").read_text().splitlines()
    at = next(i for i, l in enumerate(lines) if l.startswith("J0171,"))
    lines[at] = lines[at].replace("20250630", damage)
    bad = tmp_path / "HCPC2025_OCT_damaged.csv"
    bad.write_text("\n".join(lines) + "\n")
    assert main(["import-hcpcs", str(bad), "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert f":{at + 1} (column {column})" in err


def test_import_refuses_missing_files_and_bad_keys(tmp_path, capsys):
    assert main(["import-pfs", str(tmp_path / "nope.csv"), "--data-dir", str(tmp_path)]) == 1
    assert main(["import-hcpcs", str(tmp_path / "nope.csv"), "--data-dir", str(tmp_path)]) == 1
    (tmp_path / "x.csv").write_text("HCPC\n")
    assert main(["import-hcpcs", str(tmp_path / "x.csv"), "--key", "x/../HCPC2025_OCT",
                 "--data-dir", str(tmp_path)]) == 1
    assert "not a key" in capsys.readouterr().err


def test_modifier_rows_and_component_questions(engine):
    import datetime as dt

    tc = engine.answer("PE RVU for 71046-TC", dt.date(2025, 11, 1))
    assert "0.69" in tc.text and "modifier TC (technical component)" in tc.text
    pro = engine.answer("total RVU for 0509T 26", dt.date(2025, 11, 1))
    assert "0.62" in pro.text and "modifier 26" in pro.text
    assert engine.get_code("71046", dt.date(2025, 11, 1), "26").facts["work_rvu"] == 0.22
    from cptrules.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        engine.get_code("99213", dt.date(2025, 11, 1), "TC")
    assert caught.value.reason == "MODIFIER_NOT_PRICED"


def test_several_codes_are_named_and_none_dropped_silently(engine):
    import datetime as dt

    both = engine.answer("are G0438 and G0439 covered", dt.date(2025, 11, 1))
    assert both.text.count("HCPCS G0438") == 1 and "HCPCS G0439" in both.text
    many = engine.answer("rvu 99213 99214 99215 99211 99212", dt.date(2025, 11, 1))
    assert "at most 3 codes per question: 99211, 99212" in many.text
    mixed = engine.answer("rvus for 99999 and 99213", dt.date(2025, 11, 1))
    assert mixed.outcome == "ANSWERED" and "99999: not in any loaded source" in mixed.text


def test_termination_holds_after_the_file_year(engine):
    import datetime as dt

    later = engine.answer("is J2310 still billable", dt.date(2026, 3, 1))
    assert "June 30, 2025" in later.text and "no longer valid" in later.text


def test_undated_answers_are_for_today_and_label_older_figures(engine):
    answer = engine.answer("what is the wRVU for 99214")
    assert answer.date_of_service == "2026-11-27" and not answer.covers_date_of_service
    assert answer.fee_schedule_release == "RVU25D"
    text = answer.text
    assert text.startswith("No loaded Medicare fee schedule release speaks for November 27, 2026")
    assert "For reference only" in text and "1.92" in text and "calendar year 2025 only" in text
    assert "$" not in text.split("conversion factor")[0]  # no amount is quoted for the date


def test_glued_prefix(engine):
    assert engine.answer("what is cpt99213").codes == ("99213",)
    assert engine.answer("what is cpt\uff19\uff19\uff12\uff11\uff13").codes == ("99213",)


def test_answers_agree_with_component_rows(engine):
    """A code whose global row is C or X but whose 26 row is A says so, and billing names only paid rows."""
    import datetime as dt

    day = dt.date(2025, 11, 1)
    for code in ("70555", "84181"):
        report = engine.get_code(code, day)
        assert report.facts["paid_modifier_rows"] == ["26"]
        assert f"ask about {code}-26" in engine.render("rvu", report)
    bundled = engine.get_code("94150", day)
    assert bundled.facts["paid_modifier_rows"] == [] and "pays modifier" not in engine.render("billing", bundled)


def test_status_i_is_not_called_valid(engine):
    import datetime as dt

    text = engine.render("status", engine.get_code("98010", dt.date(2025, 11, 1)))
    assert "not one Medicare accepts" in text and "is a valid" not in text


def test_replaced_code_billing_does_not_contradict(engine):
    import datetime as dt

    text = engine.render("billing", engine.get_code("0042T", dt.date(2026, 1, 1)))
    assert "70472 or 70473" in text and "rather than an unlisted" not in text


def _hcpcs_with(cms_dir, tmp_path, code, column, value, keep=None):
    """The HCPCS CSV with one cell of one code's row replaced (and optionally only `keep` lines)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO((cms_dir / "HCPC2025_OCT_ANWEB.from-xlsx.csv").read_text(), newline="")))
    at = next(i for i, r in enumerate(rows) if r[0] == code and r[2] == "3")
    rows[at][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows[:keep] if keep else rows)
    path = tmp_path / "HCPC2025_OCT_damaged.csv"
    path.write_text(out.getvalue())
    return path, at + 1


@pytest.mark.parametrize("column, value, says", [
    ("PRICE1", "banana", "not a pricing indicator"),
    ("PRICE1", "41", "not a pricing indicator"),
    ("COV", "X", "not a coverage code"),
    ("ACTION CD", "Z", "not an action code"),
    ("BETOS", "banana", "not a BETOS code"),
    ("ADD DT", "", "every code has the date it was added"),
    ("ADD DT", "18991231", "outside 1965-2100"),
    ("TERM DT", "20000101", "before the code was added"),
    ("ACT EFF DT", "2025-10-01", "not a YYYYMMDD calendar date"),
    ("LONG DESCRIPTION", "", "empty description"),
    ("HCPC", "J01711", "not a HCPCS Level II code"),
    ("RECID", "5", "not a record id"),
    ("XREF1", "banana", "not a HCPCS or CPT code"),
    ("XREF2", "J01651", "not a HCPCS or CPT code"),
])
def test_hcpcs_stored_columns_are_checked(tmp_path, cms_dir, capsys, column, value, says):
    path, line = _hcpcs_with(cms_dir, tmp_path, "J0171", column, value)
    assert main(["import-hcpcs", str(path), "--data-dir", str(tmp_path / "d"), "--replace"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line} (column {column}): " in err and says in err
    assert not (tmp_path / "d" / "hcpcs").exists()


def test_hcpcs_duplicates_and_cut_files_are_refused(tmp_path, cms_dir, capsys):
    path, _ = _hcpcs_with(cms_dir, tmp_path, "J0171", "HCPC", "J0169")
    assert main(["import-hcpcs", str(path), "--data-dir", str(tmp_path / "d"), "--replace"]) == 1
    assert "J0169 appears twice" in capsys.readouterr().err
    cut, _ = _hcpcs_with(cms_dir, tmp_path, "J0171", "COV", "C", keep=4000)
    assert main(["import-hcpcs", str(cut), "--data-dir", str(tmp_path / "d"), "--replace"]) == 1
    assert "looks cut short" in capsys.readouterr().err
    assert main(["import-hcpcs", str(cut), "--data-dir", str(tmp_path / "d"), "--replace", "--partial"]) == 0
    from cptrules.data.hcpcs import HcpcsFile

    assert HcpcsFile.load(tmp_path / "d" / "hcpcs" / "HCPC2025_OCT.json.gz").partial is True


def _release(cms_dir, key, partial, change=None):
    """The 2026 excerpt as a loaded release under `key`, optionally with its rows changed."""
    from cptrules.data.pfs import PfsRelease, import_pfs_csv

    payload = dict(import_pfs_csv(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv", release=key,
                                  partial=True).payload, partial=partial)
    if change:
        payload = change(payload)
    return PfsRelease.from_payload(payload)


def test_release_diff_lists_conversion_factors_and_modifier_rows(engine, cms_dir):
    """Conversion-factor and modifier-row changes are items of their own, in text and JSON."""
    from cptrules.diff import diff_releases

    def changed(payload):
        fields = payload["fields"]
        at = {k: fields.index(k) for k in ("code", "mod", "work", "nf_total", "f_total", "status", "cf")}
        rows = [list(r) for r in payload["rows"] if (r[at["code"]], r[at["mod"]]) != ("71046", "TC")]
        for row in rows:
            row[at["cf"]] = 34.0
            if (row[at["code"]], row[at["mod"]]) == ("71046", "26"):
                row[at["status"]] = "C"
        extra = list(next(r for r in rows if r[at["code"]] == "99213"))
        extra[at["mod"]] = "53"
        rows.append(extra)
        return {**payload, "rows": rows, "conversion_factor": 34.0, "qp_conversion_factor": 34.2}

    old = _release(cms_dir, "RVU26C", partial=False)
    new = _release(cms_dir, "RVU26D", partial=False, change=changed)
    report = diff_releases(engine, old, new)
    doc = report.as_dict()
    assert doc["conversion_factor"] == {"old": 33.4009, "new": 34.0}
    assert doc["qp_conversion_factor"] == {"old": 0.0, "new": 34.2}
    assert doc["modifier_rows"]["added"] == ["99213-53"] and doc["modifier_rows"]["removed"] == ["71046-TC"]
    assert doc["modifier_rows"]["changed"] == [{"code": "71046", "modifier": "26", "status": ["A", "C"],
                                                "rvus": {}}]
    assert doc["changed"] == [] and doc["added"] == [] and doc["removed"] == []
    text = report.as_text()
    assert "conversion factor: 33.4009 → 34.0000 (+0.5991)" in text
    assert "qualifying-APM conversion factor: none → 34.2000" in text
    assert "modifier rows added (1): 99213-53" in text and "modifier rows removed (1): 71046-TC" in text
    assert "71046-26:\n  status A → C" in text


def test_release_diff_does_not_call_codes_missing_from_a_partial_release_removed(engine, cms_dir):
    from cptrules.diff import diff_releases

    def without_99215(payload):
        return {**payload, "rows": [r for r in payload["rows"] if r[0] != "99215"]}

    old = _release(cms_dir, "RVU26C", partial=False)
    whole = diff_releases(engine, old, _release(cms_dir, "RVU26D", partial=False, change=without_99215))
    assert whole.removed == ["99215"] and whole.conversion_factor is None
    partial = diff_releases(engine, old, _release(cms_dir, "RVU26D", partial=True, change=without_99215))
    assert partial.removed == [] and partial.as_dict()["partial"] == {"old": False, "new": True}
    assert "RVU26D is a partial release" in partial.as_text()
    assert "conversion factor: unchanged" in partial.as_text()


def test_diff_command_reads_the_data_dir(tmp_path, cms_dir, capsys):
    data = tmp_path / "data"
    assert main(["import-pfs", str(cms_dir / "excerpts-2026" / "PPRRVU2026_Oct_nonQPP.csv"), "--partial",
                 "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["diff", "RVU25D", "RVU26D", "--data-dir", str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["conversion_factor"] == {"old": 32.3465, "new": 33.4009}
    assert [(m["code"], m["modifier"]) for m in doc["modifier_rows"]["changed"]] == [("71046", "26"),
                                                                                    ("71046", "TC")]


def test_protos_writes_an_include_root_protoc_compiles_alone(tmp_path):
    """`cptrules protos DIR` gives a client everything it needs, google/type/date.proto included:
    protoc with DIR as its only include path (plus its bundled well-known types) compiles the service."""
    import subprocess
    import sys

    from cptrules.cli import main

    assert main(["protos", str(tmp_path / "protos")]) == 0
    written = {p.relative_to(tmp_path / "protos").as_posix() for p in (tmp_path / "protos").rglob("*.proto")}
    assert {"cptrules/v1/code_rules_service.proto", "cptrules/v1/code.proto",
            "google/type/date.proto", "google/rpc/error_details.proto"} <= written
    assert not any(name.startswith("cptrules/internal") for name in written)
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path / 'protos'}",
                           f"--descriptor_set_out={tmp_path / 'set.pb'}", "--include_imports",
                           "cptrules/v1/code_rules_service.proto", "google/rpc/error_details.proto"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
