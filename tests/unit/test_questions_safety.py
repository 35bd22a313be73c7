"""Open-ended question text: never a crash, never a code invented from noise, bounded work."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cptrules.errors import QuestionTooLongError
from cptrules.limits import QUESTION_MAX_CHARS
from cptrules.questions.extract import extract

TODAY = dt.date(2026, 11, 27)


def is_code(engine):
    return lambda c: bool(engine.category_of(c)[0])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(max_size=QUESTION_MAX_CHARS))
def test_any_text_gets_an_answer_or_a_clear_error(engine, text):
    try:
        result = engine.answer(text)
    except QuestionTooLongError:  # NFKC can lengthen text past the limit
        return
    assert result.text and result.outcome


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.sampled_from(["0556T", "99213", "G0439", "0001U", "1036F", "T1015"]),
       st.sampled_from(["what is {}", "is {} permanent?", "{} wRVU", "cpt {} coverage", "HCPCS {}-RT?"]),
       st.sampled_from(["", "  ", " ???", " pls"]))
def test_codes_are_found_wherever_they_stand(engine, code, form, tail):
    found = extract(form.format(code.lower()) + tail, is_code(engine), frozenset({"cpt", "hcpcs"}),
                    frozenset({"RT"}), TODAY)
    assert found.codes == (code,)


@pytest.mark.parametrize("text", [
    "my NPI is 1234567893", "call 555-867-5309", "dx M81.0 and E11.9", "claim 2025123456789",
    "paid $12,345.00 on 03/14/2025", "member id XJH448812", "Z00.00", "zip 9021",
])
def test_identifiers_are_not_procedure_codes(engine, text):
    assert extract(text, is_code(engine), frozenset(), frozenset(), TODAY).codes == ()


@pytest.mark.parametrize("text, malformed", [
    ("what is 055T", "055T"), ("define 12345X", "12345X"), ("is code 9921 valid", "9921"),
    ("is 0556TT temporary", "0556TT"), ("is G043 valid", "G043"), ("is W1234 a code", "W1234"),
])
def test_malformed_codes_are_named(engine, text, malformed):
    assert malformed in extract(text, is_code(engine), frozenset({"code"}), frozenset(), TODAY).malformed


def test_length_limit_is_enforced_after_normalisation(engine):
    engine.answer("x" * QUESTION_MAX_CHARS)
    with pytest.raises(QuestionTooLongError):
        engine.answer("x" * (QUESTION_MAX_CHARS + 1))


@pytest.mark.parametrize("text", [
    "a" * 999, "0556T" * 199, ("(" * 300) + ")" * 300, "what is " * 120, "9" * 999,
])
def test_pathological_text_is_answered(engine, text):
    result = engine.answer(text[:QUESTION_MAX_CHARS])
    assert result.text and result.outcome in {"NOT_UNDERSTOOD", "ANSWERED", "NEED_CODE", "MALFORMED_CODE"}


@pytest.mark.parametrize("text, intent", [
    ("'; DROP TABLE codes; -- is 0556T permanent", "is_permanent"),
    ("<script>alert(1)</script> is 0556T permanent", "is_permanent"),
    ("\u202e0556T\u0000\u200b permanent?", "is_permanent"),
])
def test_markup_and_sql_are_just_text(engine, text, intent):
    result = engine.answer(text)
    assert (result.intent, result.codes) == (intent, ("0556T",))


def test_work_grows_linearly_with_length(engine):
    """Counts words looked up rather than timing: 4x the text costs at most ~4x the work."""
    import dataclasses

    from cptrules.questions.matcher import interpret

    book = engine.ruleset.phrasebook
    seen: list[str] = []
    counted = dataclasses.replace(book, correct=lambda word: seen.append(word) or book.correct(word))
    interpret("is 0556T covred by medicare " * 8, counted, is_code(engine), TODAY)
    short = len(seen)
    seen.clear()
    interpret("is 0556T covred by medicare " * 32, counted, is_code(engine), TODAY)
    assert short > 0 and len(seen) <= short * 4.5


def test_control_characters_read_as_spaces_without_a_loop_over_the_text(monkeypatch):
    """Printable text is never walked character by character; other text only by distinct characters."""
    import unicodedata

    from cptrules.questions import matcher

    looked: list[str] = []
    real = unicodedata.category
    monkeypatch.setattr(matcher.unicodedata, "category", lambda c: looked.append(c) or real(c))
    assert matcher.normalise_question("is 0556T permanent? " * 40) == ("is 0556T permanent? " * 40).strip()
    assert looked == []
    text = "is\u00000556T\u200b permanent\u0007" * 30
    assert matcher.normalise_question(text).split() == ["is", "0556T", "permanent"] * 30
    assert len(looked) == len(set(text)) < len(text) / 20


def test_dates_in_questions():
    from cptrules.questions.extract import find_date

    assert find_date("is 0042T valid on 1/15/2026", TODAY)[0] == dt.date(2026, 1, 15)
    assert find_date("for DOS 2026-01-02", TODAY)[0] == dt.date(2026, 1, 2)
    assert find_date("on January 5, 2026", TODAY)[0] == dt.date(2026, 1, 5)
    assert find_date("in 2025", TODAY)[0] == dt.date(2025, 12, 31)
    assert find_date("for 2026 DOS", TODAY)[0] == TODAY
    assert find_date("in 2027", TODAY)[0] == dt.date(2027, 1, 1)
    assert find_date("3/1/26", TODAY)[0] == dt.date(2026, 3, 1)
    assert find_date("no date", TODAY)[0] is None
    for code in ("G2012", "2022F", "Q2035", "J2001"):
        assert find_date(f"what is {code}", TODAY)[0] is None, code


def test_impossible_date_is_named(engine):
    result = engine.answer("is 99213 valid for dos 13/45/2025")
    assert "13/45/2025" in result.text and "not a calendar date" in result.text


def test_raw_length_is_checked_before_any_normalising(engine, monkeypatch):
    """An over-long question is refused on its raw length: the per-character normalising never
    runs on it (1 MiB of U+FDFA used to cost seconds of CPU before the check)."""
    import cptrules.engine as engine_module

    calls = []
    monkeypatch.setattr(engine_module, "normalise_question", lambda text: calls.append(text) or text)
    with pytest.raises(QuestionTooLongError) as caught:
        engine.answer("\ufdfa" * (QUESTION_MAX_CHARS + 1))
    assert calls == []
    assert "\ufdfa" not in caught.value.message and caught.value.metadata["length"] == "1001"


def test_answer_repeats_only_a_prefix_of_the_question(engine):
    from cptrules.limits import ECHO_MAX_CHARS

    question = "is 0556T permanent? " + "x" * 900
    result = engine.answer(question)
    assert len(result.question) <= ECHO_MAX_CHARS and question.startswith(result.question[:-1])
    assert engine.answer("what is 0556T").question == "what is 0556T"


@pytest.mark.parametrize("written", ["12/31/9999", "7/4/1776", "1/1/0001", "0001-01-01",
                                     "9999-12-31", "1/1/2101", "July 4, 1776", "12/31/1989"])
def test_dates_outside_the_service_years_are_not_read(written):
    """The same years as a request's date_of_service, wherever the date comes from."""
    from cptrules.questions.extract import read_date

    day, _, unreadable = read_date(f"is 99213 valid on {written}", TODAY)
    assert day is None and unreadable == written


@pytest.mark.parametrize("written, day", [
    ("1/1/1990", dt.date(1990, 1, 1)), ("12/31/2100", dt.date(2100, 12, 31)),
    ("3/1/26", dt.date(2026, 3, 1)), ("2100-12-31", dt.date(2100, 12, 31)),
])
def test_dates_at_the_bounds_are_read(written, day):
    from cptrules.questions.extract import read_date

    assert read_date(f"valid on {written}?", TODAY)[0] == day


def test_a_question_date_out_of_bounds_is_named_and_not_used(engine):
    from cptrules import limits

    result = engine.answer("is 99213 valid on 1/1/0001")
    assert result.date_of_service == TODAY.isoformat()
    assert "1/1/0001" in result.text
    assert (limits.DATE_MIN_YEAR, limits.DATE_MAX_YEAR) == (1990, 2100)
