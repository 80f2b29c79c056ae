"""Registration-job throughput and queue overhead on the simulated (SYNTHETIC) demo cohort.

A throwaway deployment (SQLite + django-tasks-db, its own media folder) imports the demo cohort,
then for 1 and then 2 CPU `db_worker` processes queues one job per case ("register all") and
reports:

* cases per minute (first enqueue to last job finished),
* the job's own run time (claim to commit) and its compute part (the pipeline's stages),
* enqueue -> start: the queue's pickup latency of an idle worker (first job of each worker), and
  the gap between one job's end and the next job's start on the same worker,
* finish -> visible: writing the output folder + storing the registered series and the job row.

    python bench/jobs_bench.py [--cases 4] [--method initial|rern+io|...] [--workers 1,2]

Each worker gets MRITRUS_TORCH_THREADS = cores / workers so that two workers do not oversubscribe
the CPU. Figures depend on the machine and on what else runs on it; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.jobs.deployment import Deployment  # noqa: E402

PIPELINE_STAGES = ("resample", "segment", "initial", "network", "refine", "metrics")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summary(state: dict[str, Any]) -> dict[str, float]:
    jobs = [j for j in state["jobs"] if j["status"] == "succeeded"]
    enq = [j["enqueued_at"] for j in jobs]
    run = [j["finished_at"] - j["started_at"] for j in jobs]
    compute = [sum(j["stage_seconds"].get(s, 0.0) for s in PIPELINE_STAGES) for j in jobs]
    visible = [
        j["stage_seconds"].get("writing outputs", 0.0) + j["stage_seconds"].get("storing", 0.0)
        for j in jobs
    ]
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for j in sorted(jobs, key=lambda j: j["started_at"]):
        by_worker.setdefault(j["worker_id"], []).append(j)
    first_pickup = [w[0]["started_at"] - w[0]["enqueued_at"] for w in by_worker.values()]
    gaps = [
        b["started_at"] - a["finished_at"] for w in by_worker.values() for a, b in zip(w, w[1:])
    ]
    wall = max(j["finished_at"] for j in jobs) - min(enq)
    return {
        "jobs": len(jobs),
        "failed": len(state["jobs"]) - len(jobs),
        "workers_used": len(by_worker),
        "wall_s": wall,
        "cases_per_min": 60.0 * len(jobs) / wall,
        "run_s_median": _median(run),
        "compute_s_median": _median(compute),
        "enqueue_to_start_idle_s_median": _median(first_pickup),
        "between_jobs_gap_s_median": _median(gaps),
        "finish_to_visible_s_median": _median(visible),
    }


def bench(
    n_cases: int, method: str, workers: int, base: Path, template: Path | None
) -> dict[str, float]:
    cores = os.cpu_count() or 1
    d = Deployment(
        base / f"w{workers}",
        sqlite_template=template,
        MRITRUS_TASKS_BACKEND="db",
        MRITRUS_REGISTRATION_METHOD=method,
        MRITRUS_HEARTBEAT_SECONDS="5",
        MRITRUS_HEARTBEAT_STALE_SECONDS="600",
    )
    try:
        if template is None:
            d.harness("migrate", timeout=600)
        imported = d.harness("demo", str(n_cases), timeout=1200)
        assert imported["accepted"] == n_cases, imported
        procs = [
            d.worker_start("db", f"bench-w{i}", MRITRUS_TORCH_THREADS=str(max(1, cores // workers)))
            for i in range(workers)
        ]
        for p in procs:
            d.wait_for_log(p, "Starting worker", timeout=120)
        d.harness("queue", "--method", method)
        state = d.wait_finished(timeout=max(600.0, n_cases * 600.0))
        return _summary(state)
    finally:
        d.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument(
        "--method", default=os.environ.get("MRITRUS_REGISTRATION_METHOD", "initial")
    )
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    print(
        f"jobs_bench: {args.cases} simulated (SYNTHETIC) demo cases, method {args.method!r}, "
        f"{os.cpu_count()} CPU cores, SQLite + db_worker"
    )
    with tempfile.TemporaryDirectory(prefix="mritrus-jobs-bench-") as tmp:
        base = Path(tmp)
        tpl = Deployment(base / "template")
        tpl.harness("migrate", timeout=600)
        template = tpl.tmp / "var" / "mritrus.sqlite3"
        for w in (int(x) for x in args.workers.split(",")):
            t = time.monotonic()
            s = bench(args.cases, args.method, w, base, template)
            print(f"\n{w} worker(s)  [{time.monotonic() - t:.0f} s including set-up]")
            for k, v in s.items():
                print(f"  {k:34s} {v:10.3f}" if isinstance(v, float) else f"  {k:34s} {v:10d}")


if __name__ == "__main__":
    main()
