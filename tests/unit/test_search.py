"""Code search and find-code questions on the embedded data, and rules/search.yaml as analysts
write it: every bad entry is refused with its file and line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cptrules.errors import InvalidInputError, RuleFileErrors
from cptrules.ruleset.source import SourceFile
from cptrules.search import SearchIndex, compile_search_rules, load_search_rules

QUESTIONS = [
    ("What's the CPT code for a total knee replacement?", "27447"),
    ("HCPCS code for the subsequent annual wellness visit", "G0439"),
    ("CPAP machine code", "E0601"),
    ("what code do i use for critical care", "99291"),
    ("cpt code for a tka", "27447"),
    ("which code is for an ekg", "93000"),
]


def _rules_text(rules_dir):
    return (rules_dir / "search.yaml").read_text(), (rules_dir / "search" / "find_code.j2").read_text()


def _refused(text: str, template: str) -> dict[tuple[str, int], str]:
    with pytest.raises(RuleFileErrors) as caught:
        compile_search_rules(SourceFile("search.yaml", text), template)
    return {(p.path, p.line): p.message for p in caught.value.problems}


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize("question, first", QUESTIONS)
def test_find_code_questions_answer_with_the_right_code_first(engine, question, first):
    answer = engine.answer(question)
    assert answer.outcome == "ANSWERED" and answer.intent == "find_code"
    assert answer.codes[0] == first and answer.code == first
    assert [c.code for c in answer.candidates] == list(answer.codes) and len(answer.codes) <= 3
    assert all(c.why and c.descriptor for c in answer.candidates)
    assert answer.matched[0].startswith("search.yaml:")
    assert any(f.rule.path == "search.yaml" and f.rule.id == "find_code.cue" for f in answer.provenance.fired)


def test_the_issue_questions_are_no_longer_read_as_other_intents(engine):
    knee = engine.answer("What's the CPT code for a total knee replacement?")
    assert knee.intent == "find_code" and knee.runner_up in ("", "conversion", *engine.ruleset.templates)
    wellness = engine.answer("HCPCS code for the subsequent annual wellness visit")
    assert "G0438" in wellness.codes and "G0438" in wellness.text


def test_an_open_choice_gets_the_note_written_in_search_yaml(engine):
    rules = engine.snapshot.search_rules
    note = next(d for d in rules.distinctions if "G0438" in d.codes)
    open_question = engine.answer("what's the code for an annual wellness visit")
    assert {"G0438", "G0439"} <= set(open_question.codes)
    assert note.note in open_question.text
    assert any(f.rule.line == note.line for f in open_question.provenance.fired)
    settled = engine.answer("what's the code for the initial annual wellness visit")
    assert settled.codes[0] == "G0438" and note.note not in settled.text


def test_questions_that_ask_something_else_are_left_alone(engine):
    assert engine.answer("is it permanent?").outcome == "NEED_CODE"
    assert engine.answer("what is the code for zzqx blorf").intent != "find_code"
    assert engine.answer("What is 0556T?").intent == "what_is"
    for about_terms in ("what is a category III code", "what does status code C mean",
                        "how do I bill a cat III code"):
        assert engine.answer(about_terms).intent != "find_code"


def test_search_ranks_cpap_devices_and_reads_typos(engine):
    assert "E0601" in [m.code for m in engine.search_codes("cpap")[:3]]
    typo = engine.search_codes("knee replacemnt")[0]
    assert typo.code == "27447" and "'replacemnt' read as 'replacement'" in typo.why
    assert engine.search_codes("99213")[0].matched_field == "code"


def test_search_category_filter_and_page_sizes(engine):
    only = engine.search_codes("flu vaccine", "HCPCS_LEVEL_II", 50)
    assert only and {m.category for m in only} == {"HCPCS_LEVEL_II"}
    assert len(engine.search_codes("injection")) == 10
    assert len(engine.search_codes("injection", page_size=500)) == 50


@pytest.mark.parametrize("query, page_size, field", [
    ("", 0, "query"), ("  ?! ", 0, "query"), ("x" * 201, 0, "query"), ("cpap", -1, "page_size")])
def test_search_refuses_bad_input(engine, query, page_size, field):
    with pytest.raises(InvalidInputError) as caught:
        engine.search_codes(query, page_size=page_size)
    assert caught.value.field == field


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60), st.integers(min_value=0, max_value=60))
def test_any_query_gives_bounded_ordered_scores_or_a_precise_error(engine, query, size):
    try:
        matches = engine.search_codes(query, page_size=size)
    except InvalidInputError as error:
        assert error.field == "query"
        return
    assert len(matches) <= min(size or 10, 50)
    assert all(0 < m.score <= 1 for m in matches)
    assert len({m.code for m in matches}) == len(matches)


def test_the_shipped_search_rules_load(rules_dir):
    rules = load_search_rules(rules_dir)
    assert rules.finds_codes and rules.synonyms and rules.distinctions


def test_a_bad_entry_is_refused_with_its_line(rules_dir):
    text, template = _rules_text(rules_dir)
    broken = text.replace("    means: continuous positive airway pressure device\n", "", 1)
    found = _refused(broken, template)
    assert ("search.yaml", _line(broken, "  - terms: [cpap, c-pap]")) in found
    unquoted = text.replace('codes: ["G0438", "G0439"]', "codes: [G0438, 99213]", 1)
    found = _refused(unquoted, template)
    assert any("99213" in m for (_, line), m in found.items()
               if line == _line(unquoted, "codes: [G0438, 99213]"))


def test_a_term_written_twice_is_refused_at_the_second(rules_dir):
    text, template = _rules_text(rules_dir)
    twice = text.replace("  - terms: [ekg, ecg]", "  - terms: [ekg, ecg, tka]", 1)
    found = _refused(twice, template)
    assert any("'tka' is also a term" in m for (path, line), m in found.items()
               if path == "search.yaml" and line == _line(twice, "[ekg, ecg, tka]"))


def test_a_template_naming_an_unknown_value_is_refused_with_its_line(rules_dir):
    text, template = _rules_text(rules_dir)
    found = _refused(text, template + "\n{{ price }}\n")
    assert ("search/find_code.j2", template.count("\n") + 2) in found


def test_a_bad_search_file_keeps_the_engine_from_loading(rules_copy):
    path = rules_copy / "search.yaml"
    path.write_text(path.read_text().replace("  min_score: 0.6", "  min_score: 6", 1))
    with pytest.raises(RuleFileErrors) as caught:
        load_search_rules(rules_copy)
    assert [(p.path, p.line) for p in caught.value.problems] == [
        ("search.yaml", _line(path.read_text(), "min_score: 6"))]


def test_a_synonym_an_analyst_adds_is_searched(engine, rules_dir):
    text, template = _rules_text(rules_dir)
    added = text.replace("synonyms:\n", "synonyms:\n  - terms: [snore machine]\n"
                                         "    means: continuous positive airway pressure device\n", 1)
    index = SearchIndex(engine.snapshot.data, compile_search_rules(SourceFile("search.yaml", added), template),
                        engine.snapshot.category_of)
    _, matches = index.search("snore machine", 3)
    assert matches[0].code == "E0601" and "search.yaml:" in matches[0].why
    _, before = engine.snapshot.search_index().search("snore machine", 3)
    assert not before or before[0].code != "E0601"


def test_check_reports_a_bad_search_file_with_its_line(rules_copy, capsys):
    from cptrules.cli import main

    path = rules_copy / "search.yaml"
    path.write_text(path.read_text().replace("  candidates: 3", "  candidates: three", 1))
    assert main(["check", str(rules_copy)]) == 1
    assert f"search.yaml:{_line(path.read_text(), 'candidates: three')}" in capsys.readouterr().err
