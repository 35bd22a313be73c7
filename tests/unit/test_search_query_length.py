"""SearchCodes' 200-character limit holds for the text the index reads, after NFKC too."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cptrules import limits
from cptrules.errors import InvalidInputError
from cptrules.questions.matcher import normalise_question
from cptrules.search.query_text import search_query

LIMIT = limits.SEARCH_QUERY_MAX_CHARS
# Characters NFKC lengthens a lot (U+FDFA: 18 characters), mixed into any text.
GROWING = st.sampled_from(["\ufdfa", "\ufb03", "\u3392", "\u2474", "\uff21", "a", " "])


@settings(max_examples=400, deadline=None)
@given(st.lists(GROWING | st.characters(), max_size=LIMIT + 10).map("".join))
@example("\ufdfa" * 11)  # 198 characters once normalised: within the limit
@example("\ufdfa" * 12)  # 216
@example("a" * LIMIT)
def test_the_limit_holds_as_sent_and_normalised(query):
    normalised = normalise_question(query)  # NFKC, controls as spaces, stripped: what the index reads
    try:
        text = search_query(query)
    except InvalidInputError as error:
        assert error.field == "query"
        too_long = len(query) > LIMIT or len(normalised) > LIMIT
        assert (error.reason == "FIELD_TOO_LONG") == too_long
        if too_long:
            assert int(error.metadata["length"]) > LIMIT and error.metadata["limit"] == str(LIMIT)
        return
    assert len(query) <= LIMIT and text == normalised and len(text) <= LIMIT


def test_an_expanding_query_is_refused_saying_why(engine):
    with pytest.raises(InvalidInputError, match="216 characters long after Unicode NFKC normalisation; "
                                                "the limit is 200") as raised:
        engine.search_codes("\ufdfa" * 12)
    assert raised.value.field == "query" and raised.value.reason == "FIELD_TOO_LONG"
    engine.search_codes("\ufdfa" * 11)  # 198 characters: searched
