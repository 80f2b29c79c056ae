"""Benchmark: the whole study analysis on 10 readers x 2 arms x 1,000 cases (SYNTHETIC reads), one core.

Run: ``python bench/stats_bench.py [--repeats 5] [--readers 10] [--cases 1000]``. Prints the best and the
median wall time of ``study_analyse`` (the target is < 1 s on one core) and a per-part breakdown.
Thread pools are pinned to one thread before numpy is imported, so the figure is a one-core figure.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from readerstudy.stats.analysis import study_analyse  # noqa: E402
from readerstudy.stats.synthetic import synthetic_reads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--missing", type=float, default=0.02, help="fraction of unscored reads")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    reads = synthetic_reads(
        n_readers=args.readers, n_cases=args.cases, seed=1, missing_fraction=args.missing
    )
    study_analyse(reads)  # warm-up: imports, scipy's lazy loaders
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = study_analyse(reads)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t0 = time.perf_counter()
    payload = json.dumps(result.to_dict(), allow_nan=False)
    t_json = time.perf_counter() - t0
    print(
        f"SYNTHETIC reads: {args.readers} readers x 2 arms x {args.cases} cases "
        f"({len(reads)} reads, {args.missing:.0%} unscored), one core"
    )
    print(f"study_analyse: best {min(times):.3f} s, median {statistics.median(times):.3f} s "
          f"over {args.repeats} runs (target < 1 s)")  # fmt: skip
    # CPU time is the figure to trust on a shared machine: wall time includes waiting for the core
    print(f"study_analyse CPU time: best {min(cpu):.3f} s, median {statistics.median(cpu):.3f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"to_dict + json.dumps: {t_json:.3f} s, {len(payload) / 1e6:.2f} MB")
    print(
        f"contents: {len(result.reader_arms)} reader-arm rows, {len(result.kappa)} kappas, "
        f"{len(result.delong_paired)} DeLong tests, {len(result.mrmc)} MRMC analyses"
    )


if __name__ == "__main__":
    main()
