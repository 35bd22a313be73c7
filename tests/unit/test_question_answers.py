"""Our question set read through the whole question path (Engine.answer), where the matcher alone
cannot decide: a topic, a search for a code, the notes and per-value answers of the text, and the
date an answer is for (tests/eval/questions.yaml: items of intent find_code or topic, or with `says`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

ITEMS = [item for item in YAML(typ="safe").load(
    (Path(__file__).resolve().parents[1] / "eval" / "questions.yaml").read_text())
    if item["intent"] in {"find_code", "topic"} or "says" in item]


def test_the_set_has_whole_path_items():
    assert {"find_code", "topic"} <= {item["intent"] for item in ITEMS}


@pytest.mark.parametrize("item", ITEMS, ids=[item["q"] for item in ITEMS])
def test_whole_path_answer(engine, item):
    answer = engine.answer(item["q"])
    assert answer.outcome == "ANSWERED", answer.text
    assert answer.intent == item["intent"], answer.text
    want = list(item["codes"])
    codes = list(answer.codes)
    assert (codes[:len(want)] if item["intent"] == "find_code" else codes) == want, answer.text
    if "topic" in item:
        assert answer.topic == item["topic"]
    if "dos" in item:
        assert answer.date_of_service == str(item["dos"])
    for said in item.get("says", []):
        assert said in answer.text, f"{said!r} not in:\n{answer.text}"
    for said in item.get("not_says", []):
        assert said.lower() not in answer.text.lower(), f"{said!r} in:\n{answer.text}"



def test_answers_built_from_remembered_parts_are_the_same_bytes(engine):
    """A question not asked before reuses the rendered answer parts and converted firings of
    earlier questions about the same report: every question of the set serialises to the same
    bytes as when built from nothing."""
    from cptrules.server import convert

    snap = engine.snapshot
    questions = [item["q"] for item in YAML(typ="safe").load(
        (Path(__file__).resolve().parents[1] / "eval" / "questions.yaml").read_text())]

    def serialised(question):
        snap.answers.clear()
        return convert.answer(engine.answer(question)).SerializeToString(deterministic=True)

    for question in questions:
        serialised(question)  # parts and firings remembered
        reused = serialised(question)
        snap.reports.clear()  # the rendered parts live on the reports
        snap.derived.clear()
        convert._FIRED.clear()
        assert reused == serialised(question), question
