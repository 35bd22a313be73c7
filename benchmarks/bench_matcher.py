"""Speed of the question matcher in process: a question never seen before, a question asked
again, and GetCode's in-process cost as the yardstick, measured in the same run.

    python benchmarks/bench_matcher.py [--rounds 5]

"New" questions are the evaluation sets' questions, each read once per round (the per-word
correction cache is kept warm, as in a running server; "new, cold words" clears it before each
question). "Repeated" asks one question again through Engine.answer, which remembers answers.
"AnswerQuestion new" is the whole path of a question not asked before: Engine.answer (reading,
answer building) and the Answer message serialised, with the answer cache emptied before each
call; on 200 questions drawn from tests/eval/questions.yaml (as bench_floor.py draws them) and on
the whole set. Issue 9 asks p50 <= 300 µs for it.
Figures vary with the machine; the ratios to GetCode are what to compare between runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import time
from pathlib import Path

from ruamel.yaml import YAML

from cptrules.engine import Engine
from cptrules.server import convert

EVAL = Path(__file__).resolve().parents[1] / "tests" / "eval"
SETS = ["questions.yaml", "holdout.yaml", "questions_locality.yaml", "holdout_locality.yaml"]


def questions() -> list[str]:
    found: list[str] = []
    for name in SETS:
        if (EVAL / name).exists():
            found += [item["q"] for item in YAML(typ="safe").load((EVAL / name).read_text())]
    return list(dict.fromkeys(found))


def own_set() -> list[str]:
    return [item["q"] for item in YAML(typ="safe").load((EVAL / "questions.yaml").read_text())]


def latencies(calls) -> list[float]:
    """Microseconds per call, one sample per call."""
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = Engine.load(clock=lambda: dt.date(2026, 11, 27))
    book = engine.ruleset.phrasebook
    texts = questions()
    repeated = "is cpt 0556t permenant?"
    engine.answer(repeated)
    for text in texts[:50]:
        engine.interpret(text)
    gc.collect()
    gc.freeze()  # the loaded data is long-lived; a collection pass over it is not the matcher's cost

    def cold(text):
        def call():
            book.correct._known.clear()
            engine.interpret(text)
        return call

    answers = engine.snapshot.answers
    own = own_set()
    varied = random.Random(7).sample(own, min(200, len(own)))

    def new(text):
        def call():
            answers.clear()  # a question never asked: no remembered answer or reading
            convert.answer(engine.answer(text)).SerializeToString(deterministic=True)
        return call

    for text in own:  # code reports and search index warm, as in a serving process
        new(text)()

    kinds = {
        "GetCode 0556T": lambda: [lambda: engine.get_code("0556T")] * 500,
        "new question (interpret)": lambda: [lambda t=t: engine.interpret(t) for t in texts],
        "new question, cold words": lambda: [cold(t) for t in texts],
        "repeated question (answer)": lambda: [lambda: engine.answer(repeated)] * 500,
        "AnswerQuestion new, 200 varied": lambda: [new(t) for t in varied],
        "AnswerQuestion new, own set": lambda: [new(t) for t in own],
    }
    rounds: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits every kind alike
        for kind, calls in kinds.items():
            samples = latencies(calls())
            rounds[kind].append((statistics.median(samples), percentile(samples, 0.99)))
    base = statistics.median(p50 for p50, _ in rounds["GetCode 0556T"])
    print(f"{len(texts)} distinct questions, {args.rounds} interleaved rounds; medians of the rounds")
    print(f"{'':32} {'p50 µs':>9} {'p99 µs':>9} {'p50 / GetCode':>14}")
    for kind, figures in rounds.items():
        p50 = statistics.median(f[0] for f in figures)
        p99 = statistics.median(f[1] for f in figures)
        print(f"{kind:32} {p50:9.1f} {p99:9.1f} {p50 / base:14.2f}")


if __name__ == "__main__":
    main()
