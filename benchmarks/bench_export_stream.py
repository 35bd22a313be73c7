"""ExportFaqs throughput and server memory over a whole export, against reading the same codes
with BatchGetCodes (100 at a time) from the same server in the same run.

    python benchmarks/bench_export_stream.py [--codes N]

The server runs in its own process (`cptrules serve`), so its resident memory is read from
/proc while the export runs: it should stay flat as the export grows, since sets are built
only as the client reads them.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cptrules.v1 import code_rules_service_pb2 as pb, code_rules_service_pb2_grpc as rpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_serving(channel: grpc.Channel, seconds: float = 120) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become SERVING")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=0, help="export only the first N codes (0: all)")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cptrules", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}",
                                   options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
            wait_serving(channel)
            stub = rpc.CodeRulesServiceStub(channel)
            codes = []
            token = ""
            while True:  # every code, from the listing
                page = stub.ListCodes(pb.ListCodesRequest(page_size=500, page_token=token))
                codes += [c.code for c in page.codes]
                token = page.next_page_token
                if not token:
                    break
            if args.codes:
                codes = codes[:args.codes]
            request = pb.ExportFaqsRequest(codes=codes)
            rss = [rss_mib(server.pid)]
            start = time.perf_counter()
            count = entries = 0
            for faq_set in stub.ExportFaqs(request):
                count += 1
                entries += len(faq_set.entries)
                if count % 2000 == 0:
                    rss.append(rss_mib(server.pid))
            stream_s = time.perf_counter() - start
            rss.append(rss_mib(server.pid))
            start = time.perf_counter()
            for i in range(0, len(codes), 100):
                stub.BatchGetCodes(pb.BatchGetCodesRequest(codes=codes[i:i + 100]))
            batch_s = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"ExportFaqs: {count} FAQ sets ({entries} answers) in {stream_s:.1f} s = {count / stream_s:,.0f} sets/s")
    print(f"BatchGetCodes (100 per call), same codes: {len(codes) / batch_s:,.0f} codes/s "
          f"-> an exported set costs {(stream_s / count) / (batch_s / len(codes)):.2f}x a batched code read")
    print("server RSS during the export (MiB, every 2,000 sets): " + ", ".join(f"{r:.0f}" for r in rss)
          + f"; growth start->end {rss[-1] - rss[0]:+.0f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
