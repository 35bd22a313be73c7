"""The service against its floor: a sync grpcio server that returns the very same response
bytes from a dict with no logic. Throughput ratios (service ÷ floor, medians of interleaved
repetitions, so both see the same machine state), in-process latencies, and memory over a
soak of random dates.

    python benchmarks/bench_floor.py [--seconds 2] [--repeats 5] [--clients 4]

Targets: GetCode hot and mixed (2,000 codes, undated and dated over several years) ≥ 0.9×;
AnswerQuestion repeated and 200 varied ≥ 0.8×, in-process p50 repeated ≤ 50 µs;
BatchGetCodes(100) ≥ 100,000 codes/s; ListCodes(1000) within 2× of its floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from ruamel.yaml import YAML

from cptrules.engine import Engine
from cptrules.server.app import ServerOptions, create_server
from cptrules.server.servicer import CodeRulesServicer
from cptrules.v1 import code_rules_service_pb2 as svc

SERVICE = "/cptrules.v1.CodeRulesService/"
QUESTIONS = Path(__file__).resolve().parents[1] / "tests" / "eval" / "questions.yaml"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dated(request, day: dt.date):
    request.date_of_service.year, request.date_of_service.month, request.date_of_service.day = \
        day.year, day.month, day.day
    return request


def workloads(engine: Engine, rnd: random.Random) -> dict[str, list[tuple[str, bytes]]]:
    """Each workload: (method, request bytes) pairs, cycled through by the clients."""
    codes = rnd.sample(list(engine.snapshot.codes), 2000)
    start = dt.date(2019, 1, 1)
    questions = [q["q"] for q in YAML(typ="safe").load(QUESTIONS.read_text())]
    varied = rnd.sample(questions, min(200, len(questions)))
    batches = [svc.BatchGetCodesRequest(codes=rnd.sample(codes, 100)) for _ in range(50)]
    # First pages of 1000 (page tokens belong to one server process): all codes and by category.
    pages = [svc.ListCodesRequest(page_size=1000, category=c) for c in (0, 1, 3, 5)]
    ser = lambda m: m.SerializeToString()
    return {
        "GetCode hot": [("GetCode", ser(svc.GetCodeRequest(code="0556T")))],
        "GetCode 2000 codes": [("GetCode", ser(svc.GetCodeRequest(code=c))) for c in codes],
        "GetCode 2000 codes, 12k dates 2019-2027": [
            ("GetCode", ser(dated(svc.GetCodeRequest(code=rnd.choice(codes)),
                                  start + dt.timedelta(days=rnd.randrange(9 * 365))))) for _ in range(12_000)],
        "AnswerQuestion repeated": [("AnswerQuestion", ser(svc.AnswerQuestionRequest(
            question="is cpt 0556t permenant?")))],
        "AnswerQuestion 200 varied": [("AnswerQuestion", ser(svc.AnswerQuestionRequest(question=q)))
                                      for q in varied],
        "BatchGetCodes(100)": [("BatchGetCodes", ser(b)) for b in batches],
        "ListCodes(1000)": [("ListCodes", ser(p)) for p in pages],
    }


def floor_server(table: dict[tuple[str, bytes], bytes], workers: int) -> tuple[grpc.Server, int]:
    """A server that answers every method with the bytes the table holds for the request."""
    def method(name: str):
        return grpc.unary_unary_rpc_method_handler(lambda raw, context: table[(name, raw)],
                                                   request_deserializer=None, response_serializer=None)

    names = ("GetCode", "AnswerQuestion", "BatchGetCodes", "ListCodes")
    handler = grpc.method_handlers_generic_handler("cptrules.v1.CodeRulesService",
                                                   {name: method(name) for name in names})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_send_message_length", 16 << 20)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def throughput(channel: grpc.Channel, load: list[tuple[str, bytes]], seconds: float, clients: int) -> float:
    """Calls per second with `clients` threads sharing one channel, each walking the load."""
    calls = {name: channel.unary_unary(SERVICE + name) for name in {m for m, _ in load}}
    counts = [0] * clients
    end = time.perf_counter() + seconds

    def run(slot: int) -> None:
        i = slot * 7919
        while time.perf_counter() < end:
            name, raw = load[i % len(load)]
            try:
                calls[name](raw, timeout=30)
            except grpc.RpcError as error:
                FAILURES[f"{name} {error.code().name}"] = FAILURES.get(f"{name} {error.code().name}", 0) + 1
            else:
                counts[slot] += 1
            i += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


FAILURES: dict[str, int] = {}


def p50_us(call, n: int = 3000) -> float:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    rnd = random.Random(9)
    print(f"RSS before load {rss_mb():.0f} MB")
    started = time.perf_counter()
    engine = Engine.load(check_data=False)
    print(f"load {time.perf_counter() - started:.1f} s, RSS {rss_mb():.0f} MB")
    servicer = CodeRulesServicer(engine)
    loads = workloads(engine, rnd)
    handlers = servicer.method_handlers()

    # The floor's table: the service's own response bytes for every request of every load.
    started = time.perf_counter()
    table = {(m, raw): handlers[m].unary_unary(raw, None) for load in loads.values() for m, raw in load}
    sizes = {name: statistics.mean(len(table[r]) for r in load) for name, load in loads.items()}
    print(f"{len(table)} distinct requests answered once in {time.perf_counter() - started:.1f} s, "
          f"RSS {rss_mb():.0f} MB")

    # In process, through the bytes handlers (no transport).
    answer = handlers["AnswerQuestion"].unary_unary
    repeated = loads["AnswerQuestion repeated"][0][1]
    print(f"in-process AnswerQuestion repeated p50 {p50_us(lambda i: answer(repeated, None)):.1f} µs "
          f"(engine.answer alone {p50_us(lambda i: engine.answer('is cpt 0556t permenant?')):.1f} µs)")
    fresh = [svc.AnswerQuestionRequest(question=f"is cpt {c} permanent?").SerializeToString()
             for c in rnd.sample(list(engine.snapshot.codes), 600)]
    print(f"in-process AnswerQuestion new question p50 {p50_us(lambda i: answer(fresh[i], None), 600):.1f} µs")
    getcode = handlers["GetCode"].unary_unary
    codes = [svc.GetCodeRequest.FromString(raw).code for _, raw in loads["GetCode 2000 codes"]]
    unseen = [dated(svc.GetCodeRequest(code=rnd.choice(codes)), dt.date(2019, 1, 1) + dt.timedelta(
        days=rnd.randrange(9 * 365))).SerializeToString() for _ in range(3000)]
    print(f"in-process GetCode, a request not seen before (dates mostly of known classes), p50 "
          f"{p50_us(lambda i: getcode(unseen[i], None), len(unseen)):.1f} µs "
          f"(a request seen before: {p50_us(lambda i: getcode(unseen[i % 100], None)):.1f} µs)")

    # Pages of 1000 codes run to about 5 MB, over the default 4 MiB response limit.
    server, port = create_server(engine, "127.0.0.1:0", options=ServerOptions(max_response_bytes=16 << 20))
    server.start()
    floor, floor_port = floor_server(table, workers=20)
    ratios: dict[str, list[float]] = {name: [] for name in loads}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in loads}
    options = [("grpc.max_receive_message_length", 16 << 20)]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as ours, \
                grpc.insecure_channel(f"127.0.0.1:{floor_port}", options=options) as theirs:
            for name, load in loads.items():  # warm both
                throughput(ours, load, 0.3, args.clients)
                throughput(theirs, load, 0.3, args.clients)
            for repeat in range(args.repeats):
                for name, load in loads.items():
                    order = [(ours, "ours"), (theirs, "floor")][::1 if repeat % 2 else -1]
                    got = {label: throughput(chan, load, args.seconds, args.clients) for chan, label in order}
                    rates[name].append((got["ours"], got["floor"]))
                    ratios[name].append(got["ours"] / got["floor"])
    finally:
        server.stop(None)
        floor.stop(None)

    print(f"\n{'workload':42} {'service/s':>10} {'floor/s':>10} {'ratio':>6}  (median of {args.repeats}, "
          f"{args.clients} client threads)")
    for name in loads:
        ours = statistics.median(r[0] for r in rates[name])
        theirs = statistics.median(r[1] for r in rates[name])
        print(f"{name:42} {ours:10,.0f} {theirs:10,.0f} {statistics.median(ratios[name]):6.2f}"
              f"  ({sizes[name]:,.0f} bytes a response)")
    if FAILURES:
        print(f"failed calls (not counted): {FAILURES}")
    batch = statistics.median(r[0] for r in rates["BatchGetCodes(100)"]) * 100
    print(f"BatchGetCodes(100): {batch:,.0f} codes/s")

    # Memory over a soak of random (code, date) pairs, in process.
    codes = list(engine.snapshot.codes)
    marks = []
    for step in range(5):
        for _ in range(8_000):
            day = dt.date(1995, 1, 1) + dt.timedelta(days=rnd.randrange(40 * 365))
            getcode(dated(svc.GetCodeRequest(code=rnd.choice(codes)), day).SerializeToString(), None)
        marks.append(rss_mb())
    print("RSS over a soak of 40,000 random (code, date) GetCodes, every 8,000: "
          + ", ".join(f"{m:.0f}" for m in marks) + " MB")


if __name__ == "__main__":
    main()
