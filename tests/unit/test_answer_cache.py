"""Questions repeat: one reading per normalised question, per snapshot, date and day."""

from __future__ import annotations

import datetime as dt

from cptrules import engine as engine_module
from cptrules.engine import Engine


def test_questions_that_normalise_alike_are_read_once_and_echoed_as_sent(engine, monkeypatch):
    fresh = Engine(engine.snapshot.__class__(engine.snapshot.ruleset, engine.snapshot.data,
                                             engine.snapshot.rules_dir, engine.snapshot.data_dirs,
                                             engine.snapshot.codes), engine.clock)
    readings = []
    real = engine_module.interpret
    monkeypatch.setattr(engine_module, "interpret", lambda *a, **k: readings.append(a[0]) or real(*a, **k))
    plain = fresh.answer("is cpt 0556t permenant?")
    wide = fresh.answer("is cpt ０５５６t permenant?\u200b")  # full-width digits, a format character
    assert readings == ["is cpt 0556t permenant?"]
    assert wide.question == "is cpt ０５５６t permenant?\u200b" and plain.question == "is cpt 0556t permenant?"
    assert (wide.text, wide.intent, wide.code, wide.provenance) == (plain.text, plain.intent, plain.code,
                                                                    plain.provenance)
    fresh.answer("is cpt 0556t permenant?", dt.date(2025, 11, 3))  # another date: read again
    assert len(readings) == 2
