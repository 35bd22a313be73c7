"""Speed of GetCode and AnswerQuestion, in process and over gRPC, as ratios to a baseline
measured in the same run: an empty gRPC handler on the same kind of server.

    python benchmarks/bench_service.py [--seconds 2]

Figures vary with the machine; the ratios are what to compare between runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent import futures

import grpc

from cptrules.engine import Engine
from cptrules.server.app import create_server
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

QUESTIONS = ["Is 0556T a permanent CPT code?", "wRVU for 99213-25 for 2026 DOS?",
             "does medicare cover G0439", "what replaced 0042T", "what's the weather"]


def timed(call, seconds: float) -> list[float]:
    """Per-call latencies in microseconds, for at least `seconds` (after a short warm-up)."""
    for _ in range(50):
        call()
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def throughput(call, seconds: float, clients: int = 4) -> float:
    """Calls per second with several client threads sharing one channel."""
    import threading

    counts = [0] * clients
    end = time.perf_counter() + seconds

    def run(slot: int) -> None:
        while time.perf_counter() < end:
            call()
            counts[slot] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def empty_server() -> tuple[grpc.Server, int]:
    """A server whose one method returns an empty message at once."""
    handler = grpc.method_handlers_generic_handler("bench.Empty", {
        "Call": grpc.unary_unary_rpc_method_handler(lambda request, context: b"",
                                                    request_deserializer=None, response_serializer=None)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    engine = Engine.load(check_data=False)
    rows: list[tuple[str, float, float]] = []

    rows.append(("in-process GetCode 0556T", *summary(timed(lambda: engine.get_code("0556T"), args.seconds))))
    i = iter(range(10**9))
    rows.append(("in-process AnswerQuestion", *summary(timed(
        lambda: engine.answer(QUESTIONS[next(i) % len(QUESTIONS)]), args.seconds))))

    empty, empty_port = empty_server()
    server, port = create_server(engine, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{empty_port}") as ch_empty, \
                grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call_empty = ch_empty.unary_unary("/bench.Empty/Call")
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(ch)
            rows.append(("gRPC empty handler (baseline)", *summary(timed(lambda: call_empty(b""), args.seconds))))
            rows.append(("gRPC GetCode 0556T", *summary(timed(
                lambda: stub.GetCode(svc.GetCodeRequest(code="0556T")), args.seconds))))
            j = iter(range(10**9))
            rows.append(("gRPC AnswerQuestion", *summary(timed(
                lambda: stub.AnswerQuestion(svc.AnswerQuestionRequest(
                    question=QUESTIONS[next(j) % len(QUESTIONS)])), args.seconds))))
            rows.append(("gRPC GetFaq 0556T", *summary(timed(
                lambda: stub.GetFaq(svc.GetFaqRequest(code="0556T")), args.seconds))))
            k = iter(range(10**9))
            rates = {
                "empty handler": throughput(lambda: call_empty(b""), args.seconds),
                "GetCode": throughput(lambda: stub.GetCode(svc.GetCodeRequest(code="0556T")), args.seconds),
                "AnswerQuestion": throughput(lambda: stub.AnswerQuestion(svc.AnswerQuestionRequest(
                    question=QUESTIONS[next(k) % len(QUESTIONS)])), args.seconds),
            }
    finally:
        server.stop(None)
        empty.stop(None)

    baseline = next(median for name, median, _ in rows if "baseline" in name)
    getcode = next(median for name, median, _ in rows if name == "gRPC GetCode 0556T")
    print(f"{'measurement':34} {'median µs':>10} {'p99 µs':>10} {'÷ empty RPC':>12} {'÷ GetCode':>10}")
    for name, median, p99 in rows:
        print(f"{name:34} {median:10.1f} {p99:10.1f} {median / baseline:12.2f} {median / getcode:10.2f}")
    print(f"throughput (sequential, one client): empty {1e6 / baseline:,.0f}/s, "
          f"GetCode {1e6 / getcode:,.0f}/s")
    print("throughput (4 client threads): " + ", ".join(
        f"{name} {rate:,.0f}/s ({rate / rates['empty handler']:.2f}× empty, {rate / rates['GetCode']:.2f}× GetCode)"
        for name, rate in rates.items()))


if __name__ == "__main__":
    main()
