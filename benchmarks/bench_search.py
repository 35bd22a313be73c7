"""SearchCodes and find-code AnswerQuestion latency (median, p99) against GetCode, measured in
the same run, interleaved so machine noise hits all three alike; in process and over gRPC.
Also the one-off cost of building the search index (on a snapshot's first search).

In process, questions go to the engine's uncached path (every call does the work); over gRPC the
service's per-snapshot answer cache serves repeated questions, as it does for users.

    python benchmarks/bench_search.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import grpc

from cptrules.engine import Engine
from cptrules.server.app import create_server
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

CODES = ["99213", "27447", "76145", "71550", "0556T", "G0439", "11042", "22633"]
QUERIES = ["cpap", "flu shot", "total knee replacement", "annual wellness visit", "ekg", "knee replacemnt",
           "critical care", "colonoscopy", "wheelchair", "chest x-ray two views"]
QUESTIONS = ["What's the CPT code for a total knee replacement?",
             "HCPCS code for the subsequent annual wellness visit", "CPAP machine code",
             "what code do I use for a flu shot", "which code is for critical care",
             "cpt code for a screening mammogram", "hcpcs code for a walker"]


def interleaved(calls: dict[str, Callable[[int], object]], seconds: float) -> dict[str, list[float]]:
    """Each call in turn for `seconds`; per-call microseconds of each."""
    for i in range(30):
        for call in calls.values():
            call(i)
    times: dict[str, list[float]] = {name: [] for name in calls}
    end, i = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        for name, call in calls.items():
            start = time.perf_counter()
            call(i)
            times[name].append((time.perf_counter() - start) * 1e6)
        i += 1
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    base = statistics.median(times["GetCode"])
    for name, values in times.items():
        values = sorted(values)
        median, p99 = statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{label:10} {name:16} median {median:9.1f} us   p99 {p99:9.1f} us   "
              f"median/GetCode {median / base:6.2f}x  ({len(values)} calls)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    start = time.perf_counter()
    engine = Engine.load(check_data=False)
    loaded = time.perf_counter()
    engine.search_codes("cpap")
    built = time.perf_counter()
    print(f"engine load {loaded - start:.2f} s; search index build on first search {built - loaded:.2f} s "
          f"({len(engine.snapshot.search_index())} texts)")
    snap = engine.snapshot
    report("in-process", interleaved({
        "GetCode": lambda i: engine.get_code(CODES[i % len(CODES)]),
        "SearchCodes": lambda i: engine.search_codes(QUERIES[i % len(QUERIES)]),
        "find-code answer": lambda i: engine._answer(QUESTIONS[i % len(QUESTIONS)], None, snap),
    }, args.seconds))
    server, port = create_server(engine, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            report("gRPC", interleaved({
                "GetCode": lambda i: stub.GetCode(svc.GetCodeRequest(code=CODES[i % len(CODES)])),
                "SearchCodes": lambda i: stub.SearchCodes(svc.SearchCodesRequest(query=QUERIES[i % len(QUERIES)])),
                "find-code answer": lambda i: stub.AnswerQuestion(
                    svc.AnswerQuestionRequest(question=QUESTIONS[i % len(QUESTIONS)])),
            }, args.seconds))
    finally:
        server.stop(None)


if __name__ == "__main__":
    main()
