"""The place finder skips its name search for a question holding no name's first word, and
find_zip stops at a question holding no five-digit number: neither may change what is found."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from cptrules.engine import _place_finder
from cptrules.questions import places as place_module
from cptrules.questions.places import _norm, find_zip


def test_place_search_gives_what_the_full_search_gives(engine):
    finder = _place_finder(engine.snapshot.data)
    assert finder is not None and finder._first_words
    words = sorted({w for alias in finder.aliases for w in alias.split()})

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(st.sampled_from(words), st.sampled_from(["99213", "cost", "in", "the", "+", ",", "."]),
                              st.text("abcdefghijklmnopqrstuvwxyz0123456789 +.-", max_size=8)), max_size=8))
    def check(parts):
        text = " ".join(parts)
        full = finder._names.search(_norm(text))
        found = finder.find(text)
        assert (found.text if found else None) == (full.group(1) if full else None)

    check()


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789 -TXinzpcode,", max_size=30))
def test_find_zip_stops_only_where_no_form_could_match(text):
    if not re.search(r"\d{5}", text):
        patterns = [place_module._LOCALITY_ID, place_module._MAC_AND_NUMBER, place_module._ZIP_WORD,
                    place_module._ZIP_PLUS_FOUR, place_module._STATE_ZIP, place_module._IN_NUMBER]
        assert not any(p.search(text) for p in patterns)
    find_zip(text, ())
