"""A soak of `cptrules serve`: random codes at random dates of service over gRPC for a few
minutes, reporting throughput, p50/p99 latency and the server's resident memory per interval,
so that memory that keeps growing (a cache without a bound, a leak) or latency that drifts shows.

    python benchmarks/bench_soak.py [--minutes 3] [--clients 4] [--processes 1] [--interval 30]

The server is a real `cptrules serve --port 0` child process (warm: its own cache directory is
filled by a first start); the load mixes GetCode with and without a date (dates spread over
2015-2027), BatchGetCodes of 20 codes, and AnswerQuestion with the code and date in the text.
Figures are wall-clock on whatever else the machine runs: compare the first and last intervals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from google.type import date_pb2

from _proc import memory_mib  # benchmarks/_proc.py, beside this script
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

FIRST, LAST = dt.date(2015, 1, 1), dt.date(2027, 12, 31)


def start_server(cache: Path, processes: int) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "CPTRULES_CACHE_DIR": str(cache), "XDG_DATA_HOME": str(cache / "data")}
    env.pop("CPTRULES_DATA_DIR", None)
    command = [sys.executable, "-m", "cptrules", "serve", "--port", "0", "--workers", "16"]
    if processes > 1:
        command += ["--processes", str(processes)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"the server exited ({child.wait()}) before serving")
    return child, int(line.split()[3].rsplit(":", 1)[1])


def random_date(rng: random.Random) -> date_pb2.Date:
    day = FIRST + dt.timedelta(days=rng.randrange((LAST - FIRST).days + 1))
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


class Load:
    """Client threads, each on its own channel, recording latencies per interval."""

    def __init__(self, port: int, codes: list[str], clients: int, seed: int) -> None:
        self.port, self.codes, self.clients, self.seed = port, codes, clients, seed
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.stop = threading.Event()

    def take(self) -> tuple[list[float], dict[str, int]]:
        with self.lock:
            taken, self.latencies = self.latencies, []
            errors, self.errors = self.errors, {}
        return taken, errors

    def run(self, slot: int) -> None:
        rng = random.Random(self.seed + slot)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            while not self.stop.is_set():
                kind = rng.random()
                code = rng.choice(self.codes)
                start = time.perf_counter()
                try:
                    if kind < 0.45:
                        stub.GetCode(svc.GetCodeRequest(code=code, date_of_service=random_date(rng)), timeout=30)
                    elif kind < 0.7:
                        stub.GetCode(svc.GetCodeRequest(code=code), timeout=30)
                    elif kind < 0.8:
                        stub.BatchGetCodes(svc.BatchGetCodesRequest(codes=rng.sample(self.codes, 20),
                                                                    date_of_service=random_date(rng)), timeout=30)
                    else:
                        day = random_date(rng)
                        stub.AnswerQuestion(svc.AnswerQuestionRequest(
                            question=f"what are the rvus for {code} on {day.month}/{day.day}/{day.year}"), timeout=30)
                except grpc.RpcError as error:
                    with self.lock:
                        self.errors[error.code().name] = self.errors.get(error.code().name, 0) + 1
                    continue
                elapsed = time.perf_counter() - start
                with self.lock:
                    self.latencies.append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per reported interval")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from cptrules.engine import Engine

    codes = list(Engine.load(check_data=False).snapshot.codes)
    with tempfile.TemporaryDirectory() as tmp:
        child, port = start_server(Path(tmp), args.processes)  # cold: fills the cache
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        child, port = start_server(Path(tmp), args.processes)
        try:
            load = Load(port, codes, args.clients, args.seed)
            threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(args.clients)]
            start_rss, start_pss = memory_mib(child.pid)
            print(f"server at start: RSS {start_rss:.0f} MiB, PSS {start_pss:.0f} MiB; {len(codes)} codes, {args.clients} clients, "
                  f"{args.processes} process(es), dates {FIRST}..{LAST}")
            for thread in threads:
                thread.start()
            end = time.monotonic() + args.minutes * 60
            rows = []
            while time.monotonic() < end:
                time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
                latencies, errors = load.take()
                rss, pss = memory_mib(child.pid)
                ordered = sorted(latencies) or [0.0]
                rows.append((len(latencies) / args.interval, ordered[len(ordered) // 2] * 1e3,
                             ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, rss, pss))
                print(f"  {len(rows) * args.interval:5.0f} s: {rows[-1][0]:7.0f} calls/s, p50 {rows[-1][1]:6.2f} ms, "
                      f"p99 {rows[-1][2]:7.2f} ms, RSS {rss:5.0f} MiB, PSS {pss:5.0f} MiB" + (f", errors {errors}" if errors else ""),
                      flush=True)
            load.stop.set()
            for thread in threads:
                thread.join(60)
            if rows:
                first, last = rows[0], rows[-1]
                print(f"first → last interval: throughput ×{last[0] / max(first[0], 1e-9):.2f}, "
                      f"p99 ×{last[2] / max(first[2], 1e-9):.2f}, RSS {first[3]:.0f} → {last[3]:.0f} MiB "
                      f"({last[3] - start_rss:+.0f} MiB since start), PSS {first[4]:.0f} → {last[4]:.0f} MiB; "
                      f"median throughput {statistics.median(r[0] for r in rows):.0f} calls/s")
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(60)


if __name__ == "__main__":
    main()
