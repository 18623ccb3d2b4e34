"""Run every benchmark: ``make bench`` (or ``.venv/bin/python -m benchmarks``).

Each benchmark prints its figures as ratios against a baseline measured in the same run; the
combined output is also written to ``benchmarks/results/<UTC time>.txt`` (git-ignored) so the
figures can be copied into docs/performance.md with the machine and the command.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("transaction parsing and validation", "bench_txparse.py"),
    ("collector ingest throughput", "bench_ingest.py"),
    ("landing -> mempool_transactions assembly", "bench_assembly.py"),
    ("tx_features calldata decoding", "bench_features.py"),
    ("mempool-dumpster import", "bench_dumpster_import.py"),
    ("warehouse queries: chdb vs DuckDB", "bench_queries.py"),
    ("backfill of a mainnet-scale day", "bench_backfill.py"),
]


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> int:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out_path = results / time.strftime("%Y%m%dT%H%M%SZ.txt", time.gmtime())
    lines = [f"machine: {machine()}", f"command: {' '.join([Path(sys.executable).name, '-m', 'benchmarks'])}", ""]
    print("\n".join(lines), flush=True)
    failed = 0
    for title, script in BENCHMARKS:
        header = f"== {title} ({script}) =="
        print(header, flush=True)
        done = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, cwd=HERE.parent)
        print(done.stdout, end="", flush=True)
        if done.returncode:
            failed += 1
            print(f"FAILED (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
        lines += [header, done.stdout]
    out_path.write_text("\n".join(lines))
    print(f"\nwritten to {out_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
