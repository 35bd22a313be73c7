"""Intent and code accuracy on our hand-written evaluation set (tests/eval/questions.yaml)."""

import collections
import datetime as dt
from pathlib import Path

import pytest
from ruamel.yaml import YAML

# Intents decided after the matcher (a topic, a search for a code) are scored through the whole
# question path by test_question_answers.py.
WHOLE_PATH = {"find_code", "topic"}
QUESTIONS = [item for item in YAML(typ="safe").load(
    (Path(__file__).resolve().parents[1] / "eval" / "questions.yaml").read_text())
    if item["intent"] not in WHOLE_PATH]
TARGET = 0.95
PER_INTENT = 0.9  # no intent may hide behind the others' average
TODAY = dt.date(2026, 11, 27)


def read(engine, question):
    from cptrules.questions.matcher import interpret

    return interpret(question, engine.ruleset.phrasebook, lambda c: bool(engine.category_of(c)[0]), TODAY)


def test_set_is_large_and_varied():
    intents = collections.Counter(q["intent"] for q in QUESTIONS)
    assert len(QUESTIONS) >= 600 and len(intents) == 14
    assert min(intents.values()) >= 20


def test_accuracy_per_intent(engine):
    per_intent = collections.defaultdict(lambda: [0, 0, 0, 0])
    misses = []
    for item in QUESTIONS:
        reading = read(engine, item["q"])
        intent_ok = reading.intent == item["intent"]
        codes_ok = list(reading.extraction.codes) == list(item["codes"])
        stats = per_intent[item["intent"]]
        stats[0] += 1
        stats[1] += intent_ok
        stats[2] += intent_ok and codes_ok
        stats[3] += codes_ok
        if not (intent_ok and codes_ok):
            misses.append(f"{item['q']!r}: want {item['intent']} {item['codes']}, "
                          f"got {reading.intent} {list(reading.extraction.codes)}")
    total = sum(s[0] for s in per_intent.values())
    both = sum(s[2] for s in per_intent.values())
    report = "\n".join(f"{k:15} intent {s[1]}/{s[0]}, codes {s[3]}/{s[0]}, both {s[2]}/{s[0]}"
                       for k, s in sorted(per_intent.items()))
    print(f"\n{report}\noverall {both}/{total} = {both / total:.1%}\n" + "\n".join(misses))
    assert both / total >= TARGET, f"{both / total:.1%} < {TARGET:.0%}\n{report}\n" + "\n".join(misses)
    weakest = {k: s[2] / s[0] for k, s in per_intent.items() if s[2] / s[0] < PER_INTENT}
    assert not weakest, f"intents under {PER_INTENT:.0%}: {weakest}\n{report}\n" + "\n".join(misses)


def test_none_questions_never_invent_codes(engine):
    invented = [q["q"] for q in QUESTIONS if q["intent"] == "none" and read(engine, q["q"]).extraction.codes]
    assert invented == []


def test_malformed_tokens_are_named(engine):
    for item in QUESTIONS:
        for token in item.get("malformed", []):
            reading = read(engine, item["q"])
            if token.upper() not in reading.extraction.malformed:
                pytest.fail(f"{item['q']!r}: {token} not reported as malformed")


def test_stated_dates_are_read(engine):
    for item in QUESTIONS:
        if "dos" in item and item["intent"] != "none":
            found = read(engine, item["q"]).extraction.date_of_service
            assert found is not None, item["q"]
            assert found.isoformat().startswith(str(item["dos"])), item["q"]


HOLDOUT = YAML(typ="safe").load((Path(__file__).resolve().parents[1] / "eval" / "holdout.yaml").read_text())


def test_holdout_accuracy(engine):
    """Questions written apart from the phrasebook; a guard against overfitting the main set."""
    right = sum(1 for item in HOLDOUT
                if (r := read(engine, item["q"])).intent == item["intent"]
                and list(r.extraction.codes) == [c.upper() for c in item["codes"]])
    assert len(HOLDOUT) >= 150
    assert right / len(HOLDOUT) >= 0.90, f"{right}/{len(HOLDOUT)}"
