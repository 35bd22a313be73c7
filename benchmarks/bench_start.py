"""Start-up of `cptrules serve`: cold (nothing persisted: compile, load, full check, persist) and
warm (the persisted snapshot mapped in), to the first health check answered SERVING, with the
server's CPU time and resident memory then; for the embedded default and for two full releases.

    python benchmarks/bench_start.py [--repeat 3] [--processes N] [PATH/TO/PPRRVU2025_Oct.csv]

Each start runs in a fresh process with its own cache directory (`CPTRULES_CACHE_DIR`); a warm
start reuses the cache the cold start of the same run wrote. The second release is the public
RVU25D file imported again under another key (RVU25C), as in bench_data.py; without the CSV
(default: the shared CMS folder beside the checkout) only the embedded default is measured.
Times are wall-clock on a shared machine: read them as medians and ratios, not thresholds.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from _proc import memory_mib  # benchmarks/_proc.py, beside this script


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_once(cache: Path, data_dir: Path | None, processes: int) -> tuple[float, float, float, float]:
    """Seconds from exec to SERVING, the server's CPU seconds by then, its RSS and PSS in MiB."""
    env = {**os.environ, "CPTRULES_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "cptrules", "serve", "--port", "0"]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    else:
        env.pop("CPTRULES_DATA_DIR", None)
        env["XDG_DATA_HOME"] = str(cache / "no-imports")  # the default directory, not yet created
    if processes > 1:
        command += ["--processes", str(processes)]
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited ({child.wait()}) before serving")
        port = int(line.split()[3].rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                except grpc.RpcError:
                    status = None
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
                time.sleep(0.005)
        serving = time.perf_counter() - began
        return (serving, _cpu_seconds(child.pid), *memory_mib(child.pid))
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)


def measure(label: str, data_dir: Path | None, repeat: int, processes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold = start_once(cache, data_dir, processes)
        warm = [start_once(cache, data_dir, processes) for _ in range(repeat)]
    median = statistics.median(w[0] for w in warm)
    print(f"{label}:")
    print(f"  cold start {cold[0]:6.2f} s to SERVING, {cold[1]:5.2f} s CPU, RSS {cold[2]:5.0f} MiB, "
          f"PSS {cold[3]:5.0f} MiB")
    print(f"  warm start {median:6.2f} s to SERVING (median of {repeat}: "
          + ", ".join(f"{w[0]:.2f}" for w in warm) + f"), {statistics.median(w[1] for w in warm):5.2f} s CPU, "
          f"RSS {statistics.median(w[2] for w in warm):5.0f} MiB, PSS {statistics.median(w[3] for w in warm):5.0f} MiB")
    print(f"  warm / cold: {median / cold[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, help="PPRRVU2025_Oct.csv (default: the shared CMS folder)")
    parser.add_argument("--repeat", type=int, default=3, help="warm starts per configuration")
    parser.add_argument("--processes", type=int, default=1, help="serve with --processes N")
    args = parser.parse_args()
    measure("embedded default (RVU25D + HCPCS Oct 2025)", None, args.repeat, args.processes)
    source = args.csv
    if source is None:
        from cptrules.reference import shared_dir

        shared = shared_dir()
        source = shared / "data" / "cms" / "PPRRVU2025_Oct.csv" if shared else None
    if source is None or not source.is_file():
        print("two full releases: skipped (no PPRRVU2025_Oct.csv)")
        return
    from cptrules.data.pfs import import_pfs_csv, write_release

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_release(import_pfs_csv(source, release="RVU25C"), data)
        measure("embedded + a second full release (RVU25C)", data, args.repeat, args.processes)


if __name__ == "__main__":
    main()
