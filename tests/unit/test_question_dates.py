"""A date stated in a question asking which code to use is taken out of the words searched,
whatever its form and whether or not it is a calendar date."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, strategies as st

from cptrules.questions.extract import extract, without_date

TODAY = dt.date(2026, 11, 27)
LEADS = ["on", "for DOS", "DOS", "with a date of service of", "dated", "date of service:", ""]


def _read(text: str):
    return extract(text, lambda code: False, frozenset({"cpt", "code"}), frozenset(), TODAY)


@given(st.integers(1, 12), st.integers(1, 31), st.integers(1990, 2100), st.sampled_from(LEADS),
       st.sampled_from(["{m}/{d}/{y}", "{y}-{m:02d}-{d:02d}", "{mon} {d}, {y}"]))
def test_a_stated_date_and_its_lead_words_are_not_searched(month, day, year, lead, form):
    said = form.format(m=month, d=day, y=year, mon=dt.date(2000, month, 1).strftime("%B"))
    text = f"knee replacement code {lead} {said}".replace("  ", " ")
    found = _read(text)
    assert (found.date_of_service is not None) != bool(found.unreadable_date)
    assert without_date(text, found) == "knee replacement code"


def test_a_question_without_a_date_is_left_as_it_is():
    text = "code for a 2 view chest x-ray"
    assert without_date(text, _read(text)) == text
