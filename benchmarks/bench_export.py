"""Export throughput and memory: FAQ sets per second written to disk as the HTML site, for a
growing number of codes up to all loaded codes (~20k), against reading the same codes with
BatchGetCodes in process (engine.batch_get, 100 codes per call) in the same run. Peak memory
should grow with the export no faster than with BatchGetCodes (whose growth is the engine's
own report cache): the export holds one small index entry per code, never the answers.

    python benchmarks/bench_export.py [--sizes 1000,5000,0]     # 0 = every loaded code

Each measurement runs in a fresh process (peak RSS is per process) on the embedded data, with
the date of service fixed so every run answers the same questions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

CHILD = """
import datetime as dt, resource, sys, time
from pathlib import Path
from cptrules.engine import Engine
mode, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
engine = Engine.load(check_data=False, clock=lambda: dt.date(2026, 11, 27))
codes = list(engine.snapshot.codes)[: size or None]
day = dt.date(2025, 11, 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "export":
    from cptrules.export.site import ExportOptions, export_site
    export_site(engine, ExportOptions(Path(out), "html", codes, dos=day))
elif mode == "faqsets":
    from cptrules.export.faqsets import iter_faq_sets
    for _ in iter_faq_sets(engine, codes, dos=day):
        pass
else:
    for i in range(0, len(codes), 100):
        engine.batch_get(codes[i:i + 100], day)
took = time.perf_counter() - start
print(len(codes), took, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(mode: str, size: int) -> tuple[int, float, int, int]:
    with tempfile.TemporaryDirectory() as out:
        fields = subprocess.run([sys.executable, "-c", CHILD, mode, str(size), out], capture_output=True,
                                text=True, check=True).stdout.split()
    return int(fields[0]), float(fields[1]), int(fields[2]), int(fields[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,0", help="numbers of codes; 0 = all loaded codes")
    args = parser.parse_args()
    print(f"{'codes':>6}  {'mode':<28} {'sets/s':>8} {'time s':>7} {'peak MiB':>9} {'growth MiB':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        results = {}
        for mode, label in (("batch", "BatchGetCodes in process"), ("faqsets", "FAQ sets, not written"),
                            ("export", "FAQ sets to disk (HTML site)")):
            count, took, base_kb, peak_kb = run(mode, size)
            results[mode] = took
            print(f"{count:>6}  {label:<28} {count / took:>8.0f} {took:>7.1f} {peak_kb / 1024:>9.0f} "
                  f"{(peak_kb - base_kb) / 1024:>11.0f}")
        print(f"{'':>6}  export time / BatchGetCodes time: {results['export'] / results['batch']:.1f}x; "
              f"FAQ sets / BatchGetCodes: {results['faqsets'] / results['batch']:.1f}x")


if __name__ == "__main__":
    main()
