"""How long a health check takes while the service is overloaded, and what the load gets.

    python benchmarks/bench_overload.py [--clients 50] [--questions 16] [--rounds 3]

Two loads, each from separate connections as separate clients would open them:
  - `--clients` concurrent ListCodes(page_size=1000), repeated for `--rounds`;
  - `--questions` concurrent AnswerQuestion with about 1 MiB of U+FDFA each, then the same
    number just over the question limit but within the request size.
For each, the health check latency (median and worst of several checks made during the load)
and the status codes the load received. Also the first category-filtered ListCodes after a start.
Figures vary with the machine; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cptrules.engine import Engine
from cptrules.server.app import ServerOptions, build_server
from cptrules.v1 import code_pb2, code_rules_service_pb2 as svc, code_rules_service_pb2_grpc


def channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


def under_load(port: int, make_calls, checks: int = 10) -> tuple[list[float], collections.Counter]:
    """Health-check latencies (seconds) taken while `make_calls` runs, and the load's statuses."""
    statuses: collections.Counter = collections.Counter()
    done = threading.Event()

    def load() -> None:
        for call in make_calls():
            try:
                call.result()
                statuses["OK"] += 1
            except grpc.RpcError as error:
                statuses[error.code().name] += 1
        done.set()

    latencies = []
    with channel(port) as health_channel:
        health = health_pb2_grpc.HealthStub(health_channel)
        health.Check(health_pb2.HealthCheckRequest(), timeout=60)
        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(0.05)
        while len(latencies) < checks and not done.is_set():
            start = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=120)
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
        worker.join()
    return latencies, statuses


def report(name: str, latencies: list[float], statuses: collections.Counter, seconds: float) -> None:
    if latencies:
        print(f"{name}: health check median {statistics.median(latencies) * 1000:.0f} ms, "
              f"worst {max(latencies) * 1000:.0f} ms over {len(latencies)} checks; "
              f"load took {seconds:.1f} s: {dict(statuses)}")
    else:
        print(f"{name}: the load finished before a health check could be made: {dict(statuses)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=ServerOptions().workers)
    args = parser.parse_args()

    start = time.perf_counter()
    engine = Engine.load()
    print(f"engine load (with the data check and the category index): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    engine.list_codes(1000, "", "CATEGORY_III")
    print(f"first ListCodes(category=CATEGORY_III, 1000) after start, in process: "
          f"{(time.perf_counter() - start) * 1000:.0f} ms")

    built = build_server(engine, "127.0.0.1:0", ServerOptions(workers=args.workers))
    built.grpc_server.start()
    clients = [channel(built.port) for _ in range(max(1, args.clients // 10))]
    stubs = [code_rules_service_pb2_grpc.CodeRulesServiceStub(c) for c in clients]
    try:
        for stub in stubs:
            stub.GetRuleset(svc.GetRulesetRequest(), timeout=60)

        def pages():
            calls = []
            for _ in range(args.rounds):
                batch = [stubs[i % len(stubs)].ListCodes.future(
                    svc.ListCodesRequest(page_size=1000), timeout=300) for i in range(args.clients)]
                for call in batch:
                    try:
                        call.result()
                    except grpc.RpcError:
                        pass
                calls += batch
            return calls

        began = time.perf_counter()
        latencies, statuses = under_load(built.port, pages)
        report(f"{args.clients} concurrent ListCodes(1000) x {args.rounds}", latencies, statuses,
               time.perf_counter() - began)

        def questions():
            big, small = "\ufdfa" * (340 * 1024), "\ufdfa" * 5000
            return [stubs[i % len(stubs)].AnswerQuestion.future(
                svc.AnswerQuestionRequest(question=big if i % 2 else small), timeout=300)
                for i in range(args.questions * 2)]

        began = time.perf_counter()
        latencies, statuses = under_load(built.port, questions)
        report(f"{args.questions} ~1 MiB questions + {args.questions} just over the limit",
               latencies, statuses, time.perf_counter() - began)

        stub = stubs[0]
        with futures.ThreadPoolExecutor(8) as pool:
            began = time.perf_counter()
            pages_by_category = list(pool.map(lambda _: stub.ListCodes(svc.ListCodesRequest(
                page_size=1000, category=code_pb2.CODE_CATEGORY_CATEGORY_III), timeout=300), range(8)))
            print(f"8 concurrent ListCodes(category=CATEGORY_III, 1000): {time.perf_counter() - began:.2f} s "
                  f"({len(pages_by_category[0].codes)} codes each)")
    finally:
        for c in clients:
            c.close()
        built.grpc_server.stop(None)


if __name__ == "__main__":
    main()
