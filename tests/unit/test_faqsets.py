"""The code → FAQ-set iteration shared by the export and the streaming RPC."""

from __future__ import annotations

import datetime as dt

import pytest

from cptrules.errors import CodeNotFoundError, InvalidInputError, MalformedCodeError
from cptrules.export.faqsets import canonical_json, content_hash, iter_faq_sets

DAY = dt.date(2025, 11, 1)


def test_a_set_holds_exactly_the_engines_faq_answers(engine):
    (faq_set,) = iter_faq_sets(engine, codes=["0556t"], dos=DAY)
    report, entries = engine.faq("0556T", DAY)
    assert faq_set.code == "0556T"
    assert [(e.intent, e.question, e.text) for e in faq_set.entries] == \
        [(e.intent, e.question, e.text) for e in entries]
    assert faq_set.date_of_service == "2025-11-01"
    assert faq_set.ruleset_revision == engine.ruleset.revision
    assert faq_set.content_hash == content_hash("0556T", entries)


def test_codes_come_in_code_order_without_repeats(engine):
    sets = iter_faq_sets(engine, codes=["0558T", "0554T", "0556T", "0554T"], dos=DAY)
    assert [s.code for s in sets] == ["0554T", "0556T", "0558T"]


def test_a_category_gives_its_codes_and_resumes_after_a_code(engine):
    codes = [s.code for s in iter_faq_sets(engine, category="CATEGORY_III", dos=DAY)]
    assert codes == list(engine.snapshot.codes_in("CATEGORY_III"))
    assert len(codes) == 590
    resumed = [s.code for s in iter_faq_sets(engine, category="CATEGORY_III", dos=DAY, after="0556T")]
    assert resumed == codes[codes.index("0556T") + 1:]


def test_bad_input_is_refused_before_anything_is_produced(engine):
    with pytest.raises(MalformedCodeError) as malformed:
        iter_faq_sets(engine, codes=["0556T", "055T"])
    assert malformed.value.field == "codes[1]"
    with pytest.raises(CodeNotFoundError) as unknown:
        iter_faq_sets(engine, codes=["0556T", "0999T"])
    assert unknown.value.metadata["index"] == "1"
    with pytest.raises(InvalidInputError) as category:
        iter_faq_sets(engine, category="CATEGORY_IV")
    assert category.value.reason == "INVALID_CATEGORY"
    with pytest.raises(InvalidInputError):
        iter_faq_sets(engine, codes=["0556T"], category="CATEGORY_III")
    with pytest.raises(InvalidInputError):
        iter_faq_sets(engine, codes=[])


def test_the_hash_follows_what_a_reader_sees(engine):
    (a,) = iter_faq_sets(engine, codes=["0556T"], dos=DAY)
    (b,) = iter_faq_sets(engine, codes=["0556T"], dos=DAY)
    (other,) = iter_faq_sets(engine, codes=["0556T"], dos=dt.date(2019, 6, 1))
    assert a.content_hash == b.content_hash
    assert other.content_hash != a.content_hash  # 2019 answers say other things


def test_canonical_json_is_independent_of_key_order():
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == canonical_json({"a": [1.5, "é"], "b": 1})
    assert canonical_json({"a": "é"}) == '{"a":"é"}'.encode()
