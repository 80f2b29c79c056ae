"""Benchmark: the analysis page's work on 10 readers x 2 arms x 1,000 cases (SYNTHETIC reads).

Run: ``python bench/analysis_exports_bench.py [--readers 10] [--cases 1000] [--repeats 3]``.
Times, from a snapshot payload: ``analysis_results_build`` (statistics + layout), every export
writer, and every figure as SVG and PNG (what the page and the downloads do on a cold cache).
Prints wall and CPU seconds (CPU is the figure to trust on a shared machine) and output sizes.
No Django: the payload is built in memory the way ``snapshot_create`` writes it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from readerstudy.analysis.exports import EXPORT_BUILDERS  # noqa: E402
from readerstudy.analysis.figures import FIGURES, figure_render  # noqa: E402
from readerstudy.analysis.frames import payload_sha256, reads_frame  # noqa: E402
from readerstudy.analysis.results import analysis_results_build  # noqa: E402


def synthetic_payload(*, n_readers: int, n_cases: int, seed: int) -> dict:
    """SYNTHETIC reads in the snapshot payload layout (scores track a random reference PI-RADS)."""
    rng = np.random.default_rng(seed)
    cases: list[dict[str, Any]] = []
    for i in range(n_cases):
        ref = int(rng.integers(1, 6))
        cases.append(
            {
                "case_code": f"SYN{i:05d}",
                "case_id": i + 1,
                "synthetic": True,
                "reference_pirads": ref,
                "cspca": bool(ref >= 4 and rng.random() < 0.8),
                "isup_grade": int(rng.integers(0, 6)),
                "gleason": "",
                "lesion_side": str(rng.choice(["left", "right", "bilateral", "none"])),
            }
        )
    reads = []
    for r in range(n_readers):
        level = "junior" if r % 2 == 0 else "senior"
        for s, arm in enumerate(("original", "registered")):
            boost = 0.0 if arm == "original" else 0.4
            for position, c in enumerate(cases, start=1):
                latent = (c["reference_pirads"] - 3) * (1 + boost) + rng.normal(0, 1.2)
                pirads = int(np.clip(np.round(3 + latent / 1.5), 1, 5))
                likert = int(np.clip(np.round(4 + 2 * boost + rng.normal(0, 1.2)), 1, 7))
                reads.append(
                    {
                        **c,
                        "reader": f"R{r + 1}",
                        "reader_level": level,
                        "years_experience": 5,
                        "arm": arm,
                        "session": s + 1,
                        "position": position,
                        "reading_code": f"C{r:02d}{s}{position:05d}",
                        "pirads": pirads,
                        "zone": "pz" if pirads >= 3 else "none",
                        "side": "left" if pirads >= 3 else "none",
                        "likert": likert,
                        "comment": "",
                        "active_seconds": float(rng.uniform(20, 140)),
                        "started_at": "2026-01-01T10:00:00+00:00",
                        "submitted_at": "2026-01-01T10:01:00+00:00",
                    }
                )
    study = {
        "id": 1,
        "name": "Bench (SYNTHETIC)",
        "status": "locked",
        "reference_standard": "pirads",
        "seed": seed,
        "washout_days": 0,
        "arms": ["original", "registered"],
    }
    return {"study": study, "reads": reads}


def timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    payload = synthetic_payload(n_readers=args.readers, n_cases=args.cases, seed=1)
    n_reads = len(payload["reads"])
    print(
        f"SYNTHETIC reads: {args.readers} readers x 2 arms x {args.cases} cases ({n_reads}), one core"
    )
    wall, cpu, sha = timed(lambda: payload_sha256(payload), args.repeats)
    print(f"{'snapshot hash':<28} wall {wall:7.3f} s  cpu {cpu:7.3f} s")
    build = lambda: analysis_results_build(  # noqa: E731
        payload=payload, sha256=str(sha), created_at="2026-01-01T10:02:00+00:00", synthetic=True
    )
    build()  # warm-up: imports, scipy and matplotlib lazy loading
    wall, cpu, results = timed(build, args.repeats)
    print(f"{'analysis_results_build':<28} wall {wall:7.3f} s  cpu {cpu:7.3f} s")
    wall, cpu, reads = timed(lambda: reads_frame(payload), args.repeats)
    print(f"{'reads_frame':<28} wall {wall:7.3f} s  cpu {cpu:7.3f} s")
    total_cpu = 0.0
    for key, builder in EXPORT_BUILDERS.items():
        wall, cpu, data = timed(lambda b=builder: b(results, reads), args.repeats)  # type: ignore[misc]
        total_cpu += cpu
        print(f"export {key:<21} wall {wall:7.3f} s  cpu {cpu:7.3f} s  {len(data) / 1e6:6.2f} MB")  # type: ignore[arg-type]
    for key in FIGURES:
        for fmt in ("svg", "png"):
            wall, cpu, data = timed(
                lambda k=key, f=fmt: figure_render(k, results, fmt=f),
                args.repeats,  # type: ignore[misc]
            )
            total_cpu += cpu
            print(
                f"figure {key + '.' + fmt:<21} wall {wall:7.3f} s  cpu {cpu:7.3f} s  "
                f"{len(data) / 1e6:6.2f} MB"  # type: ignore[arg-type]
            )
    print(f"all exports + figures: cpu {total_cpu:.2f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
