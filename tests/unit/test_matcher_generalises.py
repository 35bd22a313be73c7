"""The per-code matcher reads phrasings it has not seen: misspelt words anywhere in a question,
intent-deciding patterns over word classes (choices, professions, payers, what a code is for),
and words that only look like codes in questions about terms."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rapidfuzz.distance import OSA

from cptrules.questions.matcher import NO_INTENT, interpret
from cptrules.questions.phrasebook import compile_phrasebook
from cptrules.ruleset.compile import plain_yaml
from cptrules.ruleset.source import SourceFile, parse_yaml

TODAY = dt.date(2026, 11, 27)


def read(engine, question):
    return interpret(question, engine.ruleset.phrasebook, lambda c: bool(engine.category_of(c)[0]), TODAY)


@pytest.mark.parametrize("question, intent", [
    # a misspelt word counts inside a phrase as well as alone
    ("what categroy is 0556T", "category"),
    ("catagory of 0042T?", "category"),
    ("is 0556T permenant", "is_permanent"),
    ("is 99213 still vaild", "status"),
    ("when does 0556T get archved", "sunset"),
    ("has 0556T been convertd to a cat 1 code", "conversion"),
    # a hyphenated cue in any of its spellings
    ("what are the known-as names for 27447", "synonyms"),
    ("99291 for a non coder please", "plain_language"),
    ("cosurgery 63081 how much does each surgeon get paid", "co_surgeons"),
    ("jargon-free explanation of 0275T", "plain_language"),
])
def test_misspelt_and_hyphenated_words(engine, question, intent):
    assert read(engine, question).intent == intent


@pytest.mark.parametrize("question, intent", [
    ("ortho or rheum for 20610?", "specialties"),
    ("would a podiatrist report 11042?", "specialties"),
    ("do rheumatologists bill 20610", "specialties"),
    ("would an orthopedic surgeon be the one billing 27447", "specialties"),
    ("is 1036F a performance-measure code?", "category"),
    ("is this a quality-reporting code? 3074F", "category"),
    ("is E0601 a DME code?", "category"),
    ("how do I set a charge when there are no RVUs for 0556T", "billing"),
    ("how much should I charge for 0743T since there are no rvus", "billing"),
    ("does United reimburse 0556T?", "coverage"),
    ("is 0509T reimbursed by UHC", "coverage"),
    ("explain 0556T without the jargon", "plain_language"),
    ("explain 93306 in words my mom would get", "plain_language"),
    ("what's another way to say G0438", "synonyms"),
    ("will 0556T be in the next release?", "sunset"),
    ("is 0556T still valid in the next release", "status"),
])
def test_patterns_decide_intents(engine, question, intent):
    reading = read(engine, question)
    assert reading.intent == intent
    patterns = {p.cue for p in engine.ruleset.phrasebook.patterns}
    assert any(cue in patterns or cue.text == "jargon" for cue, _ in reading.matched)


def test_a_statement_about_a_profession_is_not_a_specialty_question(engine):
    """Only a question about who performs a code is a specialty question."""
    reading = read(engine, "Our radiologists used to bill 0042T. Is 70472 the new code starting DOS 01/01/2026?")
    assert reading.intent == "conversion"


@pytest.mark.parametrize("question", [
    "What's the CPT code for a total knee replacement?", "code for a total knee replacement",
    "cpt code for knee replacement", "best knee replacement surgeon near 77030",
])
def test_a_replaced_body_part_is_no_conversion(engine, question):
    """"Knee replacement" names a procedure; the engine routes a question with no code elsewhere."""
    assert read(engine, question).intent != "conversion"


@pytest.mark.parametrize("question", [
    "how do I bill a total knee replacement 27447", "is the total knee replacement 27447 covered",
])
def test_a_cue_taken_back_leaves_the_confidence_a_share(engine, question):
    """A negative pattern once drove an intent's total below zero and the confidence above 1."""
    reading = read(engine, question)
    assert 0.0 <= reading.confidence <= 1.0 and min(reading.scores.values()) >= 0.0


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(["total", "knee", "hip", "replacement", "what", "is", "the", "code", "for",
                                 "27447", "bill", "covered", "replaced", "by", "ortho", "or", "rheum"]),
                max_size=14))
def test_confidence_is_always_a_share(engine, words):
    reading = read(engine, " ".join(words))
    assert 0.0 <= reading.confidence <= 1.0


def test_the_code_for_a_procedure_with_a_code_is_a_term_check(engine):
    assert read(engine, "is 27447 the right code for a total knee replacement").intent == "synonyms"
    assert read(engine, "what is the replacement code for 0556T").intent == "conversion"


@pytest.mark.parametrize("question", [
    "what is modifier 26?", "what was the 2025 conversion factor?", "what is a 090 global?",
    "what does status indicator C mean?", "what is modifier 59", "is the 2026 CF higher than 2025",
    "what's the zip 10001 locality", "how long do Category III codes last?",
])
def test_numbers_in_questions_about_terms_are_not_codes(engine, question):
    found = read(engine, question).extraction
    assert (found.codes, found.malformed) == ((), ())


@pytest.mark.parametrize("question, not_intent", [
    ("was 0556T modified", "billing"),  # "modified" is a word, not a misspelt "modifier"
    ("is this a lateral view 71046", "bilateral_surgery"),
])
def test_ordinary_words_are_not_read_as_typos(engine, question, not_intent):
    assert read(engine, question).intent != not_intent


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_any_long_keyword_survives_one_swapped_pair_of_letters(engine, data):
    """A transposition inside any keyword of seven or more letters is still read as that keyword."""
    book = engine.ruleset.phrasebook
    words = sorted(w for w in book.keywords if len(w) >= 7 and w.isalpha())
    word = data.draw(st.sampled_from(words))
    at = data.draw(st.integers(1, len(word) - 2))
    typo = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    if typo in book.vocabulary:
        return
    corrected, closeness = book.correct(typo)
    # another cue word one edit away is as good a reading
    assert corrected == word or OSA.distance(typo, corrected) <= 1, (typo, corrected)
    assert closeness >= 0.86


PHRASEBOOK = """\
code_prefixes: [cpt]
word_classes:
  profession: [ortho, rheum]
patterns:
  - {when: "{profession} or {profession}", intent: specialties, weight: 9}
  - {when: "{specialty} or {profession}", intent: specialties, weight: 9}
  - {when: "... {profession}", intent: specialties, weight: 9}
  - {when: "{profession}", intent: nowhere, weight: 9}
intents:
  what_is: {bare_code: true, phrases: {what is: 1.5}}
  specialties: {keywords: {specialty: 5}}
"""


def test_a_broken_pattern_is_a_located_problem():
    doc, problems = parse_yaml(SourceFile("questions.yaml", PHRASEBOOK))
    assert problems == []
    book, problems = compile_phrasebook(plain_yaml(doc), doc, "questions.yaml", {"what_is", "specialties"})
    assert book is None
    assert [(p.line, p.kind) for p in problems] == [(6, "SCHEMA"), (7, "SCHEMA"), (8, "SCHEMA")]
    assert "{specialty}" in problems[0].message and "at each end" in problems[1].message
    assert "nowhere" in problems[2].message


def test_a_question_with_no_intent_stays_none(engine):
    assert read(engine, "what's the weather in boston").intent == NO_INTENT
