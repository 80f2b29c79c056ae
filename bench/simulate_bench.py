"""Time to simulate one MR/TRUS pair with inference.simulate (SYNTHETIC data), on one CPU thread.

For each anatomy (parametric phantom; the real Yale T2 when ../shared/data is present) it simulates
``--pairs`` pairs with different seeds and prints the median and max wall time and process CPU time
per pair (CPU time is less sensitive to other load on a shared machine), then the time to write one
pair in the DeepReg layout (gzip NIfTI) and the ground-truth check: mean landmark distance before
and after the known field (mm), Dice of the gland before/after, and the folding fraction.

    python bench/simulate_bench.py [--pairs 10]
"""

from __future__ import annotations

import argparse
import os

# One thread, as the brief's budget ("one pair in well under 2 s on one core") is per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference import metrics  # noqa: E402
from inference import simulate as sim  # noqa: E402
from inference.preprocess import volume_warp  # noqa: E402

YALE = ROOT.parent / "shared" / "data" / "yale-prostate-t2"


def _centroids_world(labels: np.ndarray, affine: np.ndarray) -> dict[int, np.ndarray]:
    ids = [int(k) for k in np.unique(labels) if k > 0]
    cents = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return {k: affine[:3, :3] @ np.asarray(c) + affine[:3, 3] for k, c in zip(ids, cents)}


def _accuracy(p: sim.SimulatedPair) -> tuple[float, float, float, float, float]:
    mr = _centroids_world(p.mr_landmarks, p.mr_affine)
    us = _centroids_world(p.us_landmarks, p.us_affine)
    before, after = [], []
    for k in mr:
        vox = np.linalg.solve(p.us_affine, np.r_[us[k], 1.0])[:3]
        u = [
            ndimage.map_coordinates(p.displacement[c], vox.reshape(3, 1), order=1)[0]
            for c in range(3)
        ]
        carried = p.us_affine[:3, :3] @ (vox + np.asarray(u)) + p.us_affine[:3, 3]
        before.append(np.linalg.norm(us[k] - mr[k]))
        after.append(np.linalg.norm(carried - mr[k]))
    gland = sim.mr_resample_to_us(p, p.mr_label, order=0).astype(np.float32)
    warped = volume_warp(gland, p.displacement, order=0)
    return (
        float(np.mean(before)),
        float(np.mean(after)),
        metrics.dice(gland, p.us_label),
        metrics.dice(warped > 0.5, p.us_label),
        metrics.folding_fraction(p.displacement),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    anatomies: list[tuple[str, sim.SimSource | None]] = [("phantom", None)]
    if YALE.is_dir():
        anatomies.append(("yale", sim.sim_sources_load(YALE)[0]))
    else:
        print(f"({YALE} absent: the real-anatomy row is skipped)")
    print(f"SIMULATED pairs, TRUS grid {sim.US_SHAPE} at {sim.US_SPACING} mm, 1 thread")
    print(
        f"{'anatomy':8} {'n':>3} {'wall med':>9} {'wall max':>9} {'cpu med':>8} {'write':>7} "
        f"{'TRE bef':>8} {'TRE aft':>8} {'DSC bef':>8} {'DSC aft':>8} {'fold':>6}"
    )
    for name, src in anatomies:
        sim.simulate_pair(seed=10_000, source=src)  # warm-up (imports, source caches)
        walls, cpus, acc = [], [], []
        last = None
        for seed in range(args.pairs):
            t0, c0 = time.perf_counter(), time.process_time()
            last = sim.simulate_pair(seed=seed, source=src)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            acc.append(_accuracy(last))
        assert last is not None
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            sim.write_pair_deepreg(last, out_dir=tmp, name="case")
            write_s = time.perf_counter() - t0
        a = np.asarray(acc)
        print(
            f"{name:8} {args.pairs:>3} {statistics.median(walls):>8.2f}s {max(walls):>8.2f}s "
            f"{statistics.median(cpus):>7.2f}s {write_s:>6.2f}s "
            f"{a[:, 0].mean():>7.2f}mm {a[:, 1].mean():>7.3f}mm {a[:, 2].mean():>8.3f} "
            f"{a[:, 3].mean():>8.3f} {a[:, 4].max():>6.4f}"
        )
    print(f"load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
