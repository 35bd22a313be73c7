"""Modifiers listed after the word "modifier": one is answered per code, the others are named."""

from __future__ import annotations

import datetime as dt

import pytest

from cptrules.questions.extract import extract

MODIFIERS = frozenset({"25", "59", "26", "TC", "76", "RT", "LT", "XU"})


def _read(text: str):
    return extract(text, lambda code: code[0].isdigit(), frozenset({"cpt", "code"}), MODIFIERS,
                   dt.date(2026, 11, 27))


@pytest.mark.parametrize("text, attached, left", [
    ("99213 modifier 25 and 59", [("99213", "25")], [("99213", "59")]),
    ("99213 mod 25, 59 or 76", [("99213", "25")], [("99213", "59"), ("99213", "76")]),
    ("99213-25 with modifier 59", [("99213", "25")], [("99213", "59")]),
    ("modifier RT or LT on 20610?", [("20610", "RT")], [("20610", "LT")]),
    ("99214 modifier 25 and is it billable", [("99214", "25")], []),
    ("99213 modifier 25 and 99214", [("99213", "25")], []),
    ("99213 with modifier 25", [("99213", "25")], []),
])
def test_listed_modifiers(text, attached, left):
    found = _read(text)
    assert list(found.modifiers) == attached
    assert list(found.unanswered_modifiers) == left
