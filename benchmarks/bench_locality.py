"""GetCode with a locality against GetCode without one, measured in the same run, in process
and over gRPC, interleaved so machine noise hits both alike. Target: at most 1.2x.

    python benchmarks/bench_locality.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import grpc
from google.type import date_pb2

from cptrules.engine import Engine
from cptrules.server.app import create_server
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

CODES = ["99213", "27447", "76145", "71550", "0556T", "G0439", "11042", "22633"]
PLACES = ["10001", "77030", "94103", "60611", "33101"]
DAY = dt.date(2025, 11, 1)


def paired(plain, located, seconds: float) -> tuple[list[float], list[float]]:
    """Alternate the two calls for `seconds`; per-call microseconds of each."""
    for _ in range(50):
        plain(0)
        located(0)
    a, b, i = [], [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for call, out in ((plain, a), (located, b)):
            start = time.perf_counter()
            call(i)
            out.append((time.perf_counter() - start) * 1e6)
        i += 1
    return a, b


def report(label: str, a: list[float], b: list[float]) -> float:
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{label:10} without {ma:8.1f} us   with a ZIP code {mb:8.1f} us   ratio {mb / ma:.2f}x  ({len(a)} pairs)")
    return mb / ma


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    engine = Engine.load(check_data=False)
    ratios = [report("in-process", *paired(
        lambda i: engine.get_code(CODES[i % len(CODES)], DAY),
        lambda i: engine.get_code(CODES[i % len(CODES)], DAY, zip_code=PLACES[i % len(PLACES)]),
        args.seconds))]
    server, port = create_server(engine, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            date = date_pb2.Date(year=DAY.year, month=DAY.month, day=DAY.day)
            ratios.append(report("gRPC", *paired(
                lambda i: stub.GetCode(svc.GetCodeRequest(code=CODES[i % len(CODES)], date_of_service=date)),
                lambda i: stub.GetCode(svc.GetCodeRequest(code=CODES[i % len(CODES)], date_of_service=date,
                                                          zip_code=PLACES[i % len(PLACES)])),
                args.seconds)))
    finally:
        server.stop(None)
    print("target <= 1.2x: " + ("met" if max(ratios) <= 1.2 else "NOT met"))


if __name__ == "__main__":
    main()
