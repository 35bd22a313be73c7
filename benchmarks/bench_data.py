"""Import time of a full fee-schedule release, and start time and memory of the service with
two full releases loaded, against the same process's baseline (interpreter + imports).

    python benchmarks/bench_data.py PATH/TO/PPRRVU2025_Oct.csv

Only one complete release file is public here (RVU25D); the second release is that file
imported again under another key (RVU25C), which has the same size as a real one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time
from pathlib import Path
start = time.perf_counter()
import cptrules.engine
imported = time.perf_counter()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] != "-":
    engine = cptrules.engine.Engine.load(data_dirs=[Path(sys.argv[1])])
else:
    engine = cptrules.engine.Engine.load()
loaded = time.perf_counter()
print(imported - start, loaded - imported, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    source = Path(sys.argv[1])
    from cptrules.data.pfs import import_pfs_csv, write_release

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        times = []
        for key in ("RVU25D", "RVU25C"):
            start = time.perf_counter()
            write_release(import_pfs_csv(source, release=key), data)
            times.append(time.perf_counter() - start)
        print(f"import of a full release (19,090 rows): {min(times):.2f} s")
        for label, arg in (("embedded data (RVU25D + HCPCS Oct 2025)", "-"),
                           ("embedded + a second full release", str(data))):
            out = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True,
                                 check=True).stdout.split()
            imports, load, base_kb, peak_kb = float(out[0]), float(out[1]), int(out[2]), int(out[3])
            print(f"{label}: start {load:.2f} s after imports ({imports:.2f} s), "
                  f"peak RSS {peak_kb / 1024:.0f} MiB ({(peak_kb - base_kb) / 1024:.0f} MiB over the "
                  f"{base_kb / 1024:.0f} MiB of the interpreter and libraries)")


if __name__ == "__main__":
    main()
