"""Code normalisation and category-by-format, including the known collisions."""

import pytest
from hypothesis import given, strategies as st

from cptrules.codes import normalise_code
from cptrules.errors import InvalidInputError, MalformedCodeError


@pytest.mark.parametrize("text, code", [
    ("0556t", "0556T"), (" 99213 ", "99213"), ("CPT 0556T", "0556T"), ("cpt® 0446T", "0446T"),
    ("HCPCS g0439", "G0439"), ("code: 1036F", "1036F"), ("９９２１３", "99213"),
])
def test_normalises(text, code):
    assert normalise_code(text) == code


@pytest.mark.parametrize("text", ["055T", "12345X", "9921", "0556TT", "27447-RT", "99 213"])
def test_refuses_malformed(text):
    with pytest.raises(MalformedCodeError):
        normalise_code(text)


def test_refuses_empty_and_huge():
    with pytest.raises(InvalidInputError):
        normalise_code("   ")
    with pytest.raises(InvalidInputError):
        normalise_code("9" * 10_000)


@pytest.mark.parametrize("code, category", [
    ("99213", "CATEGORY_I"), ("00100", "CATEGORY_I"), ("1036F", "CATEGORY_II"),
    ("0556T", "CATEGORY_III"), ("T1015", "HCPCS_LEVEL_II"), ("0001U", "PLA"),
    ("U0001", "HCPCS_LEVEL_II"), ("G0439", "HCPCS_LEVEL_II"), ("D0120", "HCPCS_LEVEL_II"),
    ("M0201", "HCPCS_LEVEL_II"), ("0002M", "MAAA"), ("0001A", "CATEGORY_I"), ("0001Q", ""),
    ("W1234", ""), ("ABCDE", ""),
])
def test_category_by_format(engine, code, category):
    assert engine.category_of(code)[0] == category


@given(st.text(max_size=40))
def test_any_text_normalises_or_is_refused_cleanly(text):
    try:
        code = normalise_code(text)
    except InvalidInputError:
        return
    assert len(code) == 5 and code.isalnum() and code == code.upper()
